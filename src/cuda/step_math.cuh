// The elementwise parts of a forward and a backward time step, shared by the per-step kernels (v1,
// step_kernels.cu) and the persistent recurrent loops (v2, recurrent_v2.cu), so both run the same
// arithmetic on the same operands.
#pragma once

#include "cuda/bucket.cuh"
#include "dalesim/config.hpp"
#include "dalesim/math.hpp"
#include "dalesim/rng.hpp"

namespace dalesim::cuda {

// Unit i of trial b (k = b N + i) of replica r at step t, given the drive without bias
// u = (x_t W_in^T + r_{t-1} W^T)[b, i]: writes v_t = (1 - a) v_{t-1} + a (u + b + noise_t) and
// r_t = phi(v_t).
__device__ __forceinline__ void forward_unit(const BucketView& v, int r, int t, long long k, float u) {
  const long long bn = static_cast<long long>(v.B) * v.N;
  const int i = static_cast<int>(k % v.N);
  const long long base = static_cast<long long>(r) * v.T * bn;
  const float* p = v.params + static_cast<long long>(r) * v.P;
  // Effective bias as on the CPU: b (+ b_neg when the biases are split), then added to the drive.
  const float bias = v.off_bneg >= 0 ? p[v.off_b + i] + p[v.off_bneg + i] : p[v.off_b + i];
  float drive = u + bias;
  if (v.noisy[r]) {
    const CounterRng noise{mix_key(v.noise_seed[r], static_cast<unsigned long long>(*v.iteration)), 0};
    drive += static_cast<float>(v.noise_std[r * v.N + i] * noise.normal(t * bn + k));
  }
  const float a = v.leak[r * v.N + i];
  const float v_prev = t > 0 ? v.v[base + (t - 1) * bn + k] : 0.f;
  const float vt = (1.f - a) * v_prev + a * drive;
  v.v[base + t * bn + k] = vt;
  v.r[base + t * bn + k] = phi_apply(static_cast<Phi>(v.phi[r]), vt);
}

// The same unit in the backward pass, given dr = (e_t W_out + g_{t+1} W)[b, i] (+ the rate cost's
// gradient): returns g_t = a (phi'(v_t) dr + (1 - a)/a g_{t+1}).
__device__ __forceinline__ float backward_unit(const BucketView& v, int r, int t, long long k, float dr) {
  const long long bn = static_cast<long long>(v.B) * v.N;
  const int i = static_cast<int>(k % v.N);
  const long long at = static_cast<long long>(r) * v.T * bn + t * bn + k;
  const float a = v.leak[r * v.N + i];
  float dv = phi_grad(static_cast<Phi>(v.phi[r]), v.v[at], v.r[at]) * dr;
  if (t < v.T - 1) dv += (1.f - a) / a * v.g[at + bn];
  return a * dv;
}

}  // namespace dalesim::cuda
