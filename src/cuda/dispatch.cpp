// The dispatcher of docs/cuda.md: v1 or v2 per bucket, with the reason for each threshold.
#include "cuda/dispatch.hpp"

#include <algorithm>

namespace dalesim::cuda {

std::size_t v2_shared_bytes(int N, int replicas_per_block) {
  return static_cast<std::size_t>(replicas_per_block) * N * (N + 1) * sizeof(float);
}

int v2_max_units() {
  int n = 1;
  while (v2_shared_bytes(n + 1, 1) <= kSharedOptinBytes) ++n;
  return n;
}

const char* to_string(Variant v) { return v == Variant::v1 ? "v1" : "v2"; }

namespace {

KernelPlan plan_v2(int N, int B) {
  KernelPlan p;
  p.variant = Variant::v2;
  // One thread per (replica, trial, unit) output of a step. A replica with fewer outputs than the
  // block has threads shares its block with others (N <= 64 only, where W_rec is small): sm_90 keeps
  // at most 32 blocks on an SM, so blocks of B N < 64 threads alone would leave most of its 2,048
  // thread slots empty however many replicas the bucket holds. Bounded by the default 48 KiB so
  // that packing never needs the opt-in. Not measured yet (docs/cuda.md).
  const long long outputs = static_cast<long long>(B) * N;
  int per_block = 1;
  if (N <= 64 && outputs < kV2Threads) {
    per_block = static_cast<int>(kV2Threads / outputs);
    while (per_block > 1 && v2_shared_bytes(N, per_block) > kSharedDefaultBytes) --per_block;
  }
  p.replicas_per_block = per_block;
  const long long work = outputs * per_block;
  p.threads = static_cast<int>(std::min<long long>(kV2Threads, (work + 31) / 32 * 32));
  p.shared_bytes = v2_shared_bytes(N, per_block);
  return p;
}

}  // namespace

KernelPlan plan_kernel(CudaKernel requested, int N, int B) {
  const int max_n = v2_max_units();
  const bool v2_fits = N <= max_n;
  const std::string shape = "N = " + std::to_string(N) + ", B = " + std::to_string(B);
  const std::string limit = "v2 holds W_rec in shared memory, N (N + 1) 4 bytes <= 227 KiB: N <= " + std::to_string(max_n);
  switch (requested) {
    case CudaKernel::v1: {
      KernelPlan p;
      p.reason = "v1: forced by train.kernel";
      return p;
    }
    case CudaKernel::v2: {
      if (!v2_fits)
        throw ConfigError("train.kernel", "\"v2\"", "\"auto\" or \"v1\" for " + shape, limit);
      KernelPlan p = plan_v2(N, B);
      p.reason = "v2: forced by train.kernel";
      return p;
    }
    case CudaKernel::v3:
      throw ConfigError("train.kernel", "\"v3\"", "\"auto\", \"v1\" or \"v2\"",
                        "v3 (thread-block clusters) is not built; docs/cuda.md says why");
    case CudaKernel::auto_select: break;
  }
  // auto. v2 wherever W_rec fits on chip: v1 launches two kernels per time step (about 4 T + 15 per
  // iteration) and reads W_rec from L2 at each of them, while v2 launches one per pass and reads
  // W_rec once per iteration. Above N = 240 v1 (v3, clusters, is not built). A threshold from the
  // hardware's byte limit, not from a measurement: bench/gpu_checks.sh times both to revise it.
  if (v2_fits) {
    KernelPlan p = plan_v2(N, B);
    p.reason = "v2: W_rec fits in shared memory (" + shape + ")";
    return p;
  }
  KernelPlan p;
  p.reason = "v1: " + shape + " is over v2's limit (" + limit + ")";
  return p;
}

}  // namespace dalesim::cuda
