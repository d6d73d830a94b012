// Shard assignment: estimated cost per replica, greedy longest-processing-time balancing, and the
// Slurm array environment as the default shard.
#include "sweep/shard.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <numeric>

#include "dalesim/task.hpp"

namespace dalesim {

namespace {

const char* const kShardAllowed = "K/N with integers 0 <= K < N (shard K of N, counted from 0), e.g. 0/4";

// A whole non-negative decimal integer (no sign, no spaces, no trailing text), or -1.
long long parse_count(const std::string& s) {
  if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return -1;
  return std::stoll(s);
}

}  // namespace

ShardSpec parse_shard(const std::string& text, const std::string& key) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) throw ConfigError(key, text, kShardAllowed, "write shard 2 of 8 as 2/8");
  const long long k = parse_count(text.substr(0, slash)), n = parse_count(text.substr(slash + 1));
  if (k < 0 || n < 0) throw ConfigError(key, text, kShardAllowed);
  if (n < 1) throw ConfigError(key, text, kShardAllowed, "N is the number of shards: at least 1");
  if (k >= n)
    throw ConfigError(key, text, kShardAllowed,
                      "shards are counted from 0: the last of " + std::to_string(n) + " is " + std::to_string(n - 1) +
                          "/" + std::to_string(n));
  return ShardSpec{static_cast<int>(k), static_cast<int>(n)};
}

std::optional<ShardSpec> shard_from_slurm_environment() {
  const char* id = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* count = std::getenv("SLURM_ARRAY_TASK_COUNT");
  const char* min = std::getenv("SLURM_ARRAY_TASK_MIN");
  if (!id && !count) return std::nullopt;
  if (!id || !count)
    throw ConfigError(id ? "SLURM_ARRAY_TASK_COUNT" : "SLURM_ARRAY_TASK_ID", "(unset)",
                      "both SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, or neither",
                      "pass --shard K/N to choose the shard explicitly");
  const long long i = parse_count(id), n = parse_count(count), m = min ? parse_count(min) : 0;
  if (i < 0) throw ConfigError("SLURM_ARRAY_TASK_ID", id, "a non-negative integer");
  if (n < 1) throw ConfigError("SLURM_ARRAY_TASK_COUNT", count, "a positive integer");
  if (m < 0) throw ConfigError("SLURM_ARRAY_TASK_MIN", min, "a non-negative integer");
  // A stepped array (--array=0-15:4) numbers its tasks MIN, MIN + STEP, ...: task ids would not
  // name shards 0..COUNT-1.
  if (const char* step = std::getenv("SLURM_ARRAY_TASK_STEP"); step && parse_count(step) != 1)
    throw ConfigError("SLURM_ARRAY_TASK_STEP", step, "1 (a contiguous array)",
                      "submit a contiguous array without a step (e.g. --array=0-" + std::to_string(n - 1) +
                          ") or pass --shard K/N");
  const long long k = i - m;
  if (k < 0 || k >= n)
    throw ConfigError("SLURM_ARRAY_TASK_ID", id,
                      "SLURM_ARRAY_TASK_MIN (" + std::to_string(m) + ") .. MIN + SLURM_ARRAY_TASK_COUNT - 1 (" +
                          std::to_string(m + n - 1) + ")",
                      "submit a contiguous array without a step (e.g. --array=0-" + std::to_string(n - 1) +
                          ") or pass --shard K/N");
  return ShardSpec{static_cast<int>(k), static_cast<int>(n)};
}

double estimate_replica_flops(const ReplicaConfig& c, int n_inputs, int n_outputs, int trial_steps) {
  const double N = c.model.n_units;
  return static_cast<double>(c.train.n_steps) * c.task.batch * trial_steps * (N * N + N * (n_inputs + n_outputs));
}

std::vector<double> estimate_sweep_costs(const Sweep& sweep) {
  struct Shape { int I, O, T; };
  std::map<std::string, Shape> shapes;  // task settings -> its shape: a task is built once per setting
  std::vector<double> cost;
  cost.reserve(sweep.replicas.size());
  for (const ReplicaConfig& c : sweep.replicas) {
    std::string key = c.task.name + "|" + format_value(c.model.dt);
    for (const auto& [k, v] : c.task.params) key += "|" + k + "=" + format_value(v);
    auto it = shapes.find(key);
    if (it == shapes.end()) {
      const auto task = make_task(c.task, c.model.dt);
      it = shapes.emplace(key, Shape{task->n_inputs(), task->n_outputs(), task->n_steps()}).first;
    }
    cost.push_back(estimate_replica_flops(c, it->second.I, it->second.O, it->second.T));
  }
  return cost;
}

std::vector<int> assign_shards(const std::vector<double>& cost, int n_shards) {
  std::vector<std::size_t> order(cost.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return cost[a] > cost[b]; });
  std::vector<double> load(static_cast<std::size_t>(std::max(n_shards, 1)), 0.0);
  std::vector<int> shard(cost.size(), 0);
  for (std::size_t r : order) {
    const auto least = std::min_element(load.begin(), load.end());  // the first of equal loads
    shard[r] = static_cast<int>(least - load.begin());
    *least += cost[r];
  }
  return shard;
}

Sweep select_shard(const Sweep& sweep, ShardSpec spec, double* cost_share) {
  if (static_cast<std::size_t>(spec.count) > sweep.replicas.size())
    throw ConfigError("--shard", std::to_string(spec.index) + "/" + std::to_string(spec.count),
                      "at most as many shards as replicas (" + std::to_string(sweep.replicas.size()) + ")",
                      "some of the " + std::to_string(spec.count) + " shards would be empty");
  const std::vector<double> cost = estimate_sweep_costs(sweep);
  const std::vector<int> shard = assign_shards(cost, spec.count);
  Sweep part = sweep;
  part.replicas.clear();
  double mine = 0, total = 0;
  for (std::size_t r = 0; r < sweep.replicas.size(); ++r) {
    total += cost[r];
    if (shard[r] != spec.index) continue;
    part.replicas.push_back(sweep.replicas[r]);
    mine += cost[r];
  }
  if (part.replicas.empty())
    throw ConfigError("--shard", std::to_string(spec.index) + "/" + std::to_string(spec.count),
                      "at most as many shards as replicas (" + std::to_string(sweep.replicas.size()) + ")",
                      "shard " + std::to_string(spec.index) + " would be empty");
  std::sort(part.replicas.begin(), part.replicas.end(),
            [](const ReplicaConfig& a, const ReplicaConfig& b) { return a.id < b.id; });
  if (cost_share) *cost_share = total > 0 ? mine / total : 0;
  return part;
}

std::uint64_t fnv1a64(const void* data, std::size_t n, std::uint64_t h) {
  const auto* b = static_cast<const unsigned char*>(data);
  for (std::size_t k = 0; k < n; ++k) h = (h ^ b[k]) * 1099511628211ull;
  return h;
}

std::string fnv1a64_hex(std::uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string sweep_hash(const std::string& sweep_text) { return fnv1a64_hex(fnv1a64(sweep_text.data(), sweep_text.size())); }

}  // namespace dalesim
