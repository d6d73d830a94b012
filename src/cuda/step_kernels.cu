// Elementwise and per-replica kernels of an iteration. Reductions are one block per replica with a
// fixed thread count and CUB's fixed-order block reduction, in double: the result never depends on how many replicas
// share the launch, and never uses atomics, so runs repeat bitwise.
#include <cmath>

#include "cuda/block_reduce.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/launch.cuh"
#include "cuda/step_kernels.cuh"
#include "cuda/step_math.cuh"
#include "dalesim/config.hpp"
#include "dalesim/history.hpp"
#include "dalesim/math.hpp"
#include "dalesim/rng.hpp"
#include "dalesim/task.hpp"
#include "cuda/update_rule.cuh"

namespace dalesim::cuda {

namespace {

constexpr int kThreads = 256;

using BlockReduce = cuda::BlockReduce<double, kThreads>;

// Sum over the block of one double per thread, returned to every thread. CUB's block reduction
// has a fixed order for a fixed block size: deterministic, independent of the replica count.
__device__ double block_sum(double x, BlockReduce::TempStorage& temp) {
  __shared__ double total;
  const double sum = BlockReduce(temp).Sum(x);
  if (threadIdx.x == 0) total = sum;
  __syncthreads();
  const double out = total;
  __syncthreads();  // temp and total are reused by the next call
  return out;
}

__device__ bool frozen(const BucketView& v, int r, bool evaluating) {
  const long long d = v.diverged_step[r];
  return d >= 0 && (evaluating || d < *v.iteration);
}

int blocks_for(long long n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

__global__ void build_effective_kernel_v1(BucketView v) {
  const long long per = static_cast<long long>(v.N) * v.N + static_cast<long long>(v.N) * v.I +
                        static_cast<long long>(v.O) * v.N;
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (idx >= per * v.R) return;
  const int r = static_cast<int>(idx / per);
  long long k = idx % per;
  const float* p = v.params + static_cast<long long>(r) * v.P;
  const long long nn = static_cast<long long>(v.N) * v.N;
  if (k < nn) {
    const int j = static_cast<int>(k % v.N);
    float al = 0.f;  // alpha_j of column j
    if (v.arch == static_cast<int>(Arch::colei) || v.arch == static_cast<int>(Arch::dann)) al = 1.f;
    if (v.arch == static_cast<int>(Arch::mix)) al = alpha_of(p[v.off_a + (v.n_alpha > 1 ? j : 0)], v.alpha_clamp[r] != 0);
    if (k < v.N) v.alpha[static_cast<long long>(r) * v.N + k] = al;  // row 0: column k
    if (v.dann) {  // D starts as W_ee * mask; the products subtract W_ei W_ie, then combine
      v.dale_eff[r * nn + k] = p[v.off_wd + k] * v.mask_rec[r * nn + k];
      return;
    }
    float w = 0.f;
    if (v.off_wd >= 0)
      w += al * dale_weight(static_cast<DaleMode>(v.dale_mode[r]), p[v.off_wd + k], v.col_sign[r * v.N + j]);
    if (v.off_wf >= 0) w += (1.f - al) * p[v.off_wf + k];
    v.w_eff[r * nn + k] = w * v.mask_rec[r * nn + k];
    return;
  }
  k -= nn;
  const long long ni = static_cast<long long>(v.N) * v.I;
  if (k < ni) {
    v.w_in_eff[r * ni + k] = p[v.off_win + k] * v.mask_in[r * ni + k];
    return;
  }
  k -= ni;
  const long long on = static_cast<long long>(v.O) * v.N;
  v.w_out_eff[r * on + k] = p[v.off_wout + k] * v.mask_out[r * on + k];
}

// W = alpha D + (1 - alpha) W_free * mask for a DANN part, with D = W_ee * mask - W_ei W_ie already
// in dale_eff; the CPU's build_effective term by term.
__global__ void combine_dale_part_kernel_v1(BucketView v) {
  const long long nn = static_cast<long long>(v.N) * v.N;
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (idx >= nn * v.R) return;
  const int r = static_cast<int>(idx / nn);
  const long long k = idx % nn;
  const float al = v.alpha[static_cast<long long>(r) * v.N + k % v.N];
  float w = al * v.dale_eff[idx];
  if (v.off_wf >= 0) w += (1.f - al) * (v.params[static_cast<long long>(r) * v.P + v.off_wf + k] * v.mask_rec[idx]);
  v.w_eff[idx] = w;
}

__global__ void gather_inputs_kernel_v1(BucketView v) {
  const long long per = static_cast<long long>(v.T) * v.B * v.I;
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (idx >= per * v.R) return;
  const int r = static_cast<int>(idx / per);
  v.x[idx] = v.x_streams[static_cast<long long>(v.stream_of[r]) * per + idx % per];
}

__global__ void forward_step_kernel_v1(BucketView v, int t) {
  const long long bn = static_cast<long long>(v.B) * v.N;
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (idx >= bn * v.R) return;
  const int r = static_cast<int>(idx / bn);
  const long long k = idx % bn;  // b * N + i
  forward_unit(v, r, t, k, v.v[static_cast<long long>(r) * v.T * bn + t * bn + k]);
}

// One block per replica: z += b_out, the loss of the batch's form (masked MSE or softmax
// cross-entropy), accuracy and mean rate, then e = dL/dz. Mirrors the CPU's mse_loss, xent_loss
// and batch_accuracy, with the shared row functions of dalesim/math.hpp.
__global__ void loss_kernel_v1(BucketView v, bool need_grad, bool evaluating) {
  __shared__ BlockReduce::TempStorage shared;
  const int r = blockIdx.x, O = v.O;
  const long long tb = static_cast<long long>(v.T) * v.B, tbo = tb * O, tbn = tb * v.N;
  const int s = v.stream_of[r];
  const int* info = v.acc_streams + s * kStreamInfoCount;
  const bool mse = info[kLossKind] == static_cast<int>(LossKind::mse);
  float* z = v.z + r * tbo;
  const float* y = v.y_streams + s * tbo;
  const float* mask = v.mask_streams + s * tbo;
  const int* target = v.target_streams + s * tb;
  const float* p = v.params + static_cast<long long>(r) * v.P;
  for (long long k = threadIdx.x; k < tbo; k += kThreads) {
    const long long o = k % O;
    z[k] += v.off_boutneg >= 0 ? p[v.off_bout + o] + p[v.off_boutneg + o] : p[v.off_bout + o];
  }
  __syncthreads();  // a row's outputs were written by several threads
  double sum = 0, weight = 0, rate = 0;
  if (mse) {
    for (long long k = threadIdx.x; k < tbo; k += kThreads) {
      const double d = static_cast<double>(z[k]) - y[k];
      sum += mask[k] * d * d;
      weight += mask[k];
    }
  } else {
    for (long long row = threadIdx.x; row < tb; row += kThreads)
      if (target[row] >= 0) {
        sum += softmax_xent_row(z + row * O, O, target[row]);
        weight += 1;
      }
  }
  for (long long k = threadIdx.x; k < tbn; k += kThreads) rate += v.r[r * tbn + k];
  sum = block_sum(sum, shared);
  weight = fmax(block_sum(weight, shared), 1.0);
  rate = block_sum(rate, shared);
  // Accuracy: final-step form (acc_step >= 0, label per trial) or per-step form (acc_label).
  const int acc_step = info[kAccStep], acc_begin = info[kAccBegin], acc_end = info[kAccEnd];
  double correct = 0, counted = 0;
  if (acc_step >= 0) {
    for (int b = threadIdx.x; b < v.B; b += kThreads) {
      correct += argmax_row(z + (static_cast<long long>(acc_step) * v.B + b) * O, acc_begin, acc_end) ==
                 v.label_streams[static_cast<long long>(s) * v.B + b];
      counted += 1;
    }
  } else {
    const int* acc_label = v.acc_label_streams + s * tb;
    for (long long row = threadIdx.x; row < tb; row += kThreads)
      if (acc_label[row] >= 0) {
        correct += argmax_row(z + row * O, acc_begin, acc_end) == acc_label[row];
        counted += 1;
      }
  }
  correct = block_sum(correct, shared);
  counted = block_sum(counted, shared);
  // The costs' values, as the CPU's add_costs: coefficient x mean of |w| or w^2.
  double cost[kCostMetrics] = {};
  if (v.any_cost) {
    const long long nn = static_cast<long long>(v.N) * v.N, ni = static_cast<long long>(v.N) * v.I,
                    on = static_cast<long long>(O) * v.N;
    double sums[kCostMetrics] = {};  // l1, l2 of W_in, W_rec, W_out, the free part; rates^2
    for (long long k = threadIdx.x; k < ni; k += kThreads) {
      const double w = v.w_in_eff[r * ni + k];
      sums[0] += fabs(w), sums[1] += w * w;
    }
    for (long long k = threadIdx.x; k < nn; k += kThreads) {
      const double w = v.w_eff[r * nn + k];
      sums[2] += fabs(w), sums[3] += w * w;
    }
    for (long long k = threadIdx.x; k < on; k += kThreads) {
      const double w = v.w_out_eff[r * on + k];
      sums[4] += fabs(w), sums[5] += w * w;
    }
    if (v.off_wf >= 0)
      for (long long k = threadIdx.x; k < nn; k += kThreads) {
        const double al = v.alpha[static_cast<long long>(r) * v.N + k % v.N];
        const double f = (1 - al) * (static_cast<double>(p[v.off_wf + k]) * v.mask_rec[r * nn + k]);
        sums[6] += fabs(f), sums[7] += f * f;
      }
    for (long long k = threadIdx.x; k < tbn; k += kThreads) {
      const double x = v.r[r * tbn + k];
      sums[8] += x * x;
    }
    const double count[kCostMetrics] = {double(ni), double(ni), double(nn), double(nn), double(on), double(on),
                                        double(nn), double(nn), double(tbn)};
    for (int c = 0; c < kCostMetrics; ++c) {
      const double total = block_sum(sums[c], shared), coef = v.cost[c * v.R + r];
      cost[c] = coef != 0 ? coef * total / count[c] : 0.0;
    }
  }
  if (need_grad) {
    float* e = v.e + r * tbo;
    if (mse) {
      for (long long k = threadIdx.x; k < tbo; k += kThreads)
        e[k] = static_cast<float>(2.0 * mask[k] * (static_cast<double>(z[k]) - y[k]) / weight);
    } else {
      const float scale = static_cast<float>(1.0 / weight);
      for (long long row = threadIdx.x; row < tb; row += kThreads) {
        if (target[row] >= 0)
          softmax_xent_grad_row(z + row * O, O, target[row], scale, e + row * O);
        else
          for (int o = 0; o < O; ++o) e[row * O + o] = 0.f;
      }
    }
  }
  if (threadIdx.x == 0) {
    double* m = v.metrics + static_cast<long long>(r) * kMetricCount;
    const bool dead = frozen(v, r, evaluating);
    m[kLoss] = dead ? NAN : sum / weight;
    m[kAccuracy] = dead || counted == 0 ? NAN : correct / counted;
    m[kMeanRate] = dead ? NAN : rate / static_cast<double>(tbn);
    for (int c = 0; c < kCostMetrics; ++c) m[kCost0 + c] = dead ? NAN : cost[c];
    m[kAlpha] = m[kAlphaE] = m[kAlphaI] = NAN;
    if (v.arch == static_cast<int>(Arch::mix)) {  // mean alpha over all, E and I columns, as fill_alpha_metrics
      const float* al = v.alpha + static_cast<long long>(r) * v.N;
      double sum = 0, sum_e = 0, sum_i = 0;
      int n_e = 0, n_i = 0;
      for (int j = 0; j < v.N; ++j) {
        sum += al[j];
        if (v.col_sign[r * v.N + j] > 0) sum_e += al[j], ++n_e;
        else sum_i += al[j], ++n_i;
      }
      m[kAlpha] = v.n_alpha > 1 ? sum / v.N : static_cast<double>(al[0]);
      if (n_e) m[kAlphaE] = sum_e / n_e;
      if (n_i) m[kAlphaI] = sum_i / n_i;
    }
    m[kGradNorm] = NAN;
    v.mask_sum[r] = weight;
  }
}

__global__ void backward_step_kernel_v1(BucketView v, int t) {
  const long long bn = static_cast<long long>(v.B) * v.N;
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (idx >= bn * v.R) return;
  const int r = static_cast<int>(idx / bn);
  const long long k = idx % bn;
  const long long at = static_cast<long long>(r) * v.T * bn + t * bn + k;
  v.g[at] = backward_unit(v, r, t, k, v.dr[at]);
}

// One thread per (replica, unit or output): sums over time and batch in a fixed order.
__global__ void bias_grads_kernel_v1(BucketView v) {
  const int per = v.N + v.O;
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long long>(per) * v.R) return;
  const int r = static_cast<int>(idx / per), j = static_cast<int>(idx % per);
  const long long tb = static_cast<long long>(v.T) * v.B;
  float* grad = v.grad + static_cast<long long>(r) * v.P;
  float acc = 0.f;
  if (j < v.N) {
    const float* g = v.g + r * tb * v.N;
    for (long long k = 0; k < tb; ++k) acc += g[k * v.N + j];
    grad[v.off_b + j] = acc;
    if (v.off_bneg >= 0) grad[v.off_bneg + j] = acc;  // both parts of a split bias
  } else {
    const int o = j - v.N;
    const float* e = v.e + r * tb * v.O;
    for (long long k = 0; k < tb; ++k) acc += e[k * v.O + o];
    grad[v.off_bout + o] = acc;
    if (v.off_boutneg >= 0) grad[v.off_boutneg + o] = acc;
  }
}

// dL/d alpha_j's part from entry k of the recurrent matrix (and the free costs' gradient of W_free
// there, added to `g_free`): as the CPU's loop in loss_and_grad.
__device__ double alpha_part(const BucketView& v, int r, long long k, float dw_eff, float* g_free) {
  const long long nn = static_cast<long long>(v.N) * v.N;
  const int j = static_cast<int>(k % v.N);
  const float* p = v.params + static_cast<long long>(r) * v.P;
  const float mask = v.mask_rec[r * nn + k], al = v.alpha[static_cast<long long>(r) * v.N + j];
  double c = 0;
  if (v.off_wd >= 0 && v.off_wf >= 0) {
    const float dale = v.dann ? v.dale_eff[r * nn + k]
                              : dale_weight(static_cast<DaleMode>(v.dale_mode[r]), p[v.off_wd + k],
                                            v.col_sign[r * v.N + j]) * mask;
    c = static_cast<double>(dw_eff) * (static_cast<double>(dale) - static_cast<double>(p[v.off_wf + k]) * mask);
  }
  const double l1 = v.cost[static_cast<int>(Cost::l1_free) * v.R + r], l2 = v.cost[static_cast<int>(Cost::l2_free) * v.R + r];
  if ((l1 != 0 || l2 != 0) && v.off_wf >= 0) {
    // F = (1 - alpha_j) W_free * mask: dC/dW_free = dC/dF (1 - alpha_j) mask, dC/d alpha_j = -dC/dF W_free mask.
    const double wm = static_cast<double>(p[v.off_wf + k]) * mask, f = (1 - static_cast<double>(al)) * wm;
    const double dc_df = (l1 * (f > 0 ? 1.0 : (f < 0 ? -1.0 : 0.0)) + 2 * l2 * f) / static_cast<double>(nn);
    if (g_free) *g_free += static_cast<float>(dc_df * (1 - static_cast<double>(al)) * mask);
    c -= dc_df * wm;
  }
  return c;
}

// One block per replica: recurrent gradients and d alpha (fixed-order reductions). As the CPU:
// dW_eff += the recurrent costs' gradient; dD = alpha_j dW (kept in d_dale for the DANN factors'
// products), dW_dale = alpha_j dW * mask * dale_weight', dW_free = (1 - alpha_j) dW * mask (+ the
// free costs' part), d alpha_j = sum_i dW (D - W_free * mask) (+ the free costs' part).
__global__ void param_grads_kernel_v1(BucketView v) {
  __shared__ BlockReduce::TempStorage shared;
  const int r = blockIdx.x;
  const long long nn = static_cast<long long>(v.N) * v.N;
  const float* p = v.params + static_cast<long long>(r) * v.P;
  float* grad = v.grad + static_cast<long long>(r) * v.P;
  const double l1_rec = v.cost[static_cast<int>(Cost::l1_rec) * v.R + r];
  const double l2_rec = v.cost[static_cast<int>(Cost::l2_rec) * v.R + r];
  const DaleMode mode = static_cast<DaleMode>(v.dale_mode[r]);
  double d_alpha = 0;
  for (long long k = threadIdx.x; k < nn; k += kThreads) {
    const int j = static_cast<int>(k % v.N);
    const float mask = v.mask_rec[r * nn + k], al = v.alpha[static_cast<long long>(r) * v.N + j];
    float dw_eff = v.d_w_eff[r * nn + k];
    if (l1_rec != 0 || l2_rec != 0) {
      const double w = v.w_eff[r * nn + k], sign = w > 0 ? 1.0 : (w < 0 ? -1.0 : 0.0);
      dw_eff += static_cast<float>((l1_rec * sign + 2 * l2_rec * w) / static_cast<double>(nn));
      v.d_w_eff[r * nn + k] = dw_eff;
    }
    const float dw = dw_eff * mask;
    if (v.dann) v.d_dale[r * nn + k] = al * dw_eff;
    if (v.off_wd >= 0) grad[v.off_wd + k] = al * dw * dale_weight_grad(mode, p[v.off_wd + k], v.col_sign[r * v.N + j]);
    float g_free = (1.f - al) * dw;
    d_alpha += alpha_part(v, r, k, dw_eff, &g_free);
    if (v.off_wf >= 0) grad[v.off_wf + k] = g_free;
  }
  const long long ni = static_cast<long long>(v.N) * v.I, on = static_cast<long long>(v.O) * v.N;
  for (long long k = threadIdx.x; k < ni; k += kThreads) grad[v.off_win + k] *= v.mask_in[r * ni + k];
  for (long long k = threadIdx.x; k < on; k += kThreads) grad[v.off_wout + k] *= v.mask_out[r * on + k];
  d_alpha = block_sum(d_alpha, shared);  // also orders the d_w_eff writes before the column sums
  if (v.off_a < 0) return;
  const bool clamp_form = v.alpha_clamp[r] != 0;
  const float* al = v.alpha + static_cast<long long>(r) * v.N;
  if (v.n_alpha == 1) {
    if (threadIdx.x == 0) grad[v.off_a] = static_cast<float>(d_alpha * alpha_slope(static_cast<double>(al[0]), clamp_form));
    return;
  }
  // Per neuron: column j's sum over rows i in order, as the CPU's d_alpha_col_.
  for (int j = threadIdx.x; j < v.N; j += kThreads) {
    double sum = 0;
    for (int i = 0; i < v.N; ++i) {
      const long long k = static_cast<long long>(i) * v.N + j;
      sum += alpha_part(v, r, k, v.d_w_eff[r * nn + k], nullptr);
    }
    grad[v.off_a + j] = static_cast<float>(sum * alpha_slope(static_cast<double>(al[j]), clamp_form));
  }
}

__global__ void rate_cost_grad_kernel_v1(BucketView v) {
  const long long tbn = static_cast<long long>(v.T) * v.B * v.N;
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (idx >= tbn * v.R) return;
  const int r = static_cast<int>(idx / tbn);
  const double c = v.cost[static_cast<int>(Cost::l2_firing_rate) * v.R + r];
  if (c != 0) v.dr[idx] += static_cast<float>(2 * c * v.r[idx] / static_cast<double>(tbn));
}

__global__ void io_cost_grads_kernel_v1(BucketView v) {
  const long long ni = static_cast<long long>(v.N) * v.I, on = static_cast<long long>(v.O) * v.N, per = ni + on;
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (idx >= per * v.R) return;
  const int r = static_cast<int>(idx / per);
  const long long k = idx % per;
  const bool input = k < ni;
  const double l1 = v.cost[static_cast<int>(input ? Cost::l1_in : Cost::l1_out) * v.R + r];
  const double l2 = v.cost[static_cast<int>(input ? Cost::l2_in : Cost::l2_out) * v.R + r];
  if (l1 == 0 && l2 == 0) return;
  const double w = input ? v.w_in_eff[r * ni + k] : v.w_out_eff[r * on + (k - ni)];
  const double sign = w > 0 ? 1.0 : (w < 0 ? -1.0 : 0.0);
  float* g = v.grad + static_cast<long long>(r) * v.P + (input ? v.off_win + k : v.off_wout + (k - ni));
  *g += static_cast<float>((l1 * sign + 2 * l2 * w) / static_cast<double>(input ? ni : on));
}

// The divisor of the DANN Fisher correction for parameter k (0: none), as correct_dann_gradients.
__device__ float fisher_divisor(const BucketView& v, long long k) {
  const long long n_i = v.n_i, n_i_in = v.n_i_in, N = v.N, I = v.I;
  if (v.off_wie >= 0 && k >= v.off_wie && k < v.off_wie + n_i * N) return v.fisher_wie;
  if (v.off_wei >= 0 && k >= v.off_wei && k < v.off_wei + N * n_i) return v.fisher_wei;
  if (v.off_uie >= 0 && k >= v.off_uie && k < v.off_uie + n_i_in * I) return v.fisher_uie;
  if (v.off_uei >= 0 && k >= v.off_uei && k < v.off_uei + N * n_i_in) return v.fisher_uei;
  return 0.f;
}

// Whether parameter k lies in one of the DANN factors W_ei [N, n_i], W_ie [n_i, N], U_ei [N, n_i_in],
// U_ie [n_i_in, I]. By range, not by position: EG's split biases are stored after them.
__device__ bool in_dann_factor(const BucketView& v, long long k) {
  if (!v.dann) return false;
  const long long n_i = v.n_i, n_i_in = v.n_i_in, N = v.N, I = v.I;
  return (v.off_wei >= 0 && k >= v.off_wei && k < v.off_wei + N * n_i) ||
         (v.off_wie >= 0 && k >= v.off_wie && k < v.off_wie + n_i * N) ||
         (v.off_uei >= 0 && k >= v.off_uei && k < v.off_uei + N * n_i_in) ||
         (v.off_uie >= 0 && k >= v.off_uie && k < v.off_uie + n_i_in * I);
}

// One block per replica: the DANN Fisher correction of the inhibitory gradients (before the norm,
// as the CPU's train_step), the global norm, divergence and the clip scale.
__global__ void norm_and_clip_kernel_v1(BucketView v) {
  __shared__ BlockReduce::TempStorage shared;
  const int r = blockIdx.x;
  float* grad = v.grad + static_cast<long long>(r) * v.P;
  double sq = 0, sq_dale = 0, sq_free = 0;
  const long long nn = static_cast<long long>(v.N) * v.N;
  for (long long k = threadIdx.x; k < v.P; k += kThreads) {
    float g = grad[k];
    if (v.dann) {
      const float by = fisher_divisor(v, k);
      if (by != 0.f) grad[k] = g = g / by;
    }
    const double g2 = static_cast<double>(g) * g;
    sq += g2;
    // The two parts, as the CPU's train_step: W_dale (+ W_ei, W_ie) and W_free.
    if ((v.off_wd >= 0 && k >= v.off_wd && k < v.off_wd + nn) ||
        (v.off_wei >= 0 && k >= v.off_wei && k < v.off_wei + static_cast<long long>(v.N) * v.n_i) ||
        (v.off_wie >= 0 && k >= v.off_wie && k < v.off_wie + static_cast<long long>(v.n_i) * v.N))
      sq_dale += g2;
    if (v.off_wf >= 0 && k >= v.off_wf && k < v.off_wf + nn) sq_free += g2;
  }
  sq = block_sum(sq, shared);
  sq_dale = block_sum(sq_dale, shared);
  sq_free = block_sum(sq_free, shared);
  if (threadIdx.x != 0) return;
  double* m = v.metrics + static_cast<long long>(r) * kMetricCount;
  m[kAlphaGrad] = m[kGradNormDale] = m[kGradNormFree] = NAN;
  if (!frozen(v, r, false)) {
    if (v.off_a >= 0) {
      m[kAlphaGrad] = 0;
      for (int j = 0; j < v.n_alpha; ++j) m[kAlphaGrad] += grad[v.off_a + j];
    }
    if (v.off_wd >= 0) m[kGradNormDale] = sqrt(sq_dale);
    if (v.off_wf >= 0) m[kGradNormFree] = sqrt(sq_free);
  }
  if (frozen(v, r, false)) {
    v.clip_scale[r] = 0.f;
    return;
  }
  const double norm = sqrt(sq);
  m[kGradNorm] = norm;
  double total = m[kLoss];  // the task loss plus the costs, as the CPU's pass.total()
  for (int c = 0; c < kCostMetrics; ++c) total += m[kCost0 + c];
  if (!isfinite(total) || !isfinite(norm)) {
    v.diverged_step[r] = *v.iteration;  // frozen from here on; the others go on
    v.clip_scale[r] = 0.f;
    return;
  }
  const double clip = v.clip[r];
  v.clip_scale[r] = clip > 0 && norm > clip ? static_cast<float>(clip / norm) : 1.f;
  // As the CPU: Adam's step count moves under Adam only; the bias corrections are computed from
  // the betas in double and rounded to float once.
  const long long steps = v.optimizer[r] == static_cast<int>(Optim::adam) ? ++v.adam_steps[r] : v.adam_steps[r];
  v.bias_correction1[r] = static_cast<float>(1 - pow(v.beta1_d[r], static_cast<double>(steps)));
  v.bias_correction2[r] = static_cast<float>(1 - pow(v.beta2_d[r], static_cast<double>(steps)));
}

__global__ void optimizer_kernel_v1(BucketView v) {
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long long>(v.P) * v.R) return;
  const int r = static_cast<int>(idx / v.P);
  const long long k = idx % v.P;
  if (v.diverged_step[r] >= 0) return;
  float g = v.grad[idx];
  const float scale = v.clip_scale[r];
  if (scale != 1.f) g *= scale;
  // Weight tensors follow train.rule; split biases (rule eg) too, without decay; otherwise biases
  // and a take the optimiser's step.
  const bool split = v.off_bneg >= 0;
  const bool bias = (k >= v.off_b && k < v.off_b + v.N) || (k >= v.off_bout && k < v.off_bout + v.O) ||
                    (split && k >= v.off_bneg && k < v.off_bneg + v.N) ||
                    (split && k >= v.off_boutneg && k < v.off_boutneg + v.O);
  const bool is_alpha = v.off_a >= 0 && k >= v.off_a && k < v.off_a + v.n_alpha;
  const bool weight = !is_alpha && !bias;
  StepHyper h;
  h.lr = is_alpha ? v.lr_alpha[r] : v.lr[r];
  h.momentum = v.momentum[r];
  h.beta1 = v.beta1[r];
  h.one_minus_beta1 = v.one_minus_beta1[r];
  h.beta2 = v.beta2[r];
  h.one_minus_beta2 = v.one_minus_beta2[r];
  h.eps = v.eps[r];
  h.bias_correction1 = v.bias_correction1[r];
  h.bias_correction2 = v.bias_correction2[r];
  h.weight_decay = v.weight_decay[r];
  h.md_p = v.md_p[r];
  h.optimizer = static_cast<Optim>(v.optimizer[r]);
  h.rule = weight || (split && bias) ? static_cast<Rule>(v.rule[r]) : Rule::gd;
  float m1 = v.m1[idx], m2 = v.m2[idx];
  float w = rule_step(h, weight, v.params[idx], g, m1, m2);
  v.m1[idx] = m1;
  v.m2[idx] = m2;
  // Constraints, as project_constraints() on the CPU.
  const long long nn = static_cast<long long>(v.N) * v.N, ni = static_cast<long long>(v.N) * v.I;
  if (in_dann_factor(v, k)) {
    w = fmaxf(w, 0.f);  // W_ei, W_ie, U_ei, U_ie: the DANN factors are non-negative
  } else if (is_alpha) {
    if (v.alpha_clamp[r]) w = fminf(fmaxf(w, 0.f), 1.f);  // alpha_form clamp: alpha in [0, 1]
  } else if (v.off_wd >= 0 && k >= v.off_wd && k < v.off_wd + nn) {
    const long long e = k - v.off_wd;
    // Projection for train.dale clamp; abs and relu keep the signs by their reparameterisation.
    if (v.dale_mode[r] == static_cast<int>(DaleMode::clamp) && w * v.col_sign[r * v.N + e % v.N] < 0) w = 0.f;
    w *= v.mask_rec[r * nn + e];
  } else if (v.off_wf >= 0 && k >= v.off_wf && k < v.off_wf + nn) {
    w *= v.mask_rec[r * nn + (k - v.off_wf)];
  } else if (k >= v.off_win && k < v.off_win + ni) {
    if (v.input_positive[r]) w = fmaxf(w, 0.f);
    w *= v.mask_in[r * ni + (k - v.off_win)];
  } else if (k >= v.off_wout && k < v.off_wout + static_cast<long long>(v.O) * v.N) {
    w *= v.mask_out[r * static_cast<long long>(v.O) * v.N + (k - v.off_wout)];
  }
  v.params[idx] = w;
}

// One block per replica, after the update: a replica whose parameters are no longer finite is
// diverged at this iteration, as on the CPU.
__global__ void nonfinite_check_kernel_v1(BucketView v) {
  __shared__ BlockReduce::TempStorage shared;
  const int r = blockIdx.x;
  const float* p = v.params + static_cast<long long>(r) * v.P;
  double bad = 0;
  for (long long k = threadIdx.x; k < v.P; k += kThreads) bad += !isfinite(p[k]);
  bad = block_sum(bad, shared);
  if (threadIdx.x == 0 && bad > 0 && v.diverged_step[r] < 0) v.diverged_step[r] = *v.iteration;
}

__global__ void dale_violation_kernel_v1(BucketView v, bool evaluating) {
  __shared__ BlockReduce::TempStorage shared;
  const int r = blockIdx.x;
  const long long nn = static_cast<long long>(v.N) * v.N;
  double mixed = 0, obeying = 0, nonzero = 0, matching = 0;
  for (int j = threadIdx.x; j < v.N; j += kThreads) {
    bool pos = false, neg = false;
    int wrong = 0;
    const bool exc = v.col_sign[r * v.N + j] > 0;
    for (int i = 0; i < v.N; ++i) {
      const float w = v.w_eff[r * nn + static_cast<long long>(i) * v.N + j];
      pos |= w > 0.f;
      neg |= w < 0.f;
      if (w != 0.f) {
        nonzero += 1;
        const bool match = (w > 0.f) == exc;
        matching += match;
        wrong += !match;
      }
    }
    mixed += pos && neg;
    obeying += wrong == 0;
  }
  mixed = block_sum(mixed, shared);
  obeying = block_sum(obeying, shared);
  nonzero = block_sum(nonzero, shared);
  matching = block_sum(matching, shared);
  if (threadIdx.x == 0) {
    double* m = v.metrics + static_cast<long long>(r) * kMetricCount;
    const bool dead = frozen(v, r, evaluating);
    m[kDaleViolation] = dead ? NAN : mixed / v.N;
    m[kDaleColumns] = dead ? NAN : obeying / v.N;
    m[kDaleSignMatch] = dead || nonzero == 0 ? NAN : matching / nonzero;
  }
}

}  // namespace

void launch_rate_cost_grad(const BucketView& v, cudaStream_t s) {
  DALESIM_LAUNCH(rate_cost_grad_kernel_v1, blocks_for(static_cast<long long>(v.T) * v.B * v.N * v.R), kThreads, 0, s, v);
}

void launch_io_cost_grads(const BucketView& v, cudaStream_t s) {
  DALESIM_LAUNCH(io_cost_grads_kernel_v1, blocks_for((static_cast<long long>(v.N) * v.I + static_cast<long long>(v.O) * v.N) * v.R),
                 kThreads, 0, s, v);
}

void launch_build_effective(const BucketView& v, cudaStream_t s) {
  const long long n = (static_cast<long long>(v.N) * v.N + static_cast<long long>(v.N) * v.I +
                       static_cast<long long>(v.O) * v.N) * v.R;
  DALESIM_LAUNCH(build_effective_kernel_v1, blocks_for(n), kThreads, 0, s, v);
}

void launch_combine_dale_part(const BucketView& v, cudaStream_t s) {
  DALESIM_LAUNCH(combine_dale_part_kernel_v1, blocks_for(static_cast<long long>(v.N) * v.N * v.R), kThreads, 0, s, v);
}

void launch_gather_inputs(const BucketView& v, cudaStream_t s) {
  const long long n = static_cast<long long>(v.T) * v.B * v.I * v.R;
  DALESIM_LAUNCH(gather_inputs_kernel_v1, blocks_for(n), kThreads, 0, s, v);
}

void launch_forward_step(const BucketView& v, int t, cudaStream_t s) {
  DALESIM_LAUNCH(forward_step_kernel_v1, blocks_for(static_cast<long long>(v.B) * v.N * v.R), kThreads, 0, s, v, t);
}

void launch_loss(const BucketView& v, bool need_grad, bool evaluating, cudaStream_t s) {
  DALESIM_LAUNCH(loss_kernel_v1, v.R, kThreads, 0, s, v, need_grad, evaluating);
}

void launch_backward_step(const BucketView& v, int t, cudaStream_t s) {
  DALESIM_LAUNCH(backward_step_kernel_v1, blocks_for(static_cast<long long>(v.B) * v.N * v.R), kThreads, 0, s, v, t);
}

void launch_bias_grads(const BucketView& v, cudaStream_t s) {
  DALESIM_LAUNCH(bias_grads_kernel_v1, blocks_for(static_cast<long long>(v.N + v.O) * v.R), kThreads, 0, s, v);
}

void launch_param_grads(const BucketView& v, cudaStream_t s) {
  DALESIM_LAUNCH(param_grads_kernel_v1, v.R, kThreads, 0, s, v);
}

void launch_norm_and_clip(const BucketView& v, cudaStream_t s) {
  DALESIM_LAUNCH(norm_and_clip_kernel_v1, v.R, kThreads, 0, s, v);
}

void launch_optimizer(const BucketView& v, cudaStream_t s) {
  DALESIM_LAUNCH(optimizer_kernel_v1, blocks_for(static_cast<long long>(v.P) * v.R), kThreads, 0, s, v);
}

void launch_nonfinite_check(const BucketView& v, cudaStream_t s) {
  DALESIM_LAUNCH(nonfinite_check_kernel_v1, v.R, kThreads, 0, s, v);
}

void launch_dale_violation(const BucketView& v, bool evaluating, cudaStream_t s) {
  DALESIM_LAUNCH(dale_violation_kernel_v1, v.R, kThreads, 0, s, v, evaluating);
}

}  // namespace dalesim::cuda
