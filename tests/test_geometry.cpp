// The mirror-descent geometry test names the geometry that trained a linear regression.
#include <gtest/gtest.h>

#include <cmath>

#include "dalesim/rng.hpp"
#include "diagnostics/geometry.hpp"

namespace dalesim {
namespace {

// Full-batch linear regression with many weights and few samples (the lazy regime of Pogodin et
// al.): D weights, n samples, labels +-1, MSE. `eg` selects exponentiated gradient over GD.
std::vector<double> train_regression(const std::vector<double>& w0, int n, bool eg, double lr, int epochs) {
  const int D = static_cast<int>(w0.size());
  const CounterRng rng{77, 1};
  std::vector<double> X(static_cast<size_t>(n) * D), y(n);
  for (size_t k = 0; k < X.size(); ++k) X[k] = rng.normal(k);
  for (int i = 0; i < n; ++i) y[i] = rng.uniform(X.size() + i) < 0.5 ? -1.0 : 1.0;
  std::vector<double> w = w0, grad(D), resid(n);
  for (int e = 0; e < epochs; ++e) {
    for (int i = 0; i < n; ++i) {
      double z = 0;
      for (int j = 0; j < D; ++j) z += X[static_cast<size_t>(i) * D + j] * w[j];
      resid[i] = z - y[i];
    }
    std::fill(grad.begin(), grad.end(), 0.0);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < D; ++j) grad[j] += 2 * resid[i] * X[static_cast<size_t>(i) * D + j] / n;
    for (int j = 0; j < D; ++j) {
      if (eg)
        w[j] *= std::exp(-lr * (w[j] > 0 ? 1 : -1) * grad[j]);
      else
        w[j] -= lr * grad[j];
    }
  }
  double loss = 0;
  for (double r : resid) loss += r * r;
  EXPECT_LT(loss / n, 0.05) << (eg ? "EG" : "GD") << " did not fit";
  return w;
}

TEST(Geometry, GaussianSampleIsCloseAndSkewedOneIsFar) {
  const CounterRng rng{5, 0};
  std::vector<double> normal, expo;
  for (int k = 0; k < 20000; ++k) {
    normal.push_back(rng.normal(k));
    expo.push_back(rng.exponential(k, 1.0));
  }
  EXPECT_LT(dcdf_from_gaussian(normal), 0.02);
  EXPECT_GT(dcdf_from_gaussian(expo), 0.1);
}

TEST(Geometry, NamesGradientDescentAndExponentiatedGradient) {
  const int D = 2000, n = 45;  // n ~ sqrt(D)
  const CounterRng rng{3, 2};
  std::vector<double> w0(D);
  for (int j = 0; j < D; ++j) w0[j] = rng.normal(j) / std::sqrt(static_cast<double>(D));
  const auto gd = geometry_scores(w0, train_regression(w0, n, false, 0.002, 300));
  EXPECT_EQ(gd.front().potential, "p=2") << "best " << gd.front().potential << " " << gd.front().dcdf;
  const auto eg = geometry_scores(w0, train_regression(w0, n, true, 0.1, 300));
  EXPECT_EQ(eg.front().potential, "negentropy") << "best " << eg.front().potential << " " << eg.front().dcdf;
}

}  // namespace
}  // namespace dalesim
