// One replica's forward pass, exact BPTT gradient, optimiser step and constraints, on the CPU.
// The readable definition of the model's arithmetic that every other backend is held to.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/fixed_gemm.hpp"
#include "dalesim/history.hpp"
#include "dalesim/model.hpp"
#include "dalesim/task.hpp"

namespace dalesim::cpu {

// What one forward(+backward) pass measures.
struct PassResult {
  double loss = 0;
  double accuracy = 0;   // NaN when the batch defines none
  double mean_rate = 0;  // mean phi(v) over time, batch and units
  double cost[kCostCount] = {};  // each cost of the loss, coefficient x its mean (Cost order)
  // The loss the gradient is of: the task loss plus every cost.
  double total() const {
    double t = loss;
    for (double c : cost) t += c;
    return t;
  }
};

template <class Real>
class ReplicaTrainer {
 public:
  explicit ReplicaTrainer(const ReplicaModel& model);

  // Loss on `batch` (noise drawn for `iteration`); with `need_grad`, also the gradient of every
  // parameter in grad() (layout order, same as params()).
  PassResult loss_and_grad(const Batch& batch, std::int64_t iteration, bool need_grad);

  // One iteration: loss_and_grad, global-norm clipping, optimiser update, constraints. A replica
  // whose loss or gradient is not finite is marked diverged and left unchanged from then on.
  StepMetrics train_step(const Batch& batch, std::int64_t iteration);

  // Loss, accuracy and mean rate without gradient or update (NaN when diverged).
  StepMetrics evaluate(const Batch& batch, std::int64_t iteration);

  std::vector<Real>& params() { return params_; }
  const std::vector<Real>& params() const { return params_; }
  const std::vector<Real>& grad() const { return grad_; }
  // Rates phi(v) [T, B, N] of the last loss_and_grad pass.
  const std::vector<Real>& rates() const { return r_; }
  bool diverged() const { return diverged_step_ >= 0; }
  std::int64_t diverged_step() const { return diverged_step_; }
  // Copies the parameters and the optimiser state back into the host model (double).
  void write_back(ReplicaModel& model) const;

  // Mean alpha over the presynaptic units (the one alpha of a per-network mix); 0 free, 1 colei/dann.
  Real alpha() const;
  // alpha_j of each presynaptic unit [N], as the last pass used it.
  const std::vector<Real>& alpha_units() const { return alpha_col_; }
  // Fraction of columns of the effective W_rec holding both signs.
  double dale_violation() const;
  // dale_violation, dale_sign_match and dale_columns of the effective W_rec into `m`.
  void fill_dale_metrics(StepMetrics& m) const;

  // Membrane states v [T, B, N] and outputs z [T, B, O] of the last loss_and_grad pass (with
  // rates(), what `dalesim simulate` writes).
  const std::vector<Real>& states() const { return v_; }
  const std::vector<Real>& outputs() const { return z_; }

 private:
  void build_effective();
  void prepare_pass(int B, int T);
  // Adds each nonzero cost's value to `res` and, with `grad`, its gradient to the effective
  // gradients (d_w_eff_ is filled later: the recurrent costs go in add_recurrent_cost_grads).
  void add_costs(PassResult& res, bool grad);
  void add_recurrent_cost_grads();
  void fill_alpha_metrics(StepMetrics& m) const;
  void apply_update();
  void correct_dann_gradients();

  const ReplicaModel& model_;
  const ParamLayout& layout_;
  std::vector<Real> params_, grad_, moment1_, moment2_;
  std::int64_t adam_steps_ = 0;
  std::int64_t diverged_step_ = -1;
  // Workspace, resized on first use of a batch shape.
  std::vector<Real> w_eff_, w_in_eff_, w_out_eff_, d_w_eff_;  // [N,N], [N,I], [O,N], [N,N]
  std::vector<Real> w_t_, w_in_t_, w_out_t_;                   // W^T [N,N], W_in^T [I,N], W_out^T [N,O]
  std::vector<Real> leak_, keep_, back_;                       // [N] a, 1 - a, (1 - a) / a per unit
  std::vector<Real> d_in_t_;                                   // dW_in^T [I,N] of the pass
  std::vector<Real> before_;                                   // one tensor's weights before its update (gd_sign)
  // The products of a pass, by operand shape ([rows, cols], TB = T B).
  struct Gemms {
    FixedGemm<Real> in;      // U [TB,N] = X [TB,I] W_in^T [I,N]
    FixedGemm<Real> step;    // [B,N] += [B,N] [N,N]: u += r W^T forward, dr += g W backward
    FixedGemm<Real> out;     // Z [TB,O] = R [TB,N] W_out^T [N,O]
    FixedGemm<Real> d_out;   // dW_out [O,N] = E^T R
    FixedGemm<Real> d_rate;  // dL/dR [TB,N] = E [TB,O] W_out [O,N]
    FixedGemm<Real> d_rec;   // dW [N,N] = G^T R over K = (T - 1) B
    FixedGemm<Real> d_in_t;  // dW_in^T [I,N] = X^T G
  } gemms_;
  std::vector<Real> dale_eff_, d_dale_;                        // the Dale part D and dL/dD, [N,N]
  std::vector<Real> alpha_col_;  // [N] alpha_j of each column
  std::vector<double> d_alpha_col_;  // [N] dL/d alpha_j
  std::vector<Real> b_eff_, b_out_eff_;                        // effective biases [N], [O]
  std::vector<Real> x_, y_, mask_;                            // [T,B,I], [T,B,O], [T,B,O]
  std::vector<Real> v_, r_, z_, e_, dr_, g_;                  // [T,B,N] or [T,B,O]
};

extern template class ReplicaTrainer<float>;
extern template class ReplicaTrainer<double>;

}  // namespace dalesim::cpu
