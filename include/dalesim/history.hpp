// What a run records: per-step metrics, checkpoint diagnostics and weights, and the writer/reader of
// the HDF5 output file. Host-side data only: the writer never sees device memory.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "dalesim/config.hpp"

namespace dalesim {

struct ReplicaModel;  // dalesim/model.hpp

// Metrics of one replica at one logged step (SPEC §6).
struct StepMetrics {
  double loss = 0;
  double accuracy = 0;  // NaN where the task has none
  double alpha = 0;     // NaN for archs without alpha
  double grad_norm = 0;  // before clipping
  double mean_rate = 0;  // mean phi(v) over batch, time, units
  double dale_violation = 0;  // fraction of columns of the effective W_rec with mixed signs
  // How far the effective W_rec is from Dale's law, meaningful for `mix` and `free` too: the
  // fraction of its nonzero weights whose sign is their presynaptic type's, and the fraction of
  // columns whose nonzero weights all have it (a column of zeros obeys).
  double dale_sign_match = 0, dale_columns = 0;
  // What decides alpha early: the gradient of alpha's parameter(s) (summed over units; negative:
  // gradient descent raises alpha), and the norms of the Dale part's (W_dale, W_ei, W_ie) and the
  // free part's gradients, before clipping (NaN where the arch has no such part).
  double alpha_grad = 0, grad_norm_dale = 0, grad_norm_free = 0;
  double alpha_e = 0, alpha_i = 0;  // mean alpha over excitatory / inhibitory columns (NaN: none)
  // The costs in the loss (train.l1_in, ...), each coefficient x its mean; `loss` is the task loss.
  double cost_l1_in = 0, cost_l2_in = 0, cost_l1_rec = 0, cost_l2_rec = 0, cost_l1_out = 0, cost_l2_out = 0;
  double cost_l1_free = 0, cost_l2_free = 0, cost_l2_firing_rate = 0;
};

// The costs of the loss: key of the coefficient, its field, and the metric recording its value.
enum class Cost : int { l1_in, l2_in, l1_rec, l2_rec, l1_out, l2_out, l1_free, l2_free, l2_firing_rate, count };
constexpr int kCostCount = static_cast<int>(Cost::count);
struct CostField {
  Cost cost;
  const char* key;  // "train.l1_in"
  double TrainConfig::*coefficient;
  double StepMetrics::*metric;
};
inline constexpr CostField kCostFields[kCostCount] = {
    {Cost::l1_in, "train.l1_in", &TrainConfig::l1_in, &StepMetrics::cost_l1_in},
    {Cost::l2_in, "train.l2_in", &TrainConfig::l2_in, &StepMetrics::cost_l2_in},
    {Cost::l1_rec, "train.l1_rec", &TrainConfig::l1_rec, &StepMetrics::cost_l1_rec},
    {Cost::l2_rec, "train.l2_rec", &TrainConfig::l2_rec, &StepMetrics::cost_l2_rec},
    {Cost::l1_out, "train.l1_out", &TrainConfig::l1_out, &StepMetrics::cost_l1_out},
    {Cost::l2_out, "train.l2_out", &TrainConfig::l2_out, &StepMetrics::cost_l2_out},
    {Cost::l1_free, "train.l1_free", &TrainConfig::l1_free, &StepMetrics::cost_l1_free},
    {Cost::l2_free, "train.l2_free", &TrainConfig::l2_free, &StepMetrics::cost_l2_free},
    {Cost::l2_firing_rate, "train.l2_firing_rate", &TrainConfig::l2_firing_rate, &StepMetrics::cost_l2_firing_rate},
};
inline bool has_costs(const TrainConfig& tc) {
  for (const CostField& c : kCostFields)
    if (tc.*c.coefficient != 0) return true;
  return false;
}

// The per-step metrics by the names of their /history datasets.
struct StepMetricField {
  const char* name;
  double StepMetrics::*member;
};
inline constexpr StepMetricField kStepMetricFields[] = {
    {"loss", &StepMetrics::loss},           {"accuracy", &StepMetrics::accuracy},
    {"alpha", &StepMetrics::alpha},         {"grad_norm", &StepMetrics::grad_norm},
    {"mean_rate", &StepMetrics::mean_rate}, {"dale_violation", &StepMetrics::dale_violation},
    {"dale_sign_match", &StepMetrics::dale_sign_match}, {"dale_columns", &StepMetrics::dale_columns},
    {"alpha_e", &StepMetrics::alpha_e},     {"alpha_i", &StepMetrics::alpha_i},
    {"alpha_grad", &StepMetrics::alpha_grad}, {"grad_norm_dale", &StepMetrics::grad_norm_dale},
    {"grad_norm_free", &StepMetrics::grad_norm_free},
    {"cost_l1_in", &StepMetrics::cost_l1_in},   {"cost_l2_in", &StepMetrics::cost_l2_in},
    {"cost_l1_rec", &StepMetrics::cost_l1_rec}, {"cost_l2_rec", &StepMetrics::cost_l2_rec},
    {"cost_l1_out", &StepMetrics::cost_l1_out}, {"cost_l2_out", &StepMetrics::cost_l2_out},
    {"cost_l1_free", &StepMetrics::cost_l1_free}, {"cost_l2_free", &StepMetrics::cost_l2_free},
    {"cost_l2_firing_rate", &StepMetrics::cost_l2_firing_rate},
};

// Replica status values, as written to /replicas/status.
enum class ReplicaStatus { running, complete, diverged };
const char* to_string(ReplicaStatus s);

// Host copy of one replica's parameters, float32, C order (row-major).
struct ReplicaWeights {
  int N = 0, I = 0, O = 0;
  std::vector<float> W_rec;   // [N, N] effective recurrent matrix (what the dynamics use)
  std::vector<float> W_dale;  // [N, N] (zeros when the arch has no Dale part)
  std::vector<float> W_free;  // [N, N] (zeros when the arch has no free part)
  std::vector<float> W_in;    // [N, I]
  std::vector<float> W_out;   // [O, N]
  std::vector<float> b;       // [N]
  std::vector<float> b_out;   // [O]
  float alpha = 0;            // mean alpha over the units; NaN when the arch has none
  std::vector<float> alpha_units;  // [N] alpha_j of each presynaptic unit (NaN when the arch has none)
};

// Histograms of ln|w| by presynaptic type: bin k counts ln|w| in [kLogwMin + k w, kLogwMin + (k+1) w)
// with w = kLogwBinWidth; the first and last bins also count what lies below and above.
constexpr int kLogwBins = 40;
constexpr double kLogwMin = -16.0, kLogwBinWidth = 0.5;

// Diagnostics of one replica at one checkpoint (SPEC §6).
struct Diagnostics {
  double spectral_radius = 0;
  double svd_entropy = 0;     // -sum p log p / log N, p = s / sum s
  double effective_rank = 0;  // exp(-sum p log p)
  double rel_weight_change = 0;  // ||W_t - W_0||_F / ||W_0||_F of the effective W_rec
  double logw_e_mean = 0, logw_e_std = 0, logw_e_skew = 0;  // log|w| over nonzero E columns
  double logw_i_mean = 0, logw_i_std = 0, logw_i_skew = 0;  // log|w| over nonzero I columns
  std::vector<float> singular_values;  // [N], descending
  std::vector<float> logw_hist_e, logw_hist_i;  // [kLogwBins] counts over nonzero E / I columns of W_rec
  // Held-out metrics (the whole split, forward pass only); NaN for tasks without that split.
  double validation_loss = std::numeric_limits<double>::quiet_NaN();
  double validation_accuracy = std::numeric_limits<double>::quiet_NaN();
  double test_loss = std::numeric_limits<double>::quiet_NaN();
  double test_accuracy = std::numeric_limits<double>::quiet_NaN();
  // The fixed evaluation set of every task (kEvalTrials trials seeded apart from training, see
  // train/driver.hpp): loss, accuracy, and the accuracy over the trials of each of the task's
  // conditions (empty for tasks without conditions; NaN for a condition without trials).
  double eval_loss = std::numeric_limits<double>::quiet_NaN();
  double eval_accuracy = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> eval_accuracy_by_condition;
  // Rich vs lazy (Liu et al. 2024), on a fixed probe batch against step 0: cosine similarity of
  // the last step's activity kernels H H^T, the fraction of (t, trial, unit) entries whose
  // active/silent state is unchanged, and the fraction of units whose whole pattern is unchanged.
  double rep_alignment = std::numeric_limits<double>::quiet_NaN();
  double sign_similarity = std::numeric_limits<double>::quiet_NaN();
  double units_unchanged = std::numeric_limits<double>::quiet_NaN();
  // Mirror-descent geometry (Pogodin et al. 2024): dCDF from a Gaussian of the change of the
  // effective W_rec since step 0 in the dual coordinates of each candidate potential.
  double geometry_p1_5 = std::numeric_limits<double>::quiet_NaN();
  double geometry_p2 = std::numeric_limits<double>::quiet_NaN();
  double geometry_p3 = std::numeric_limits<double>::quiet_NaN();
  double geometry_negentropy = std::numeric_limits<double>::quiet_NaN();
  double density = 1;  // fraction of the N x N recurrent connections present (falls with pruning)
  // Activity on the fixed probe batch (diagnostics/activity.hpp): mean pairwise correlation of E
  // and of I units, Treves-Rolls population sparseness, E/I balance of the input currents.
  double act_corr_e = std::numeric_limits<double>::quiet_NaN();
  double act_corr_i = std::numeric_limits<double>::quiet_NaN();
  double act_sparseness = std::numeric_limits<double>::quiet_NaN();
  double act_ei_balance = std::numeric_limits<double>::quiet_NaN();
};

// Run-level facts written as root attributes.
struct RunInfo {
  std::string command_line;
  std::string backend;  // "cpu", "cuda"
  std::string device;   // e.g. "CPU (2 threads)"
  std::string git_hash;
  std::string engine_version;
  // A shard of a sweep (`dalesim run --shard K/N`): written as root attributes shard_index,
  // shard_count and sweep_n_replicas; shard_count 0 for a whole run.
  int shard_index = 0, shard_count = 0;
  int sweep_n_replicas = 0;
  // The data files the tasks read (data_files_identity in dalesim/sweep.hpp); empty when none.
  std::string data_files;
};

// Per-replica facts known at the start (the /replicas table).
struct ReplicaRow {
  const ReplicaConfig* config = nullptr;
  int n_inputs = 0, n_outputs = 0, n_steps = 0;  // n_steps: time steps T of one trial
  double baseline_loss = 0, chance_accuracy = 0;
  std::vector<std::string> conditions;  // the task's condition names (Task::condition_names)
  std::string kernel_used;  // the training kernel that ran (Backend::kernel_of); empty: not known
};

// The output file of a run. Crash-safe: appended rows are held in memory and written at commits
// (every checkpoint and resume point), to two copies OUT.h5.partial-a/-b in turn, while OUT.h5 is
// a symbolic link to the copy last completed; so a run killed at any moment leaves OUT.h5 whole, as
// of its last commit. close() renames the finished copy to OUT.h5 and removes the other.
class HistoryWriter {
 public:
  virtual ~HistoryWriter() = default;
  // Appends one row (one logged step) to every /history dataset (at the next commit).
  virtual void append_history(std::int64_t step, const std::vector<StepMetrics>& per_replica) = 0;
  // Appends one checkpoint (diagnostics + weights of every replica) and commits. With `state`,
  // the commit also saves the models' training state (parameters, optimiser state) as the point a
  // resumed run continues from, at iteration `step`.
  virtual void append_checkpoint(std::int64_t step, const std::vector<Diagnostics>& diag,
                                 const std::vector<ReplicaWeights>& weights,
                                 const std::vector<ReplicaModel>* state = nullptr) = 0;
  // Commits the rows appended so far and the models' training state to resume from at iteration
  // `next_iteration`, without a checkpoint (a run stopped by a signal between checkpoints).
  virtual void save_resume_point(std::int64_t next_iteration, const std::vector<ReplicaModel>& state) = 0;
  // Updates /replicas/status and /replicas/diverged_step (at the next commit).
  virtual void set_replica_status(const std::vector<ReplicaStatus>& status,
                                  const std::vector<std::int64_t>& diverged_step) = 0;
  // Commits, marks the file complete (root attribute status = "complete") and closes it.
  virtual void close() = 0;
};

// Creates the output file (refusing to overwrite an existing one, or an unfinished run's copies,
// unless `overwrite`), writes the root attributes and the /replicas table, and marks the file
// status = "running". With `two_copies` false (merging, where a failure just means starting
// again), one copy is written and renamed at close.
std::unique_ptr<HistoryWriter> create_hdf5_writer(const std::string& path, const Sweep& sweep,
                                                  const std::vector<ReplicaRow>& rows,
                                                  const RunInfo& info, bool overwrite, bool two_copies = true);

// An unfinished run's file, read back to continue it: the iteration to continue from, and each
// replica's training state put into `models` (initialised from the same sweep, so their layouts
// must match the saved ones). Throws InputError when the file holds no resumable run of this sweep.
struct ResumePoint {
  std::int64_t next_iteration = 0;
  std::size_t history_rows = 0, checkpoint_rows = 0;  // rows written up to that point
};
ResumePoint read_resume_point(const std::string& path, std::vector<ReplicaModel>& models);

// Reopens the unfinished run at `path` to append to it: both copies are made equal to the one
// OUT.h5 links to, truncated to the rows of `point`. `info` adds this process's command line.
std::unique_ptr<HistoryWriter> resume_hdf5_writer(const std::string& path, const ResumePoint& point,
                                                  const RunInfo& info);

// What the reader gives back: enough for `dalesim inspect` and for round-trip tests.
struct RunFile {
  std::string format;  // "dalesim"
  int format_version = 0;
  std::string status;  // "running" or "complete"
  std::string sweep_text, resolved_config, command_line, backend, device, git_hash, engine_version;
  std::string sweep_axes;  // the /replicas columns of the swept keys, space-separated
  int n_replicas = 0;
  // /replicas columns: numeric ones as doubles, string ones as strings.
  std::vector<std::string> numeric_column_names, string_column_names;
  std::vector<std::vector<double>> numeric_columns;        // [column][replica]
  std::vector<std::vector<std::string>> string_columns;    // [column][replica]
  std::vector<std::int64_t> history_step;                  // [S]
  std::vector<std::string> history_metric_names;
  std::vector<std::vector<double>> history;                // [metric][S * R], row-major [S, R]
  std::vector<std::int64_t> checkpoint_step;               // [C]
  std::vector<std::string> checkpoint_metric_names;
  std::vector<std::vector<double>> checkpoints;            // [metric][C * R]

  const std::vector<double>* numeric_column(const std::string& name) const;
  const std::vector<std::string>* string_column(const std::string& name) const;
  const std::vector<double>* history_metric(const std::string& name) const;
  // History row s of every replica (metrics the file lacks stay 0).
  std::vector<StepMetrics> history_row(std::size_t s) const;
  const std::vector<double>* checkpoint_metric(const std::string& name) const;
};

// Reads a dalesim output file. Throws std::runtime_error with the path and what is wrong for a
// missing, truncated or foreign file.
RunFile read_run_file(const std::string& path);

// Reads the weights of one replica at checkpoint index `c` (for tests and analysis).
ReplicaWeights read_checkpoint_weights(const std::string& path, int replica, int c);

}  // namespace dalesim
