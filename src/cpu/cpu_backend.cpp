// The CPU backend: one ReplicaTrainer per replica (float or double, as each replica asks), run on
// worker threads across replicas with single-threaded BLAS inside (for N <= ~128, threads across
// replicas beat BLAS's own threading).
#include <cblas.h>

#include <memory>
#include <thread>
#include <variant>

#include "cpu/parallel.hpp"
#include "cpu/replica_trainer.hpp"
#include "dalesim/backend.hpp"

extern "C" void openblas_set_num_threads(int);

namespace dalesim {

namespace {

using AnyTrainer = std::variant<std::unique_ptr<cpu::ReplicaTrainer<float>>, std::unique_ptr<cpu::ReplicaTrainer<double>>>;

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& options) {
    n_threads_ = options.n_threads > 0 ? options.n_threads : static_cast<int>(std::thread::hardware_concurrency());
    n_threads_ = std::max(1, n_threads_);
    openblas_set_num_threads(1);
  }
  std::string name() const override { return "cpu"; }
  std::string device() const override {
    return "CPU (" + std::to_string(n_threads_) + " thread" + (n_threads_ == 1 ? "" : "s") + ")";
  }

  void upload(const std::vector<ReplicaModel>& models) override {
    trainers_.clear();
    for (const ReplicaModel& m : models) {
      if (m.cfg->train.precision == Precision::f64)
        trainers_.emplace_back(std::make_unique<cpu::ReplicaTrainer<double>>(m));
      else
        trainers_.emplace_back(std::make_unique<cpu::ReplicaTrainer<float>>(m));
    }
  }

  void train_step(std::int64_t iteration, const std::vector<const Batch*>& batches,
                  std::vector<StepMetrics>* metrics) override {
    step_metrics_.resize(trainers_.size());
    parallel_for(static_cast<int>(trainers_.size()), n_threads_, [&](int r) {
      std::visit([&](auto& t) { step_metrics_[r] = t->train_step(*batches[r], iteration); }, trainers_[r]);
    });
    if (metrics) *metrics = step_metrics_;
  }

  void evaluate(std::int64_t iteration, const std::vector<const Batch*>& batches,
                std::vector<StepMetrics>& metrics) override {
    metrics.resize(trainers_.size());
    parallel_for(static_cast<int>(trainers_.size()), n_threads_, [&](int r) {
      std::visit([&](auto& t) { metrics[r] = t->evaluate(*batches[r], iteration); }, trainers_[r]);
    });
  }

  void download(std::vector<ReplicaModel>& models) override {
    for (size_t r = 0; r < trainers_.size(); ++r) std::visit([&](auto& t) { t->write_back(models[r]); }, trainers_[r]);
  }

  std::vector<std::int64_t> diverged_steps() const override {
    std::vector<std::int64_t> out;
    for (const auto& tr : trainers_) std::visit([&](const auto& t) { out.push_back(t->diverged_step()); }, tr);
    return out;
  }

 private:
  int n_threads_ = 1;
  std::vector<AnyTrainer> trainers_;
  std::vector<StepMetrics> step_metrics_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace dalesim
