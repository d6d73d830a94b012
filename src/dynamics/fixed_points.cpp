// Levenberg-Marquardt minimisation of q(v) = 1/2 |F(v)|^2 (a Gauss-Newton step on F, damped until
// q decreases), which converges quadratically at true fixed points where plain gradient descent on
// q crawls; then merging of duplicates and the linearisation at each point.
#include "dynamics/fixed_points.hpp"

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "cpu/blas.hpp"
#include "dalesim/math.hpp"

namespace dalesim {

double RateDynamics::phi_of(double v) const { return linear ? v : phi_apply(phi, v); }

void RateDynamics::rhs(const double* v, double* F) const {
  std::vector<double> r(N);
  for (int j = 0; j < N; ++j) r[j] = phi_of(v[j]);
  for (int i = 0; i < N; ++i) {
    double s = u[i] - v[i];
    const double* w = &W[static_cast<std::size_t>(i) * N];
    for (int j = 0; j < N; ++j) s += w[j] * r[j];
    F[i] = s * inv_tau[i];
  }
}

void RateDynamics::jacobian(const double* v, double* J) const {
  std::vector<double> d(N);
  for (int j = 0; j < N; ++j) d[j] = linear ? 1.0 : phi_grad(phi, v[j], phi_apply(phi, v[j]));
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      const std::size_t k = static_cast<std::size_t>(i) * N + j;
      J[k] = inv_tau[i] * (W[k] * d[j] - (i == j ? 1.0 : 0.0));
    }
}

RateDynamics rate_dynamics(const ReplicaModel& model, double dt, const std::vector<double>& x) {
  const int N = model.layout.N, I = model.layout.I;
  if (static_cast<int>(x.size()) != I)
    throw std::invalid_argument("rate_dynamics: input of width " + std::to_string(x.size()) + ", the model has " +
                                std::to_string(I));
  RateDynamics d;
  d.N = N;
  d.W = model.effective_w_rec();
  d.phi = model.cfg->model.phi;
  const std::vector<double> w_in = model.effective_w_in(), b = model.effective_bias(false);
  d.u.assign(N, 0.0);
  d.inv_tau.resize(N);
  for (int i = 0; i < N; ++i) {
    double s = b[i];
    for (int k = 0; k < I; ++k) s += w_in[static_cast<std::size_t>(i) * I + k] * x[k];
    d.u[i] = s;
    d.inv_tau[i] = model.leak[i] / dt;  // leak = dt / tau
  }
  return d;
}

void eigenvalues(const std::vector<double>& a, int n, std::vector<double>& re, std::vector<double>& im) {
  std::vector<double> work(a);
  re.assign(n, 0.0);
  im.assign(n, 0.0);
  if (n == 0) return;
  const int info = LAPACKE_dgeev(LAPACK_ROW_MAJOR, 'N', 'N', n, work.data(), n, re.data(), im.data(), nullptr, 1,
                                 nullptr, 1);
  if (info != 0) throw std::runtime_error("LAPACK dgeev failed (info " + std::to_string(info) + ")");
}

void describe_fixed_point(const RateDynamics& dyn, FixedPoint& fp) {
  const int N = dyn.N;
  fp.jacobian.assign(static_cast<std::size_t>(N) * N, 0.0);
  dyn.jacobian(fp.v.data(), fp.jacobian.data());
  std::vector<double> re, im;
  eigenvalues(fp.jacobian, N, re, im);
  std::vector<int> order(N);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return re[a] > re[b] || (re[a] == re[b] && im[a] > im[b]); });
  fp.eig_re.resize(N);
  fp.eig_im.resize(N);
  double frob = 0, spec = 0;
  for (double x : fp.jacobian) frob += x * x;
  for (int k = 0; k < N; ++k) {
    fp.eig_re[k] = re[order[k]];
    fp.eig_im[k] = im[order[k]];
    spec += re[k] * re[k] + im[k] * im[k];
  }
  fp.stable = N == 0 || fp.eig_re[0] < 0;
  fp.henrici = frob > 0 ? std::sqrt(std::max(frob - spec, 0.0) / frob) : 0.0;
}

namespace {

double half_sq(const std::vector<double>& F) {
  double s = 0;
  for (double f : F) s += f * f;
  return 0.5 * s;
}

// Levenberg-Marquardt from v (in place); returns the q reached.
double minimise(const RateDynamics& dyn, std::vector<double>& v, const FixedPointOptions& opt) {
  const int N = dyn.N;
  std::vector<double> F(N), J(static_cast<std::size_t>(N) * N), A(J.size()), g(N), trial(N), Ft(N);
  dyn.rhs(v.data(), F.data());
  double q = half_sq(F), lambda = 1e-3;
  for (int it = 0; it < opt.max_iterations && q > 0; ++it) {
    dyn.jacobian(v.data(), J.data());
    // A = J^T J, g = J^T F; step (A + lambda diag(A) + tiny) d = -g.
    cpu::gemm(true, false, N, N, N, 1.0, J.data(), N, J.data(), N, 0.0, A.data(), N);
    cpu::gemm(true, false, N, 1, N, 1.0, J.data(), N, F.data(), 1, 0.0, g.data(), 1);
    bool improved = false;
    for (int attempt = 0; attempt < 30 && !improved; ++attempt) {
      std::vector<double> M(A), d(N);
      for (int i = 0; i < N; ++i) {
        const std::size_t ii = static_cast<std::size_t>(i) * N + i;
        M[ii] = A[ii] * (1 + lambda) + lambda * 1e-12;
        d[i] = -g[i];
      }
      std::vector<lapack_int> piv(N);
      if (LAPACKE_dgesv(LAPACK_ROW_MAJOR, N, 1, M.data(), N, piv.data(), d.data(), 1) != 0) {
        lambda *= 10;
        continue;
      }
      for (int i = 0; i < N; ++i) trial[i] = v[i] + d[i];
      dyn.rhs(trial.data(), Ft.data());
      const double qt = half_sq(Ft);
      if (std::isfinite(qt) && qt < q) {
        v.swap(trial);
        F.swap(Ft);
        const double gain = q - qt;
        q = qt;
        lambda = std::max(lambda / 3, 1e-12);
        improved = true;
        if (gain <= 1e-15 * q) return q;  // no more progress to be had
      } else {
        lambda *= 4;
      }
    }
    if (!improved) break;  // a minimum of q that is not a zero of F (a slow point), or a kink of relu
    if (q < opt.q_tolerance * 1e-12) break;
  }
  return q;
}

double norm(const std::vector<double>& a) {
  double s = 0;
  for (double x : a) s += x * x;
  return std::sqrt(s);
}

}  // namespace

FixedPointSearch find_fixed_points(const RateDynamics& dyn, const std::vector<std::vector<double>>& initial,
                                   const FixedPointOptions& opt) {
  FixedPointSearch out;
  std::vector<FixedPoint> found;
  for (const std::vector<double>& v0 : initial) {
    if (static_cast<int>(v0.size()) != dyn.N) throw std::invalid_argument("find_fixed_points: initial state of wrong width");
    std::vector<double> v = v0;
    const double q = minimise(dyn, v, opt);
    out.final_q.push_back(q);
    if (!(q < opt.q_tolerance)) continue;
    ++out.n_converged;
    FixedPoint fp;
    fp.v = std::move(v);
    fp.q = q;
    found.push_back(std::move(fp));
  }
  std::sort(found.begin(), found.end(), [](const FixedPoint& a, const FixedPoint& b) { return a.q < b.q; });
  for (FixedPoint& fp : found) {
    bool merged = false;
    for (FixedPoint& kept : out.points) {
      std::vector<double> diff(fp.v.size());
      for (std::size_t i = 0; i < diff.size(); ++i) diff[i] = fp.v[i] - kept.v[i];
      if (norm(diff) < opt.merge_distance * std::max(1.0, norm(kept.v))) {
        ++kept.count;
        merged = true;
        break;
      }
    }
    if (merged) continue;
    fp.count = 1;
    out.points.push_back(std::move(fp));
  }
  for (FixedPoint& fp : out.points) {
    std::vector<double> F(dyn.N);
    dyn.rhs(fp.v.data(), F.data());
    fp.speed = norm(F);
    fp.r.resize(dyn.N);
    for (int i = 0; i < dyn.N; ++i) fp.r[i] = dyn.phi_of(fp.v[i]);
    describe_fixed_point(dyn, fp);
  }
  return out;
}

}  // namespace dalesim
