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

}  // namespace dalesim
