// Sharding a sweep across processes (Slurm array tasks, one process per GPU): a deterministic,
// cost-balanced subset of the replicas, and the sweep's identity that ties shard files together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dalesim/config.hpp"

namespace dalesim {

struct ShardSpec {
  int index = 0;  // K, 0 <= K < count
  int count = 1;  // N
};

// Parses "K/N" with 0 <= K < N. Throws ConfigError naming `key` (e.g. "--shard"), the value and
// what is allowed.
ShardSpec parse_shard(const std::string& text, const std::string& key = "--shard");

// The shard of a Slurm array task: K = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN (MIN taken as 0
// when unset), N = SLURM_ARRAY_TASK_COUNT. nullopt when neither ID nor COUNT is set; ConfigError
// when they are malformed or K falls outside 0..N-1 (an array with a step, e.g. --array=0-9:2).
std::optional<ShardSpec> shard_from_slurm_environment();

// Estimated training cost of one replica in FLOPs of the recurrent and input/readout products:
// n_steps * batch * T * (N^2 + N (I + O)).
double estimate_replica_flops(const ReplicaConfig& c, int n_inputs, int n_outputs, int trial_steps);

// The estimated cost of every replica of the sweep, in sweep order (tasks built once per setting).
std::vector<double> estimate_sweep_costs(const Sweep& sweep);

// Greedy longest-processing-time assignment: replicas in decreasing cost (ties by lower position)
// each go to the shard with the least cost so far (ties by lower shard). Returns the shard of each
// replica. Deterministic: depends only on the costs and n_shards.
std::vector<int> assign_shards(const std::vector<double>& cost, int n_shards);

// The replicas of shard `shard`, in global id order, keeping their ids; every other field of the
// sweep is kept. Throws ConfigError for more shards than replicas.
Sweep select_shard(const Sweep& sweep, ShardSpec shard, double* cost_share = nullptr);

// FNV-1a (64 bit) of the sweep text as 16 hex digits: files of the same sweep carry the same hash.
std::string sweep_hash(const std::string& sweep_text);

// FNV-1a (64 bit), streaming: continue from `h` over n more bytes (the same function as
// sweep_hash). fnv1a64_hex writes the 16 hex digits sweep_hash returns.
constexpr std::uint64_t kFnv1a64Offset = 14695981039346656037ull;
std::uint64_t fnv1a64(const void* data, std::size_t n, std::uint64_t h = kFnv1a64Offset);
std::string fnv1a64_hex(std::uint64_t h);

}  // namespace dalesim
