// The formulations of the seed question on the CPU: alpha per neuron and its clamp form, the
// reparameterised Dale part, the costs' values against their definitions, and pruning (the mask
// holds through training under every rule and is refused where it cannot act).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "cpu/replica_trainer.hpp"
#include "dalesim/backend.hpp"
#include "dalesim/sweep.hpp"
#include "test_util.hpp"
#include "train/driver.hpp"

namespace dalesim {
namespace {

// Per neuron with every alpha_j equal is the per-network model: the same forward pass and the same
// weight gradients bit for bit, and the alpha_j gradients summing to the network's one.
TEST(Formulations, PerNeuronAlphaWithEqualAlphasIsTheScalarModel) {
  for (AlphaForm form : {AlphaForm::sigmoid, AlphaForm::clamp}) {
    ReplicaConfig net = test::tiny_config(Arch::mix, 8, 5);
    net.model.alpha_init = 0.3;
    net.model.alpha_form = form;
    net.model.sigma_rec = 0.1;
    ReplicaConfig neuron = net;
    neuron.model.alpha_per = AlphaPer::neuron;
    const ReplicaModel m_net = test::model_of(net), m_neu = test::model_of(neuron);
    ASSERT_EQ(m_net.layout[Tensor::a].size(), 1u);
    ASSERT_EQ(m_neu.layout[Tensor::a].size(), 8u);
    const Batch batch = test::batch_of(net, 2);
    cpu::ReplicaTrainer<float> t_net(m_net), t_neu(m_neu);
    const cpu::PassResult p_net = t_net.loss_and_grad(batch, 2, true), p_neu = t_neu.loss_and_grad(batch, 2, true);
    EXPECT_EQ(p_net.loss, p_neu.loss);
    EXPECT_EQ(p_net.mean_rate, p_neu.mean_rate);
    double sum = 0;
    for (size_t j = 0; j < 8; ++j) sum += t_neu.grad()[m_neu.layout[Tensor::a].offset + j];
    const double scalar = t_net.grad()[m_net.layout[Tensor::a].offset];
    EXPECT_NEAR(sum, scalar, 1e-5 * std::fabs(scalar) + 1e-9);
    EXPECT_GT(std::fabs(scalar), 0);
    for (Tensor t : {Tensor::W_free, Tensor::W_dale, Tensor::W_in, Tensor::b, Tensor::W_out, Tensor::b_out})
      for (size_t k = 0; k < m_net.layout[t].size(); ++k)
        ASSERT_EQ(t_net.grad()[m_net.layout[t].offset + k], t_neu.grad()[m_neu.layout[t].offset + k])
            << to_string(t) << "[" << k << "]";
  }
}

// Trains replicas with the given changes on the CPU backend for n steps; returns the models and
// the metrics of every step.
struct Trained {
  std::vector<ReplicaModel> models;
  std::vector<std::vector<StepMetrics>> metrics;
};
Trained train(const std::vector<ReplicaConfig>& cfgs, int n_steps) {
  Trained out;
  std::vector<std::unique_ptr<Task>> tasks;
  for (const auto& c : cfgs) {
    out.models.push_back(test::model_of(c));
    tasks.push_back(test::task_of(c));
  }
  BackendOptions opt;
  opt.n_threads = 2;
  auto backend = make_cpu_backend(opt);
  backend->upload(out.models);
  std::vector<Batch> batches(cfgs.size());
  std::vector<const Batch*> ptrs;
  for (auto& b : batches) ptrs.push_back(&b);
  for (int it = 0; it < n_steps; ++it) {
    for (size_t r = 0; r < cfgs.size(); ++r) tasks[r]->generate(cfgs[r].data_seed, it, cfgs[r].task.batch, batches[r]);
    std::vector<StepMetrics> m;
    backend->train_step(it, ptrs, &m);
    out.metrics.push_back(m);
  }
  backend->download(out.models);
  return out;
}

// The clamp form keeps every alpha_j in [0, 1] under steps large enough to leave it, and reaches
// the bounds (so the projection was exercised); the sigmoid form stays strictly inside.
TEST(Formulations, AlphaStaysInTheUnitIntervalInBothForms) {
  std::vector<ReplicaConfig> cfgs;
  for (AlphaPer per : {AlphaPer::network, AlphaPer::neuron})
    for (AlphaForm form : {AlphaForm::sigmoid, AlphaForm::clamp}) {
      ReplicaConfig c = test::tiny_config(Arch::mix, 12, 7 + cfgs.size());
      c.model.alpha_per = per;
      c.model.alpha_form = form;
      c.train.optimizer = Optim::sgd;
      c.train.lr = 0.05;
      c.train.lr_alpha = 50.0;
      c.train.clip = 0;
      cfgs.push_back(c);
    }
  const Trained t = train(cfgs, 40);
  int at_bound = 0;
  for (size_t r = 0; r < cfgs.size(); ++r) {
    for (double al : t.models[r].alpha_units()) {
      EXPECT_GE(al, 0.0);
      EXPECT_LE(al, 1.0);
      if (cfgs[r].model.alpha_form == AlphaForm::clamp) at_bound += al == 0.0 || al == 1.0;
    }
    for (const auto& row : t.metrics)
      for (double al : {row[r].alpha, row[r].alpha_e, row[r].alpha_i}) {
        EXPECT_GE(al, 0.0);
        EXPECT_LE(al, 1.0);
      }
  }
  EXPECT_GT(at_bound, 0) << "no alpha reached a bound: the projection was never exercised";
  // Per neuron, the alphas go their own ways.
  const std::vector<double> al = t.models[3].alpha_units();
  EXPECT_NE(*std::min_element(al.begin(), al.end()), *std::max_element(al.begin(), al.end()));
}

// abs and relu keep the effective Dale part's signs by construction under large steps that push raw
// values across zero: no violation, and raw values of the wrong sign were reached (abs) or the
// weights were silenced (relu).
TEST(Formulations, ReparameterisedDaleKeepsSignsWithoutProjection) {
  std::vector<ReplicaConfig> cfgs;
  for (DaleMode mode : {DaleMode::abs, DaleMode::relu})
    for (Rule rule : {Rule::gd, Rule::eg}) {
      ReplicaConfig c = test::tiny_config(Arch::colei, 16, 30 + cfgs.size());
      c.train.dale = mode;
      c.train.rule = rule;
      c.train.optimizer = Optim::sgd;
      c.train.lr = rule == Rule::eg ? 0.5 : 2.0;
      c.train.clip = 0;
      cfgs.push_back(c);
    }
  const Trained t = train(cfgs, 40);
  int crossed = 0;
  for (size_t r = 0; r < cfgs.size(); ++r) {
    for (const auto& row : t.metrics) EXPECT_EQ(row[r].dale_violation, 0.0);
    const ReplicaModel& m = t.models[r];
    const std::vector<double> d = m.effective_dale();
    for (size_t k = 0; k < d.size(); ++k) EXPECT_GE(d[k] * m.col_sign[k % 16], 0.0);
    const double* raw = m.tensor(Tensor::W_dale);
    for (size_t k = 0; k < d.size(); ++k) crossed += m.mask_rec[k] != 0 && raw[k] < 0;
  }
  EXPECT_GT(crossed, 0) << "no raw weight went negative: the reparameterisation was never exercised";
}

// Each cost's value is its coefficient times its mean, computed here from the effective weights
// the model reports and the rates of the pass.
TEST(Formulations, CostValuesAreCoefficientTimesMean) {
  ReplicaConfig c = test::tiny_config(Arch::mix, 8, 11);
  c.model.alpha_per = AlphaPer::neuron;
  c.train.precision = Precision::f64;
  c.train.l1_in = 0.3, c.train.l2_in = 0.4, c.train.l1_rec = 0.5, c.train.l2_rec = 0.6;
  c.train.l1_out = 0.7, c.train.l2_out = 0.8, c.train.l1_free = 0.9, c.train.l2_free = 1.1;
  c.train.l2_firing_rate = 1.3;
  ReplicaModel m = test::model_of(c);
  for (int j = 0; j < 8; ++j) m.tensor(Tensor::a)[j] = 0.1 * j - 0.3;
  const Batch batch = test::batch_of(c, 0);
  cpu::ReplicaTrainer<double> trainer(m);
  const cpu::PassResult p = trainer.loss_and_grad(batch, 0, false);
  auto means = [](const std::vector<double>& w) {
    double a = 0, q = 0;
    for (double x : w) a += std::fabs(x), q += x * x;
    return std::pair{a / w.size(), q / w.size()};
  };
  const auto [a_in, q_in] = means(m.effective_w_in());
  const auto [a_rec, q_rec] = means(m.effective_w_rec());
  std::vector<double> w_out(m.tensor(Tensor::W_out), m.tensor(Tensor::W_out) + m.layout[Tensor::W_out].size());
  const auto [a_out, q_out] = means(w_out);
  const std::vector<double> al = m.alpha_units();
  std::vector<double> free(64);
  for (size_t k = 0; k < 64; ++k) free[k] = (1 - al[k % 8]) * m.tensor(Tensor::W_free)[k] * m.mask_rec[k];
  const auto [a_free, q_free] = means(free);
  double rate_sq = 0;
  for (double r : trainer.rates()) rate_sq += r * r;
  rate_sq /= trainer.rates().size();
  const double want[kCostCount] = {0.3 * a_in,  0.4 * q_in,  0.5 * a_rec,  0.6 * q_rec, 0.7 * a_out,
                                   0.8 * q_out, 0.9 * a_free, 1.1 * q_free, 1.3 * rate_sq};
  for (int k = 0; k < kCostCount; ++k) {
    EXPECT_NEAR(p.cost[k], want[k], 1e-12 * std::fabs(want[k])) << kCostFields[k].key;
    EXPECT_GT(want[k], 0) << kCostFields[k].key;
  }
  EXPECT_NEAR(p.total() - p.loss, std::accumulate(want, want + kCostCount, 0.0), 1e-12);
}

// A cost on W_free alone pushes alpha up: with the task loss out of the picture (lr = 0 for the
// weights, lr_alpha > 0), alpha only rises.
TEST(Formulations, FreeCostRaisesAlpha) {
  ReplicaConfig c = test::tiny_config(Arch::mix, 10, 3);
  c.model.alpha_per = AlphaPer::neuron;
  c.train.l2_free = 10.0;
  c.train.optimizer = Optim::sgd;
  c.train.momentum = 0;
  c.train.lr = 1e-12;
  c.train.lr_alpha = 0.5;
  c.train.clip = 0;
  ReplicaConfig no_cost = c;
  no_cost.train.l2_free = 0;
  const Trained with = train({c}, 10), without = train({no_cost}, 10);
  const std::vector<double> a1 = with.models[0].alpha_units(), a0 = without.models[0].alpha_units();
  double rise = 0;
  for (int j = 0; j < 10; ++j) rise += a1[j] - a0[j];
  EXPECT_GT(rise, 0.01);
}

// Pruned connections stay zero through training under every rule: in W_free, W_dale (raw) and the
// effective matrix; the fraction removed is as asked.
TEST(Formulations, PrunedWeightsStayZeroUnderEveryRule) {
  for (Rule rule : {Rule::gd, Rule::eg, Rule::gd_sign, Rule::md}) {
    ReplicaConfig c = test::tiny_config(Arch::mix, 12, 40);
    c.train.rule = rule;
    c.train.optimizer = Optim::adam;
    c.train.lr = 0.02;
    ReplicaModel m = test::model_of(c);
    const std::vector<double> before = m.effective_w_rec();
    const double density0 = recurrent_density(m);
    const std::size_t removed = prune_recurrent(m, 0.25);
    EXPECT_EQ(removed, static_cast<std::size_t>(std::llround(0.25 * density0 * 144)));
    EXPECT_NEAR(recurrent_density(m), density0 * 0.75, 1.0 / 144);
    // The removed ones are the smallest in magnitude.
    double largest_removed = 0, smallest_kept = 1e300;
    for (size_t k = 0; k < 144; ++k) {
      if (before[k] == 0 && m.mask_rec[k] == 0) continue;
      if (m.mask_rec[k] == 0) largest_removed = std::max(largest_removed, std::fabs(before[k]));
      else smallest_kept = std::min(smallest_kept, std::fabs(before[k]));
    }
    EXPECT_LE(largest_removed, smallest_kept);
    BackendOptions opt;
    opt.n_threads = 1;
    auto backend = make_cpu_backend(opt);
    std::vector<ReplicaModel> models{m};
    backend->upload(models);
    auto task = test::task_of(c);
    Batch batch;
    std::vector<const Batch*> ptrs{&batch};
    for (int it = 0; it < 20; ++it) {
      task->generate(c.data_seed, it, c.task.batch, batch);
      backend->train_step(it, ptrs, nullptr);
    }
    backend->download(models);
    const ReplicaModel& after = models[0];
    const std::vector<double> w = after.effective_w_rec();
    int changed = 0;
    for (size_t k = 0; k < 144; ++k) {
      if (after.mask_rec[k] != 0) {
        changed += w[k] != before[k];
        continue;
      }
      EXPECT_EQ(w[k], 0.0) << to_string(rule) << " W_rec[" << k << "]";
      EXPECT_EQ(after.tensor(Tensor::W_free)[k], 0.0);
      EXPECT_EQ(after.tensor(Tensor::W_dale)[k], 0.0);
    }
    EXPECT_GT(changed, 50) << to_string(rule) << ": training did not move the kept weights";
  }
}

Sweep pruning_sweep(const std::string& extra) {
  return parse_sweep(R"(
name = "prune"
[model]
arch = "mix"
n_units = 12
[task]
name = "adding"
batch = 4
T = 6
[train]
n_steps = 12
log_every = 3
checkpoint_every = 4
prune_at = 2
prune_every = 4
prune_fraction = 0.2
)" + extra,
                     "prune.toml");
}

// Through the driver: density at the checkpoints falls at steps 2, 6, 10 by 20 % of what is left,
// and the pruned entries of W_rec are zero at every later checkpoint. (Resuming a pruned run:
// test_resume.cpp, whose sweep prunes.)
TEST(Formulations, DriverPrunesAtItsStepsAndRecordsDensity) {
  const Sweep sweep = pruning_sweep("");
  const std::string path = ::testing::TempDir() + "prune_run.h5";
  std::filesystem::remove(path);
  RunOptions opt;
  opt.output = path;
  opt.backend = "cpu";
  opt.n_threads = 1;
  std::ostringstream log;
  run_sweep(sweep, opt, log);
  const RunFile f = read_run_file(path);
  ASSERT_EQ(f.checkpoint_step, (std::vector<std::int64_t>{0, 4, 8, 12}));
  const std::vector<double>* density = f.checkpoint_metric("density");
  ASSERT_NE(density, nullptr);
  const double d0 = (*density)[0];
  EXPECT_LT(d0, 1.0);  // no autapses
  double present = std::llround(d0 * 144);
  std::vector<double> want{d0};
  for (int k = 0; k < 3; ++k) {  // pruned at 2 (before checkpoint 4), 6 (before 8), 10 (before 12)
    present -= std::llround(0.2 * present);
    want.push_back(present / 144);
  }
  for (int c = 0; c < 4; ++c) EXPECT_DOUBLE_EQ((*density)[c], want[c]) << "checkpoint " << c;
  const ReplicaWeights w4 = read_checkpoint_weights(path, 0, 1), w12 = read_checkpoint_weights(path, 0, 3);
  int zero4 = 0;
  for (size_t k = 0; k < 144; ++k)
    if (w4.W_rec[k] == 0) {
      ++zero4;
      EXPECT_EQ(w12.W_rec[k], 0.f) << "W_rec[" << k << "] came back";
    }
  EXPECT_EQ(zero4, 144 - std::llround(want[1] * 144));
}

// Bad combinations are refused with the key and what is allowed.
TEST(Formulations, BadValuesNameTheKeyAndTheRange) {
  auto message = [](const std::string& text) -> std::string {
    try {
      parse_sweep(text, "bad.toml");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(accepted)";
  };
  const std::string base = "[model]\narch = \"mix\"\n";
  EXPECT_NE(message(base + "alpha_init = 0.0\n").find("model.alpha_init"), std::string::npos);
  EXPECT_EQ(message(base + "alpha_init = 0.0\nalpha_form = \"clamp\"\n"), "(accepted)");
  EXPECT_NE(message(base + "alpha_per = \"synapse\"\n").find("\"network\", \"neuron\""), std::string::npos);
  EXPECT_NE(message(base + "dale_part = \"dann\"\n[train]\ndale = \"abs\"\n").find("train.dale"), std::string::npos);
  EXPECT_NE(message(base + "[train]\nprune_at = 600\nn_steps = 500\n").find("train.prune_at"), std::string::npos);
  EXPECT_NE(message(base + "[train]\nprune_fraction = 1.0\n").find("train.prune_fraction"), std::string::npos);
  EXPECT_NE(message(base + "[train]\nl1_free = -1\n").find("train.l1_free"), std::string::npos);
  EXPECT_NE(message("[model]\narch = \"dann\"\n[train]\nprune_at = 3\n").find("train.prune_at"), std::string::npos);
}

}  // namespace
}  // namespace dalesim

namespace dalesim {
namespace {

// The Dale metrics of a constructed matrix against a hand count: E columns 0, 1, I columns 2, 3.
// Column 0 obeys (+, +, 0, +), column 1 is mixed (+, -, +, +), column 2 is all wrong-signed
// (+, +, +, +: not mixed, not obeying), column 3 obeys (-, 0, -, -).
TEST(Formulations, DaleMetricsCountSignsAndColumns) {
  ReplicaConfig c = test::tiny_config(Arch::free, 4, 2);
  c.model.autapses = true;
  c.train.precision = Precision::f64;
  ReplicaModel m = test::model_of(c);
  ASSERT_EQ(m.col_sign, (std::vector<float>{1, 1, -1, -1}));
  const double w[16] = {0.5, 0.2, 0.1, -0.3,  //
                        0.4, -0.1, 0.2, 0.0,  //
                        0.0, 0.3, 0.3, -0.2,  //
                        0.1, 0.6, 0.4, -0.5};
  std::copy(w, w + 16, m.tensor(Tensor::W_free));
  cpu::ReplicaTrainer<double> trainer(m);
  const StepMetrics s = trainer.evaluate(test::batch_of(c, 0), 0);
  // Nonzero: 14; matching: col 0: 3, col 1: 3, col 2: 0, col 3: 3 -> 9.
  EXPECT_DOUBLE_EQ(s.dale_sign_match, 9.0 / 14);
  EXPECT_DOUBLE_EQ(s.dale_columns, 2.0 / 4);
  EXPECT_DOUBLE_EQ(s.dale_violation, 1.0 / 4);
}

}  // namespace
}  // namespace dalesim

namespace dalesim {
namespace {

// The mechanism's signals in the step metrics are the gradient's own: alpha's gradient summed over
// units, and the norms of the two parts' gradients (a fresh trainer's pass gives the reference).
TEST(Formulations, MechanismMetricsAreTheGradientsOwn) {
  for (AlphaPer per : {AlphaPer::network, AlphaPer::neuron}) {
    ReplicaConfig c = test::tiny_config(Arch::mix, 8, 13);
    c.model.alpha_per = per;
    c.train.precision = Precision::f64;
    const ReplicaModel m = test::model_of(c);
    const Batch batch = test::batch_of(c, 4);
    cpu::ReplicaTrainer<double> reference(m), trained(m);
    reference.loss_and_grad(batch, 4, true);
    const StepMetrics s = trained.train_step(batch, 4);
    double a = 0, dale = 0, free = 0;
    const std::vector<double>& g = reference.grad();
    for (size_t k = 0; k < m.layout[Tensor::a].size(); ++k) a += g[m.layout[Tensor::a].offset + k];
    for (size_t k = 0; k < m.layout[Tensor::W_dale].size(); ++k) dale += std::pow(g[m.layout[Tensor::W_dale].offset + k], 2);
    for (size_t k = 0; k < m.layout[Tensor::W_free].size(); ++k) free += std::pow(g[m.layout[Tensor::W_free].offset + k], 2);
    EXPECT_DOUBLE_EQ(s.alpha_grad, a);
    EXPECT_NEAR(s.grad_norm_dale, std::sqrt(dale), 1e-12 * std::sqrt(dale));
    EXPECT_NEAR(s.grad_norm_free, std::sqrt(free), 1e-12 * std::sqrt(free));
    EXPECT_GT(dale, 0);
    EXPECT_NE(a, 0);
  }
}

}  // namespace
}  // namespace dalesim

namespace dalesim {
namespace {

// The fixed-alpha scan: lr_alpha = 0 keeps every alpha exactly where it started (0 and 1
// included under the clamp form) while the weights train.
TEST(Formulations, ZeroAlphaLearningRateFixesAlpha) {
  std::vector<ReplicaConfig> cfgs;
  for (double a0 : {0.0, 0.3, 1.0})
    for (Optim opt : {Optim::sgd, Optim::adam}) {
      ReplicaConfig c = test::tiny_config(Arch::mix, 8, 20 + cfgs.size());
      c.model.alpha_form = AlphaForm::clamp;
      c.model.alpha_per = cfgs.size() % 2 ? AlphaPer::neuron : AlphaPer::network;
      c.model.alpha_init = a0;
      c.train.optimizer = opt;
      c.train.lr_alpha = 0;
      cfgs.push_back(c);
    }
  const Trained t = train(cfgs, 15);
  for (size_t r = 0; r < cfgs.size(); ++r) {
    // Trained in float: alpha is alpha_init rounded to float, exactly, at the end.
    for (double al : t.models[r].alpha_units()) EXPECT_EQ(al, double(float(cfgs[r].model.alpha_init))) << "replica " << r;
    EXPECT_NE(t.metrics.front()[r].loss, t.metrics.back()[r].loss) << "the weights did not train";
  }
  EXPECT_EQ(parse_sweep("[train]\nlr_alpha = 0.0\n", "fixed.toml").replicas[0].train.alpha_lr(), 0.0);
}

}  // namespace
}  // namespace dalesim
