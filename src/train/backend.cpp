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
    say("backend cuda (requested): " + dev.name);
    return make_cuda_backend(options);
  }
  if (dev.usable) {
    say("backend cuda (auto: device " + dev.name + ")");
    return make_cuda_backend(options);
  }
  say("backend cpu (auto: no usable CUDA device: " + dev.reason + ")");
  return make_cpu_backend(options);
}

}  // namespace dalesim
