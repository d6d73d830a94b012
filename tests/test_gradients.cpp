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
};

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
  cfg.model.alpha_init = 0.35;
  cfg.model.g = 1.3;
  if (gc.adding) test::use_adding(cfg, 6, 4);
  cfg.train.precision = Precision::f64;
  ReplicaModel model = test::model_of(cfg);
  // Nonzero biases so their gradients and the b path are exercised.
  for (Tensor t : {Tensor::b, Tensor::b_out})
    for (size_t k = 0; k < model.layout[t].size(); ++k) model.tensor(t)[k] = 0.1 * std::cos(3.0 * k + 1);
  const Batch batch = test::batch_of(cfg, 3);

  cpu::ReplicaTrainer<double> trainer(model);
  const double loss = trainer.loss_and_grad(batch, 3, true).loss;
  ASSERT_TRUE(std::isfinite(loss));
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
      const double up = trainer.loss_and_grad(batch, 3, false).loss;
      p = saved - h;
      const double down = trainer.loss_and_grad(batch, 3, false).loss;
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
  for (Tensor t : {Tensor::W_free, Tensor::W_dale})
    for (size_t k = 0; k < model.layout[t].size(); ++k) rec_norm += std::fabs(grad[model.layout[t].offset + k]);
  EXPECT_GT(rec_norm, 1e-8);
  if (gc.arch == Arch::mix) EXPECT_GT(std::fabs(grad[model.layout[Tensor::a].offset]), 1e-10);
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
        GradCase{"free_softplus_adding", Arch::free, Phi::softplus, 0.0, 1.0, Population::all, Population::all, true}),
    [](const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; });

}  // namespace
}  // namespace dalesim
