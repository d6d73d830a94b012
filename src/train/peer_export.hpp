// The input of the PyTorch/JAX peers in bench/peers/: one bench configuration's initial weights,
// structure, hyperparameters, the batches of K iterations and the engine's losses on them.
#pragma once

#include <iosfwd>
#include <string>

#include "train/bench.hpp"

namespace dalesim {

// Writes PATH (HDF5). `backend` ("cpu", "cuda", "auto") computes the reference losses.
void export_peer_input(const BenchConfig& config, int iterations, const std::string& backend, int threads,
                       const std::string& path, std::ostream& log);

}  // namespace dalesim
