// The driver loop of SPEC/STYLE's data path: init -> upload -> (batch -> step -> log/checkpoint)* -> close.
#include "train/driver.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <ostream>
#include <stdexcept>
#include <thread>

#include "cpu/parallel.hpp"
#include "dalesim/backend.hpp"
#include "dalesim/model.hpp"
#include "dalesim/task.hpp"
#include "dalesim/version.hpp"
#include "diagnostics/diagnostics.hpp"
#include "diagnostics/geometry.hpp"
#include "diagnostics/probe.hpp"
#include "train/evaluation.hpp"
#include "train/interrupt.hpp"
#include "train/progress.hpp"

namespace dalesim {

namespace {

// Replicas with the same task settings and data seed see the same trials: generate them once.
std::string batch_key(const ReplicaConfig& c) {
  std::string key = c.task.name + "|" + std::to_string(c.task.batch) + "|" + format_value(c.model.dt) + "|" +
                    std::to_string(c.data_seed);
  for (const auto& [k, v] : c.task.params) key += "|" + k + "=" + format_value(v);
  return key;
}

struct TaskPlan {
  std::vector<std::unique_ptr<Task>> tasks;  // one per distinct batch stream
  std::vector<int> stream_of;                // replica -> stream
  std::vector<const ReplicaConfig*> stream_cfg;
};

TaskPlan plan_tasks(const Sweep& sweep) {
  TaskPlan plan;
  std::map<std::string, int> index;
  for (const ReplicaConfig& c : sweep.replicas) {
    auto [it, added] = index.emplace(batch_key(c), static_cast<int>(plan.tasks.size()));
    if (added) {
      plan.tasks.push_back(make_task(c.task, c.model.dt));
      plan.stream_cfg.push_back(&c);
    }
    plan.stream_of.push_back(it->second);
  }
  return plan;
}

// Held-out metrics of every replica on its current parameters: each split is evaluated whole, in
// batches of the training shape (trials past a split's end are unscored), and each batch's mean
// is weighted by its loss weight and accuracy points. Replicas whose task has no such split get
// NaN; they are evaluated on their training batch of step 0 meanwhile (the backend evaluates every
// replica), and the result is ignored. The recurrent noise of batch k is that of iteration -1 - k,
// the same at every checkpoint.
void evaluate_heldout(Backend& backend, const TaskPlan& plan, int n_threads, std::vector<Diagnostics>& diag) {
  const int R = static_cast<int>(plan.stream_of.size()), S = static_cast<int>(plan.tasks.size());
  for (Split split : {Split::validation, Split::test}) {
    std::vector<std::int64_t> n_batches(S, 0);
    std::int64_t K = 0;
    for (int s = 0; s < S; ++s) {
      const std::int64_t B = plan.stream_cfg[s]->task.batch;
      n_batches[s] = (plan.tasks[s]->n_heldout(split) + B - 1) / B;
      K = std::max(K, n_batches[s]);
    }
    if (K == 0) continue;
    std::vector<Batch> batches(S);
    std::vector<const Batch*> batch_of(R);
    for (int r = 0; r < R; ++r) batch_of[r] = &batches[plan.stream_of[r]];
    std::vector<double> loss_sum(R, 0), loss_w(R, 0), acc_sum(R, 0), acc_n(R, 0);
    std::vector<StepMetrics> metrics;
    for (std::int64_t k = 0; k < K; ++k) {
      parallel_for(S, n_threads, [&](int s) {
        const Task& task = *plan.tasks[s];
        const int B = plan.stream_cfg[s]->task.batch;
        if (n_batches[s] > 0)
          task.generate_heldout(split, k, B, batches[s]);
        else if (k == 0)
          task.generate(plan.stream_cfg[s]->data_seed, 0, B, batches[s]);
      });
      backend.evaluate(-1 - k, batch_of, metrics);
      for (int r = 0; r < R; ++r) {
        const int s = plan.stream_of[r];
        if (n_batches[s] == 0) continue;
        const double w = batches[s].loss_weight(), a = batches[s].n_accuracy_points();
        if (w > 0) loss_sum[r] += metrics[r].loss * w, loss_w[r] += w;  // NaN (diverged) stays NaN
        if (a > 0) acc_sum[r] += metrics[r].accuracy * a, acc_n[r] += a;
      }
    }
    const double nan = std::nan("");
    for (int r = 0; r < R; ++r) {
      const double loss = loss_w[r] > 0 ? loss_sum[r] / loss_w[r] : nan;
      const double acc = acc_n[r] > 0 ? acc_sum[r] / acc_n[r] : nan;
      if (split == Split::test) {
        diag[r].test_loss = loss;
        diag[r].test_accuracy = acc;
      } else {
        diag[r].validation_loss = loss;
        diag[r].validation_accuracy = acc;
      }
    }
  }
}

template <class Get>
void require_uniform(const Sweep& sweep, const char* key, Get get) {
  const auto first = get(sweep.replicas.front());
  for (const ReplicaConfig& c : sweep.replicas)
    if (get(c) != first)
      throw ConfigError(key, std::to_string(get(c)), "the same value for every replica (" + std::to_string(first) + ")",
                        "the history is one [step, replica] table; run such replicas as separate sweeps");
}

// One line per held-out split at the end of the run: mean loss and accuracy over the replicas
// that have it and did not diverge.
void log_heldout_summary(const std::vector<Diagnostics>& diag, std::ostream& log) {
  const struct {
    const char* name;
    double Diagnostics::*loss;
    double Diagnostics::*accuracy;
  } splits[] = {{"validation", &Diagnostics::validation_loss, &Diagnostics::validation_accuracy},
                {"test", &Diagnostics::test_loss, &Diagnostics::test_accuracy}};
  for (const auto& sp : splits) {
    double loss = 0, acc = 0;
    int n = 0, n_acc = 0;
    for (const Diagnostics& d : diag) {
      if (!std::isfinite(d.*sp.loss)) continue;
      loss += d.*sp.loss;
      ++n;
      if (std::isfinite(d.*sp.accuracy)) acc += d.*sp.accuracy, ++n_acc;
    }
    if (n == 0) continue;
    log << sp.name << " set at the end: mean loss " << loss / n;
    if (n_acc) log << ", mean accuracy " << acc / n_acc;
    log << " (" << n << " replicas)\n";
  }
}

}  // namespace

void check_run_settings(const Sweep& sweep) {
  if (sweep.replicas.empty()) throw ConfigError("sweep", "(no replicas)", "at least one replica");
  require_uniform(sweep, "train.n_steps", [](const ReplicaConfig& c) { return c.train.n_steps; });
  require_uniform(sweep, "train.log_every", [](const ReplicaConfig& c) { return c.train.log_every; });
  require_uniform(sweep, "train.checkpoint_every", [](const ReplicaConfig& c) { return c.train.checkpoint_every; });
  for (const ReplicaConfig& c : sweep.replicas) make_task(c.task, c.model.dt);
}

RunResult run_sweep(const Sweep& sweep, const RunOptions& options, std::ostream& log) {
  check_run_settings(sweep);
  const int R = static_cast<int>(sweep.replicas.size());
  const TrainConfig& tc = sweep.replicas.front().train;
  TaskPlan plan = plan_tasks(sweep);

  BackendOptions bopt;
  bopt.n_threads = options.n_threads;
  RunResult result;
  std::unique_ptr<Backend> backend = make_backend(options.backend, bopt, &result.backend_line, &result.backend_detail);
  const int n_threads = options.n_threads > 0 ? options.n_threads : static_cast<int>(std::thread::hardware_concurrency());

  std::vector<ReplicaRow> rows(R);
  std::vector<ReplicaModel> models(R);
  parallel_for(R, n_threads, [&](int r) {
    const Task& task = *plan.tasks[plan.stream_of[r]];
    rows[r] = ReplicaRow{&sweep.replicas[r], task.n_inputs(),       task.n_outputs(),
                         task.n_steps(),      task.baseline_loss(), task.chance_accuracy(),
                         task.condition_names(), std::string{}};  // kernel_used: set by the backend
    models[r] = init_replica(sweep.replicas[r], task.n_inputs(), task.n_outputs());
  });
  // The references of the diagnostics, from the initial models (a resumed run draws them again):
  // W_rec at step 0, and a fixed probe batch per data stream with each replica's activity on it.
  std::vector<std::vector<float>> w0(R);
  for (int r = 0; r < R; ++r) w0[r] = to_weights(models[r]).W_rec;
  std::vector<Batch> probes(plan.tasks.size());
  for (std::size_t s = 0; s < plan.tasks.size(); ++s)
    plan.tasks[s]->generate(plan.stream_cfg[s]->data_seed, kProbeIteration, plan.stream_cfg[s]->task.batch, probes[s]);
  std::vector<ProbeActivity> probe0(R);
  parallel_for(R, n_threads, [&](int r) { probe0[r] = probe_activity(models[r], probes[plan.stream_of[r]]); });

  // The fixed evaluation set of every data stream, scored at each checkpoint.
  std::vector<const Task*> eval_tasks;
  std::vector<int> eval_batch;
  std::vector<std::uint64_t> eval_seed;
  for (std::size_t s = 0; s < plan.tasks.size(); ++s) {
    eval_tasks.push_back(plan.tasks[s].get());
    eval_batch.push_back(plan.stream_cfg[s]->task.batch);
    eval_seed.push_back(plan.stream_cfg[s]->data_seed);
  }

  // A resumed run continues from the training state of its last save point.
  ResumePoint resume_point;
  if (options.resume) resume_point = read_resume_point(options.output, models);
  const std::int64_t first_iteration = resume_point.next_iteration;
  try {
    backend->upload(models);
  } catch (const ConfigError& e) {
    // `auto` chose CUDA but the sweep needs something only the CPU backend has: fall back, saying why.
    if (options.backend != "auto" || backend->name() == "cpu") throw;
    backend = make_cpu_backend(bopt);
    result.backend_line = "using the CPU: the CUDA backend cannot run this sweep (" + std::string(e.what()) + ")";
    backend->upload(models);
  }
  for (int r = 0; r < R; ++r) rows[r].kernel_used = backend->kernel_of(models[r], sweep.replicas[r].task.batch);

  RunInfo info;
  info.command_line = options.command_line;
  info.backend = backend->name();
  info.device = backend->device();
  info.git_hash = DALESIM_GIT_HASH;
  info.engine_version = DALESIM_VERSION;
  info.shard_index = options.shard_index;
  info.shard_count = options.shard_count;
  info.sweep_n_replicas = options.sweep_n_replicas;
  info.data_files = options.data_files;
  std::unique_ptr<HistoryWriter> writer =
      options.resume ? resume_hdf5_writer(options.output, resume_point, info)
                     : create_hdf5_writer(options.output, sweep, rows, info, options.overwrite);
  auto count = [](std::size_t n, const char* one, const char* many) { return std::to_string(n) + " " + (n == 1 ? one : many); };
  log << result.backend_line << "; " << count(R, "replica", "replicas") << ", " << count(tc.n_steps, "step", "steps");
  if (options.resume) log << ", resumed with " << first_iteration << " of " << tc.n_steps << " steps done";
  log << "\n";
  if (options.verbose) {
    if (!result.backend_detail.empty()) log << "  " << result.backend_detail << "\n";
    if (backend->name() != "cpu") {  // the CUDA training kernels (docs/cuda.md), as /replicas/kernel_used
      std::map<std::string, std::size_t> kernels;
      for (const ReplicaRow& row : rows) ++kernels[row.kernel_used];
      log << "  training kernels:";
      for (const auto& [name, n] : kernels) log << " " << name << " for " << count(n, "replica", "replicas") << ";";
      log << "\n";
    }
    log << "  " << count(plan.tasks.size(), "sequence", "different sequences")
        << " of training trials (replicas with the same task settings and data seed share one)\n";
  }

  std::vector<Diagnostics> final_diag;
  auto checkpoint = [&](std::int64_t step) {
    std::vector<ReplicaWeights> weights(R);
    std::vector<Diagnostics> diag(R);
    parallel_for(R, n_threads, [&](int r) {
      weights[r] = to_weights(models[r]);
      Diagnostics& d = diag[r];
      // A replica whose parameters are no longer finite (diverged) gets NaN diagnostics: nothing
      // non-finite reaches LAPACK, the probes or the geometry scores.
      const auto& p = models[r].params;
      if (!std::all_of(p.begin(), p.end(), [](double x) { return std::isfinite(x); })) {
        d = non_finite_diagnostics(models[r].layout.N);
        d.density = recurrent_density(models[r]);
        return;
      }
      d = compute_diagnostics(weights[r], w0[r], sweep.replicas[r].model.n_exc());
      d.density = recurrent_density(models[r]);
      const ProbeActivity now = probe_activity(models[r], probes[plan.stream_of[r]]);
      const ProbeComparison c = compare_probes(probe0[r], now);
      d.act_corr_e = now.stats.corr_e;
      d.act_corr_i = now.stats.corr_i;
      d.act_sparseness = now.stats.sparseness;
      d.act_ei_balance = now.stats.ei_balance;
      d.rep_alignment = c.rep_alignment;
      d.sign_similarity = c.sign_similarity;
      d.units_unchanged = c.units_unchanged;
      const std::vector<double> a(w0[r].begin(), w0[r].end()), b(weights[r].W_rec.begin(), weights[r].W_rec.end());
      if (step > 0)
        for (const GeometryScore& g : geometry_scores(a, b)) {
          if (g.potential == "p=1.5") d.geometry_p1_5 = g.dcdf;
          if (g.potential == "p=2") d.geometry_p2 = g.dcdf;
          if (g.potential == "p=3") d.geometry_p3 = g.dcdf;
          if (g.potential == "negentropy") d.geometry_negentropy = g.dcdf;
        }
    });
    evaluate_heldout(*backend, plan, n_threads, diag);
    evaluate_fixed_set(*backend, eval_tasks, eval_batch, eval_seed, plan.stream_of, n_threads, diag);
    final_diag = diag;
    writer->append_checkpoint(step, diag, weights, &models);  // with the state to resume from
  };
  if (!options.resume) checkpoint(0);

  Progress progress(tc.n_steps, R, options.output + ".progress", options.progress, first_iteration);
  // Losses of different tasks are not comparable: the progress log gives them per task.
  std::vector<std::string> task_names;
  std::vector<int> task_of(R);
  for (int r = 0; r < R; ++r) {
    const std::string& name = sweep.replicas[r].task.name;
    auto at = std::find(task_names.begin(), task_names.end(), name);
    if (at == task_names.end()) at = task_names.insert(task_names.end(), name);
    task_of[r] = static_cast<int>(at - task_names.begin());
  }
  progress.set_tasks(task_names);
  std::vector<double> task_loss(task_names.size());
  std::vector<Batch> batches(plan.tasks.size());
  std::vector<const Batch*> batch_of(R);
  for (int r = 0; r < R; ++r) batch_of[r] = &batches[plan.stream_of[r]];
  std::vector<StepMetrics> metrics;
  for (std::int64_t it = first_iteration; it < tc.n_steps; ++it) {
    // Pruning (train.prune_*): on the host, between iterations, the same for every backend.
    if (std::any_of(sweep.replicas.begin(), sweep.replicas.end(), [&](const ReplicaConfig& c) { return c.train.prunes_at(it); })) {
      backend->download(models);
      for (int r = 0; r < R; ++r)
        if (sweep.replicas[r].train.prunes_at(it) && models[r].diverged_step < 0)
          prune_recurrent(models[r], sweep.replicas[r].train.prune_fraction);
      backend->upload(models);
    }
    parallel_for(static_cast<int>(batches.size()), n_threads, [&](int s) {
      plan.tasks[s]->generate(plan.stream_cfg[s]->data_seed, it, plan.stream_cfg[s]->task.batch, batches[s]);
    });
    const bool log_row = it % tc.log_every == 0 || it == tc.n_steps - 1;
    // Metrics leave the device only on logged steps.
    backend->train_step(it, batch_of, log_row ? &metrics : nullptr);
    double mean_loss = std::nan("");
    int n_div = -1;
    if (log_row) {
      writer->append_history(it, metrics);
      result.final_metrics = metrics;
      const std::vector<std::int64_t> div = backend->diverged_steps();
      double loss_sum = 0;
      int n_live = 0;
      std::vector<int> task_live(task_names.size(), 0);
      std::fill(task_loss.begin(), task_loss.end(), 0.0);
      n_div = 0;
      for (int r = 0; r < R; ++r) {
        if (div[r] >= 0) {
          ++n_div;
        } else if (std::isfinite(metrics[r].loss)) {
          loss_sum += metrics[r].loss;
          ++n_live;
          task_loss[task_of[r]] += metrics[r].loss;
          ++task_live[task_of[r]];
        }
      }
      if (n_live) mean_loss = loss_sum / n_live;
      for (std::size_t k = 0; k < task_loss.size(); ++k)
        task_loss[k] = task_live[k] ? task_loss[k] / task_live[k] : std::nan("");
    }
    const std::int64_t done = it + 1;
    if (done % tc.checkpoint_every == 0 || done == tc.n_steps) {
      backend->download(models);
      checkpoint(done);
    }
    progress.update(it, mean_loss, n_div, log_row, task_loss);
    if (const int signal = stop_requested(); signal != 0 && done < tc.n_steps) {
      // Asked to stop: save where we are (no checkpoint row, so that a resumed run's file equals
      // an uninterrupted one) and leave the file unfinished.
      backend->download(models);
      writer->save_resume_point(done, models);
      progress.finish("interrupted");
      result.interrupted_by = signal;
      result.stopped_at = done;
      result.diverged_step = backend->diverged_steps();
      result.seconds = progress.elapsed_seconds();
      return result;
    }
  }
  if (result.final_metrics.empty()) {
    // Resumed after the last step (killed while closing): the last row is in the file already.
    const RunFile f = read_run_file(options.output);
    if (!f.history_step.empty()) result.final_metrics = f.history_row(f.history_step.size() - 1);
  }

  result.diverged_step = backend->diverged_steps();
  result.status.resize(R);
  for (int r = 0; r < R; ++r)
    result.status[r] = result.diverged_step[r] >= 0 ? ReplicaStatus::diverged : ReplicaStatus::complete;
  writer->set_replica_status(result.status, result.diverged_step);
  writer->close();
  log_heldout_summary(final_diag, log);
  progress.finish("complete");
  result.seconds = progress.elapsed_seconds();
  return result;
}

}  // namespace dalesim
