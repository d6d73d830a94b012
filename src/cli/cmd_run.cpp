// `dalesim run` and `dalesim validate`.
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>

#include "cli/commands.hpp"
#include "dalesim/model.hpp"
#include "dalesim/sweep.hpp"
#include "dalesim/task.hpp"
#include "io/merge.hpp"
#include "io/output_lock.hpp"
#include "io/run_files.hpp"
#include "sweep/preflight.hpp"
#include "sweep/shard.hpp"
#include "train/driver.hpp"
#include "train/interrupt.hpp"

namespace dalesim::cli {

namespace {

// What `run` does about its output path.
enum class OutputPlan { start, start_over, resume, nothing_to_do };

// Decides from what is on disk and the flags: start (nothing there), start over (--force, or an
// unfinished run that saved nothing yet), resume (--resume on an unfinished run of this sweep),
// or nothing to do (a finished run of this sweep, with --resume or as a shard). Throws
// ConfigError for everything else, before anything is touched.
OutputPlan plan_output(const std::string& output, const Sweep& whole, const std::optional<ShardSpec>& shard,
                       const std::string& data_files, bool force, bool resume) {
  if (resume && force)
    throw ConfigError("--resume", "given with --force", "one of the two",
                      "--resume continues the run in the output file, --force starts it again");
  const OutputOnDisk there = output_on_disk(output);
  if (there == OutputOnDisk::nothing) return OutputPlan::start;
  if (force) return OutputPlan::start_over;
  if (there == OutputOnDisk::lost_link) {
    // Copies without their link: left by a run killed while creating its file (nothing saved
    // yet, so --resume starts it again), or a link removed by hand.
    bool saved = false;
    for (const std::string& copy : run_file_copies(output)) try {
        saved = saved || (std::filesystem::exists(copy) && has_resume_point(copy));
      } catch (const std::exception&) {  // a copy killed half-written holds nothing to keep
      }
    if (!resume || saved)
      throw ConfigError("--output", output, "a path that does not exist yet",
                        "the copies of an unfinished run (" + output + ".partial-a/-b) are there but not the "
                        "link to them; pass --force to start again");
    std::cerr << "dalesim: " << output << " was stopped before its first save point; starting it again\n";
    return OutputPlan::start_over;
  }
  RunFileIdentity found;
  try {
    found = read_run_identity(output);
  } catch (const InputError& e) {  // not a dalesim file: never continued, overwritten only when told
    if (resume) throw ConfigError("--resume", output, "an unfinished dalesim run file", e.what());
    throw ConfigError("--output", output, "a path that does not exist yet", "pass --force to overwrite it");
  }
  const std::string hash = sweep_hash(whole.source_text);
  const bool same_sweep = found.sweep_hash == hash && found.shard_count == (shard ? shard->count : 0) &&
                          found.shard_index == (shard ? shard->index : 0);
  const std::string what = found.shard_count > 0 ? "shard " + std::to_string(found.shard_index) + "/" +
                                                       std::to_string(found.shard_count) + " of sweep"
                                                 : "sweep";
  if (found.status == "complete") {
    // A finished run of the same sweep: nothing to do (a requeued or resubmitted array task).
    if (same_sweep && (shard || resume)) {
      // Copies left by a run killed between its final rename and their removal: a finished file
      // needs them no more (we hold the output's lock, so no run is using them).
      for (const std::string& copy : run_file_copies(output)) std::filesystem::remove(copy);
      return OutputPlan::nothing_to_do;
    }
    throw ConfigError("--output", output, "a path that does not exist yet", "pass --force to overwrite it");
  }
  if (!resume)
    throw ConfigError("--output", output, "a path that does not exist yet",
                      "it holds an unfinished run of " + what + " \"" + found.sweep_name +
                          "\": pass --resume to continue it or --force to start again");
  if (!same_sweep && found.sweep_hash == hash) {  // the right sweep file, another part of it
    const std::string wanted = shard ? "shard " + std::to_string(shard->index) + "/" + std::to_string(shard->count)
                                     : std::string("the whole sweep");
    throw ConfigError("--resume", output, "a file of " + wanted + " of this sweep",
                      "it holds " + (found.shard_count > 0 ? what : std::string("the whole sweep")) +
                          ": resume it with the same --shard it was started with" +
                          (found.shard_count > 0 ? " (--shard " + std::to_string(found.shard_index) + "/" +
                                                       std::to_string(found.shard_count) + ")"
                                                 : " (none)"));
  }
  if (!same_sweep)
    throw ConfigError("--resume", output,
                      "a file of this sweep file (sweep \"" + whole.name + "\", sweep_hash " + hash +
                          (shard ? ", shard " + std::to_string(shard->index) + "/" + std::to_string(shard->count)
                                 : std::string()) +
                          ")",
                      "it holds " + what + " \"" + found.sweep_name + "\" (sweep_hash " + found.sweep_hash +
                          "); resume with the sweep file it was started with, byte for byte");
  // The data the tasks read must be what the run started with: a trials file rewritten since would
  // silently train the rest of the run on other data.
  if (!found.data_files.empty() && data_files != found.data_files)
    throw ConfigError("--resume", output, "the data files the run started with (" + found.data_files + ")",
                      "now: " + (data_files.empty() ? std::string("none") : data_files) +
                          "; restore them, or start again with --force");
  if (has_resume_point(output)) return OutputPlan::resume;
  std::cerr << "dalesim: " << output << " has no save point yet; starting it again\n";
  return OutputPlan::start_over;
}

}  // namespace

Action add_run_command(CLI::App& app, const std::string& command_line) {
  struct Opts {
    std::string sweep, output, backend = "auto", shard;
    int threads = 0;
    bool force = false, quiet = false, resume = false, verbose = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("run", "train every replica of a sweep and write one HDF5 file");
  cmd->add_option("sweep", o->sweep, "sweep file (TOML)")->required();
  cmd->add_option("-o,--output", o->output, "output HDF5 file")->required();
  cmd->add_option("--backend", o->backend, "cpu, cuda or auto (CUDA when a device is usable, else CPU)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  cmd->add_option("--threads", o->threads, "CPU worker threads (default: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_flag("--force", o->force, "overwrite an existing output file (or start an unfinished run again)");
  cmd->add_flag("--resume", o->resume,
                "continue the unfinished run in the output file from its last save point (the same sweep file); "
                "a finished one is left as it is, a missing one is started");
  cmd->add_flag("-q,--quiet", o->quiet, "no summary table");
  cmd->add_flag("-v,--verbose", o->verbose, "also say why no GPU was used (the CUDA error) and how many trial "
                "sequences the replicas share");
  cmd->add_option("--shard", o->shard,
                  "train only shard K/N (0 <= K < N) of the replicas, balanced by estimated cost; default: "
                  "the Slurm array task (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT) "
                  "when set");
  return [o, command_line]() {
    const Sweep whole = load_sweep_file(o->sweep);
    // The output must not be the sweep file itself (nor a link to it): --force would replace it.
    std::error_code ec;
    if (std::filesystem::exists(o->output, ec) && std::filesystem::equivalent(o->sweep, o->output, ec))
      throw ConfigError("--output", o->output, "a path other than the sweep file", "it is the sweep file " + o->sweep);
    check_run_settings(whole);
    std::optional<ShardSpec> shard =
        o->shard.empty() ? shard_from_slurm_environment() : std::optional<ShardSpec>(parse_shard(o->shard));
    double share = 1;
    const Sweep sweep = shard ? select_shard(whole, *shard, &share) : whole;
    const std::string shard_text =
        shard ? "shard " + std::to_string(shard->index) + "/" + std::to_string(shard->count) : std::string();
    // Whether a file can be written there at all (a probe, nothing at the path is touched); then
    // the output's lock, held to the end of the run, before anything at the path is read or
    // changed: a second run on a live output is refused, --force and --resume included.
    check_output_path(o->output, /*force=*/true);
    const OutputLock lock(o->output);
    // What this process's replicas read from disk (a shard's, not the whole sweep's): recorded in
    // a new file, compared with the recorded one on --resume. Hashed once.
    const std::string data_files = data_files_identity(sweep);
    const OutputPlan plan = plan_output(o->output, whole, shard, data_files, o->force, o->resume);
    if (plan == OutputPlan::nothing_to_do) {
      std::printf("%s: %s \"%s\" is already complete; nothing to do\n", o->output.c_str(),
                  shard ? (shard_text + " of sweep").c_str() : "sweep", whole.name.c_str());
      return 0;
    }
    check_memory_fits(sweep, o->backend);
    RunOptions ro;
    ro.output = o->output;
    ro.overwrite = plan == OutputPlan::start_over;
    ro.resume = plan == OutputPlan::resume;
    ro.data_files = data_files;
    ro.backend = o->backend;
    ro.n_threads = o->threads;
    ro.command_line = command_line;
    ro.progress = isatty(STDERR_FILENO);
    ro.verbose = o->verbose;
    if (shard) {
      ro.shard_index = shard->index;
      ro.shard_count = shard->count;
      ro.sweep_n_replicas = static_cast<int>(whole.replicas.size());
      char pct[32];
      std::snprintf(pct, sizeof pct, "%.1f%%", 100 * share);
      std::cerr << "dalesim: sweep \"" << sweep.name << "\": " << shard_text << ": " << sweep.replicas.size()
                << " of " << whole.replicas.size() << " replicas, " << pct << " of the estimated cost\n";
    } else {
      std::cerr << "dalesim: sweep \"" << sweep.name << "\": " << sweep.replicas.size()
                << (sweep.replicas.size() == 1 ? " replica\n" : " replicas\n");
    }
    const RunResult res = run_sweep(sweep, ro, std::cerr);
    if (res.interrupted_by) {
      std::fprintf(stderr,
                   "dalesim: stopped by %s after %lld training steps of %s; continue with the same command and "
                   "--resume (exit code %d)\n",
                   res.interrupted_by == SIGINT    ? "SIGINT"
                   : res.interrupted_by == SIGTERM ? "SIGTERM"
                   : res.interrupted_by == SIGHUP  ? "SIGHUP"
                                                   : "a signal",
                   static_cast<long long>(res.stopped_at), o->output.c_str(),
                   kExitInterrupted);
      return kExitInterrupted;
    }
    int n_div = 0;
    for (auto s : res.status) n_div += s == ReplicaStatus::diverged;
    std::printf("wrote %s: %zu replica%s (%d diverged) in %.1f s\n", o->output.c_str(), sweep.replicas.size(),
                sweep.replicas.size() == 1 ? "" : "s", n_div, res.seconds);
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
    // One entry per axis: the keys of a [[sweep.zip]] table vary together, as one factor.
    std::printf("axes:");
    for (const auto& group : sweep.axis_groups) {
      std::string entry;
      for (const auto& k : group) entry += (entry.empty() ? "" : " + ") + k;
      std::printf(" %s%s", group.size() > 1 ? ("(" + entry + ", zipped)").c_str() : entry.c_str(),
                  &group == &sweep.axis_groups.back() ? "" : ",");
    }
    std::printf("%s\n", sweep.axis_groups.empty() ? " (none)" : "");
    for (const auto& s : shapes) std::printf("  shape %s\n", s.c_str());
    std::printf("estimated training memory: %s\n", format_bytes(bytes).c_str());
    return 0;
  };
}

}  // namespace dalesim::cli
