// Sweep files: TOML in, a validated list of per-replica configs out.
#pragma once

#include <string>
#include <vector>

#include "dalesim/config.hpp"

namespace dalesim {

// One documented configuration key (`model.n_units`, `train.lr`, ...), for validation and docs.
struct KeySpec {
  std::string key;
  std::string type;     // "int", "float", "string", "bool", "float list"
  std::string default_text;
  std::string allowed;  // human-readable range or choices
  std::string doc;
};

// Every top-level config key the engine accepts (task-specific keys come from task_registry()).
const std::vector<KeySpec>& config_keys();

// Parses and validates a sweep given as TOML text. `origin` names it in error messages.
// Throws ConfigError (bad key, type, value, empty grid...) before anything runs.
Sweep parse_sweep(const std::string& text, const std::string& origin);

// What the sweep's tasks read from disk, one line per distinct file in path order:
// "PATH size=BYTES fnv1a64=HEX" (task.path of the file task, the IDX files under seqmnist's
// task.dir). A run stores it (root attribute data_files) and --resume refuses a file changed since.
std::string data_files_identity(const Sweep& sweep);

// The largest sweep file read (1 MiB): the largest example is a few KiB.
constexpr long long kMaxSweepFileBytes = 1 << 20;

// Reads the file and calls parse_sweep. A missing or unreadable file, one that is not a regular
// file (a FIFO, a device, a directory) or one over kMaxSweepFileBytes is a ConfigError too.
Sweep load_sweep_file(const std::string& path);

}  // namespace dalesim
