// The file `dalesim fixedpoints` writes (docs/analysis.md).
#pragma once

#include <string>
#include <vector>

#include "dynamics/fixed_points.hpp"
#include "dynamics/simulate.hpp"
#include "dynamics/trained_replica.hpp"

namespace dalesim {

// Writes the fixed points of `rep` under the constant input `x`, with the first `n_traj`
// trajectories of `sim` (the ones the initial states were drawn from). Nothing is left at `path`
// when writing fails.
void write_fixed_points(const std::string& path, const TrainedReplica& rep, const std::vector<double>& x,
                        const FixedPointSearch& res, const Simulation& sim, int n_traj,
                        const FixedPointOptions& opt, const std::string& command_line, double dt);

}  // namespace dalesim
