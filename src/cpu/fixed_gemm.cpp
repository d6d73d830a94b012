// FixedGemm: a libxsmm kernel dispatched once per shape, or OpenBLAS (see fixed_gemm.hpp).
#include "cpu/fixed_gemm.hpp"

#include <mutex>

#include "cpu/blas.hpp"

#ifdef DALESIM_HAVE_LIBXSMM
#include <libxsmm.h>
#endif

namespace dalesim::cpu {

namespace {
#ifdef DALESIM_HAVE_LIBXSMM
void init_libxsmm() {
  static std::once_flag once;
  std::call_once(once, [] { libxsmm_init(); });
}
#endif
}  // namespace

// libxsmm is column-major: the row-major C = op(A) B is the column-major C' = B' op(A)', where '
// reads a row-major buffer as column-major (its transpose). So libxsmm's "a" is our B (m = N,
// lda = N), its "b" our A (n = M; transposed in libxsmm's sense when op(A) = A^T, ldb = M, else
// ldb = K), and C keeps ldc = N. libxsmm generates no kernel for a transposed "a", which is why
// FixedGemm offers no op(B).
template <class Real>
FixedGemm<Real>::FixedGemm(bool trans_a, int M, int N, int K, Real beta)
    : trans_a_(trans_a), M_(M), N_(N), K_(K), beta_(beta) {
#ifdef DALESIM_HAVE_LIBXSMM
  init_libxsmm();
  // The gradients' products (op(A) = A^T over a long K = T B): in blocks of K on libxsmm's
  // AVX-512 kernels; with its AVX2 ones they stay with OpenBLAS (measured at K = 1568, the
  // recurrent gradient: 45-75 GFLOP/s against OpenBLAS's 100, with or without blocks).
  const bool long_k = trans_a && K > 2 * kKBlock;
  if (long_k && libxsmm_get_target_archid() < LIBXSMM_X86_AVX512) return;
  auto dispatch = [&](int k, Real b) -> Kernel {
    const libxsmm_blasint m = N, n = M, kk = k, lda = N, ldb = trans_a ? M : k, ldc = N;
    const int flags = trans_a ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
    const Real alpha = 1;
    if constexpr (sizeof(Real) == sizeof(float))
      return libxsmm_smmdispatch(m, n, kk, &lda, &ldb, &ldc, &alpha, &b, &flags, nullptr);
    else
      return libxsmm_dmmdispatch(m, n, kk, &lda, &ldb, &ldc, &alpha, &b, &flags, nullptr);
  };
  if (!long_k) {
    kernel_ = dispatch(K, beta);
    return;
  }
  // In A [K,M] and B [K,N] a block of K is a block of rows, contiguous.
  k_block_ = kKBlock;
  kernel_ = dispatch(kKBlock, beta);
  kernel_acc_ = dispatch(kKBlock, Real(1));
  if (K % kKBlock) kernel_rem_ = dispatch(K % kKBlock, Real(1));
  if (!kernel_ || !kernel_acc_ || (K % kKBlock && !kernel_rem_)) kernel_ = nullptr, k_block_ = 0;
#endif
}

template <class Real>
void FixedGemm<Real>::operator()(const Real* A, const Real* B, Real* C) const {
  if (kernel_ && !k_block_) {
    kernel_(B, A, C);
    return;
  }
  if (kernel_) {  // op(A) = A^T: block b is rows [b kKBlock, ...) of A [K,M] and of B [K,N]
    const int full = K_ / k_block_;
    for (int b = 0; b < full; ++b)
      (b == 0 ? kernel_ : kernel_acc_)(B + static_cast<size_t>(b) * k_block_ * N_,
                                       A + static_cast<size_t>(b) * k_block_ * M_, C);
    if (kernel_rem_)  // full >= 2: K > 2 kKBlock
      kernel_rem_(B + static_cast<size_t>(full) * k_block_ * N_, A + static_cast<size_t>(full) * k_block_ * M_, C);
    return;
  }
  gemm(trans_a_, false, M_, N_, K_, Real(1), A, trans_a_ ? M_ : K_, B, N_, beta_, C, N_);
}

template <class Real>
std::string FixedGemm<Real>::path() const {
#ifdef DALESIM_HAVE_LIBXSMM
  if (kernel_) return std::string("libxsmm:") + libxsmm_get_target_arch();
#endif
  return "openblas";
}

std::string fixed_gemm_path() { return FixedGemm<float>(false, 32, 128, 128, 1.0f).path(); }

template class FixedGemm<float>;
template class FixedGemm<double>;

}  // namespace dalesim::cpu
