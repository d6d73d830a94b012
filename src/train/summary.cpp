// The per-condition summary printed after a run: replicas grouped by every swept axis but the seed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>

#include "train/driver.hpp"

namespace dalesim {

namespace {
struct Acc {
  int n = 0, n_diverged = 0;
  std::vector<double> loss, alpha;
};

// "mean [min, max]" of the replicas: the range, which stays within the quantity's own range and
// says what a few seeds show (a standard deviation of two values says little and can pass 0 or 1).
std::string mean_range(const std::vector<double>& xs) {
  if (xs.empty()) return "-";
  double m = 0, lo = xs[0], hi = xs[0];
  for (double x : xs) m += x, lo = std::min(lo, x), hi = std::max(hi, x);
  m /= xs.size();
  char buf[80];
  if (xs.size() == 1) std::snprintf(buf, sizeof buf, "%.4g", m);
  else std::snprintf(buf, sizeof buf, "%.4g [%.3g, %.3g]", m, lo, hi);
  return buf;
}

// Final alphas both in [0, 0.1] and in [0.9, 1]: the mean describes no replica.
bool bimodal(const std::vector<double>& alpha) {
  bool low = false, high = false;
  for (double a : alpha) low |= a <= 0.1, high |= a >= 0.9;
  return low && high;
}
}  // namespace

void print_condition_summary(const Sweep& sweep, const RunResult& result, std::ostream& out) {
  std::vector<std::string> keys;
  for (const std::string& k : sweep.axis_keys)
    if (k != "seed") keys.push_back(k);
  std::vector<std::string> order;
  std::map<std::string, Acc> groups;
  for (size_t r = 0; r < sweep.replicas.size(); ++r) {
    std::string label;
    for (const auto& [k, v] : sweep.replicas[r].axes)
      if (k != "seed") label += (label.empty() ? "" : "  ") + k + "=" + format_value(v);
    if (label.empty()) label = "(all replicas)";
    if (!groups.count(label)) order.push_back(label);
    Acc& a = groups[label];
    ++a.n;
    if (result.status[r] == ReplicaStatus::diverged) {
      ++a.n_diverged;
      continue;
    }
    if (r < result.final_metrics.size()) {
      a.loss.push_back(result.final_metrics[r].loss);
      if (std::isfinite(result.final_metrics[r].alpha)) a.alpha.push_back(result.final_metrics[r].alpha);
    }
  }
  size_t width = 9;
  for (const auto& l : order) width = std::max(width, l.size());
  char line[512];
  std::snprintf(line, sizeof line, "%-*s  %4s  %-28s  %-28s  %s\n", static_cast<int>(width), "condition", "n",
                "final training loss", "final alpha", "diverged");
  out << line;
  int n_bimodal = 0;
  for (const auto& l : order) {
    const Acc& a = groups[l];
    const bool two_groups = bimodal(a.alpha);
    n_bimodal += two_groups;
    const std::string alpha = mean_range(a.alpha) + (two_groups ? " bimodal" : "");
    std::snprintf(line, sizeof line, "%-*s  %4d  %-28s  %-28s  %d\n", static_cast<int>(width), l.c_str(), a.n,
                  mean_range(a.loss).c_str(), alpha.c_str(), a.n_diverged);
    out << line;
  }
  out << "(mean [min, max] over the replicas of each condition, the last logged training batch";
  if (n_bimodal)
    out << "; bimodal: final alpha both <= 0.1 and >= 0.9 in one condition, so its mean describes no replica";
  out << ")\n";
}

}  // namespace dalesim
