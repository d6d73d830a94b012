// Per-replica configuration: the resolved settings of one replica of a sweep, and the sweep itself.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace dalesim {

// Recurrent parameterisation (SPEC §2): `dann` is the recurrent Dale's ANN (E units carry the
// state; feed-forward inhibitory interneuron pools for recurrence and input).
enum class Arch { free, colei, mix, dann };
// The Dale part of `mix`: column E/I or recurrent DANN.
enum class DalePart { colei, dann };
// Learning rule of the weights (alpha and biases always by gradient descent).
enum class Rule { gd, eg, gd_sign, md };
// Nonlinearity phi.
enum class Phi { relu, tanh, softplus, sigmoid };
// Optimiser for gradient-descent rules.
enum class Optim { sgd, adam };
// How the signs of W_dale are kept during training (SPEC §2): projection after every update
// (clamp), or a reparameterisation trained through it: effective weight = sign x |raw| (abs) or
// sign x relu(raw) (relu), raw unconstrained.
enum class DaleMode { clamp, abs, relu };
// Alpha of `mix`: one per network, or one per presynaptic neuron (column j of W mixes with alpha_j).
enum class AlphaPer { network, neuron };
// How alpha is parameterised: alpha = sigmoid(a), or alpha = a projected onto [0, 1].
enum class AlphaForm { sigmoid, clamp };
// Initialisation of W_free (SPEC §4, issue "the science"): Gaussian N(0, g^2/N), g x orthogonal,
// uniform U(-g/sqrt(N), g/sqrt(N)), log-normal magnitudes, or a Gaussian truncated to a low rank.
enum class FreeInit { gaussian, orthogonal, uniform, lognormal, lowrank };
// Signs of log-normal weights: by presynaptic type (Dale) or Rademacher.
enum class LognormalSigns { dale, random };
// Spectrum transplant: keep the singular vectors of W_free's init, take the singular values of an
// independent draw of another family.
enum class SpectrumFrom { none, gaussian, orthogonal, uniform, lognormal, lowrank, colei };
enum class Population { all, exc };     // for readout_from and input_to
enum class InputSign { free, positive };  // sign constraint on W_in
enum class Precision { f32, f64 };
// Which CUDA training kernel a replica asks for (train.kernel, docs/cuda.md): the dispatcher's
// choice from the bucket's shape (auto), the per-step products and kernels (v1), the persistent
// recurrent loops with W_rec in shared memory (v2), or thread-block clusters (v3, not built).
enum class CudaKernel { auto_select, v1, v2, v3 };

// A value of a config key: what TOML can hold and the engine uses.
using Value = std::variant<bool, std::int64_t, double, std::string, std::vector<double>>;

// Renders a value the way a user would write it in the sweep file ("0.5", "\"mix\"", "[1, 2]").
std::string format_value(const Value& v);

// An error in what the user gave us (a file, an argument): exit code 2, never a crash.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad value in the configuration (sweep file, task parameters, CLI values), naming the key, the
// value and what is allowed. Exit code 2.
class ConfigError : public InputError {
 public:
  ConfigError(std::string key, std::string value, std::string allowed, std::string hint = "");
  const std::string& key() const { return key_; }
  const std::string& value() const { return value_; }
  const std::string& allowed() const { return allowed_; }
  const std::string& hint() const { return hint_; }

 private:
  std::string key_, value_, allowed_, hint_;
};

struct ModelConfig {
  Arch arch = Arch::mix;
  int n_units = 64;
  double e_fraction = 0.8;  // n_exc = round(e_fraction * n_units); the first n_exc units are E
  double ei_ratio = 0;      // > 0: E:I ratio r instead, n_inh = ceil(n_units / (r + 1)) (published split)
  double tau_e = 100.0;     // ms
  double tau_i = 100.0;     // ms
  double dt = 20.0;         // ms; also converts task periods to steps
  Phi phi = Phi::relu;
  double sigma_rec = 0.0;  // recurrent noise; per-step std sigma_rec * sqrt(2 tau / dt) inside the drive
  // Connection probabilities p_XY: from presynaptic type Y onto postsynaptic type X (rows X, cols Y).
  double p_ee = 1.0, p_ei = 1.0, p_ie = 1.0, p_ii = 1.0;
  bool autapses = false;
  Population readout_from = Population::all;
  Population input_to = Population::all;
  InputSign input_sign = InputSign::free;
  FreeInit free_init = FreeInit::gaussian;
  double g = 1.0;           // gain of W_free: N(0, g^2 / N), g * orthogonal, U(-g/sqrt(N), g/sqrt(N)), ...
  int rank = 1;             // free_init = lowrank: rank of the truncated Gaussian
  double lognormal_ratio = 1.5;  // free_init = lognormal: mean/std ratio of the magnitudes
  LognormalSigns lognormal_signs = LognormalSigns::dale;
  SpectrumFrom spectrum_from = SpectrumFrom::none;
  double rho = 1.5;         // spectral radius of W_dale at init
  double g_in = 1.0;        // W_in ~ N(0, g_in^2 / I)
  double alpha_init = 0.5;  // mix only; sigmoid form: 0 < alpha_init < 1; clamp form: 0 <= alpha_init <= 1
  AlphaPer alpha_per = AlphaPer::network;  // mix only
  AlphaForm alpha_form = AlphaForm::sigmoid;  // mix only
  DalePart dale_part = DalePart::colei;  // mix only
  int dann_n_i = 0;     // recurrent interneurons of the DANN part; 0 = default_interneurons()
  int dann_n_i_in = 0;  // input interneurons of arch dann; 0 = default_interneurons()

  // True when the Dale part is a recurrent DANN (arch dann, or mix with dale_part dann): then every
  // state unit is excitatory and inhibition comes from the interneuron pools.
  bool dann_part() const { return arch == Arch::dann || (arch == Arch::mix && dale_part == DalePart::dann); }
  // Interneurons: explicit, else E:I = ei_ratio : 1 against the n_units E units, else n_units / 10.
  int rec_interneurons() const { return dann_n_i > 0 ? dann_n_i : default_interneurons(); }
  int in_interneurons() const { return dann_n_i_in > 0 ? dann_n_i_in : default_interneurons(); }
  int default_interneurons() const {
    if (ei_ratio > 0) return std::max(1, static_cast<int>(std::ceil(n_units / ei_ratio)));
    return std::max(1, n_units / 10);
  }
  int n_exc() const;
  int n_inh() const { return n_units - n_exc(); }
};

struct TaskConfig {
  std::string name = "adding";
  int batch = 64;
  // Task-specific parameters (`task.<key>` in the sweep file), validated by the task's own spec.
  std::map<std::string, Value> params;
};

struct TrainConfig {
  Optim optimizer = Optim::adam;
  double lr = 1e-3;
  double lr_alpha = -1.0;  // < 0: same as lr
  double momentum = 0.9;   // sgd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam
  double clip = 1.0;       // global gradient-norm clip per replica; 0 = off
  int n_steps = 500;
  int log_every = 10;
  int checkpoint_every = 100;
  DaleMode dale = DaleMode::clamp;
  Precision precision = Precision::f32;
  CudaKernel kernel = CudaKernel::auto_select;  // CUDA backend only; the CPU backend ignores it
  Rule rule = Rule::gd;      // gd: the optimiser; eg, gd_sign, md: see docs/model.md
  double md_p = 3.0;         // rule md: the p of the p-norm potential (p = 2 is gradient descent)
  double weight_decay = 0;   // gd/gd_sign/md: + lambda w; eg: + lambda sign(w)
  bool eg_split_bias = true; // rule eg: biases b = b+ + b- (b+ >= 0, b- <= 0), each trained by EG
  // Costs added to the task loss (PsychRNN's names where they exist): coefficient x mean over the
  // entries of |w| (l1) or w^2 (l2) of the effective input, recurrent and readout matrices; of the
  // free part (1 - alpha_j) W_free * mask as it enters W_rec; and of the rates phi(v) over
  // time, trials and units (l2_firing_rate).
  double l1_in = 0, l2_in = 0, l1_rec = 0, l2_rec = 0, l1_out = 0, l2_out = 0, l1_free = 0, l2_free = 0;
  double l2_firing_rate = 0;
  // Pruning: at step prune_at (and every prune_every steps after, when > 0) the prune_fraction of
  // the present recurrent connections with the smallest |effective weight| are removed for good.
  std::int64_t prune_at = -1;  // -1: never
  std::int64_t prune_every = 0;
  double prune_fraction = 0.1;

  bool prunes() const { return prune_at >= 0; }
  bool prunes_at(std::int64_t step) const {
    if (prune_at < 0 || step < prune_at) return false;
    return step == prune_at || (prune_every > 0 && (step - prune_at) % prune_every == 0);
  }

  double alpha_lr() const { return lr_alpha < 0 ? lr : lr_alpha; }
};

struct ReplicaConfig {
  int id = 0;
  ModelConfig model;
  TaskConfig task;
  TrainConfig train;
  std::int64_t seed = 0;
  // Separate streams for initial weights, task batches and recurrent noise. Derived from `seed`
  // unless set explicitly.
  std::uint64_t init_seed = 0, data_seed = 0, noise_seed = 0;
  // The swept keys of this replica and their values, in axis order.
  std::vector<std::pair<std::string, Value>> axes;
};

struct Sweep {
  std::string name;
  std::string source_path;  // may be empty when parsed from text
  std::string source_text;  // the sweep file verbatim
  std::vector<std::string> axis_keys;  // swept keys in declared order ("seed" included when swept)
  std::vector<std::vector<std::string>> axis_groups;  // axis_keys by axis: a [[sweep.zip]] group is one
  std::vector<ReplicaConfig> replicas;
  std::string resolved_text;  // the base config after defaults, as TOML, for the output file
};

// Names of enum values, as written in sweep files and output files.
const char* to_string(Arch a);
const char* to_string(DalePart d);
const char* to_string(Rule r);
const char* to_string(Phi p);
const char* to_string(Optim o);
const char* to_string(DaleMode d);
const char* to_string(AlphaPer a);
const char* to_string(AlphaForm a);
const char* to_string(FreeInit f);
const char* to_string(LognormalSigns s);
const char* to_string(SpectrumFrom s);
const char* to_string(Population p);
const char* to_string(InputSign s);
const char* to_string(Precision p);
const char* to_string(CudaKernel k);

// Derives the init/data/noise seeds from `seed` and a stream name (deterministic hash).
std::uint64_t derive_seed(std::int64_t seed, const char* stream);

}  // namespace dalesim
