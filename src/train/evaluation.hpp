// The fixed evaluation set scored at every checkpoint, for every task: loss, accuracy and the
// accuracy per trial condition of each replica on trials training never sees.
#pragma once

#include <cstdint>
#include <vector>

#include "dalesim/history.hpp"

namespace dalesim {

class Backend;
class Task;

// The fixed evaluation set scored at every checkpoint, for every task: ceil(kEvalTrials / B)
// batches of the training size B (at least kEvalTrials trials) drawn from the stream
// eval_data_seed(data_seed), which training never draws, with the recurrent noise of iterations
// kEvalIteration - k for batch k; the same trials and noise at every checkpoint.
constexpr int kEvalTrials = 256;
constexpr std::int64_t kEvalIteration = -(std::int64_t{1} << 41);
inline std::uint64_t eval_data_seed(std::uint64_t data_seed) { return data_seed ^ 0x9e3779b97f4a7c15ull; }

struct EvalPlan {
  std::vector<int> n_batches;     // per stream: batches of the evaluation set
  std::vector<int> n_conditions;  // per stream: the task's conditions
};
EvalPlan plan_evaluation(const std::vector<const Task*>& tasks, const std::vector<int>& batch_size);

// Scores every replica on its stream's evaluation set: eval_loss and eval_accuracy (weighted by
// each batch's loss weight and accuracy points) and, for tasks with conditions, the accuracy over
// the trials of each condition (eval_accuracy_by_condition). stream_of: replica -> stream.
void evaluate_fixed_set(Backend& backend, const std::vector<const Task*>& tasks, const std::vector<int>& batch_size,
                        const std::vector<std::uint64_t>& data_seed, const std::vector<int>& stream_of,
                        int n_threads, std::vector<Diagnostics>& diag);

}  // namespace dalesim
