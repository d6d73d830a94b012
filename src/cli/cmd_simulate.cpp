// `dalesim simulate`: trained replicas run forward on trials, every unit's state kept.
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "dalesim/task.hpp"
#include "dynamics/simulation_file.hpp"
#include "dynamics/trials_file.hpp"

namespace dalesim::cli {

// The trials of --trials FILE, or --task-trials N of the first replica's own task (its data seed,
// batch --iteration): shared by every replica simulated.
TrialSet simulation_trials(const TrainedReplica& first, const std::string& trials_path, int task_trials,
                           long long iteration) {
  if (trials_path.empty() == (task_trials == 0))
    throw ConfigError("--trials", trials_path.empty() ? "(none)" : trials_path,
                      "exactly one of --trials FILE or --task-trials N",
                      "--task-trials N draws N trials of the replica's own task");
  if (!trials_path.empty()) return read_trials_file(trials_path);
  TrialSet ts;
  const ReplicaConfig& cfg = *first.config;
  const std::unique_ptr<Task> task = make_task(cfg.task, cfg.model.dt);
  task->generate(cfg.data_seed, iteration, task_trials, ts.batch);
  ts.condition_names = task->condition_names();
  ts.dt = cfg.model.dt;
  ts.origin = "task " + cfg.task.name + " of replica " + std::to_string(first.id) + ", data_seed " +
              std::to_string(cfg.data_seed) + ", iteration " + std::to_string(iteration) + ", " +
              std::to_string(task_trials) + " trials";
  return ts;
}

Action add_simulate_command(CLI::App& app, const std::string& command_line) {
  struct Opts {
    std::string run, output, checkpoint = "last", trials;
    std::vector<int> replicas;
    int task_trials = 0;
    long long iteration = 0;
    bool noise = false, force = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "simulate", "run trained replicas forward on trials and write every unit's state, the outputs and the loss");
  cmd->add_option("run", o->run, "a run's output file (dalesim run -o)")->required();
  cmd->add_option("--replica", o->replicas, "replica id; repeatable (several replicas, the same trials)")->required();
  cmd->add_option("--checkpoint", o->checkpoint, "checkpoint index 0..C-1, or last (default)");
  cmd->add_option("--task-trials", o->task_trials, "N trials of the (first) replica's own task")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--iteration", o->iteration,
                  "with --task-trials: the training batch to draw (N = task.batch gives exactly the trials of that "
                  "step); with --noise: the step whose recurrent noise is used")
      ->check(CLI::Range(0LL, (1LL << 40)));
  cmd->add_option("--trials", o->trials, "a trials file (dalesim trials, or the file task's layout)");
  cmd->add_flag("--noise", o->noise, "recurrent noise on (model.sigma_rec), as the trainer draws it; off by default");
  cmd->add_option("-o,--output", o->output, "simulation file to write (HDF5)")->required();
  cmd->add_flag("--force", o->force, "overwrite an existing output file");
  return [o, command_line]() {
    check_new_output(o->output, o->force);
    std::vector<TrainedReplica> replicas;
    for (int id : o->replicas) replicas.push_back(load_trained_replica(o->run, id, o->checkpoint));
    const TrialSet trials = simulation_trials(replicas.front(), o->trials, o->task_trials, o->iteration);
    std::vector<SimulationRecord> records;
    for (const TrainedReplica& r : replicas)
      records.push_back({&r, simulate_replica(r, trials.batch, o->noise, o->iteration)});
    SimulationInfo info;
    info.run_file = o->run;
    info.trials_origin = trials.origin;
    info.command_line = command_line;
    info.noise = o->noise;
    info.dt = replicas.front().config->model.dt;
    write_simulation_file(o->output, trials, records, info, o->force);
    for (const SimulationRecord& rec : records)
      std::printf("replica %d at checkpoint %d (step %lld, %s): %d trials, loss %.6g, accuracy %.4g\n", rec.replica->id,
                  rec.replica->checkpoint, static_cast<long long>(rec.replica->step),
                  rec.replica->exact ? "exact state" : "float32 weights", rec.sim.B, rec.sim.batch_loss,
                  rec.sim.batch_accuracy);
    std::printf("wrote %s\n", o->output.c_str());
    return 0;
  };
}

}  // namespace dalesim::cli
