// Checkpoint diagnostics; one SVD serves entropy, effective rank and the stored spectrum.
#include "diagnostics/diagnostics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "diagnostics/linalg.hpp"

namespace dalesim {

namespace {
double spectrum_entropy(const std::vector<double>& s) {
  double total = 0;
  for (double x : s) total += x;
  if (total <= 0) return 0.0;
  double h = 0;
  for (double x : s)
    if (x > 0) h -= (x / total) * std::log(x / total);
  return h;
}
}  // namespace

double svd_entropy(const std::vector<double>& s) {
  return s.size() < 2 ? 0.0 : spectrum_entropy(s) / std::log(static_cast<double>(s.size()));
}

double effective_rank(const std::vector<double>& s) {
  double total = 0;
  for (double x : s) total += x;
  return total > 0 ? std::exp(spectrum_entropy(s)) : 0.0;
}

Moments moments(const std::vector<double>& xs) {
  Moments m;
  if (xs.empty()) return m;
  const double n = static_cast<double>(xs.size());
  for (double x : xs) m.mean += x;
  m.mean /= n;
  double m2 = 0, m3 = 0;
  for (double x : xs) {
    const double d = x - m.mean;
    m2 += d * d;
    m3 += d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m.std = std::sqrt(m2);
  m.skew = m2 > 0 ? m3 / std::pow(m2, 1.5) : 0.0;
  return m;
}

Diagnostics non_finite_diagnostics(int N) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Diagnostics d;
  d.spectral_radius = d.svd_entropy = d.effective_rank = d.rel_weight_change = nan;
  d.singular_values.assign(N, static_cast<float>(nan));
  d.logw_hist_e.assign(kLogwBins, static_cast<float>(nan));
  d.logw_hist_i.assign(kLogwBins, static_cast<float>(nan));
  d.logw_e_mean = d.logw_e_std = d.logw_e_skew = d.logw_i_mean = d.logw_i_std = d.logw_i_skew = nan;
  d.rep_alignment = d.sign_similarity = d.units_unchanged = nan;
  d.geometry_p1_5 = d.geometry_p2 = d.geometry_p3 = d.geometry_negentropy = nan;
  return d;
}

Diagnostics compute_diagnostics(const ReplicaWeights& w, const std::vector<float>& w0, int n_exc) {
  const int N = w.N;
  const std::vector<double> a(w.W_rec.begin(), w.W_rec.end());
  Diagnostics d;
  if (!all_finite(a.data(), a.size())) return non_finite_diagnostics(N);
  d.spectral_radius = spectral_radius(a.data(), N);
  const std::vector<double> s = singular_values(a.data(), N, N);
  d.singular_values.assign(s.begin(), s.end());
  d.svd_entropy = svd_entropy(s);
  d.effective_rank = effective_rank(s);
  double diff = 0, base = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    diff += (a[k] - w0[k]) * (a[k] - w0[k]);
    base += double(w0[k]) * w0[k];
  }
  d.rel_weight_change = base > 0 ? std::sqrt(diff / base) : 0.0;
  std::vector<double> log_e, log_i;
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      const double x = a[static_cast<size_t>(i) * N + j];
      if (x != 0) (j < n_exc ? log_e : log_i).push_back(std::log(std::fabs(x)));
    }
  const Moments me = moments(log_e), mi = moments(log_i);
  auto histogram = [](const std::vector<double>& xs) {
    std::vector<float> h(kLogwBins, 0.f);
    for (double x : xs) {
      const int k = static_cast<int>(std::floor((x - kLogwMin) / kLogwBinWidth));
      h[std::clamp(k, 0, kLogwBins - 1)] += 1.f;
    }
    return h;
  };
  d.logw_hist_e = histogram(log_e);
  d.logw_hist_i = histogram(log_i);
  d.logw_e_mean = me.mean;
  d.logw_e_std = me.std;
  d.logw_e_skew = me.skew;
  d.logw_i_mean = mi.mean;
  d.logw_i_std = mi.std;
  d.logw_i_skew = mi.skew;
  return d;
}

}  // namespace dalesim
