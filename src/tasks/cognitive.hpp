// Shared machinery of the cognitive tasks (NeuroGym-like trials with fixation, stimulus, delay and
// decision periods): the two target forms, per-step class labels, input noise and baselines.
//
// Every cognitive task describes a trial by its inputs and one class per step: 0 = fixate, 1.. =
// the choices (output o of the network stands for class o). The target form turns the classes
// into what the loss sees:
//   - "mse" (PsychRNN, pycog): y[t] = one-hot of the class over the O outputs, mask 1 on every
//     output of every step of the trial;
//   - "class" (NeuroGym supervised): target[t] = the class, scored by softmax cross-entropy.
// Steps past the trial's end (variable-length trials) get no class: mask 0, target -1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dalesim/rng.hpp"
#include "dalesim/task.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

enum class TargetForm { mse, label };

// The `task.target` and `task.sigma` parameters every cognitive task has.
ParamSpec target_form_param();
ParamSpec input_noise_param();
TargetForm target_form_of(const TaskParams& p);
// Per-step input-noise std: sigma / sqrt(dt / 1 ms), as in NeuroGym.
double input_noise_std(const TaskParams& p, double dt);

// Sizes `out` for a cognitive batch and sets its loss form; nothing is scored yet. Accuracy (when
// acc_end > acc_begin) is the per-step form: the task marks the scored step of each trial.
void begin_cognitive_batch(Batch& out, int B, int T, int I, int O, TargetForm form, int acc_begin, int acc_end);

// Writes trial b of a cognitive batch.
class TrialWriter {
 public:
  TrialWriter(Batch& out, int b, TargetForm form) : out_(out), b_(b), form_(form) {}
  // Inputs [I] of this trial at step t.
  float* x(int t) { return &out_.x[(static_cast<std::size_t>(t) * out_.B + b_) * out_.I]; }
  // The class of step t (0 = fixate): one-hot target (mse) or class target (cross-entropy).
  void set_class(int t, int c);
  // Classes of steps [t0, t1).
  void set_class(int t0, int t1, int c) {
    for (int t = t0; t < t1; ++t) set_class(t, c);
  }
  // Scores accuracy at step t against `label` (counted from the batch's acc_begin).
  void score_accuracy(int t, int label) { out_.acc_label[static_cast<std::size_t>(t) * out_.B + b_] = label; }

 private:
  Batch& out_;
  int b_;
  TargetForm form_;
};

// A number as a condition name shows it: "6.4", "50" (%g).
std::string condition_number(double v);

// Loss of the best output that knows the trial's timing but not its stimulus: exact outside the
// decision period, the mean over `n_choices` equally likely classes during it. With
// `decision_steps` and `trial_steps` the expected counts per trial:
//   mse:   decision_steps (1 - 1/n_choices) / (O trial_steps)
//   class: decision_steps log(n_choices) / trial_steps
double timing_aware_baseline(TargetForm form, int O, double decision_steps, double trial_steps, int n_choices);

// A duration (ms) drawn from an exponential of mean `mean` truncated to [lo, hi] (NeuroGym's
// TruncExp), by inverting the truncated CDF at the uniform `u`; and that distribution's mean.
double truncated_exponential(double u, double mean, double lo, double hi);
double truncated_exponential_mean(double mean, double lo, double hi);

}  // namespace dalesim
