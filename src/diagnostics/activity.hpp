// Activity diagnostics of a network on a batch (inhibition decorrelates excitatory activity):
// mean pairwise correlation within the E and within the I units, population sparseness
// (Treves-Rolls), and E/I balance (per unit, the correlation over time of its excitatory and
// inhibitory input currents). Computed in double from the rates of a forward pass.
#pragma once

#include <vector>

namespace dalesim {

struct ActivityStats {
  double corr_e, corr_i;  // mean Pearson correlation over pairs of E (I) units; NaN: fewer than 2 varying
  double sparseness;      // mean over (t, b) of (mean_i r)^2 / mean_i r^2; 1 dense .. 1/N one unit; NaN: silent
  double ei_balance;      // mean over (unit, trial) of corr_t(E current, I current); NaN: none defined
};

// r: rates [T, B, N]; col_sign: [N] +1 E, -1 I (presynaptic type); w_rec: effective [N, N] [post, pre].
// The excitatory current into unit i is sum over E units j of W_ij r_j, the inhibitory one minus
// the sum over I units (so both are positive in a Dale network).
ActivityStats activity_stats(const std::vector<double>& r, int T, int B, int N, const std::vector<float>& col_sign,
                             const std::vector<double>& w_rec);

}  // namespace dalesim
