// Parametric working memory (Romo; NeuroGym DelayComparison): two scalar stimuli f1, f2
// separated by a delay; report whether f1 > f2.
#include <algorithm>
#include <cmath>

#include "dalesim/rng.hpp"
#include "tasks/builtin.hpp"
#include "tasks/cognitive.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

namespace {

// Inputs: 0 fixation (on until the decision), 1 the stimulus (1 + (f - f_min)/(f_max - f_min)) / 2
// plus noise during stimulus 1 and 2, 0 otherwise. Each trial takes one (f_a, f_b) pair, in that
// order or swapped. Outputs: 0 fixate, 1 "f1 > f2", 2 "f1 < f2".
class DelayCompareTask final : public Task {
 public:
  DelayCompareTask(const int periods[5], std::vector<double> pairs, double noise_std, TargetForm form)
      : pairs_(std::move(pairs)), noise_std_(noise_std), form_(form) {
    for (int k = 0; k < 5; ++k) n_[k] = periods[k];
    f_min_ = *std::min_element(pairs_.begin(), pairs_.end());
    f_max_ = *std::max_element(pairs_.begin(), pairs_.end());
  }
  std::string name() const override { return "delay_compare"; }
  int n_inputs() const override { return 2; }
  int n_outputs() const override { return 3; }
  int n_steps() const override { return n_[0] + n_[1] + n_[2] + n_[3] + n_[4]; }
  double baseline_loss() const override { return timing_aware_baseline(form_, 3, n_[4], n_steps(), 2); }
  double chance_accuracy() const override { return 0.5; }
  // One condition per stimulus pair of task.pairs (either order), in its order.
  std::vector<std::string> condition_names() const override {
    std::vector<std::string> names;
    for (std::size_t k = 0; k + 1 < pairs_.size(); k += 2)
      names.push_back("pair " + condition_number(pairs_[k]) + "/" + condition_number(pairs_[k + 1]) + " Hz");
    return names;
  }

  void generate(std::uint64_t data_seed, std::int64_t iteration, int B, Batch& out) const override {
    const int T = n_steps();
    const int s1 = n_[0], d0 = s1 + n_[1], s2 = d0 + n_[2], dec0 = s2 + n_[3];
    begin_cognitive_batch(out, B, T, 2, 3, form_, 1, 3);
    const std::uint64_t key = mix_key(data_seed, static_cast<std::uint64_t>(iteration));
    const std::uint32_t n_pairs = static_cast<std::uint32_t>(pairs_.size() / 2);
    for (int b = 0; b < B; ++b) {
      // Counter layout of trial b: 0 pair, 1 order, 8 + t noise at step t.
      const CounterRng rng{key, static_cast<std::uint64_t>(b)};
      const std::uint32_t pair = rng.below(0, n_pairs);
      const int swap = static_cast<int>(rng.below(1, 2));
      const double f1 = pairs_[2 * pair + swap], f2 = pairs_[2 * pair + 1 - swap];
      const int choice = f1 > f2 ? 0 : 1;  // class 1 + choice
      out.condition[b] = static_cast<int>(pair);
      TrialWriter trial(out, b, form_);
      for (int t = 0; t < T; ++t) {
        float* x = trial.x(t);
        x[0] = t < dec0 ? 1.f : 0.f;
        const bool in1 = t >= s1 && t < d0, in2 = t >= s2 && t < dec0;
        if (in1 || in2)
          x[1] = static_cast<float>(scaled(in1 ? f1 : f2) + noise_std_ * rng.normal(8 + static_cast<std::uint64_t>(t)));
        trial.set_class(t, t < dec0 ? 0 : 1 + choice);
      }
      trial.score_accuracy(T - 1, choice);
    }
  }

 private:
  double scaled(double f) const { return (1 + (f - f_min_) / (f_max_ - f_min_)) / 2; }
  int n_[5];  // fixation, stimulus 1, delay, stimulus 2, decision (steps)
  std::vector<double> pairs_;  // flattened (f_a, f_b) pairs
  double f_min_, f_max_;
  double noise_std_;
  TargetForm form_;
};

}  // namespace

TaskInfo delay_compare_task_info() {
  TaskInfo info;
  info.name = "delay_compare";
  info.summary =
      "delayed comparison (Romo): two scalar stimuli separated by a delay; report whether the first was larger; "
      "2 inputs, 3 outputs (fixate, f1 > f2, f1 < f2); decision-period accuracy, chance 0.5";
  info.params = {
      ParamSpec{"fixation_ms", Value{500.0}, "fixation period (ms)", 0, 1e6, {}},
      ParamSpec{"stimulus1_ms", Value{500.0}, "first stimulus (ms)", 1, 1e6, {}},
      ParamSpec{"delay_ms", Value{1000.0}, "delay period (ms)", 0, 1e6, {}},
      ParamSpec{"stimulus2_ms", Value{500.0}, "second stimulus (ms)", 1, 1e6, {}},
      ParamSpec{"decision_ms", Value{100.0}, "decision period (ms), at least one step", 1, 1e6, {}},
      ParamSpec{"pairs", Value{std::vector<double>{18, 10, 22, 14, 26, 18, 30, 22, 34, 26}},
                "stimulus pairs (Hz), flattened [f_a1, f_b1, f_a2, f_b2, ...]; each trial shows one pair in either "
                "order",
                0, 1e6, {}},
      input_noise_param(),
      target_form_param(),
  };
  return info;
}

std::unique_ptr<Task> make_delay_compare_task(const TaskConfig& cfg, double dt) {
  static const TaskInfo info = delay_compare_task_info();
  const TaskParams p(cfg, info.params);
  const int n[5] = {period_steps(p.get_double("fixation_ms"), dt, 0, "task.fixation_ms"),
                    period_steps(p.get_double("stimulus1_ms"), dt, 1, "task.stimulus1_ms"),
                    period_steps(p.get_double("delay_ms"), dt, 0, "task.delay_ms"),
                    period_steps(p.get_double("stimulus2_ms"), dt, 1, "task.stimulus2_ms"),
                    period_steps(p.get_double("decision_ms"), dt, 1, "task.decision_ms")};
  const std::vector<double> pairs = p.get_list("pairs");
  bool distinct = pairs.size() % 2 == 0;
  for (std::size_t k = 0; distinct && k < pairs.size(); k += 2) distinct = pairs[k] != pairs[k + 1];
  if (!distinct)
    throw ConfigError("task.pairs", format_value(Value{pairs}),
                      "an even-length list of (f_a, f_b) pairs with f_a != f_b in each pair");
  return std::make_unique<DelayCompareTask>(n, pairs, input_noise_std(p, dt), target_form_of(p));
}

}  // namespace dalesim
