// Tests of the host SIMT runtime itself (src/cuda/simt/): each class of mistake it exists to catch
// is planted in a small kernel or call sequence and must be caught, with the message naming it;
// and what it emulates (launch geometry, warp primitives, CUB's reduction order, cuBLAS's
// column-major products, the tiled GEMM's split launches) is checked against plain loops.
#include <gtest/gtest.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/block_reduce.cuh"
#include "cuda/gemm.cuh"

namespace {

using dalesim::simt::Schedule;

// Device buffer of n floats for a test, freed at scope end.
struct Dev {
  explicit Dev(std::size_t n) : n(n) { EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(float)), cudaSuccess); }
  ~Dev() { cudaFree(p); }
  std::vector<float> get() const {
    std::vector<float> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
  void put(const std::vector<float>& h) { EXPECT_EQ(cudaMemcpy(p, h.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess); }
  float* p = nullptr;
  std::size_t n;
};

// A kernel failure is sticky, as on a device: tests that plant one reset the runtime after.
class Simt : public ::testing::Test {
 protected:
  void TearDown() override {
    cudaDeviceReset();
    dalesim::simt::set_schedule(Schedule::forward);
  }
  static std::string message(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }
};

__global__ void fill_kernel(float* out, float value, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = value;
}

TEST_F(Simt, StreamsRunLazilyAtTheNextSynchronisation) {
  Dev d(100);
  cudaStream_t s;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  // Fresh device memory reads as NaN (all-ones bytes), not as zeros.
  EXPECT_TRUE(std::isnan(d.get()[7]));
  dalesim::simt::launch("fill_kernel", fill_kernel, dim3(4), dim3(32), 0, s, d.p, 2.f, 100);
  std::vector<float> h(100, -1.f);
  ASSERT_EQ(cudaMemcpyAsync(h.data(), d.p, 400, cudaMemcpyDeviceToHost, s), cudaSuccess);
  EXPECT_EQ(h[0], -1.f) << "read before the stream was synchronised: the copy has not run";
  EXPECT_EQ(cudaStreamQuery(s), cudaErrorNotReady);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  for (float x : h) EXPECT_EQ(x, 2.f);
  cudaStreamDestroy(s);
}

TEST_F(Simt, StagingBufferRewrittenBeforeTheSyncIsCaught) {
  Dev d(64);
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  float* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(&pinned, 64 * sizeof(float)), cudaSuccess);
  for (int i = 0; i < 64; ++i) pinned[i] = float(i);
  ASSERT_EQ(cudaMemcpyAsync(d.p, pinned, 64 * sizeof(float), cudaMemcpyHostToDevice, s), cudaSuccess);
  pinned[3] = 99.f;  // the next batch staged before the copy of this one ran
  const cudaError_t e = cudaStreamSynchronize(s);
  EXPECT_EQ(e, cudaErrorInvalidValue);
  EXPECT_NE(message(e).find("rewritten after the call and before the copy ran"), std::string::npos) << message(e);
  // Synchronised first, the same reuse is fine.
  ASSERT_EQ(cudaMemcpyAsync(d.p, pinned, 64 * sizeof(float), cudaMemcpyHostToDevice, s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  pinned[3] = 5.f;
  EXPECT_EQ(d.get()[3], 99.f);
  cudaFreeHost(pinned);
  cudaStreamDestroy(s);
}

TEST_F(Simt, CopiesOutsideTheirAllocationAreRefused) {
  Dev d(16);
  std::vector<float> h(32);
  const cudaError_t e = cudaMemcpy(d.p, h.data(), 32 * sizeof(float), cudaMemcpyHostToDevice);
  EXPECT_EQ(e, cudaErrorInvalidValue);
  EXPECT_NE(message(e).find("runs past the end of its allocation of 64 bytes"), std::string::npos) << message(e);
  const cudaError_t k = cudaMemcpy(d.p, d.p + 8, 16, cudaMemcpyHostToDevice);  // a device source called host
  EXPECT_NE(message(k).find("is device memory but the copy's kind says host"), std::string::npos) << message(k);
}

__global__ void add_kernel(float* out, float value) { out[threadIdx.x] += value; }

TEST_F(Simt, KernelArgumentsAreCopiedAtCapture) {
  Dev d(32);
  d.put(std::vector<float>(32, 0.f));
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  float value = 1.f;
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  dalesim::simt::launch("add_kernel", add_kernel, dim3(1), dim3(32), 0, s, d.p, value);
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  value = 10.f;  // host code that means to change what the graph does this way is wrong
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(d.get()[5], 2.f) << "two replays of the captured argument 1, not of the changed 10";
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
}

TEST_F(Simt, IllegalCallsInsideACaptureAreRefused) {
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  std::vector<float> h(4);
  for (const std::string call : {"cudaMalloc", "cudaMemcpy", "cudaStreamSynchronize"}) {
    ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    void* p = nullptr;
    cudaError_t e = cudaSuccess;
    if (call == "cudaMalloc") e = cudaMalloc(&p, 16);
    if (call == "cudaMemcpy") e = cudaMemcpy(h.data(), h.data() + 1, 4, cudaMemcpyHostToHost);
    if (call == "cudaStreamSynchronize") e = cudaStreamSynchronize(s);
    EXPECT_EQ(e, cudaErrorStreamCaptureUnsupported) << call;
    EXPECT_NE(message(e).find(call), std::string::npos) << message(e);
    cudaGraph_t graph = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated) << call;
    EXPECT_EQ(graph, nullptr);
  }
  cudaStreamDestroy(s);
}

TEST_F(Simt, LaunchesBeyondTheLimitsOfSm90AreRefused) {
  Dev d(4096);
  auto try_launch = [&](dim3 grid, dim3 block, std::size_t shared) {
    dalesim::simt::launch("fill_kernel", fill_kernel, grid, block, shared, nullptr, d.p, 1.f, 0);
    return cudaGetLastError();
  };
  cudaError_t e = try_launch(dim3(1), dim3(1025), 0);
  EXPECT_EQ(e, cudaErrorInvalidConfiguration);
  EXPECT_NE(message(e).find("kernel fill_kernel: block (1025,1,1) has 1025 threads"), std::string::npos) << message(e);
  EXPECT_EQ(try_launch(dim3(1), dim3(1, 1, 65), 0), cudaErrorInvalidConfiguration);
  EXPECT_EQ(try_launch(dim3(1), dim3(32, 32), 0), cudaSuccess);
  e = try_launch(dim3(1, 65536), dim3(32), 0);
  EXPECT_EQ(e, cudaErrorInvalidConfiguration);
  EXPECT_NE(message(e).find("grid (1,65536,1) exceeds"), std::string::npos) << message(e);
  EXPECT_EQ(try_launch(dim3(1, 1, 65536), dim3(32), 0), cudaErrorInvalidConfiguration);
  // Dynamic shared memory: 48 KiB without the opt-in attribute, up to 227 KiB with it.
  e = try_launch(dim3(1), dim3(32), (48 << 10) + 4);
  EXPECT_EQ(e, cudaErrorInvalidValue);
  EXPECT_NE(message(e).find("cudaFuncAttributeMaxDynamicSharedMemorySize"), std::string::npos) << message(e);
  EXPECT_EQ(try_launch(dim3(1), dim3(32), 48 << 10), cudaSuccess);
  EXPECT_EQ(cudaFuncSetAttribute(fill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (227 << 10) + 1), cudaErrorInvalidValue);
  cudaGetLastError();  // as on a device, the failed call is also the last error
  ASSERT_EQ(cudaFuncSetAttribute(fill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 100 << 10), cudaSuccess);
  e = try_launch(dim3(1), dim3(32), 100 << 10);
  EXPECT_EQ(e, cudaSuccess) << message(e);
  EXPECT_EQ(try_launch(dim3(1), dim3(32), (100 << 10) + 4), cudaErrorInvalidValue);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

__global__ void early_return_kernel(float* out) {
  __shared__ float s[64];
  if (threadIdx.x >= 48) return;  // these never reach the barrier below
  s[threadIdx.x] = float(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = s[47 - threadIdx.x];
}

__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x % 2) {
    out[threadIdx.x] = 1.f;
    __syncthreads();
  } else {
    out[threadIdx.x] = 2.f;
    __syncthreads();
  }
}

TEST_F(Simt, BarrierNotReachedByEveryThreadIsCaught) {
  Dev d(64);
  dalesim::simt::launch("early_return_kernel", early_return_kernel, dim3(2), dim3(64), 0, nullptr, d.p);
  cudaError_t e = cudaDeviceSynchronize();
  EXPECT_EQ(e, cudaErrorLaunchFailure);
  EXPECT_NE(message(e).find("kernel early_return_kernel block (0,0,0) thread (48,0,0) returned while 48 threads of the "
                            "block wait at __syncthreads (test_simt.cpp:"),
            std::string::npos)
      << message(e);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure) << "a kernel failure is sticky";
  cudaDeviceReset();
  dalesim::simt::launch("divergent_barrier_kernel", divergent_barrier_kernel, dim3(1), dim3(32), 0, nullptr, d.p);
  e = cudaDeviceSynchronize();
  EXPECT_EQ(e, cudaErrorLaunchFailure);
  EXPECT_NE(message(e).find("kernel divergent_barrier_kernel block (0,0,0): threads wait at different __syncthreads: "
                            "thread (0,0,0) at test_simt.cpp:"),
            std::string::npos)
      << message(e);
}

// out[b] = sum over a 32x32 tile of in[b] of tile[j][i] * w[i] (a transposed read of shared
// memory, as the tiled GEMM does), with or without the barrier between the writes and the reads.
template <bool kBarrier>
__global__ void tile_kernel(const float* in, float* out) {
  __shared__ float tile[32][33];
  const int tx = threadIdx.x, b = blockIdx.x;
  for (int j = 0; j < 32; ++j) tile[j][tx] = in[b * 1024 + j * 32 + tx];
  if (kBarrier) __syncthreads();
  float acc = 0.f;
  for (int j = 0; j < 32; ++j) acc += tile[tx][j] * float(j + 1);
  out[b * 32 + tx] = acc;
}

std::vector<float> run_tile(bool barrier, Schedule schedule) {
  dalesim::simt::set_schedule(schedule, 7);
  Dev in(4 * 1024), out(4 * 32);
  std::vector<float> h(in.n);
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = float(i % 97) - 40.f;
  in.put(h);
  if (barrier) dalesim::simt::launch("tile_kernel<true>", tile_kernel<true>, dim3(4), dim3(32), 0, nullptr, in.p, out.p);
  else dalesim::simt::launch("tile_kernel<false>", tile_kernel<false>, dim3(4), dim3(32), 0, nullptr, in.p, out.p);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return out.get();
}

TEST_F(Simt, RemovedSyncthreadsInATileLoopShowsAsAScheduleDifference) {
  // With the barrier: the same numbers in every schedule, and the plain loop's.
  const std::vector<float> forward = run_tile(true, Schedule::forward);
  EXPECT_EQ(run_tile(true, Schedule::reverse), forward);
  EXPECT_EQ(run_tile(true, Schedule::shuffle), forward);
  std::vector<float> h(4 * 1024);
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = float(i % 97) - 40.f;
  for (int b = 0; b < 4; ++b)
    for (int t = 0; t < 32; ++t) {
      float acc = 0.f;
      for (int j = 0; j < 32; ++j) acc += h[b * 1024 + t * 32 + j] * float(j + 1);
      EXPECT_EQ(forward[b * 32 + t], acc);
    }
  // Without it, threads read tile rows others have not written yet: schedules disagree.
  const std::vector<float> racy_forward = run_tile(false, Schedule::forward);
  EXPECT_NE(run_tile(false, Schedule::reverse), racy_forward);
  EXPECT_NE(run_tile(false, Schedule::shuffle), racy_forward);
}

__global__ void warp_kernel(const float* in, float* sums, unsigned* ballots, float* broadcast) {
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32;
  float v = in[threadIdx.x];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (lane == 0) sums[w] = v;
  const unsigned odd = __ballot_sync(0xffffffffu, lane % 2 == 1);
  if (lane == 0) ballots[w] = odd;
  broadcast[threadIdx.x] = __shfl_sync(0xffffffffu, in[threadIdx.x], 3) + __shfl_xor_sync(0xffffffffu, float(lane), 1);
}

__global__ void warp_missing_lane_kernel(float* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.f, 1);
}

TEST_F(Simt, WarpPrimitivesExchangeWithinTheWarp) {
  Dev in(64), sums(2), bcast(64);
  unsigned* ballots = nullptr;
  ASSERT_EQ(cudaMalloc(&ballots, 2 * sizeof(unsigned)), cudaSuccess);
  std::vector<float> h(64);
  for (int i = 0; i < 64; ++i) h[i] = float(i * i % 13);
  in.put(h);
  dalesim::simt::launch("warp_kernel", warp_kernel, dim3(1), dim3(64), 0, nullptr, in.p, sums.p, ballots, bcast.p);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> s = sums.get(), b = bcast.get();
  unsigned hb[2];
  cudaMemcpy(hb, ballots, sizeof hb, cudaMemcpyDeviceToHost);
  for (int w = 0; w < 2; ++w) {
    float expect = 0.f;
    for (int l = 0; l < 32; ++l) expect += h[w * 32 + l];
    EXPECT_EQ(s[w], expect);
    EXPECT_EQ(hb[w], 0xaaaaaaaau);
    for (int l = 0; l < 32; ++l) EXPECT_EQ(b[w * 32 + l], h[w * 32 + 3] + float(l ^ 1));
  }
  cudaFree(ballots);
  dalesim::simt::launch("warp_missing_lane_kernel", warp_missing_lane_kernel, dim3(1), dim3(32), 0, nullptr, in.p);
  const cudaError_t e = cudaDeviceSynchronize();
  EXPECT_EQ(e, cudaErrorLaunchFailure);
  EXPECT_NE(message(e).find("not every lane of its mask reaches (thread (5,0,0) returned)"), std::string::npos) << message(e);
}

__global__ void block_sum_kernel(const double* in, double* out) {
  using Reduce = dalesim::cuda::BlockReduce<double, 256>;
  __shared__ Reduce::TempStorage temp;
  const double s = Reduce(temp).Sum(in[threadIdx.x]);
  out[threadIdx.x] = s;
}

TEST_F(Simt, BlockReduceSumsInCubsOrderIntoThreadZero) {
  std::vector<double> h(256);
  for (int i = 0; i < 256; ++i) h[i] = i % 7 == 0 ? 1e17 : (i % 7 == 1 ? -1e17 : 1.0 + i * 1e-3);
  double *in = nullptr, *out = nullptr;
  cudaMalloc(&in, 256 * sizeof(double));
  cudaMalloc(&out, 256 * sizeof(double));
  cudaMemcpy(in, h.data(), 256 * sizeof(double), cudaMemcpyHostToDevice);
  dalesim::simt::launch("block_sum_kernel", block_sum_kernel, dim3(1), dim3(256), 0, nullptr, in, out);
  std::vector<double> got(256);
  ASSERT_EQ(cudaMemcpy(got.data(), out, 256 * sizeof(double), cudaMemcpyDeviceToHost), cudaSuccess);
  // CUB's warp reductions: lane l adds lane l + offset for offset 1, 2, 4, 8, 16; then warps in order.
  double expect = 0;
  for (int w = 0; w < 8; ++w) {
    double v[32];
    for (int l = 0; l < 32; ++l) v[l] = h[w * 32 + l];
    for (int offset = 1; offset < 32; offset *= 2)
      for (int l = 0; l + offset < 32; l += 2 * offset) v[l] += v[l + offset];
    expect = w == 0 ? v[0] : expect + v[0];
  }
  double sequential = 0;
  for (double x : h) sequential += x;
  EXPECT_EQ(got[0], expect);
  EXPECT_NE(expect, sequential) << "the test's values must tell the two orders apart";
  EXPECT_TRUE(std::isnan(got[1])) << "only thread 0's result is defined";
  cudaFree(in);
  cudaFree(out);
}

// Column-major reference of C = alpha op(A) op(B) + beta C for one batch entry.
void reference_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* A, int lda, const float* B, int ldb,
                    float beta, float* C, int ldc) {
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double acc = 0;
      for (int l = 0; l < k; ++l) acc += double(ta ? A[l + i * lda] : A[i + l * lda]) * (tb ? B[j + l * ldb] : B[l + j * ldb]);
      C[i + j * ldc] = float(alpha * acc + (beta == 0.f ? 0.0 : double(beta) * C[i + j * ldc]));
    }
}

TEST_F(Simt, HostCublasIsColumnMajorWithTransposesStridesAndBeta) {
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cublasHandle_t h;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSetStream(h, s), CUBLAS_STATUS_SUCCESS);
  const int m = 5, n = 3, k = 4, lda = 7, ldb = 6, ldc = 8, batch = 3;
  const long long sA = lda * 7, sB = ldb * 6, sC = ldc * 3 + 2;
  Dev A(sA * batch), B(sB * batch), C(sC * batch);
  std::vector<float> ha(A.n), hb(B.n), hc(C.n);
  for (std::size_t i = 0; i < ha.size(); ++i) ha[i] = float((i * 7) % 11) - 5.f;
  for (std::size_t i = 0; i < hb.size(); ++i) hb[i] = float((i * 5) % 9) - 4.f;
  A.put(ha);
  B.put(hb);
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (float beta : {0.f, 0.5f}) {
        for (std::size_t i = 0; i < hc.size(); ++i) hc[i] = beta == 0.f ? NAN : float(i % 3);  // NaN C must not be read at beta 0
        C.put(hc);
        const float alpha = 1.5f;
        ASSERT_EQ(cublasSgemmStridedBatched(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha,
                                            A.p, lda, sA, B.p, ldb, sB, &beta, C.p, ldc, sC, batch),
                  CUBLAS_STATUS_SUCCESS);
        ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
        const std::vector<float> got = C.get();
        std::vector<float> expect = hc;
        for (int r = 0; r < batch; ++r)
          reference_gemm(ta, tb, m, n, k, alpha, ha.data() + r * sA, lda, hb.data() + r * sB, ldb, beta, expect.data() + r * sC, ldc);
        for (int r = 0; r < batch; ++r)
          for (int j = 0; j < n; ++j)
            for (int i = 0; i < m; ++i) {
              const std::size_t at = r * sC + i + j * ldc;
              EXPECT_FLOAT_EQ(got[at], expect[at]) << ta << tb << beta;
            }
      }
  // An operand whose strided extent leaves its allocation is refused.
  const float one = 1.f, zero = 0.f;
  cublasStatus_t st = cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A.p, lda, sA, B.p, ldb, sB, &zero,
                                                C.p, ldc, sC, batch + 1);
  EXPECT_EQ(st, CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(cublasGetStatusString(st)).find("outside its device allocation"), std::string::npos);
  // Captured into a graph after cublasSetStream reset the workspace: refused, with the reason.
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  st = cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A.p, lda, sA, B.p, ldb, sB, &zero, C.p, ldc, sC, batch);
  EXPECT_EQ(st, CUBLAS_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(cublasGetStatusString(st)).find("cublasSetStream (which resets it)"), std::string::npos);
  cudaGraph_t g;
  cudaStreamEndCapture(s, &g);
  cudaGraphDestroy(g);
  Dev workspace(1 << 16);
  ASSERT_EQ(cublasSetWorkspace(h, workspace.p, workspace.n * sizeof(float)), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_EQ(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A.p, lda, sA, B.p, ldb, sB, &zero, C.p, ldc, sC, batch),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaStreamEndCapture(s, &g), cudaSuccess);
  cudaGraphDestroy(g);
  cublasDestroy(h);
  cudaStreamDestroy(s);
}

// The tiled GEMM at the edges of the grid: more than 65,535 replicas (grid.z), and more than
// 65,535 row tiles (grid.y), both launched in pieces; every output checked.
TEST_F(Simt, TiledGemmSplitsLaunchesBeyondTheGrid) {
  using dalesim::cuda::Gemm;
  using dalesim::cuda::GemmKernel;
  const Gemm gemm(GemmKernel::v1_tiled, nullptr);
  {
    const int R = 65535 + 3;
    Dev a(R), b(R), c(R);
    std::vector<float> ha(R), hb(R);
    for (int r = 0; r < R; ++r) {
      ha[r] = float(r % 251);
      hb[r] = float(r % 7) - 3.f;
    }
    a.put(ha);
    b.put(hb);
    gemm.batched(R, 1, 1, 1, 1.f, {a.p, 1, 1, false}, {b.p, 1, 1, false}, 0.f, {c.p, 1, 1});
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> got = c.get();
    for (int r = 0; r < R; ++r) ASSERT_EQ(got[r], ha[r] * hb[r]) << "replica " << r;
  }
  {
    const int M = 65535 * 32 + 40;  // rows of op(A) = A^T stored [1, M]
    Dev a(M), b(1), c(M);
    std::vector<float> ha(M);
    for (int i = 0; i < M; ++i) ha[i] = float(i % 1009);
    a.put(ha);
    b.put({2.f});
    gemm.batched(1, M, 1, 1, 1.f, {a.p, M, 0, true}, {b.p, 1, 0, false}, 0.f, {c.p, 1, 0});
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> got = c.get();
    for (int i = 0; i < M; ++i) ASSERT_EQ(got[i], 2.f * ha[i]) << "row " << i;
  }
}

#if defined(__SANITIZE_ADDRESS__)
__global__ void planted_overflow_kernel(float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = 1.f;  // <= : one past the end
}

// Out-of-bounds device accesses: caught by AddressSanitizer in the ASan build of these tests; the
// runtime adds which kernel, block and thread was running.
TEST_F(Simt, PlantedOutOfBoundsWriteIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        float* d = nullptr;
        cudaMalloc(&d, 100 * sizeof(float));
        dalesim::simt::launch("planted_overflow_kernel", planted_overflow_kernel, dim3(4), dim3(32), 0, nullptr, d, 100);
        cudaDeviceSynchronize();
      },
      "heap-buffer-overflow(.|\n)*raised by kernel planted_overflow_kernel block \\(3,0,0\\) thread \\(4,0,0\\)");
}
#endif

}  // namespace
