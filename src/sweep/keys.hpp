// Internal: applying and checking single config keys on a ReplicaConfig (the machinery behind
// config_keys()); used by the sweep parser, not part of the public interface.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "dalesim/config.hpp"

namespace dalesim::keys {

// How the user wrote a key and where, so errors can point back at the file.
struct KeySource {
  std::string written;  // "sweep.grid.model.n_units", "model.n_units", ...
  std::string where;    // "demo.toml:7", or empty when unknown
};

// Keys given in the base config or as sweep axes, by canonical key ("model.n_units", "task.T").
using SourceMap = std::map<std::string, KeySource>;

// True for a key of config_keys() ("name", "seed", "model.n_units", ...).
bool is_config_key(const std::string& key);
// True for `task.<param>` (any name other than task.name / task.batch); checked against the
// replica's task only once the task is known.
bool is_task_param(const std::string& key);
// Keys that vary per replica, i.e. may be sweep axes (everything but `name`).
bool is_sweepable(const std::string& key);

// The closest known key (config keys and every task's `task.<param>`) by edit distance, or ""
// when nothing is close enough to be a plausible typo.
std::string closest_key(const std::string& key);

// Checks the type and range of a value for a config key or task parameter and returns it
// normalised (an int given for a float key becomes a double). Throws ConfigError naming
// `src.written`, the value and what is allowed. Cross-key rules are checked by resolve_replica.
Value check_value(const std::string& key, const Value& v, const KeySource& src);

// Stores an already checked value in `cfg` (task params go to cfg.task.params; `name` is ignored
// because it belongs to the sweep, not to a replica).
void set_value(ReplicaConfig& cfg, const std::string& key, const Value& v);

// The effective value of a config key in `cfg` (derived seeds as they are stored).
Value get_value(const ReplicaConfig& cfg, const std::string& key);

// Finishes one replica whose keys are all set: derives seeds not in `given`, checks the cross-key
// rules (e_fraction vs arch, dt vs tau), checks the task parameters against the replica's task,
// fills in the task's defaults and builds the task once per distinct task config (`checked`
// remembers those already built). Throws ConfigError.
void resolve_replica(ReplicaConfig& cfg, const SourceMap& given, std::set<std::string>& checked);

}  // namespace dalesim::keys
