// Delayed match-to-sample (NeuroGym DelayMatchSample): a sample direction, a delay, a test
// direction; report whether the test matched the sample.
#include <cmath>

#include "dalesim/rng.hpp"
#include "tasks/builtin.hpp"
#include "tasks/cognitive.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

namespace {

// Inputs: 0 fixation (on until the decision), 1..R a ring of R direction-tuned channels,
// cos(theta_k - theta) * 0.5 + 0.5 plus noise during the sample and test periods (theta_k =
// 2 pi k / R). The sample direction is one of the R ring directions; the test repeats it (match)
// or is opposite to it (non-match, sample + pi). Outputs: 0 fixate, 1 match, 2 non-match.
class DelayMatchTask final : public Task {
 public:
  DelayMatchTask(const int periods[5], int ring, double noise_std, TargetForm form)
      : ring_(ring), noise_std_(noise_std), form_(form) {
    for (int k = 0; k < 5; ++k) n_[k] = periods[k];
  }
  std::string name() const override { return "delay_match"; }
  int n_inputs() const override { return 1 + ring_; }
  int n_outputs() const override { return 3; }
  int n_steps() const override { return n_[0] + n_[1] + n_[2] + n_[3] + n_[4]; }
  double baseline_loss() const override { return timing_aware_baseline(form_, 3, n_[4], n_steps(), 2); }
  double chance_accuracy() const override { return 0.5; }
  // Condition 0: match trials, 1: non-match trials.
  std::vector<std::string> condition_names() const override { return {"match", "non-match"}; }

  void generate(std::uint64_t data_seed, std::int64_t iteration, int B, Batch& out) const override {
    const int T = n_steps(), I = n_inputs();
    const int sample0 = n_[0], delay0 = sample0 + n_[1], test0 = delay0 + n_[2], dec0 = test0 + n_[3];
    begin_cognitive_batch(out, B, T, I, 3, form_, 1, 3);
    const std::uint64_t key = mix_key(data_seed, static_cast<std::uint64_t>(iteration));
    const double two_pi = 6.283185307179586;
    for (int b = 0; b < B; ++b) {
      // Counter layout of trial b: 0 match or not, 1 sample direction, 8 + R t + k noise.
      const CounterRng rng{key, static_cast<std::uint64_t>(b)};
      const int match = static_cast<int>(rng.below(0, 2));  // 1: match
      const double sample = two_pi * rng.below(1, static_cast<std::uint32_t>(ring_)) / ring_;
      const double test = match ? sample : sample + two_pi / 2;
      const int choice = match ? 0 : 1;  // class 1 + choice
      out.condition[b] = choice;
      TrialWriter trial(out, b, form_);
      for (int t = 0; t < T; ++t) {
        float* x = trial.x(t);
        x[0] = t < dec0 ? 1.f : 0.f;
        const bool in_sample = t >= sample0 && t < delay0, in_test = t >= test0 && t < dec0;
        if (in_sample || in_test)
          for (int k = 0; k < ring_; ++k) {
            const double mean = std::cos(two_pi * k / ring_ - (in_sample ? sample : test)) * 0.5 + 0.5;
            const std::uint64_t c = 8 + static_cast<std::uint64_t>(ring_) * t + k;
            x[1 + k] = static_cast<float>(mean + noise_std_ * rng.normal(c));
          }
        trial.set_class(t, t < dec0 ? 0 : 1 + choice);
      }
      trial.score_accuracy(T - 1, choice);
    }
  }

 private:
  int n_[5];  // fixation, sample, delay, test, decision (steps)
  int ring_;
  double noise_std_;
  TargetForm form_;
};

}  // namespace

TaskInfo delay_match_task_info() {
  TaskInfo info;
  info.name = "delay_match";
  info.summary =
      "delayed match-to-sample: sample direction, delay, test direction (same or opposite); report match or "
      "non-match; 1 + ring inputs, 3 outputs (fixate, match, non-match); decision-period accuracy, chance 0.5";
  info.params = {
      ParamSpec{"fixation_ms", Value{300.0}, "fixation period (ms)", 0, 1e6, {}},
      ParamSpec{"sample_ms", Value{500.0}, "sample period (ms)", 1, 1e6, {}},
      ParamSpec{"delay_ms", Value{1000.0}, "delay period (ms)", 0, 1e6, {}},
      ParamSpec{"test_ms", Value{500.0}, "test period (ms)", 1, 1e6, {}},
      ParamSpec{"decision_ms", Value{900.0}, "decision period (ms), at least one step", 1, 1e6, {}},
      ParamSpec{"ring", Value{std::int64_t{2}}, "direction-tuned input channels (NeuroGym dim_ring)", 2, 64, {}},
      input_noise_param(),
      target_form_param(),
  };
  return info;
}

std::unique_ptr<Task> make_delay_match_task(const TaskConfig& cfg, double dt) {
  static const TaskInfo info = delay_match_task_info();
  const TaskParams p(cfg, info.params);
  const int n[5] = {period_steps(p.get_double("fixation_ms"), dt, 0, "task.fixation_ms"),
                    period_steps(p.get_double("sample_ms"), dt, 1, "task.sample_ms"),
                    period_steps(p.get_double("delay_ms"), dt, 0, "task.delay_ms"),
                    period_steps(p.get_double("test_ms"), dt, 1, "task.test_ms"),
                    period_steps(p.get_double("decision_ms"), dt, 1, "task.decision_ms")};
  return std::make_unique<DelayMatchTask>(n, static_cast<int>(p.get_int("ring")), input_noise_std(p, dt),
                                          target_form_of(p));
}

}  // namespace dalesim
