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

// A batch of trials. Time-major so that each step's slice is a contiguous [B, I] block.
struct Batch {
  int B = 0, T = 0, I = 0, O = 0;
  std::vector<float> x;     // [T, B, I] inputs
  std::vector<float> y;     // [T, B, O] targets
  std::vector<float> mask;  // [T, B, O] loss weights (0 or 1)
  // Accuracy, when the task defines one: the argmax over outputs [acc_begin, acc_end) at step
  // acc_step is compared with label[b]. acc_step < 0 means no accuracy.
  std::vector<int> label;   // [B]
  int acc_step = -1, acc_begin = 0, acc_end = 0;

  void resize(int B_, int T_, int I_, int O_);
};

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
