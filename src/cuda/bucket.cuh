// A bucket: replicas of one shape (arch, N, I, O, T, B) trained together. BucketView is the plain
// struct of device pointers and sizes that every kernel takes; the owner lives in cuda_backend.cu.
#pragma once

#include <cstdint>

namespace dalesim::cuda {

// Indices of the per-replica metrics row: StepMetrics' fields, then the costs in Cost order.
constexpr int kCostMetrics = 9;  // kCostCount of dalesim/history.hpp (checked in cuda_backend.cu)
enum MetricIndex {
  kLoss = 0, kAccuracy, kAlpha, kGradNorm, kMeanRate, kDaleViolation, kDaleSignMatch, kDaleColumns, kAlphaE, kAlphaI,
  kCost0,
  kMetricCount = kCost0 + kCostMetrics
};

// Per-stream scoring information: [acc_step, acc_begin, acc_end, LossKind].
enum StreamInfo { kAccStep = 0, kAccBegin, kAccEnd, kLossKind, kStreamInfoCount };

struct BucketView {
  int R, N, I, O, T, B, P;  // replicas, units, inputs, outputs, steps, batch, parameters per replica
  int arch;                 // Arch as int
  // Tensor offsets inside a replica's parameter vector; -1 when absent.
  long long off_wf, off_wd, off_win, off_b, off_wout, off_bout, off_a;
  long long off_bneg, off_boutneg;  // negative parts of EG's split biases (effective b = b + b_neg)
  // A DANN Dale part (arch dann, or mix with dale_part dann): W_dale holds W_ee, W_ei [N, n_i] and
  // W_ie [n_i, N] the interneuron factors; for arch dann, W_in holds U_ee and U_ei [N, n_i_in],
  // U_ie [n_i_in, I] the input factors. Offsets -1 and counts 0 when absent.
  int dann, n_i, n_i_in;
  long long off_wei, off_wie, off_uei, off_uie;
  // Divisors of the DANN Fisher correction, float(sqrt(N)), float(N), float(sqrt(N)), float(I), as
  // the CPU's correct_dann_gradients rounds them.
  float fisher_wie, fisher_wei, fisher_uie, fisher_uei;

  // The formulations: entries of a (1 per network, N per neuron); per replica the alpha form
  // (1: clamp) and DaleMode; the costs' coefficients [kCostMetrics, R] (Cost order) and which
  // kinds any replica of the bucket has.
  int n_alpha;
  const int *alpha_clamp, *dale_mode;
  const double* cost;
  int any_cost, any_io_cost, any_rate_cost;

  float *params, *grad, *m1, *m2;  // [R, P]
  const float *mask_rec, *mask_in, *mask_out;  // [R, N, N], [R, N, I], [R, O, N]
  const float *col_sign, *leak, *noise_std;    // [R, N]

  // Per-replica hyperparameters, already rounded to float the way the CPU trainer rounds them.
  const float *lr, *lr_alpha, *momentum, *beta1, *one_minus_beta1, *beta2, *one_minus_beta2, *eps;
  const float *weight_decay, *md_p;  // train.weight_decay, train.md_p
  const double *beta1_d, *beta2_d;  // the betas in double, for Adam's bias corrections (as the CPU)
  const double* clip;
  const int *optimizer, *input_positive, *phi, *noisy, *rule;  // Optim, bool, Phi, bool, Rule
  const unsigned long long* noise_seed;

  // Per-replica training state.
  long long *diverged_step, *adam_steps;  // -1 while alive
  float *bias_correction1, *bias_correction2, *clip_scale;
  float* alpha;  // [R, N] alpha_j of each column, as build_effective computed it
  double* metrics;  // [R, kMetricCount]
  double* mask_sum;  // [R]

  // Work tensors.
  float *w_eff, *w_in_eff, *w_out_eff, *d_w_eff;  // [R,N,N], [R,N,I], [R,O,N], [R,N,N]
  float *dale_eff, *d_dale;                        // [R,N,N] each, DANN part only (else null)
  float* x;                                        // [R, T, B, I] gathered inputs
  float *v, *r, *g, *dr;                           // [R, T, B, N]
  float *z, *e;                                    // [R, T, B, O]

  // The iteration's distinct batches (streams) and which one each replica uses.
  const float *x_streams, *y_streams, *mask_streams;  // [S, T*B*I], [S, T*B*O], [S, T*B*O]
  const int* label_streams;                           // [S, B] final-step accuracy labels
  const int* target_streams;                          // [S, T*B] cross-entropy classes, -1 = not scored
  const int* acc_label_streams;                       // [S, T*B] per-step accuracy labels, -1 = none
  const int* acc_streams;                             // [S, kStreamInfoCount]
  const int* stream_of;                               // [R]

  const long long* iteration;  // device scalar: the iteration being run (graph-replay safe)
};

}  // namespace dalesim::cuda
