// Context-dependent decision making (Mante et al. 2013; NeuroGym ContextDecisionMaking with an
// explicit context cue): two noisy modalities each point to a choice; a context input says
// which one to report after a variable delay.
#include <cmath>

#include "dalesim/rng.hpp"
#include "tasks/builtin.hpp"
#include "tasks/cognitive.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

namespace {

// Inputs: 0 fixation (on until the decision: its offset is the go cue, needed because the delay
// varies), 1-2 modality 1 evidence for choice 0/1, 3-4 modality 2 evidence, 5-6 context (one-hot:
// attend modality 1 or 2, on for the whole trial). Evidence as perceptual_dm: 0.5 +- coh/200 plus
// noise, stimulus period only. Outputs: 0 fixate, 1-2 the choice of the attended modality.
// Periods: fixation, stimulus, delay (truncated exponential, per trial), decision; T is the
// longest trial, and the steps after a shorter trial's decision are not scored.
class ContextDmTask final : public Task {
 public:
  struct Timing {
    int n_fix, n_stim, n_dec;
    double delay_mean, delay_min, delay_max, dt;  // ms
  };
  ContextDmTask(Timing tm, double noise_std, std::vector<double> coh, TargetForm form)
      : tm_(tm), noise_std_(noise_std), coh_(std::move(coh)), form_(form) {}
  std::string name() const override { return "context_dm"; }
  int n_inputs() const override { return 7; }
  int n_outputs() const override { return 3; }
  int n_steps() const override { return tm_.n_fix + tm_.n_stim + delay_steps(1.0) + tm_.n_dec; }
  double baseline_loss() const override {
    const double mean_delay = truncated_exponential_mean(tm_.delay_mean, tm_.delay_min, tm_.delay_max) / tm_.dt;
    return timing_aware_baseline(form_, 3, tm_.n_dec, tm_.n_fix + tm_.n_stim + mean_delay + tm_.n_dec, 2);
  }
  double chance_accuracy() const override { return 0.5; }
  // Condition context * n_coherences + k: the context (0: report modality 1, 1: modality 2) and the
  // index k in task.coherences of the reported modality's coherence.
  std::vector<std::string> condition_names() const override {
    std::vector<std::string> names;
    for (int context = 0; context < 2; ++context)
      for (double c : coh_)
        names.push_back("context " + std::to_string(context + 1) + ", coherence " + condition_number(c));
    return names;
  }

  void generate(std::uint64_t data_seed, std::int64_t iteration, int B, Batch& out) const override {
    const int T = n_steps();
    begin_cognitive_batch(out, B, T, 7, 3, form_, 1, 3);
    const std::uint64_t key = mix_key(data_seed, static_cast<std::uint64_t>(iteration));
    const std::uint32_t n_coh = static_cast<std::uint32_t>(coh_.size());
    for (int b = 0; b < B; ++b) {
      // Counter layout of trial b: 0-1 choice of modality 1/2, 2-3 their coherences, 4 context,
      // 5 delay, 8 + 4t + k noise of evidence channel k at step t.
      const CounterRng rng{key, static_cast<std::uint64_t>(b)};
      const int gt[2] = {static_cast<int>(rng.below(0, 2)), static_cast<int>(rng.below(1, 2))};
      const std::uint32_t coh_index[2] = {rng.below(2, n_coh), rng.below(3, n_coh)};
      const double coh[2] = {coh_[coh_index[0]], coh_[coh_index[1]]};
      const int context = static_cast<int>(rng.below(4, 2));
      out.condition[b] = context * static_cast<int>(n_coh) + static_cast<int>(coh_index[context]);
      const int stim0 = tm_.n_fix, delay0 = stim0 + tm_.n_stim;
      const int dec0 = delay0 + delay_steps(rng.uniform(5)), end = dec0 + tm_.n_dec;
      TrialWriter trial(out, b, form_);
      for (int t = 0; t < end; ++t) {
        float* x = trial.x(t);
        x[0] = t < dec0 ? 1.f : 0.f;
        x[5 + context] = 1.f;
        if (t >= stim0 && t < delay0)
          for (int m = 0; m < 2; ++m)
            for (int k = 0; k < 2; ++k) {
              const double mean = 0.5 + (k == gt[m] ? 1 : -1) * coh[m] / 200.0;
              const std::uint64_t c = 8 + 4 * static_cast<std::uint64_t>(t) + 2 * m + k;
              x[1 + 2 * m + k] = static_cast<float>(mean + noise_std_ * rng.normal(c));
            }
        trial.set_class(t, t < dec0 ? 0 : 1 + gt[context]);
      }
      trial.score_accuracy(end - 1, gt[context]);
    }
  }

 private:
  // Delay steps for the uniform u (u = 1 gives the longest delay).
  int delay_steps(double u) const {
    return static_cast<int>(std::lround(truncated_exponential(u, tm_.delay_mean, tm_.delay_min, tm_.delay_max) / tm_.dt));
  }
  Timing tm_;
  double noise_std_;
  std::vector<double> coh_;
  TargetForm form_;
};

}  // namespace

TaskInfo context_dm_task_info() {
  TaskInfo info;
  info.name = "context_dm";
  info.summary =
      "context-dependent decision making (Mante 2013): two noisy modalities, a context input says which to "
      "report after a variable delay; fixation offset is the go cue; 7 inputs, 3 outputs; decision-period "
      "accuracy, chance 0.5";
  info.params = {
      ParamSpec{"fixation_ms", Value{300.0}, "fixation period (ms)", 0, 1e6, {}},
      ParamSpec{"stimulus_ms", Value{750.0}, "stimulus period (ms)", 1, 1e6, {}},
      ParamSpec{"delay_mean_ms", Value{600.0}, "mean of the exponential delay (ms), truncated to [min, max]", 1, 1e6,
                {}},
      ParamSpec{"delay_min_ms", Value{300.0}, "shortest delay (ms)", 0, 1e6, {}},
      ParamSpec{"delay_max_ms", Value{3000.0}, "longest delay (ms); T covers it", 0, 1e6, {}},
      ParamSpec{"decision_ms", Value{100.0}, "decision period (ms), at least one step", 1, 1e6, {}},
      input_noise_param(),
      ParamSpec{"coherences", Value{std::vector<double>{5, 15, 50}},
                "coherences (percent), drawn per trial and modality", 0, 100, {}},
      target_form_param(),
  };
  return info;
}

std::unique_ptr<Task> make_context_dm_task(const TaskConfig& cfg, double dt) {
  static const TaskInfo info = context_dm_task_info();
  const TaskParams p(cfg, info.params);
  ContextDmTask::Timing tm{};
  tm.n_fix = period_steps(p.get_double("fixation_ms"), dt, 0, "task.fixation_ms");
  tm.n_stim = period_steps(p.get_double("stimulus_ms"), dt, 1, "task.stimulus_ms");
  tm.n_dec = period_steps(p.get_double("decision_ms"), dt, 1, "task.decision_ms");
  tm.delay_mean = p.get_double("delay_mean_ms");
  tm.delay_min = p.get_double("delay_min_ms");
  tm.delay_max = p.get_double("delay_max_ms");
  tm.dt = dt;
  if (tm.delay_max < tm.delay_min)
    throw ConfigError("task.delay_max_ms", format_value(tm.delay_max),
                      ">= task.delay_min_ms = " + format_value(tm.delay_min));
  return std::make_unique<ContextDmTask>(tm, input_noise_std(p, dt), p.get_list("coherences"), target_form_of(p));
}

}  // namespace dalesim
