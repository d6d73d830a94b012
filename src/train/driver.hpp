// The training driver: owns cadence (when to log, checkpoint, stop) and moves host data between the
// tasks, the backend, the diagnostics and the writer.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "dalesim/config.hpp"
#include "dalesim/history.hpp"

namespace dalesim {

struct RunOptions {
  std::string output;          // HDF5 path
  bool overwrite = false;      // --force
  bool resume = false;         // continue the unfinished run in `output` (--resume)
  std::string backend = "auto";
  int n_threads = 0;
  std::string command_line;
  bool progress = false;       // live progress line on stderr
  bool verbose = false;        // also the CUDA device query's error and the trial streams (-v)
  // When the sweep is one shard of a larger one (see sweep/shard.hpp): recorded in the file.
  int shard_index = 0, shard_count = 0;  // shard_count 0: a whole run
  int sweep_n_replicas = 0;              // replicas of the whole sweep
  std::string data_files;                // data_files_identity(sweep), recorded in a new file
};

struct RunResult {
  std::vector<StepMetrics> final_metrics;   // last logged row, per replica
  std::vector<ReplicaStatus> status;
  std::vector<std::int64_t> diverged_step;
  double seconds = 0;
  std::string backend_line;  // which backend was chosen and why
  std::string backend_detail;  // the device query's error when auto chose the CPU
  // A run stopped by SIGINT/SIGTERM: the signal and the iteration it can be resumed from.
  int interrupted_by = 0;
  std::int64_t stopped_at = 0;
};

// Checks the sweep-wide settings that must agree across replicas (step counts, cadences) and the
// tasks' shapes. Throws ConfigError. Called before any file is created.
void check_run_settings(const Sweep& sweep);

// Trains every replica of the sweep and writes the output file. Throws ConfigError for bad input
// (before anything is written) and std::runtime_error for failures while running.
RunResult run_sweep(const Sweep& sweep, const RunOptions& options, std::ostream& log);

// A per-condition table (replicas grouped by every swept axis except the seed): count, final loss
// mean +- sd, final alpha mean +- sd, diverged count.
void print_condition_summary(const Sweep& sweep, const RunResult& result, std::ostream& out);

}  // namespace dalesim
