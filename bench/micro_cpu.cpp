// Google Benchmark micro-benchmarks of the CPU reference: one training iteration of one replica
// (forward, BPTT, Adam), by size and precision. Validates the loss is finite before timing.
#include <benchmark/benchmark.h>

#include <cmath>

#include "cpu/replica_trainer.hpp"
#include "dalesim/model.hpp"
#include "dalesim/task.hpp"

namespace {

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
  const int N = static_cast<int>(state.range(0)), B = 32, T = 50;
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

BENCHMARK_TEMPLATE(BM_TrainStep, float)->Arg(32)->Arg(64)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_TrainStep, double)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
