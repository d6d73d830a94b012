// The loops of step_loops.hpp: one inlined template body each, instantiated inside functions that
// GCC and Clang compile once per target ISA (target_clones; the loader picks one by CPUID).
#include "cpu/step_loops.hpp"

#include <algorithm>
#include <cmath>

#include "dalesim/math.hpp"

#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define DALESIM_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef DALESIM_VECTOR_CLONES
#define DALESIM_VECTOR_CLONES
#endif
#define DALESIM_INLINE inline __attribute__((always_inline))

namespace dalesim::cpu {

namespace {

template <Phi P, class Real>
DALESIM_INLINE void forward_impl(int B, int N, const Real* __restrict bias, const Real* __restrict keep,
                                 const Real* __restrict leak, const Real* __restrict v_prev, Real* __restrict uv,
                                 Real* __restrict r) {
  for (int b = 0; b < B; ++b) {
    Real* __restrict x = uv + static_cast<std::size_t>(b) * N;
    Real* __restrict y = r + static_cast<std::size_t>(b) * N;
    const Real* __restrict vp = v_prev ? v_prev + static_cast<std::size_t>(b) * N : nullptr;
    if (bias && vp)
      for (int i = 0; i < N; ++i) {
        const Real v = keep[i] * vp[i] + leak[i] * (x[i] + bias[i]);
        x[i] = v;
        y[i] = phi_apply(P, v);
      }
    else if (bias)
      for (int i = 0; i < N; ++i) {
        const Real v = keep[i] * Real(0) + leak[i] * (x[i] + bias[i]);
        x[i] = v;
        y[i] = phi_apply(P, v);
      }
    else if (vp)
      for (int i = 0; i < N; ++i) {
        const Real v = keep[i] * vp[i] + leak[i] * x[i];
        x[i] = v;
        y[i] = phi_apply(P, v);
      }
    else
      for (int i = 0; i < N; ++i) {
        const Real v = keep[i] * Real(0) + leak[i] * x[i];
        x[i] = v;
        y[i] = phi_apply(P, v);
      }
  }
}

template <class Real>
DALESIM_INLINE void forward_any(Phi phi, int B, int N, const Real* bias, const Real* keep, const Real* leak,
                                const Real* v_prev, Real* uv, Real* r) {
  switch (phi) {
    case Phi::relu: return forward_impl<Phi::relu>(B, N, bias, keep, leak, v_prev, uv, r);
    case Phi::tanh: return forward_impl<Phi::tanh>(B, N, bias, keep, leak, v_prev, uv, r);
    case Phi::softplus: return forward_impl<Phi::softplus>(B, N, bias, keep, leak, v_prev, uv, r);
    case Phi::sigmoid: return forward_impl<Phi::sigmoid>(B, N, bias, keep, leak, v_prev, uv, r);
  }
}

template <Phi P, class Real>
DALESIM_INLINE void backward_impl(int B, int N, const Real* __restrict leak, const Real* __restrict back,
                                  const Real* __restrict v, const Real* __restrict r, const Real* __restrict dr,
                                  const Real* __restrict g_next, Real* __restrict g) {
  const std::size_t n = static_cast<std::size_t>(B) * N;
  if (g_next)
    for (std::size_t o = 0; o < n; o += N)
      for (int i = 0; i < N; ++i) {
        const std::size_t k = o + i;
        g[k] = leak[i] * (phi_grad(P, v[k], r[k]) * dr[k] + back[i] * g_next[k]);
      }
  else
    for (std::size_t o = 0; o < n; o += N)
      for (int i = 0; i < N; ++i) {
        const std::size_t k = o + i;
        g[k] = leak[i] * (phi_grad(P, v[k], r[k]) * dr[k]);
      }
}

template <class Real>
DALESIM_INLINE void backward_any(Phi phi, int B, int N, const Real* leak, const Real* back, const Real* v,
                                 const Real* r, const Real* dr, const Real* g_next, Real* g) {
  switch (phi) {
    case Phi::relu: return backward_impl<Phi::relu>(B, N, leak, back, v, r, dr, g_next, g);
    case Phi::tanh: return backward_impl<Phi::tanh>(B, N, leak, back, v, r, dr, g_next, g);
    case Phi::softplus: return backward_impl<Phi::softplus>(B, N, leak, back, v, r, dr, g_next, g);
    case Phi::sigmoid: return backward_impl<Phi::sigmoid>(B, N, leak, back, v, r, dr, g_next, g);
  }
}

template <class Real>
DALESIM_INLINE void noise_impl(const CounterRng& rng, std::uint64_t first, int B, int N, const Real* __restrict bias,
                               const float* __restrict noise_std, Real* __restrict u) {
  constexpr int chunk = 256;
  double u1[chunk], u2[chunk];
  const std::size_t n = static_cast<std::size_t>(B) * N;
  for (std::size_t c0 = 0; c0 < n; c0 += chunk) {
    const int m = static_cast<int>(std::min<std::size_t>(chunk, n - c0));
    for (int l = 0; l < m; ++l) {  // integer only: vectorises
      const Philox4x32 b = rng.block(first + c0 + l);
      u1[l] = u32_to_unit(b.v[0]);
      u2[l] = u32_to_unit(b.v[1]);
    }
    for (int l = 0; l < m; ++l) u1[l] = std::sqrt(-2.0 * std::log(u1[l])) * std::cos(6.283185307179586 * u2[l]);
    for (int l = 0; l < m; ++l) {
      const std::size_t k = c0 + l;
      const int i = static_cast<int>(k % static_cast<std::size_t>(N));
      u[k] = u[k] + bias[i] + Real(noise_std[i] * u1[l]);
    }
  }
}

template <bool square, class Real>
DALESIM_INLINE double sum_impl(const Real* __restrict x, std::size_t n) {
  double part[8] = {};
  std::size_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int l = 0; l < 8; ++l) part[l] += square ? double(x[k + l]) * double(x[k + l]) : double(x[k + l]);
  for (; k < n; ++k) part[0] += square ? double(x[k]) * double(x[k]) : double(x[k]);
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

template <class Real>
DALESIM_INLINE void add_rows_impl(std::size_t rows, int n, const Real* __restrict x, Real* __restrict b) {
  for (std::size_t row = 0; row < rows; ++row)
    for (int i = 0; i < n; ++i) b[i] += x[row * n + i];
}

template <class Real>
DALESIM_INLINE void sgd_impl(std::size_t n, const Real* __restrict g, Real* __restrict w, Real* __restrict m1,
                             const StepCoeffs<Real>& c) {
  const Real lr = c.lr, decay = c.decay, mu = c.mu;
  if (decay != 0)
    for (std::size_t k = 0; k < n; ++k) {
      m1[k] = mu * m1[k] + (g[k] + decay * w[k]);
      w[k] -= lr * m1[k];
    }
  else
    for (std::size_t k = 0; k < n; ++k) {
      m1[k] = mu * m1[k] + g[k];
      w[k] -= lr * m1[k];
    }
}

template <class Real>
DALESIM_INLINE void adam_impl(std::size_t n, const Real* __restrict g, Real* __restrict w, Real* __restrict m1,
                              Real* __restrict m2, const StepCoeffs<Real>& c) {
  const Real lr = c.lr, decay = c.decay, b1 = c.b1, c1 = c.c1, b2 = c.b2, c2 = c.c2, r1 = c.r1, r2 = c.r2, eps = c.eps;
  for (std::size_t k = 0; k < n; ++k) {
    const Real gk = decay != 0 ? g[k] + decay * w[k] : g[k];
    m1[k] = b1 * m1[k] + c1 * gk;
    m2[k] = b2 * m2[k] + c2 * gk * gk;
    w[k] -= lr * (m1[k] / r1) / (std::sqrt(m2[k] / r2) + eps);
  }
}

}  // namespace

DALESIM_VECTOR_CLONES void forward_rows(Phi phi, int B, int N, const float* bias, const float* keep,
                                        const float* leak, const float* v_prev, float* uv, float* r) {
  forward_any(phi, B, N, bias, keep, leak, v_prev, uv, r);
}
DALESIM_VECTOR_CLONES void forward_rows(Phi phi, int B, int N, const double* bias, const double* keep,
                                        const double* leak, const double* v_prev, double* uv, double* r) {
  forward_any(phi, B, N, bias, keep, leak, v_prev, uv, r);
}
DALESIM_VECTOR_CLONES void add_noise_rows(const CounterRng& rng, std::uint64_t first, int B, int N, const float* bias,
                                          const float* noise_std, float* u) {
  noise_impl(rng, first, B, N, bias, noise_std, u);
}
DALESIM_VECTOR_CLONES void add_noise_rows(const CounterRng& rng, std::uint64_t first, int B, int N, const double* bias,
                                          const float* noise_std, double* u) {
  noise_impl(rng, first, B, N, bias, noise_std, u);
}
DALESIM_VECTOR_CLONES void backward_rows(Phi phi, int B, int N, const float* leak, const float* back, const float* v,
                                         const float* r, const float* dr, const float* g_next, float* g) {
  backward_any(phi, B, N, leak, back, v, r, dr, g_next, g);
}
DALESIM_VECTOR_CLONES void backward_rows(Phi phi, int B, int N, const double* leak, const double* back,
                                         const double* v, const double* r, const double* dr, const double* g_next,
                                         double* g) {
  backward_any(phi, B, N, leak, back, v, r, dr, g_next, g);
}
DALESIM_VECTOR_CLONES double sum_in_double(const float* x, std::size_t n, bool square) {
  return square ? sum_impl<true>(x, n) : sum_impl<false>(x, n);
}
DALESIM_VECTOR_CLONES double sum_in_double(const double* x, std::size_t n, bool square) {
  return square ? sum_impl<true>(x, n) : sum_impl<false>(x, n);
}
DALESIM_VECTOR_CLONES void add_rows(std::size_t rows, int n, const float* x, float* b) { add_rows_impl(rows, n, x, b); }
DALESIM_VECTOR_CLONES void add_rows(std::size_t rows, int n, const double* x, double* b) { add_rows_impl(rows, n, x, b); }
DALESIM_VECTOR_CLONES void sgd_step(std::size_t n, const float* g, float* w, float* m1, const StepCoeffs<float>& c) {
  sgd_impl(n, g, w, m1, c);
}
DALESIM_VECTOR_CLONES void sgd_step(std::size_t n, const double* g, double* w, double* m1, const StepCoeffs<double>& c) {
  sgd_impl(n, g, w, m1, c);
}
DALESIM_VECTOR_CLONES void adam_step(std::size_t n, const float* g, float* w, float* m1, float* m2,
                                     const StepCoeffs<float>& c) {
  adam_impl(n, g, w, m1, m2, c);
}
DALESIM_VECTOR_CLONES void adam_step(std::size_t n, const double* g, double* w, double* m1, double* m2,
                                     const StepCoeffs<double>& c) {
  adam_impl(n, g, w, m1, m2, c);
}

}  // namespace dalesim::cpu
