// Probe-batch activity and its comparison with step 0.
#include "diagnostics/probe.hpp"

#include <cmath>

#include "cpu/replica_trainer.hpp"

namespace dalesim {

ProbeActivity probe_activity(const ReplicaModel& model, const Batch& probe) {
  cpu::ReplicaTrainer<double> forward(model);
  forward.loss_and_grad(probe, kProbeIteration, false);
  const std::vector<double>& r = forward.rates();
  ProbeActivity out;
  out.T = probe.T;
  out.B = probe.B;
  out.N = model.layout.N;
  const std::size_t BN = static_cast<std::size_t>(out.B) * out.N;
  const std::vector<double> rates(r.begin(), r.end());
  out.stats = activity_stats(rates, out.T, out.B, out.N, model.col_sign, model.effective_w_rec());
  out.active.resize(r.size());
  for (std::size_t k = 0; k < r.size(); ++k) out.active[k] = r[k] > 0;
  const double* h = r.data() + (out.T - 1) * BN;  // last step, [B, N]
  out.kernel.assign(static_cast<std::size_t>(out.B) * out.B, 0.0);
  for (int a = 0; a < out.B; ++a)
    for (int b = 0; b < out.B; ++b) {
      double dot = 0;
      for (int i = 0; i < out.N; ++i) dot += h[a * out.N + i] * h[b * out.N + i];
      out.kernel[static_cast<std::size_t>(a) * out.B + b] = dot;
    }
  return out;
}

ProbeComparison compare_probes(const ProbeActivity& initial, const ProbeActivity& now) {
  ProbeComparison c{std::nan(""), std::nan(""), std::nan("")};
  double dot = 0, n0 = 0, n1 = 0;
  for (std::size_t k = 0; k < initial.kernel.size() && k < now.kernel.size(); ++k) {
    dot += initial.kernel[k] * now.kernel[k];
    n0 += initial.kernel[k] * initial.kernel[k];
    n1 += now.kernel[k] * now.kernel[k];
  }
  if (n0 > 0 && n1 > 0) c.rep_alignment = dot / std::sqrt(n0 * n1);
  if (initial.active.size() != now.active.size() || now.active.empty()) return c;
  std::size_t same = 0;
  std::vector<bool> unit_changed(now.N, false);
  for (std::size_t k = 0; k < now.active.size(); ++k) {
    const bool eq = initial.active[k] == now.active[k];
    same += eq;
    if (!eq) unit_changed[k % now.N] = true;
  }
  c.sign_similarity = static_cast<double>(same) / now.active.size();
  int unchanged = 0;
  for (bool changed : unit_changed) unchanged += !changed;
  c.units_unchanged = static_cast<double>(unchanged) / now.N;
  return c;
}

}  // namespace dalesim
