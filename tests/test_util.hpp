// Small builders shared by the tests: tiny replica configs and batches.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dalesim/backend.hpp"
#include "dalesim/config.hpp"
#include "dalesim/model.hpp"
#include "dalesim/task.hpp"

namespace dalesim::test {

// A tiny replica: N units, the given arch, perceptual_dm timed to T = 5 steps (every step masked).
inline ReplicaConfig tiny_config(Arch arch, int N = 6, std::int64_t seed = 1) {
  ReplicaConfig c;
  c.model.arch = arch;
  c.model.n_units = N;
  c.model.e_fraction = 0.5;
  c.model.dt = 20;
  c.model.tau_e = 40;
  c.model.tau_i = 60;
  c.model.rho = 0.9;
  c.task.name = "perceptual_dm";
  c.task.batch = 3;
  c.task.params["fixation_ms"] = Value{20.0};
  c.task.params["stimulus_ms"] = Value{40.0};
  c.task.params["decision_ms"] = Value{40.0};
  c.seed = seed;
  c.init_seed = derive_seed(seed, "init");
  c.data_seed = derive_seed(seed, "data");
  c.noise_seed = derive_seed(seed, "noise");
  return c;
}

// The adding problem with T steps.
inline void use_adding(ReplicaConfig& c, int T, int batch) {
  c.task.name = "adding";
  c.task.batch = batch;
  c.task.params.clear();
  c.task.params["T"] = Value{std::int64_t{T}};
}

inline std::unique_ptr<Task> task_of(const ReplicaConfig& c) { return make_task(c.task, c.model.dt); }

inline ReplicaModel model_of(const ReplicaConfig& c) {
  const auto task = task_of(c);
  return init_replica(c, task->n_inputs(), task->n_outputs());
}

inline Batch batch_of(const ReplicaConfig& c, std::int64_t iteration = 0) {
  Batch b;
  task_of(c)->generate(c.data_seed, iteration, c.task.batch, b);
  return b;
}

// What a run through a backend gives: metrics[step][replica] and the models after the last step.
struct SplitRun {
  std::vector<std::vector<StepMetrics>> metrics;
  std::vector<ReplicaModel> models;
  std::vector<std::int64_t> diverged;
};

// Trains `cfgs` for `steps` iterations; with 0 < split < steps, the first backend stops after
// `split` steps, its state is downloaded into the host models and a new backend continues from
// them (what --resume does through the file).
inline SplitRun run_split(const std::function<std::unique_ptr<Backend>()>& make, const std::vector<ReplicaConfig>& cfgs,
                          int steps, int split = 0) {
  SplitRun out;
  std::vector<std::unique_ptr<Task>> tasks;
  for (const auto& c : cfgs) {
    out.models.push_back(model_of(c));
    tasks.push_back(task_of(c));
  }
  std::vector<Batch> batches(cfgs.size());
  std::vector<const Batch*> ptrs;
  for (auto& b : batches) ptrs.push_back(&b);
  auto backend = make();
  backend->upload(out.models);
  for (int it = 0; it < steps; ++it) {
    if (it == split && split > 0) {
      backend->download(out.models);
      backend = make();
      backend->upload(out.models);
    }
    for (size_t r = 0; r < cfgs.size(); ++r) tasks[r]->generate(cfgs[r].data_seed, it, cfgs[r].task.batch, batches[r]);
    std::vector<StepMetrics> m;
    backend->train_step(it, ptrs, &m);
    out.metrics.push_back(m);
  }
  backend->download(out.models);
  out.diverged = backend->diverged_steps();
  return out;
}

}  // namespace dalesim::test
