// The parameter size table and the small accessors of ReplicaModel.
#include <cmath>

#include "dalesim/model.hpp"
#include "model/constraints.hpp"

namespace dalesim {

const char* to_string(Tensor t) {
  static const char* names[] = {"W_free", "W_dale", "W_in", "b", "W_out", "b_out", "a"};
  return names[static_cast<int>(t)];
}

ParamLayout ParamLayout::make(Arch arch, int N, int I, int O) {
  ParamLayout l;
  l.arch = arch;
  l.N = N;
  l.I = I;
  l.O = O;
  const bool has_free = arch != Arch::colei, has_dale = arch != Arch::free, has_alpha = arch == Arch::mix;
  const int shapes[kTensorCount][2] = {
      {has_free ? N : 0, N}, {has_dale ? N : 0, N}, {N, I}, {N, 1}, {O, N}, {O, 1}, {has_alpha ? 1 : 0, 1}};
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

double ReplicaModel::alpha() const {
  switch (layout.arch) {
    case Arch::free: return 0.0;
    case Arch::colei: return 1.0;
    case Arch::mix: return 1.0 / (1.0 + std::exp(-tensor(Tensor::a)[0]));
  }
  return 0.0;
}

std::vector<double> ReplicaModel::effective_w_rec() const {
  const int N = layout.N;
  const double al = alpha();
  std::vector<double> w(static_cast<std::size_t>(N) * N, 0.0);
  const double* wf = layout.has(Tensor::W_free) ? tensor(Tensor::W_free) : nullptr;
  const double* wd = layout.has(Tensor::W_dale) ? tensor(Tensor::W_dale) : nullptr;
  for (std::size_t k = 0; k < w.size(); ++k) {
    double v = 0;
    if (wd) v += al * wd[k];
    if (wf) v += (1 - al) * wf[k];
    w[k] = v * mask_rec[k];
  }
  return w;
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
  const std::vector<double> wrec = m.effective_w_rec();
  w.W_rec.assign(wrec.begin(), wrec.end());
  w.W_dale = copy(Tensor::W_dale, nn);
  w.W_free = copy(Tensor::W_free, nn);
  w.W_in = copy(Tensor::W_in, static_cast<std::size_t>(l.N) * l.I);
  w.W_out = copy(Tensor::W_out, static_cast<std::size_t>(l.O) * l.N);
  w.b = copy(Tensor::b, l.N);
  w.b_out = copy(Tensor::b_out, l.O);
  w.alpha = l.arch == Arch::mix ? static_cast<float>(m.alpha()) : std::nanf("");
  return w;
}

std::size_t estimate_training_bytes(const ReplicaConfig& cfg, int n_inputs, int n_outputs, int n_steps) {
  const ParamLayout l = ParamLayout::make(cfg.model.arch, cfg.model.n_units, n_inputs, n_outputs);
  const std::size_t real = cfg.train.precision == Precision::f64 ? 8 : 4;
  const std::size_t B = cfg.task.batch, T = n_steps, N = l.N;
  // params, grads, 2 optimiser moments, effective matrices; BPTT: v, r, g per step; batch x, y, mask.
  const std::size_t params = 4 * l.size + 3 * N * N + 2 * N * n_inputs;
  const std::size_t activations = 3 * T * B * N + T * B * (n_inputs + 3 * n_outputs);
  return real * (params + activations) + 4 * N * (N + n_inputs + n_outputs);
}

void project_constraints(ReplicaModel& m) { project_constraints<double>(m, m.params.data()); }

}  // namespace dalesim
