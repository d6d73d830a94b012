// Replica-batched GEMM: C[r] = alpha * op(A[r]) op(B[r]) + beta * C[r] for r in [0, R), row-major.
#pragma once

#include <cuda_runtime.h>

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

// Creates what a kernel needs before any stream capture: cuBLAS's handle and a fixed workspace
// (cuBLAS must not allocate while a CUDA graph is being captured).
void prepare_gemm(GemmKernel kernel);

// M x N output per replica, inner dimension K.
void launch_gemm_batched(GemmKernel kernel, int R, int M, int N, int K, float alpha, MatView a, MatView b,
                         float beta, OutView c, cudaStream_t stream);

}  // namespace dalesim::cuda
