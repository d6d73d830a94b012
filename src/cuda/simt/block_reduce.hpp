// Host version of cub::BlockReduce<T, kThreads>::Sum for a 1-D block: the order of CUB's default
// algorithm (BLOCK_REDUCE_WARP_REDUCTIONS): a shuffle tree within each warp (offsets 1, 2, 4, 8,
// 16), then the warp totals added in warp order. As in CUB, only thread 0's result is defined;
// the others get NaN here, so a kernel that used theirs would show it.
#pragma once

#include <limits>

#include "cuda/simt/runtime.hpp"

namespace dalesim::simt {

template <class T, int kThreads>
class BlockReduce {
 public:
  struct TempStorage {
    T lanes[kThreads];
  };
  explicit BlockReduce(TempStorage& storage) : s_(storage) {}

  T Sum(T x) {
    const int tid = static_cast<int>(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
    s_.lanes[tid] = x;
    __syncthreads();
    if (tid != 0) return std::numeric_limits<T>::has_quiet_NaN ? std::numeric_limits<T>::quiet_NaN() : x;
    T total{};
    for (int w0 = 0; w0 < kThreads; w0 += 32) {
      T v[32];
      const int lanes = kThreads - w0 < 32 ? kThreads - w0 : 32;
      for (int l = 0; l < lanes; ++l) v[l] = s_.lanes[w0 + l];
      for (int offset = 1; offset < lanes; offset *= 2)
        for (int l = 0; l + offset < lanes; l += 2 * offset) v[l] = v[l] + v[l + offset];
      total = w0 == 0 ? v[0] : total + v[0];
    }
    return total;
  }

 private:
  TempStorage& s_;
};

}  // namespace dalesim::simt
