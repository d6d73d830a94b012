// The CPU backend's elementwise loops (step_loops.hpp), compiled for the widest ISA this core has,
// against the plain scalar formulas of the model (SPEC §2-3): the same bits, since every version
// is built without FMA contraction; the sums in double to rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/step_loops.hpp"
#include "dalesim/math.hpp"

namespace dalesim::cpu {
namespace {

template <class Real>
std::vector<Real> random_vector(std::size_t n, double lo, double hi, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<Real> v(n);
  for (Real& x : v) x = Real(u(gen));
  return v;
}

template <class Real>
void check_step_loops() {
  const int B = 5, N = 37;  // no multiple of any vector width
  const std::size_t n = static_cast<std::size_t>(B) * N;
  const auto bias = random_vector<Real>(N, -0.5, 0.5, 1), leak = random_vector<Real>(N, 0.05, 0.5, 2);
  std::vector<Real> keep(N), back(N);
  for (int i = 0; i < N; ++i) keep[i] = Real(1) - leak[i], back[i] = (Real(1) - leak[i]) / leak[i];
  const auto v_prev = random_vector<Real>(n, -1, 1, 3), u0 = random_vector<Real>(n, -1, 1, 4);
  for (Phi phi : {Phi::relu, Phi::tanh, Phi::softplus, Phi::sigmoid}) {
    for (bool first_step : {false, true}) {
      std::vector<Real> uv = u0, r(n);
      forward_rows(phi, B, N, bias.data(), keep.data(), leak.data(), first_step ? nullptr : v_prev.data(), uv.data(),
                   r.data());
      for (std::size_t k = 0; k < n; ++k) {
        const int i = static_cast<int>(k % N);
        const Real drive = u0[k] + bias[i];
        const Real v = keep[i] * (first_step ? Real(0) : v_prev[k]) + leak[i] * drive;
        ASSERT_EQ(uv[k], v) << "entry " << k;
        ASSERT_EQ(r[k], phi_apply(phi, v)) << "entry " << k;
      }
      const auto dr = random_vector<Real>(n, -1, 1, 5), g_next = random_vector<Real>(n, -1, 1, 6);
      std::vector<Real> g(n);
      backward_rows(phi, B, N, leak.data(), back.data(), uv.data(), r.data(), dr.data(),
                    first_step ? nullptr : g_next.data(), g.data());
      for (std::size_t k = 0; k < n; ++k) {
        const int i = static_cast<int>(k % N);
        Real dv = phi_grad(phi, uv[k], r[k]) * dr[k];
        if (!first_step) dv += back[i] * g_next[k];
        ASSERT_EQ(g[k], leak[i] * dv) << "entry " << k;
      }
    }
  }
  // The noisy drive: the model's CounterRng::normal at every entry.
  const CounterRng rng{mix_key(7, 3), 0};
  std::vector<float> noise_std(N);
  for (int i = 0; i < N; ++i) noise_std[i] = 0.01f * float(i + 1);
  std::vector<Real> u = u0;
  add_noise_rows(rng, 1000, B, N, bias.data(), noise_std.data(), u.data());
  for (std::size_t k = 0; k < n; ++k) {
    const int i = static_cast<int>(k % N);
    ASSERT_EQ(u[k], u0[k] + bias[i] + Real(noise_std[i] * rng.normal(1000 + k))) << "entry " << k;
  }
  // Sums in double, and the bias gradient row by row.
  const auto x = random_vector<Real>(1001, -1, 1, 8);
  double sum = 0, sq = 0;
  for (Real e : x) sum += e, sq += double(e) * e;
  EXPECT_NEAR(sum_in_double(x.data(), x.size(), false), sum, 1e-12);
  EXPECT_NEAR(sum_in_double(x.data(), x.size(), true), sq, 1e-12);
  std::vector<Real> b(N, Real(1)), want(N, Real(1));
  add_rows(B, N, u0.data(), b.data());
  for (int row = 0; row < B; ++row)
    for (int i = 0; i < N; ++i) want[i] += u0[static_cast<std::size_t>(row) * N + i];
  EXPECT_EQ(b, want);
}

TEST(StepLoops, FloatLoopsMatchTheScalarFormulas) { check_step_loops<float>(); }
TEST(StepLoops, DoubleLoopsMatchTheScalarFormulas) { check_step_loops<double>(); }

TEST(StepLoops, OptimiserStepsMatchTheScalarFormulas) {
  const std::size_t n = 333;
  const auto g = random_vector<float>(n, -1e-2, 1e-2, 9), w0 = random_vector<float>(n, -1, 1, 10);
  const StepCoeffs<float> c{1e-3f, 1e-4f, 0.9f, 0.9f, 0.1f, 0.999f, 0.001f, 0.19f, 0.002f, 1e-8f};
  std::vector<float> w = w0, m1(n, 0.01f), m2(n, 1e-6f);
  adam_step(n, g.data(), w.data(), m1.data(), m2.data(), c);
  for (std::size_t k = 0; k < n; ++k) {
    const float gk = g[k] + c.decay * w0[k];
    const float a = c.b1 * 0.01f + c.c1 * gk, s = c.b2 * 1e-6f + c.c2 * gk * gk;
    ASSERT_EQ(m1[k], a);
    ASSERT_EQ(m2[k], s);
    ASSERT_EQ(w[k], w0[k] - c.lr * (a / c.r1) / (std::sqrt(s / c.r2) + c.eps)) << k;
  }
  w = w0, m1.assign(n, 0.01f);
  sgd_step(n, g.data(), w.data(), m1.data(), c);
  for (std::size_t k = 0; k < n; ++k) {
    const float m = c.mu * 0.01f + (g[k] + c.decay * w0[k]);
    ASSERT_EQ(m1[k], m);
    ASSERT_EQ(w[k], w0[k] - c.lr * m) << k;
  }
}

}  // namespace
}  // namespace dalesim::cpu
