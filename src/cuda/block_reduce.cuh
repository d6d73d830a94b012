// The block-wide sum the reduction kernels use: CUB's BlockReduce under nvcc, the host SIMT
// runtime's version (same interface, same summation order as CUB's default algorithm) otherwise.
#pragma once

#ifdef DALESIM_SIMT_HOST
#include "cuda/simt/block_reduce.hpp"
namespace dalesim::cuda {
template <class T, int kThreads>
using BlockReduce = simt::BlockReduce<T, kThreads>;
}
#else
#include <cub/block/block_reduce.cuh>
namespace dalesim::cuda {
template <class T, int kThreads>
using BlockReduce = cub::BlockReduce<T, kThreads>;
}
#endif
