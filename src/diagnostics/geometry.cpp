// Dual-coordinate changes under candidate potentials and their distance from a Gaussian.
#include "diagnostics/geometry.hpp"

#include <algorithm>
#include <cmath>

namespace dalesim {

namespace {

// grad phi for phi(w) = (1/p) sum |w|^p, and for the negative entropy sum |w| ln|w|.
double dual(double w, double p) {
  const double s = w > 0 ? 1.0 : -1.0;
  if (p <= 0) return s * (std::log(std::fabs(w)) + 1);  // negative entropy
  return s * std::pow(std::fabs(w), p - 1);
}

}  // namespace

double dcdf_from_gaussian(std::vector<double> x) {
  if (x.size() < 2) return 0.0;
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= x.size();
  for (double v : x) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / x.size());
  if (sd == 0) return 0.0;
  for (double& v : x) v = (v - mean) / sd;
  std::sort(x.begin(), x.end());
  const int n_grid = 1000;
  const double lo = -5, hi = 5, dz = (hi - lo) / (n_grid - 1);
  double total = 0;
  size_t below = 0;
  for (int k = 0; k < n_grid; ++k) {
    const double z = lo + k * dz;
    while (below < x.size() && x[below] <= z) ++below;
    const double f_emp = static_cast<double>(below) / x.size();
    const double phi = 0.5 * std::erfc(-z / std::sqrt(2.0));
    total += std::fabs(f_emp - phi) * dz;
  }
  return total;
}

std::vector<GeometryScore> geometry_scores(const std::vector<double>& w0, const std::vector<double>& wt) {
  const std::pair<const char*, double> candidates[] = {{"p=1.5", 1.5}, {"p=2", 2.0}, {"p=3", 3.0}, {"negentropy", 0.0}};
  std::vector<GeometryScore> out;
  for (const auto& [name, p] : candidates) {
    std::vector<double> delta;
    for (size_t k = 0; k < w0.size() && k < wt.size(); ++k) {
      if (w0[k] == 0 || wt[k] == 0) continue;
      if (p <= 0 && (w0[k] > 0) != (wt[k] > 0)) continue;  // entropy potential lives on a fixed orthant
      delta.push_back(dual(wt[k], p) - dual(w0[k], p));
    }
    out.push_back({name, dcdf_from_gaussian(std::move(delta))});
  }
  std::sort(out.begin(), out.end(), [](const GeometryScore& a, const GeometryScore& b) { return a.dcdf < b.dcdf; });
  return out;
}

}  // namespace dalesim
