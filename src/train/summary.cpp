// The per-condition summary printed after a run: replicas grouped by every swept axis but the seed.
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

std::string mean_sd(const std::vector<double>& xs) {
  if (xs.empty()) return "-";
  double m = 0, s = 0;
  for (double x : xs) m += x;
  m /= xs.size();
  for (double x : xs) s += (x - m) * (x - m);
  s = xs.size() > 1 ? std::sqrt(s / (xs.size() - 1)) : 0.0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g +- %.2g", m, s);
  return buf;
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
  std::snprintf(line, sizeof line, "%-*s  %4s  %-20s  %-20s  %s\n", static_cast<int>(width), "condition", "n",
                "final loss", "final alpha", "diverged");
  out << line;
  for (const auto& l : order) {
    const Acc& a = groups[l];
    std::snprintf(line, sizeof line, "%-*s  %4d  %-20s  %-20s  %d\n", static_cast<int>(width), l.c_str(), a.n,
                  mean_sd(a.loss).c_str(), mean_sd(a.alpha).c_str(), a.n_diverged);
    out << line;
  }
}

}  // namespace dalesim
