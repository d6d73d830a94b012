// The fused elementwise and per-replica reduction kernels of one training iteration. Products go
// through gemm.cuh; everything else is here, mirroring src/cpu/replica_trainer.cpp step by step.
#pragma once

#include <cuda_runtime.h>

#include "cuda/bucket.cuh"

namespace dalesim::cuda {

// W_eff[:, j] = (alpha_j dale_weight(W_dale) + (1 - alpha_j) W_free) * mask, masked W_in and W_out,
// alpha_j per replica and column.
// For a DANN part it writes dale_eff = W_ee * mask instead of W_eff: the caller subtracts the
// products W_ei W_ie (and U_ei U_ie from W_in_eff), then calls launch_combine_dale_part.
void launch_build_effective(const BucketView& v, cudaStream_t s);
// W_eff = alpha dale_eff + (1 - alpha) W_free * mask (DANN part only).
void launch_combine_dale_part(const BucketView& v, cudaStream_t s);
// x[r] = x_streams[stream_of[r]]: per-replica inputs for the strided products.
void launch_gather_inputs(const BucketView& v, cudaStream_t s);
// v_t = (1 - a) v_{t-1} + a (u_t + b + noise_t); r_t = phi(v_t). On entry v_t holds u_t without b.
void launch_forward_step(const BucketView& v, int t, cudaStream_t s);
// z += b_out; loss, accuracy and mean rate per replica; with `need_grad`, e = dL/dz.
void launch_loss(const BucketView& v, bool need_grad, bool evaluating, cudaStream_t s);
// dr += 2 c r / (T B N): the firing-rate cost's gradient (train.l2_firing_rate = c).
void launch_rate_cost_grad(const BucketView& v, cudaStream_t s);
// dW_in and dW_out (effective, before masks and the U products) += the input and readout costs'
// gradients (c1 sign(w) + 2 c2 w) / n.
void launch_io_cost_grads(const BucketView& v, cudaStream_t s);
// g_t = a (phi'(v_t) dr_t + (1 - a)/a g_{t+1}); on entry dr_t holds W_out^T e_t + W^T g_{t+1}.
void launch_backward_step(const BucketView& v, int t, cudaStream_t s);
// db = sum_t,b g; db_out = sum_t,b e (fixed summation order).
void launch_bias_grads(const BucketView& v, cudaStream_t s);
// dW_dale, dW_free, d a from dW_eff (and d_dale = alpha dW_eff for a DANN part), with the
// recurrent and free costs' gradients; masks applied to dW_in and dW_out.
void launch_param_grads(const BucketView& v, cudaStream_t s);
// DANN Fisher correction, global gradient norm, divergence, clip scale, optimiser step counters.
void launch_norm_and_clip(const BucketView& v, cudaStream_t s);
// The step of train.rule (SGD / Adam for gd and gd_sign, eg, md; weight decay) and constraints
// (Dale projection, non-negative DANN factors, input sign, masks) for live replicas.
void launch_optimizer(const BucketView& v, cudaStream_t s);
// Marks a live replica whose parameters are no longer finite as diverged at this iteration.
void launch_nonfinite_check(const BucketView& v, cudaStream_t s);
// Fraction of columns of W_eff holding both signs.
void launch_dale_violation(const BucketView& v, bool evaluating, cudaStream_t s);

}  // namespace dalesim::cuda
