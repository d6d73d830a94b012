// Dense linear algebra on small host matrices through LAPACK: eigenvalues, singular values, QR.
#pragma once

#include <cstddef>
#include <vector>

namespace dalesim {

// Whether every one of the n values is finite. LAPACK is never given anything else: the
// diagnostics of a non-finite matrix are NaN, and init refuses one.
bool all_finite(const double* a, std::size_t n);

// Largest |lambda| of a general real n x n matrix (row-major), from a full eigen-decomposition:
// power iteration is unreliable on non-normal E/I matrices. NaN for a non-finite matrix.
double spectral_radius(const double* a, int n);

// Singular values of a row-major m x n matrix, descending; all NaN for a non-finite matrix.
std::vector<double> singular_values(const double* a, int m, int n);

// Full SVD of a row-major n x n matrix: a = u diag(s) vt, all row-major, s descending. Throws
// std::invalid_argument for a non-finite matrix (as orthonormalise does).
void svd(const double* a, int n, std::vector<double>& u, std::vector<double>& s, std::vector<double>& vt);

// a = u diag(s) vt for row-major n x n u and vt (only the first s.size() singular triplets).
std::vector<double> compose_svd(const std::vector<double>& u, const std::vector<double>& s,
                                const std::vector<double>& vt, int n);

// Orthonormalises the columns of a row-major n x n matrix in place (QR, Q kept, signs fixed so
// that diag(R) > 0 and the result is Haar-distributed for Gaussian input).
void orthonormalise(double* a, int n);

}  // namespace dalesim
