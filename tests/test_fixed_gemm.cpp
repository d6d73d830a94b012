// FixedGemm, the CPU backend's products (a libxsmm kernel generated for this core, or OpenBLAS),
// against a plain triple loop in long double: every form the trainer uses, awkward sizes, both
// precisions, and the same result on every call.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/fixed_gemm.hpp"

namespace dalesim::cpu {
namespace {

struct Shape {
  bool trans_a;
  int M, N, K;
  double beta;
};

template <class Real>
void check(const Shape& s, double tol) {
  std::mt19937 gen(17 + s.M * 131 + s.N * 7 + s.K);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<Real> a(static_cast<size_t>(s.M) * s.K), b(static_cast<size_t>(s.K) * s.N), c(static_cast<size_t>(s.M) * s.N);
  for (Real& x : a) x = Real(u(gen));
  for (Real& x : b) x = Real(u(gen));
  for (Real& x : c) x = Real(u(gen));
  const std::vector<Real> c0 = c;
  const FixedGemm<Real> gemm(s.trans_a, s.M, s.N, s.K, Real(s.beta));
  gemm(a.data(), b.data(), c.data());
  std::vector<Real> again = c0;
  gemm(a.data(), b.data(), again.data());
  EXPECT_EQ(again, c) << "the same operands give the same bits on every call";
  double worst = 0;
  for (int m = 0; m < s.M; ++m)
    for (int n = 0; n < s.N; ++n) {
      long double want = s.beta * static_cast<long double>(c0[static_cast<size_t>(m) * s.N + n]);
      for (int k = 0; k < s.K; ++k) {
        const Real x = s.trans_a ? a[static_cast<size_t>(k) * s.M + m] : a[static_cast<size_t>(m) * s.K + k];
        want += static_cast<long double>(x) * b[static_cast<size_t>(k) * s.N + n];
      }
      // Rounding grows at most linearly in K; a wrong or missing block of K is of order sqrt(K).
      worst = std::max(worst, double(std::fabs(want - c[static_cast<size_t>(m) * s.N + n])) / (s.K + 2));
    }
  EXPECT_LE(worst, tol) << (s.trans_a ? "A^T B" : "A B") << " M=" << s.M << " N=" << s.N << " K=" << s.K
                        << " beta=" << s.beta << " on " << gemm.path();
}

// The trainer's forms (fixed_gemm.hpp): the step, the input drive and readout (tiny K or N), the
// gradients over K = T B (in blocks of K past 2 kKBlock, with a remainder); and sizes that are no
// multiple of any vector width.
const Shape kShapes[] = {
    {false, 32, 128, 128, 1}, {false, 7, 33, 33, 1},  {false, 400, 24, 2, 0}, {false, 400, 1, 24, 0},
    {false, 400, 24, 1, 0},   {true, 24, 24, 384, 0}, {true, 1, 24, 400, 0},  {true, 24, 2, 400, 1},
    {true, 65, 17, 9, 1},     {false, 1, 1, 1, 0},      {true, 33, 20, 1000, 1},  {true, 40, 40, 1568, 0},
};

TEST(FixedGemm, FloatMatchesAPlainLoop) {
  for (const Shape& s : kShapes) check<float>(s, 2e-7);
}

TEST(FixedGemm, DoubleMatchesAPlainLoop) {
  for (const Shape& s : kShapes) check<double>(s, 1e-15);
}

TEST(FixedGemm, NamesItsPath) {
  const std::string path = FixedGemm<float>(false, 32, 64, 64, 1.0f).path();
  EXPECT_TRUE(path == "openblas" || path.rfind("libxsmm:", 0) == 0) << path;
  EXPECT_EQ(fixed_gemm_path(), path);
}

}  // namespace
}  // namespace dalesim::cpu
