// Shared machinery of the cognitive tasks: target forms, trial writing, noise scale, baselines.
#include "tasks/cognitive.hpp"

#include <cmath>
#include <cstdio>

namespace dalesim {

std::string condition_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

ParamSpec target_form_param() {
  return ParamSpec{"target", Value{std::string("mse")},
                   "target form: \"mse\" (one-hot targets on every output, masked MSE, as PsychRNN/pycog) or "
                   "\"class\" (one class per step, softmax cross-entropy, as NeuroGym)",
                   -INFINITY, INFINITY, {"mse", "class"}};
}

ParamSpec input_noise_param() {
  return ParamSpec{"sigma", Value{1.0}, "input noise; per-step std sigma / sqrt(dt / 1 ms) as in NeuroGym", 0, 100,
                   {}};
}

TargetForm target_form_of(const TaskParams& p) {
  return p.get_string("target") == "class" ? TargetForm::label : TargetForm::mse;
}

double input_noise_std(const TaskParams& p, double dt) { return p.get_double("sigma") / std::sqrt(dt); }

void begin_cognitive_batch(Batch& out, int B, int T, int I, int O, TargetForm form, int acc_begin, int acc_end) {
  out.resize(B, T, I, O);
  out.loss = form == TargetForm::label ? LossKind::cross_entropy : LossKind::mse;
  out.acc_begin = acc_begin;
  out.acc_end = acc_end;
}

void TrialWriter::set_class(int t, int c) {
  const std::size_t row = static_cast<std::size_t>(t) * out_.B + b_;
  if (form_ == TargetForm::label) {
    out_.target[row] = c;
    return;
  }
  float* y = &out_.y[row * out_.O];
  float* m = &out_.mask[row * out_.O];
  for (int o = 0; o < out_.O; ++o) {
    y[o] = o == c ? 1.f : 0.f;
    m[o] = 1.f;
  }
}

double timing_aware_baseline(TargetForm form, int O, double decision_steps, double trial_steps, int n_choices) {
  if (form == TargetForm::label) return decision_steps * std::log(double(n_choices)) / trial_steps;
  return decision_steps * (1.0 - 1.0 / n_choices) / (O * trial_steps);
}

double truncated_exponential(double u, double mean, double lo, double hi) {
  if (!(hi > lo)) return hi;
  const double a = std::exp(-lo / mean), b = std::exp(-hi / mean);
  return -mean * std::log(a - u * (a - b));
}

double truncated_exponential_mean(double mean, double lo, double hi) {
  if (!(hi > lo)) return hi;
  const double a = std::exp(-lo / mean), b = std::exp(-hi / mean);
  return mean + (lo * a - hi * b) / (a - b);
}

}  // namespace dalesim
