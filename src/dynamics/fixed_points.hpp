// Fixed points of a trained rate network under a constant input, found as in Sussillo & Barak
// (2013): minimise q(v) = 1/2 |F(v)|^2, F the continuous-time right-hand side, from many initial
// states; keep the minima with q below a tolerance, merge duplicates, and describe each by its
// Jacobian's eigenvalues, its stability and the Jacobian's departure from normality (Henrici).
#pragma once

#include <cstdint>
#include <vector>

#include "dalesim/config.hpp"
#include "dalesim/model.hpp"

namespace dalesim {

// tau_i dv_i/dt = -v_i + sum_j W_ij phi(v_j) + u_i, with u = W_in x + b for the constant input x:
// the model of SPEC §2 before its Euler step (v[t+1] = v[t] + dt F(v[t]) without noise).
struct RateDynamics {
  int N = 0;
  std::vector<double> W;        // [N, N] effective recurrent weights
  std::vector<double> u;        // [N] constant drive
  std::vector<double> inv_tau;  // [N] 1 / tau (1/ms)
  Phi phi = Phi::relu;
  bool linear = false;          // phi(v) = v instead (the linear network)

  // F(v) = dv/dt [N] (1/ms times the units of v).
  void rhs(const double* v, double* F) const;
  // dF/dv [N, N] row-major: diag(1/tau) (-I + W diag(phi'(v))).
  void jacobian(const double* v, double* J) const;
  double phi_of(double v) const;
};

// The dynamics of a replica's model (effective W_rec, W_in, b; tau from its leak rates and dt)
// under the constant input `x` [I].
RateDynamics rate_dynamics(const ReplicaModel& model, double dt, const std::vector<double>& x);

struct FixedPointOptions {
  double q_tolerance = 1e-12;   // keep minima with q below this ((1/ms)^2 times units of v squared)
  int max_iterations = 200;     // Levenberg-Marquardt iterations per initial state
  double merge_distance = 1e-3; // points closer than this times max(1, |v|) are one fixed point
};

struct FixedPoint {
  std::vector<double> v, r;           // [N] state and rates phi(v)
  double q = 0, speed = 0;            // q = 1/2 |F|^2, speed = |F|
  std::vector<double> eig_re, eig_im; // [N] eigenvalues of the Jacobian, by real part descending
  std::vector<double> jacobian;       // [N, N]
  bool stable = false;                // every eigenvalue's real part < 0
  double henrici = 0;                 // sqrt(|J|_F^2 - sum |lambda|^2) / |J|_F (0: normal)
  int count = 0;                      // initial states that converged to it
};

struct FixedPointSearch {
  std::vector<FixedPoint> points;  // by q ascending
  std::vector<double> final_q;     // [initial states] q reached from each
  int n_converged = 0;             // initial states that reached q < q_tolerance
};

// Minimises q from each initial state (rows of `initial`, [K, N]) by Levenberg-Marquardt on F.
FixedPointSearch find_fixed_points(const RateDynamics& dyn, const std::vector<std::vector<double>>& initial,
                                   const FixedPointOptions& options);

// Eigenvalues, stability and Henrici departure of the Jacobian at v (fills every field but v, r,
// q, speed and count).
void describe_fixed_point(const RateDynamics& dyn, FixedPoint& fp);

// Eigenvalues of a general real n x n row-major matrix (LAPACK dgeev).
void eigenvalues(const std::vector<double>& a, int n, std::vector<double>& re, std::vector<double>& im);

}  // namespace dalesim
