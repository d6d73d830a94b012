// The Task interface: trial batches generated from a counter-based RNG, identical on every backend.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "dalesim/config.hpp"

namespace dalesim {

// One documented task parameter (`task.<key>` in a sweep file).
struct ParamSpec {
  std::string key;
  Value default_value;
  std::string doc;
  double min = -std::numeric_limits<double>::infinity();  // numeric bounds, inclusive
  double max = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices;  // allowed strings, when non-empty
};

// How a batch is scored. The loss form belongs to the batch, so backends stay task-agnostic.
enum class LossKind {
  mse,            // sum mask (z - y)^2 / sum mask over [T, B, O]
  cross_entropy,  // mean over scored (t, b) of -log softmax(z[t, b, :])[target[t, b]]
};
const char* to_string(LossKind k);

// A batch of trials. Time-major so that each step's slice is a contiguous [B, I] block.
// Trials of different lengths share the batch's T: steps past a trial's end have zero inputs and
// are not scored (mask 0, target -1), so they never enter the loss or the accuracy.
struct Batch {
  int B = 0, T = 0, I = 0, O = 0;
  LossKind loss = LossKind::mse;
  std::vector<float> x;     // [T, B, I] inputs
  std::vector<float> y;     // [T, B, O] targets (mse)
  std::vector<float> mask;  // [T, B, O] loss weights (mse; 0 or 1)
  std::vector<int> target;  // [T, B] class of each step, -1 = not scored (cross_entropy)
  // Accuracy, when the task defines one, compares the argmax over outputs [acc_begin, acc_end),
  // counted from acc_begin, with a label. Two forms:
  //  - final step: acc_step >= 0; at step acc_step, with label[b] for every trial b;
  //  - per step: acc_step < 0; at every (t, b) with acc_label[t, b] >= 0 (e.g. the last step of
  //    each trial's decision period, or each recalled symbol); accuracy = fraction correct.
  // No accuracy (NaN) when acc_step < 0 and no acc_label entry is >= 0.
  std::vector<int> label;   // [B]
  int acc_step = -1, acc_begin = 0, acc_end = 0;
  std::vector<int> acc_label;  // [T, B], -1 = not scored
  // The condition of each trial, an index into its task's condition_names() (the coherence, go or
  // no-go, match or non-match, ...), so that results can be split by condition; -1 = none (tasks
  // without conditions, unscored held-out padding).
  std::vector<int> condition;  // [B]

  // Sizes every array for [T, B] trials and clears it: zero inputs, targets and mask, target and
  // acc_label -1, label 0, condition -1, loss mse, no accuracy.
  void resize(int B_, int T_, int I_, int O_);
  // What the batch's mean loss is averaged over: sum of mask (mse) or the number of scored steps
  // (cross_entropy). Held-out metrics over several batches are weighted by it.
  double loss_weight() const;
  // How many (step, trial) points the accuracy is averaged over (0 when it has none).
  int n_accuracy_points() const;
};

// Throws std::invalid_argument, naming the batch's shape and what is wrong, unless the batch fits a
// model with I inputs and O outputs (every backend checks each batch it is given).
void check_batch(const Batch& batch, int I, int O);

// The held-out parts of a task's data (tasks that draw fresh trials every step have none).
enum class Split { validation, test };
const char* to_string(Split s);

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  virtual int n_inputs() const = 0;
  virtual int n_outputs() const = 0;
  virtual int n_steps() const = 0;
  // Fills `out` with trials [trial0, trial0 + B) of batch `iteration` of the stream `data_seed`.
  virtual void generate(std::uint64_t data_seed, std::int64_t iteration, int B, Batch& out) const = 0;
  // Loss of the best input-blind constant output (NaN when not defined).
  virtual double baseline_loss() const = 0;
  // Accuracy of guessing (NaN when the task has no accuracy).
  virtual double chance_accuracy() const = 0;
  // Names of the trial conditions that Batch::condition indexes (empty: the task has none).
  virtual std::vector<std::string> condition_names() const { return {}; }

  // Trials in a held-out split (0: the task has none). Training batches never contain them.
  virtual int n_heldout(Split) const { return 0; }
  // Fills `out` with held-out trials [index * B, index * B + B) of `split`, in the split's fixed
  // order and without noise; trials past the end of the split are left unscored (loss weight and
  // accuracy points 0), so every batch has the training shape. Throws std::logic_error when the
  // task has no such split.
  virtual void generate_heldout(Split split, std::int64_t index, int B, Batch& out) const;
};

struct TaskInfo {
  std::string name;
  std::string summary;
  std::vector<ParamSpec> params;
};

// Every task the engine knows, with its documented parameters.
const std::vector<TaskInfo>& task_registry();

// Builds a task from its config; `dt` (ms) converts periods to steps. Throws ConfigError naming
// `task.<key>` for unknown names, unknown parameters or values out of range.
std::unique_ptr<Task> make_task(const TaskConfig& cfg, double dt);

}  // namespace dalesim
