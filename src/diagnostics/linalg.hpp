// Dense linear algebra on small host matrices through LAPACK: eigenvalues, singular values, QR.
#pragma once

#include <vector>

namespace dalesim {

// Largest |lambda| of a general real n x n matrix (row-major), from a full eigen-decomposition:
// power iteration is unreliable on non-normal E/I matrices.
double spectral_radius(const double* a, int n);

// Singular values of a row-major m x n matrix, descending.
std::vector<double> singular_values(const double* a, int m, int n);

// Orthonormalises the columns of a row-major n x n matrix in place (QR, Q kept, signs fixed so
// that diag(R) > 0 and the result is Haar-distributed for Gaussian input).
void orthonormalise(double* a, int n);

}  // namespace dalesim
