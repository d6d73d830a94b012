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
  info.cc_major = prop.major;
  info.cc_minor = prop.minor;
  info.sm_count = prop.multiProcessorCount;
  info.total_bytes = prop.totalGlobalMem;
  int clock_khz = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0) == cudaSuccess) info.clock_mhz = clock_khz / 1000.0;
  // FP32 lanes per SM: 64 on Volta/Turing and GA100, 128 on GA10x, Ada, Hopper and Blackwell.
  const int lanes = (prop.major == 7 || (prop.major == 8 && prop.minor == 0)) ? 64 : 128;
  info.fp32_peak_gflops = info.sm_count * lanes * 2.0 * info.clock_mhz / 1000.0;
  return info;
}

}  // namespace dalesim
