// Checkpoint diagnostics of a recurrent matrix (SPEC §6): spectrum, SVD entropy, effective rank,
// relative change from the initial matrix, and log-weight statistics by presynaptic type.
#pragma once

#include <vector>

#include "dalesim/history.hpp"

namespace dalesim {

// Normalised SVD entropy -sum p log p / log N with p = s / sum s (0 for N < 2 or all-zero s).
double svd_entropy(const std::vector<double>& s);
// Effective rank exp(-sum p log p) (Roy & Vetterli).
double effective_rank(const std::vector<double>& s);

// Mean, standard deviation and skewness of a sample (zeros when empty).
struct Moments {
  double mean = 0, std = 0, skew = 0;
};
Moments moments(const std::vector<double>& xs);

// Diagnostics of the effective W_rec of `w` against the initial effective matrix `w0` ([N, N]);
// E columns are the first n_exc.
// A NaN for every one of them when W_rec holds a NaN or an infinity (a diverged replica).
Diagnostics compute_diagnostics(const ReplicaWeights& w, const std::vector<float>& w0, int n_exc);
// What such a replica's checkpoint records: NaN everywhere, N singular values.
Diagnostics non_finite_diagnostics(int N);

}  // namespace dalesim
