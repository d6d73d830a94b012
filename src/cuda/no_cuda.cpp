// Stand-ins for builds without nvcc: no device, and a CUDA backend that explains why it is absent.
#include <stdexcept>

#include "dalesim/backend.hpp"

namespace dalesim {

namespace {
const char* kReason = "dalesim was built without CUDA (nvcc not found at configure time)";
}

CudaDeviceInfo query_cuda_device() {
  CudaDeviceInfo info;
  info.reason = kReason;
  return info;
}

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions&) {
  throw std::runtime_error(std::string("--backend cuda: ") + kReason);
}

}  // namespace dalesim
