// Training through the CPU backend: replica independence, float vs double, the Dale invariant,
// learning below the task baseline, divergence freezing, and the driver writing a readable file.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "cpu/replica_trainer.hpp"
#include "io/h5.hpp"
#include "dalesim/backend.hpp"
#include "test_util.hpp"
#include "train/driver.hpp"

namespace dalesim {
namespace {

// Trains the configs together on one backend for n steps; returns metrics[step][replica].
std::vector<std::vector<StepMetrics>> train(const std::vector<ReplicaConfig>& cfgs, int n_steps,
                                            std::vector<ReplicaModel>* out_models = nullptr, int threads = 2,
                                            std::vector<std::int64_t>* diverged = nullptr) {
  std::vector<ReplicaModel> models;
  std::vector<Batch> batches(cfgs.size());
  std::vector<std::unique_ptr<Task>> tasks;
  for (const auto& c : cfgs) {
    models.push_back(test::model_of(c));
    tasks.push_back(test::task_of(c));
  }
  BackendOptions opt;
  opt.n_threads = threads;
  auto backend = make_cpu_backend(opt);
  backend->upload(models);
  std::vector<std::vector<StepMetrics>> history;
  std::vector<const Batch*> ptrs;
  for (auto& b : batches) ptrs.push_back(&b);
  for (int it = 0; it < n_steps; ++it) {
    for (size_t r = 0; r < cfgs.size(); ++r) tasks[r]->generate(cfgs[r].data_seed, it, cfgs[r].task.batch, batches[r]);
    std::vector<StepMetrics> m;
    backend->train_step(it, ptrs, &m);
    history.push_back(m);
  }
  backend->download(models);
  if (diverged) *diverged = backend->diverged_steps();
  if (out_models) *out_models = std::move(models);
  return history;
}

std::vector<ReplicaConfig> varied_replicas(int n) {
  std::vector<ReplicaConfig> cfgs;
  const Arch archs[] = {Arch::free, Arch::colei, Arch::mix};
  for (int r = 0; r < n; ++r) {
    ReplicaConfig c = test::tiny_config(archs[r % 3], 5 + r % 4, 100 + r);
    c.id = r;
    c.train.lr = 1e-3 * (1 + r % 5);
    c.model.alpha_init = 0.2 + 0.02 * r;
    c.train.optimizer = r % 2 ? Optim::adam : Optim::sgd;
    c.model.sigma_rec = r % 3 == 0 ? 0.05 : 0.0;
    cfgs.push_back(c);
  }
  return cfgs;
}

TEST(Training, ReplicaAloneOrInABatchOf33IsIdentical) {
  const auto cfgs = varied_replicas(33);
  const auto together = train(cfgs, 6);
  for (int r : {0, 16, 32}) {
    const auto alone = train({cfgs[r]}, 6, nullptr, 1);
    for (int s = 0; s < 6; ++s) {
      EXPECT_EQ(alone[s][0].loss, together[s][r].loss) << "replica " << r << " step " << s;
      EXPECT_EQ(alone[s][0].grad_norm, together[s][r].grad_norm);
    }
  }
}

TEST(Training, PerturbingOneReplicaChangesNoOther) {
  auto cfgs = varied_replicas(9);
  const auto base = train(cfgs, 5);
  cfgs[4].init_seed ^= 0xABCDEF;  // a different initial network for replica 4 only
  cfgs[4].train.lr *= 3;
  const auto changed = train(cfgs, 5);
  for (int s = 0; s < 5; ++s)
    for (int r = 0; r < 9; ++r) {
      if (r == 4) continue;
      EXPECT_EQ(base[s][r].loss, changed[s][r].loss);
      EXPECT_EQ(base[s][r].grad_norm, changed[s][r].grad_norm);
    }
  EXPECT_NE(base[2][4].loss, changed[2][4].loss);  // the perturbation did reach replica 4
}

TEST(Training, FloatAndDoubleAgree) {
  // Tolerance: float carries ~1e-7 relative error per operation; over 30 Adam steps of a 12-unit
  // network the trajectories stay within 1e-3 relative (measured ~1e-5).
  for (Arch arch : {Arch::free, Arch::colei, Arch::mix}) {
    ReplicaConfig f = test::tiny_config(arch, 12, 4), d = f;
    f.train.precision = Precision::f32;
    d.train.precision = Precision::f64;
    const auto hf = train({f}, 30), hd = train({d}, 30);
    for (int s = 0; s < 30; ++s) {
      EXPECT_NEAR(hf[s][0].loss, hd[s][0].loss, 1e-3 * std::fabs(hd[s][0].loss)) << to_string(arch) << " step " << s;
      if (arch == Arch::mix) EXPECT_NEAR(hf[s][0].alpha, hd[s][0].alpha, 1e-4);
    }
  }
}

TEST(Training, DaleSignsHoldAndAlphaStaysInUnitInterval) {
  std::vector<ReplicaConfig> cfgs;
  for (Arch arch : {Arch::colei, Arch::mix}) {
    ReplicaConfig c = test::tiny_config(arch, 16, 21);
    c.train.optimizer = Optim::sgd;
    c.train.lr = 0.5;  // large steps push many weights across zero
    c.train.lr_alpha = 5.0;
    c.train.clip = 0;
    cfgs.push_back(c);
  }
  std::vector<ReplicaModel> models;
  const auto hist = train(cfgs, 60, &models);
  int zeros = 0;
  for (const ReplicaModel& m : models) {
    const double* wd = m.tensor(Tensor::W_dale);
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j) {
        EXPECT_GE(wd[i * 16 + j] * m.col_sign[j], 0.0) << "W_dale[" << i << "," << j << "]";
        zeros += wd[i * 16 + j] == 0.0 && i != j;
      }
    EXPECT_GE(m.alpha(), 0.0);
    EXPECT_LE(m.alpha(), 1.0);
  }
  EXPECT_GT(zeros, 0) << "the projection was never exercised";
  for (const auto& row : hist) {
    EXPECT_EQ(row[0].dale_violation, 0.0);  // colei: the effective matrix obeys Dale's law
    EXPECT_GE(row[1].alpha, 0.0);
    EXPECT_LE(row[1].alpha, 1.0);
  }
}

TEST(Training, FreeNetworkLearnsAddingWellBelowBaseline) {
  ReplicaConfig c = test::tiny_config(Arch::free, 32, 2);
  test::use_adding(c, 20, 32);
  c.model.tau_e = c.model.tau_i = 40;
  c.train.lr = 5e-3;
  c.train.n_steps = 400;
  const auto hist = train({c}, 400, nullptr, 1);
  double late = 0;
  for (int s = 380; s < 400; ++s) late += hist[s][0].loss;
  late /= 20;
  EXPECT_LT(late, (1.0 / 6.0) * 0.3) << "mean loss over the last 20 steps";
  EXPECT_GT(hist[0][0].loss, late * 2);
}

// The optimiser state a backend downloads is all it needs to go on: a run split in two by a fresh
// backend (as --resume does) equals an uninterrupted one bit for bit, for every optimiser and
// rule (momentum, Adam's moments and step count, EG's split biases, DANN, a diverged replica).
TEST(Training, ContinuingFromDownloadedStateIsBitwiseUninterrupted) {
  std::vector<ReplicaConfig> cfgs;
  const Rule rules[] = {Rule::gd, Rule::eg, Rule::gd_sign, Rule::md};
  const Arch archs[] = {Arch::free, Arch::colei, Arch::mix, Arch::dann};
  for (int r = 0; r < 16; ++r) {
    ReplicaConfig c = test::tiny_config(archs[r % 4], 6 + r % 3, 300 + r);
    c.id = r;
    c.train.rule = rules[(r / 4) % 4];
    c.train.optimizer = r % 2 ? Optim::adam : Optim::sgd;
    c.train.lr = c.train.optimizer == Optim::sgd ? 0.02 : 3e-3;
    c.train.weight_decay = r % 3 == 0 ? 1e-3 : 0.0;
    c.train.eg_split_bias = r % 2 == 0;
    c.model.sigma_rec = r % 5 == 0 ? 0.05 : 0.0;
    if (r % 3 == 2) c.train.precision = Precision::f64;
    cfgs.push_back(c);
  }
  cfgs[5].train.optimizer = Optim::sgd;  // diverges before the split and must stay frozen after it
  cfgs[5].train.rule = Rule::gd;
  cfgs[5].train.lr = 1e30;
  cfgs[5].train.clip = 0;
  auto make = [] {
    BackendOptions opt;
    opt.n_threads = 2;
    return make_cpu_backend(opt);
  };
  const test::SplitRun straight = test::run_split(make, cfgs, 9);
  ASSERT_GE(straight.diverged[5], 0);
  ASSERT_LT(straight.diverged[5], 7);
  for (int split : {1, 7}) {
    SCOPED_TRACE("split after step " + std::to_string(split));
    const test::SplitRun resumed = test::run_split(make, cfgs, 9, split);
    EXPECT_EQ(resumed.diverged, straight.diverged);
    for (std::size_t r = 0; r < cfgs.size(); ++r) {
      EXPECT_EQ(resumed.models[r].params, straight.models[r].params) << "replica " << r;
      EXPECT_EQ(resumed.models[r].moment1, straight.models[r].moment1) << "replica " << r;
      EXPECT_EQ(resumed.models[r].moment2, straight.models[r].moment2) << "replica " << r;
      EXPECT_EQ(resumed.models[r].adam_steps, straight.models[r].adam_steps) << "replica " << r;
      for (std::size_t s = 0; s < straight.metrics.size(); ++s) {
        const StepMetrics &a = straight.metrics[s][r], &b = resumed.metrics[s][r];
        EXPECT_TRUE(a.loss == b.loss || (std::isnan(a.loss) && std::isnan(b.loss))) << "replica " << r << " step " << s;
        EXPECT_TRUE(a.grad_norm == b.grad_norm || (std::isnan(a.grad_norm) && std::isnan(b.grad_norm)));
      }
    }
  }
  // The state moved: Adam replicas have counted their steps, momentum buffers are not zero.
  EXPECT_EQ(straight.models[1].adam_steps, 9);
  double moment_sum = 0;
  for (double m : straight.models[0].moment1) moment_sum += std::fabs(m);
  EXPECT_GT(moment_sum, 0);
}

// EG with a huge rate: |w| exp(-lr sign(w) m) overflows while the loss of that step was still
// finite. The replica is diverged at the step of the update that overflowed, not a step later.
TEST(Training, UpdateThatOverflowsDivergesAtItsOwnStep) {
  auto cfgs = varied_replicas(2);
  cfgs[1].train.optimizer = Optim::sgd;
  cfgs[1].train.rule = Rule::eg;
  cfgs[1].train.precision = Precision::f32;
  cfgs[1].train.lr = 1e5;
  cfgs[1].train.clip = 0;
  std::vector<std::int64_t> diverged;
  std::vector<ReplicaModel> models;
  const auto hist = train(cfgs, 6, &models, 2, &diverged);
  ASSERT_GE(diverged[1], 0);
  EXPECT_EQ(diverged[0], -1);
  const auto d = static_cast<std::size_t>(diverged[1]);
  EXPECT_TRUE(std::isfinite(hist[d][1].loss)) << "the step whose update overflowed had a finite loss";
  bool finite = true;
  for (double w : models[1].params) finite &= std::isfinite(w);
  EXPECT_FALSE(finite) << "frozen with the overflowed weights of that step";
  if (d + 1 < hist.size()) EXPECT_TRUE(std::isnan(hist[d + 1][1].loss));
}

TEST(Training, DivergedReplicaIsFrozenOthersContinue) {
  auto cfgs = varied_replicas(3);
  cfgs[1].train.optimizer = Optim::sgd;
  cfgs[1].train.lr = 1e30;
  cfgs[1].train.clip = 0;
  std::vector<std::int64_t> diverged;
  std::vector<ReplicaModel> models;
  const auto hist = train(cfgs, 8, &models, 2, &diverged);
  ASSERT_GE(diverged[1], 0);
  EXPECT_EQ(diverged[0], -1);
  EXPECT_EQ(diverged[2], -1);
  EXPECT_TRUE(std::isnan(hist.back()[1].loss));
  const auto alone = train({cfgs[0], cfgs[2]}, 8);
  for (int s = 0; s < 8; ++s) {
    EXPECT_EQ(alone[s][0].loss, hist[s][0].loss);
    EXPECT_EQ(alone[s][1].loss, hist[s][2].loss);
  }
  // Frozen: the parameters stay as they were when the divergence was detected.
  std::vector<ReplicaModel> at_divergence;
  train({cfgs[1]}, static_cast<int>(diverged[1]) + 1, &at_divergence, 1);
  EXPECT_EQ(at_divergence[0].params, models[1].params);
}

TEST(Training, DriverWritesHistoryThatMatchesTheBackend) {
  Sweep sweep;
  sweep.name = "driver-test";
  for (int r = 0; r < 3; ++r) {
    ReplicaConfig c = test::tiny_config(r == 0 ? Arch::free : Arch::mix, 6, r);
    c.id = r;
    c.train.n_steps = 12;
    c.train.log_every = 5;
    c.train.checkpoint_every = 4;
    c.axes = {{"seed", Value{std::int64_t{r}}}};
    if (r == 1) c.train.kernel = CudaKernel::v2;  // accepted and ignored by the CPU backend
    sweep.replicas.push_back(c);
  }
  sweep.axis_keys = {"seed"};
  const std::string path = ::testing::TempDir() + "driver_test.h5";
  std::filesystem::remove(path);
  RunOptions opt;
  opt.output = path;
  opt.backend = "cpu";
  opt.n_threads = 2;
  std::ostringstream log;
  const RunResult res = run_sweep(sweep, opt, log);
  const RunFile f = read_run_file(path);
  EXPECT_EQ(f.status, "complete");
  EXPECT_EQ(f.history_step, (std::vector<std::int64_t>{0, 5, 10, 11}));
  EXPECT_EQ(f.checkpoint_step, (std::vector<std::int64_t>{0, 4, 8, 12}));
  ASSERT_NE(f.numeric_column("n_steps"), nullptr);
  EXPECT_EQ((*f.numeric_column("n_steps"))[0], 12.0);     // training steps
  EXPECT_EQ((*f.numeric_column("trial_steps"))[0], 5.0);  // time steps of one trial (tiny_config)
  EXPECT_EQ((*f.string_column("rule"))[0], "gd");
  // train.kernel as asked for, and the kernel that ran: the CPU's for every replica.
  ASSERT_NE(f.string_column("kernel"), nullptr);
  EXPECT_EQ(*f.string_column("kernel"), (std::vector<std::string>{"auto", "v2", "auto"}));
  ASSERT_NE(f.string_column("kernel_used"), nullptr);
  EXPECT_EQ(*f.string_column("kernel_used"), (std::vector<std::string>{"cpu", "cpu", "cpu"}));
  {  // the log-weight histogram of replica 2 at the last checkpoint counts its nonzero E weights
    h5::File file = h5::File::open_read_only(path);
    h5::Dataset hist = file.open_group("checkpoints").open_group("weights").open_group("n6_i3_o3").open_dataset("logw_hist_e");
    ASSERT_EQ(hist.dims(), (h5::Dims{4, 3, static_cast<hsize_t>(kLogwBins)}));
    std::vector<float> h(static_cast<size_t>(kLogwBins));
    hist.read_block(H5T_NATIVE_FLOAT, {3, 2, 0}, {1, 1, static_cast<hsize_t>(kLogwBins)}, h.data());
    const ReplicaWeights last = read_checkpoint_weights(path, 2, 3);
    int nonzero_e = 0;
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < sweep.replicas[2].model.n_exc(); ++j) nonzero_e += last.W_rec[i * 6 + j] != 0.f;
    double total = 0;
    for (float c : h) total += c;
    EXPECT_EQ(total, nonzero_e);
  }
  const auto sweep_copy = sweep.replicas;
  const auto direct = train(sweep_copy, 12);
  const std::vector<double>* loss = f.history_metric("loss");
  ASSERT_NE(loss, nullptr);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ((*loss)[3 * 3 + r], direct[11][r].loss);
    EXPECT_EQ(res.final_metrics[r].loss, direct[11][r].loss);
  }
  std::vector<ReplicaModel> models;
  train(sweep_copy, 12, &models);
  const ReplicaWeights w = read_checkpoint_weights(path, 2, 3);
  const ReplicaWeights expect = to_weights(models[2]);
  EXPECT_EQ(w.W_rec, expect.W_rec);
  EXPECT_EQ(w.W_dale, expect.W_dale);
  EXPECT_FLOAT_EQ(w.alpha, expect.alpha);
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".progress");
}

}  // namespace
}  // namespace dalesim

namespace dalesim {
namespace {
TEST(Training, EvaluateMatchesTheTrainingPassAndChangesNothing) {
  const auto cfgs = varied_replicas(4);
  std::vector<ReplicaModel> models;
  for (const auto& c : cfgs) models.push_back(test::model_of(c));
  auto backend = make_cpu_backend(BackendOptions{});
  backend->upload(models);
  std::vector<Batch> batches;
  for (const auto& c : cfgs) batches.push_back(test::batch_of(c, 0));
  std::vector<const Batch*> ptrs;
  for (auto& b : batches) ptrs.push_back(&b);
  std::vector<StepMetrics> eval, again, step;
  backend->evaluate(0, ptrs, eval);
  backend->evaluate(0, ptrs, again);
  backend->train_step(0, ptrs, &step);
  for (size_t r = 0; r < cfgs.size(); ++r) {
    EXPECT_EQ(eval[r].loss, again[r].loss);      // no update happened in between
    EXPECT_EQ(eval[r].loss, step[r].loss);       // the same forward pass as training's
    EXPECT_TRUE(std::isnan(eval[r].grad_norm));  // no gradient computed
  }
}
}  // namespace
}  // namespace dalesim
