// BPTT for the E/I rate network (SPEC §2-3), templated on float and double.
//
// Dynamics, with r_t = phi(v_t), v_{-1} = 0, r_{-1} = 0 and a = dt / tau per unit:
//   u_t = W r_{t-1} + W_in x_t + b + noise_t
//   v_t = (1 - a) v_{t-1} + a u_t
//   z_t = W_out r_t + b_out
//   L   = sum mask (z - y)^2 / sum mask                          (LossKind::mse)
//   L   = mean over scored (t, b) of -log softmax(z_t,b)[target]  (LossKind::cross_entropy)
// Backward, with e_t = dL/dz_t and g_t = dL/du_t = a * dL/dv_t:
//   dL/dv_t = phi'(v_t) (W_out^T e_t + W^T g_{t+1}) + (1 - a) dL/dv_{t+1}
//   dW = sum_t g_t r_{t-1}^T,  dW_in = sum_t g_t x_t^T,  db = sum_t g_t
// and for W = (alpha W_dale + (1 - alpha) W_free) * mask, alpha = sigmoid(a_param):
//   dW_dale = alpha dW * mask,  dW_free = (1 - alpha) dW * mask,
//   d a_param = alpha (1 - alpha) sum(dW * mask * (W_dale - W_free)).
#include "cpu/replica_trainer.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "cpu/blas.hpp"
#include "cpu/step_loops.hpp"
#include "dalesim/math.hpp"
#include "dalesim/rng.hpp"
#include "model/constraints.hpp"

namespace dalesim::cpu {

namespace {

// ---- Loss and accuracy of the outputs z [T, B, O]: one small function per form, mirrored by
// the CUDA kernels. Sums in double; `e`, when given, receives dL/dz [T, B, O].

// Masked MSE: sum mask (z - y)^2 / max(sum mask, 1).
template <class Real>
double mse_loss(const Real* z, const Real* y, const Real* mask, size_t n, Real* e) {
  double mask_sum = 0, sq = 0;
  for (size_t k = 0; k < n; ++k) {
    const double d = double(z[k]) - y[k];
    sq += mask[k] * d * d;
    mask_sum += mask[k];
  }
  mask_sum = std::max(mask_sum, 1.0);
  if (e)
    for (size_t k = 0; k < n; ++k) e[k] = Real(2.0 * mask[k] * (double(z[k]) - y[k]) / mask_sum);
  return sq / mask_sum;
}

// Softmax cross-entropy over the rows (t, b) with target >= 0, averaged over those rows; rows
// with target -1 get no gradient.
template <class Real>
double xent_loss(const Real* z, const int* target, size_t rows, int O, Real* e) {
  double sum = 0;
  size_t n_scored = 0;
  for (size_t r = 0; r < rows; ++r) {
    if (target[r] < 0) continue;
    if (target[r] >= O)
      throw std::invalid_argument("cross-entropy target " + std::to_string(target[r]) + " at row " +
                                  std::to_string(r) + " is not below the number of outputs " + std::to_string(O));
    sum += softmax_xent_row(z + r * O, O, target[r]);
    ++n_scored;
  }
  const double denom = static_cast<double>(std::max<size_t>(n_scored, 1));
  if (e)
    for (size_t r = 0; r < rows; ++r) {
      if (target[r] >= 0)
        softmax_xent_grad_row(z + r * O, O, target[r], Real(1.0 / denom), e + r * O);
      else
        std::fill(e + r * O, e + (r + 1) * O, Real(0));
    }
  return sum / denom;
}

// Fraction of correct argmax decisions, in the batch's final-step or per-step form (NaN: none).
template <class Real>
double batch_accuracy(const Batch& batch, const Real* z) {
  const int B = batch.B, O = batch.O;
  int correct = 0, n = 0;
  if (batch.acc_step >= 0) {
    for (int b = 0; b < B; ++b, ++n)
      correct += argmax_row(z + (static_cast<size_t>(batch.acc_step) * B + b) * O, batch.acc_begin, batch.acc_end) ==
                 batch.label[b];
  } else {
    for (size_t r = 0; r < batch.acc_label.size(); ++r) {
      if (batch.acc_label[r] < 0) continue;
      correct += argmax_row(z + r * O, batch.acc_begin, batch.acc_end) == batch.acc_label[r];
      ++n;
    }
  }
  return n ? double(correct) / n : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

template <class Real>
ReplicaTrainer<Real>::ReplicaTrainer(const ReplicaModel& model) : model_(model), layout_(model.layout) {
  params_.assign(model.params.begin(), model.params.end());
  grad_.assign(params_.size(), Real(0));
  moment1_.assign(params_.size(), Real(0));
  moment2_.assign(params_.size(), Real(0));
  // A resumed replica: its optimiser state as saved (values of Real held in double, so exact).
  if (model.moment1.size() == params_.size()) moment1_.assign(model.moment1.begin(), model.moment1.end());
  if (model.moment2.size() == params_.size()) moment2_.assign(model.moment2.begin(), model.moment2.end());
  adam_steps_ = model.adam_steps;
  diverged_step_ = model.diverged_step;
  const int N = layout_.N;
  leak_.resize(N), keep_.resize(N), back_.resize(N);
  for (int i = 0; i < N; ++i) {
    const Real a = model.leak[i];
    leak_[i] = a;
    keep_[i] = Real(1) - a;
    back_[i] = (Real(1) - a) / a;
  }
}

// The products of a pass on a batch of B sequences of T steps, prepared once per shape.
template <class Real>
void ReplicaTrainer<Real>::prepare_pass(int B, int T) {
  const int N = layout_.N, I = layout_.I, O = layout_.O, TB = T * B;
  auto prepare = [](FixedGemm<Real>& g, bool trans_a, int m, int n, int k, Real beta) {
    if (!g.same_shape(trans_a, m, n, k, beta)) g = FixedGemm<Real>(trans_a, m, n, k, beta);
  };
  prepare(gemms_.in, false, TB, N, I, Real(0));
  prepare(gemms_.step, false, B, N, N, Real(1));
  prepare(gemms_.out, false, TB, O, N, Real(0));
  prepare(gemms_.d_out, true, O, N, TB, Real(0));
  prepare(gemms_.d_rate, false, TB, N, O, Real(0));
  prepare(gemms_.d_rec, true, N, N, std::max(T - 1, 1) * B, Real(0));
  prepare(gemms_.d_in_t, true, I, N, TB, Real(0));
  d_in_t_.resize(static_cast<size_t>(I) * N);
}

template <class Real>
Real ReplicaTrainer<Real>::alpha() const {
  switch (layout_.arch) {
    case Arch::free: return Real(0);
    case Arch::colei:
    case Arch::dann: return Real(1);
    case Arch::mix: break;
  }
  const bool clamp_form = model_.cfg->model.alpha_form == AlphaForm::clamp;
  const TensorSlot& slot = layout_[Tensor::a];
  if (slot.size() == 1) return alpha_of(params_[slot.offset], clamp_form);
  double sum = 0;
  for (size_t k = 0; k < slot.size(); ++k) sum += alpha_of(params_[slot.offset + k], clamp_form);
  return Real(sum / static_cast<double>(slot.size()));
}

// Mean alpha over all, excitatory and inhibitory columns (NaN where there is none).
template <class Real>
void ReplicaTrainer<Real>::fill_alpha_metrics(StepMetrics& m) const {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  m.alpha = m.alpha_e = m.alpha_i = nan;
  if (layout_.arch != Arch::mix) return;
  m.alpha = double(alpha());
  double sum_e = 0, sum_i = 0;
  int n_e = 0, n_i = 0;
  const bool clamp_form = model_.cfg->model.alpha_form == AlphaForm::clamp;
  const TensorSlot& slot = layout_[Tensor::a];
  for (int j = 0; j < layout_.N; ++j) {
    const double al = alpha_of(double(params_[slot.offset + (slot.size() == 1 ? 0 : j)]), clamp_form);
    if (model_.col_sign[j] > 0) sum_e += al, ++n_e;
    else sum_i += al, ++n_i;
  }
  if (n_e) m.alpha_e = sum_e / n_e;
  if (n_i) m.alpha_i = sum_i / n_i;
}

template <class Real>
void ReplicaTrainer<Real>::build_effective() {
  const int N = layout_.N, I = layout_.I, O = layout_.O;
  const size_t nn = static_cast<size_t>(N) * N;
  // alpha_j of each column: one per neuron, or the network's alpha repeated.
  alpha_col_.assign(N, alpha());
  if (layout_.has(Tensor::a) && layout_[Tensor::a].size() > 1) {
    const bool clamp_form = model_.cfg->model.alpha_form == AlphaForm::clamp;
    for (int j = 0; j < N; ++j) alpha_col_[j] = alpha_of(params_[layout_[Tensor::a].offset + j], clamp_form);
  }
  // The Dale part D: dale_weight(W_dale) * mask (colei), or W_ee * mask - W_ei W_ie (dann).
  dale_eff_.assign(nn, Real(0));
  const float* mask = model_.mask_rec.data();
  if (layout_.has(Tensor::W_dale)) {
    const Real* wd = &params_[layout_[Tensor::W_dale].offset];
    const DaleMode mode = model_.cfg->train.dale;
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) {
        const size_t k = static_cast<size_t>(i) * N + j;
        dale_eff_[k] = dale_weight(mode, wd[k], Real(model_.col_sign[j])) * mask[k];
      }
    if (layout_.dann) {
      const int n_i = layout_[Tensor::W_ei].cols;
      gemm(false, false, N, N, n_i, Real(-1), &params_[layout_[Tensor::W_ei].offset], n_i,
           &params_[layout_[Tensor::W_ie].offset], N, Real(1), dale_eff_.data(), N);
    }
  }
  w_eff_.resize(nn);
  const Real* wf = layout_.has(Tensor::W_free) ? &params_[layout_[Tensor::W_free].offset] : nullptr;
  const Real* al = alpha_col_.data();
  for (int i = 0; i < N; ++i) {
    const size_t row = static_cast<size_t>(i) * N;
    if (wf)
      for (int j = 0; j < N; ++j)
        w_eff_[row + j] = al[j] * dale_eff_[row + j] + (Real(1) - al[j]) * (wf[row + j] * mask[row + j]);
    else
      for (int j = 0; j < N; ++j) w_eff_[row + j] = al[j] * dale_eff_[row + j];
  }
  // W^T [N(pre), N(post)]: the forward product's right operand, packed once for all T steps.
  w_t_.resize(nn);
  constexpr int tile = 16;
  for (int i0 = 0; i0 < N; i0 += tile)
    for (int j0 = 0; j0 < N; j0 += tile)
      for (int i = i0; i < std::min(i0 + tile, N); ++i)
        for (int j = j0; j < std::min(j0 + tile, N); ++j)
          w_t_[static_cast<size_t>(j) * N + i] = w_eff_[static_cast<size_t>(i) * N + j];
  const Real* wi = &params_[layout_[Tensor::W_in].offset];
  w_in_eff_.resize(static_cast<size_t>(N) * I);
  for (size_t k = 0; k < w_in_eff_.size(); ++k) w_in_eff_[k] = wi[k] * model_.mask_in[k];
  if (layout_.has(Tensor::U_ei)) {  // arch dann: U_ee * mask - U_ei U_ie
    const int n_in = layout_[Tensor::U_ei].cols;
    gemm(false, false, N, I, n_in, Real(-1), &params_[layout_[Tensor::U_ei].offset], n_in,
         &params_[layout_[Tensor::U_ie].offset], I, Real(1), w_in_eff_.data(), I);
  }
  // Effective biases: b (+ b_neg), b_out (+ b_out_neg).
  b_eff_.assign(&params_[layout_[Tensor::b].offset], &params_[layout_[Tensor::b].offset] + N);
  b_out_eff_.assign(&params_[layout_[Tensor::b_out].offset], &params_[layout_[Tensor::b_out].offset] + O);
  if (layout_.has(Tensor::b_neg)) {
    for (int i = 0; i < N; ++i) b_eff_[i] += params_[layout_[Tensor::b_neg].offset + i];
    for (int o = 0; o < O; ++o) b_out_eff_[o] += params_[layout_[Tensor::b_out_neg].offset + o];
  }
  const Real* wo = &params_[layout_[Tensor::W_out].offset];
  w_out_eff_.resize(static_cast<size_t>(O) * N);
  for (size_t k = 0; k < w_out_eff_.size(); ++k) w_out_eff_[k] = wo[k] * model_.mask_out[k];
  // W_in^T [I,N] and W_out^T [N,O]: the right operands of the input drive and the readout.
  w_in_t_.resize(w_in_eff_.size());
  for (int i = 0; i < N; ++i)
    for (int k = 0; k < I; ++k) w_in_t_[static_cast<size_t>(k) * N + i] = w_in_eff_[static_cast<size_t>(i) * I + k];
  w_out_t_.resize(w_out_eff_.size());
  for (int o = 0; o < O; ++o)
    for (int i = 0; i < N; ++i) w_out_t_[static_cast<size_t>(i) * O + o] = w_out_eff_[static_cast<size_t>(o) * N + i];
}

template <class Real>
PassResult ReplicaTrainer<Real>::loss_and_grad(const Batch& batch, std::int64_t iteration, bool need_grad) {
  const int N = layout_.N, I = layout_.I, O = layout_.O, B = batch.B, T = batch.T;
  const size_t TB = static_cast<size_t>(T) * B, BN = static_cast<size_t>(B) * N;
  const Phi phi = model_.cfg->model.phi;
  check_batch(batch, I, O);  // dalesim/task.hpp
  build_effective();
  x_.assign(batch.x.begin(), batch.x.end());
  const bool mse = batch.loss == LossKind::mse;
  if (mse) {
    y_.assign(batch.y.begin(), batch.y.end());
    mask_.assign(batch.mask.begin(), batch.mask.end());
  }
  v_.resize(TB * N);
  r_.resize(TB * N);
  z_.resize(TB * O);

  prepare_pass(B, T);
  // Input drive for every step at once: u = X W_in^T + b, then the recurrence step by step.
  gemms_.in(x_.data(), w_in_t_.data(), v_.data());
  const Real* bias = b_eff_.data();
  const Real *leak = leak_.data(), *keep = keep_.data();
  const bool noisy = model_.cfg->model.sigma_rec > 0;
  const CounterRng noise{mix_key(model_.cfg->noise_seed, static_cast<std::uint64_t>(iteration)), 0};
  for (int t = 0; t < T; ++t) {
    Real* u = &v_[t * BN];  // holds u_t, overwritten by v_t below
    if (t > 0) gemms_.step(&r_[(t - 1) * BN], w_t_.data(), u);  // u += r_{t-1} W^T
    if (noisy)  // drive = u + b + noise (the noise in double, as the CUDA kernels draw it)
      add_noise_rows(noise, t * BN, B, N, bias, model_.noise_std.data(), u);
    // v_t = (1 - a) v_{t-1} + a drive (v_{-1} = 0), r_t = phi(v_t).
    forward_rows(phi, B, N, noisy ? nullptr : bias, keep, leak, t > 0 ? u - BN : nullptr, u, &r_[t * BN]);
  }
  const Real* w_out = w_out_eff_.data();
  gemms_.out(r_.data(), w_out_t_.data(), z_.data());  // z = R W_out^T
  const Real* b_out = b_out_eff_.data();
  for (size_t tb = 0; tb < TB; ++tb)
    for (int o = 0; o < O; ++o) z_[tb * O + o] += b_out[o];
  const double rate = sum_in_double(r_.data(), TB * N, false);
  PassResult res;
  e_.resize(TB * O);
  Real* e = need_grad ? e_.data() : nullptr;  // dL/dz, filled by the loss
  res.loss = mse ? mse_loss(z_.data(), y_.data(), mask_.data(), TB * O, e)
                 : xent_loss(z_.data(), batch.target.data(), TB, O, e);
  res.mean_rate = rate / static_cast<double>(TB * N);
  res.accuracy = batch_accuracy(batch, z_.data());
  if (!need_grad) {
    add_costs(res, false);
    return res;
  }

  // Backward.
  std::fill(grad_.begin(), grad_.end(), Real(0));
  Real* g_w_out = &grad_[layout_[Tensor::W_out].offset];
  gemms_.d_out(e_.data(), r_.data(), g_w_out);  // dW_out = E^T R
  Real* g_b_out = &grad_[layout_[Tensor::b_out].offset];
  for (size_t tb = 0; tb < TB; ++tb)
    for (int o = 0; o < O; ++o) g_b_out[o] += e_[tb * O + o];
  dr_.resize(TB * N);
  gemms_.d_rate(e_.data(), w_out, dr_.data());  // dL/dr = E W_out
  add_costs(res, true);  // the input, readout and firing-rate costs' gradients: into grad_ and dr_
  g_.resize(TB * N);
  const Real* back = back_.data();
  for (int t = T - 1; t >= 0; --t) {
    Real* dr = &dr_[t * BN];
    Real* g = &g_[t * BN];
    const Real* g_next = g + BN;
    if (t < T - 1) gemms_.step(g_next, w_eff_.data(), dr);  // dr += g_{t+1} W
    // g_t = a dL/dv_t, dL/dv_t = phi'(v_t) dr_t + (1 - a) dL/dv_{t+1}, recovered from g_{t+1}.
    backward_rows(phi, B, N, leak, back, &v_[t * BN], &r_[t * BN], dr, t < T - 1 ? g_next : nullptr, g);
  }
  d_w_eff_.resize(static_cast<size_t>(N) * N);
  if (T > 1)
    gemms_.d_rec(&g_[BN], r_.data(), d_w_eff_.data());  // dW = sum_t g_t r_{t-1}^T
  else
    std::fill(d_w_eff_.begin(), d_w_eff_.end(), Real(0));
  add_recurrent_cost_grads();
  Real* g_w_in = &grad_[layout_[Tensor::W_in].offset];
  // + the input costs' gradient, put in grad_'s W_in slot by add_costs (effective, before the U split).
  gemms_.d_in_t(x_.data(), g_.data(), d_in_t_.data());  // dW_in^T = X^T G [I,N], vectorised over N
  for (int i = 0; i < N; ++i)
    for (int k = 0; k < I; ++k) g_w_in[static_cast<size_t>(i) * I + k] += d_in_t_[static_cast<size_t>(k) * N + i];
  if (layout_.has(Tensor::U_ei)) {  // through U_eff = U_ee * mask - U_ei U_ie
    const int n_in = layout_[Tensor::U_ei].cols;
    gemm(false, true, N, n_in, I, Real(-1), g_w_in, I, &params_[layout_[Tensor::U_ie].offset], I, Real(0),
         &grad_[layout_[Tensor::U_ei].offset], n_in);
    gemm(true, false, n_in, I, N, Real(-1), &params_[layout_[Tensor::U_ei].offset], n_in, g_w_in, I, Real(0),
         &grad_[layout_[Tensor::U_ie].offset], I);
  }
  for (size_t k = 0; k < static_cast<size_t>(N) * I; ++k) g_w_in[k] *= model_.mask_in[k];
  for (size_t k = 0; k < static_cast<size_t>(O) * N; ++k) g_w_out[k] *= model_.mask_out[k];
  Real* g_b = &grad_[layout_[Tensor::b].offset];
  add_rows(TB, N, g_.data(), g_b);
  if (layout_.has(Tensor::b_neg)) {  // split biases: both parts get the bias gradient
    std::copy(g_b, g_b + N, &grad_[layout_[Tensor::b_neg].offset]);
    std::copy(g_b_out, g_b_out + O, &grad_[layout_[Tensor::b_out_neg].offset]);
  }

  // Column j of W = alpha_j D + (1 - alpha_j) W_free * mask: dD = alpha_j dW, dW_free = (1 - alpha_j)
  // dW * mask (+ the free costs' part, already in grad_), d alpha_j = sum_i dW (D - W_free * mask)
  // (+ the free costs' part); through D: dW_dale = dD * mask * dale_weight' (W_ee for dann),
  // dW_ei = -dD W_ie^T, dW_ie = -W_ei^T dD.
  const bool has_free = layout_.has(Tensor::W_free), has_dale = layout_.has(Tensor::W_dale);
  const Real* wf = has_free ? &params_[layout_[Tensor::W_free].offset] : nullptr;
  const Real* wd = has_dale ? &params_[layout_[Tensor::W_dale].offset] : nullptr;
  Real* g_wf = has_free ? &grad_[layout_[Tensor::W_free].offset] : nullptr;
  Real* g_wd = has_dale ? &grad_[layout_[Tensor::W_dale].offset] : nullptr;
  const DaleMode mode = model_.cfg->train.dale;
  const bool mixed = has_dale && has_free;
  const TrainConfig& tc = model_.cfg->train;
  const bool free_cost = tc.l1_free != 0 || tc.l2_free != 0;
  const size_t nn = d_w_eff_.size();
  double d_alpha = 0;  // the network's alpha: one sum in flat order
  d_alpha_col_.assign(N, 0.0);
  d_dale_.assign(d_w_eff_.size(), Real(0));
  for (size_t k = 0, j = 0; k < d_w_eff_.size(); ++k, j = j + 1 == static_cast<size_t>(N) ? 0 : j + 1) {
    const Real al = alpha_col_[j];
    const Real dw = d_w_eff_[k] * model_.mask_rec[k];
    d_dale_[k] = al * d_w_eff_[k];
    if (g_wd) g_wd[k] = al * dw * dale_weight_grad(mode, wd[k], Real(model_.col_sign[j]));
    if (g_wf) g_wf[k] += (Real(1) - al) * dw;
    double c = 0;  // this entry's part of dL/d alpha_j
    if (mixed) c = double(d_w_eff_[k]) * (double(dale_eff_[k]) - double(wf[k]) * model_.mask_rec[k]);
    if (free_cost && g_wf) {
      // F = (1 - alpha_j) W_free * mask: dC/dW_free = dC/dF (1 - alpha_j) mask, dC/d alpha_j = -dC/dF W_free mask.
      const double wm = double(wf[k]) * model_.mask_rec[k], f = (1 - double(al)) * wm;
      const double dc_df = (tc.l1_free * (f > 0 ? 1.0 : (f < 0 ? -1.0 : 0.0)) + 2 * tc.l2_free * f) / double(nn);
      g_wf[k] += Real(dc_df * (1 - double(al)) * model_.mask_rec[k]);
      c -= dc_df * wm;
    }
    if (mixed) {
      d_alpha += c;
      d_alpha_col_[j] += c;
    }
  }
  if (layout_.dann) {
    const int n_i = layout_[Tensor::W_ei].cols;
    gemm(false, true, N, n_i, N, Real(-1), d_dale_.data(), N, &params_[layout_[Tensor::W_ie].offset], N, Real(0),
         &grad_[layout_[Tensor::W_ei].offset], n_i);
    gemm(true, false, n_i, N, N, Real(-1), &params_[layout_[Tensor::W_ei].offset], n_i, d_dale_.data(), N, Real(0),
         &grad_[layout_[Tensor::W_ie].offset], N);
  }
  if (layout_.has(Tensor::a)) {
    const bool clamp_form = model_.cfg->model.alpha_form == AlphaForm::clamp;
    const TensorSlot& slot = layout_[Tensor::a];
    if (slot.size() == 1)
      grad_[slot.offset] = Real(d_alpha * alpha_slope(double(alpha_col_[0]), clamp_form));
    else
      for (int j = 0; j < N; ++j)
        grad_[slot.offset + j] = Real(d_alpha_col_[j] * alpha_slope(double(alpha_col_[j]), clamp_form));
  }
  return res;
}

// The costs: c x mean over the entries of |w| (l1) or w^2 (l2); the gradients c sign(w) / n and
// 2 c w / n. The free part F_ij = (1 - alpha_j) W_free_ij mask_ij also sends -dC/dF W_free mask to
// alpha_j. The firing-rate cost c mean r^2 adds 2 c r / (T B N) to dL/dr.
template <class Real>
void ReplicaTrainer<Real>::add_costs(PassResult& res, bool grad) {
  const TrainConfig& tc = model_.cfg->train;
  const int N = layout_.N;
  if (!has_costs(tc)) return;
  // One matrix's l1 and l2 costs; `g`, when given, receives their gradient (added).
  auto matrix_cost = [&](const Real* w, size_t n, double l1, double l2, Cost c1, Cost c2, Real* g) {
    if (l1 == 0 && l2 == 0) return;
    double a = 0, q = 0;
    for (size_t k = 0; k < n; ++k) a += std::fabs(double(w[k])), q += double(w[k]) * w[k];
    res.cost[static_cast<int>(c1)] = l1 * a / n;
    res.cost[static_cast<int>(c2)] = l2 * q / n;
    if (g)
      for (size_t k = 0; k < n; ++k) {
        const double sign = w[k] > 0 ? 1.0 : (w[k] < 0 ? -1.0 : 0.0);
        g[k] += Real((l1 * sign + 2 * l2 * w[k]) / n);
      }
  };
  const size_t nn = static_cast<size_t>(N) * N;
  matrix_cost(w_in_eff_.data(), w_in_eff_.size(), tc.l1_in, tc.l2_in, Cost::l1_in, Cost::l2_in,
              grad ? &grad_[layout_[Tensor::W_in].offset] : nullptr);
  matrix_cost(w_out_eff_.data(), w_out_eff_.size(), tc.l1_out, tc.l2_out, Cost::l1_out, Cost::l2_out,
              grad ? &grad_[layout_[Tensor::W_out].offset] : nullptr);
  // The recurrent costs' gradient waits for d_w_eff_ (add_recurrent_cost_grads); their value is here.
  matrix_cost(w_eff_.data(), nn, tc.l1_rec, tc.l2_rec, Cost::l1_rec, Cost::l2_rec, nullptr);
  if ((tc.l1_free != 0 || tc.l2_free != 0) && layout_.has(Tensor::W_free)) {
    // The value; the gradient goes with the recurrent gradients (free_cost_grad, in the backward pass).
    const Real* wf = &params_[layout_[Tensor::W_free].offset];
    double a = 0, q = 0;
    for (size_t k = 0; k < nn; ++k) {
      const double f = (1 - double(alpha_col_[k % N])) * (double(wf[k]) * model_.mask_rec[k]);
      a += std::fabs(f), q += f * f;
    }
    res.cost[static_cast<int>(Cost::l1_free)] = tc.l1_free * a / nn;
    res.cost[static_cast<int>(Cost::l2_free)] = tc.l2_free * q / nn;
  }
  if (tc.l2_firing_rate != 0) {
    const size_t n = r_.size();
    double q = 0;
    for (size_t k = 0; k < n; ++k) q += double(r_[k]) * r_[k];
    res.cost[static_cast<int>(Cost::l2_firing_rate)] = tc.l2_firing_rate * q / n;
    if (grad)
      for (size_t k = 0; k < n; ++k) dr_[k] += Real(2 * tc.l2_firing_rate * r_[k] / n);
  }
}

template <class Real>
void ReplicaTrainer<Real>::add_recurrent_cost_grads() {
  const TrainConfig& tc = model_.cfg->train;
  if (tc.l1_rec == 0 && tc.l2_rec == 0) return;
  const size_t nn = w_eff_.size();
  for (size_t k = 0; k < nn; ++k) {
    const double w = w_eff_[k], sign = w > 0 ? 1.0 : (w < 0 ? -1.0 : 0.0);
    d_w_eff_[k] += Real((tc.l1_rec * sign + 2 * tc.l2_rec * w) / nn);
  }
}

template <class Real>
double ReplicaTrainer<Real>::dale_violation() const {
  const int N = layout_.N;
  int mixed = 0;
  for (int j = 0; j < N; ++j) {
    bool pos = false, neg = false;
    for (int i = 0; i < N; ++i) {
      const Real w = w_eff_[static_cast<size_t>(i) * N + j];
      pos |= w > 0;
      neg |= w < 0;
    }
    mixed += pos && neg;
  }
  return N ? double(mixed) / N : 0.0;
}

template <class Real>
void ReplicaTrainer<Real>::fill_dale_metrics(StepMetrics& m) const {
  const int N = layout_.N;
  // Row by row (W_eff is row-major), counting per column.
  std::vector<int> pos(N, 0), neg(N, 0), wrong(N, 0), excitatory(N);
  for (int j = 0; j < N; ++j) excitatory[j] = model_.col_sign[j] > 0;
  long long nonzero = 0, matching = 0;
  for (int i = 0; i < N; ++i) {
    const Real* row = &w_eff_[static_cast<size_t>(i) * N];
    for (int j = 0; j < N; ++j) {
      const int p = row[j] > 0, n = row[j] < 0, match = p == excitatory[j];
      pos[j] |= p;
      neg[j] |= n;
      nonzero += p | n;
      matching += (p | n) & match;
      wrong[j] += (p | n) & !match;
    }
  }
  int mixed = 0, obeying = 0;
  for (int j = 0; j < N; ++j) {
    mixed += pos[j] && neg[j];
    obeying += wrong[j] == 0;
  }
  m.dale_violation = N ? double(mixed) / N : 0.0;
  m.dale_columns = N ? double(obeying) / N : 0.0;
  m.dale_sign_match = nonzero ? double(matching) / double(nonzero) : std::numeric_limits<double>::quiet_NaN();
}

// The DANN paper's Fisher-motivated correction of the inhibitory gradients, applied to the update
// only (before clipping), never to grad() as returned by loss_and_grad.
template <class Real>
void ReplicaTrainer<Real>::correct_dann_gradients() {
  const double n_e = layout_.N, d = layout_.I;
  const std::pair<Tensor, double> scales[] = {
      {Tensor::W_ie, std::sqrt(n_e)}, {Tensor::W_ei, n_e}, {Tensor::U_ie, std::sqrt(n_e)}, {Tensor::U_ei, d}};
  for (const auto& [t, by] : scales) {
    Real* g = &grad_[layout_[t].offset];
    for (size_t k = 0; k < layout_[t].size(); ++k) g[k] /= Real(by);
  }
}

namespace {
// Weight tensors follow train.rule; biases and alpha always take the optimiser's step.
bool is_weight(Tensor t) {
  return t != Tensor::b && t != Tensor::b_out && t != Tensor::a && t != Tensor::b_neg && t != Tensor::b_out_neg;
}
bool is_bias(Tensor t) { return t == Tensor::b || t == Tensor::b_out || t == Tensor::b_neg || t == Tensor::b_out_neg; }
}  // namespace

template <class Real>
void ReplicaTrainer<Real>::apply_update() {
  const TrainConfig& tc = model_.cfg->train;
  if (tc.optimizer == Optim::adam) ++adam_steps_;
  const double bc1 = 1 - std::pow(tc.beta1, double(adam_steps_)), bc2 = 1 - std::pow(tc.beta2, double(adam_steps_));
  const Real decay = Real(tc.weight_decay), mu = Real(tc.momentum);
  for (int ti = 0; ti < kTensorCount; ++ti) {
    const Tensor t = static_cast<Tensor>(ti);
    const TensorSlot& slot = layout_[t];
    if (slot.size() == 0) continue;
    // Split biases (rule eg) are trained by EG too; otherwise biases take the optimiser's step.
    const Rule rule = is_weight(t) || (layout_.has(Tensor::b_neg) && is_bias(t)) ? tc.rule : Rule::gd;
    const Real lr = Real(t == Tensor::a ? tc.alpha_lr() : tc.lr);
    const bool decays = is_weight(t) && decay != 0;
    if (rule == Rule::gd || rule == Rule::gd_sign) {
      // The optimiser's step, one loop per tensor with its choices made outside (it vectorises).
      Real *w = &params_[slot.offset], *m1 = &moment1_[slot.offset], *m2 = &moment2_[slot.offset];
      const Real* g = &grad_[slot.offset];
      const size_t n = slot.size();
      if (rule == Rule::gd_sign) before_.assign(w, w + n);
      StepCoeffs<Real> c{lr, decays ? decay : Real(0), mu, Real(tc.beta1), Real(1 - tc.beta1), Real(tc.beta2),
                         Real(1 - tc.beta2), Real(bc1), Real(bc2), Real(tc.eps)};
      if (tc.optimizer == Optim::sgd)
        sgd_step(n, g, w, m1, c);
      else
        adam_step(n, g, w, m1, m2, c);
      // gd_sign: a weight that crosses zero is reset to a tiny value of its old sign.
      if (rule == Rule::gd_sign)
        for (size_t k = 0; k < n; ++k) {
          const Real before = before_[k];
          if (before != 0 && !(w[k] * before > 0)) w[k] = before > 0 ? Real(1e-18) : Real(-1e-18);
        }
      continue;
    }
    for (size_t k = slot.offset; k < slot.offset + slot.size(); ++k) {
      Real g = grad_[k];
      Real& w = params_[k];
      const Real sign = w > 0 ? Real(1) : (w < 0 ? Real(-1) : Real(0));
      if (decays) g += rule == Rule::eg ? decay * sign : decay * w;
      if (rule == Rule::eg) {  // |w| <- |w| exp(-lr sign(w) step): the sign never changes
        Real step;
        if (tc.optimizer == Optim::adam) {  // Adam-EG: the step is Adam's m_hat / (sqrt(v_hat) + eps)
          moment1_[k] = Real(tc.beta1) * moment1_[k] + Real(1 - tc.beta1) * g;
          moment2_[k] = Real(tc.beta2) * moment2_[k] + Real(1 - tc.beta2) * g * g;
          step = (moment1_[k] / Real(bc1)) / (std::sqrt(moment2_[k] / Real(bc2)) + Real(tc.eps));
        } else {  // heavy-ball momentum
          moment1_[k] = mu * moment1_[k] + g;
          step = moment1_[k];
        }
        w *= std::exp(-lr * sign * step);
      } else {  // Rule::md: mirror descent on the p-norm potential, a step in dual coordinates
        const Real p = Real(tc.md_p);
        moment1_[k] = mu * moment1_[k] + g;
        const Real y = sign * std::pow(std::fabs(w), p - 1) - lr * moment1_[k];
        w = (y > 0 ? Real(1) : Real(-1)) * std::pow(std::fabs(y), 1 / (p - 1));
      }
    }
  }
  project_constraints<Real>(model_, params_.data());
}

template <class Real>
StepMetrics ReplicaTrainer<Real>::train_step(const Batch& batch, std::int64_t iteration) {
  StepMetrics m;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  fill_alpha_metrics(m);
  if (diverged()) {
    m.loss = m.accuracy = m.grad_norm = m.mean_rate = m.dale_violation = m.dale_sign_match = m.dale_columns = nan;
    m.alpha_grad = m.grad_norm_dale = m.grad_norm_free = nan;
    for (const CostField& c : kCostFields) m.*c.metric = nan;
    return m;
  }
  const PassResult pass = loss_and_grad(batch, iteration, true);
  if (layout_.dann) correct_dann_gradients();  // before clipping, as in the DANN paper
  const double norm = std::sqrt(sum_in_double(grad_.data(), grad_.size(), true));
  // The mechanism's signals: alpha's gradient and the two parts' gradient norms.
  auto tensor_sq = [&](Tensor t) {
    double q = 0;
    for (size_t k = 0; k < layout_[t].size(); ++k) q += double(grad_[layout_[t].offset + k]) * grad_[layout_[t].offset + k];
    return q;
  };
  m.alpha_grad = m.grad_norm_dale = m.grad_norm_free = nan;
  if (layout_.has(Tensor::a)) {
    m.alpha_grad = 0;
    for (size_t k = 0; k < layout_[Tensor::a].size(); ++k) m.alpha_grad += grad_[layout_[Tensor::a].offset + k];
  }
  if (layout_.has(Tensor::W_dale)) m.grad_norm_dale = std::sqrt(tensor_sq(Tensor::W_dale) + tensor_sq(Tensor::W_ei) + tensor_sq(Tensor::W_ie));
  if (layout_.has(Tensor::W_free)) m.grad_norm_free = std::sqrt(tensor_sq(Tensor::W_free));
  m.loss = pass.loss;
  m.accuracy = pass.accuracy;
  m.mean_rate = pass.mean_rate;
  m.grad_norm = norm;
  for (const CostField& c : kCostFields) m.*c.metric = pass.cost[static_cast<int>(c.cost)];
  fill_dale_metrics(m);
  if (!std::isfinite(pass.total()) || !std::isfinite(norm)) {
    diverged_step_ = iteration;  // frozen from here on; the others go on
    return m;
  }
  const double clip = model_.cfg->train.clip;
  if (clip > 0 && norm > clip)
    for (Real& g : grad_) g *= Real(clip / norm);
  apply_update();
  // An update that overflowed (a huge learning rate, no clipping) leaves non-finite weights: the
  // replica is diverged at this step, before anything downstream (diagnostics, LAPACK) sees them.
  if (!std::all_of(params_.begin(), params_.end(), [](Real x) { return std::isfinite(x); })) diverged_step_ = iteration;
  return m;
}

template <class Real>
StepMetrics ReplicaTrainer<Real>::evaluate(const Batch& batch, std::int64_t iteration) {
  StepMetrics m;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  fill_alpha_metrics(m);
  m.grad_norm = m.alpha_grad = m.grad_norm_dale = m.grad_norm_free = nan;
  if (diverged()) {
    m.loss = m.accuracy = m.mean_rate = m.dale_violation = m.dale_sign_match = m.dale_columns = nan;
    for (const CostField& c : kCostFields) m.*c.metric = nan;
    return m;
  }
  const PassResult pass = loss_and_grad(batch, iteration, false);
  for (const CostField& c : kCostFields) m.*c.metric = pass.cost[static_cast<int>(c.cost)];
  m.loss = pass.loss;
  m.accuracy = pass.accuracy;
  m.mean_rate = pass.mean_rate;
  fill_dale_metrics(m);
  return m;
}

template <class Real>
void ReplicaTrainer<Real>::write_back(ReplicaModel& model) const {
  model.params.assign(params_.begin(), params_.end());
  model.moment1.assign(moment1_.begin(), moment1_.end());
  model.moment2.assign(moment2_.begin(), moment2_.end());
  model.adam_steps = adam_steps_;
  model.diverged_step = diverged_step_;
}

template class ReplicaTrainer<float>;
template class ReplicaTrainer<double>;

}  // namespace dalesim::cpu
