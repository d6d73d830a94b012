// DALESIM_HOST_DEVICE: marks inline math shared by the CPU backend and CUDA kernels.
#pragma once

#if defined(__CUDACC__)
#define DALESIM_HOST_DEVICE __host__ __device__
#else
#define DALESIM_HOST_DEVICE
#endif
