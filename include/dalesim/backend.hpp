// The one runtime interface between the driver and an arithmetic backend (CPU or CUDA):
// coarse-grained, host data in and out.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dalesim/history.hpp"
#include "dalesim/model.hpp"
#include "dalesim/task.hpp"

namespace dalesim {

struct BackendOptions {
  int n_threads = 0;  // CPU worker threads; 0 = all hardware threads
  // CUDA products: "tiled" (own kernel; a replica's numbers never depend on its bucket) or
  // "cublas" (cublasSgemmStridedBatched, strict FP32).
  std::string cuda_gemm = "tiled";
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;    // "cpu", "cuda"
  virtual std::string device() const = 0;  // human-readable device description
  // Takes the host state of every replica (the models must outlive the backend): parameters, and
  // the optimiser state and diverged step that a resumed run carries over.
  virtual void upload(const std::vector<ReplicaModel>& models) = 0;
  // One training iteration of every replica on its batch (batches[r] for replica r; replicas may
  // share a batch). When `metrics` is given, fills one StepMetrics per replica, measured before
  // the update; pass nullptr on steps that are not logged (a device backend then copies nothing).
  virtual void train_step(std::int64_t iteration, const std::vector<const Batch*>& batches,
                          std::vector<StepMetrics>* metrics) = 0;
  // Forward pass only (no gradient, no update) of every live replica on its batch: loss,
  // accuracy and mean rate, e.g. on held-out data at checkpoints. Diverged replicas give NaN.
  virtual void evaluate(std::int64_t iteration, const std::vector<const Batch*>& batches,
                        std::vector<StepMetrics>& metrics) = 0;
  // Waits until the work queued by train_step has run (a device backend may return from an
  // unlogged train_step before its device finished it). For timing; nothing else needs it.
  virtual void synchronize() {}
  // Copies the current parameters and optimiser state back into the host models.
  virtual void download(std::vector<ReplicaModel>& models) = 0;
  // Iteration at which each replica diverged, -1 for replicas still training.
  virtual std::vector<std::int64_t> diverged_steps() const = 0;
  // The training kernel replica `m` runs with batches of `batch` trials, as recorded in
  // /replicas/kernel_used: "cpu" on the CPU backend, "v1" or "v2" on the CUDA backend (docs/cuda.md).
  virtual std::string kernel_of(const ReplicaModel& m, int batch) const {
    (void)m, (void)batch;
    return name();
  }
  // Device memory held for training (0 for host backends).
  virtual std::size_t device_bytes() const { return 0; }
};

// The CUDA device as seen by this binary: usable, or why not (the CUDA error's name).
struct CudaDeviceInfo {
  bool usable = false;
  std::string name;    // e.g. "NVIDIA H100 80GB HBM3"
  std::string reason;  // when not usable: "cudaErrorNoDevice: no CUDA-capable device is detected"
  int cc_major = 0, cc_minor = 0, sm_count = 0;
  double clock_mhz = 0;
  double fp32_peak_gflops = 0;  // SMs x FP32 lanes per SM x 2 (FMA) x boost clock
  std::size_t total_bytes = 0;  // global memory, for refusing a sweep that cannot fit before allocating
};
CudaDeviceInfo query_cuda_device();

// Builds a backend: kind "cpu", "cuda" or "auto" (CUDA when usable, else CPU). `why` receives one
// line saying which backend was chosen and why. Throws ConfigError for an unknown kind, and
// std::runtime_error when "cuda" is asked for but cannot be used.
// `why` says in plain words which backend was chosen; `detail`, when given, the device query's own
// error when `auto` found no usable CUDA device (empty otherwise).
std::unique_ptr<Backend> make_backend(const std::string& kind, const BackendOptions& options, std::string* why,
                                      std::string* detail = nullptr);

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options);
// Throws std::runtime_error naming the CUDA error when no device is usable (or CUDA is not built).
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);

}  // namespace dalesim
