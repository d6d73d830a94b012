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
  const libxsmm_blasint m = N, n = M, k = K, lda = N, ldb = trans_a ? M : K, ldc = N;
  const int flags = trans_a ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const Real alpha = 1;
  if constexpr (sizeof(Real) == sizeof(float))
    kernel_ = libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, nullptr);
  else
    kernel_ = libxsmm_dmmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, nullptr);
#endif
}

template <class Real>
void FixedGemm<Real>::operator()(const Real* A, const Real* B, Real* C) const {
  if (kernel_) {
    kernel_(B, A, C);
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
