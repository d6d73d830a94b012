// A trained replica read back from a run's output file, as a model the CPU trainer's code can run:
// what `dalesim simulate` and `dalesim fixedpoints` start from.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dalesim/config.hpp"
#include "dalesim/model.hpp"

namespace dalesim {

struct TrainedReplica {
  int id = 0;                 // global replica id (/replicas/id)
  int position = 0;           // its row in the file's /replicas table
  int checkpoint = 0;         // checkpoint index (row of /checkpoints/step)
  std::int64_t step = 0;      // training updates done at that checkpoint
  int n_checkpoints = 0;
  // true: the exact training state (/resume, the replica's own parameterisation, doubles holding
  // the trainer's values); false: the checkpoint's float32 weights, as an equivalent `free` model
  // (W_free = the effective W_rec, effective input weights and biases).
  bool exact = false;
  double alpha = 0;           // alpha at that checkpoint (NaN for archs without one)
  std::string arch;           // the replica's own arch
  std::unique_ptr<ReplicaConfig> config;  // the replica's config (owned: model.cfg points here)
  ReplicaModel model;
  int n_inputs() const { return model.layout.I; }
  int n_outputs() const { return model.layout.O; }
  int n_units() const { return model.layout.N; }
};

// `checkpoint`: "last" or an index 0..C-1 of /checkpoints/step. Throws InputError naming the
// replica or the checkpoint and what the file holds when either is not there.
TrainedReplica load_trained_replica(const std::string& path, int replica_id, const std::string& checkpoint);

// Parses a --checkpoint value against C checkpoints: "last" -> C - 1, else an index in [0, C).
int resolve_checkpoint(const std::string& value, int n_checkpoints, const std::vector<std::int64_t>& steps);

}  // namespace dalesim
