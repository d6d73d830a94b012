// Diagnostics against closed forms, and the initialisations against their stated properties.
#include <gtest/gtest.h>

#include <cmath>

#include "diagnostics/diagnostics.hpp"
#include "cpu/replica_trainer.hpp"
#include "diagnostics/linalg.hpp"
#include "diagnostics/probe.hpp"
#include "test_util.hpp"

namespace dalesim {
namespace {

TEST(Diagnostics, SvdEntropyAndEffectiveRankClosedForms) {
  const int n = 7;
  std::vector<double> eye(n * n, 0.0), rank1(n * n);
  for (int i = 0; i < n; ++i) eye[i * n + i] = 2.5;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) rank1[i * n + j] = (i + 1.0) * (j - 2.5);
  const auto s_eye = singular_values(eye.data(), n, n);
  const auto s_r1 = singular_values(rank1.data(), n, n);
  EXPECT_NEAR(svd_entropy(s_eye), 1.0, 1e-12);
  EXPECT_NEAR(effective_rank(s_eye), n, 1e-9);
  EXPECT_NEAR(svd_entropy(s_r1), 0.0, 1e-9);
  EXPECT_NEAR(effective_rank(s_r1), 1.0, 1e-9);
  // Two equal singular values out of four: H = log 2 / log 4 = 0.5.
  EXPECT_NEAR(svd_entropy({3.0, 3.0, 0.0, 0.0}), 0.5, 1e-12);
}

TEST(Diagnostics, SpectralRadiusOfNonNormalMatrices) {
  // Rotation by theta scaled by r: complex pair r e^{+-i theta}; power iteration would oscillate.
  const double r = 1.7, th = 0.9;
  const double rot[4] = {r * std::cos(th), -r * std::sin(th), r * std::sin(th), r * std::cos(th)};
  EXPECT_NEAR(spectral_radius(rot, 2), r, 1e-12);
  // Upper-triangular with a huge off-diagonal entry: eigenvalues are the diagonal.
  const double tri[9] = {0.5, 100, 3, 0, -0.8, 50, 0, 0, 0.2};
  EXPECT_NEAR(spectral_radius(tri, 3), 0.8, 1e-12);
}

TEST(Diagnostics, MomentsAndWeightChange) {
  const Moments m = moments({1, 2, 3, 10});
  EXPECT_NEAR(m.mean, 4.0, 1e-12);
  EXPECT_NEAR(m.std, std::sqrt((9 + 4 + 1 + 36) / 4.0), 1e-12);
  EXPECT_GT(m.skew, 0.5);
  ReplicaWeights w;
  w.N = 2;
  w.W_rec = {1, -2, 0, 4};
  const Diagnostics d = compute_diagnostics(w, {1, -2, 0, 2}, 1);
  EXPECT_NEAR(d.rel_weight_change, 2.0 / 3.0, 1e-12);  // ||(0,0,0,2)|| / ||(1,-2,0,2)||
  EXPECT_NEAR(d.logw_e_mean, 0.0, 1e-12);               // E column 0: |1| (the zero is skipped)
  EXPECT_NEAR(d.logw_i_mean, (std::log(2.0) + std::log(4.0)) / 2, 1e-12);
  EXPECT_NEAR(d.spectral_radius, 4.0, 1e-12);
}

TEST(Init, ColEiHasRadiusRhoZeroDiagonalAndColumnSigns) {
  for (double ef : {0.5, 0.8, 0.9}) {
    ReplicaConfig c = test::tiny_config(Arch::colei, 40, 3);
    c.model.e_fraction = ef;
    c.model.rho = 1.5;
    const ReplicaModel m = test::model_of(c);
    const double* w = m.tensor(Tensor::W_dale);
    const int N = 40, n_e = c.model.n_exc();
    EXPECT_NEAR(spectral_radius(w, N), 1.5, 1e-9);
    double e_sum = 0, i_sum = 0;
    for (int i = 0; i < N; ++i) {
      EXPECT_EQ(w[i * N + i], 0.0);
      for (int j = 0; j < N; ++j) {
        if (i == j) continue;
        if (j < n_e) {
          EXPECT_GT(w[i * N + j], 0.0);
          e_sum += w[i * N + j];
        } else {
          EXPECT_LT(w[i * N + j], 0.0);
          i_sum -= w[i * N + j];
        }
      }
    }
    EXPECT_NEAR(e_sum / i_sum, 1.0, 0.15) << "E/I balance at e_fraction " << ef;
  }
}

TEST(Init, FreeGaussianAndOrthogonalScales) {
  ReplicaConfig c = test::tiny_config(Arch::free, 200, 5);
  c.model.g = 1.5;
  c.model.autapses = true;
  const ReplicaModel g = test::model_of(c);
  double s2 = 0;
  const double* w = g.tensor(Tensor::W_free);
  for (int k = 0; k < 200 * 200; ++k) s2 += w[k] * w[k];
  EXPECT_NEAR(s2 / (200 * 200), 1.5 * 1.5 / 200, 0.02 * 1.5 * 1.5 / 200);
  c.model.free_init = FreeInit::orthogonal;
  c.model.n_units = 30;
  const ReplicaModel o = test::model_of(c);
  const double* q = o.tensor(Tensor::W_free);
  for (int i = 0; i < 30; ++i)
    for (int j = 0; j < 30; ++j) {
      double dot = 0;
      for (int k = 0; k < 30; ++k) dot += q[i * 30 + k] * q[j * 30 + k];
      EXPECT_NEAR(dot, i == j ? 2.25 : 0.0, 1e-10);
    }
}

TEST(Init, ConnectionProbabilitiesAndMasks) {
  ReplicaConfig c = test::tiny_config(Arch::mix, 100, 9);
  c.model.e_fraction = 0.8;
  c.model.p_ee = 0.2;
  c.model.p_ei = 0.5;
  c.model.p_ie = 0.7;
  c.model.p_ii = 1.0;
  c.model.readout_from = Population::exc;
  c.model.input_to = Population::exc;
  const ReplicaModel m = test::model_of(c);
  double count[2][2] = {{0, 0}, {0, 0}}, total[2][2] = {{0, 0}, {0, 0}};
  for (int i = 0; i < 100; ++i)
    for (int j = 0; j < 100; ++j) {
      if (i == j) {
        EXPECT_EQ(m.mask_rec[i * 100 + j], 0.f);
        continue;
      }
      count[i >= 80][j >= 80] += m.mask_rec[i * 100 + j];
      total[i >= 80][j >= 80] += 1;
    }
  EXPECT_NEAR(count[0][0] / total[0][0], 0.2, 0.03);
  EXPECT_NEAR(count[0][1] / total[0][1], 0.5, 0.06);
  EXPECT_NEAR(count[1][0] / total[1][0], 0.7, 0.06);
  EXPECT_EQ(count[1][1], total[1][1]);
  for (int i = 80; i < 100; ++i)
    for (int k = 0; k < m.layout.I; ++k) EXPECT_EQ(m.tensor(Tensor::W_in)[i * m.layout.I + k], 0.0);
  for (int o = 0; o < m.layout.O; ++o)
    for (int j = 80; j < 100; ++j) EXPECT_EQ(m.tensor(Tensor::W_out)[o * 100 + j], 0.0);
  EXPECT_NEAR(m.alpha(), c.model.alpha_init, 1e-12);
}

TEST(Init, SeedsAreSeparateAndDeterministic) {
  ReplicaConfig a = test::tiny_config(Arch::mix, 10, 1), b = a;
  EXPECT_EQ(test::model_of(a).params, test::model_of(b).params);
  b.data_seed += 1;  // another data stream leaves the initial weights alone
  EXPECT_EQ(test::model_of(a).params, test::model_of(b).params);
  b.init_seed += 1;
  EXPECT_NE(test::model_of(a).params, test::model_of(b).params);
}

}  // namespace
}  // namespace dalesim

namespace dalesim {
namespace {

std::vector<double> w_free_of(const ReplicaConfig& c) {
  const ReplicaModel m = test::model_of(c);
  return std::vector<double>(m.tensor(Tensor::W_free), m.tensor(Tensor::W_free) + c.model.n_units * c.model.n_units);
}

ReplicaConfig free_config(int N, FreeInit init) {
  ReplicaConfig c = test::tiny_config(Arch::free, N, 12);
  c.model.free_init = init;
  c.model.autapses = true;  // no mask: the recipes' own statistics
  return c;
}

TEST(Init, UniformHasTheFrameworkDefaultBounds) {
  ReplicaConfig c = free_config(100, FreeInit::uniform);
  c.model.g = 2.0;
  const auto w = w_free_of(c);
  double s2 = 0, mx = 0;
  for (double x : w) {
    s2 += x * x;
    mx = std::max(mx, std::fabs(x));
  }
  EXPECT_LE(mx, 2.0 / 10.0);
  EXPECT_GT(mx, 0.99 * 2.0 / 10.0);
  EXPECT_NEAR(s2 / w.size(), 4.0 / (3 * 100), 0.05 * 4.0 / 300);  // variance of U(-a, a) is a^2/3
}

TEST(Init, LognormalHasMeanStdRatioAndScale) {
  ReplicaConfig c = free_config(200, FreeInit::lognormal);
  c.model.e_fraction = 0.8;
  const auto w = w_free_of(c);
  std::vector<double> mags;
  double s2 = 0;
  for (size_t k = 0; k < w.size(); ++k) {
    mags.push_back(std::fabs(w[k]));
    s2 += w[k] * w[k];
    EXPECT_EQ(w[k] > 0, static_cast<int>(k % 200) < 160) << "Dale signs by presynaptic type";
  }
  const Moments m = moments(mags);
  EXPECT_NEAR(m.mean / m.std, 1.5, 0.05);
  EXPECT_NEAR(std::sqrt(s2 / w.size()), 1.0 / std::sqrt(200.0), 0.02 / std::sqrt(200.0));
  EXPECT_GT(m.skew, 0.5);  // log-normal: right-skewed magnitudes
  std::vector<double> logs;
  for (double x : mags) logs.push_back(std::log(x));
  EXPECT_NEAR(moments(logs).skew, 0.0, 0.05);  // ... whose logarithms are symmetric
  c.model.lognormal_signs = LognormalSigns::random;
  int pos = 0;
  for (double x : w_free_of(c)) pos += x > 0;
  EXPECT_NEAR(pos / 40000.0, 0.5, 0.01);
}

TEST(Init, LowRankHasTheRankAndTheGaussiansFrobeniusNorm) {
  for (int rank : {1, 5, 30}) {
    ReplicaConfig c = free_config(40, FreeInit::lowrank);
    c.model.rank = rank;
    c.model.g = 1.25;
    const auto w = w_free_of(c);
    ReplicaConfig full = c;
    full.model.free_init = FreeInit::gaussian;  // the same draw before truncation
    const auto g = w_free_of(full);
    double fw = 0, fg = 0;
    for (size_t k = 0; k < w.size(); ++k) {
      fw += w[k] * w[k];
      fg += g[k] * g[k];
    }
    EXPECT_NEAR(std::sqrt(fw), std::sqrt(fg), 1e-9 * std::sqrt(fg));
    const auto s = singular_values(w.data(), 40, 40);
    EXPECT_GT(s[rank - 1], 1e-6 * s[0]);
    if (rank < 40) EXPECT_LT(s[rank], 1e-9 * s[0]) << "rank " << rank;
  }
}

TEST(Init, SpectrumTransplantKeepsVectorsAndTakesTheDonorsValues) {
  ReplicaConfig a = free_config(60, FreeInit::uniform);
  a.model.ei_ratio = 9;  // the published ColEI donor: 9:1, rho 1.5
  a.model.rho = 1.5;
  ReplicaConfig t = a;
  t.model.spectrum_from = SpectrumFrom::colei;
  const auto wa = w_free_of(a), wt = w_free_of(t);
  std::vector<double> ua, sa, va, ut, st, vt;
  svd(wa.data(), 60, ua, sa, va);
  svd(wt.data(), 60, ut, st, vt);
  for (int k = 0; k < 10; ++k) {  // leading singular vectors are A's (up to sign)
    double dot = 0;
    for (int i = 0; i < 60; ++i) dot += ua[i * 60 + k] * ut[i * 60 + k];
    EXPECT_NEAR(std::fabs(dot), 1.0, 1e-6) << "vector " << k;
  }
  // ColEI's spectrum is dispersed (a large outlier): lower normalised SVD entropy than uniform's.
  EXPECT_LT(svd_entropy(st), svd_entropy(sa) - 0.02);
  EXPECT_GT(st[0] / st[1], sa[0] / sa[1]);
}

TEST(Init, EiRatioGivesThePublishedSplit) {
  ModelConfig m;
  m.n_units = 100;
  m.ei_ratio = 9;
  EXPECT_EQ(m.n_inh(), 10);
  m.n_units = 30;
  m.ei_ratio = 4;
  EXPECT_EQ(m.n_inh(), 6);
  m.ei_ratio = 1;
  EXPECT_EQ(m.n_inh(), 15);
  m.ei_ratio = 0;
  m.e_fraction = 0.8;
  EXPECT_EQ(m.n_exc(), 24);
}

}  // namespace
}  // namespace dalesim

namespace dalesim {
namespace {

TEST(Probe, ComparisonClosedForms) {
  ProbeActivity a, b;
  a.T = b.T = 1;
  a.B = b.B = 2;
  a.N = b.N = 3;
  a.kernel = {1, 0, 0, 1};
  b.kernel = {1, 0, 0, 0};
  a.active = {true, false, true, false, false, true};
  b.active = {true, false, false, false, false, true};  // unit 2 flips once
  const ProbeComparison c = compare_probes(a, b);
  EXPECT_NEAR(c.rep_alignment, 1 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(c.sign_similarity, 5.0 / 6.0, 1e-12);
  EXPECT_NEAR(c.units_unchanged, 2.0 / 3.0, 1e-12);
  const ProbeComparison same = compare_probes(a, a);
  EXPECT_DOUBLE_EQ(same.rep_alignment, 1.0);
  EXPECT_DOUBLE_EQ(same.sign_similarity, 1.0);
}

TEST(Probe, ActivityIsTheForwardPassesRates) {
  ReplicaConfig c = test::tiny_config(Arch::mix, 9, 2);
  const ReplicaModel m = test::model_of(c);
  const Batch probe = test::batch_of(c, kProbeIteration);
  const ProbeActivity p = probe_activity(m, probe);
  ASSERT_EQ(p.kernel.size(), 9u);  // B = 3
  // The kernel is symmetric and positive semi-definite on its diagonal; the bitset matches r > 0.
  for (int a = 0; a < 3; ++a) {
    EXPECT_GE(p.kernel[a * 3 + a], 0.0);
    for (int b = 0; b < 3; ++b) EXPECT_DOUBLE_EQ(p.kernel[a * 3 + b], p.kernel[b * 3 + a]);
  }
  cpu::ReplicaTrainer<double> t(m);
  t.loss_and_grad(probe, kProbeIteration, false);
  for (size_t k = 0; k < t.rates().size(); ++k) EXPECT_EQ(p.active[k], t.rates()[k] > 0);
}

}  // namespace
}  // namespace dalesim

namespace dalesim {
namespace {
TEST(Diagnostics, LogWeightHistogramsByType) {
  ReplicaWeights w;
  w.N = 3;
  // Columns 0-1 excitatory, column 2 inhibitory; zeros are skipped; extremes land in the end bins.
  w.W_rec = {1.0f, std::exp(-3.2f), -2.0f, 0.0f, 1e-12f, -std::exp(5.0f), std::exp(-0.1f), 0.0f, 0.0f};
  const Diagnostics d = compute_diagnostics(w, w.W_rec, 2);
  ASSERT_EQ(d.logw_hist_e.size(), static_cast<size_t>(kLogwBins));
  auto bin = [](double lnw) { return static_cast<int>(std::floor((lnw - kLogwMin) / kLogwBinWidth)); };
  EXPECT_EQ(d.logw_hist_e[bin(0.0)], 1.f);   // |1| -> ln 0
  EXPECT_EQ(d.logw_hist_e[bin(-3.2)], 1.f);
  EXPECT_EQ(d.logw_hist_e[bin(-0.1)], 1.f);
  EXPECT_EQ(d.logw_hist_e[0], 1.f);          // 1e-12: ln = -27.6, below the range
  double total_e = 0, total_i = 0;
  for (float c : d.logw_hist_e) total_e += c;
  for (float c : d.logw_hist_i) total_i += c;
  EXPECT_EQ(total_e, 4.0);
  EXPECT_EQ(total_i, 2.0);
  EXPECT_EQ(d.logw_hist_i[bin(std::log(2.0))], 1.f);
  EXPECT_EQ(d.logw_hist_i[kLogwBins - 1], 1.f);  // ln = 5, above the range
}
}  // namespace
}  // namespace dalesim

#include "diagnostics/activity.hpp"

namespace dalesim {
namespace {

// Closed forms on constructed activity, T = 4 steps, B = 1 trial.
TEST(Activity, CorrelationsSparsenessAndBalanceOfConstructedRates) {
  {
    // E units 0..2: t, 2t + 1, 5 - t (pairs +1, -1, -1: mean -1/3); I units 3, 4: one constant
    // (no pair defined: NaN).
    const int T = 4, N = 5;
    std::vector<double> r(T * N);
    for (int t = 0; t < T; ++t) {
      const double row[N] = {double(t), 2.0 * t + 1, 5.0 - t, std::sin(t + 0.3), 0.7};
      for (int i = 0; i < N; ++i) r[t * N + i] = row[i];
    }
    const std::vector<float> sign{1, 1, 1, -1, -1};
    const ActivityStats s = activity_stats(r, T, 1, N, sign, std::vector<double>(N * N, 0.0));
    EXPECT_NEAR(s.corr_e, -1.0 / 3, 1e-12);
    EXPECT_TRUE(std::isnan(s.corr_i));
  }
  {
    // Sparseness (mean r)^2 / mean r^2 per step: (1,0,0,0) -> 1/4, (1,1,1,1) -> 1,
    // (2,0,2,0) -> 1/2, silent -> skipped: mean (1/4 + 1 + 1/2) / 3.
    const int T = 4, N = 4;
    const std::vector<double> r = {1, 0, 0, 0, 1, 1, 1, 1, 2, 0, 2, 0, 0, 0, 0, 0};
    const ActivityStats s = activity_stats(r, T, 1, N, {1, 1, -1, -1}, std::vector<double>(N * N, 0.0));
    EXPECT_NEAR(s.sparseness, (0.25 + 1 + 0.5) / 3, 1e-12);
  }
  {
    // One E unit (0) and one I unit (1) with rates t and 3t + 1. Unit 0 gets E current 1 * t and I
    // current 1 * (3t + 1): correlation 1; unit 1 gets E current -2 t (a non-Dale weight) and I
    // current 0.5 (3t + 1): correlation -1. Balance: (1 - 1) / 2; with unit 1's E weight +2, 1.
    const int T = 4, N = 2;
    std::vector<double> r(T * N);
    for (int t = 0; t < T; ++t) r[t * N] = t, r[t * N + 1] = 3.0 * t + 1;
    const std::vector<float> sign{1, -1};
    EXPECT_NEAR(activity_stats(r, T, 1, N, sign, {1, -1, -2, -0.5}).ei_balance, 0.0, 1e-12);
    EXPECT_NEAR(activity_stats(r, T, 1, N, sign, {1, -1, 2, -0.5}).ei_balance, 1.0, 1e-12);
  }
}

}  // namespace
}  // namespace dalesim
