// The elementwise loops of a training pass and of the update, the work between the products: each
// compiled once per vector ISA (AVX-512, AVX2, the baseline), the widest the core has chosen when
// the program starts. Built without FMA contraction (CMakeLists.txt), so every version computes the
// same bits as the plain scalar formulas (tests/test_step_loops.cpp).
#pragma once

#include <cstddef>

#include "dalesim/config.hpp"
#include "dalesim/rng.hpp"

namespace dalesim::cpu {

// One forward step over B rows of N units, in place on `uv` (u in, v out):
//   v = keep v_prev + leak (u + bias),  r = phi(v)
// v_prev null: v_{-1} = 0; bias null: already in u.
void forward_rows(Phi phi, int B, int N, const float* bias, const float* keep, const float* leak,
                  const float* v_prev, float* uv, float* r);
void forward_rows(Phi phi, int B, int N, const double* bias, const double* keep, const double* leak,
                  const double* v_prev, double* uv, double* r);

// The noisy drive of one step, in place on u [B, N]: u = u + bias + Real(noise_std normal(first + k))
// at entry k (CounterRng::normal, the same values as the CUDA kernels draw; the Philox blocks
// computed many lanes at once, log and cos by the C library as everywhere).
void add_noise_rows(const CounterRng& rng, std::uint64_t first, int B, int N, const float* bias,
                    const float* noise_std, float* u);
void add_noise_rows(const CounterRng& rng, std::uint64_t first, int B, int N, const double* bias,
                    const float* noise_std, double* u);

// One backward step over B rows of N units: g = leak (phi'(v, r) dr + back g_next), g_next null
// at the last step.
void backward_rows(Phi phi, int B, int N, const float* leak, const float* back, const float* v, const float* r,
                   const float* dr, const float* g_next, float* g);
void backward_rows(Phi phi, int B, int N, const double* leak, const double* back, const double* v,
                   const double* r, const double* dr, const double* g_next, double* g);

// sum x[k] (square: x[k]^2) in double, in eight interleaved partial sums added in a fixed order:
// the same bits on every core, thread and run, without one long chain of dependent additions.
double sum_in_double(const float* x, std::size_t n, bool square);
double sum_in_double(const double* x, std::size_t n, bool square);

// b[i] += sum over the rows of x [rows, n], row by row.
void add_rows(std::size_t rows, int n, const float* x, float* b);
void add_rows(std::size_t rows, int n, const double* x, double* b);

// One tensor's optimiser step, g + decay w as its gradient (decay 0: g alone):
//   sgd:  m1 = mu m1 + g;  w -= lr m1
//   adam: m1 = b1 m1 + c1 g;  m2 = b2 m2 + c2 g g;  w -= lr (m1 / r1) / (sqrt(m2 / r2) + eps)
template <class Real>
struct StepCoeffs {
  Real lr, decay, mu;              // sgd
  Real b1, c1, b2, c2, r1, r2, eps;  // adam (c = 1 - b, r = the bias corrections)
};
void sgd_step(std::size_t n, const float* g, float* w, float* m1, const StepCoeffs<float>& c);
void sgd_step(std::size_t n, const double* g, double* w, double* m1, const StepCoeffs<double>& c);
void adam_step(std::size_t n, const float* g, float* w, float* m1, float* m2, const StepCoeffs<float>& c);
void adam_step(std::size_t n, const double* g, double* w, double* m1, double* m2, const StepCoeffs<double>& c);

}  // namespace dalesim::cpu
