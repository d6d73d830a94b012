// Checked CUDA calls: every runtime call and every launch goes through these, throwing with the
// file, line and CUDA's own error name and message.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace dalesim::cuda {

inline void check_cuda(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return;
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " +
                           cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

}  // namespace dalesim::cuda

#define DALESIM_CUDA_CHECK(call) ::dalesim::cuda::check_cuda((call), #call, __FILE__, __LINE__)
