// BPTT gradients against central finite differences, in double, for every parameter of each arch.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu/replica_trainer.hpp"
#include "test_util.hpp"

namespace dalesim {
namespace {

struct GradCase {
  std::string name;
  Arch arch;
  Phi phi;
  double sigma_rec;
  double p_conn;
  Population readout, input_to;
  bool adding;
  // A cross-entropy task instead ("copy", "perceptual_dm_class", "context_dm_class"), or none.
  const char* ce_task = nullptr;
  DalePart dale_part = DalePart::colei;  // for mix
  AlphaPer alpha_per = AlphaPer::network;
  AlphaForm alpha_form = AlphaForm::sigmoid;
  DaleMode dale = DaleMode::clamp;
  bool costs = false;  // every cost of the loss, with different coefficients
};

// Tiny cross-entropy tasks: copy (every step scored), perceptual_dm in its class form, and
// context_dm in its class form with trials of different lengths (unscored steps at the end).
void use_cross_entropy_task(ReplicaConfig& cfg, const std::string& name) {
  cfg.task.params.clear();
  cfg.task.batch = 4;
  if (name == "copy") {
    cfg.task.name = "copy";
    cfg.task.params["T"] = Value{std::int64_t{2}};
  } else if (name == "perceptual_dm_class") {
    cfg.task.name = "perceptual_dm";
    cfg.task.params = {{"fixation_ms", Value{20.0}}, {"stimulus_ms", Value{40.0}}, {"decision_ms", Value{40.0}},
                       {"target", Value{std::string("class")}}};
  } else {
    cfg.task.name = "context_dm";
    cfg.task.params = {{"fixation_ms", Value{20.0}}, {"stimulus_ms", Value{40.0}},  {"delay_min_ms", Value{20.0}},
                       {"delay_mean_ms", Value{40.0}}, {"delay_max_ms", Value{100.0}}, {"decision_ms", Value{40.0}},
                       {"target", Value{std::string("class")}}};
  }
}

std::ostream& operator<<(std::ostream& os, const GradCase& c) { return os << c.name; }

class GradientCheck : public ::testing::TestWithParam<GradCase> {};

TEST_P(GradientCheck, MatchesCentralDifferences) {
  const GradCase& gc = GetParam();
  ReplicaConfig cfg = test::tiny_config(gc.arch, 6, 7);
  cfg.model.phi = gc.phi;
  cfg.model.sigma_rec = gc.sigma_rec;
  cfg.model.p_ee = cfg.model.p_ie = cfg.model.p_ei = cfg.model.p_ii = gc.p_conn;
  cfg.model.readout_from = gc.readout;
  cfg.model.input_to = gc.input_to;
  cfg.model.dale_part = gc.dale_part;
  cfg.model.dann_n_i = 2;  // more than one interneuron, so W_ei and W_ie are real matrices
  cfg.model.alpha_init = 0.35;
  cfg.model.alpha_per = gc.alpha_per;
  cfg.model.alpha_form = gc.alpha_form;
  cfg.train.dale = gc.dale;
  if (gc.costs) {
    double coef = 0.05;
    for (const CostField& c : kCostFields) cfg.train.*c.coefficient = (coef *= 1.3);
  }
  cfg.model.g = 1.3;
  if (gc.adding) test::use_adding(cfg, 6, 4);
  if (gc.ce_task) use_cross_entropy_task(cfg, gc.ce_task);
  cfg.train.precision = Precision::f64;
  ReplicaModel model = test::model_of(cfg);
  // Nonzero biases so their gradients and the b path are exercised.
  for (Tensor t : {Tensor::b, Tensor::b_out})
    for (size_t k = 0; k < model.layout[t].size(); ++k) model.tensor(t)[k] = 0.1 * std::cos(3.0 * k + 1);
  const Batch batch = test::batch_of(cfg, 3);
  if (gc.ce_task) ASSERT_EQ(batch.loss, LossKind::cross_entropy);
  // Per-neuron alphas that differ, so each alpha_j's gradient is its own.
  if (gc.alpha_per == AlphaPer::neuron)
    for (size_t j = 0; j < model.layout[Tensor::a].size(); ++j) {
      const double al = 0.2 + 0.6 * j / model.layout.N;
      model.tensor(Tensor::a)[j] = gc.alpha_form == AlphaForm::clamp ? al : std::log(al / (1 - al));
    }

  // Raw W_dale of both signs under abs (sign x |raw|), so both branches of its derivative count.
  if (gc.dale == DaleMode::abs)
    for (size_t k = 0; k < model.layout[Tensor::W_dale].size(); k += 3) model.tensor(Tensor::W_dale)[k] *= -1;

  cpu::ReplicaTrainer<double> trainer(model);
  const cpu::PassResult first = trainer.loss_and_grad(batch, 3, true);
  const double loss = first.total();  // the gradient is of the task loss plus the costs
  ASSERT_TRUE(std::isfinite(loss));
  if (gc.costs)
    for (const CostField& c : kCostFields)
      if (c.cost != Cost::l1_free && c.cost != Cost::l2_free) {
        EXPECT_GT(first.cost[static_cast<int>(c.cost)], 0) << c.key;
      } else if (model.layout.has(Tensor::W_free)) {
        EXPECT_GT(first.cost[static_cast<int>(c.cost)], 0) << c.key;
      }
  const std::vector<double> grad = trainer.grad();
  const double h = 1e-6;
  double max_err = 0;
  int n_checked = 0;
  for (int t = 0; t < kTensorCount; ++t) {
    const TensorSlot& slot = model.layout.slots[t];
    for (size_t k = slot.offset; k < slot.offset + slot.size(); ++k) {
      double& p = trainer.params()[k];
      const double saved = p;
      p = saved + h;
      const double up = trainer.loss_and_grad(batch, 3, false).total();
      p = saved - h;
      const double down = trainer.loss_and_grad(batch, 3, false).total();
      p = saved;
      const double fd = (up - down) / (2 * h);
      const double err = std::fabs(fd - grad[k]) / std::max(1e-4, std::fabs(fd) + std::fabs(grad[k]));
      max_err = std::max(max_err, err);
      EXPECT_LT(err, 1e-5) << to_string(static_cast<Tensor>(t)) << "[" << k - slot.offset << "]: bptt " << grad[k]
                           << " vs finite difference " << fd;
      ++n_checked;
    }
  }
  EXPECT_EQ(static_cast<size_t>(n_checked), model.layout.size);
  // The check must have had something to check: a nonzero gradient on the recurrent weights.
  double rec_norm = 0;
  for (Tensor t : {Tensor::W_free, Tensor::W_dale, Tensor::W_ei, Tensor::W_ie})
    for (size_t k = 0; k < model.layout[t].size(); ++k) rec_norm += std::fabs(grad[model.layout[t].offset + k]);
  EXPECT_GT(rec_norm, 1e-8);
  if (gc.arch == Arch::mix)
    for (size_t j = 0; j < model.layout[Tensor::a].size(); ++j)
      EXPECT_GT(std::fabs(grad[model.layout[Tensor::a].offset + j]), 1e-10) << "a[" << j << "]";
  if (gc.alpha_per == AlphaPer::neuron) EXPECT_EQ(model.layout[Tensor::a].size(), size_t(model.layout.N));
}

INSTANTIATE_TEST_SUITE_P(
    AllArchs, GradientCheck,
    ::testing::Values(
        GradCase{"free_tanh", Arch::free, Phi::tanh, 0.0, 1.0, Population::all, Population::all, false},
        GradCase{"colei_tanh", Arch::colei, Phi::tanh, 0.0, 1.0, Population::all, Population::all, false},
        GradCase{"mix_tanh", Arch::mix, Phi::tanh, 0.0, 1.0, Population::all, Population::all, false},
        GradCase{"mix_relu", Arch::mix, Phi::relu, 0.0, 1.0, Population::all, Population::all, false},
        GradCase{"mix_softplus_noise", Arch::mix, Phi::softplus, 0.3, 1.0, Population::all, Population::all, false},
        GradCase{"mix_sigmoid_sparse", Arch::mix, Phi::sigmoid, 0.0, 0.6, Population::exc, Population::exc, false},
        GradCase{"colei_relu_adding", Arch::colei, Phi::relu, 0.1, 0.8, Population::exc, Population::all, true},
        GradCase{"free_softplus_adding", Arch::free, Phi::softplus, 0.0, 1.0, Population::all, Population::all, true},
        GradCase{"mix_tanh_copy_xent", Arch::mix, Phi::tanh, 0.0, 1.0, Population::all, Population::all, false,
                 "copy"},
        GradCase{"colei_softplus_dm_xent", Arch::colei, Phi::softplus, 0.2, 0.8, Population::exc, Population::all,
                 false, "perceptual_dm_class"},
        GradCase{"free_tanh_context_xent_ragged", Arch::free, Phi::tanh, 0.0, 1.0, Population::all, Population::all,
                 false, "context_dm_class"},
        GradCase{"dann_tanh", Arch::dann, Phi::tanh, 0.0, 1.0, Population::all, Population::all, false},
        GradCase{"dann_relu_sparse_adding", Arch::dann, Phi::relu, 0.1, 0.7, Population::all, Population::all, true},
        GradCase{"mix_dann_softplus", Arch::mix, Phi::softplus, 0.0, 1.0, Population::all, Population::all, false,
                 nullptr, DalePart::dann},
        GradCase{"dann_tanh_dm_xent", Arch::dann, Phi::tanh, 0.0, 1.0, Population::all, Population::all, false,
                 "perceptual_dm_class"},
        // The formulations: alpha per neuron and its clamp form, reparameterised Dale, the costs.
        GradCase{"mix_tanh_alpha_per_neuron", Arch::mix, Phi::tanh, 0.0, 1.0, Population::all, Population::all,
                 false, nullptr, DalePart::colei, AlphaPer::neuron},
        GradCase{"mix_softplus_alpha_per_neuron_clamp", Arch::mix, Phi::softplus, 0.1, 0.8, Population::all,
                 Population::all, true, nullptr, DalePart::colei, AlphaPer::neuron, AlphaForm::clamp},
        GradCase{"mix_tanh_alpha_clamp", Arch::mix, Phi::tanh, 0.0, 1.0, Population::all, Population::all, false,
                 nullptr, DalePart::colei, AlphaPer::network, AlphaForm::clamp},
        GradCase{"mix_dann_alpha_per_neuron", Arch::mix, Phi::tanh, 0.0, 1.0, Population::all, Population::all,
                 false, nullptr, DalePart::dann, AlphaPer::neuron},
        GradCase{"colei_tanh_dale_abs", Arch::colei, Phi::tanh, 0.0, 0.8, Population::all, Population::all, false,
                 nullptr, DalePart::colei, AlphaPer::network, AlphaForm::sigmoid, DaleMode::abs},
        GradCase{"mix_softplus_dale_relu", Arch::mix, Phi::softplus, 0.0, 1.0, Population::all, Population::all,
                 true, nullptr, DalePart::colei, AlphaPer::network, AlphaForm::sigmoid, DaleMode::relu},
        GradCase{"mix_tanh_neuron_abs", Arch::mix, Phi::tanh, 0.0, 1.0, Population::all, Population::all, false,
                 nullptr, DalePart::colei, AlphaPer::neuron, AlphaForm::sigmoid, DaleMode::abs},
        GradCase{"mix_tanh_costs", Arch::mix, Phi::tanh, 0.0, 0.8, Population::exc, Population::exc, false,
                 nullptr, DalePart::colei, AlphaPer::network, AlphaForm::sigmoid, DaleMode::clamp, true},
        GradCase{"mix_softplus_neuron_clamp_costs_xent", Arch::mix, Phi::softplus, 0.2, 1.0, Population::all,
                 Population::all, false, "perceptual_dm_class", DalePart::colei, AlphaPer::neuron, AlphaForm::clamp,
                 DaleMode::clamp, true},
        GradCase{"free_tanh_costs", Arch::free, Phi::tanh, 0.0, 1.0, Population::all, Population::all, true,
                 nullptr, DalePart::colei, AlphaPer::network, AlphaForm::sigmoid, DaleMode::clamp, true},
        GradCase{"dann_tanh_costs", Arch::dann, Phi::tanh, 0.0, 1.0, Population::all, Population::all, false,
                 nullptr, DalePart::colei, AlphaPer::network, AlphaForm::sigmoid, DaleMode::clamp, true}),
    [](const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; });

}  // namespace
}  // namespace dalesim

namespace dalesim {
namespace {

// The cross-entropy value and both accuracy forms against a hand computation: with W_out = 0 the
// outputs are b_out at every step, so each scored step costs log sum exp(b_out) - b_out[target].
TEST(CrossEntropy, LossAndAccuracyMatchAHandComputation) {
  ReplicaConfig cfg = test::tiny_config(Arch::free, 6, 3);
  cfg.train.precision = Precision::f64;
  use_cross_entropy_task(cfg, "copy");
  ReplicaModel model = test::model_of(cfg);
  const TensorSlot& w_out = model.layout[Tensor::W_out];
  for (size_t k = 0; k < w_out.size(); ++k) model.tensor(Tensor::W_out)[k] = 0;
  const double b_out[10] = {0.3, -1.0, 0.5, 2.0, 0.1, -0.4, 0.0, 0.7, 1.1, -2.0};  // argmax: class 3
  for (int o = 0; o < 10; ++o) model.tensor(Tensor::b_out)[o] = b_out[o];
  const Batch batch = test::batch_of(cfg, 1);
  double lse = 0;
  for (double z : b_out) lse += std::exp(z);
  lse = std::log(lse);
  double want = 0;
  int n = 0, threes = 0, recalls = 0;
  for (std::size_t r = 0; r < batch.target.size(); ++r) {
    want += lse - b_out[batch.target[r]];
    ++n;
    if (batch.acc_label[r] >= 0) ++recalls, threes += batch.acc_label[r] == 3;
  }
  cpu::ReplicaTrainer<double> trainer(model);
  const cpu::PassResult res = trainer.loss_and_grad(batch, 1, true);
  EXPECT_EQ(n, 22 * 4);
  EXPECT_NEAR(res.loss, want / n, 1e-12);
  EXPECT_DOUBLE_EQ(res.accuracy, double(threes) / recalls);
  // d loss / d b_out[o] = mean over scored steps of softmax(b_out)[o] - [target == o].
  for (int o = 0; o < 10; ++o) {
    double g = 0;
    for (int c : batch.target) g += std::exp(b_out[o] - lse) - (c == o);
    EXPECT_NEAR(trainer.grad()[model.layout[Tensor::b_out].offset + o], g / n, 1e-12);
  }
  // Unscored steps cost nothing: marking half the steps -1 leaves the mean over the rest.
  Batch half = batch;
  double want_half = 0;
  int n_half = 0;
  for (std::size_t r = 0; r < half.target.size(); ++r) {
    if (r % 2) {
      half.target[r] = -1;
      continue;
    }
    want_half += lse - b_out[half.target[r]];
    ++n_half;
  }
  EXPECT_NEAR(trainer.loss_and_grad(half, 1, false).loss, want_half / n_half, 1e-12);
  // A target outside the outputs is an error, not a read past the row.
  Batch bad = batch;
  bad.target[5] = 10;
  EXPECT_THROW(trainer.loss_and_grad(bad, 1, false), std::invalid_argument);
}

}  // namespace
}  // namespace dalesim
