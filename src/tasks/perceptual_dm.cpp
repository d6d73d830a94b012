// Perceptual decision making (NeuroGym-like): integrate noisy evidence, report the stronger side.
#include <cmath>

#include "dalesim/rng.hpp"
#include "tasks/builtin.hpp"
#include "tasks/cognitive.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

namespace {

// Inputs: 0 fixation cue (on until the decision period), 1-2 evidence for choice 0/1 (stimulus
// period only). Classes (cognitive.hpp): 0 fixate before the decision, 1 + the correct choice
// during it; in the default "mse" form the targets are their one-hot vectors over the 3 outputs.
class PerceptualDmTask final : public Task {
 public:
  PerceptualDmTask(int n_fix, int n_stim, int n_delay, int n_dec, double noise_std, std::vector<double> coh,
                   TargetForm form)
      : n_fix_(n_fix), n_stim_(n_stim), n_delay_(n_delay), n_dec_(n_dec), noise_std_(noise_std),
        coh_(std::move(coh)), form_(form) {}
  std::string name() const override { return "perceptual_dm"; }
  int n_inputs() const override { return 3; }
  int n_outputs() const override { return 3; }
  int n_steps() const override { return n_fix_ + n_stim_ + n_delay_ + n_dec_; }
  // Best input-blind output: fixation exact, 0.5 on both choices during the decision.
  double baseline_loss() const override { return timing_aware_baseline(form_, 3, n_dec_, n_steps(), 2); }
  double chance_accuracy() const override { return 0.5; }
  // One condition per coherence, in the order of task.coherences.
  std::vector<std::string> condition_names() const override {
    std::vector<std::string> names;
    for (double c : coh_) names.push_back("coherence " + condition_number(c));
    return names;
  }

  void generate(std::uint64_t data_seed, std::int64_t iteration, int B, Batch& out) const override {
    const int T = n_steps(), dec0 = n_fix_ + n_stim_ + n_delay_;
    begin_cognitive_batch(out, B, T, 3, 3, form_, 1, 3);
    out.acc_step = T - 1;  // final-step accuracy over the two choices
    const std::uint64_t key = mix_key(data_seed, static_cast<std::uint64_t>(iteration));
    for (int b = 0; b < B; ++b) {
      // Counter layout of trial b: 0 choice, 1 coherence, 2 + 2t + k noise of channel k at step t.
      const CounterRng rng{key, static_cast<std::uint64_t>(b)};
      const int gt = static_cast<int>(rng.below(0, 2));
      const std::uint32_t coh_index = rng.below(1, static_cast<std::uint32_t>(coh_.size()));
      const double coh = coh_[coh_index];
      out.label[b] = gt;
      out.condition[b] = static_cast<int>(coh_index);
      TrialWriter trial(out, b, form_);
      for (int t = 0; t < T; ++t) {
        const bool decision = t >= dec0;
        const bool stimulus = t >= n_fix_ && t < n_fix_ + n_stim_;
        float* x = trial.x(t);
        x[0] = decision ? 0.f : 1.f;
        if (stimulus) {
          for (int k = 0; k < 2; ++k) {
            // cos(theta_k - theta_gt) * coh / 200 + 0.5, with theta = {0, pi}
            const double mean = 0.5 + (k == gt ? 1 : -1) * coh / 200.0;
            x[1 + k] = static_cast<float>(mean + noise_std_ * rng.normal(2 + 2 * static_cast<std::uint64_t>(t) + k));
          }
        }
        trial.set_class(t, decision ? 1 + gt : 0);
      }
    }
  }

 private:
  int n_fix_, n_stim_, n_delay_, n_dec_;
  double noise_std_;
  std::vector<double> coh_;
  TargetForm form_;
};

}  // namespace

TaskInfo perceptual_dm_task_info() {
  TaskInfo info;
  info.name = "perceptual_dm";
  info.summary =
      "perceptual decision making: fixate, integrate two noisy evidence channels, report the stronger "
      "one in the decision period; 3 outputs (fixate, choice 0, choice 1), MSE or per-step classes; "
      "final-step accuracy, chance 0.5";
  info.params = {
      ParamSpec{"fixation_ms", Value{100.0}, "fixation period (ms)", 0, 1e6, {}},
      ParamSpec{"stimulus_ms", Value{500.0}, "stimulus period (ms); NeuroGym uses 2000", 1, 1e6, {}},
      ParamSpec{"delay_ms", Value{0.0}, "delay between stimulus and decision (ms); NeuroGym default 0", 0, 1e6, {}},
      ParamSpec{"decision_ms", Value{100.0}, "decision period (ms), at least one step", 1, 1e6, {}},
      input_noise_param(),
      ParamSpec{"coherences", Value{std::vector<double>{0, 6.4, 12.8, 25.6, 51.2}},
                "coherences (percent) drawn uniformly per trial", 0, 100, {}},
      target_form_param(),
  };
  return info;
}

std::unique_ptr<Task> make_perceptual_dm_task(const TaskConfig& cfg, double dt) {
  static const TaskInfo info = perceptual_dm_task_info();
  const TaskParams p(cfg, info.params);
  const int n_fix = period_steps(p.get_double("fixation_ms"), dt, 0, "task.fixation_ms");
  const int n_stim = period_steps(p.get_double("stimulus_ms"), dt, 1, "task.stimulus_ms");
  const int n_delay = period_steps(p.get_double("delay_ms"), dt, 0, "task.delay_ms");
  const int n_dec = period_steps(p.get_double("decision_ms"), dt, 1, "task.decision_ms");
  return std::make_unique<PerceptualDmTask>(n_fix, n_stim, n_delay, n_dec, input_noise_std(p, dt),
                                            p.get_list("coherences"), target_form_of(p));
}

}  // namespace dalesim
