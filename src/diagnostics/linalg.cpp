// LAPACK-backed eigenvalues, singular values and QR for init and checkpoint diagnostics.
#include "diagnostics/linalg.hpp"

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace dalesim {

namespace {
void check_info(lapack_int info, const char* routine) {
  if (info != 0) throw std::runtime_error(std::string("LAPACK ") + routine + " failed with info = " + std::to_string(info));
}
}  // namespace

double spectral_radius(const double* a, int n) {
  if (n <= 0) return 0.0;
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
  std::vector<double> work(a, a + static_cast<size_t>(m) * n), s(k), superb(std::max(1, k - 1));
  check_info(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', m, n, work.data(), n, s.data(), nullptr, 1, nullptr, 1,
                            superb.data()),
             "dgesvd");
  return s;
}

void orthonormalise(double* a, int n) {
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
