// `dalesim bench`: the same training work on the CPU and CUDA backends, side by side.
#pragma once

#include <iosfwd>
#include <limits>
#include <string>
#include <vector>

#include "dalesim/config.hpp"

namespace dalesim {

struct BenchConfig {
  int R = 16, N = 64, B = 32, T = 50;  // replicas, units, batch, steps
  std::string label() const;
};

struct BenchOptions {
  std::vector<BenchConfig> configs;
  // "cpu", "cuda", with optional suffixes: ":cublas" (the cuBLAS products) and ":v1" / ":v2" (the
  // training kernel forced, docs/cuda.md), e.g. "cuda:cublas:v2"; plain "cuda" takes the dispatcher's.
  std::vector<std::string> backends;
  int iterations = 5;                  // timed iterations per run (after warm-up)
  std::vector<int> threads{0};         // CPU worker threads, one CPU run per entry (0: all cores)
  double cpu_budget_s = 60;            // skip CPU runs expected to take longer than this
};

struct BenchRow {
  BenchConfig config;
  std::string backend, device, status;  // status: "ok", "skipped: ..."
  std::string kernel;                   // the training kernel that ran: cpu, v1, v2
  int iterations = 0;
  int threads = 0;  // CPU worker threads used (min of the option and R); 0 on the GPU
  // NaN until measured (skipped rows keep them NaN; JSON writes null).
  double seconds_per_iter = kUnset, seq_steps_per_s = kUnset, gflops = kUnset, peak_fraction = kUnset;
  double device_mib = kUnset;
  double validation_rel_diff = kUnset;  // max relative loss difference to the CPU on the first iteration
  // CPU rows: single-threaded OpenBLAS sgemm of the step's forward shape (N x N by N x B), measured
  // between the timed iterations, times `threads`; and gflops as a fraction of it.
  double reference_gflops = kUnset, reference_fraction = kUnset;
  static constexpr double kUnset = std::numeric_limits<double>::quiet_NaN();
};

// The fixed FLOP count of one iteration: 6 R B T (N^2 + N (I + O)) (forward, backward, update).
double bench_flops(const BenchConfig& c, int n_inputs, int n_outputs);

std::vector<BenchConfig> default_bench_configs(bool have_gpu);

// What the CPU numbers depend on: the processor, its widest vector ISA, OpenBLAS's kernel set and
// the path of the CPU backend's per-step products (fixed_gemm.hpp).
struct CpuInfo {
  std::string model, isa, blas_core, step_gemm;
};
CpuInfo query_cpu_info();

// Single-threaded OpenBLAS sgemm C [N,B] = W [N,N] X [N,B] on the same operands, repeated for about
// `seconds`: the number of calls and the seconds they took.
struct GemmTiming {
  double calls = 0, seconds = 0;
};
GemmTiming time_reference_sgemm(int N, int B, double seconds);

// The replicas of a bench configuration: R `mix` replicas on the adding problem (T steps, batch B),
// Adam, different initial weights, one shared data stream.
std::vector<ReplicaConfig> bench_replicas(const BenchConfig& c);

// Runs every (config, backend) pair: builds R `mix` replicas on the adding problem (all sharing one
// data stream, so batch generation is not what is timed), validates the CUDA losses against the
// CPU's on the first iteration, warms up, then times. Progress lines go to `log`.
std::vector<BenchRow> run_bench(const BenchOptions& options, std::ostream& log);

// Whether `name` is a backend run_bench knows (see BenchOptions::backends).
bool valid_bench_backend(const std::string& name);

void print_bench_table(const std::vector<BenchRow>& rows, std::ostream& out);
void write_bench_json(const std::vector<BenchRow>& rows, const std::string& command, std::ostream& out);

}  // namespace dalesim
