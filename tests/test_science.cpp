// The recurrent DANN and the learning rules: initialisation properties, one-step closed forms of
// EG, gd_sign and mirror descent, the DANN correction, and sign invariants after training.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu/replica_trainer.hpp"
#include "diagnostics/linalg.hpp"
#include "test_util.hpp"

namespace dalesim {
namespace {

ReplicaConfig dann_config(int N, std::int64_t seed = 4) {
  ReplicaConfig c = test::tiny_config(Arch::dann, N, seed);
  c.model.autapses = true;
  return c;
}

TEST(Dann, InitHasZeroMeanColumnsAndNonNegativeFactors) {
  const ReplicaConfig c = dann_config(200);
  const ReplicaModel m = test::model_of(c);
  const int N = 200, n_i = m.layout[Tensor::W_ei].cols;
  EXPECT_EQ(n_i, 20);  // max(1, n_e / 10)
  const std::vector<double> w = m.effective_dale();
  for (int j = 0; j < N; ++j) {
    double col = 0;
    for (int i = 0; i < N; ++i) col += w[i * N + j];
    EXPECT_NEAR(col / N, 0.0, 1e-12) << "column " << j;
  }
  for (Tensor t : {Tensor::W_dale, Tensor::W_ei, Tensor::W_ie, Tensor::W_in, Tensor::U_ei, Tensor::U_ie})
    for (size_t k = 0; k < m.layout[t].size(); ++k) ASSERT_GE(m.tensor(t)[k], 0.0) << to_string(t);
  for (int i = 0; i < N; ++i) {
    double row = 0;
    for (int p = 0; p < n_i; ++p) row += m.tensor(Tensor::W_ei)[i * n_i + p];
    EXPECT_NEAR(row, 1.0, 1e-12);
  }
  // Published: spectral radius near 1/sqrt(3), like the framework-default uniform init.
  EXPECT_NEAR(spectral_radius(w.data(), N), 1 / std::sqrt(3.0), 0.08);
  // Every state unit is excitatory; the effective input also starts zero-mean per input.
  EXPECT_EQ(c.model.n_exc(), N);
  const std::vector<double> u = m.effective_w_in();
  for (int k = 0; k < m.layout.I; ++k) {
    double col = 0;
    for (int i = 0; i < N; ++i) col += u[i * m.layout.I + k];
    EXPECT_NEAR(col / N, 0.0, 1e-12);
  }
}

// One SGD step (no momentum, no clipping) of each rule against its closed form.
struct OneStep {
  std::vector<double> before, grad, after;
};

OneStep one_step(ReplicaConfig c, Optim optimizer = Optim::sgd) {
  c.train.optimizer = optimizer;
  c.train.momentum = 0;
  c.train.clip = 0;
  c.train.precision = Precision::f64;
  const ReplicaModel m = test::model_of(c);
  const Batch batch = test::batch_of(c, 0);
  cpu::ReplicaTrainer<double> probe(m), trainer(m);
  probe.loss_and_grad(batch, 0, true);
  trainer.train_step(batch, 0);
  return {m.params, probe.grad(), trainer.params()};
}

bool in_slot(const ParamLayout& l, Tensor t, size_t k) { return k >= l[t].offset && k < l[t].offset + l[t].size(); }

bool is_weight_slot(const ParamLayout& l, size_t k) {
  for (Tensor t : {Tensor::b, Tensor::b_out, Tensor::a, Tensor::b_neg, Tensor::b_out_neg})
    if (in_slot(l, t, k)) return false;
  return true;
}

TEST(Rules, ExponentiatedGradientMatchesItsClosedFormAndKeepsSigns) {
  for (bool split : {true, false}) {
    ReplicaConfig c = test::tiny_config(Arch::mix, 8, 3);
    c.train.rule = Rule::eg;
    c.train.lr = 0.5;
    c.train.weight_decay = 0.01;
    c.train.eg_split_bias = split;
    const OneStep s = one_step(c);
    const ParamLayout l = test::model_of(c).layout;
    EXPECT_EQ(l.has(Tensor::b_neg), split);
    int changed = 0;
    for (size_t k = 0; k < s.before.size(); ++k) {
      const double w = s.before[k], sign = w > 0 ? 1 : (w < 0 ? -1 : 0);
      const bool alpha = in_slot(l, Tensor::a, k), weight = is_weight_slot(l, k);
      const double lr = alpha ? c.train.alpha_lr() : c.train.lr;
      double expect;
      if (weight)
        expect = w * std::exp(-lr * sign * (s.grad[k] + 0.01 * sign));  // EG with decay lambda sign(w)
      else if (split && !alpha)
        expect = w * std::exp(-lr * sign * s.grad[k]);  // split biases: EG, no decay
      else
        expect = w - lr * s.grad[k];  // alpha (and unsplit biases): plain SGD
      EXPECT_NEAR(s.after[k], expect, 1e-12 * (1 + std::fabs(expect))) << k << (split ? " split" : "");
      if (weight || (split && !alpha)) EXPECT_TRUE(s.after[k] * w > 0 || (w == 0 && s.after[k] == 0)) << k;
      changed += s.after[k] != w;
    }
    EXPECT_GT(changed, 10);
  }
}

// Under optimizer = "adam", EG's step is Adam's m_hat / (sqrt(v_hat) + eps) (Adam-EG), which on
// the first step is g / (|g| + eps): each weight's magnitude moves by about a factor exp(-+lr).
TEST(Rules, AdamExponentiatedGradientMatchesItsClosedForm) {
  ReplicaConfig c = test::tiny_config(Arch::mix, 8, 5);
  c.train.rule = Rule::eg;
  c.train.lr = 0.05;
  c.train.eps = 1e-8;
  const OneStep s = one_step(c, Optim::adam);  // no clipping: g / (|g| + eps) is not scale-free
  const ParamLayout l = test::model_of(c).layout;
  int changed = 0;
  for (size_t k = 0; k < s.before.size(); ++k) {
    const double w = s.before[k], sign = w > 0 ? 1 : (w < 0 ? -1 : 0), g = s.grad[k];
    const bool alpha = in_slot(l, Tensor::a, k), eg = !alpha;  // weights and split biases
    const double lr = alpha ? c.train.alpha_lr() : c.train.lr;
    const double step = g / (std::fabs(g) + c.train.eps);  // m_hat = g, v_hat = g^2 after one step
    const double expect = eg ? w * std::exp(-lr * sign * step) : w - lr * step;
    EXPECT_NEAR(s.after[k], expect, 1e-12 * (1 + std::fabs(expect))) << k;
    if (eg) EXPECT_TRUE(s.after[k] * w > 0 || (w == 0 && s.after[k] == 0)) << k;
    changed += s.after[k] != w;
  }
  EXPECT_GT(changed, 10);
}

TEST(Rules, SplitBiasesInitPositiveAndNegativePartsAndShareTheGradient) {
  ReplicaConfig c = test::tiny_config(Arch::free, 16, 9);
  c.train.rule = Rule::eg;
  c.train.precision = Precision::f64;
  const ReplicaModel m = test::model_of(c);
  const double top = std::sqrt(2.0) / 4.0;  // sqrt(2) / sqrt(N)
  for (size_t k = 0; k < 16; ++k) {
    EXPECT_GT(m.tensor(Tensor::b)[k], 0.0);
    EXPECT_LE(m.tensor(Tensor::b)[k], top);
    EXPECT_LT(m.tensor(Tensor::b_neg)[k], 0.0);
    EXPECT_GE(m.tensor(Tensor::b_neg)[k], -top);
    EXPECT_NEAR(to_weights(m).b[k], m.tensor(Tensor::b)[k] + m.tensor(Tensor::b_neg)[k], 1e-7);
  }
  // The loss sees b+ + b-: both parts get the same gradient, which matches finite differences.
  const Batch batch = test::batch_of(c, 0);
  cpu::ReplicaTrainer<double> t(m);
  t.loss_and_grad(batch, 0, true);
  const std::vector<double> g = t.grad();
  for (Tensor neg : {Tensor::b_neg, Tensor::b_out_neg}) {
    const Tensor pos = neg == Tensor::b_neg ? Tensor::b : Tensor::b_out;
    for (size_t k = 0; k < m.layout[neg].size(); ++k) {
      const size_t at = m.layout[neg].offset + k;
      EXPECT_EQ(g[at], g[m.layout[pos].offset + k]);
      double& p = t.params()[at];
      const double saved = p, h = 1e-6;
      p = saved + h;
      const double up = t.loss_and_grad(batch, 0, false).loss;
      p = saved - h;
      const double down = t.loss_and_grad(batch, 0, false).loss;
      p = saved;
      EXPECT_NEAR((up - down) / (2 * h), g[at], 1e-6 * (1 + std::fabs(g[at])));
    }
  }
}

TEST(Rules, SignPreservingGradientDescentResetsCrossingWeights) {
  ReplicaConfig c = test::tiny_config(Arch::free, 8, 5);
  c.train.rule = Rule::gd_sign;
  c.train.lr = 50;  // large enough that many weights would cross zero
  const OneStep s = one_step(c);
  const ParamLayout l = test::model_of(c).layout;
  int reset = 0;
  for (size_t k = 0; k < s.before.size(); ++k) {
    const double w = s.before[k], gd = w - c.train.lr * s.grad[k];
    if (!is_weight_slot(l, k) || w == 0 || gd * w > 0) {
      EXPECT_DOUBLE_EQ(s.after[k], gd) << k;
    } else {
      EXPECT_EQ(s.after[k], w > 0 ? 1e-18 : -1e-18) << k;
      ++reset;
    }
  }
  EXPECT_GT(reset, 5);
}

TEST(Rules, MirrorDescentStepsInDualCoordinates) {
  ReplicaConfig c = test::tiny_config(Arch::free, 8, 6);
  c.train.rule = Rule::md;
  c.train.md_p = 3;
  c.train.lr = 0.3;
  const OneStep s = one_step(c);
  const ParamLayout l = test::model_of(c).layout;
  for (size_t k = 0; k < s.before.size(); ++k) {
    if (!is_weight_slot(l, k)) continue;
    const double w = s.before[k];
    const double y = (w > 0 ? 1 : -1) * w * w - c.train.lr * s.grad[k];  // grad phi = sign(w)|w|^(p-1)
    EXPECT_NEAR(s.after[k], (y > 0 ? 1 : -1) * std::sqrt(std::fabs(y)), 1e-12) << k;
  }
  // p = 2 is plain gradient descent.
  c.train.md_p = 2;
  const OneStep p2 = one_step(c);
  for (size_t k = 0; k < p2.before.size(); ++k)
    EXPECT_NEAR(p2.after[k], p2.before[k] - c.train.lr * p2.grad[k], 1e-12);
}

TEST(Dann, CorrectionScalesTheInhibitoryUpdatesOnly) {
  ReplicaConfig c = dann_config(10);
  c.model.dann_n_i = 3;
  c.train.lr = 0.01;
  const OneStep s = one_step(c);
  const ParamLayout l = test::model_of(c).layout;
  const double n_e = 10, d = l.I;
  auto scale_of = [&](size_t k) {
    if (k >= l[Tensor::W_ie].offset && k < l[Tensor::W_ie].offset + l[Tensor::W_ie].size()) return 1 / std::sqrt(n_e);
    if (k >= l[Tensor::W_ei].offset && k < l[Tensor::W_ei].offset + l[Tensor::W_ei].size()) return 1 / n_e;
    if (k >= l[Tensor::U_ie].offset && k < l[Tensor::U_ie].offset + l[Tensor::U_ie].size()) return 1 / std::sqrt(n_e);
    if (k >= l[Tensor::U_ei].offset && k < l[Tensor::U_ei].offset + l[Tensor::U_ei].size()) return 1 / d;
    return 1.0;
  };
  for (size_t k = 0; k < s.before.size(); ++k) {
    double expect = s.before[k] - c.train.lr * s.grad[k] * scale_of(k);
    if (!(k >= l[Tensor::b].offset && k < l[Tensor::b_out].offset + l[Tensor::b_out].size()) &&
        !(k >= l[Tensor::W_out].offset && k < l[Tensor::W_out].offset + l[Tensor::W_out].size()))
      expect = std::max(expect, 0.0);  // the factors are clamped at 0
    EXPECT_NEAR(s.after[k], expect, 1e-12) << to_string(static_cast<Tensor>(0)) << " k=" << k;
  }
}

TEST(Dann, FactorsStayNonNegativeWhileTraining) {
  ReplicaConfig c = dann_config(12, 8);
  c.train.optimizer = Optim::sgd;
  c.train.lr = 0.5;
  c.train.clip = 0;
  const ReplicaModel m = test::model_of(c);
  cpu::ReplicaTrainer<float> trainer(m);
  for (int it = 0; it < 40; ++it) trainer.train_step(test::batch_of(c, it), it);
  ASSERT_FALSE(trainer.diverged());
  int zeros = 0;
  for (Tensor t : {Tensor::W_dale, Tensor::W_ei, Tensor::W_ie, Tensor::W_in, Tensor::U_ei, Tensor::U_ie})
    for (size_t k = m.layout[t].offset; k < m.layout[t].offset + m.layout[t].size(); ++k) {
      ASSERT_GE(trainer.params()[k], 0.f) << to_string(t);
      zeros += trainer.params()[k] == 0.f;
    }
  EXPECT_GT(zeros, 0) << "the clamp was never exercised";
}

}  // namespace
}  // namespace dalesim
