// Trials files: a batch of trials in the layout the `file` task reads (inputs [trial, T, I],
// targets [trial, T, O] or integer classes [trial, T], mask), plus what the file task ignores and
// simulate uses: the accuracy definition and per-trial condition labels (Batch::condition). docs/analysis.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dalesim/task.hpp"

namespace dalesim {

struct TrialSet {
  Batch batch;                            // time-major, as the backends take it (batch.condition: [B])
  std::vector<std::string> condition_names;  // what batch.condition indexes (the task's condition_names())
  double dt = 0;                       // ms per step (0: unknown)
  std::string origin;                  // where the trials came from, for the record
};

// Facts written as root attributes of a trials file.
struct TrialsInfo {
  std::string task, task_params, command_line;  // task_params: TOML lines "key = value"
  double dt = 0;
  std::int64_t seed = 0, iteration = 0;
  std::uint64_t data_seed = 0;
};

// Writes `trials` to a new HDF5 file (an existing one is replaced only with `overwrite`, else
// InputError). Nothing is left at `path` when writing fails.
void write_trials_file(const std::string& path, const TrialSet& trials, const TrialsInfo& info, bool overwrite);

// Reads a trials file (ours, or any file in the `file` task's default layout: inputs, targets,
// optional mask). Throws InputError naming the file and what is wrong.
TrialSet read_trials_file(const std::string& path);

// Copies trials [first, first + n) of `in` into `out` (same layout, B = n).
void slice_batch(const Batch& in, int first, int n, Batch& out);

}  // namespace dalesim
