// GPU micro-benchmarks: what the persistent kernels' design rests on, measured on the device that
// runs them. Kernel launch and synchronisation, CUDA-graph replay, shared-memory and global-memory
// bandwidth, and cuBLAS's strided-batched SGEMM at the shapes of the per-step recurrent product.
// Times are device times (CUDA events) except the launch latencies, which are wall times as the
// host sees them. Run by bench/gpu_checks.sh; exits 0 with a message where there is no device.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "dalesim_micro_gpu: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "dalesim_micro_gpu: %s: cuBLAS status %d\n", what, static_cast<int>(s));
    std::exit(1);
  }
}

__global__ void empty_kernel() {}

// Device time of `body` (which enqueues work on `stream`) per benchmark iteration.
template <class Body>
void time_on_device(benchmark::State& state, cudaStream_t stream, Body body) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  body();  // warm-up
  check(cudaStreamSynchronize(stream), "warm-up");
  for (auto _ : state) {
    check(cudaEventRecord(start, stream), "record");
    body();
    check(cudaEventRecord(stop, stream), "record");
    check(cudaEventSynchronize(stop), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    state.SetIterationTime(ms * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

// One empty launch and a stream synchronisation: the floor of a per-iteration host round trip.
void BM_LaunchAndSync(benchmark::State& state) {
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "stream");
  for (auto _ : state) {
    empty_kernel<<<1, 32, 0, stream>>>();
    check(cudaStreamSynchronize(stream), "sync");
  }
  cudaStreamDestroy(stream);
}
BENCHMARK(BM_LaunchAndSync)->UseRealTime();

// Back-to-back empty launches, one synchronisation per `range(0)` of them: the launch rate.
void BM_LaunchThroughput(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "stream");
  for (auto _ : state) {
    for (int k = 0; k < n; ++k) empty_kernel<<<1, 32, 0, stream>>>();
    check(cudaStreamSynchronize(stream), "sync");
  }
  state.counters["per_launch_us"] =
      benchmark::Counter(double(n) * 1e-6, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  cudaStreamDestroy(stream);
}
BENCHMARK(BM_LaunchThroughput)->Arg(100)->UseRealTime();

// A graph of `range(0)` empty kernels replayed: what the v1 backend's per-step capture costs.
void BM_GraphReplay(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "stream");
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "capture");
  for (int k = 0; k < n; ++k) empty_kernel<<<1, 32, 0, stream>>>();
  check(cudaStreamEndCapture(stream, &graph), "end capture");
  check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  for (auto _ : state) {
    check(cudaGraphLaunch(exec, stream), "graph launch");
    check(cudaStreamSynchronize(stream), "sync");
  }
  state.counters["per_node_us"] =
      benchmark::Counter(double(n) * 1e-6, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}
BENCHMARK(BM_GraphReplay)->Arg(100)->Arg(1000)->UseRealTime();

// Each block streams `reps` passes over a 48 KiB shared tile (float4 reads and writes): the
// on-chip bandwidth a persistent kernel's W-in-shared-memory products draw on.
__global__ void shared_bandwidth_kernel(float* out, int reps) {
  constexpr int kFloats = 48 * 1024 / 4;
  __shared__ float4 tile[kFloats / 4];
  for (int k = threadIdx.x; k < kFloats / 4; k += blockDim.x) tile[k] = make_float4(k, k, k, k);
  __syncthreads();
  float4 acc = make_float4(0, 0, 0, 0);
  for (int r = 0; r < reps; ++r) {
    for (int k = threadIdx.x; k < kFloats / 4; k += blockDim.x) {
      const float4 v = tile[(k + r) % (kFloats / 4)];
      acc.x += v.x;
      acc.y += v.y;
      acc.z += v.z;
      acc.w += v.w;
    }
  }
  if (acc.x + acc.y + acc.z + acc.w == -1.f) out[blockIdx.x] = acc.x;  // keeps the loop alive
}

void BM_SharedMemoryBandwidth(benchmark::State& state) {
  int sms = 0;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "attribute");
  const int blocks = 4 * sms, threads = 256, reps = 256;
  float* out;
  check(cudaMalloc(&out, blocks * sizeof(float)), "malloc");
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "stream");
  time_on_device(state, stream, [&] { shared_bandwidth_kernel<<<blocks, threads, 0, stream>>>(out, reps); });
  const double bytes = double(blocks) * reps * 48 * 1024;
  state.counters["bytes_per_s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  cudaStreamDestroy(stream);
  cudaFree(out);
}
BENCHMARK(BM_SharedMemoryBandwidth)->UseManualTime();

// Device-to-device copy of range(0) MiB: the global-memory bandwidth (read + write counted).
void BM_GlobalMemoryCopy(benchmark::State& state) {
  const size_t bytes = size_t(state.range(0)) << 20;
  void *a, *b;
  check(cudaMalloc(&a, bytes), "malloc");
  check(cudaMalloc(&b, bytes), "malloc");
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "stream");
  time_on_device(state, stream, [&] { check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream), "copy"); });
  state.counters["bytes_per_s"] = benchmark::Counter(2.0 * bytes, benchmark::Counter::kIsIterationInvariantRate);
  cudaStreamDestroy(stream);
  cudaFree(a);
  cudaFree(b);
}
BENCHMARK(BM_GlobalMemoryCopy)->Arg(256)->UseManualTime();

// cuBLAS strided-batched SGEMM of the per-step recurrent product: for each of R replicas, the
// [B, N] states times the [N, N] weights (column-major, as the v1 backend calls it). Args: R, B, N.
void BM_BatchedSgemm(benchmark::State& state) {
  const int R = static_cast<int>(state.range(0)), B = static_cast<int>(state.range(1)), N = static_cast<int>(state.range(2));
  float *w, *x, *y;
  check(cudaMalloc(&w, sizeof(float) * size_t(R) * N * N), "malloc");
  check(cudaMalloc(&x, sizeof(float) * size_t(R) * N * B), "malloc");
  check(cudaMalloc(&y, sizeof(float) * size_t(R) * N * B), "malloc");
  check(cudaMemset(w, 0, sizeof(float) * size_t(R) * N * N), "memset");
  check(cudaMemset(x, 0, sizeof(float) * size_t(R) * N * B), "memset");
  cublasHandle_t handle;
  check(cublasCreate(&handle), "cublasCreate");
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "stream");
  check(cublasSetStream(handle, stream), "cublasSetStream");
  check(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH), "math mode");  // strict FP32, as the backend
  const float one = 1.f, zero = 0.f;
  time_on_device(state, stream, [&] {
    // y[N, B] = W[N, N] x[N, B] per replica.
    check(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, N, B, N, &one, w, N, static_cast<long long>(N) * N,
                                    x, N, static_cast<long long>(N) * B, &zero, y, N, static_cast<long long>(N) * B, R),
          "sgemm");
  });
  state.counters["flop_per_s"] =
      benchmark::Counter(2.0 * R * B * double(N) * N, benchmark::Counter::kIsIterationInvariantRate);
  cublasDestroy(handle);
  cudaStreamDestroy(stream);
  cudaFree(w);
  cudaFree(x);
  cudaFree(y);
}
// The issue's three target shapes (R, B, N) and a small-replica bucket.
BENCHMARK(BM_BatchedSgemm)->Args({256, 64, 128})->Args({64, 64, 512})->Args({1024, 32, 64})->Args({1024, 8, 32})->UseManualTime();

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("dalesim_micro_gpu: no CUDA device; nothing measured\n");
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
