// The persistent recurrent loops (v2): W_rec on chip for all T steps, one block per replica (or
// several small replicas per block). Each output is summed by one thread in the order of v1's tiled
// product (fmaf over the inner index, then added to what the output held), so with the tiled
// products v2's numbers equal v1's bit for bit (tested on the host).
#include "cuda/cuda_check.hpp"
#include "cuda/launch.cuh"
#include "cuda/recurrent_v2.cuh"
#include "cuda/step_math.cuh"
#ifdef DALESIM_SIMT_HOST
#include "cuda/simt/runtime.hpp"
#endif

namespace dalesim::cuda {

namespace {

__device__ __forceinline__ float* shared_floats() {
#ifdef DALESIM_SIMT_HOST
  return static_cast<float*>(simt::dynamic_shared_memory());
#else
  extern __shared__ float shared_dynamic[];
  return shared_dynamic;
#endif
}

// This block's replicas r0 .. r0 + n_here - 1, their W_eff staged in shared memory as w_s[q] =
// W_eff of replica r0 + q, rows padded to N + 1: [n_here, N, N + 1].
struct BlockReplicas {
  int r0, n_here;
  float* w_s;
};

__device__ BlockReplicas stage_block(const BucketView& v, int per_block) {
  const int r0 = blockIdx.x * per_block, n_here = per_block < v.R - r0 ? per_block : v.R - r0;
  float* w_s = shared_floats();
  const int N = v.N, ld = N + 1;
  const long long nn = static_cast<long long>(N) * N;
  for (long long k = threadIdx.x; k < n_here * nn; k += blockDim.x) {
    const int q = static_cast<int>(k / nn);
    const long long e = k % nn;
    w_s[q * N * ld + (e / N) * ld + e % N] = v.w_eff[(r0 + q) * nn + e];
  }
  __syncthreads();
  return {r0, n_here, w_s};
}

// Grid: one block per `per_block` replicas. Every thread passes every barrier (no early return).
__global__ void forward_loop_kernel_v2(BucketView v, int per_block) {
  const auto [r0, n_here, w_s] = stage_block(v, per_block);
  const int N = v.N, ld = N + 1;
  const long long bn = static_cast<long long>(v.B) * N;
  for (int t = 0; t < v.T; ++t) {
    for (long long idx = threadIdx.x; idx < n_here * bn; idx += blockDim.x) {
      const int q = static_cast<int>(idx / bn), r = r0 + q;
      const long long k = idx % bn, b = k / N, i = k % N;
      const long long base = static_cast<long long>(r) * v.T * bn;
      float u = v.v[base + t * bn + k];  // x_t W_in^T
      if (t > 0) {  // + r_{t-1} W^T: sum over j of r_{t-1}[b, j] W[i, j]
        const float* r_prev = v.r + base + (t - 1) * bn + b * N;
        const float* w_row = w_s + q * N * ld + i * ld;
        float acc = 0.f;
        for (int j = 0; j < N; ++j) acc = fmaf(r_prev[j], w_row[j], acc);
        u = acc + u;
      }
      forward_unit(v, r, t, k, u);
    }
    __syncthreads();  // r_t is read by every thread of its replica at t + 1
  }
}

__global__ void backward_loop_kernel_v2(BucketView v, int per_block) {
  const auto [r0, n_here, w_s] = stage_block(v, per_block);
  const int N = v.N, ld = N + 1;
  const long long bn = static_cast<long long>(v.B) * N;
  for (int t = v.T - 1; t >= 0; --t) {
    for (long long idx = threadIdx.x; idx < n_here * bn; idx += blockDim.x) {
      const int q = static_cast<int>(idx / bn), r = r0 + q;
      const long long k = idx % bn, b = k / N, j = k % N;
      const long long base = static_cast<long long>(r) * v.T * bn, at = base + t * bn + k;
      float dr = v.dr[at];  // e_t W_out (+ the rate cost's gradient)
      if (t < v.T - 1) {  // + g_{t+1} W: sum over i of g_{t+1}[b, i] W[i, j], the transpose from the same copy
        const float* g_next = v.g + base + (t + 1) * bn + b * N;
        const float* w_col = w_s + q * N * ld + j;
        float acc = 0.f;
        for (int i = 0; i < N; ++i) acc = fmaf(g_next[i], w_col[i * ld], acc);
        dr = acc + dr;
        v.dr[at] = dr;
      }
      v.g[at] = backward_unit(v, r, t, k, dr);
    }
    __syncthreads();  // g_t is read by every thread of its replica at t - 1
  }
}

int blocks_of(const BucketView& v, const KernelPlan& plan) {
  return (v.R + plan.replicas_per_block - 1) / plan.replicas_per_block;
}

}  // namespace

void prepare_recurrent_v2(const KernelPlan& plan) {
  if (plan.shared_bytes <= kSharedDefaultBytes) return;
  const int bytes = static_cast<int>(plan.shared_bytes);
  DALESIM_CUDA_CHECK(cudaFuncSetAttribute(forward_loop_kernel_v2, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  DALESIM_CUDA_CHECK(cudaFuncSetAttribute(backward_loop_kernel_v2, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

void launch_forward_loop_v2(const BucketView& v, const KernelPlan& plan, cudaStream_t s) {
  DALESIM_LAUNCH(forward_loop_kernel_v2, blocks_of(v, plan), plan.threads, plan.shared_bytes, s, v,
                 plan.replicas_per_block);
}

void launch_backward_loop_v2(const BucketView& v, const KernelPlan& plan, cudaStream_t s) {
  DALESIM_LAUNCH(backward_loop_kernel_v2, blocks_of(v, plan), plan.threads, plan.shared_bytes, s, v,
                 plan.replicas_per_block);
}

}  // namespace dalesim::cuda
