// Backend selection: `cpu`, `cuda` or `auto`, saying which was chosen and why.
#include <stdexcept>

#include "dalesim/backend.hpp"

namespace dalesim {

std::unique_ptr<Backend> make_backend(const std::string& kind, const BackendOptions& options, std::string* why) {
  auto say = [&](const std::string& s) {
    if (why) *why = s;
  };
  if (kind == "cpu") {
    say("backend cpu (requested)");
    return make_cpu_backend(options);
  }
  if (kind != "cuda" && kind != "auto") throw ConfigError("--backend", kind, "cpu, cuda, auto");
  const CudaDeviceInfo dev = query_cuda_device();
  if (kind == "cuda") {
    if (!dev.usable) throw std::runtime_error("--backend cuda: no usable CUDA device (" + dev.reason + ")");
    throw std::runtime_error("--backend cuda: the CUDA training backend is not implemented yet (device " +
                             dev.name + " found); use --backend cpu");
  }
  if (dev.usable)
    say("backend cpu (auto: CUDA device " + dev.name + " found, but the CUDA training backend is not built yet)");
  else
    say("backend cpu (auto: no usable CUDA device: " + dev.reason + ")");
  return make_cpu_backend(options);
}

}  // namespace dalesim
