// Backend selection: `cpu`, `cuda` or `auto`, saying which was chosen and why.
#include <stdexcept>

#include "dalesim/backend.hpp"

namespace dalesim {

std::unique_ptr<Backend> make_backend(const std::string& kind, const BackendOptions& options, std::string* why,
                                      std::string* detail) {
  auto say = [&](const std::string& s) {
    if (why) *why = s;
  };
  if (kind == "cpu") {
    say("using the CPU (--backend cpu)");
    return make_cpu_backend(options);
  }
  if (kind != "cuda" && kind != "auto") throw ConfigError("--backend", kind, "cpu, cuda, auto");
  const CudaDeviceInfo dev = query_cuda_device();
  if (kind == "cuda") {
    if (!dev.usable) throw std::runtime_error("--backend cuda: no usable CUDA device (" + dev.reason + ")");
    say("using the GPU " + dev.name + " (--backend cuda)");
    return make_cuda_backend(options);
  }
  if (dev.usable) {
    say("using the GPU " + dev.name);
    return make_cuda_backend(options);
  }
  // The usual case on a machine without a GPU: said plainly, the CUDA error kept for -v.
  say("no GPU found; using the CPU");
  if (detail) *detail = "CUDA device query: " + dev.reason;
  return make_cpu_backend(options);
}

}  // namespace dalesim
