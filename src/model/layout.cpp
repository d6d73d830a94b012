// The parameter size table and the small accessors of ReplicaModel.
#include <algorithm>
#include <cmath>

#include "dalesim/math.hpp"
#include "dalesim/model.hpp"
#include "model/constraints.hpp"

namespace dalesim {

const char* to_string(Tensor t) {
  static const char* names[] = {"W_free", "W_dale", "W_in", "b", "W_out", "b_out", "a", "W_ei", "W_ie", "U_ei", "U_ie", "b_neg", "b_out_neg"};
  return names[static_cast<int>(t)];
}

ParamLayout ParamLayout::make(Arch arch, int N, int I, int O) {
  ModelConfig m;
  m.arch = arch;
  m.n_units = N;
  return make(m, I, O);
}

ParamLayout ParamLayout::make(const ModelConfig& m, int I, int O, bool split_bias) {
  ParamLayout l;
  const Arch arch = m.arch;
  const int N = m.n_units;
  l.arch = arch;
  l.dann = m.dann_part();
  l.N = N;
  l.I = I;
  l.O = O;
  const bool has_free = arch == Arch::free || arch == Arch::mix, has_dale = arch != Arch::free;
  const int n_i = l.dann ? m.rec_interneurons() : 0, n_i_in = arch == Arch::dann ? m.in_interneurons() : 0;
  const int shapes[kTensorCount][2] = {{has_free ? N : 0, N}, {has_dale ? N : 0, N},  {N, I},
                                       {N, 1},                {O, N},                 {O, 1},
                                       {arch == Arch::mix ? (m.alpha_per == AlphaPer::neuron ? N : 1) : 0, 1}, {n_i ? N : 0, n_i}, {n_i, N},
                                       {n_i_in ? N : 0, n_i_in}, {n_i_in, I},
                                       {split_bias ? N : 0, 1}, {split_bias ? O : 0, 1}};
  std::size_t offset = 0;
  for (int k = 0; k < kTensorCount; ++k) {
    l.slots[k].rows = shapes[k][0];
    l.slots[k].cols = shapes[k][0] ? shapes[k][1] : 0;
    l.slots[k].offset = offset;
    offset += l.slots[k].size();
  }
  l.size = offset;
  return l;
}

std::vector<double> ReplicaModel::alpha_units() const {
  const int N = layout.N;
  switch (layout.arch) {
    case Arch::free: return std::vector<double>(N, 0.0);
    case Arch::colei:
    case Arch::dann: return std::vector<double>(N, 1.0);
    case Arch::mix: break;
  }
  const bool clamp_form = cfg && cfg->model.alpha_form == AlphaForm::clamp;
  const double* a = tensor(Tensor::a);
  const bool per_neuron = layout[Tensor::a].size() == static_cast<std::size_t>(N) && N > 1;
  std::vector<double> out(N);
  for (int j = 0; j < N; ++j) out[j] = alpha_of(a[per_neuron ? j : 0], clamp_form);
  return out;
}

double ReplicaModel::alpha() const {
  if (layout.arch != Arch::mix) return layout.arch == Arch::free ? 0.0 : 1.0;
  const bool clamp_form = cfg && cfg->model.alpha_form == AlphaForm::clamp;
  const TensorSlot& slot = layout[Tensor::a];
  double sum = 0;
  for (std::size_t k = 0; k < slot.size(); ++k) sum += alpha_of(tensor(Tensor::a)[k], clamp_form);
  return sum / static_cast<double>(slot.size());
}

namespace {
// out -= A B for row-major A [n, k], B [k, m] (the DANN inhibition through its interneurons).
void subtract_product(const double* A, const double* B, int n, int k, int m, double* out) {
  for (int i = 0; i < n; ++i)
    for (int q = 0; q < k; ++q) {
      const double a = A[static_cast<std::size_t>(i) * k + q];
      if (a == 0) continue;
      for (int j = 0; j < m; ++j) out[static_cast<std::size_t>(i) * m + j] -= a * B[static_cast<std::size_t>(q) * m + j];
    }
}
}  // namespace

std::vector<double> ReplicaModel::effective_dale() const {
  const int N = layout.N;
  std::vector<double> d(static_cast<std::size_t>(N) * N, 0.0);
  if (!layout.has(Tensor::W_dale)) return d;
  const double* wd = tensor(Tensor::W_dale);
  const DaleMode mode = cfg ? cfg->train.dale : DaleMode::clamp;
  for (std::size_t k = 0; k < d.size(); ++k) d[k] = dale_weight<double>(mode, wd[k], col_sign[k % N]) * mask_rec[k];
  if (layout.dann)
    subtract_product(tensor(Tensor::W_ei), tensor(Tensor::W_ie), N, layout[Tensor::W_ei].cols, N, d.data());
  return d;
}

std::vector<double> ReplicaModel::effective_w_rec() const {
  const int N = layout.N;
  const std::vector<double> al = alpha_units();  // column j mixes with alpha_j
  std::vector<double> w = effective_dale();
  for (std::size_t k = 0; k < w.size(); ++k) w[k] *= al[k % N];
  if (layout.has(Tensor::W_free)) {
    const double* wf = tensor(Tensor::W_free);
    for (std::size_t k = 0; k < static_cast<std::size_t>(N) * N; ++k) w[k] += (1 - al[k % N]) * wf[k] * mask_rec[k];
  }
  return w;
}

std::vector<double> ReplicaModel::effective_w_in() const {
  const int N = layout.N, I = layout.I;
  std::vector<double> w(static_cast<std::size_t>(N) * I);
  const double* wi = tensor(Tensor::W_in);
  for (std::size_t k = 0; k < w.size(); ++k) w[k] = wi[k] * mask_in[k];
  if (layout.has(Tensor::U_ei))
    subtract_product(tensor(Tensor::U_ei), tensor(Tensor::U_ie), N, layout[Tensor::U_ei].cols, I, w.data());
  return w;
}

std::vector<double> ReplicaModel::effective_bias(bool readout) const {
  const Tensor pos = readout ? Tensor::b_out : Tensor::b, neg = readout ? Tensor::b_out_neg : Tensor::b_neg;
  std::vector<double> out(tensor(pos), tensor(pos) + layout[pos].size());
  if (layout.has(neg))
    for (std::size_t k = 0; k < out.size(); ++k) out[k] += tensor(neg)[k];
  return out;
}

ReplicaWeights to_weights(const ReplicaModel& m) {
  const ParamLayout& l = m.layout;
  ReplicaWeights w;
  w.N = l.N;
  w.I = l.I;
  w.O = l.O;
  const std::size_t nn = static_cast<std::size_t>(l.N) * l.N;
  auto copy = [&](Tensor t, std::size_t n) {
    std::vector<float> out(n, 0.f);
    if (l.has(t))
      for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<float>(m.tensor(t)[k]);
    return out;
  };
  const std::vector<double> wrec = m.effective_w_rec(), dale = m.effective_dale(), w_in = m.effective_w_in();
  w.W_rec.assign(wrec.begin(), wrec.end());
  w.W_dale.assign(dale.begin(), dale.end());  // the Dale part as the dynamics see it
  w.W_free = copy(Tensor::W_free, nn);
  w.W_in.assign(w_in.begin(), w_in.end());
  w.W_out = copy(Tensor::W_out, static_cast<std::size_t>(l.O) * l.N);
  const std::vector<double> b = m.effective_bias(false), b_out = m.effective_bias(true);
  w.b.assign(b.begin(), b.end());
  w.b_out.assign(b_out.begin(), b_out.end());
  w.alpha = l.arch == Arch::mix ? static_cast<float>(m.alpha()) : std::nanf("");
  const std::vector<double> al = m.alpha_units();
  w.alpha_units.assign(al.begin(), al.end());
  if (l.arch != Arch::mix) std::fill(w.alpha_units.begin(), w.alpha_units.end(), std::nanf(""));
  return w;
}

std::size_t estimate_training_bytes(const ReplicaConfig& cfg, int n_inputs, int n_outputs, int n_steps) {
  const ParamLayout l =
      ParamLayout::make(cfg.model, n_inputs, n_outputs, cfg.train.rule == Rule::eg && cfg.train.eg_split_bias);
  const std::size_t real = cfg.train.precision == Precision::f64 ? 8 : 4;
  const std::size_t B = cfg.task.batch, T = n_steps, N = l.N;
  // params, grads, 2 optimiser moments, effective matrices; BPTT: v, r, g per step; batch x, y, mask.
  const std::size_t params = 4 * l.size + 3 * N * N + 2 * N * n_inputs;
  const std::size_t activations = 3 * T * B * N + T * B * (n_inputs + 3 * n_outputs);
  return real * (params + activations) + 4 * N * (N + n_inputs + n_outputs);
}

void project_constraints(ReplicaModel& m) { project_constraints<double>(m, m.params.data()); }

}  // namespace dalesim

namespace dalesim {

std::size_t prune_recurrent(ReplicaModel& m, double fraction) {
  const std::size_t nn = m.mask_rec.size();
  const std::vector<double> w = m.effective_w_rec();
  std::vector<std::size_t> present;
  for (std::size_t k = 0; k < nn; ++k)
    if (m.mask_rec[k] != 0) present.push_back(k);
  const auto n_remove = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(present.size())));
  if (n_remove == 0) return 0;
  // Smallest |w| first; equal magnitudes in index order, so every backend removes the same ones.
  std::stable_sort(present.begin(), present.end(),
                   [&](std::size_t a, std::size_t b) { return std::fabs(w[a]) < std::fabs(w[b]); });
  for (std::size_t q = 0; q < n_remove; ++q) {
    const std::size_t k = present[q];
    m.mask_rec[k] = 0;
    for (Tensor t : {Tensor::W_free, Tensor::W_dale}) {
      if (!m.layout.has(t)) continue;
      const std::size_t at = m.layout[t].offset + k;
      m.params[at] = 0;
      if (!m.moment1.empty()) m.moment1[at] = 0;
      if (!m.moment2.empty()) m.moment2[at] = 0;
    }
  }
  return n_remove;
}

double recurrent_density(const ReplicaModel& m) {
  if (m.mask_rec.empty()) return 0;
  std::size_t n = 0;
  for (float x : m.mask_rec) n += x != 0;
  return static_cast<double>(n) / static_cast<double>(m.mask_rec.size());
}

}  // namespace dalesim
