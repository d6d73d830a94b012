// Forward pass of a trained replica on given trials, by cpu::ReplicaTrainer (the definition of the
// model's arithmetic), then the per-trial split of its loss and accuracy.
#include "dynamics/simulate.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "cpu/replica_trainer.hpp"
#include "dalesim/math.hpp"

namespace dalesim {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <class Real>
Simulation run(const ReplicaModel& model, const Batch& batch, std::int64_t iteration) {
  cpu::ReplicaTrainer<Real> trainer(model);
  const cpu::PassResult pass = trainer.loss_and_grad(batch, iteration, /*need_grad=*/false);
  const int B = batch.B, T = batch.T, N = model.layout.N, O = batch.O;
  Simulation s;
  s.B = B, s.T = T, s.N = N, s.O = O;
  s.batch_loss = pass.loss;
  s.batch_accuracy = pass.accuracy;
  const std::vector<Real>&v = trainer.states(), &r = trainer.rates(), &z = trainer.outputs();
  s.v.resize(static_cast<std::size_t>(B) * T * N);
  s.r.resize(s.v.size());
  s.z.resize(static_cast<std::size_t>(B) * T * O);
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b) {
      const std::size_t src = static_cast<std::size_t>(t) * B + b, dst = static_cast<std::size_t>(b) * T + t;
      for (int i = 0; i < N; ++i) {
        s.v[dst * N + i] = static_cast<float>(v[src * N + i]);
        s.r[dst * N + i] = static_cast<float>(r[src * N + i]);
      }
      for (int o = 0; o < O; ++o) s.z[dst * O + o] = static_cast<float>(z[src * O + o]);
    }
  // Per trial, the same sums the trainer's loss makes over the whole batch (cpu/replica_trainer.cpp).
  s.loss.assign(B, kNaN);
  s.loss_weight.assign(B, 0);
  s.accuracy.assign(B, kNaN);
  s.accuracy_points.assign(B, 0);
  for (int b = 0; b < B; ++b) {
    double sum = 0, weight = 0;
    int correct = 0, points = 0;
    for (int t = 0; t < T; ++t) {
      const std::size_t row = static_cast<std::size_t>(t) * B + b;
      const Real* zr = &z[row * O];
      if (batch.loss == LossKind::mse) {
        for (int o = 0; o < O; ++o) {
          const double m = batch.mask[row * O + o], d = double(zr[o]) - double(batch.y[row * O + o]);
          sum += m * d * d;
          weight += m;
        }
      } else if (batch.target[row] >= 0) {
        sum += softmax_xent_row(zr, O, batch.target[row]);
        weight += 1;
      }
      const bool scored =
          batch.acc_step >= 0 ? t == batch.acc_step : !batch.acc_label.empty() && batch.acc_label[row] >= 0;
      if (scored && batch.acc_end > batch.acc_begin) {
        const int label = batch.acc_step >= 0 ? batch.label[b] : batch.acc_label[row];
        correct += argmax_row(zr, batch.acc_begin, batch.acc_end) == label;
        ++points;
      }
    }
    s.loss_weight[b] = weight;
    if (weight > 0) s.loss[b] = sum / weight;
    s.accuracy_points[b] = points;
    if (points > 0) s.accuracy[b] = double(correct) / points;
  }
  return s;
}

}  // namespace

Simulation simulate_replica(const TrainedReplica& replica, const Batch& batch, bool noise,
                            std::int64_t noise_iteration) {
  const int I = replica.n_inputs(), O = replica.n_outputs();
  if (batch.I != I)
    throw InputError("the trials have " + std::to_string(batch.I) + " input channel(s) per step, replica " +
                     std::to_string(replica.id) + " takes " + std::to_string(I) +
                     " (its task's inputs): give trials of its task");
  if (batch.O != O)
    throw InputError("the trials have " + std::to_string(batch.O) + " output channel(s), replica " +
                     std::to_string(replica.id) + " has " + std::to_string(O) + ": give trials of its task");
  check_batch(batch, I, O);
  // The model with the noise on or off: its own copy of the config, everything else shared.
  ReplicaConfig cfg = *replica.config;
  if (!noise) cfg.model.sigma_rec = 0;
  ReplicaModel model = replica.model;
  model.cfg = &cfg;
  model.diverged_step = -1;
  return cfg.train.precision == Precision::f64 ? run<double>(model, batch, noise_iteration)
                                               : run<float>(model, batch, noise_iteration);
}

}  // namespace dalesim
