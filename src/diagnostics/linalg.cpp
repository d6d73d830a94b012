// LAPACK-backed eigenvalues, singular values and QR for init and checkpoint diagnostics.
#include "diagnostics/linalg.hpp"

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace dalesim {

namespace {
void check_info(lapack_int info, const char* routine) {
  if (info != 0) throw std::runtime_error(std::string("LAPACK ") + routine + " failed with info = " + std::to_string(info));
}

// LAPACK must never see a NaN or an infinity: dgeev and dgesvd then loop forever, corrupt the heap
// or fail with an argument error (observed with OpenBLAS 0.3.21).
void check_finite(const double* a, std::size_t n, const char* routine) {
  if (!all_finite(a, n))
    throw std::invalid_argument(std::string(routine) + ": the matrix holds a NaN or an infinity");
}
}  // namespace

bool all_finite(const double* a, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k)
    if (!std::isfinite(a[k])) return false;
  return true;
}

double spectral_radius(const double* a, int n) {
  if (n <= 0) return 0.0;
  if (!all_finite(a, static_cast<size_t>(n) * n)) return std::numeric_limits<double>::quiet_NaN();
  std::vector<double> work(a, a + static_cast<size_t>(n) * n), wr(n), wi(n);
  check_info(LAPACKE_dgeev(LAPACK_ROW_MAJOR, 'N', 'N', n, work.data(), n, wr.data(), wi.data(), nullptr, 1,
                           nullptr, 1),
             "dgeev");
  double r = 0;
  for (int k = 0; k < n; ++k) r = std::max(r, std::hypot(wr[k], wi[k]));
  return r;
}

std::vector<double> singular_values(const double* a, int m, int n) {
  const int k = std::min(m, n);
  if (k <= 0) return {};
  if (!all_finite(a, static_cast<size_t>(m) * n)) return std::vector<double>(k, std::numeric_limits<double>::quiet_NaN());
  std::vector<double> work(a, a + static_cast<size_t>(m) * n), s(k), superb(std::max(1, k - 1));
  check_info(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', m, n, work.data(), n, s.data(), nullptr, 1, nullptr, 1,
                            superb.data()),
             "dgesvd");
  return s;
}

void svd(const double* a, int n, std::vector<double>& u, std::vector<double>& s, std::vector<double>& vt) {
  check_finite(a, static_cast<size_t>(n) * n, "svd");
  std::vector<double> work(a, a + static_cast<size_t>(n) * n), superb(std::max(1, n - 1));
  u.assign(static_cast<size_t>(n) * n, 0.0);
  vt.assign(static_cast<size_t>(n) * n, 0.0);
  s.assign(n, 0.0);
  check_info(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'A', 'A', n, n, work.data(), n, s.data(), u.data(), n, vt.data(), n,
                            superb.data()),
             "dgesvd");
}

std::vector<double> compose_svd(const std::vector<double>& u, const std::vector<double>& s,
                                const std::vector<double>& vt, int n) {
  std::vector<double> a(static_cast<size_t>(n) * n, 0.0);
  for (size_t k = 0; k < s.size(); ++k)
    for (int i = 0; i < n; ++i) {
      const double us = u[static_cast<size_t>(i) * n + k] * s[k];
      if (us == 0.0) continue;
      for (int j = 0; j < n; ++j) a[static_cast<size_t>(i) * n + j] += us * vt[k * n + j];
    }
  return a;
}

void orthonormalise(double* a, int n) {
  check_finite(a, static_cast<size_t>(n) * n, "orthonormalise");
  std::vector<double> tau(n);
  check_info(LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, n, n, a, n, tau.data()), "dgeqrf");
  std::vector<double> rdiag(n);
  for (int i = 0; i < n; ++i) rdiag[i] = a[static_cast<size_t>(i) * n + i];
  check_info(LAPACKE_dorgqr(LAPACK_ROW_MAJOR, n, n, n, a, n, tau.data()), "dorgqr");
  for (int j = 0; j < n; ++j)
    if (rdiag[j] < 0)
      for (int i = 0; i < n; ++i) a[static_cast<size_t>(i) * n + j] = -a[static_cast<size_t>(i) * n + j];
}

}  // namespace dalesim
