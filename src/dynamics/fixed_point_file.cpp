// Writer of fixed-point files (`dalesim fixedpoints`): every array with its axes as dimension
// scales; zero fixed points is a valid file (arrays with a zero-sized first axis).
#include "dynamics/fixed_point_file.hpp"

#include <filesystem>
#include <stdexcept>

#include "dynamics/labelled_h5.hpp"

namespace dalesim {

namespace {

// A contiguous dataset (zero-sized axes allowed) with its axes attached.
void write_array(h5::Location& f, const std::string& name, const std::vector<double>& data, const h5::Dims& dims,
                 const std::vector<const h5::Dataset*>& axes, const std::vector<std::string>& labels) {
  h5::Dataset ds = f.create_dataset(name, H5T_IEEE_F64LE, h5::Dataspace::simple(dims));
  if (!data.empty()) ds.write(H5T_NATIVE_DOUBLE, data.data());
  for (unsigned a = 0; a < axes.size(); ++a) {
    ds.attach_scale(*axes[a], a);
    ds.set_label(a, labels[a]);
  }
}

}  // namespace

void write_fixed_points(const std::string& path, const TrainedReplica& rep, const std::vector<double>& x,
                        const FixedPointSearch& res, const Simulation& sim, int n_traj,
                        const FixedPointOptions& opt, const std::string& command_line, double dt) {
  namespace fs = std::filesystem;
  write_h5_then_rename(path, [&](h5::File& f) {
    f.set_attribute("format", "dalesim-fixedpoints");
    f.set_attribute("format_version", 1);
    f.set_attribute("replica", rep.id);
    f.set_attribute("arch", rep.arch);
    f.set_attribute("checkpoint", rep.checkpoint);
    f.set_attribute("step", rep.step);
    f.set_attribute("alpha", rep.alpha);
    f.set_attribute("n_exc", rep.config->model.n_exc());
    f.set_attribute("q_tolerance", opt.q_tolerance);
    f.set_attribute("n_initial", static_cast<std::int64_t>(res.final_q.size()));
    f.set_attribute("n_converged", res.n_converged);
    f.set_attribute("rhs", "F(v) = dv/dt = (-v + W_rec phi(v) + W_in x + b) / tau, per ms");
    f.set_attribute("command_line", command_line);
    const int N = rep.n_units(), P = static_cast<int>(res.points.size()), I = rep.n_inputs();
    const h5::Dataset fp = make_axis(f, "fixed_point", iota(P)), unit = make_axis(f, "unit", iota(N)),
                      unit_from = make_axis(f, "unit_from", iota(N)), eig = make_axis(f, "eigenvalue", iota(N)),
                      input = make_axis(f, "input", iota(I)),
                      init = make_axis(f, "initial_state", iota(static_cast<int>(res.final_q.size()))),
                      trial = make_axis(f, "trial", iota(n_traj)), time = make_axis(f, "time", iota(sim.T, dt));
    write_array(f, "input_value", x, {hsize_t(I)}, {&input}, {"input"});
    std::vector<double> v, r, re, im, jac, q, speed, stable, henrici, count;
    for (const FixedPoint& p : res.points) {
      v.insert(v.end(), p.v.begin(), p.v.end());
      r.insert(r.end(), p.r.begin(), p.r.end());
      re.insert(re.end(), p.eig_re.begin(), p.eig_re.end());
      im.insert(im.end(), p.eig_im.begin(), p.eig_im.end());
      jac.insert(jac.end(), p.jacobian.begin(), p.jacobian.end());
      q.push_back(p.q);
      speed.push_back(p.speed);
      stable.push_back(p.stable ? 1 : 0);
      henrici.push_back(p.henrici);
      count.push_back(p.count);
    }
    const h5::Dims pn{hsize_t(P), hsize_t(N)}, p1{hsize_t(P)};
    write_array(f, "v", v, pn, {&fp, &unit}, {"fixed_point", "unit"});
    write_array(f, "r", r, pn, {&fp, &unit}, {"fixed_point", "unit"});
    write_array(f, "eigenvalue_real", re, pn, {&fp, &eig}, {"fixed_point", "eigenvalue"});
    write_array(f, "eigenvalue_imag", im, pn, {&fp, &eig}, {"fixed_point", "eigenvalue"});
    write_array(f, "jacobian", jac, {hsize_t(P), hsize_t(N), hsize_t(N)}, {&fp, &unit, &unit_from},
                {"fixed_point", "unit", "unit_from"});
    write_array(f, "q", q, p1, {&fp}, {"fixed_point"});
    write_array(f, "speed", speed, p1, {&fp}, {"fixed_point"});
    write_array(f, "stable", stable, p1, {&fp}, {"fixed_point"});
    write_array(f, "henrici", henrici, p1, {&fp}, {"fixed_point"});
    write_array(f, "count", count, p1, {&fp}, {"fixed_point"});
    write_array(f, "initial_q", res.final_q, {hsize_t(res.final_q.size())}, {&init}, {"initial_state"});
    // The trajectories the initial states were drawn from (the first trials), for PCA figures.
    std::vector<double> traj(sim.v.begin(), sim.v.begin() + static_cast<std::ptrdiff_t>(n_traj) * sim.T * N);
    write_array(f, "trajectories", traj, {hsize_t(n_traj), hsize_t(sim.T), hsize_t(N)}, {&trial, &time, &unit},
                {"trial", "time", "unit"});
  });
}


}  // namespace dalesim
