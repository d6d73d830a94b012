// GPU tests (CTest label `gpu`): the CUDA backend held to the CPU reference, run-to-run bitwise
// repeatability, alone-vs-in-bucket identity, divergence freezing. Skipped, naming the CUDA error,
// when no device is usable.
#include <gtest/gtest.h>

#include <cmath>

#include "cuda/dispatch.hpp"
#include "dalesim/backend.hpp"
#include "test_util.hpp"
#include "train/evaluation.hpp"
#ifdef DALESIM_GPU_TESTS_ON_HOST
#include "cuda/simt/control.hpp"
#endif

namespace dalesim {
namespace {

using RunOut = test::SplitRun;  // metrics[step][replica], the models after the last step, diverged steps

RunOut run_backend(const std::string& kind, const std::string& gemm, const std::vector<ReplicaConfig>& cfgs, int steps) {
  return test::run_split(
      [&] {
        BackendOptions opt;
        opt.n_threads = 2;
        opt.cuda_gemm = gemm;
        return kind == "cpu" ? make_cpu_backend(opt) : make_cuda_backend(opt);
      },
      cfgs, steps);
}

// Which parameterisations a case cycles through.
enum class Archs {
  classic,  // free, colei, mix (colei Dale part)
  dann,     // arch dann, mix with dale_part dann
  all,      // the five above
};

struct ArchKind {
  Arch arch;
  DalePart part;
};

std::vector<ArchKind> arch_kinds(Archs set) {
  const std::vector<ArchKind> classic = {{Arch::free, DalePart::colei}, {Arch::colei, DalePart::colei},
                                         {Arch::mix, DalePart::colei}};
  const std::vector<ArchKind> dann = {{Arch::dann, DalePart::colei}, {Arch::mix, DalePart::dann}};
  if (set == Archs::classic) return classic;
  if (set == Archs::dann) return dann;
  std::vector<ArchKind> all = classic;
  all.insert(all.end(), dann.begin(), dann.end());
  return all;
}

// n replicas cycling through archs, sizes (two shapes per arch) and optimisers; every third
// replica scores perceptual_dm in its class form (softmax cross-entropy, per-step accuracy).
// With `formulations`, the options of the formulations cycle too: alpha per network / per neuron,
// sigmoid / clamp form, train.dale clamp / abs / relu (ColEI parts), and the costs of the loss.
std::vector<ReplicaConfig> replicas(int n, bool mixed_shapes, Optim opt, Archs set = Archs::classic,
                                    Rule rule = Rule::gd, double weight_decay = 0, bool formulations = false) {
  std::vector<ReplicaConfig> cfgs;
  const std::vector<ArchKind> kinds = arch_kinds(set);
  for (int r = 0; r < n; ++r) {
    const ArchKind& kind = kinds[r % kinds.size()];
    ReplicaConfig c = test::tiny_config(kind.arch, mixed_shapes && r % 2 ? 40 : 24, 500 + r);
    c.model.dale_part = kind.part;
    c.train.rule = rule;
    c.train.eg_split_bias = r % 2 == 0;  // EG's split biases on half of the replicas
    c.train.weight_decay = weight_decay;
    c.id = r;
    c.task.batch = 8;
    c.train.optimizer = opt;
    c.train.lr = opt == Optim::sgd ? 0.02 : 2e-3;
    c.model.sigma_rec = r % 4 == 0 ? 0.05 : 0.0;
    c.model.phi = r % 5 == 0 ? Phi::tanh : Phi::relu;
    if (r % 3 == 1) c.task.params["target"] = Value{std::string("class")};
    if (formulations) {
      c.model.alpha_per = r % 2 ? AlphaPer::neuron : AlphaPer::network;
      c.model.alpha_form = r % 3 == 0 ? AlphaForm::clamp : AlphaForm::sigmoid;
      c.train.lr_alpha = 0.05;
      if (!c.model.dann_part()) c.train.dale = static_cast<DaleMode>((r / 2) % 3);
      if (r % 4 != 3) {
        const double on = 1 + r % 3;
        c.train.l1_in = 1e-3 * (r % 3), c.train.l2_in = 3e-3 * on, c.train.l1_rec = 5e-3 * on;
        c.train.l2_rec = 1e-2 * on, c.train.l1_out = 2e-3, c.train.l2_out = 1e-2 * (r % 2);
        c.train.l1_free = 1e-2 * (r % 2), c.train.l2_free = 2e-2 * on, c.train.l2_firing_rate = 1e-2 * on;
      }
    }
    cfgs.push_back(c);
  }
  return cfgs;
}

std::vector<ReplicaModel> models_of(const std::vector<ReplicaConfig>& cfgs) {
  std::vector<ReplicaModel> models;
  for (const auto& c : cfgs) models.push_back(test::model_of(c));
  return models;
}

std::vector<Batch> batches_of(const std::vector<ReplicaConfig>& cfgs, std::int64_t iteration) {
  std::vector<Batch> batches;
  for (const auto& c : cfgs) batches.push_back(test::batch_of(c, iteration));
  return batches;
}

class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    device_ = query_cuda_device();
    if (!device_.usable) GTEST_SKIP() << "no usable CUDA device: " << device_.reason;
  }
  CudaDeviceInfo device_;
};

// As the CPU test in test_training.cpp: the state the CUDA backend downloads is all it needs, so a
// run continued by a fresh backend from it (--resume) equals an uninterrupted one bit for bit.
TEST_F(Gpu, ContinuingFromDownloadedStateIsBitwiseUninterrupted) {
  for (Optim opt : {Optim::sgd, Optim::adam}) {
    const std::vector<ReplicaConfig> cfgs = replicas(33, true, opt, Archs::all, opt == Optim::sgd ? Rule::eg : Rule::gd);
    auto make = [] { return make_cuda_backend(BackendOptions{}); };
    const test::SplitRun straight = test::run_split(make, cfgs, 9), resumed = test::run_split(make, cfgs, 9, 4);
    EXPECT_EQ(resumed.diverged, straight.diverged);
    for (std::size_t r = 0; r < cfgs.size(); ++r) {
      EXPECT_EQ(resumed.models[r].params, straight.models[r].params) << to_string(opt) << " replica " << r;
      EXPECT_EQ(resumed.models[r].moment1, straight.models[r].moment1) << to_string(opt) << " replica " << r;
      EXPECT_EQ(resumed.models[r].moment2, straight.models[r].moment2) << to_string(opt) << " replica " << r;
      EXPECT_EQ(resumed.models[r].adam_steps, straight.models[r].adam_steps);
      for (std::size_t s = 0; s < straight.metrics.size(); ++s)
        EXPECT_EQ(resumed.metrics[s][r].loss, straight.metrics[s][r].loss) << to_string(opt) << " replica " << r;
    }
  }
}

struct AgreeCase {
  int n;
  bool mixed_shapes;
  std::string gemm;
  Optim opt;
  Archs archs = Archs::classic;
  Rule rule = Rule::gd;
  double weight_decay = 0;
  // Relative tolerance of losses, gradient norms and rates, and of the parameters against the
  // largest parameter; the reason is written beside each case.
  double tol = 1e-4, param_tol = 1e-4;
  bool formulations = false;
  CudaKernel kernel = CudaKernel::v1;  // train.kernel of every replica
  int batch = 8;                       // 2: v2 packs several replicas into a block
};

// Every case once per kernel variant: the same tolerance holds, since v2 sums each output of the
// recurrent products in the order of v1's tiled kernel (and equals it bitwise, tested below).
std::vector<AgreeCase> for_each_kernel(const std::vector<AgreeCase>& cases) {
  std::vector<AgreeCase> out;
  for (CudaKernel k : {CudaKernel::v1, CudaKernel::v2})
    for (AgreeCase c : cases) {
      c.kernel = k;
      out.push_back(c);
    }
  return out;
}

// train.kernel and task.batch of every replica.
std::vector<ReplicaConfig> with_kernel(std::vector<ReplicaConfig> cfgs, CudaKernel kernel, int batch = 8) {
  for (auto& c : cfgs) {
    c.train.kernel = kernel;
    c.task.batch = batch;
  }
  return cfgs;
}

const char* archs_name(Archs a) { return a == Archs::classic ? "classic" : a == Archs::dann ? "dann" : "all"; }

void PrintTo(const AgreeCase& c, std::ostream* os) {
  *os << c.n << " replicas, " << (c.mixed_shapes ? "mixed shapes, " : "") << c.gemm << ", " << to_string(c.opt)
      << ", " << archs_name(c.archs) << ", rule " << to_string(c.rule) << ", weight decay " << c.weight_decay
      << ", kernel " << to_string(c.kernel) << ", batch " << c.batch;
}

std::string case_name(const ::testing::TestParamInfo<AgreeCase>& i) {
  const AgreeCase& c = i.param;
  std::string name = "r" + std::to_string(c.n) + (c.mixed_shapes ? "_mixed_" : "_") + c.gemm + "_" + to_string(c.opt);
  if (c.archs != Archs::classic) name += std::string("_") + archs_name(c.archs);
  if (c.rule != Rule::gd) name += std::string("_") + to_string(c.rule);
  if (c.weight_decay != 0) name += "_decay";
  if (c.formulations) name += "_formulations";
  name += std::string("_") + to_string(c.kernel);
  if (c.batch != 8) name += "_b" + std::to_string(c.batch);
  return name;
}

class GpuAgreement : public Gpu, public ::testing::WithParamInterface<AgreeCase> {};

// Tolerance: both sides are FP32 but sum in different orders (BLAS vs the tiled kernel or cuBLAS),
// ~1e-7 relative per product; over 6 steps of T = 5 recurrences and 6 updates that stays below
// 1e-4 relative in the loss and 1e-4 of the weight scale in the parameters.
TEST_P(GpuAgreement, MatchesCpuReference) {
  const AgreeCase& c = GetParam();
  const auto cfgs =
      with_kernel(replicas(c.n, c.mixed_shapes, c.opt, c.archs, c.rule, c.weight_decay, c.formulations), c.kernel, c.batch);
  if (c.batch < 8 && c.kernel == CudaKernel::v2)  // the case is there for the packed blocks
    ASSERT_GT(cuda::plan_kernel(c.kernel, cfgs[0].model.n_units, c.batch).replicas_per_block, 1);
  const RunOut cpu = run_backend("cpu", "tiled", cfgs, 6), gpu = run_backend("cuda", c.gemm, cfgs, 6);
  int costs_seen = 0;
  for (size_t s = 0; s < cpu.metrics.size(); ++s)
    for (int r = 0; r < c.n; ++r) {
      const StepMetrics &a = cpu.metrics[s][r], &b = gpu.metrics[s][r];
      ASSERT_NEAR(a.loss, b.loss, c.tol * std::fabs(a.loss) + 1e-7) << "step " << s << " replica " << r;
      EXPECT_NEAR(a.grad_norm, b.grad_norm, c.tol * a.grad_norm + 1e-7) << "step " << s << " replica " << r;
      EXPECT_NEAR(a.mean_rate, b.mean_rate, c.tol * std::fabs(a.mean_rate) + 1e-7);
      EXPECT_EQ(a.dale_violation, b.dale_violation);
      // A weight within rounding of 0 may have its sign on one side only.
      EXPECT_NEAR(a.dale_sign_match, b.dale_sign_match, 2.0 / (24 * 24)) << "step " << s << " replica " << r;
      EXPECT_NEAR(a.dale_columns, b.dale_columns, 1.0 / 24 + 1e-12) << "step " << s << " replica " << r;
      if (std::isnan(a.accuracy)) EXPECT_TRUE(std::isnan(b.accuracy));
      else EXPECT_NEAR(a.accuracy, b.accuracy, 1.0 / 8) << "one decision may flip on a near-tie";
      for (double StepMetrics::*m : {&StepMetrics::grad_norm_dale, &StepMetrics::grad_norm_free}) {
        if (std::isnan(a.*m)) EXPECT_TRUE(std::isnan(b.*m)) << "step " << s << " replica " << r;
        else EXPECT_NEAR(a.*m, b.*m, c.tol * (a.*m) + 1e-7) << "step " << s << " replica " << r;
      }
      // alpha's gradient is a sum of terms of both signs: held to the gradient norm's scale.
      if (std::isnan(a.alpha_grad)) EXPECT_TRUE(std::isnan(b.alpha_grad));
      else EXPECT_NEAR(a.alpha_grad, b.alpha_grad, c.tol * a.grad_norm + 1e-7) << "step " << s << " replica " << r;
      for (double StepMetrics::*m : {&StepMetrics::alpha, &StepMetrics::alpha_e, &StepMetrics::alpha_i}) {
        if (std::isnan(a.*m)) EXPECT_TRUE(std::isnan(b.*m)) << "step " << s << " replica " << r;
        else EXPECT_NEAR(a.*m, b.*m, 1e-5) << "step " << s << " replica " << r;
      }
      for (const CostField& f : kCostFields) {
        EXPECT_NEAR(a.*f.metric, b.*f.metric, c.tol * std::fabs(a.*f.metric) + 1e-9) << f.key << " step " << s << " replica " << r;
        costs_seen += a.*f.metric != 0;
      }
    }
  if (c.formulations) EXPECT_GT(costs_seen, 0);
  for (int r = 0; r < c.n; ++r) {
    // The downloaded training state (resume) is the CPU's.
    EXPECT_EQ(gpu.models[r].adam_steps, cpu.models[r].adam_steps) << "replica " << r;
    EXPECT_EQ(gpu.diverged[r], cpu.diverged[r]) << "replica " << r;
    double scale = 0, diff = 0;
    for (size_t k = 0; k < cpu.models[r].params.size(); ++k) {
      scale = std::max(scale, std::fabs(cpu.models[r].params[k]));
      diff = std::max(diff, std::fabs(cpu.models[r].params[k] - gpu.models[r].params[k]));
    }
    EXPECT_LE(diff, c.param_tol * scale) << "replica " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GpuAgreement,
    ::testing::ValuesIn(for_each_kernel({AgreeCase{1, false, "tiled", Optim::sgd}, AgreeCase{31, false, "tiled", Optim::sgd},
                                         AgreeCase{32, true, "tiled", Optim::adam}, AgreeCase{33, true, "tiled", Optim::sgd},
                                         AgreeCase{300, true, "tiled", Optim::adam}, AgreeCase{33, true, "cublas", Optim::sgd},
                                         AgreeCase{300, false, "cublas", Optim::adam}})),
    case_name);

// v2 with several replicas per block (batch 2: 5 replicas of N = 24, 3 of N = 40 per block), the
// last block part-filled for 1, 31, 32, 33 and 300 replicas, every arch and rule.
INSTANTIATE_TEST_SUITE_P(
    PackedV2, GpuAgreement,
    ::testing::Values(
        AgreeCase{1, false, "tiled", Optim::sgd, Archs::all, Rule::gd, 0, 1e-4, 1e-4, false, CudaKernel::v2, 2},
        AgreeCase{31, true, "tiled", Optim::adam, Archs::all, Rule::eg, 1e-3, 1e-4, 1e-4, true, CudaKernel::v2, 2},
        AgreeCase{32, true, "cublas", Optim::sgd, Archs::all, Rule::gd_sign, 1e-3, 1e-4, 1e-4, false, CudaKernel::v2, 2},
        AgreeCase{33, true, "tiled", Optim::sgd, Archs::all, Rule::md, 1e-3, 3e-4, 1e-3, false, CudaKernel::v2, 2},
        AgreeCase{300, true, "tiled", Optim::adam, Archs::all, Rule::gd, 0, 1e-4, 1e-4, true, CudaKernel::v2, 2}),
    case_name);

// The DANN part (arch dann; mix with dale_part dann) and the learning rules, each with weight decay.
INSTANTIATE_TEST_SUITE_P(
    DannAndRules, GpuAgreement,
    ::testing::ValuesIn(for_each_kernel({
        // DANN: two or four more FP32 products per pass (W_ei W_ie, U_ei U_ie and their gradients),
        // each as rounded as the others (inner dimension <= N), and the non-negativity clamp only
        // moves values already within rounding of 0: same 1e-4 as the colei part.
        AgreeCase{1, false, "tiled", Optim::sgd, Archs::dann},
        AgreeCase{33, true, "tiled", Optim::sgd, Archs::dann},
        AgreeCase{32, true, "tiled", Optim::adam, Archs::dann},
        AgreeCase{33, true, "cublas", Optim::adam, Archs::dann},
        // gd + decay: one more FP32 multiply-add per weight per step: 1e-4.
        AgreeCase{31, true, "tiled", Optim::sgd, Archs::all, Rule::gd, 1e-3},
        // eg + decay (lambda sign(w)): expf is within 2 ulp on the device, against glibc's
        // correctly rounded expf: ~1e-7 relative per step, far below 1e-4.
        AgreeCase{31, true, "tiled", Optim::sgd, Archs::all, Rule::eg, 1e-3},
        AgreeCase{33, true, "tiled", Optim::adam, Archs::all, Rule::eg, 1e-3},
        // gd_sign + decay: a weight that crosses zero on one side only is reset to +-1e-18 there
        // and lands within one step's rounding of 0 on the other: an absolute difference of the
        // order of lr |m| eps, far below 1e-4 of the largest weight.
        AgreeCase{31, true, "tiled", Optim::sgd, Archs::all, Rule::gd_sign, 1e-3},
        AgreeCase{33, true, "tiled", Optim::adam, Archs::all, Rule::gd_sign, 1e-3},
        // md (p = 3) + decay: powf is within a few ulp on the device, but w = sign(y) |y|^(1/2)
        // has an unbounded slope at y = 0, so a weight whose dual coordinate y lands within
        // rounding of 0 differs by up to sqrt(1e-7 |y|max) ~ 3e-5 of the weight scale per step:
        // 1e-3 for the parameters, 3e-4 for the losses they drive.
        AgreeCase{31, true, "tiled", Optim::sgd, Archs::all, Rule::md, 1e-3, 3e-4, 1e-3},
        AgreeCase{33, true, "cublas", Optim::sgd, Archs::all, Rule::md, 1e-3, 3e-4, 1e-3}})),
    case_name);

// The formulations (alpha per neuron and its clamp form, abs / relu Dale parts, every cost), over
// every arch and rule: the costs add one elementwise FP32 term per weight (in double, rounded
// once, as on the CPU), and the per-neuron alpha sums are in the CPU's order: the same 1e-4.
INSTANTIATE_TEST_SUITE_P(
    Formulations, GpuAgreement,
    ::testing::ValuesIn(for_each_kernel({AgreeCase{1, false, "tiled", Optim::adam, Archs::classic, Rule::gd, 0, 1e-4, 1e-4, true},
                                         AgreeCase{31, true, "tiled", Optim::sgd, Archs::all, Rule::gd, 0, 1e-4, 1e-4, true},
                                         AgreeCase{33, true, "cublas", Optim::adam, Archs::all, Rule::gd, 0, 1e-4, 1e-4, true},
                                         AgreeCase{32, true, "tiled", Optim::adam, Archs::all, Rule::eg, 1e-3, 1e-4, 1e-4, true},
                                         AgreeCase{33, true, "tiled", Optim::sgd, Archs::all, Rule::gd_sign, 0, 1e-4, 1e-4, true}})),
    case_name);

// v2 sums every output of the recurrent products as v1's tiled kernel does (fmaf over the inner
// index in order, then added to the output), and the elementwise step is the same function: with
// the tiled products the two variants agree bit for bit, on every arch and rule, packed or not.
TEST_F(Gpu, V2EqualsV1BitwiseWithTiledProducts) {
  for (int batch : {8, 2}) {
    const auto cfgs = replicas(33, true, Optim::adam, Archs::all, Rule::eg, 1e-3, true);
    const RunOut a = run_backend("cuda", "tiled", with_kernel(cfgs, CudaKernel::v1, batch), 4);
    const RunOut b = run_backend("cuda", "tiled", with_kernel(cfgs, CudaKernel::v2, batch), 4);
    // Both kernels in one sweep (one bucket per shape and kernel): each replica as in its own run.
    std::vector<ReplicaConfig> mixed = with_kernel(cfgs, CudaKernel::v1, batch);
    for (size_t r = 0; r < mixed.size(); r += 2) mixed[r].train.kernel = r % 4 ? CudaKernel::v2 : CudaKernel::auto_select;
    const RunOut m = run_backend("cuda", "tiled", mixed, 4);
    for (size_t r = 0; r < cfgs.size(); ++r) {
      EXPECT_EQ(a.models[r].params, b.models[r].params) << "batch " << batch << " replica " << r;
      EXPECT_EQ(m.models[r].params, a.models[r].params) << "both kernels in one sweep, batch " << batch << " replica " << r;
      for (size_t s = 0; s < a.metrics.size(); ++s) {
        EXPECT_EQ(a.metrics[s][r].loss, b.metrics[s][r].loss) << "batch " << batch << " replica " << r;
        EXPECT_EQ(a.metrics[s][r].grad_norm, b.metrics[s][r].grad_norm) << "batch " << batch << " replica " << r;
      }
    }
  }
}

// The largest shape v2 takes (N = 240: 231,360 bytes of shared memory, over the default 48 KiB, so
// the kernels need the opt-in), against the CPU: 1e-4 as the cases above.
TEST_F(Gpu, V2AtItsLargestShapeMatchesCpu) {
  std::vector<ReplicaConfig> cfgs;
  for (int r = 0; r < 2; ++r) {
    ReplicaConfig c = test::tiny_config(r ? Arch::mix : Arch::colei, cuda::v2_max_units(), 900 + r);
    c.id = r;
    c.task.batch = 2;
    c.train.optimizer = Optim::adam;
    c.train.kernel = CudaKernel::v2;
    cfgs.push_back(c);
  }
  ASSERT_GT(cuda::plan_kernel(CudaKernel::v2, cuda::v2_max_units(), 2).shared_bytes, cuda::kSharedDefaultBytes);
  const RunOut cpu = run_backend("cpu", "tiled", cfgs, 3), gpu = run_backend("cuda", "tiled", cfgs, 3);
  for (size_t s = 0; s < cpu.metrics.size(); ++s)
    for (size_t r = 0; r < cfgs.size(); ++r)
      EXPECT_NEAR(cpu.metrics[s][r].loss, gpu.metrics[s][r].loss, 1e-4 * std::fabs(cpu.metrics[s][r].loss) + 1e-7);
  for (size_t r = 0; r < cfgs.size(); ++r) {
    double scale = 0, diff = 0;
    for (size_t k = 0; k < cpu.models[r].params.size(); ++k) {
      scale = std::max(scale, std::fabs(cpu.models[r].params[k]));
      diff = std::max(diff, std::fabs(cpu.models[r].params[k] - gpu.models[r].params[k]));
    }
    EXPECT_LE(diff, 1e-4 * scale) << "replica " << r;
  }
}

// What each replica runs (recorded in /replicas/kernel_used), and a forced kernel that cannot take
// the shape refused at upload with the key.
TEST_F(Gpu, KernelOfSaysWhatRunsAndAForcedKernelThatCannotRunIsRefused) {
  std::vector<ReplicaConfig> cfgs = replicas(3, false, Optim::sgd);
  cfgs[1].train.kernel = CudaKernel::v1;
  ReplicaConfig big = test::tiny_config(Arch::free, cuda::v2_max_units() + 1, 77);
  big.id = 3;
  cfgs.push_back(big);
  const std::vector<ReplicaModel> models = models_of(cfgs);
  auto gpu = make_cuda_backend(BackendOptions{});
  gpu->upload(models);
  EXPECT_EQ(gpu->kernel_of(models[0], 8), "v2");
  EXPECT_EQ(gpu->kernel_of(models[1], 8), "v1");
  EXPECT_EQ(gpu->kernel_of(models[3], 3), "v1");  // auto above v2's limit
  for (CudaKernel k : {CudaKernel::v2, CudaKernel::v3}) {
    cfgs[3].train.kernel = k;
    const std::vector<ReplicaModel> refused = models_of(cfgs);
    try {
      make_cuda_backend(BackendOptions{})->upload(refused);
      ADD_FAILURE() << to_string(k) << " accepted for N = " << big.model.n_units;
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.key(), "train.kernel");
      EXPECT_EQ(e.value(), std::string("\"") + to_string(k) + "\"");
    }
  }
}

// Pruning is done on the host between iterations (the driver): masks pruned there and uploaded
// train the same on both backends, and the pruned entries stay zero on the device.
TEST_F(Gpu, PrunedModelsTrainAsOnTheCpuAndStayPruned) {
  std::vector<ReplicaConfig> cfgs = replicas(12, true, Optim::adam, Archs::classic, Rule::gd, 0, true);
  for (Rule rule : {Rule::gd, Rule::eg}) {
    for (auto& c : cfgs) c.train.rule = rule;
    std::vector<ReplicaModel> cpu_models = models_of(cfgs);
    for (auto& m : cpu_models) prune_recurrent(m, 0.3);
    std::vector<ReplicaModel> gpu_models = cpu_models;
    BackendOptions opt;
    opt.n_threads = 2;
    auto cpu = make_cpu_backend(opt), gpu = make_cuda_backend(opt);
    cpu->upload(cpu_models);
    gpu->upload(gpu_models);
    for (int it = 0; it < 5; ++it) {
      const std::vector<Batch> batches = batches_of(cfgs, it);
      std::vector<const Batch*> ptrs;
      for (const auto& b : batches) ptrs.push_back(&b);
      std::vector<StepMetrics> mc, mg;
      cpu->train_step(it, ptrs, &mc);
      gpu->train_step(it, ptrs, &mg);
      for (size_t r = 0; r < cfgs.size(); ++r) ASSERT_NEAR(mc[r].loss, mg[r].loss, 1e-4 * std::fabs(mc[r].loss) + 1e-7);
    }
    cpu->download(cpu_models);
    gpu->download(gpu_models);
    for (size_t r = 0; r < cfgs.size(); ++r) {
      const std::vector<double> w = gpu_models[r].effective_w_rec();
      int pruned = 0;
      for (size_t k = 0; k < w.size(); ++k)
        if (gpu_models[r].mask_rec[k] == 0 && (r % 3 != 0 || k % (cfgs[r].model.n_units + 1) != 0)) {
          EXPECT_EQ(w[k], 0.0) << "replica " << r << " W_rec[" << k << "]";
          ++pruned;
        }
      EXPECT_GT(pruned, 0);
    }
  }
}

// Adam's first step moves every weight whose gradient dominates eps by about lr sqrt(bc2) / bc1
// whatever the gradient's rounding, so the step itself is held to the CPU far tighter than the
// parameters after several steps can be: a bias correction computed from betas rounded to float
// (1.3e-5 relative in 1 - beta2) shows here, where the summation order of the products does not.
TEST_F(Gpu, FirstAdamStepMatchesCpuToRounding) {
  const auto cfgs = replicas(9, true, Optim::adam, Archs::all);
  const RunOut cpu = run_backend("cpu", "tiled", cfgs, 1), gpu = run_backend("cuda", "tiled", cfgs, 1);
  for (size_t r = 0; r < cfgs.size(); ++r) {
    const ReplicaModel start = test::model_of(cfgs[r]);
    const float lr = static_cast<float>(cfgs[r].train.lr);
    int compared = 0;
    for (size_t k = 0; k < start.params.size(); ++k) {
      const double step_cpu = double(cpu.models[r].params[k]) - start.params[k];
      const double step_gpu = double(gpu.models[r].params[k]) - start.params[k];
      if (std::fabs(step_cpu) < 0.5 * lr || std::fabs(start.params[k]) > 8 * lr) continue;  // eps-dominated, or rounded by a large weight
      ++compared;
      ASSERT_NEAR(step_gpu, step_cpu, 2e-6 * std::fabs(step_cpu) + 1e-12) << "replica " << r << " parameter " << k;
    }
    EXPECT_GT(compared, 0) << "replica " << r;
  }
}

TEST_F(Gpu, RunToRunBitwiseRepeatable) {
  const auto cfgs = replicas(33, true, Optim::adam);
  for (const std::string gemm : {"tiled", "cublas"}) {
    const RunOut a = run_backend("cuda", gemm, cfgs, 5), b = run_backend("cuda", gemm, cfgs, 5);
    for (size_t s = 0; s < a.metrics.size(); ++s)
      for (size_t r = 0; r < cfgs.size(); ++r) {
        EXPECT_EQ(a.metrics[s][r].loss, b.metrics[s][r].loss) << gemm;
        EXPECT_EQ(a.metrics[s][r].grad_norm, b.metrics[s][r].grad_norm) << gemm;
      }
    for (size_t r = 0; r < cfgs.size(); ++r) EXPECT_EQ(a.models[r].params, b.models[r].params) << gemm;
  }
}

// Steps that are not logged return without waiting for the device (the batches' staging is
// double-buffered): five of them queued back to back train exactly as five logged ones. On the host
// the streams run only at a synchronisation, so a staging buffer rewritten before its copy ran fails
// here (cudaErrorInvalidValue).
TEST_F(Gpu, UnloggedStepsQueueWithoutWaitingAndTrainAsLoggedOnes) {
  const auto cfgs = replicas(9, true, Optim::adam, Archs::all);
  std::vector<ReplicaModel> logged = models_of(cfgs), queued = logged;
  auto a = make_cuda_backend(BackendOptions{}), b = make_cuda_backend(BackendOptions{});
  a->upload(logged);
  b->upload(queued);
  std::vector<StepMetrics> ma, mb;
  for (int it = 0; it < 6; ++it) {
    const std::vector<Batch> batches = batches_of(cfgs, it);  // gone after the step, as the driver's
    std::vector<const Batch*> ptrs;
    for (const auto& x : batches) ptrs.push_back(&x);
    a->train_step(it, ptrs, &ma);
    b->train_step(it, ptrs, it == 5 ? &mb : nullptr);
  }
  a->download(logged);
  b->download(queued);
  for (size_t r = 0; r < cfgs.size(); ++r) {
    EXPECT_EQ(ma[r].loss, mb[r].loss) << "replica " << r;
    EXPECT_EQ(logged[r].params, queued[r].params) << "replica " << r;
  }
}

// A batch that does not fit the model is refused before anything is copied, with the CPU's words.
TEST_F(Gpu, BatchOfTheWrongShapeIsRefusedAsOnTheCpu) {
  const auto cfgs = replicas(2, false, Optim::sgd);
  const std::vector<ReplicaModel> models = models_of(cfgs);
  std::vector<Batch> batches = batches_of(cfgs, 0);
  batches[1].x.pop_back();  // x is no longer [T, B, I]
  std::vector<const Batch*> ptrs = {&batches[0], &batches[1]};
  for (const std::string kind : {"cpu", "cuda"}) {
    auto backend = kind == "cpu" ? make_cpu_backend(BackendOptions{}) : make_cuda_backend(BackendOptions{});
    backend->upload(models);
    try {
      backend->train_step(0, ptrs, nullptr);
      ADD_FAILURE() << kind << " accepted a batch whose x is too short";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("x is not [T, B, I]"), std::string::npos) << kind << ": " << e.what();
    }
  }
}

#ifdef DALESIM_GPU_TESTS_ON_HOST
// Between two barriers the host runtime runs a block's threads in order, in reverse or in a seeded
// shuffle: a race between threads of one block (a missing __syncthreads, a shared slot written by
// two threads) would change numbers between schedules. Every arch and rule, both product kernels.
TEST_F(Gpu, HostThreadScheduleChangesNoBit) {
  using simt::Schedule;
  // v1, v2 with one replica per block, and v2 with five or three per block (batch 2).
  const auto base = replicas(11, true, Optim::adam, Archs::all, Rule::eg, 1e-3);
  const std::vector<std::pair<CudaKernel, int>> kernels = {{CudaKernel::v1, 8}, {CudaKernel::v2, 8}, {CudaKernel::v2, 2}};
  for (const auto& [kernel, batch] : kernels)
    for (const std::string gemm : {"tiled", "cublas"}) {
      const auto cfgs = with_kernel(base, kernel, batch);
      const std::string what = gemm + " " + to_string(kernel) + " batch " + std::to_string(batch);
      simt::set_schedule(Schedule::forward);
      const RunOut a = run_backend("cuda", gemm, cfgs, 3);
      for (const Schedule s : {Schedule::reverse, Schedule::shuffle}) {
        simt::set_schedule(s, 11);
        const RunOut b = run_backend("cuda", gemm, cfgs, 3);
        for (size_t r = 0; r < cfgs.size(); ++r) {
          EXPECT_EQ(a.models[r].params, b.models[r].params) << what << " replica " << r;
          for (size_t k = 0; k < a.metrics.size(); ++k) EXPECT_EQ(a.metrics[k][r].loss, b.metrics[k][r].loss) << what;
        }
      }
    }
  simt::set_schedule(Schedule::forward);
}
#endif

TEST_F(Gpu, ReplicaAloneOrInABucketOf300IsIdentical) {
  // v1; v2 one replica per block; v2 packed five per block, where a replica's block-mates change.
  const std::vector<std::pair<CudaKernel, int>> kernels = {{CudaKernel::v1, 8}, {CudaKernel::v2, 8}, {CudaKernel::v2, 2}};
  for (const auto& [kernel, batch] : kernels) {
    const auto cfgs = with_kernel(replicas(300, false, Optim::adam), kernel, batch);
    const RunOut all = run_backend("cuda", "tiled", cfgs, 4);
    for (int r : {0, 1, 150, 299}) {
      const RunOut alone = run_backend("cuda", "tiled", {cfgs[r]}, 4);
      for (int s = 0; s < 4; ++s)
        EXPECT_EQ(alone.metrics[s][0].loss, all.metrics[s][r].loss) << to_string(kernel) << " replica " << r;
      EXPECT_EQ(alone.models[0].params, all.models[r].params) << to_string(kernel) << " replica " << r;
    }
  }
}

TEST_F(Gpu, DivergedReplicaIsFrozenAsOnTheCpu) {
  auto cfgs = replicas(5, false, Optim::sgd);
  cfgs[2].train.lr = 1e30;
  cfgs[2].train.clip = 0;
  const RunOut cpu = run_backend("cpu", "tiled", cfgs, 6), gpu = run_backend("cuda", "tiled", cfgs, 6);
  ASSERT_GE(cpu.diverged[2], 0);
  EXPECT_EQ(gpu.diverged[2], cpu.diverged[2]);
  for (int r : {0, 1, 3, 4}) EXPECT_EQ(gpu.diverged[r], -1);
  EXPECT_TRUE(std::isnan(gpu.metrics.back()[2].loss));
  auto others = cfgs;
  others.erase(others.begin() + 2);
  const RunOut without = run_backend("cuda", "tiled", others, 6);
  for (int s = 0; s < 6; ++s) EXPECT_EQ(without.metrics[s][2].loss, gpu.metrics[s][3].loss);
}

// An update that overflows (EG at a huge rate) diverges the replica at that step on both backends.
TEST_F(Gpu, OverflowingUpdateDivergesAtTheSameStepAsOnTheCpu) {
  auto cfgs = replicas(4, false, Optim::sgd, Archs::classic, Rule::eg);
  cfgs[1].train.lr = 1e5;
  cfgs[1].train.clip = 0;
  const RunOut cpu = run_backend("cpu", "tiled", cfgs, 6), gpu = run_backend("cuda", "tiled", cfgs, 6);
  ASSERT_GE(cpu.diverged[1], 0);
  EXPECT_TRUE(std::isfinite(cpu.metrics[cpu.diverged[1]][1].loss)) << "diverged by its weights, not its loss";
  EXPECT_EQ(gpu.diverged, cpu.diverged);
}

TEST_F(Gpu, EvaluateMatchesCpu) {
  const auto cfgs = replicas(7, true, Optim::adam);
  const std::vector<ReplicaModel> models = models_of(cfgs);
  std::vector<Batch> batches = batches_of(cfgs, 3);
  std::vector<const Batch*> ptrs;
  for (auto& b : batches) ptrs.push_back(&b);
  auto cpu = make_cpu_backend(BackendOptions{});
  auto gpu = make_cuda_backend(BackendOptions{});
  cpu->upload(models);
  gpu->upload(models);
  std::vector<StepMetrics> a, b;
  cpu->evaluate(3, ptrs, a);
  gpu->evaluate(3, ptrs, b);
  for (size_t r = 0; r < cfgs.size(); ++r) EXPECT_NEAR(a[r].loss, b[r].loss, 1e-5 * a[r].loss);
}

// The checkpoints' fixed evaluation set (train/driver.hpp): loss, accuracy and accuracy per trial
// condition as on the CPU backend (a condition's accuracy may differ by a near-tie of one trial).
TEST_F(Gpu, FixedEvaluationSetMatchesCpu) {
  auto cfgs = replicas(5, true, Optim::adam);
  for (auto& c : cfgs) c.task.batch = 32;
  const std::vector<ReplicaModel> models = models_of(cfgs);
  std::vector<std::unique_ptr<Task>> tasks;
  std::vector<const Task*> task_ptrs;
  std::vector<int> batch, stream_of;
  std::vector<std::uint64_t> seeds;
  for (std::size_t r = 0; r < cfgs.size(); ++r) {
    tasks.push_back(test::task_of(cfgs[r]));
    task_ptrs.push_back(tasks.back().get());
    batch.push_back(cfgs[r].task.batch);
    seeds.push_back(cfgs[r].data_seed);
    stream_of.push_back(static_cast<int>(r));
  }
  auto cpu = make_cpu_backend(BackendOptions{});
  auto gpu = make_cuda_backend(BackendOptions{});
  cpu->upload(models);
  gpu->upload(models);
  std::vector<Diagnostics> a(cfgs.size()), b(cfgs.size());
  evaluate_fixed_set(*cpu, task_ptrs, batch, seeds, stream_of, 2, a);
  evaluate_fixed_set(*gpu, task_ptrs, batch, seeds, stream_of, 2, b);
  for (std::size_t r = 0; r < cfgs.size(); ++r) {
    SCOPED_TRACE(r);
    EXPECT_NEAR(a[r].eval_loss, b[r].eval_loss, 1e-5 * a[r].eval_loss);
    EXPECT_NEAR(a[r].eval_accuracy, b[r].eval_accuracy, 1.0 / kEvalTrials);
    ASSERT_EQ(a[r].eval_accuracy_by_condition.size(), tasks[r]->condition_names().size());
    ASSERT_EQ(b[r].eval_accuracy_by_condition.size(), a[r].eval_accuracy_by_condition.size());
    for (std::size_t c = 0; c < a[r].eval_accuracy_by_condition.size(); ++c)
      EXPECT_NEAR(a[r].eval_accuracy_by_condition[c], b[r].eval_accuracy_by_condition[c], 0.05) << "condition " << c;
  }
}

TEST_F(Gpu, DoublePrecisionIsRefusedWithTheKey) {
  auto cfgs = replicas(2, false, Optim::sgd);
  cfgs[1].train.precision = Precision::f64;
  const std::vector<ReplicaModel> models = models_of(cfgs);
  auto gpu = make_cuda_backend(BackendOptions{});
  try {
    gpu->upload(models);
    FAIL() << "double precision accepted by the CUDA backend";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "train.precision");
  }
}

TEST_F(Gpu, AutoChoosesTheDevice) {
  std::string why;
  const auto backend = make_backend("auto", BackendOptions{}, &why);
  EXPECT_EQ(backend->name(), "cuda");
  EXPECT_NE(why.find(device_.name), std::string::npos) << why;
}

// The dispatcher (src/cuda/dispatch.cpp), a host function: runs with or without a device.
TEST(GpuDispatch, AutoTakesV2WhereWRecFitsOnChipAndV1Above) {
  EXPECT_EQ(cuda::v2_max_units(), 240);  // 240 x 241 x 4 = 231,360 <= 227 KiB < 241 x 242 x 4
  EXPECT_LE(cuda::v2_shared_bytes(240, 1), cuda::kSharedOptinBytes);
  EXPECT_GT(cuda::v2_shared_bytes(241, 1), cuda::kSharedOptinBytes);
  const cuda::KernelPlan small = cuda::plan_kernel(CudaKernel::auto_select, 24, 8);
  EXPECT_EQ(small.variant, cuda::Variant::v2);
  EXPECT_EQ(small.replicas_per_block, 1);
  EXPECT_EQ(small.threads, 192);  // one thread per output of a step, B N = 192
  EXPECT_EQ(small.shared_bytes, 24u * 25 * 4);
  EXPECT_EQ(cuda::plan_kernel(CudaKernel::auto_select, 240, 64).variant, cuda::Variant::v2);
  const cuda::KernelPlan big = cuda::plan_kernel(CudaKernel::auto_select, 241, 64);
  EXPECT_EQ(big.variant, cuda::Variant::v1);
  EXPECT_NE(big.reason.find("N <= 240"), std::string::npos) << big.reason;
  EXPECT_EQ(cuda::plan_kernel(CudaKernel::v1, 24, 8).variant, cuda::Variant::v1);
  EXPECT_EQ(cuda::plan_kernel(CudaKernel::v2, 240, 8).variant, cuda::Variant::v2);
}

TEST(GpuDispatch, SmallReplicasShareABlockWithinTheDefaultSharedMemory) {
  const cuda::KernelPlan p = cuda::plan_kernel(CudaKernel::auto_select, 24, 2);  // B N = 48: 5 per block
  EXPECT_EQ(p.replicas_per_block, 5);
  EXPECT_EQ(p.threads, 256);
  EXPECT_EQ(cuda::plan_kernel(CudaKernel::auto_select, 40, 2).replicas_per_block, 3);
  // N = 64, B = 1: 4 would fit the threads, but 4 x 64 x 65 x 4 bytes is over 48 KiB: 2.
  EXPECT_EQ(cuda::plan_kernel(CudaKernel::auto_select, 64, 1).replicas_per_block, 2);
  EXPECT_EQ(cuda::plan_kernel(CudaKernel::auto_select, 65, 1).replicas_per_block, 1);  // N > 64: never packed
  EXPECT_EQ(cuda::plan_kernel(CudaKernel::auto_select, 32, 8).replicas_per_block, 1);  // B N = 256 fills a block
  for (int N = 2; N <= cuda::v2_max_units(); N += 1)
    for (int B : {1, 2, 3, 8, 64, 1000}) {
      const cuda::KernelPlan q = cuda::plan_kernel(CudaKernel::auto_select, N, B);
      ASSERT_EQ(q.variant, cuda::Variant::v2);
      ASSERT_TRUE(q.threads >= 32 && q.threads <= 1024 && q.threads % 32 == 0) << N << " " << B;
      ASSERT_LE(q.shared_bytes, cuda::kSharedOptinBytes) << N << " " << B;
      if (q.replicas_per_block > 1) ASSERT_LE(q.shared_bytes, cuda::kSharedDefaultBytes) << N << " " << B;
    }
}

TEST(GpuDispatch, ForcedKernelThatCannotTakeTheShapeIsAnErrorWithTheKey) {
  try {
    cuda::plan_kernel(CudaKernel::v2, 241, 8);
    FAIL() << "v2 planned for N = 241";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "train.kernel");
    EXPECT_EQ(e.value(), "\"v2\"");
    EXPECT_NE(std::string(e.what()).find("N <= 240"), std::string::npos) << e.what();
  }
  try {
    cuda::plan_kernel(CudaKernel::v3, 24, 8);
    FAIL() << "v3 planned";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "train.kernel");
    EXPECT_NE(std::string(e.what()).find("not built"), std::string::npos) << e.what();
  }
}

#ifndef DALESIM_GPU_TESTS_ON_HOST  // the host runtime always has its emulated device
// Without a device, `auto` must fall back to the CPU and say why; runs everywhere.
TEST(GpuFallback, AutoFallsBackToCpuWithTheReason) {
  const CudaDeviceInfo dev = query_cuda_device();
  if (dev.usable) GTEST_SKIP() << "a CUDA device is present: " << dev.name;
  // Said plainly; the device query's error is the detail (shown by `dalesim run -v`).
  std::string why, detail;
  const auto backend = make_backend("auto", BackendOptions{}, &why, &detail);
  EXPECT_EQ(backend->name(), "cpu");
  EXPECT_EQ(why, "no GPU found; using the CPU");
  EXPECT_NE(detail.find(dev.reason), std::string::npos) << detail;
  try {
    make_backend("cuda", BackendOptions{}, &why);
    FAIL() << "--backend cuda accepted without a device";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dev.reason), std::string::npos) << e.what();
  }
}
#endif

}  // namespace
}  // namespace dalesim
