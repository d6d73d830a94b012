// Which CUDA training kernel a bucket runs (train.kernel, docs/cuda.md), from its shape alone.
// Host-only and free of CUDA headers: the CUDA backend plans its buckets with it, and the driver
// and the tests ask it what a replica will run.
#pragma once

#include <cstddef>
#include <string>

#include "dalesim/config.hpp"

namespace dalesim::cuda {

enum class Variant { v1, v2 };

struct KernelPlan {
  Variant variant = Variant::v1;
  // v2 only: replicas sharing one block, the block's threads, its dynamic shared memory.
  int replicas_per_block = 1;
  int threads = 0;
  std::size_t shared_bytes = 0;
  std::string reason;  // one line: why this variant for this shape
};

// sm_90's dynamic shared memory per block after the opt-in (cudaFuncAttributeMaxDynamicSharedMemorySize).
constexpr std::size_t kSharedOptinBytes = 227 * 1024;
// Without the opt-in.
constexpr std::size_t kSharedDefaultBytes = 48 * 1024;
// v2's block: a multiple of the warp, large enough that a block holds several warps.
constexpr int kV2Threads = 256;

// v2 keeps each replica's effective W_rec in shared memory with rows padded to N + 1 floats (so that
// the threads of a warp read W[i, j] for consecutive i, or consecutive j, from distinct banks).
std::size_t v2_shared_bytes(int N, int replicas_per_block);
// The largest N whose padded W_rec fits kSharedOptinBytes (240).
int v2_max_units();

// The plan for a bucket of N units and batch B. `requested` is the replicas' train.kernel (one value
// per bucket: replicas asking for different kernels are bucketed apart). A forced variant that cannot
// take the shape, and v3 (not built), are ConfigErrors naming train.kernel.
KernelPlan plan_kernel(CudaKernel requested, int N, int B);

const char* to_string(Variant v);

}  // namespace dalesim::cuda
