// The constraints that hold after every update, for any precision: Dale signs of W_dale
// (projection: a wrong-signed entry is set to 0; train.dale clamp only), the sign of W_in when
// constrained, alpha in [0, 1] (alpha_form clamp), and zeros outside the fixed connection masks.
#pragma once

#include <algorithm>

#include "dalesim/model.hpp"

namespace dalesim {

template <class Real>
void project_constraints(const ReplicaModel& m, Real* params) {
  const ParamLayout& l = m.layout;
  const int N = l.N;
  if (l.has(Tensor::a) && m.cfg && m.cfg->model.alpha_form == AlphaForm::clamp) {
    Real* a = params + l[Tensor::a].offset;
    for (std::size_t k = 0; k < l[Tensor::a].size(); ++k) a[k] = std::min(std::max(a[k], Real(0)), Real(1));
  }
  // abs / relu reparameterise W_dale: its raw values are unconstrained.
  if (l.has(Tensor::W_dale) && (!m.cfg || m.cfg->train.dale == DaleMode::clamp)) {
    Real* wd = params + l[Tensor::W_dale].offset;
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) {
        Real& w = wd[static_cast<std::size_t>(i) * N + j];
        if (w * m.col_sign[j] < 0) w = Real(0);
      }
  }
  // DANN factors are non-negative (projection, as in the DANN paper); so is U_ee of arch dann.
  for (Tensor t : {Tensor::W_ei, Tensor::W_ie, Tensor::U_ei, Tensor::U_ie}) {
    Real* w = params + l[t].offset;
    for (std::size_t k = 0; k < l[t].size(); ++k) w[k] = std::max(w[k], Real(0));
  }
  Real* wi = params + l[Tensor::W_in].offset;
  const bool positive = l.arch == Arch::dann || (m.cfg && m.cfg->model.input_sign == InputSign::positive);
  for (std::size_t k = 0; k < l[Tensor::W_in].size(); ++k) {
    if (positive) wi[k] = std::max(wi[k], Real(0));
    wi[k] *= m.mask_in[k];
  }
  for (Tensor t : {Tensor::W_free, Tensor::W_dale}) {
    Real* w = params + l[t].offset;
    for (std::size_t k = 0; k < l[t].size(); ++k) w[k] *= m.mask_rec[k];
  }
  Real* wo = params + l[Tensor::W_out].offset;
  for (std::size_t k = 0; k < l[Tensor::W_out].size(); ++k) wo[k] *= m.mask_out[k];
}

}  // namespace dalesim
