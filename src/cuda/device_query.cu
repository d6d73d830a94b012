// CUDA device query: is there a usable device, and if not, the CUDA error that says why.
#include <cuda_runtime.h>

#include <string>

#include "dalesim/backend.hpp"

namespace dalesim {

CudaDeviceInfo query_cuda_device() {
  CudaDeviceInfo info;
  int count = 0;
  // With the static runtime and no driver this returns cudaErrorInsufficientDriver, not
  // cudaErrorNoDevice: any error means "no usable device", reported by name.
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.reason = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    cudaGetLastError();
    return info;
  }
  if (count == 0) {
    info.reason = "cudaErrorNoDevice: no CUDA-capable device is detected";
    return info;
  }
  cudaDeviceProp prop{};
  const cudaError_t perr = cudaGetDeviceProperties(&prop, 0);
  if (perr != cudaSuccess) {
    info.reason = std::string(cudaGetErrorName(perr)) + ": " + cudaGetErrorString(perr);
    return info;
  }
  info.usable = true;
  info.name = prop.name;
  return info;
}

}  // namespace dalesim
