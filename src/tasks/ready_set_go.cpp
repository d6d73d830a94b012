// Ready-set-go interval reproduction (Jazayeri & Shadlen 2015; NeuroGym ReadySetGo): measure the
// interval between a ready and a set pulse, then respond "go" gain x that interval later.
#include <algorithm>
#include <cmath>
#include <limits>

#include "dalesim/rng.hpp"
#include "tasks/builtin.hpp"
#include "tasks/cognitive.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

namespace {

// Periods, as NeuroGym: fixation; measure (the interval, uniform per trial), whose first steps
// carry the ready pulse; set (the set pulse); production, of 2 x gain x measure. The target is
// "go" at the single step gain x measure after the production period begins (after the set
// pulse; gain x the measured steps, rounded), fixate elsewhere. Inputs: 0 fixation (on until production), 1 ready, 2 set. Outputs:
// 0 fixate, 1 go. Trials differ in length; T covers the longest measure.
class ReadySetGoTask final : public Task {
 public:
  struct Timing {
    int n_fix, n_ready, n_set;
    double measure_min, measure_max, gain, dt;  // ms, ms, -, ms
  };
  ReadySetGoTask(Timing tm, TargetForm form) : tm_(tm), form_(form) {}
  std::string name() const override { return "ready_set_go"; }
  int n_inputs() const override { return 3; }
  int n_outputs() const override { return 2; }
  int n_steps() const override { return layout(tm_.measure_max).length; }
  // The output that ignores the interval: always fixate (mse), or go with probability 1/n at each
  // of the n production steps (class), for the mean interval.
  double baseline_loss() const override {
    const double m = 0.5 * (tm_.measure_min + tm_.measure_max) / tm_.dt;
    const double n_prod = 2 * tm_.gain * m, len = tm_.n_fix + m + tm_.n_set + n_prod;
    if (form_ == TargetForm::mse) return 2.0 / (2 * len);
    const double p = 1.0 / n_prod;
    return (-std::log(p) - (n_prod - 1) * std::log1p(-p)) / len;
  }
  // Interval reproduction is judged by the loss: no accuracy.
  double chance_accuracy() const override { return std::numeric_limits<double>::quiet_NaN(); }

  void generate(std::uint64_t data_seed, std::int64_t iteration, int B, Batch& out) const override {
    const int T = n_steps();
    begin_cognitive_batch(out, B, T, 3, 2, form_, 0, 0);
    const std::uint64_t key = mix_key(data_seed, static_cast<std::uint64_t>(iteration));
    for (int b = 0; b < B; ++b) {
      // Counter layout of trial b: 0 the interval.
      const CounterRng rng{key, static_cast<std::uint64_t>(b)};
      const double measure = tm_.measure_min + (tm_.measure_max - tm_.measure_min) * rng.uniform(0);
      const Layout l = layout(measure);
      TrialWriter trial(out, b, form_);
      for (int t = 0; t < l.length; ++t) {
        float* x = trial.x(t);
        x[0] = t < l.production ? 1.f : 0.f;
        x[1] = t >= tm_.n_fix && t < tm_.n_fix + std::min(tm_.n_ready, l.measure) ? 1.f : 0.f;
        x[2] = t >= l.set && t < l.production ? 1.f : 0.f;
        trial.set_class(t, t == l.go ? 1 : 0);
      }
    }
  }

 private:
  struct Layout {
    int measure, set, production, go, length;  // measure steps; first step of set, production, go; length
  };
  Layout layout(double measure_ms) const {
    Layout l{};
    l.measure = std::max(1, static_cast<int>(std::lround(measure_ms / tm_.dt)));
    l.set = tm_.n_fix + l.measure;
    l.production = l.set + tm_.n_set;
    // From the measured steps, so that the target is computable from the inputs.
    const int go = static_cast<int>(std::lround(tm_.gain * l.measure));
    const int n_prod = std::max(go + 1, static_cast<int>(std::lround(2 * tm_.gain * l.measure)));
    l.go = l.production + go;
    l.length = l.production + n_prod;
    return l;
  }
  Timing tm_;
  TargetForm form_;
};

}  // namespace

TaskInfo ready_set_go_task_info() {
  TaskInfo info;
  info.name = "ready_set_go";
  info.summary =
      "ready-set-go interval reproduction: ready and set pulses bound an interval; respond go gain x interval "
      "after set; 3 inputs (fixation, ready, set), 2 outputs (fixate, go); variable length; no accuracy";
  info.params = {
      ParamSpec{"fixation_ms", Value{100.0}, "fixation period (ms)", 0, 1e6, {}},
      ParamSpec{"ready_ms", Value{83.0}, "ready pulse (ms), at the start of the measured interval", 1, 1e6, {}},
      ParamSpec{"measure_min_ms", Value{800.0}, "shortest interval ready-to-set (ms), uniform per trial", 1, 1e6, {}},
      ParamSpec{"measure_max_ms", Value{1500.0}, "longest interval ready-to-set (ms); T covers it", 1, 1e6, {}},
      ParamSpec{"set_ms", Value{83.0}, "set pulse (ms)", 1, 1e6, {}},
      ParamSpec{"gain", Value{1.0}, "produced interval / measured interval", 0.01, 100, {}},
      target_form_param(),
  };
  return info;
}

std::unique_ptr<Task> make_ready_set_go_task(const TaskConfig& cfg, double dt) {
  static const TaskInfo info = ready_set_go_task_info();
  const TaskParams p(cfg, info.params);
  ReadySetGoTask::Timing tm{};
  tm.n_fix = period_steps(p.get_double("fixation_ms"), dt, 0, "task.fixation_ms");
  tm.n_ready = period_steps(p.get_double("ready_ms"), dt, 1, "task.ready_ms");
  tm.n_set = period_steps(p.get_double("set_ms"), dt, 1, "task.set_ms");
  tm.measure_min = p.get_double("measure_min_ms");
  tm.measure_max = p.get_double("measure_max_ms");
  tm.gain = p.get_double("gain");
  tm.dt = dt;
  if (tm.measure_max < tm.measure_min)
    throw ConfigError("task.measure_max_ms", format_value(tm.measure_max),
                      ">= task.measure_min_ms = " + format_value(tm.measure_min));
  period_steps(tm.measure_min, dt, 1, "task.measure_min_ms");
  return std::make_unique<ReadySetGoTask>(tm, target_form_of(p));
}

}  // namespace dalesim
