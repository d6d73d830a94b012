// Go/no-go (NeuroGym GoNogo): a go or a no-go cue, a delay, then respond to go and keep fixating
// on no-go.
#include <cmath>

#include "dalesim/rng.hpp"
#include "tasks/builtin.hpp"
#include "tasks/cognitive.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

namespace {

// Inputs: 0 fixation (on until the decision), 1 no-go cue, 2 go cue (during the stimulus, plus
// noise when sigma > 0). Outputs: 0 fixate, 1 go. During the decision the class is go (1) on go
// trials and fixate (0) on no-go trials.
class GoNogoTask final : public Task {
 public:
  GoNogoTask(const int periods[4], double noise_std, TargetForm form) : noise_std_(noise_std), form_(form) {
    for (int k = 0; k < 4; ++k) n_[k] = periods[k];
  }
  std::string name() const override { return "go_nogo"; }
  int n_inputs() const override { return 3; }
  int n_outputs() const override { return 2; }
  int n_steps() const override { return n_[0] + n_[1] + n_[2] + n_[3]; }
  double baseline_loss() const override { return timing_aware_baseline(form_, 2, n_[3], n_steps(), 2); }
  double chance_accuracy() const override { return 0.5; }
  // Condition 0: no-go trials, 1: go trials.
  std::vector<std::string> condition_names() const override { return {"no-go", "go"}; }

  void generate(std::uint64_t data_seed, std::int64_t iteration, int B, Batch& out) const override {
    const int T = n_steps(), stim0 = n_[0], delay0 = stim0 + n_[1], dec0 = delay0 + n_[2];
    begin_cognitive_batch(out, B, T, 3, 2, form_, 0, 2);
    const std::uint64_t key = mix_key(data_seed, static_cast<std::uint64_t>(iteration));
    for (int b = 0; b < B; ++b) {
      // Counter layout of trial b: 0 go or no-go, 8 + 2t + k noise of cue channel k at step t.
      const CounterRng rng{key, static_cast<std::uint64_t>(b)};
      const int go = static_cast<int>(rng.below(0, 2));
      out.condition[b] = go;
      TrialWriter trial(out, b, form_);
      for (int t = 0; t < T; ++t) {
        float* x = trial.x(t);
        x[0] = t < dec0 ? 1.f : 0.f;
        if (t >= stim0 && t < delay0)
          for (int k = 0; k < 2; ++k) {
            const double mean = k == go ? 1.0 : 0.0;
            const double noise = noise_std_ > 0 ? noise_std_ * rng.normal(8 + 2 * static_cast<std::uint64_t>(t) + k) : 0;
            x[1 + k] = static_cast<float>(mean + noise);
          }
        trial.set_class(t, t < dec0 ? 0 : go);
      }
      trial.score_accuracy(T - 1, go);
    }
  }

 private:
  int n_[4];  // fixation, stimulus, delay, decision (steps)
  double noise_std_;
  TargetForm form_;
};

}  // namespace

TaskInfo go_nogo_task_info() {
  TaskInfo info;
  info.name = "go_nogo";
  info.summary =
      "go/no-go: a go or no-go cue, a delay, then respond (go) or keep fixating (no-go); 3 inputs (fixation, "
      "no-go cue, go cue), 2 outputs (fixate, go); decision-period accuracy, chance 0.5";
  ParamSpec sigma = input_noise_param();
  sigma.default_value = Value{0.0};
  sigma.doc += "; NeuroGym's GoNogo has none";
  info.params = {
      ParamSpec{"fixation_ms", Value{0.0}, "fixation period (ms)", 0, 1e6, {}},
      ParamSpec{"stimulus_ms", Value{500.0}, "cue period (ms)", 1, 1e6, {}},
      ParamSpec{"delay_ms", Value{500.0}, "delay period (ms)", 0, 1e6, {}},
      ParamSpec{"decision_ms", Value{500.0}, "decision period (ms), at least one step", 1, 1e6, {}},
      sigma,
      target_form_param(),
  };
  return info;
}

std::unique_ptr<Task> make_go_nogo_task(const TaskConfig& cfg, double dt) {
  static const TaskInfo info = go_nogo_task_info();
  const TaskParams p(cfg, info.params);
  const int n[4] = {period_steps(p.get_double("fixation_ms"), dt, 0, "task.fixation_ms"),
                    period_steps(p.get_double("stimulus_ms"), dt, 1, "task.stimulus_ms"),
                    period_steps(p.get_double("delay_ms"), dt, 0, "task.delay_ms"),
                    period_steps(p.get_double("decision_ms"), dt, 1, "task.decision_ms")};
  return std::make_unique<GoNogoTask>(n, input_noise_std(p, dt), target_form_of(p));
}

}  // namespace dalesim
