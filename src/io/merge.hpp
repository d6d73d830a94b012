// Shard files of one sweep: their identity (read from the root attributes) and `dalesim merge`,
// which joins them into one file with the layout of a single-process run (docs/scale-out.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dalesim {

// The root attributes that identify a run file as (a shard of) a sweep.
struct RunFileIdentity {
  std::string status;      // "running" or "complete"
  std::string sweep_name, sweep_text, sweep_hash;  // the hash is computed from the text for older files
  int n_replicas = 0;      // in this file
  int shard_index = 0, shard_count = 0;  // shard_count 0: not a shard (a whole run or a merge)
  std::string data_files;  // the root attribute data_files; empty in older files and runs without data files
};

// Reads the identity of a dalesim file. Throws InputError for a missing, non-HDF5 or foreign file.
RunFileIdentity read_run_identity(const std::string& path);

struct MergeResult {
  int n_inputs = 0, n_replicas = 0;
  std::size_t n_history_rows = 0, n_checkpoints = 0;
};

// Joins complete shard files of one sweep into `output`: replicas in global id order, history rows
// aligned by step, checkpoint weights regrouped by shape. Throws InputError (nothing written) for
// files of different sweeps, overlapping or missing replicas, incomplete files or misaligned steps.
MergeResult merge_run_files(const std::vector<std::string>& inputs, const std::string& output,
                            const std::string& command_line, bool overwrite);

}  // namespace dalesim
