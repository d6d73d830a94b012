// Cognitive tasks in both target forms: shapes, masks, value ranges, determinism, variable trial
// lengths, baselines, and oracles that read the inputs and reach zero loss and full accuracy.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>

#include "test_tasks_util.hpp"

namespace dalesim {
namespace {

using test::class_at;
using test::row;

TaskConfig cfg(const std::string& name, const std::string& form, std::map<std::string, Value> params = {}) {
  TaskConfig c;
  c.name = name;
  c.params = std::move(params);
  c.params["target"] = Value{form};
  return c;
}

// Noise-free configs with short periods (dt = 20 ms), so that oracles can read exact inputs.
TaskConfig quiet(const std::string& name, const std::string& form) {
  if (name == "perceptual_dm")
    return cfg(name, form,
               {{"sigma", Value{0.0}}, {"delay_ms", Value{60.0}}, {"stimulus_ms", Value{200.0}},
                {"coherences", Value{std::vector<double>{6.4, 51.2}}}});  // no 0: ties are unreadable
  if (name == "context_dm")
    return cfg(name, form,
               {{"sigma", Value{0.0}}, {"stimulus_ms", Value{200.0}}, {"delay_min_ms", Value{100.0}},
                {"delay_mean_ms", Value{200.0}}, {"delay_max_ms", Value{600.0}}});
  if (name == "delay_match") return cfg(name, form, {{"sigma", Value{0.0}}, {"ring", Value{std::int64_t{4}}}});
  if (name == "delay_compare") return cfg(name, form, {{"sigma", Value{0.0}}});
  if (name == "go_nogo") return cfg(name, form, {{"fixation_ms", Value{100.0}}});
  if (name == "ready_set_go") return cfg(name, form, {{"gain", Value{1.5}}, {"measure_min_ms", Value{400.0}}});
  return cfg(name, form);
}

// First step t in [from, T) where pred(t) holds, else T.
int first(const Batch& b, int from, const std::function<bool(int)>& pred) {
  for (int t = from; t < b.T; ++t)
    if (pred(t)) return t;
  return b.T;
}

// The oracle of each task: per-step classes [T, B] computed from the inputs alone (-1 past the
// trial's end).
std::vector<int> oracle(const std::string& name, const Batch& b, const Task& task) {
  std::vector<int> cls(static_cast<std::size_t>(b.T) * b.B, -1);
  for (int n = 0; n < b.B; ++n) {
    auto x = [&](int t, int i) { return b.x[row(b, t, n) * b.I + i]; };
    auto set = [&](int t0, int t1, int c) {
      for (int t = t0; t < t1; ++t) cls[row(b, t, n)] = c;
    };
    const int dec0 = first(b, 0, [&](int t) { return x(t, 0) == 0.f; });
    if (name == "perceptual_dm") {
      double e[2] = {0, 0};
      for (int t = 0; t < dec0; ++t) e[0] += x(t, 1), e[1] += x(t, 2);
      set(0, dec0, 0);
      set(dec0, b.T, 1 + (e[1] > e[0]));
    } else if (name == "context_dm") {
      const int context = x(0, 6) == 1.f;
      const int end = first(b, 0, [&](int t) { return x(t, 5) + x(t, 6) == 0.f; });
      double e[2] = {0, 0};
      for (int t = 0; t < dec0; ++t) e[0] += x(t, 1 + 2 * context), e[1] += x(t, 2 + 2 * context);
      set(0, dec0, 0);
      set(dec0, end, 1 + (e[1] > e[0]));
    } else if (name == "delay_match" || name == "delay_compare") {
      const int I = b.I;
      auto on = [&](int t) {
        for (int i = 1; i < I; ++i)
          if (x(t, i) != 0.f) return true;
        return false;
      };
      const int s1 = first(b, 0, on), gap = first(b, s1, [&](int t) { return !on(t); });
      const int s2 = first(b, gap, on);
      int choice;
      if (name == "delay_match") {
        bool same = true;
        for (int i = 1; i < I; ++i) same &= x(s1, i) == x(s2, i);
        choice = same ? 0 : 1;
      } else {
        choice = x(s1, 1) > x(s2, 1) ? 0 : 1;
      }
      set(0, dec0, 0);
      set(dec0, b.T, 1 + choice);
    } else if (name == "go_nogo") {
      bool go = false;
      for (int t = 0; t < dec0; ++t) go |= x(t, 2) == 1.f;
      set(0, dec0, 0);
      set(dec0, b.T, go ? 1 : 0);
    } else if (name == "ready_set_go") {
      const double gain = 1.5;  // quiet()'s
      const int ready = first(b, 0, [&](int t) { return x(t, 1) == 1.f; });
      const int set_on = first(b, 0, [&](int t) { return x(t, 2) == 1.f; });
      const int m = set_on - ready;
      const int go_off = static_cast<int>(std::lround(gain * m));
      const int n_prod = std::max(go_off + 1, static_cast<int>(std::lround(2 * gain * m)));
      set(0, dec0 + n_prod, 0);
      cls[row(b, dec0 + go_off, n)] = 1;
    }
  }
  (void)task;
  return cls;
}

const char* const kTasks[] = {"perceptual_dm", "context_dm", "delay_match", "delay_compare", "go_nogo",
                              "ready_set_go"};

TEST(CognitiveTasks, ShapesMasksRangesAndOraclesInBothForms) {
  for (const char* name : kTasks)
    for (const std::string form : {"mse", "class"}) {
      SCOPED_TRACE(std::string(name) + " " + form);
      const auto task = make_task(quiet(name, form), 20.0);
      Batch b;
      task->generate(17, 3, 40, b);
      ASSERT_EQ(b.B, 40);
      ASSERT_EQ(b.T, task->n_steps());
      ASSERT_EQ(b.I, task->n_inputs());
      ASSERT_EQ(b.O, task->n_outputs());
      ASSERT_EQ(b.x.size(), static_cast<std::size_t>(b.T) * 40 * b.I);
      EXPECT_EQ(b.loss, form == "class" ? LossKind::cross_entropy : LossKind::mse);
      for (float v : b.x) {
        EXPECT_GE(v, 0.f);
        EXPECT_LE(v, 1.f);
      }
      for (int t = 0; t < b.T; ++t)
        for (int n = 0; n < b.B; ++n) {
          const int c = class_at(b, t, n);
          ASSERT_GE(c, -1);
          ASSERT_LT(c, b.O);
          if (c < 0)  // past the trial's end: no input either
            for (int i = 0; i < b.I; ++i) EXPECT_EQ(b.x[row(b, t, n) * b.I + i], 0.f);
        }
      const std::vector<int> cls = oracle(name, b, *task);
      int mismatches = 0;
      for (int t = 0; t < b.T; ++t)
        for (int n = 0; n < b.B; ++n) mismatches += cls[row(b, t, n)] != class_at(b, t, n);
      EXPECT_EQ(mismatches, 0) << "the target is computable from the inputs";
      const test::OracleScore s = test::score_classes(b, cls);
      EXPECT_LT(s.loss, 1e-9);
      if (std::isnan(task->chance_accuracy())) {
        EXPECT_TRUE(std::isnan(s.accuracy));
      } else {
        EXPECT_EQ(s.accuracy, 1.0);
        EXPECT_EQ(b.n_accuracy_points(), 40);  // one decision per trial
      }
    }
}

// The condition of each trial read back from its noise-free inputs, as an index into the task's
// condition_names() (quiet() configs; -1 for a task without conditions).
int condition_from_inputs(const std::string& name, const Batch& b, int n) {
  auto x = [&](int t, int i) { return static_cast<double>(b.x[row(b, t, n) * b.I + i]); };
  auto nearest = [](double v, const std::vector<double>& xs) {
    int k = 0;
    for (int j = 1; j < static_cast<int>(xs.size()); ++j)
      if (std::abs(xs[j] - v) < std::abs(xs[k] - v)) k = j;
    return k;
  };
  const int dec0 = first(b, 0, [&](int t) { return x(t, 0) == 0.0; });
  if (name == "perceptual_dm") {  // stimulus from step 5: the channels differ by coherence / 100
    return nearest(std::abs(x(5, 1) - x(5, 2)) * 100, {6.4, 51.2});
  }
  if (name == "context_dm") {  // stimulus from step 15; context input 5 or 6
    const int context = x(0, 6) == 1.0;
    return 3 * context + nearest(std::abs(x(15, 1 + 2 * context) - x(15, 2 + 2 * context)) * 100, {5, 15, 50});
  }
  if (name == "go_nogo") {
    bool go = false;
    for (int t = 0; t < dec0; ++t) go |= x(t, 2) == 1.0;
    return go ? 1 : 0;
  }
  if (name == "delay_match" || name == "delay_compare") {
    auto on = [&](int t) {
      for (int i = 1; i < b.I; ++i)
        if (x(t, i) != 0.0) return true;
      return false;
    };
    const int s1 = first(b, 0, on), gap = first(b, s1, [&](int t) { return !on(t); });
    const int s2 = first(b, gap, on);
    if (name == "delay_match") {
      bool same = true;
      for (int i = 1; i < b.I; ++i) same &= x(s1, i) == x(s2, i);
      return same ? 0 : 1;
    }
    // Default pairs (Hz), shown as (1 + (f - 10) / 24) / 2.
    const std::vector<double> pairs = {18, 10, 22, 14, 26, 18, 30, 22, 34, 26};
    auto hz = [&](double v) { return 10 + 24 * (2 * v - 1); };
    const double f1 = hz(x(s1, 1)), f2 = hz(x(s2, 1));
    for (int k = 0; k < 5; ++k)
      if (std::abs(std::min(f1, f2) - pairs[2 * k + 1]) < 1e-3 && std::abs(std::max(f1, f2) - pairs[2 * k]) < 1e-3)
        return k;
    ADD_FAILURE() << "no pair shows " << f1 << " and " << f2 << " Hz";
  }
  return -1;
}

TEST(CognitiveTasks, ConditionLabelsMatchTheInputsAndCoverEveryCondition) {
  const std::map<std::string, std::vector<std::string>> names = {
      {"perceptual_dm", {"coherence 6.4", "coherence 51.2"}},
      {"context_dm",
       {"context 1, coherence 5", "context 1, coherence 15", "context 1, coherence 50", "context 2, coherence 5",
        "context 2, coherence 15", "context 2, coherence 50"}},
      {"delay_match", {"match", "non-match"}},
      {"delay_compare", {"pair 18/10 Hz", "pair 22/14 Hz", "pair 26/18 Hz", "pair 30/22 Hz", "pair 34/26 Hz"}},
      {"go_nogo", {"no-go", "go"}},
      {"ready_set_go", {}}};
  for (const char* name : kTasks)
    for (const std::string form : {"mse", "class"}) {
      SCOPED_TRACE(std::string(name) + " " + form);
      const auto task = make_task(quiet(name, form), 20.0);
      EXPECT_EQ(task->condition_names(), names.at(name));
      Batch b;
      task->generate(23, 1, 200, b);
      ASSERT_EQ(b.condition.size(), 200u);
      std::vector<int> count(task->condition_names().size(), 0);
      for (int n = 0; n < b.B; ++n) {
        ASSERT_EQ(b.condition[n], condition_from_inputs(name, b, n)) << "trial " << n;
        if (b.condition[n] >= 0) ++count[b.condition[n]];
      }
      for (std::size_t k = 0; k < count.size(); ++k) EXPECT_GT(count[k], 0) << task->condition_names()[k];
    }
  // Tasks without conditions label no trial.
  for (const char* name : {"adding", "copy"}) {
    TaskConfig c;
    c.name = name;
    const auto task = make_task(c, 20.0);
    Batch b;
    task->generate(1, 0, 8, b);
    EXPECT_TRUE(task->condition_names().empty());
    EXPECT_EQ(b.condition, std::vector<int>(8, -1));
  }
}

TEST(CognitiveTasks, SameKeySameBatchOtherSeedOrIterationOtherBatch) {
  for (const char* name : kTasks) {
    SCOPED_TRACE(name);
    const auto task = make_task(cfg(name, "class"), 20.0);
    Batch a, b, c, d;
    task->generate(5, 2, 16, a);
    task->generate(5, 2, 16, b);
    task->generate(6, 2, 16, c);
    task->generate(5, 3, 16, d);
    EXPECT_EQ(a.x, b.x);
    EXPECT_EQ(a.target, b.target);
    EXPECT_EQ(a.acc_label, b.acc_label);
    EXPECT_NE(a.x, c.x);
    EXPECT_NE(a.x, d.x);
  }
}

TEST(CognitiveTasks, VariableTrialLengthsAreMaskedNotPadded) {
  for (const char* name : {"context_dm", "ready_set_go"}) {
    SCOPED_TRACE(name);
    const auto task = make_task(quiet(name, "mse"), 20.0);
    Batch b;
    task->generate(1, 0, 64, b);
    int shortest = b.T, longest = 0;
    for (int n = 0; n < b.B; ++n) {
      int len = 0;
      for (int t = 0; t < b.T; ++t)
        if (class_at(b, t, n) >= 0) len = t + 1;
      for (int t = 0; t < len; ++t) EXPECT_GE(class_at(b, t, n), 0) << "a trial is scored from its first step to its end";
      shortest = std::min(shortest, len);
      longest = std::max(longest, len);
    }
    EXPECT_LT(shortest, longest);
    EXPECT_LE(longest, b.T);
    // The loss weight counts only the steps of the trials.
    double steps = 0;
    for (int t = 0; t < b.T; ++t)
      for (int n = 0; n < b.B; ++n) steps += class_at(b, t, n) >= 0;
    EXPECT_EQ(b.loss_weight(), steps * b.O);
  }
}

// The loss of the best per-step constant output, estimated on a large batch: for tasks of fixed
// length it is the timing-aware baseline the task reports.
double empirical_baseline(const Batch& b) {
  double loss = 0, weight = 0;
  for (int t = 0; t < b.T; ++t) {
    std::vector<double> count(b.O, 0);
    double n_t = 0;
    for (int n = 0; n < b.B; ++n) {
      const int c = class_at(b, t, n);
      if (c >= 0) count[c] += 1, n_t += 1;
    }
    for (double k : count) {
      if (k == 0) continue;
      const double p = k / n_t;
      loss += b.loss == LossKind::mse ? k * (1 - p) * (1 - p) + (n_t - k) * p * p : -k * std::log(p);
    }
    weight += b.loss == LossKind::mse ? n_t * b.O : n_t;
  }
  return loss / weight;
}

TEST(CognitiveTasks, BaselinesMatchTheBestInputBlindOutput) {
  for (const char* name : {"perceptual_dm", "delay_match", "delay_compare", "go_nogo"})
    for (const std::string form : {"mse", "class"}) {
      SCOPED_TRACE(std::string(name) + " " + form);
      const auto task = make_task(cfg(name, form), 20.0);
      Batch b;
      task->generate(9, 0, 4000, b);
      EXPECT_NEAR(empirical_baseline(b), task->baseline_loss(), 0.02 * task->baseline_loss());
    }
  // Known closed forms.
  const auto dm = make_task(cfg("perceptual_dm", "mse"), 20.0);  // 5 + 25 + 5 steps, 3 outputs
  EXPECT_NEAR(dm->baseline_loss(), 5 * 0.5 / (3.0 * 35), 1e-12);
  const auto dm_class = make_task(cfg("perceptual_dm", "class"), 20.0);
  EXPECT_NEAR(dm_class->baseline_loss(), 5 * std::log(2.0) / 35, 1e-12);
  // context_dm's baseline uses the mean trial length of its truncated-exponential delay.
  const auto ctx = make_task(cfg("context_dm", "mse"), 20.0);
  Batch b;
  ctx->generate(3, 0, 4000, b);
  double steps = 0;
  for (int t = 0; t < b.T; ++t)
    for (int n = 0; n < b.B; ++n) steps += class_at(b, t, n) >= 0;
  const double implied_mean_length = 5 * 0.5 / (3 * ctx->baseline_loss());  // 5 decision steps
  EXPECT_NEAR(steps / b.B, implied_mean_length, 0.02 * implied_mean_length);
  EXPECT_EQ(b.T, 15 + 38 + 150 + 5);  // NeuroGym timing at dt = 20 ms: delay up to 3000 ms
}

TEST(CognitiveTasks, ContextDmDelayIsTruncatedExponential) {
  const auto task = make_task(cfg("context_dm", "class", {{"sigma", Value{0.0}}}), 10.0);
  Batch b;
  task->generate(4, 0, 3000, b);
  double sum = 0;
  int lo = 1 << 30, hi = 0;
  for (int n = 0; n < b.B; ++n) {
    const int dec0 = first(b, 0, [&](int t) { return b.x[row(b, t, n) * b.I] == 0.f; });
    const int delay = dec0 - 30 - 75;  // fixation 300 ms, stimulus 750 ms
    sum += delay;
    lo = std::min(lo, delay);
    hi = std::max(hi, delay);
  }
  EXPECT_GE(lo, 30);
  EXPECT_LE(hi, 300);
  // Mean of Exp(600) conditioned on [300, 3000]: 600 + (300 e^-0.5 - 3000 e^-5) / (e^-0.5 - e^-5) ms.
  const double a = std::exp(-0.5), c = std::exp(-5.0);
  EXPECT_NEAR(sum / b.B * 10, 600 + (300 * a - 3000 * c) / (a - c), 30);  // 3 standard errors
}

TEST(CognitiveTasks, NoiseIsAddedToStimulusChannelsOnly) {
  // dt 25 ms: fixation [0, 20), stimulus 1 [20, 40), delay [40, 80), stimulus 2 [80, 100), decision.
  const auto task = make_task(cfg("delay_compare", "mse"), 25.0);  // sigma 1 -> per-step std 0.2
  Batch b;
  task->generate(2, 0, 400, b);
  double dd = 0;
  int m = 0;
  for (int k = 0; k < 400; ++k) {
    for (int t = 21; t < 40; ++t, ++m) {  // within a stimulus the mean is constant: differences are noise
      const double d = b.x[row(b, t, k) * 2 + 1] - b.x[row(b, t - 1, k) * 2 + 1];
      dd += d * d;
      EXPECT_EQ(b.x[row(b, t, k) * 2], 1.f);  // the fixation input is noise-free
    }
    EXPECT_EQ(b.x[row(b, 45, k) * 2 + 1], 0.f);  // the delay carries no input
  }
  EXPECT_NEAR(std::sqrt(dd / m), 0.2 * std::sqrt(2.0), 0.01);
}

TEST(CognitiveTasks, PerceptualDmKeepsItsDefaultForm) {
  TaskConfig c;
  c.name = "perceptual_dm";
  const auto task = make_task(c, 20.0);
  Batch b;
  task->generate(11, 0, 8, b);
  EXPECT_EQ(b.loss, LossKind::mse);
  EXPECT_EQ(b.acc_step, b.T - 1);
  EXPECT_EQ(b.acc_begin, 1);
  EXPECT_EQ(b.acc_end, 3);
  EXPECT_EQ(b.T, 35);
}

TEST(CognitiveTasks, BadTimingNamesTheKey) {
  auto key_of = [](const TaskConfig& c) {
    try {
      make_task(c, 20.0);
    } catch (const ConfigError& e) {
      return e.key();
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(key_of(cfg("context_dm", "mse", {{"delay_min_ms", Value{500.0}}, {"delay_max_ms", Value{400.0}}})),
            "task.delay_max_ms");
  EXPECT_EQ(key_of(cfg("delay_match", "mse", {{"sample_ms", Value{5.0}}})), "task.sample_ms");
  EXPECT_EQ(key_of(cfg("delay_compare", "mse", {{"pairs", Value{std::vector<double>{10, 20, 30}}}})), "task.pairs");
  EXPECT_EQ(key_of(cfg("ready_set_go", "mse", {{"measure_min_ms", Value{900.0}}, {"measure_max_ms", Value{800.0}}})),
            "task.measure_max_ms");
  EXPECT_EQ(key_of(cfg("go_nogo", "softmax")), "task.target");
}

}  // namespace
}  // namespace dalesim
