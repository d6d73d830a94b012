// The host-side state of one replica: its parameters carved from one flat vector by one size table,
// plus the fixed structure (connection masks, unit signs, leak rates). The currency between the
// initialiser, the backends, the diagnostics and the writer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dalesim/config.hpp"
#include "dalesim/history.hpp"

namespace dalesim {

// Parameter tensors, in storage order. Absent tensors (W_dale for `free`, ...) have size 0. For a
// DANN Dale part, W_dale holds W_ee and W_ei [N, n_i], W_ie [n_i, N] the interneuron factors; for
// arch dann, W_in holds U_ee and U_ei [N, n_i_in], U_ie [n_i_in, I] the input factors.
// With split biases (rule eg), b and b_out hold the positive parts and b_neg, b_out_neg the
// negative parts: the effective biases are their sums.
enum class Tensor : int { W_free = 0, W_dale, W_in, b, W_out, b_out, a, W_ei, W_ie, U_ei, U_ie, b_neg, b_out_neg, count };
constexpr int kTensorCount = static_cast<int>(Tensor::count);
const char* to_string(Tensor t);

struct TensorSlot {
  int rows = 0, cols = 0;
  std::size_t offset = 0;
  std::size_t size() const { return static_cast<std::size_t>(rows) * cols; }
};

// The one size table: where each tensor of a replica lives in its flat parameter vector.
struct ParamLayout {
  Arch arch = Arch::free;
  bool dann = false;  // the Dale part is a recurrent DANN
  int N = 0, I = 0, O = 0;
  std::array<TensorSlot, kTensorCount> slots{};
  std::size_t size = 0;  // total number of scalars

  static ParamLayout make(Arch arch, int N, int I, int O);
  static ParamLayout make(const ModelConfig& m, int I, int O, bool split_bias = false);
  const TensorSlot& operator[](Tensor t) const { return slots[static_cast<int>(t)]; }
  bool has(Tensor t) const { return (*this)[t].size() > 0; }
};

struct ReplicaModel {
  const ReplicaConfig* cfg = nullptr;  // hyperparameters (lr, tau, ...); owned by the Sweep
  ParamLayout layout;
  std::vector<double> params;    // [layout.size]
  std::vector<float> mask_rec;   // [N, N] fixed 0/1 connectivity (E/I connection probabilities, autapses)
  std::vector<float> mask_in;    // [N, I] 0 for rows of units that get no input
  std::vector<float> mask_out;   // [O, N] 0 for columns of units not read out
  std::vector<float> col_sign;   // [N] +1 excitatory, -1 inhibitory (presynaptic sign)
  std::vector<float> leak;       // [N] dt / tau of each unit
  std::vector<float> noise_std;  // [N] per-step std of the recurrent noise inside the drive
  // Optimiser state, so that training continues exactly where it stopped: written by
  // Backend::download, taken by Backend::upload. Empty moments mean zeros (a fresh start).
  std::vector<double> moment1, moment2;  // [layout.size]: momentum / Adam's first moment; Adam's second
  std::int64_t adam_steps = 0;           // Adam updates so far (its bias correction)
  std::int64_t diverged_step = -1;       // iteration at which the replica diverged and froze, -1 if live

  double* tensor(Tensor t) { return params.data() + layout[t].offset; }
  const double* tensor(Tensor t) const { return params.data() + layout[t].offset; }
  // alpha of each presynaptic neuron j (column j of W_rec): alpha_of(a_j) per neuron, or the
  // network's one alpha repeated, for `mix`; 1 for `colei` and `dann`; 0 for `free`. [N]
  std::vector<double> alpha_units() const;
  // The mean of alpha_units (the one alpha of a per-network `mix`).
  double alpha() const;
  // Effective recurrent matrix W_rec[:, j] = alpha_j D[:, j] + (1 - alpha_j) W_free[:, j] * mask, [N, N],
  // with the Dale part D = dale_weight(W_dale) * mask (colei) or W_ee * mask - W_ei W_ie (dann).
  std::vector<double> effective_w_rec() const;
  // The Dale part D alone, [N, N] (zeros without one).
  std::vector<double> effective_dale() const;
  // Effective input weights: W_in * mask_in, or U_ee * mask_in - U_ei U_ie for arch dann, [N, I].
  std::vector<double> effective_w_in() const;
  // Effective biases b (+ b_neg) [N] and b_out (+ b_out_neg) [O].
  std::vector<double> effective_bias(bool readout) const;
};

// Draws the initial parameters and structure of a replica from its init seed (SPEC §4).
ReplicaModel init_replica(const ReplicaConfig& cfg, int n_inputs, int n_outputs);

// Float32 copy of a replica's parameters for the writer (effective W_rec included).
ReplicaWeights to_weights(const ReplicaModel& m);

// Bytes a replica needs while training (parameters, gradients, optimiser state, BPTT activations).
std::size_t estimate_training_bytes(const ReplicaConfig& cfg, int n_inputs, int n_outputs, int n_steps);

// Applies the constraints that hold after every update: Dale signs of W_dale (projection, train.dale
// clamp), sign of W_in when constrained, alpha in [0, 1] (alpha_form clamp), zeros outside the
// connection masks. Shared by every backend's reference.
void project_constraints(ReplicaModel& m);

// Pruning (train.prune_*): removes from the recurrent connection mask the `fraction` of present
// connections with the smallest |effective weight| (ties: the lower flat index first), and zeroes
// their W_dale / W_free entries and optimiser state. Returns the number removed.
std::size_t prune_recurrent(ReplicaModel& m, double fraction);
// Fraction of the N x N recurrent connections present in the mask.
double recurrent_density(const ReplicaModel& m);

}  // namespace dalesim
