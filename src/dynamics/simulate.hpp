// A trained replica run forward on a batch of trials by the CPU trainer's own forward pass
// (cpu::ReplicaTrainer), with every unit's membrane state and rate kept, and the loss and
// accuracy split by trial.
#pragma once

#include <cstdint>
#include <vector>

#include "dalesim/task.hpp"
#include "dynamics/trained_replica.hpp"

namespace dalesim {

struct Simulation {
  int B = 0, T = 0, N = 0, O = 0;
  std::vector<float> v, r;  // [B, T, N] membrane states and rates phi(v), trial-major
  std::vector<float> z;     // [B, T, O] outputs
  // Per trial: the loss over its scored steps (mse: sum mask (z - y)^2 / sum mask; cross-entropy:
  // mean over its scored steps), what it is averaged over (sum mask / scored steps), its accuracy
  // (fraction of its accuracy points correct) and how many points that is. NaN without any.
  std::vector<double> loss, loss_weight, accuracy, accuracy_points;  // [B]
  double batch_loss = 0, batch_accuracy = 0;  // as the trainer computes them on the whole batch
};

// Runs `replica` on `batch` (B trials of T steps; its input and output widths must be the
// replica's: InputError otherwise). Without `noise` the recurrent noise is off; with it, the noise
// is the one the trainer draws at iteration `noise_iteration`.
Simulation simulate_replica(const TrainedReplica& replica, const Batch& batch, bool noise,
                            std::int64_t noise_iteration);

}  // namespace dalesim
