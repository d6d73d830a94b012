// One row-major matrix product of a fixed shape, prepared once and called many times: the
// per-step recurrent products of a replica (T calls per iteration on the same shape) and its
// weight gradient. With libxsmm, the kernel is machine code generated for the core the process
// runs on (AVX-512, AVX2, ...: libxsmm reads CPUID); without it, or where libxsmm declines the
// shape, the product goes to OpenBLAS.
#pragma once

#include <string>

namespace dalesim::cpu {

template <class Real>
class FixedGemm {
 public:
  FixedGemm() = default;
  // C[M,N] = op(A) B + beta C, every matrix packed row-major: op(A) = A [M,K], or A^T of A [K,M]
  // with `trans_a`; B [K,N]; C [M,N].
  FixedGemm(bool trans_a, int M, int N, int K, Real beta);

  void operator()(const Real* A, const Real* B, Real* C) const;

  bool same_shape(bool trans_a, int M, int N, int K, Real beta) const {
    return trans_a == trans_a_ && M == M_ && N == N_ && K == K_ && beta == beta_;
  }
  // "libxsmm:<ISA>" or "openblas".
  std::string path() const;

 private:
  bool trans_a_ = false;
  int M_ = 0, N_ = 0, K_ = 0;
  Real beta_ = 0;
  // The libxsmm kernels' type (libxsmm_smmfunction / libxsmm_dmmfunction); null: OpenBLAS. A long
  // K is cut into blocks of kKBlock (first, with beta; then accumulating; then the remainder).
  using Kernel = void (*)(const Real* a, const Real* b, Real* c, ...);
  Kernel kernel_ = nullptr, kernel_acc_ = nullptr, kernel_rem_ = nullptr;
  int k_block_ = 0;  // 0: one kernel over all of K
};

// Above 2 kKBlock, a product with op(A) = A^T runs K in blocks of kKBlock rows on libxsmm (the
// operands then stay in L2: the recurrent gradient at N = 256, K = 1568 goes from 125 to 170
// GFLOP/s on AVX-512), or goes to OpenBLAS where libxsmm's kernels are AVX2 (fixed_gemm.cpp).
constexpr int kKBlock = 128;

// The kernel path FixedGemm takes on this machine for the recurrent products ("libxsmm:<ISA>",
// or "openblas" when dalesim is built without libxsmm), for benchmark records.
std::string fixed_gemm_path();

extern template class FixedGemm<float>;
extern template class FixedGemm<double>;

}  // namespace dalesim::cpu
