// `dalesim bench`: CPU vs CUDA throughput on the same training work, as a table and JSON.
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "dalesim/backend.hpp"
#include "train/bench.hpp"
#include "train/peer_export.hpp"

namespace dalesim::cli {

namespace {
BenchConfig parse_config(const std::string& text) {
  BenchConfig c;
  char sep[3];
  std::istringstream in(text);
  if (!(in >> c.R >> sep[0] >> c.N >> sep[1] >> c.B >> sep[2] >> c.T) || sep[0] != ',' || sep[1] != ',' ||
      sep[2] != ',' || !in.eof() || c.R < 1 || c.N < 2 || c.B < 1 || c.T < 2)
    throw ConfigError("--config", text, "R,N,B,T with R >= 1, N >= 2, B >= 1, T >= 2", "e.g. --config 256,128,64,100");
  return c;
}
}  // namespace

Action add_bench_command(CLI::App& app, const std::string& command_line) {
  struct Opts {
    std::vector<std::string> configs;
    std::vector<std::string> backends{"cpu", "cuda"};
    int iterations = 5;
    std::vector<int> threads{0};
    double cpu_budget = 60;
    std::string json, export_peers, export_backend = "auto";
    int peer_iterations = 10;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("bench", "CPU vs CUDA training throughput on the same work");
  cmd->add_option("--config", o->configs, "R,N,B,T (repeatable); default: the standard set (a small one without a GPU)");
  cmd->add_option("--backends", o->backends,
                  "backends to run: cpu, cuda, cuda:cublas; a CUDA one may force the kernel: cuda:v1, cuda:v2, "
                  "cuda:cublas:v2 (docs/cuda.md)")
      ->delimiter(',')
      ->check(CLI::Validator(
          [](std::string& name) {
            return valid_bench_backend(name) ? std::string()
                                             : "not a bench backend: " + name + " (cpu, cuda[:cublas][:v1|:v2])";
          },
          "BACKEND"));
  cmd->add_option("--iterations", o->iterations, "timed iterations per run (after warm-up)")->check(CLI::PositiveNumber);
  cmd->add_option("--threads", o->threads, "CPU worker threads, or a list (1,2: one CPU run each; default: all cores)")
      ->delimiter(',')
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--cpu-budget", o->cpu_budget, "seconds of timed CPU work per configuration at most")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--json", o->json, "also write the results as JSON to this file ('-' for stdout)");
  cmd->add_option("--export-peers", o->export_peers,
                  "instead of timing, write the peers' input (bench/peers/) for the first --config to this HDF5 file");
  cmd->add_option("--peer-iterations", o->peer_iterations, "iterations recorded for the peers")->check(CLI::PositiveNumber);
  cmd->add_option("--peer-backend", o->export_backend, "backend computing the peers' reference losses")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  return [o, command_line]() {
    BenchOptions opt;
    for (const auto& c : o->configs) opt.configs.push_back(parse_config(c));
    if (opt.configs.empty()) opt.configs = default_bench_configs(query_cuda_device().usable);
    if (!o->export_peers.empty()) {
      export_peer_input(opt.configs.front(), o->peer_iterations, o->export_backend, o->threads.front(), o->export_peers,
                        std::cerr);
      return 0;
    }
    opt.backends = o->backends;
    opt.iterations = o->iterations;
    opt.threads = o->threads;
    opt.cpu_budget_s = o->cpu_budget;
    std::ofstream file;
    if (!o->json.empty() && o->json != "-") {
      file.open(o->json);
      if (!file) throw ConfigError("--json", o->json, "a writable file path");
    }
    const auto rows = run_bench(opt, std::cerr);
    if (o->json == "-") {
      write_bench_json(rows, command_line, std::cout);
    } else {
      print_bench_table(rows, std::cout);
      if (file.is_open()) write_bench_json(rows, command_line, file);
    }
    for (const auto& r : rows)
      if (r.status.rfind("failed", 0) == 0) return 1;
    return 0;
  };
}

}  // namespace dalesim::cli
