// The file `dalesim simulate` writes: the trials once, then one group per replica with every
// unit's membrane state and rate, the outputs and the per-trial loss and accuracy.
#pragma once

#include <string>
#include <vector>

#include "dynamics/simulate.hpp"
#include "dynamics/trained_replica.hpp"
#include "dynamics/trials_file.hpp"

namespace dalesim {

struct SimulationRecord {
  const TrainedReplica* replica = nullptr;
  Simulation sim;
};

struct SimulationInfo {
  std::string run_file, trials_origin, command_line;
  bool noise = false;
  double dt = 0;
};

// Writes SIM.h5 (docs/analysis.md): root axes and trial arrays, /replica_<id>/{v, r, z, loss,
// loss_weight, accuracy, accuracy_points}. An existing file is replaced only with `overwrite`;
// nothing is left at `path` when writing fails.
void write_simulation_file(const std::string& path, const TrialSet& trials, const std::vector<SimulationRecord>& records,
                           const SimulationInfo& info, bool overwrite);

// Refuses (InputError) an output path that exists (without `overwrite`) or whose directory does
// not: checked before any work is done.
void check_new_output(const std::string& path, bool overwrite);

}  // namespace dalesim
