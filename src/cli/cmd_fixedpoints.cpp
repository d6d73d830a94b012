// `dalesim fixedpoints`: fixed points of a trained replica's dynamics under a constant input.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cli/commands.hpp"
#include "dalesim/rng.hpp"
#include "dynamics/fixed_points.hpp"
#include "dynamics/fixed_point_file.hpp"
#include "dynamics/simulate.hpp"
#include "dynamics/simulation_file.hpp"
#include "dynamics/trials_file.hpp"

namespace dalesim::cli {

namespace {

std::vector<double> parse_input(const std::string& text, int I) {
  std::vector<double> x;
  if (text.empty()) return std::vector<double>(I, 0.0);
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !std::isfinite(v))
      throw ConfigError("--input", text, std::to_string(I) + " comma-separated numbers (one per input channel)");
    x.push_back(v);
  }
  if (static_cast<int>(x.size()) != I)
    throw ConfigError("--input", text,
                      std::to_string(I) + " comma-separated numbers (one per input channel of the replica)",
                      "got " + std::to_string(x.size()));
  return x;
}

}  // namespace

Action add_fixedpoints_command(CLI::App& app, const std::string& command_line) {
  struct Opts {
    std::string run, output, checkpoint = "last", trials, input;
    int replica = 0, task_trials = 16, n_initial = 64, max_iter = 200;
    double q_tol = 1e-12, init_noise = 0, merge = 1e-3;
    long long seed = 0;
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "fixedpoints", "fixed points of a trained replica under a constant input, with eigenvalues and stability");
  cmd->add_option("run", o->run, "a run's output file (dalesim run -o)")->required();
  cmd->add_option("--replica", o->replica, "replica id")->required();
  cmd->add_option("--checkpoint", o->checkpoint, "checkpoint index 0..C-1, or last (default)");
  cmd->add_option("--input", o->input, "the constant input x1,...,xI (default: all zeros)");
  cmd->add_option("--from-trials", o->trials, "draw the initial states from trajectories on this trials file");
  cmd->add_option("--task-trials", o->task_trials,
                  "otherwise from trajectories on N trials of the replica's own task (default 16)")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--initial-states", o->n_initial, "initial states sampled on the trajectories (default 64)")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--init-noise", o->init_noise, "std of Gaussian noise added to each initial state (default 0)")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--tolerance", o->q_tol, "keep minima with q = |F|^2 / 2 below this (default 1e-12)")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--merge-distance", o->merge,
                  "fixed points closer than this times max(1, |v|) are one (default 1e-3)")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--max-iterations", o->max_iter, "Levenberg-Marquardt iterations per start (default 200)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--seed", o->seed, "seed of the sampling of initial states")->check(CLI::Range(0LL, 1LL << 62));
  cmd->add_option("-o,--output", o->output, "file to write (HDF5)")->required();
  cmd->add_flag("--force", o->force, "overwrite an existing output file");
  return [o, command_line]() {
    check_new_output(o->output, o->force);
    const TrainedReplica rep = load_trained_replica(o->run, o->replica, o->checkpoint);
    const std::vector<double> x = parse_input(o->input, rep.n_inputs());
    const TrialSet trials = simulation_trials(rep, o->trials, o->trials.empty() ? o->task_trials : 0, 0);
    const Simulation sim = simulate_replica(rep, trials.batch, false, 0);
    // Initial states: (trial, step) pairs drawn uniformly from the trajectories, plus noise.
    const CounterRng rng{static_cast<std::uint64_t>(o->seed), 0x4650ULL};
    const int N = sim.N;
    std::vector<std::vector<double>> initial(o->n_initial, std::vector<double>(N));
    for (int k = 0; k < o->n_initial; ++k) {
      const std::uint32_t pick = rng.below(static_cast<std::uint64_t>(k) * (N + 1), static_cast<std::uint32_t>(sim.B * sim.T));
      for (int i = 0; i < N; ++i)
        initial[k][i] = sim.v[static_cast<std::size_t>(pick) * N + i] +
                        o->init_noise * rng.normal(static_cast<std::uint64_t>(k) * (N + 1) + 1 + i);
    }
    FixedPointOptions opt;
    opt.q_tolerance = o->q_tol;
    opt.max_iterations = o->max_iter;
    opt.merge_distance = o->merge;
    const double dt = rep.config->model.dt;
    const FixedPointSearch res = find_fixed_points(rate_dynamics(rep.model, dt, x), initial, opt);
    write_fixed_points(o->output, rep, x, res, sim, std::min(sim.B, 16), opt, command_line, dt);
    std::printf("replica %d at checkpoint %d (step %lld): %d of %d initial states reached q < %g; %zu fixed point(s)\n",
                rep.id, rep.checkpoint, static_cast<long long>(rep.step), res.n_converged, o->n_initial, o->q_tol,
                res.points.size());
    for (std::size_t p = 0; p < res.points.size() && p < 20; ++p) {
      const FixedPoint& fp = res.points[p];
      std::printf("  #%zu: q %.3g, max Re(lambda) %.4g /ms, %s, Henrici %.3f, from %d start(s)\n", p, fp.q,
                  fp.eig_re.empty() ? 0.0 : fp.eig_re[0], fp.stable ? "stable" : "unstable", fp.henrici, fp.count);
    }
    std::printf("wrote %s\n", o->output.c_str());
    return 0;
  };
}

}  // namespace dalesim::cli
