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
enum Stream : std::uint64_t { kMask = 1, kFree, kDale, kIn, kOut, kDonor, kDannEi, kDannInEe, kDannInEi, kBias };

CounterRng stream(const ReplicaConfig& cfg, Stream s) { return CounterRng{cfg.init_seed, s}; }

// Connection probability onto unit i from unit j (p_XY: onto type X from type Y).
double connection_probability(const ModelConfig& m, bool post_exc, bool pre_exc) {
  if (post_exc) return pre_exc ? m.p_ee : m.p_ei;
  return pre_exc ? m.p_ie : m.p_ii;
}

// Draws an N x N matrix of one free family from `stream` (see docs/model.md for the recipes).
void draw_free(const ReplicaModel& m, FreeInit family, Stream stream_id, double* w) {
  const ReplicaConfig& cfg = *m.cfg;
  const int N = m.layout.N;
  const std::size_t nn = static_cast<std::size_t>(N) * N;
  const CounterRng rng = stream(cfg, stream_id);
  const double g = cfg.model.g, sqrt_n = std::sqrt(static_cast<double>(N));
  switch (family) {
    case FreeInit::gaussian:
      for (std::size_t k = 0; k < nn; ++k) w[k] = g / sqrt_n * rng.normal(k);
      break;
    case FreeInit::orthogonal:
      for (std::size_t k = 0; k < nn; ++k) w[k] = rng.normal(k);
      orthonormalise(w, N);
      for (std::size_t k = 0; k < nn; ++k) w[k] *= g;
      break;
    case FreeInit::uniform:  // the common framework default U(-1/sqrt(N), 1/sqrt(N)), times g
      for (std::size_t k = 0; k < nn; ++k) w[k] = g / sqrt_n * (2 * rng.uniform(k) - 1);
      break;
    case FreeInit::lognormal: {
      // Target std s = g / sqrt(fan-in), magnitudes with mean r s' and std s', s' = s / sqrt(1 + r^2).
      const double r = cfg.model.lognormal_ratio, sd = g / sqrt_n / std::sqrt(1 + r * r), mean = r * sd;
      const double sigma2 = std::log(1 + sd * sd / (mean * mean)), mu = std::log(mean) - sigma2 / 2;
      const bool dale = cfg.model.lognormal_signs == LognormalSigns::dale;
      for (std::size_t k = 0; k < nn; ++k) {
        const double mag = std::exp(mu + std::sqrt(sigma2) * rng.normal(k));
        const double sign = dale ? m.col_sign[k % N] : (rng.below(k, 2) ? 1.0 : -1.0);
        w[k] = sign * mag;
      }
      break;
    }
    case FreeInit::lowrank: {  // Liu et al. 2024: Gaussian, SVD-truncated to rank r, same Frobenius norm
      for (std::size_t k = 0; k < nn; ++k) w[k] = g / sqrt_n * rng.normal(k);
      std::vector<double> u, sv, vt;
      svd(w, N, u, sv, vt);
      double full = 0, kept = 0;
      for (int k = 0; k < N; ++k) {
        full += sv[k] * sv[k];
        if (k < cfg.model.rank) kept += sv[k] * sv[k];
      }
      sv.resize(std::min(N, cfg.model.rank));
      const std::vector<double> low = compose_svd(u, sv, vt, N);
      const double scale = kept > 0 ? std::sqrt(full / kept) : 0.0;
      for (std::size_t k = 0; k < nn; ++k) w[k] = low[k] * scale;
      break;
    }
  }
}

// ColEI: positive magnitudes, E columns Exp(s_e), I columns Exp(s_i) with s_i chosen so that each
// row's expected E and I input balance; signs by presynaptic type; then rescaled to radius rho.
void init_dale(const ReplicaModel& m, Stream stream_id, double* w) {
  const ReplicaConfig& cfg = *m.cfg;
  const int N = m.layout.N, n_e = cfg.model.n_exc(), n_i = N - n_e;
  const CounterRng rng = stream(cfg, stream_id);
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

// A DANN layer with fan-in k (Li et al. 2023, numerator 1/3): W_ee ~ Exp(s),
// s = sqrt((k / (k - 1)) (1/3) / k) (sqrt(1/3) for k = 1); every row of W_ie is the column-mean
// row of W_ee; W_ei ~ Exp(s sqrt(k / n_i)), each row normalised to sum 1. Then W_ei W_ie = 1 m^T
// and W_ee - W_ei W_ie has zero-mean columns.
void init_dann_layer(const ReplicaConfig& cfg, Stream ee_stream, Stream ei_stream, int rows, int k, int n_i,
                     const float* mask, double* w_ee, double* w_ei, double* w_ie) {
  const double s = k > 1 ? std::sqrt((double(k) / (k - 1)) * (1.0 / 3.0) / k) : std::sqrt(1.0 / 3.0);
  const CounterRng ee = stream(cfg, ee_stream), ei = stream(cfg, ei_stream);
  for (std::size_t q = 0; q < static_cast<std::size_t>(rows) * k; ++q) w_ee[q] = ee.exponential(q, s) * mask[q];
  for (int j = 0; j < k; ++j) {
    double mean = 0;
    for (int i = 0; i < rows; ++i) mean += w_ee[static_cast<std::size_t>(i) * k + j];
    mean /= rows;
    for (int p = 0; p < n_i; ++p) w_ie[static_cast<std::size_t>(p) * k + j] = mean;
  }
  for (int i = 0; i < rows; ++i) {
    double sum = 0;
    for (int p = 0; p < n_i; ++p) {
      double& x = w_ei[static_cast<std::size_t>(i) * n_i + p];
      x = ei.exponential(static_cast<std::size_t>(i) * n_i + p, s * std::sqrt(double(k) / n_i));
      sum += x;
    }
    for (int p = 0; p < n_i; ++p) w_ei[static_cast<std::size_t>(i) * n_i + p] /= sum;
  }
}

// Li et al. 2023: W = U_A diag(S_B) V_A^T, the singular vectors of W_free's own init (A) and the
// singular values of an independent draw of the family `spectrum_from` (B).
void transplant_spectrum(const ReplicaModel& m, double* w) {
  const int N = m.layout.N;
  std::vector<double> donor(static_cast<std::size_t>(N) * N);
  const SpectrumFrom from = m.cfg->model.spectrum_from;
  if (from == SpectrumFrom::colei)
    init_dale(m, kDonor, donor.data());
  else
    draw_free(m, static_cast<FreeInit>(static_cast<int>(from) - 1), kDonor, donor.data());
  std::vector<double> u, s, vt, du, ds, dvt;
  svd(w, N, u, s, vt);
  svd(donor.data(), N, du, ds, dvt);
  const std::vector<double> out = compose_svd(u, ds, vt, N);
  std::copy(out.begin(), out.end(), w);
}

}  // namespace

ReplicaModel init_replica(const ReplicaConfig& cfg, int n_inputs, int n_outputs) {
  const ModelConfig& mc = cfg.model;
  const int N = mc.n_units, I = n_inputs, O = n_outputs, n_e = mc.n_exc();
  ReplicaModel m;
  m.cfg = &cfg;
  m.layout = ParamLayout::make(mc, I, O, cfg.train.rule == Rule::eg && cfg.train.eg_split_bias);
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

  if (m.layout.has(Tensor::W_free)) {
    double* wf = m.tensor(Tensor::W_free);
    draw_free(m, mc.free_init, kFree, wf);
    if (mc.spectrum_from != SpectrumFrom::none) transplant_spectrum(m, wf);
  }
  if (m.layout.dann)
    init_dann_layer(cfg, kDale, kDannEi, N, N, m.layout[Tensor::W_ei].cols, m.mask_rec.data(), m.tensor(Tensor::W_dale),
                    m.tensor(Tensor::W_ei), m.tensor(Tensor::W_ie));
  else if (m.layout.has(Tensor::W_dale))
    init_dale(m, kDale, m.tensor(Tensor::W_dale));
  const CounterRng in_rng = stream(cfg, kIn), out_rng = stream(cfg, kOut);
  double* w_in = m.tensor(Tensor::W_in);
  for (std::size_t k = 0; k < m.layout[Tensor::W_in].size(); ++k) {
    const double w = in_rng.normal(k) * mc.g_in / std::sqrt(I);
    w_in[k] = mc.input_sign == InputSign::positive ? std::fabs(w) : w;
  }
  double* w_out = m.tensor(Tensor::W_out);
  for (std::size_t k = 0; k < m.layout[Tensor::W_out].size(); ++k)
    w_out[k] = out_rng.normal(k) / std::sqrt(std::max(1, n_read));
  if (m.layout.has(Tensor::U_ei))  // arch dann: the input is a DANN layer too
    init_dann_layer(cfg, kDannInEe, kDannInEi, N, I, m.layout[Tensor::U_ei].cols, m.mask_in.data(),
                    m.tensor(Tensor::W_in), m.tensor(Tensor::U_ei), m.tensor(Tensor::U_ie));
  if (m.layout.has(Tensor::b_neg)) {
    // EG's split biases (Cornford et al. 2024): b+ ~ U(0, sqrt(2) bound), b- ~ U(-sqrt(2) bound, 0),
    // bound = 1 / sqrt(fan-in) = 1 / sqrt(N) for both the recurrent and the readout bias.
    const CounterRng rng = stream(cfg, kBias);
    const double top = std::sqrt(2.0) / std::sqrt(static_cast<double>(N));
    std::uint64_t k = 0;
    for (Tensor t : {Tensor::b, Tensor::b_neg, Tensor::b_out, Tensor::b_out_neg}) {
      const double sign = (t == Tensor::b || t == Tensor::b_out) ? 1.0 : -1.0;
      for (std::size_t q = 0; q < m.layout[t].size(); ++q) m.tensor(t)[q] = sign * top * rng.uniform(k++);
    }
  }
  if (m.layout.has(Tensor::a)) {
    const double a = mc.alpha_form == AlphaForm::clamp ? mc.alpha_init : std::log(mc.alpha_init / (1 - mc.alpha_init));
    std::fill(m.tensor(Tensor::a), m.tensor(Tensor::a) + m.layout[Tensor::a].size(), a);
  }
  // Reparameterised Dale (abs, relu): the raw value is the magnitude, so the effective weights
  // sign x |raw| start where the projected ones do.
  if (m.layout.has(Tensor::W_dale) && cfg.train.dale != DaleMode::clamp) {
    double* wd = m.tensor(Tensor::W_dale);
    for (std::size_t k = 0; k < m.layout[Tensor::W_dale].size(); ++k) wd[k] = std::fabs(wd[k]);
  }
  project_constraints<double>(m, m.params.data());
  return m;
}

}  // namespace dalesim
