// The one place kernels are launched: every launch in src/cuda/ goes through launch() (by the
// DALESIM_LAUNCH macro, which passes the kernel's name). Under nvcc it is the ordinary launch
// followed by cudaGetLastError; in the host build it hands the kernel to the host SIMT runtime.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "cuda/cuda_check.hpp"

namespace dalesim::cuda {

template <class... Params, class... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared_bytes,
            cudaStream_t stream, Args&&... args) {
#ifdef DALESIM_SIMT_HOST
  simt::launch(name, kernel, grid, block, shared_bytes, stream, std::forward<Args>(args)...);
#else
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
#endif
  check_cuda(cudaGetLastError(), name, __FILE__, __LINE__);
}

}  // namespace dalesim::cuda

#define DALESIM_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  ::dalesim::cuda::launch(#kernel, kernel, grid, block, shared_bytes, stream, __VA_ARGS__)
