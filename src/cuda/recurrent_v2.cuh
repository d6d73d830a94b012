// v2, the persistent recurrent loops: one launch runs all T steps of the forward (or backward) pass
// for a block of replicas, with each replica's effective W_rec staged once in shared memory and used
// for r_{t-1} W^T (forward) and g_{t+1} W (backward) at every step. Everything else of the
// iteration (build_effective, the input and readout products, loss, the weight-gradient products,
// clip and optimiser) is v1's, unchanged.
#pragma once

#include <cuda_runtime.h>

#include "cuda/bucket.cuh"
#include "cuda/dispatch.hpp"

namespace dalesim::cuda {

// Sets the kernels' dynamic shared memory limit for `plan` (before any capture).
void prepare_recurrent_v2(const KernelPlan& plan);
// On entry v holds u = x W_in^T for every step; leaves v and r of every step, as the v1 loop of
// products and forward_step launches does.
void launch_forward_loop_v2(const BucketView& v, const KernelPlan& plan, cudaStream_t s);
// On entry dr holds e W_out (+ the rate cost's gradient); leaves dr (with g_{t+1} W added) and g of
// every step, as the v1 loop of products and backward_step launches does.
void launch_backward_loop_v2(const BucketView& v, const KernelPlan& plan, cudaStream_t s);

}  // namespace dalesim::cuda
