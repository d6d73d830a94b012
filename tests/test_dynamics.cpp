// Using trained networks: trials export, simulate and fixed points, held to the trainer's recorded
// losses, to the file task, to closed forms and to finite differences.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "dalesim/history.hpp"
#include "dalesim/rng.hpp"
#include "dalesim/task.hpp"
#include "diagnostics/linalg.hpp"
#include "dynamics/fixed_points.hpp"
#include "dynamics/simulate.hpp"
#include "dynamics/trained_replica.hpp"
#include "dynamics/trials_file.hpp"
#include "io/h5.hpp"
#include "test_paths.hpp"

namespace dalesim {
namespace {

namespace fs = std::filesystem;
using test::run_dalesim;

class Dynamics : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("dalesim_dynamics_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(path(name)) << text;
    return path(name);
  }
  // Trains `sweep` (TOML text) into NAME.h5 and returns its path.
  std::string train(const std::string& name, const std::string& sweep) {
    const std::string out = path(name + ".h5");
    const auto o = run_dalesim("run " + write(name + ".toml", sweep) + " -o " + out + " --backend cpu -q");
    EXPECT_EQ(o.code, 0) << o.output;
    return out;
  }
  fs::path dir_;
};

// A small perceptual_dm sweep of the mix model; `extra` appended to [train], `batch` trials a step.
std::string dm_sweep(int n_steps, int batch, const std::string& task_extra = "") {
  return "name = \"dm\"\n[model]\narch = \"mix\"\nn_units = 10\ntau_e = 40.0\ntau_i = 40.0\n"
         "[task]\nname = \"perceptual_dm\"\nbatch = " + std::to_string(batch) +
         "\nfixation_ms = 40.0\nstimulus_ms = 100.0\ndecision_ms = 40.0\n" + task_extra +
         "[train]\nlr = 0.02\nn_steps = " + std::to_string(n_steps) +
         "\nlog_every = 1\ncheckpoint_every = 1\n[sweep]\nseeds = [3, 8]\n";
}

double recorded_loss(const RunFile& f, std::int64_t step, int position) {
  for (std::size_t s = 0; s < f.history_step.size(); ++s)
    if (f.history_step[s] == step) return (*f.history_metric("loss"))[s * f.n_replicas + position];
  ADD_FAILURE() << "no history row at step " << step;
  return NAN;
}

Batch task_batch(const TrainedReplica& r, std::int64_t iteration, int B) {
  Batch b;
  make_task(r.config->task, r.config->model.dt)->generate(r.config->data_seed, iteration, B, b);
  return b;
}

// History row s holds the loss of training step s, computed on the weights of checkpoint s (s
// updates done) and on batch s of the replica's task: simulate must give it back. With one trial
// a step, every row is one trial: trial for trial.
TEST_F(Dynamics, SimulateReproducesTheRecordedLossTrialForTrial) {
  const int S = 5;
  const std::string out = train("b1", dm_sweep(S, 1));
  const RunFile f = read_run_file(out);
  int compared = 0;
  for (int id : {0, 1})
    for (int c = 0; c < S; ++c) {
      const TrainedReplica r = load_trained_replica(out, id, std::to_string(c));
      ASSERT_EQ(r.step, c);
      EXPECT_FALSE(r.exact);  // an earlier checkpoint: its float32 weights
      const Simulation sim = simulate_replica(r, task_batch(r, c, 1), false, c);
      const double want = recorded_loss(f, c, r.position);
      EXPECT_NEAR(sim.loss[0], want, 1e-5 * std::abs(want)) << "replica " << id << " checkpoint " << c;
      ++compared;
    }
  EXPECT_EQ(compared, 2 * S);
  // The last checkpoint (exact training state) has no row of its own: a run one step longer, the
  // same in everything else, records the loss of step S on those same weights.
  const RunFile longer = read_run_file(train("b1_longer", dm_sweep(S + 1, 1)));
  for (int id : {0, 1}) {
    const TrainedReplica r = load_trained_replica(out, id, "last");
    ASSERT_TRUE(r.exact);
    ASSERT_EQ(r.step, S);
    const Simulation sim = simulate_replica(r, task_batch(r, S, 1), false, S);
    const double want = recorded_loss(longer, S, r.position);
    EXPECT_NEAR(sim.loss[0], want, 1e-6 * std::abs(want)) << "replica " << id;
  }
}

// A batch of several trials: the per-trial losses, weighted by what each is averaged over, give
// the batch loss the trainer recorded.
TEST_F(Dynamics, PerTrialLossesAverageToTheRecordedBatchLoss) {
  for (const char* form : {"mse", "class"}) {
    const std::string out =
        train(std::string("b6_") + form, dm_sweep(3, 6, std::string("target = \"") + form + "\"\n"));
    const RunFile f = read_run_file(out);
    for (int c = 0; c < 3; ++c) {
      const TrainedReplica r = load_trained_replica(out, 1, std::to_string(c));
      const Simulation sim = simulate_replica(r, task_batch(r, c, 6), false, c);
      double sum = 0, weight = 0;
      for (int b = 0; b < 6; ++b) {
        ASSERT_GT(sim.loss_weight[b], 0);
        sum += sim.loss[b] * sim.loss_weight[b];
        weight += sim.loss_weight[b];
      }
      const double want = recorded_loss(f, c, r.position);
      EXPECT_NEAR(sum / weight, want, 1e-5 * std::abs(want)) << form << " checkpoint " << c;
    }
  }
}

// Every parameterisation read back: free, colei, mix and dann, with gradient descent and with EG
// (split biases), from a checkpoint's float32 weights and from the exact last state.
TEST_F(Dynamics, SimulateReadsBackEveryArchAndRule) {
  auto sweep = [](int n_steps) {
    return "name = \"arch\"\n[model]\nn_units = 10\ntau_e = 40.0\ntau_i = 60.0\nreadout_from = \"exc\"\n"
           "input_to = \"exc\"\n[task]\nname = \"perceptual_dm\"\n"
           "batch = 2\nfixation_ms = 40.0\nstimulus_ms = 100.0\ndecision_ms = 40.0\n[train]\nlr = 0.02\nn_steps = " +
           std::to_string(n_steps) +
           "\nlog_every = 1\ncheckpoint_every = 1\n[sweep.grid]\n\"model.arch\" = [\"free\", \"colei\", \"mix\", "
           "\"dann\"]\n\"train.rule\" = [\"gd\", \"eg\"]\n";
  };
  const std::string out = train("arch", sweep(2));
  const RunFile f = read_run_file(out), longer = read_run_file(train("arch_longer", sweep(3)));
  ASSERT_EQ(f.n_replicas, 8);
  for (int id = 0; id < 8; ++id) {
    for (const char* c : {"1", "last"}) {
      const TrainedReplica r = load_trained_replica(out, id, c);
      EXPECT_EQ(r.exact, std::string(c) == "last") << id;
      const Simulation sim = simulate_replica(r, task_batch(r, r.step, 2), false, r.step);
      double sum = 0, weight = 0;
      for (int b = 0; b < 2; ++b) sum += sim.loss[b] * sim.loss_weight[b], weight += sim.loss_weight[b];
      const double want = recorded_loss(r.exact ? longer : f, r.step, r.position);
      EXPECT_NEAR(sum / weight, want, 1e-5 * std::abs(want)) << r.arch << " replica " << id << " checkpoint " << c;
    }
  }
}

// The formulations: alpha per neuron or per network (sigmoid or clamped), W_dale reparameterised
// by abs or relu, costs in the loss (the recorded `loss` is the task loss, which simulate gives),
// and pruning, which changes the mask between iterations: pruned at step 1, checkpoints 2 and 3
// hold the weights that steps 2 and 3 ran on.
TEST_F(Dynamics, SimulateReadsBackTheFormulationsAndPrunedMasks) {
  auto sweep = [](int n_steps) {
    return "name = \"formulations\"\n[model]\narch = \"mix\"\nn_units = 10\ntau_e = 40.0\ntau_i = 40.0\n"
           "[task]\nname = \"perceptual_dm\"\nbatch = 2\nfixation_ms = 40.0\nstimulus_ms = 100.0\n"
           "decision_ms = 40.0\n[train]\nlr = 0.02\nn_steps = " + std::to_string(n_steps) +
           "\nlog_every = 1\ncheckpoint_every = 1\nl2_free = 0.1\nl2_firing_rate = 0.01\nprune_at = 1\n"
           "prune_fraction = 0.3\n[[sweep.zip]]\n\"model.alpha_per\" = [\"network\", \"neuron\", \"neuron\"]\n"
           "\"model.alpha_form\" = [\"sigmoid\", \"clamp\", \"sigmoid\"]\n"
           "\"train.dale\" = [\"clamp\", \"abs\", \"relu\"]\n";
  };
  const std::string out = train("formulations", sweep(3));
  const RunFile f = read_run_file(out), longer = read_run_file(train("formulations_longer", sweep(4)));
  ASSERT_EQ(f.n_replicas, 3);
  for (int id = 0; id < 3; ++id)
    for (const char* c : {"2", "last"}) {
      const TrainedReplica r = load_trained_replica(out, id, c);
      EXPECT_EQ(r.exact, std::string(c) == "last") << id;
      if (r.exact) {  // the pruned mask, not the one drawn at init
        double present = 0;
        for (float m : r.model.mask_rec) present += m;
        EXPECT_LT(present, 0.75 * 10 * 9) << id;
      }
      const Simulation sim = simulate_replica(r, task_batch(r, r.step, 2), false, r.step);
      double sum = 0, weight = 0;
      for (int b = 0; b < 2; ++b) sum += sim.loss[b] * sim.loss_weight[b], weight += sim.loss_weight[b];
      const double want = recorded_loss(r.exact ? longer : f, r.step, r.position);
      EXPECT_NEAR(sum / weight, want, 1e-5 * std::abs(want)) << "replica " << id << " checkpoint " << c;
    }
}

// `dalesim trials` writes what the file task reads: training on the exported trials of batch 0 gives
// the built-in task's first-step loss (same seed, same model), in both target forms.
TEST_F(Dynamics, ExportedTrialsTrainLikeTheBuiltInTask) {
  for (const char* form : {"mse", "class"}) {
    const std::string trials = path(std::string("t_") + form + ".h5");
    const auto o = run_dalesim("trials perceptual_dm -p fixation_ms=40 -p stimulus_ms=100 -p decision_ms=40 -p target=" +
                               std::string(form) + " -n 6 --seed 3 --dt 20 -o " + trials);
    ASSERT_EQ(o.code, 0) << o.output;
    const std::string model = "[model]\narch = \"mix\"\nn_units = 10\ntau_e = 40.0\ntau_i = 40.0\n";
    const std::string train_part = "[train]\nlr = 0.02\nn_steps = 1\nlog_every = 1\ncheckpoint_every = 1\n";
    const std::string builtin = "name = \"builtin\"\nseed = 3\n" + model +
                                "[task]\nname = \"perceptual_dm\"\nbatch = 6\nfixation_ms = 40.0\nstimulus_ms = 100.0\n"
                                "decision_ms = 40.0\ntarget = \"" + form + "\"\n" + train_part;
    const std::string from_file =
        "name = \"file\"\nseed = 3\n" + model + "[task]\nname = \"file\"\nbatch = 6\npath = \"" + trials +
        "\"\ntest_fraction = 0.0\n" + (std::string(form) == "class" ? "target = \"class\"\nn_outputs = 3\n" : "") +
        train_part;
    const RunFile a = read_run_file(train(std::string("builtin_") + form, builtin));
    const RunFile b = read_run_file(train(std::string("file_") + form, from_file));
    const double la = (*a.history_metric("loss"))[0], lb = (*b.history_metric("loss"))[0];
    EXPECT_TRUE(std::isfinite(la));
    EXPECT_NEAR(la, lb, 1e-6 * std::abs(la)) << form;
    // Read back, the file holds the very batch the task generates.
    const TrialSet ts = read_trials_file(trials);
    ReplicaConfig cfg;
    cfg.seed = 3;
    cfg.task.name = "perceptual_dm";
    cfg.task.params = {{"fixation_ms", Value{40.0}}, {"stimulus_ms", Value{100.0}}, {"decision_ms", Value{40.0}},
                       {"target", Value{std::string(form)}}};
    Batch want;
    make_task(cfg.task, 20)->generate(derive_seed(3, "data"), 0, 6, want);
    EXPECT_EQ(ts.batch.x, want.x);
    EXPECT_EQ(ts.batch.loss, want.loss);
    if (want.loss == LossKind::mse) {
      EXPECT_EQ(ts.batch.y, want.y);
      EXPECT_EQ(ts.batch.mask, want.mask);
    } else {
      EXPECT_EQ(ts.batch.target, want.target);
    }
    EXPECT_EQ(ts.batch.label, want.label);
    EXPECT_EQ(ts.batch.condition, want.condition);
    EXPECT_EQ(ts.condition_names, make_task(cfg.task, 20)->condition_names());
    EXPECT_EQ(ts.condition_names.size(), 5u);  // the default coherences
  }
}

// ---- fixed points -------------------------------------------------------------------------------

RateDynamics random_dynamics(int N, double g, bool linear, std::uint64_t seed) {
  RateDynamics d;
  d.N = N;
  d.linear = linear;
  d.phi = Phi::tanh;
  const CounterRng rng{seed, 1};
  d.W.resize(static_cast<std::size_t>(N) * N);
  for (std::size_t k = 0; k < d.W.size(); ++k) d.W[k] = g / std::sqrt(double(N)) * rng.normal(k);
  d.u.assign(N, 0.0);
  d.inv_tau.resize(N);
  for (int i = 0; i < N; ++i) d.inv_tau[i] = 1.0 / (i % 2 ? 40.0 : 100.0);
  return d;
}

std::vector<std::vector<double>> random_states(int K, int N, double scale, std::uint64_t seed) {
  const CounterRng rng{seed, 2};
  std::vector<std::vector<double>> out(K, std::vector<double>(N));
  for (int k = 0; k < K; ++k)
    for (int i = 0; i < N; ++i) out[k][i] = scale * rng.normal(static_cast<std::uint64_t>(k) * N + i);
  return out;
}

// A linear network tau dv/dt = -v + W v + u with W = Q diag(d) Q^T: the one fixed point is
// v* = (I - W)^-1 u and the Jacobian's eigenvalues are (d_k - 1) / tau.
TEST(FixedPoints, LinearNetworkMatchesTheClosedForm) {
  const int N = 7;
  const double tau = 50.0;
  RateDynamics d;
  d.N = N;
  d.linear = true;
  d.inv_tau.assign(N, 1.0 / tau);
  std::vector<double> Q(N * N);
  const CounterRng rng{11, 3};
  for (int k = 0; k < N * N; ++k) Q[k] = rng.normal(k);
  orthonormalise(Q.data(), N);
  const std::vector<double> eig_w = {0.9, 0.5, 0.2, -0.1, -0.4, -0.8, -1.5};
  d.W.assign(N * N, 0.0);
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j)
      for (int k = 0; k < N; ++k) d.W[i * N + j] += Q[i * N + k] * eig_w[k] * Q[j * N + k];
  // v* chosen, u = (I - W) v*: the closed form then says the fixed point is v*.
  std::vector<double> v_star(N);
  for (int i = 0; i < N; ++i) v_star[i] = 0.3 * i - 1.0;
  d.u = v_star;
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) d.u[i] -= d.W[i * N + j] * v_star[j];
  const FixedPointSearch res = find_fixed_points(d, random_states(10, N, 3.0, 5), FixedPointOptions{});
  ASSERT_EQ(res.points.size(), 1u);
  EXPECT_EQ(res.n_converged, 10);
  const FixedPoint& fp = res.points[0];
  EXPECT_EQ(fp.count, 10);
  for (int i = 0; i < N; ++i) EXPECT_NEAR(fp.v[i], v_star[i], 1e-9);
  for (int k = 0; k < N; ++k) {  // eig_w is sorted descending, as the eigenvalues are
    EXPECT_NEAR(fp.eig_re[k], (eig_w[k] - 1) / tau, 1e-12);
    EXPECT_NEAR(fp.eig_im[k], 0.0, 1e-12);
  }
  EXPECT_TRUE(fp.stable);  // every d_k < 1
}

// Central differences of F: the Jacobian the eigenvalues must come from.
std::vector<double> finite_difference_jacobian(const RateDynamics& d, const std::vector<double>& v) {
  const int N = d.N;
  const double h = 1e-6;
  std::vector<double> J(static_cast<std::size_t>(N) * N), up(N), down(N);
  for (int j = 0; j < N; ++j) {
    std::vector<double> a = v, b = v;
    a[j] += h;
    b[j] -= h;
    d.rhs(a.data(), up.data());
    d.rhs(b.data(), down.data());
    for (int i = 0; i < N; ++i) J[static_cast<std::size_t>(i) * N + j] = (up[i] - down[i]) / (2 * h);
  }
  return J;
}

// A small tanh network with g = 2 (several fixed points): every point found has |F| below the
// tolerance, and its eigenvalues are those of the finite-difference Jacobian.
TEST(FixedPoints, TanhNetworkPointsAreZerosOfFWithFiniteDifferenceEigenvalues) {
  const int N = 8;
  RateDynamics d = random_dynamics(N, 2.0, false, 21);
  for (int i = 0; i < N; ++i) d.u[i] = 0.05 * (i - 3);
  FixedPointOptions opt;
  const FixedPointSearch res = find_fixed_points(d, random_states(64, N, 2.0, 9), opt);
  ASSERT_GE(res.points.size(), 2u) << "g = 2 should give several fixed points";
  for (const FixedPoint& fp : res.points) {
    std::vector<double> F(N);
    d.rhs(fp.v.data(), F.data());
    double norm = 0;
    for (double x : F) norm += x * x;
    EXPECT_LT(0.5 * norm, opt.q_tolerance);
    std::vector<double> re, im;
    eigenvalues(finite_difference_jacobian(d, fp.v), N, re, im);
    // Match each eigenvalue to the nearest finite-difference one.
    for (int k = 0; k < N; ++k) {
      double best = INFINITY;
      for (int m = 0; m < N; ++m) best = std::min(best, std::hypot(fp.eig_re[k] - re[m], fp.eig_im[k] - im[m]));
      EXPECT_LT(best, 1e-7) << "eigenvalue " << fp.eig_re[k] << " + " << fp.eig_im[k] << "i";
    }
    // Henrici's departure from normality of the finite-difference Jacobian.
    const std::vector<double> J = finite_difference_jacobian(d, fp.v);
    double frob = 0, spec = 0;
    for (double x : J) frob += x * x;
    for (int k = 0; k < N; ++k) spec += re[k] * re[k] + im[k] * im[k];
    EXPECT_NEAR(fp.henrici, std::sqrt(std::max(frob - spec, 0.0) / frob), 1e-6);
    bool stable = true;
    for (double x : re) stable = stable && x < 0;
    EXPECT_EQ(fp.stable, stable);
    EXPECT_GE(fp.henrici, 0.0);
    EXPECT_LE(fp.henrici, 1.0);
  }
  // The merged points are distinct.
  for (std::size_t a = 0; a < res.points.size(); ++a)
    for (std::size_t b = a + 1; b < res.points.size(); ++b) {
      double dist = 0;
      for (int i = 0; i < N; ++i) dist += std::pow(res.points[a].v[i] - res.points[b].v[i], 2);
      EXPECT_GT(std::sqrt(dist), 1e-3);
    }
}

// The Henrici departure: 0 for a normal (symmetric) Jacobian, > 0 for a non-normal one.
TEST(FixedPoints, HenriciSeparatesNormalFromNonNormalJacobians) {
  RateDynamics sym = random_dynamics(6, 0.5, true, 4);
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < i; ++j) sym.W[i * 6 + j] = sym.W[j * 6 + i];
  sym.inv_tau.assign(6, 0.01);
  FixedPoint a;
  a.v.assign(6, 0.0);
  describe_fixed_point(sym, a);
  EXPECT_NEAR(a.henrici, 0.0, 1e-6);
  RateDynamics feedforward = sym;
  feedforward.W.assign(36, 0.0);
  feedforward.W[0 * 6 + 1] = 5.0;  // a pure feed-forward link: J nilpotent apart from -I/tau
  FixedPoint b;
  b.v.assign(6, 0.0);
  describe_fixed_point(feedforward, b);
  EXPECT_GT(b.henrici, 0.5);
}

// ---- the commands and their bad input -----------------------------------------------------------

TEST_F(Dynamics, CommandsWriteTheirFilesAndRefuseBadInput) {
  const std::string out = train("run", dm_sweep(4, 4));
  const std::string sim = path("sim.h5");
  auto o = run_dalesim("simulate " + out + " --replica 0 --replica 1 --checkpoint 2 --task-trials 5 -o " + sim);
  ASSERT_EQ(o.code, 0) << o.output;
  {
    const h5::File f = h5::File::open_read_only(sim);
    EXPECT_EQ(f.open_dataset("inputs").dims(), (h5::Dims{5, 9, 3}));
    for (const char* g : {"replica_0", "replica_1"}) {
      const h5::Group grp = f.open_group(g);
      EXPECT_EQ(grp.open_dataset("v").dims(), (h5::Dims{5, 9, 10}));
      EXPECT_EQ(grp.open_dataset("r").dims(), (h5::Dims{5, 9, 10}));
      EXPECT_EQ(grp.open_dataset("z").dims(), (h5::Dims{5, 9, 3}));
      EXPECT_EQ(grp.open_dataset("loss").dims(), (h5::Dims{5}));
    }
  }
  const std::string fp = path("fp.h5");
  o = run_dalesim("fixedpoints " + out + " --replica 1 --initial-states 16 -o " + fp);
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(fs::exists(fp));

  const std::string adding = path("adding.h5");
  ASSERT_EQ(run_dalesim("trials adding -p T=5 -n 3 -o " + adding).code, 0);
  const std::string bad = path("bad.h5");
  struct Case {
    std::string args, expect;
  } cases[] = {
      {"simulate " + out + " --replica 7 --task-trials 2 -o " + bad, "--replica"},
      {"simulate " + out + " --replica 0 --checkpoint 9 --task-trials 2 -o " + bad, "checkpoint out of range"},
      {"simulate " + out + " --replica 0 --checkpoint x --task-trials 2 -o " + bad, "--checkpoint"},
      {"simulate " + out + " --replica 0 --trials " + adding + " -o " + bad, "takes 3"},
      {"simulate " + out + " --replica 0 -o " + bad, "exactly one of --trials FILE or --task-trials N"},
      {"simulate " + out + " --replica 0 --task-trials 2 -o " + sim, "--force"},
      {"fixedpoints " + out + " --replica 0 --input 1,2 -o " + bad, "3 comma-separated numbers"},
      {"fixedpoints " + out + " --replica 5 -o " + bad, "--replica"},
      {"trials perceptual_dm -p nonsense=1 -n 2 -o " + bad, "-p = nonsense=1; allowed: a parameter of task"},
      {"trials perceptual_dm -p decision_ms=x -n 2 -o " + bad, "task.decision_ms"},
      {"trials no_such_task -n 2 -o " + bad, "task.name = \"no_such_task\"; allowed: \"adding\""},
  };
  for (const Case& c : cases) {
    o = run_dalesim(c.args);
    EXPECT_EQ(o.code, 2) << c.args << "\n" << o.output;
    EXPECT_NE(o.output.find(c.expect), std::string::npos) << c.args << "\n" << o.output;
    EXPECT_FALSE(fs::exists(bad)) << c.args;
    EXPECT_FALSE(fs::exists(bad + ".tmp")) << c.args;
  }
}

}  // namespace
}  // namespace dalesim
