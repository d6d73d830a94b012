// Replica-batched GEMM: C[r] = alpha * op(A[r]) op(B[r]) + beta * C[r] for r in [0, R), row-major.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>

namespace dalesim::cuda {

// One operand of a batched product: base pointer, leading dimension, stride between replicas.
struct MatView {
  const float* ptr;
  int ld;
  long long stride;
  bool trans;  // use the transpose of the stored matrix
};

struct OutView {
  float* ptr;
  int ld;
  long long stride;
};

enum class GemmKernel {
  v1_tiled,        // own 32x32-tile kernel: each output summed by one thread in fixed k order, so a
                   // replica's result never depends on how many replicas are batched with it
  v2_cublas,       // cublasSgemmStridedBatched (pedantic FP32); faster at large N, but cuBLAS may pick
                   // a different algorithm for a different batch count
};

// The products of one stream. For cuBLAS it owns a handle of its own, bound to the stream once,
// with a fixed workspace set after the stream (cublasSetStream resets the workspace): no
// allocation inside a captured graph, and no handle or workspace shared by concurrently replaying
// streams (which would void cuBLAS's run-to-run reproducibility). Create it before any capture.
class Gemm {
 public:
  Gemm(GemmKernel kernel, cudaStream_t stream);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // M x N output per replica, inner dimension K; launches split where R or M exceed the grid.
  void batched(int R, int M, int N, int K, float alpha, MatView a, MatView b, float beta, OutView c) const;
  GemmKernel kernel() const { return kernel_; }

 private:
  GemmKernel kernel_;
  cudaStream_t stream_;
  cublasHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace dalesim::cuda
