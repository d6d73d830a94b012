// Diagnostics against closed forms, and the initialisations against their stated properties.
#include <gtest/gtest.h>

#include <cmath>

#include "diagnostics/diagnostics.hpp"
#include "diagnostics/linalg.hpp"
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
