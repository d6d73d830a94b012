// Stand-in device query for builds without nvcc.
#include "dalesim/backend.hpp"

namespace dalesim {

CudaDeviceInfo query_cuda_device() {
  CudaDeviceInfo info;
  info.reason = "dalesim was built without CUDA (nvcc not found at configure time)";
  return info;
}

}  // namespace dalesim
