// Tasks: shapes, masks, value ranges, determinism, and oracles that compute the target from the inputs.
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.hpp"

namespace dalesim {
namespace {

TaskConfig adding(int T, const std::string& positions = "halves") {
  TaskConfig c;
  c.name = "adding";
  c.params["T"] = Value{std::int64_t{T}};
  c.params["positions"] = Value{positions};
  return c;
}

TEST(Tasks, AddingShapesMarkersAndOracle) {
  for (const std::string pos : {"halves", "anywhere"}) {
    const auto task = make_task(adding(11, pos), 20);
    Batch b;
    task->generate(99, 4, 64, b);
    ASSERT_EQ(b.T, 11);
    ASSERT_EQ(b.I, 2);
    ASSERT_EQ(b.O, 1);
    ASSERT_EQ(b.x.size(), 11u * 64 * 2);
    double oracle_sq = 0, baseline_sq = 0;
    for (int n = 0; n < 64; ++n) {
      int markers = 0, first = -1, second = -1;
      double sum = 0;
      for (int t = 0; t < 11; ++t) {
        const float* x = &b.x[(t * 64 + n) * 2];
        EXPECT_GT(x[0], 0.f);
        EXPECT_LT(x[0], 1.f);
        ASSERT_TRUE(x[1] == 0.f || x[1] == 1.f);
        if (x[1] == 1.f) {
          ++markers;
          (first < 0 ? first : second) = t;
          sum += x[0];
        }
        EXPECT_EQ(b.mask[t * 64 + n], t == 10 ? 1.f : 0.f);
      }
      EXPECT_EQ(markers, 2);
      if (pos == "halves") {
        EXPECT_LT(first, 5);
        EXPECT_GE(second, 5);
      }
      const float y = b.y[10 * 64 + n];
      oracle_sq += (sum - y) * (sum - y);
      baseline_sq += (1.0 - y) * (1.0 - y);
    }
    EXPECT_LT(oracle_sq, 1e-8);  // the target is computable from the inputs
    EXPECT_GT(baseline_sq / 64, 0.05);
  }
  EXPECT_DOUBLE_EQ(make_task(adding(20), 20)->baseline_loss(), 1.0 / 6.0);
}

TEST(Tasks, AddingBaselineIsOneSixth) {
  const auto task = make_task(adding(8), 20);
  double sq = 0;
  int n = 0;
  for (int it = 0; it < 200; ++it) {
    Batch b;
    task->generate(3, it, 100, b);
    for (int k = 0; k < 100; ++k, ++n) sq += (1.0 - b.y[7 * 100 + k]) * (1.0 - b.y[7 * 100 + k]);
  }
  EXPECT_NEAR(sq / n, 1.0 / 6.0, 0.006);
}

TEST(Tasks, SameKeySameBatchDifferentSeedDifferentBatch) {
  const auto task = make_task(adding(10), 20);
  Batch a, b, c, d;
  task->generate(5, 2, 16, a);
  task->generate(5, 2, 16, b);
  task->generate(6, 2, 16, c);
  task->generate(5, 3, 16, d);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.y, b.y);
  EXPECT_NE(a.x, c.x);
  EXPECT_NE(a.x, d.x);
  // Trial n does not depend on the batch size: a smaller batch is a prefix (time-major layout).
  Batch small;
  task->generate(5, 2, 4, small);
  for (int t = 0; t < 10; ++t)
    for (int n = 0; n < 4; ++n)
      for (int i = 0; i < 2; ++i) EXPECT_EQ(small.x[(t * 4 + n) * 2 + i], a.x[(t * 16 + n) * 2 + i]);
}

TEST(Tasks, PerceptualDmTimingInputsTargetsAndOracle) {
  TaskConfig c;
  c.name = "perceptual_dm";
  c.params["fixation_ms"] = Value{100.0};
  c.params["stimulus_ms"] = Value{400.0};
  c.params["decision_ms"] = Value{100.0};
  c.params["sigma"] = Value{0.0};
  c.params["coherences"] = Value{std::vector<double>{6.4, 51.2}};
  const auto task = make_task(c, 20.0);
  ASSERT_EQ(task->n_steps(), 5 + 20 + 5);
  Batch b;
  task->generate(11, 0, 50, b);
  int correct = 0, ones = 0;
  for (int n = 0; n < 50; ++n) {
    double evidence[2] = {0, 0};
    for (int t = 0; t < b.T; ++t) {
      const float* x = &b.x[(t * 50 + n) * 3];
      const float* y = &b.y[(t * 50 + n) * 3];
      const bool decision = t >= 25, stimulus = t >= 5 && t < 25;
      EXPECT_EQ(x[0], decision ? 0.f : 1.f);
      EXPECT_EQ(y[0], decision ? 0.f : 1.f);
      if (!stimulus) EXPECT_EQ(x[1] + x[2], 0.f);
      if (stimulus) EXPECT_NEAR(x[1] + x[2], 1.0, 1e-6);  // cos tuning: 0.5 +- coh/200
      evidence[0] += x[1];
      evidence[1] += x[2];
      if (decision) EXPECT_EQ(y[1 + b.label[n]], 1.f);
      for (int o = 0; o < 3; ++o) EXPECT_EQ(b.mask[(t * 50 + n) * 3 + o], 1.f);
    }
    correct += (evidence[1] > evidence[0]) == (b.label[n] == 1);
    ones += b.label[n];
  }
  EXPECT_EQ(correct, 50);  // noise-free: the oracle reading the inputs is always right
  EXPECT_GT(ones, 10);
  EXPECT_LT(ones, 40);
  EXPECT_EQ(b.acc_step, b.T - 1);
  EXPECT_DOUBLE_EQ(task->chance_accuracy(), 0.5);
}

TEST(Tasks, PerceptualDmNoiseHasTheDocumentedScale) {
  TaskConfig c;
  c.name = "perceptual_dm";
  c.params["coherences"] = Value{std::vector<double>{0.0}};
  const auto task = make_task(c, 25.0);  // sigma 1 -> per-step std 1/sqrt(25) = 0.2
  Batch b;
  task->generate(1, 0, 200, b);
  double s = 0, s2 = 0;
  int n = 0;
  for (int t = 4; t < 24; ++t)
    for (int k = 0; k < 200; ++k, ++n) {
      const double d = b.x[(t * 200 + k) * 3 + 1] - 0.5;
      s += d;
      s2 += d * d;
    }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(std::sqrt(s2 / n), 0.2, 0.01);
}

TEST(Tasks, BadParametersNameTheKey) {
  TaskConfig c = adding(20);
  c.params["length"] = Value{std::int64_t{3}};
  try {
    make_task(c, 20);
    FAIL() << "unknown task parameter accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "task.length");
    EXPECT_NE(std::string(e.what()).find("T"), std::string::npos);
  }
  EXPECT_THROW(make_task(adding(1), 20), ConfigError);
  EXPECT_THROW(make_task(adding(10, "middle"), 20), ConfigError);
  TaskConfig short_decision;
  short_decision.name = "perceptual_dm";
  short_decision.params["decision_ms"] = Value{5.0};
  try {
    make_task(short_decision, 20);
    FAIL() << "a decision period shorter than one step was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "task.decision_ms");
  }
  TaskConfig unknown;
  unknown.name = "addding";
  try {
    make_task(unknown, 20);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("perceptual_dm"), std::string::npos);
  }
}

}  // namespace
}  // namespace dalesim
