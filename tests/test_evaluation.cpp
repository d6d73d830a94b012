// The fixed evaluation set scored at checkpoints (train/driver.hpp): its loss, accuracy and
// per-condition accuracy equal what the CPU trainer computes trial by trial on the same trials.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu/replica_trainer.hpp"
#include "test_util.hpp"
#include "train/evaluation.hpp"

namespace dalesim {
namespace {

// Trial b of `batch` as a batch of one trial (every per-trial and per-step array sliced).
Batch one_trial(const Batch& batch, int b) {
  Batch out;
  out.resize(1, batch.T, batch.I, batch.O);
  out.loss = batch.loss;
  out.acc_step = batch.acc_step;
  out.acc_begin = batch.acc_begin;
  out.acc_end = batch.acc_end;
  out.label[0] = batch.label[b];
  out.condition[0] = batch.condition[b];
  for (int t = 0; t < batch.T; ++t) {
    const std::size_t src = static_cast<std::size_t>(t) * batch.B + b;
    for (int i = 0; i < batch.I; ++i) out.x[t * batch.I + i] = batch.x[src * batch.I + i];
    for (int o = 0; o < batch.O; ++o) {
      out.y[t * batch.O + o] = batch.y[src * batch.O + o];
      out.mask[t * batch.O + o] = batch.mask[src * batch.O + o];
    }
    out.target[t] = batch.target[src];
    out.acc_label[t] = batch.acc_label[src];
  }
  return out;
}

ReplicaConfig eval_config(const std::string& task, Arch arch, std::int64_t seed) {
  ReplicaConfig c = test::tiny_config(arch, 7, seed);
  c.task.name = task;
  c.task.batch = 24;  // 256 trials: 11 batches, the last one partly past 256
  c.task.params.clear();
  c.task.params["fixation_ms"] = Value{20.0};
  c.task.params["stimulus_ms"] = Value{40.0};
  c.task.params["decision_ms"] = Value{40.0};
  if (task == "go_nogo") c.task.params["delay_ms"] = Value{20.0};
  return c;
}

TEST(FixedEvaluation, EqualsTheCpuTrainerTrialByTrial) {
  // Two tasks with conditions (final-step and per-step accuracy), two archs, two seeds.
  std::vector<ReplicaConfig> cfgs = {eval_config("perceptual_dm", Arch::mix, 3), eval_config("go_nogo", Arch::colei, 4),
                                     eval_config("perceptual_dm", Arch::free, 5)};
  std::vector<ReplicaModel> models;
  std::vector<std::unique_ptr<Task>> tasks;
  std::vector<const Task*> task_ptrs;
  std::vector<int> batch, stream_of;
  std::vector<std::uint64_t> seeds;
  for (std::size_t r = 0; r < cfgs.size(); ++r) {
    cfgs[r].id = static_cast<int>(r);
    models.push_back(test::model_of(cfgs[r]));
    tasks.push_back(test::task_of(cfgs[r]));
    task_ptrs.push_back(tasks.back().get());
    batch.push_back(cfgs[r].task.batch);
    seeds.push_back(cfgs[r].data_seed);
    stream_of.push_back(static_cast<int>(r));
  }
  BackendOptions opt;
  opt.n_threads = 2;
  auto backend = make_cpu_backend(opt);
  backend->upload(models);
  std::vector<Diagnostics> diag(cfgs.size());
  evaluate_fixed_set(*backend, task_ptrs, batch, seeds, stream_of, 2, diag);

  for (std::size_t r = 0; r < cfgs.size(); ++r) {
    SCOPED_TRACE(cfgs[r].task.name);
    cpu::ReplicaTrainer<float> trainer(models[r]);
    const int K = (kEvalTrials + batch[r] - 1) / batch[r];
    const int C = static_cast<int>(tasks[r]->condition_names().size());
    ASSERT_GT(C, 1);
    double loss = 0, weight = 0, correct = 0, points = 0;
    std::vector<double> c_correct(C, 0), c_points(C, 0);
    Batch b;
    for (int k = 0; k < K; ++k) {
      tasks[r]->generate(eval_data_seed(cfgs[r].data_seed), k, batch[r], b);
      for (int n = 0; n < b.B; ++n) {  // no recurrent noise: a trial's outputs do not depend on its batch
        const Batch one = one_trial(b, n);
        const StepMetrics m = trainer.evaluate(one, kEvalIteration - k);
        loss += m.loss * one.loss_weight();
        weight += one.loss_weight();
        correct += m.accuracy * one.n_accuracy_points();
        points += one.n_accuracy_points();
        c_correct[one.condition[0]] += m.accuracy * one.n_accuracy_points();
        c_points[one.condition[0]] += one.n_accuracy_points();
      }
    }
    EXPECT_NEAR(diag[r].eval_loss, loss / weight, 1e-4 * loss / weight);
    EXPECT_NEAR(diag[r].eval_accuracy, correct / points, 1e-12);
    ASSERT_EQ(diag[r].eval_accuracy_by_condition.size(), static_cast<std::size_t>(C));
    for (int c = 0; c < C; ++c) {
      ASSERT_GT(c_points[c], 0);
      EXPECT_NEAR(diag[r].eval_accuracy_by_condition[c], c_correct[c] / c_points[c], 1e-12) << "condition " << c;
    }
  }
}

TEST(FixedEvaluation, TasksWithoutConditionsGetLossAndNoPerConditionAccuracy) {
  ReplicaConfig c = test::tiny_config(Arch::mix, 6, 2);
  test::use_adding(c, 6, 16);
  const auto task = test::task_of(c);
  std::vector<ReplicaModel> models = {test::model_of(c)};
  BackendOptions opt;
  auto backend = make_cpu_backend(opt);
  backend->upload(models);
  std::vector<Diagnostics> diag(1);
  evaluate_fixed_set(*backend, {task.get()}, {16}, {c.data_seed}, {0}, 1, diag);
  cpu::ReplicaTrainer<float> trainer(models[0]);
  double loss = 0, weight = 0;
  Batch b;
  for (int k = 0; k < kEvalTrials / 16; ++k) {
    task->generate(eval_data_seed(c.data_seed), k, 16, b);
    loss += trainer.evaluate(b, kEvalIteration - k).loss * b.loss_weight();
    weight += b.loss_weight();
  }
  EXPECT_NEAR(diag[0].eval_loss, loss / weight, 1e-4 * loss / weight);
  EXPECT_TRUE(std::isnan(diag[0].eval_accuracy));
  EXPECT_TRUE(diag[0].eval_accuracy_by_condition.empty());
  // The evaluation stream is not the training stream.
  Batch train, eval;
  task->generate(c.data_seed, 0, 16, train);
  task->generate(eval_data_seed(c.data_seed), 0, 16, eval);
  EXPECT_NE(train.x, eval.x);
}

}  // namespace
}  // namespace dalesim
