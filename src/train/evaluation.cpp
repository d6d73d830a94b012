// The fixed evaluation set of every replica (train/evaluation.hpp): each batch evaluated once for
// the loss and the accuracy, then once per trial condition with only that condition's trials
// scored for accuracy.
#include "train/evaluation.hpp"

#include <algorithm>
#include <cmath>

#include "cpu/parallel.hpp"
#include "dalesim/backend.hpp"
#include "dalesim/task.hpp"

namespace dalesim {

namespace {

// The copy of `batch` whose accuracy counts only the trials of condition `c`, in the per-step form
// (a final-step label moves to acc_label at acc_step); loss and inputs are unchanged.
void keep_accuracy_of_condition(const Batch& batch, int c, Batch& out) {
  out = batch;
  const std::size_t B = static_cast<std::size_t>(batch.B);
  if (batch.acc_step >= 0) {
    out.acc_label.assign(static_cast<std::size_t>(batch.T) * B, -1);
    for (std::size_t b = 0; b < B; ++b) out.acc_label[batch.acc_step * B + b] = batch.label[b];
    out.acc_step = -1;
  }
  for (std::size_t k = 0; k < out.acc_label.size(); ++k)
    if (batch.condition[k % B] != c) out.acc_label[k] = -1;
}

}  // namespace

EvalPlan plan_evaluation(const std::vector<const Task*>& tasks, const std::vector<int>& batch_size) {
  EvalPlan plan;
  plan.n_batches.resize(tasks.size());
  plan.n_conditions.resize(tasks.size());
  for (std::size_t s = 0; s < tasks.size(); ++s) {
    plan.n_batches[s] = (kEvalTrials + batch_size[s] - 1) / batch_size[s];
    plan.n_conditions[s] = static_cast<int>(tasks[s]->condition_names().size());
  }
  return plan;
}

void evaluate_fixed_set(Backend& backend, const std::vector<const Task*>& tasks, const std::vector<int>& batch_size,
                        const std::vector<std::uint64_t>& data_seed, const std::vector<int>& stream_of,
                        int n_threads, std::vector<Diagnostics>& diag) {
  const int R = static_cast<int>(stream_of.size()), S = static_cast<int>(tasks.size());
  const EvalPlan plan = plan_evaluation(tasks, batch_size);
  const int K = *std::max_element(plan.n_batches.begin(), plan.n_batches.end());
  const int C = *std::max_element(plan.n_conditions.begin(), plan.n_conditions.end());
  std::vector<Batch> batches(S), subset(S);
  std::vector<const Batch*> batch_of(R);
  std::vector<double> loss_sum(R, 0), loss_w(R, 0), acc_sum(R, 0), acc_n(R, 0);
  std::vector<double> cond_sum(static_cast<std::size_t>(R) * C, 0), cond_n(static_cast<std::size_t>(R) * C, 0);
  std::vector<StepMetrics> metrics;
  for (int k = 0; k < K; ++k) {
    // A stream with fewer batches evaluates its last one again; its result is not counted.
    parallel_for(S, n_threads, [&](int s) {
      if (k < plan.n_batches[s]) tasks[s]->generate(eval_data_seed(data_seed[s]), k, batch_size[s], batches[s]);
    });
    for (int r = 0; r < R; ++r) batch_of[r] = &batches[stream_of[r]];
    backend.evaluate(kEvalIteration - k, batch_of, metrics);
    for (int r = 0; r < R; ++r) {
      const int s = stream_of[r];
      if (k >= plan.n_batches[s]) continue;
      const double w = batches[s].loss_weight(), a = batches[s].n_accuracy_points();
      if (w > 0) loss_sum[r] += metrics[r].loss * w, loss_w[r] += w;  // NaN (diverged) stays NaN
      if (a > 0) acc_sum[r] += metrics[r].accuracy * a, acc_n[r] += a;
    }
    // Per condition: the same forward pass with the accuracy of one condition's trials only.
    for (int c = 0; c < C; ++c) {
      parallel_for(S, n_threads, [&](int s) {
        if (k < plan.n_batches[s] && c < plan.n_conditions[s]) keep_accuracy_of_condition(batches[s], c, subset[s]);
        else subset[s] = batches[s];
      });
      for (int r = 0; r < R; ++r) batch_of[r] = &subset[stream_of[r]];
      backend.evaluate(kEvalIteration - k, batch_of, metrics);
      for (int r = 0; r < R; ++r) {
        const int s = stream_of[r];
        if (k >= plan.n_batches[s] || c >= plan.n_conditions[s]) continue;
        const double a = subset[s].n_accuracy_points();
        if (a > 0) cond_sum[r * C + c] += metrics[r].accuracy * a, cond_n[r * C + c] += a;
      }
    }
  }
  const double nan = std::nan("");
  for (int r = 0; r < R; ++r) {
    diag[r].eval_loss = loss_w[r] > 0 ? loss_sum[r] / loss_w[r] : nan;
    diag[r].eval_accuracy = acc_n[r] > 0 ? acc_sum[r] / acc_n[r] : nan;
    diag[r].eval_accuracy_by_condition.assign(plan.n_conditions[stream_of[r]], nan);
    for (int c = 0; c < plan.n_conditions[stream_of[r]]; ++c)
      if (cond_n[r * C + c] > 0) diag[r].eval_accuracy_by_condition[c] = cond_sum[r * C + c] / cond_n[r * C + c];
  }
}

}  // namespace dalesim
