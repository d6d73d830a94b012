// Google Benchmark micro-benchmarks of the CPU reference: one training iteration of one replica
// (forward, BPTT, Adam), by size and precision, beside the products it is made of: OpenBLAS sgemm
// of the step's forward shape (N x N by N x B, the reference `dalesim bench` prints) and the
// backend's own per-step product (FixedGemm). Validates the loss is finite before timing. One
// thread, OpenBLAS single-threaded, as each worker of the CPU backend; wall-clock rates.
#include <benchmark/benchmark.h>

#include <cmath>

#include "cpu/fixed_gemm.hpp"
#include "cpu/replica_trainer.hpp"
#include "dalesim/model.hpp"
#include "dalesim/task.hpp"
#include "train/bench.hpp"

extern "C" void openblas_set_num_threads(int);

namespace {

constexpr int kB = 32, kT = 50;

dalesim::ReplicaConfig config(int N, int B, int T) {
  dalesim::ReplicaConfig c;
  c.model.arch = dalesim::Arch::mix;
  c.model.n_units = N;
  c.task.name = "adding";
  c.task.batch = B;
  c.task.params["T"] = dalesim::Value{std::int64_t{T}};
  c.init_seed = dalesim::derive_seed(1, "init");
  c.data_seed = dalesim::derive_seed(1, "data");
  return c;
}

template <class Real>
void BM_TrainStep(benchmark::State& state) {
  const int N = static_cast<int>(state.range(0)), B = kB, T = kT;
  const dalesim::ReplicaConfig cfg = config(N, B, T);
  const auto task = dalesim::make_task(cfg.task, cfg.model.dt);
  const dalesim::ReplicaModel model = dalesim::init_replica(cfg, task->n_inputs(), task->n_outputs());
  dalesim::Batch batch;
  task->generate(cfg.data_seed, 0, B, batch);
  dalesim::cpu::ReplicaTrainer<Real> trainer(model);
  if (!std::isfinite(trainer.train_step(batch, 0).loss)) {
    state.SkipWithError("non-finite loss before timing");
    return;
  }
  std::int64_t it = 1;
  for (auto _ : state) benchmark::DoNotOptimize(trainer.train_step(batch, it++).loss);
  const double flops = 6.0 * B * T * (double(N) * N + N * 3.0);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["seq-steps/s"] = benchmark::Counter(double(B) * T * state.iterations(), benchmark::Counter::kIsRate);
}

// The reference of `dalesim bench`: OpenBLAS sgemm, W [N,N] times X [N,B].
void BM_ReferenceSgemm(benchmark::State& state) {
  const int N = static_cast<int>(state.range(0));
  double calls = 0;
  for (auto _ : state) calls += dalesim::time_reference_sgemm(N, kB, 0.002).calls;
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * N * N * kB * calls / 1e9, benchmark::Counter::kIsRate);
}

// One forward step's product as the backend runs it: u [B,N] += r [B,N] W^T [N,N].
void BM_StepGemm(benchmark::State& state) {
  const int N = static_cast<int>(state.range(0));
  std::vector<float> w(static_cast<size_t>(N) * N, 0.01f), r(static_cast<size_t>(kB) * N, 0.5f), u(r.size(), 0.0f);
  const dalesim::cpu::FixedGemm<float> step(false, kB, N, N, 1.0f);
  for (auto _ : state) {
    step(r.data(), w.data(), u.data());
    benchmark::DoNotOptimize(u.data());
  }
  state.SetLabel(step.path());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * N * N * kB * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

BENCHMARK_TEMPLATE(BM_TrainStep, float)->Arg(32)->Arg(64)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_TrainStep, double)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ReferenceSgemm)->Arg(32)->Arg(64)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepGemm)->Arg(32)->Arg(64)->Arg(128)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  openblas_set_num_threads(1);  // as the CPU backend: threads across replicas, BLAS single-threaded inside
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
