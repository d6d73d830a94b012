// Activity diagnostics: correlations, sparseness and E/I balance of a batch's rates.
#include "diagnostics/activity.hpp"

#include <cmath>
#include <cstddef>
#include <limits>

namespace dalesim {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Pearson correlation of x and y over n samples (strides sx, sy); NaN when either is constant.
double pearson(const double* x, std::size_t sx, const double* y, std::size_t sy, std::size_t n) {
  double mx = 0, my = 0;
  for (std::size_t k = 0; k < n; ++k) mx += x[k * sx], my += y[k * sy];
  mx /= n, my /= n;
  double cxy = 0, cxx = 0, cyy = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const double dx = x[k * sx] - mx, dy = y[k * sy] - my;
    cxy += dx * dy, cxx += dx * dx, cyy += dy * dy;
  }
  // Constant within rounding: no correlation is defined.
  const double tiny = 1e-24 * n;
  if (cxx <= tiny || cyy <= tiny) return kNaN;
  return cxy / std::sqrt(cxx * cyy);
}

// Mean correlation over the pairs of units of one type, samples (t, b) with stride N.
double mean_pair_correlation(const std::vector<double>& r, std::size_t samples, int N,
                             const std::vector<float>& col_sign, bool exc) {
  double sum = 0;
  long long n = 0;
  for (int i = 0; i < N; ++i) {
    if ((col_sign[i] > 0) != exc) continue;
    for (int k = i + 1; k < N; ++k) {
      if ((col_sign[k] > 0) != exc) continue;
      const double c = pearson(r.data() + i, N, r.data() + k, N, samples);
      if (std::isnan(c)) continue;
      sum += c;
      ++n;
    }
  }
  return n ? sum / n : kNaN;
}

}  // namespace

ActivityStats activity_stats(const std::vector<double>& r, int T, int B, int N, const std::vector<float>& col_sign,
                             const std::vector<double>& w_rec) {
  ActivityStats s{kNaN, kNaN, kNaN, kNaN};
  const std::size_t samples = static_cast<std::size_t>(T) * B;
  if (samples < 2 || N < 1 || r.size() != samples * N) return s;
  s.corr_e = mean_pair_correlation(r, samples, N, col_sign, true);
  s.corr_i = mean_pair_correlation(r, samples, N, col_sign, false);
  double sp = 0;
  std::size_t n_sp = 0;
  for (std::size_t q = 0; q < samples; ++q) {
    double m1 = 0, m2 = 0;
    for (int i = 0; i < N; ++i) m1 += r[q * N + i], m2 += r[q * N + i] * r[q * N + i];
    if (m2 <= 0) continue;
    sp += (m1 / N) * (m1 / N) / (m2 / N);
    ++n_sp;
  }
  if (n_sp) s.sparseness = sp / n_sp;
  // Input currents by presynaptic type, per (t, b, i), then correlated over t per (unit, trial).
  if (T >= 2) {
    std::vector<double> ex(samples * N, 0.0), in(samples * N, 0.0);
    for (std::size_t q = 0; q < samples; ++q)
      for (int i = 0; i < N; ++i) {
        double e = 0, h = 0;
        for (int j = 0; j < N; ++j) {
          const double c = w_rec[static_cast<std::size_t>(i) * N + j] * r[q * N + j];
          if (col_sign[j] > 0) e += c;
          else h -= c;
        }
        ex[q * N + i] = e;
        in[q * N + i] = h;
      }
    double sum = 0;
    long long n = 0;
    const std::size_t stride = static_cast<std::size_t>(B) * N;  // from step t to t + 1 of one trial
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < N; ++i) {
        const std::size_t at = static_cast<std::size_t>(b) * N + i;
        const double c = pearson(ex.data() + at, stride, in.data() + at, stride, T);
        if (std::isnan(c)) continue;
        sum += c;
        ++n;
      }
    if (n) s.ei_balance = sum / n;
  }
  return s;
}

}  // namespace dalesim
