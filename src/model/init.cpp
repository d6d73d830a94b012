// Initial parameters and fixed structure of a replica (SPEC §4), drawn from counter-based streams
// of its init seed so that the result does not depend on thread or replica order.
#include <cmath>

#include "dalesim/model.hpp"
#include "dalesim/rng.hpp"
#include "diagnostics/linalg.hpp"
#include "model/constraints.hpp"

namespace dalesim {

namespace {

// One stream per drawn quantity, so adding a tensor never shifts the others.
enum Stream : std::uint64_t { kMask = 1, kFree, kDale, kIn, kOut };

CounterRng stream(const ReplicaConfig& cfg, Stream s) { return CounterRng{cfg.init_seed, s}; }

// Connection probability onto unit i from unit j (p_XY: onto type X from type Y).
double connection_probability(const ModelConfig& m, bool post_exc, bool pre_exc) {
  if (post_exc) return pre_exc ? m.p_ee : m.p_ei;
  return pre_exc ? m.p_ie : m.p_ii;
}

void init_free(const ReplicaConfig& cfg, double* w, int N) {
  const CounterRng rng = stream(cfg, kFree);
  const double g = cfg.model.g;
  for (std::size_t k = 0; k < static_cast<std::size_t>(N) * N; ++k) w[k] = rng.normal(k);
  if (cfg.model.free_init == FreeInit::orthogonal) {
    orthonormalise(w, N);
    for (std::size_t k = 0; k < static_cast<std::size_t>(N) * N; ++k) w[k] *= g;
  } else {
    for (std::size_t k = 0; k < static_cast<std::size_t>(N) * N; ++k) w[k] *= g / std::sqrt(N);
  }
}

// ColEI: positive magnitudes, E columns Exp(s_e), I columns Exp(s_i) with s_i chosen so that each
// row's expected E and I input balance; signs by presynaptic type; then rescaled to radius rho.
void init_dale(const ReplicaModel& m, double* w) {
  const ReplicaConfig& cfg = *m.cfg;
  const int N = m.layout.N, n_e = cfg.model.n_exc(), n_i = N - n_e;
  const CounterRng rng = stream(cfg, kDale);
  const double two_pi = 6.283185307179586;
  const double s_e = 1.0 / std::sqrt(((two_pi - 1) / two_pi) * (n_e + double(n_e) * n_e / n_i));
  for (int i = 0; i < N; ++i) {
    const bool post_exc = i < n_e;
    const double p_e = connection_probability(cfg.model, post_exc, true);
    const double p_i = connection_probability(cfg.model, post_exc, false);
    const double s_i = s_e * (n_e * p_e) / (n_i * p_i);
    for (int j = 0; j < N; ++j) {
      const std::size_t k = static_cast<std::size_t>(i) * N + j;
      const bool pre_exc = j < n_e;
      w[k] = m.col_sign[j] * rng.exponential(k, pre_exc ? s_e : s_i) * m.mask_rec[k];
    }
  }
  const double r = spectral_radius(w, N);
  if (r > 0)
    for (std::size_t k = 0; k < static_cast<std::size_t>(N) * N; ++k) w[k] *= cfg.model.rho / r;
}

}  // namespace

ReplicaModel init_replica(const ReplicaConfig& cfg, int n_inputs, int n_outputs) {
  const ModelConfig& mc = cfg.model;
  const int N = mc.n_units, I = n_inputs, O = n_outputs, n_e = mc.n_exc();
  ReplicaModel m;
  m.cfg = &cfg;
  m.layout = ParamLayout::make(mc.arch, N, I, O);
  m.params.assign(m.layout.size, 0.0);

  m.col_sign.resize(N);
  m.leak.resize(N);
  m.noise_std.resize(N);
  for (int j = 0; j < N; ++j) {
    const bool exc = j < n_e;
    const double tau = exc ? mc.tau_e : mc.tau_i;
    m.col_sign[j] = exc ? 1.f : -1.f;
    m.leak[j] = static_cast<float>(mc.dt / tau);
    // Inside the drive (which is scaled by dt/tau): per-step std sigma * sqrt(2 dt / tau) overall.
    m.noise_std[j] = static_cast<float>(mc.sigma_rec * std::sqrt(2 * tau / mc.dt));
  }

  const CounterRng mask_rng = stream(cfg, kMask);
  m.mask_rec.resize(static_cast<std::size_t>(N) * N);
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      const std::size_t k = static_cast<std::size_t>(i) * N + j;
      const double p = connection_probability(mc, i < n_e, j < n_e);
      const bool connected = (i != j || mc.autapses) && (p >= 1.0 || mask_rng.uniform(k) < p);
      m.mask_rec[k] = connected ? 1.f : 0.f;
    }
  m.mask_in.assign(static_cast<std::size_t>(N) * I, 1.f);
  if (mc.input_to == Population::exc)
    for (int i = n_e; i < N; ++i)
      for (int k = 0; k < I; ++k) m.mask_in[static_cast<std::size_t>(i) * I + k] = 0.f;
  m.mask_out.assign(static_cast<std::size_t>(O) * N, 1.f);
  int n_read = N;
  if (mc.readout_from == Population::exc) {
    n_read = n_e;
    for (int o = 0; o < O; ++o)
      for (int j = n_e; j < N; ++j) m.mask_out[static_cast<std::size_t>(o) * N + j] = 0.f;
  }

  if (m.layout.has(Tensor::W_free)) init_free(cfg, m.tensor(Tensor::W_free), N);
  if (m.layout.has(Tensor::W_dale)) init_dale(m, m.tensor(Tensor::W_dale));
  const CounterRng in_rng = stream(cfg, kIn), out_rng = stream(cfg, kOut);
  double* w_in = m.tensor(Tensor::W_in);
  for (std::size_t k = 0; k < m.layout[Tensor::W_in].size(); ++k) {
    const double w = in_rng.normal(k) * mc.g_in / std::sqrt(I);
    w_in[k] = mc.input_sign == InputSign::positive ? std::fabs(w) : w;
  }
  double* w_out = m.tensor(Tensor::W_out);
  for (std::size_t k = 0; k < m.layout[Tensor::W_out].size(); ++k)
    w_out[k] = out_rng.normal(k) / std::sqrt(std::max(1, n_read));
  if (m.layout.has(Tensor::a)) m.tensor(Tensor::a)[0] = std::log(mc.alpha_init / (1 - mc.alpha_init));
  project_constraints<double>(m, m.params.data());
  return m;
}

}  // namespace dalesim
