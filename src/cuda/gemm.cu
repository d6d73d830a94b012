// Replica-batched GEMM kernels: the deterministic tiled baseline (v1) and cuBLAS (v2).
#include <cublas_v2.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda/cuda_check.hpp"
#include "cuda/gemm.cuh"
#include "cuda/launch.cuh"

namespace dalesim::cuda {

namespace {

constexpr int kTile = 32;
constexpr int kRowsPerThread = 4;  // a 32x8 thread block computes a 32x32 tile, 4 outputs per thread

__device__ __forceinline__ float load(const MatView& m, long long base, int row, int col, int rows, int cols) {
  // Logical element (row, col) of op(m), which is rows x cols; zero outside.
  if (row >= rows || col >= cols) return 0.f;
  return m.trans ? m.ptr[base + static_cast<long long>(col) * m.ld + row]
                 : m.ptr[base + static_cast<long long>(row) * m.ld + col];
}

__global__ void gemm_batched_kernel_v1(int M, int N, int K, float alpha, MatView a, MatView b, float beta,
                                       OutView c) {
  __shared__ float as[kTile][kTile + 1];
  __shared__ float bs[kTile][kTile + 1];
  const int r = blockIdx.z;
  const long long a_base = a.stride * r, b_base = b.stride * r, c_base = c.stride * r;
  const int row0 = blockIdx.y * kTile, col0 = blockIdx.x * kTile;
  const int tx = threadIdx.x, ty = threadIdx.y;  // 32 x 8
  float acc[kRowsPerThread] = {0.f, 0.f, 0.f, 0.f};
  for (int k0 = 0; k0 < K; k0 += kTile) {
    for (int i = 0; i < kRowsPerThread; ++i) {
      const int rr = ty + 8 * i;
      as[rr][tx] = load(a, a_base, row0 + rr, k0 + tx, M, K);
      bs[rr][tx] = load(b, b_base, k0 + rr, col0 + tx, K, N);
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < kTile; ++k) {
      const float bv = bs[k][tx];
      for (int i = 0; i < kRowsPerThread; ++i) acc[i] = fmaf(as[ty + 8 * i][k], bv, acc[i]);
    }
    __syncthreads();
  }
  const int col = col0 + tx;
  if (col >= N) return;
  for (int i = 0; i < kRowsPerThread; ++i) {
    const int row = row0 + ty + 8 * i;
    if (row >= M) continue;
    float* out = c.ptr + c_base + static_cast<long long>(row) * c.ld + col;
    *out = beta == 0.f ? alpha * acc[i] : alpha * acc[i] + beta * *out;
  }
}

void check_cublas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + " failed: " + cublasGetStatusName(st) + ": " + cublasGetStatusString(st));
}

// Grid limits of sm_90 that the tiled kernel's launch must respect: grid.y (row tiles) and grid.z
// (replicas) at most 65,535 each; larger products are launched in pieces.
constexpr long long kMaxGridYZ = 65535;

}  // namespace

Gemm::Gemm(GemmKernel kernel, cudaStream_t stream) : kernel_(kernel), stream_(stream) {
  if (kernel_ != GemmKernel::v2_cublas) return;
  check_cublas(cublasCreate(&handle_), "cublasCreate");
  // Strict FP32: no TF32 tensor-core rounding.
  check_cublas(cublasSetMathMode(handle_, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
  check_cublas(cublasSetStream(handle_, stream_), "cublasSetStream");
  const std::size_t bytes = 32u << 20;
  DALESIM_CUDA_CHECK(cudaMalloc(&workspace_, bytes));
  check_cublas(cublasSetWorkspace(handle_, workspace_, bytes), "cublasSetWorkspace");  // after the stream
}

Gemm::~Gemm() {
  if (handle_) cublasDestroy(handle_);
  if (workspace_) cudaFree(workspace_);
}

void Gemm::batched(int R, int M, int N, int K, float alpha, MatView a, MatView b, float beta, OutView c) const {
  if (R == 0 || M == 0 || N == 0) return;
  // Replicas in pieces of at most 65,535 (grid.z; cuBLAS's batch count likewise).
  if (R > kMaxGridYZ) {
    for (long long r0 = 0; r0 < R; r0 += kMaxGridYZ) {
      const int n = static_cast<int>(std::min<long long>(kMaxGridYZ, R - r0));
      MatView ai = a, bi = b;
      OutView ci = c;
      ai.ptr += r0 * a.stride;
      bi.ptr += r0 * b.stride;
      ci.ptr += r0 * c.stride;
      batched(n, M, N, K, alpha, ai, bi, beta, ci);
    }
    return;
  }
  if (kernel_ == GemmKernel::v2_cublas) {
    // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
    const cublasStatus_t st = cublasSgemmStridedBatched(
        handle_, b.trans ? CUBLAS_OP_T : CUBLAS_OP_N, a.trans ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, b.ptr, b.ld,
        b.stride, a.ptr, a.ld, a.stride, &beta, c.ptr, c.ld, c.stride, R);
    check_cublas(st, "cublasSgemmStridedBatched");
    return;
  }
  // Rows in pieces of at most 65,535 tiles (grid.y): row i of op(A) is row i of A, or column i.
  const long long max_rows = kMaxGridYZ * kTile;
  for (long long row0 = 0; row0 < M; row0 += max_rows) {
    const int rows = static_cast<int>(std::min<long long>(max_rows, M - row0));
    MatView ai = a;
    OutView ci = c;
    ai.ptr += a.trans ? row0 : row0 * a.ld;
    ci.ptr += row0 * c.ld;
    const dim3 block(kTile, 8);
    const dim3 grid((N + kTile - 1) / kTile, (rows + kTile - 1) / kTile, R);
    DALESIM_LAUNCH(gemm_batched_kernel_v1, grid, block, 0, stream_, rows, N, K, alpha, ai, b, beta, ci);
  }
}

}  // namespace dalesim::cuda
