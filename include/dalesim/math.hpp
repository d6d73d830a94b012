// Elementwise model math shared by the CPU backend and CUDA kernels: nonlinearities and their
// derivatives, written once.
#pragma once

#include <cmath>

#include "dalesim/config.hpp"
#include "dalesim/host_device.hpp"

namespace dalesim {

template <class Real>
DALESIM_HOST_DEVICE inline Real phi_apply(Phi phi, Real v) {
  switch (phi) {
    case Phi::relu: return v > Real(0) ? v : Real(0);
    case Phi::tanh: return std::tanh(v);
    case Phi::softplus: return v > Real(20) ? v : std::log1p(std::exp(v));
    case Phi::sigmoid: return Real(1) / (Real(1) + std::exp(-v));
  }
  return v;
}

// d phi / d v, given v and r = phi(v).
template <class Real>
DALESIM_HOST_DEVICE inline Real phi_grad(Phi phi, Real v, Real r) {
  switch (phi) {
    case Phi::relu: return v > Real(0) ? Real(1) : Real(0);
    case Phi::tanh: return Real(1) - r * r;
    case Phi::softplus: return Real(1) / (Real(1) + std::exp(-v));
    case Phi::sigmoid: return r * (Real(1) - r);
  }
  return Real(1);
}

// Alpha of `mix` from its parameter a: sigmoid(a), or a itself (the clamp form, kept in [0, 1] by
// projection after every update); and d alpha / d a at that alpha.
template <class Real>
DALESIM_HOST_DEVICE inline Real alpha_of(Real a, bool clamp_form) {
  return clamp_form ? a : Real(1) / (Real(1) + std::exp(-a));
}
template <class Real>
DALESIM_HOST_DEVICE inline Real alpha_slope(Real alpha, bool clamp_form) {
  return clamp_form ? Real(1) : alpha * (Real(1) - alpha);
}

// The Dale part's weight from its raw parameter, for column sign `sign` (+1 E, -1 I): the raw value
// itself (clamp: its sign is kept by projection), sign x |raw| (abs) or sign x relu(raw) (relu);
// and d weight / d raw.
template <class Real>
DALESIM_HOST_DEVICE inline Real dale_weight(DaleMode mode, Real raw, Real sign) {
  switch (mode) {
    case DaleMode::clamp: return raw;
    case DaleMode::abs: return sign * std::fabs(raw);
    case DaleMode::relu: return raw > Real(0) ? sign * raw : Real(0);
  }
  return raw;
}
template <class Real>
DALESIM_HOST_DEVICE inline Real dale_weight_grad(DaleMode mode, Real raw, Real sign) {
  switch (mode) {
    case DaleMode::clamp: return Real(1);
    case DaleMode::abs: return raw > Real(0) ? sign : (raw < Real(0) ? -sign : Real(0));
    case DaleMode::relu: return raw > Real(0) ? sign : Real(0);
  }
  return Real(1);
}

// Softmax cross-entropy of one output row (the cross_entropy loss of one scored step), written
// once for the CPU backend and the CUDA kernels. Max-subtracted, so large logits do not overflow.

// log sum_o exp(z[o]) over o in [0, O).
template <class Real>
DALESIM_HOST_DEVICE inline Real log_sum_exp_row(const Real* z, int O) {
  Real m = z[0];
  for (int o = 1; o < O; ++o) m = z[o] > m ? z[o] : m;
  Real s = Real(0);
  for (int o = 0; o < O; ++o) s += std::exp(z[o] - m);
  return m + std::log(s);
}

// -log softmax(z)[target] = log_sum_exp(z) - z[target].
template <class Real>
DALESIM_HOST_DEVICE inline Real softmax_xent_row(const Real* z, int O, int target) {
  return log_sum_exp_row(z, O) - z[target];
}

// Gradient of scale * softmax_xent_row(z, O, target) with respect to z:
// g[o] = scale * (softmax(z)[o] - [o == target]).
template <class Real>
DALESIM_HOST_DEVICE inline void softmax_xent_grad_row(const Real* z, int O, int target, Real scale, Real* g) {
  const Real lse = log_sum_exp_row(z, O);
  for (int o = 0; o < O; ++o) g[o] = scale * (std::exp(z[o] - lse) - (o == target ? Real(1) : Real(0)));
}

// Index of the largest z[o] over o in [begin, end), counted from begin (the first on ties).
template <class Real>
DALESIM_HOST_DEVICE inline int argmax_row(const Real* z, int begin, int end) {
  int best = begin;
  for (int o = begin + 1; o < end; ++o)
    if (z[o] > z[best]) best = o;
  return best - begin;
}

}  // namespace dalesim
