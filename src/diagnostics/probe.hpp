// Activity on a fixed probe batch, compared with step 0: the rich-vs-lazy measures of Liu et al.
// 2024. The forward pass is the CPU reference's, in double, on the host copy of the weights.
#pragma once

#include <cstdint>
#include <vector>

#include "dalesim/model.hpp"
#include "diagnostics/activity.hpp"
#include "dalesim/task.hpp"

namespace dalesim {

// The recurrent noise of probe passes is that of this iteration, the same at every checkpoint.
constexpr std::int64_t kProbeIteration = -(std::int64_t{1} << 40);

struct ProbeActivity {
  std::vector<double> kernel;  // [B, B] H H^T of the last step's rates H [B, N]
  std::vector<bool> active;    // [T, B, N] rate > 0
  int T = 0, B = 0, N = 0;
  ActivityStats stats{};       // correlations, sparseness, E/I balance of the probe's rates
};

ProbeActivity probe_activity(const ReplicaModel& model, const Batch& probe);

struct ProbeComparison {
  double rep_alignment, sign_similarity, units_unchanged;
};

// Compares activity now with activity at step 0 (NaN where a kernel is all zero).
ProbeComparison compare_probes(const ProbeActivity& initial, const ProbeActivity& now);

}  // namespace dalesim
