// The step of one parameter under train.rule, mirroring the loop body of the CPU trainer's
// apply_update (src/cpu/replica_trainer.cpp) line by line, in float, with the hyperparameters
// rounded to float as the CPU rounds them. Included by step_kernels.cu only.
#pragma once

#include "dalesim/config.hpp"

namespace dalesim::cuda {

// What the optimiser needs for one replica, already in float.
struct StepHyper {
  float lr, momentum, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, bias_correction1, bias_correction2;
  float weight_decay, md_p;
  Optim optimizer;
  Rule rule;  // the rule of this parameter: train.rule for weights, gd for biases and a
};

// Returns the new value of w given its (clipped) gradient g; updates the moments m1, m2.
// `weight`: decay applies (biases and a never decay).
__device__ __forceinline__ float rule_step(const StepHyper& h, bool weight, float w, float g, float& m1, float& m2) {
  const float sign = w > 0.f ? 1.f : (w < 0.f ? -1.f : 0.f);
  if (weight && h.weight_decay != 0.f) g += h.rule == Rule::eg ? h.weight_decay * sign : h.weight_decay * w;
  if (h.rule == Rule::eg) {  // |w| <- |w| exp(-lr sign(w) step): the sign never changes
    float step;
    if (h.optimizer == Optim::adam) {  // Adam-EG: the step is Adam's m_hat / (sqrt(v_hat) + eps)
      m1 = h.beta1 * m1 + h.one_minus_beta1 * g;
      m2 = h.beta2 * m2 + h.one_minus_beta2 * g * g;
      step = (m1 / h.bias_correction1) / (sqrtf(m2 / h.bias_correction2) + h.eps);
    } else {  // heavy-ball momentum
      m1 = h.momentum * m1 + g;
      step = m1;
    }
    return w * expf(-h.lr * sign * step);
  }
  if (h.rule == Rule::md) {  // mirror descent on the p-norm potential: step in dual coordinates
    const float p = h.md_p;
    m1 = h.momentum * m1 + g;
    const float y = sign * powf(fabsf(w), p - 1.f) - h.lr * m1;
    return (y > 0.f ? 1.f : -1.f) * powf(fabsf(y), 1.f / (p - 1.f));
  }
  const float before = w;
  if (h.optimizer == Optim::sgd) {
    m1 = h.momentum * m1 + g;
    w -= h.lr * m1;
  } else {
    m1 = h.beta1 * m1 + h.one_minus_beta1 * g;
    m2 = h.beta2 * m2 + h.one_minus_beta2 * g * g;
    const float m_hat = m1 / h.bias_correction1, v_hat = m2 / h.bias_correction2;
    w -= h.lr * m_hat / (sqrtf(v_hat) + h.eps);
  }
  // gd_sign: a weight that crosses zero is reset to a tiny value of its old sign.
  if (h.rule == Rule::gd_sign && before != 0.f && !(w * before > 0.f)) w = before > 0.f ? 1e-18f : -1e-18f;
  return w;
}

}  // namespace dalesim::cuda
