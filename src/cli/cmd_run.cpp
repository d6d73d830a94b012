// `dalesim run` and `dalesim validate`.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <optional>
#include <set>

#include "cli/commands.hpp"
#include "dalesim/model.hpp"
#include "dalesim/sweep.hpp"
#include "dalesim/task.hpp"
#include "io/merge.hpp"
#include "sweep/shard.hpp"
#include "train/driver.hpp"

namespace dalesim::cli {

namespace {
std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", b, units[u]);
  return buf;
}
}  // namespace

Action add_run_command(CLI::App& app, const std::string& command_line) {
  struct Opts {
    std::string sweep, output, backend = "auto", shard;
    int threads = 0;
    bool force = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("run", "train every replica of a sweep and write one HDF5 file");
  cmd->add_option("sweep", o->sweep, "sweep file (TOML)")->required();
  cmd->add_option("-o,--output", o->output, "output HDF5 file")->required();
  cmd->add_option("--backend", o->backend, "cpu, cuda or auto (CUDA when a device is usable, else CPU)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  cmd->add_option("--threads", o->threads, "CPU worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--force", o->force, "overwrite an existing output file");
  cmd->add_flag("-q,--quiet", o->quiet, "no summary table");
  cmd->add_option("--shard", o->shard,
                  "train only shard K/N (0 <= K < N) of the replicas, balanced by estimated cost; default: "
                  "the Slurm array task (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT) "
                  "when set");
  return [o, command_line]() {
    const Sweep whole = load_sweep_file(o->sweep);
    check_run_settings(whole);
    std::optional<ShardSpec> shard =
        o->shard.empty() ? shard_from_slurm_environment() : std::optional<ShardSpec>(parse_shard(o->shard));
    double share = 1;
    const Sweep sweep = shard ? select_shard(whole, *shard, &share) : whole;
    const std::string shard_text =
        shard ? "shard " + std::to_string(shard->index) + "/" + std::to_string(shard->count) : std::string();
    const std::filesystem::path out(o->output);
    // A finished shard of the same sweep: nothing to do (a requeued or resubmitted array task).
    if (shard && std::filesystem::exists(out) && !o->force) {
      const RunFileIdentity done = read_run_identity(o->output);
      if (done.status == "complete" && done.sweep_hash == sweep_hash(whole.source_text) &&
          done.shard_count == shard->count && done.shard_index == shard->index) {
        std::printf("%s: %s of sweep \"%s\" is already complete; nothing to do\n", o->output.c_str(),
                    shard_text.c_str(), whole.name.c_str());
        return 0;
      }
    }
    if (std::filesystem::exists(out) && !o->force)
      throw ConfigError("--output", o->output, "a path that does not exist yet", "pass --force to overwrite it");
    const std::filesystem::path dir = out.parent_path().empty() ? std::filesystem::path(".") : out.parent_path();
    if (!std::filesystem::is_directory(dir))
      throw ConfigError("--output", o->output, "a file in an existing directory",
                        "directory " + dir.string() + " does not exist");
    RunOptions ro;
    ro.output = o->output;
    ro.overwrite = o->force;
    ro.backend = o->backend;
    ro.n_threads = o->threads;
    ro.command_line = command_line;
    ro.progress = isatty(STDERR_FILENO);
    if (shard) {
      ro.shard_index = shard->index;
      ro.shard_count = shard->count;
      ro.sweep_n_replicas = static_cast<int>(whole.replicas.size());
      char pct[32];
      std::snprintf(pct, sizeof pct, "%.1f%%", 100 * share);
      std::cerr << "dalesim: sweep \"" << sweep.name << "\": " << shard_text << ": " << sweep.replicas.size()
                << " of " << whole.replicas.size() << " replicas, " << pct << " of the estimated cost\n";
    } else {
      std::cerr << "dalesim: sweep \"" << sweep.name << "\": " << sweep.replicas.size() << " replicas\n";
    }
    const RunResult res = run_sweep(sweep, ro, std::cerr);
    int n_div = 0;
    for (auto s : res.status) n_div += s == ReplicaStatus::diverged;
    std::printf("wrote %s: %zu replicas (%d diverged) in %.1f s\n", o->output.c_str(), sweep.replicas.size(), n_div,
                res.seconds);
    if (!o->quiet) print_condition_summary(sweep, res, std::cout);
    return 0;
  };
}

Action add_validate_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("validate", "expand and check a sweep file; print the replica count and memory");
  cmd->add_option("sweep", *path, "sweep file (TOML)")->required();
  return [path]() {
    const Sweep sweep = load_sweep_file(*path);
    check_run_settings(sweep);
    double bytes = 0;
    std::set<std::string> shapes;
    for (const ReplicaConfig& c : sweep.replicas) {
      const auto task = make_task(c.task, c.model.dt);
      bytes += static_cast<double>(estimate_training_bytes(c, task->n_inputs(), task->n_outputs(), task->n_steps()));
      shapes.insert("N=" + std::to_string(c.model.n_units) + " I=" + std::to_string(task->n_inputs()) +
                    " O=" + std::to_string(task->n_outputs()) + " T=" + std::to_string(task->n_steps()));
    }
    std::printf("sweep \"%s\": %zu replicas, %zu shape%s\n", sweep.name.c_str(), sweep.replicas.size(), shapes.size(),
                shapes.size() == 1 ? "" : "s");
    std::printf("axes:");
    for (const auto& k : sweep.axis_keys) std::printf(" %s", k.c_str());
    std::printf("%s\n", sweep.axis_keys.empty() ? " (none)" : "");
    for (const auto& s : shapes) std::printf("  shape %s\n", s.c_str());
    std::printf("estimated training memory: %s\n", human_bytes(bytes).c_str());
    return 0;
  };
}

}  // namespace dalesim::cli
