// Checks made before a run allocates or writes anything: the estimated training memory fits the
// backend's memory, and the output path can be created. Both throw ConfigError (exit code 2).
#pragma once

#include <string>

#include "dalesim/config.hpp"

namespace dalesim {

// "1.5 GiB": bytes in the largest binary unit that keeps the number >= 1.
std::string format_bytes(double bytes);

// Memory a backend may use, and where that figure comes from (for messages).
struct MemoryBudget {
  double bytes = 0;
  std::string source;  // e.g. "host memory available (MemAvailable, /proc/meminfo)"
};

// The memory training may use on `backend` ("cpu", "cuda" or "auto", as given to `run`): the
// CUDA device's total memory when the run will use the device, else the host memory available
// now (the smaller of /proc/meminfo's MemAvailable and the cgroup's memory.max - memory.current).
// DALESIM_MEMORY_LIMIT_BYTES (a positive integer) replaces either figure, for tests and for sharing
// a machine; an unusable value is a ConfigError naming the variable.
MemoryBudget available_memory(const std::string& backend);

// Sum of estimate_training_bytes over the sweep's replicas (tasks built once per distinct task
// config). `largest` receives the index of the replica that needs the most, `largest_bytes` its need.
double estimate_sweep_bytes(const Sweep& sweep, std::size_t* largest = nullptr, double* largest_bytes = nullptr);

// Refuses a sweep whose estimated training memory exceeds available_memory(backend), naming the
// estimate, the budget and what to change (--shard K/N for many replicas; task.batch, the task's
// length or model.n_units when one replica alone is too large).
void check_memory_fits(const Sweep& sweep, const std::string& backend);

// Refuses an output path that cannot be created: an existing file without `force`, an existing
// directory, a parent that is missing or not a directory, a directory where a file cannot be
// created (probed by creating and removing a file there, so it holds for root, read-only mounts
// and /proc too). Leaves nothing behind and never touches an existing output file.
void check_output_path(const std::string& path, bool force);

}  // namespace dalesim
