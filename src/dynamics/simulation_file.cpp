// Writer of simulation files (`dalesim simulate`), laid out for xarray: every array's axes are
// dimension scales (trial, time, input, output at the root, unit in each replica's group).
#include "dynamics/simulation_file.hpp"

#include <filesystem>
#include <stdexcept>

#include "dynamics/labelled_h5.hpp"

namespace dalesim {

namespace fs = std::filesystem;

void check_new_output(const std::string& path, bool overwrite) {
  std::error_code ec;
  if (!overwrite && fs::exists(fs::symlink_status(path, ec)))
    throw ConfigError("--output", path, "a path that does not exist yet", "pass --force to overwrite it");
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec))
    throw ConfigError("--output", path, "a path in an existing directory", "directory " + dir.string() + " does not exist");
}

void write_simulation_file(const std::string& path, const TrialSet& trials, const std::vector<SimulationRecord>& records,
                           const SimulationInfo& info, bool overwrite) {
  check_new_output(path, overwrite);
  write_h5_then_rename(path, [&](h5::File& f) {
    f.set_attribute("format", "dalesim-simulation");
    f.set_attribute("format_version", 1);
    f.set_attribute("run_file", info.run_file);
    f.set_attribute("trials", info.trials_origin);
    f.set_attribute("noise", info.noise ? "on" : "off");
    f.set_attribute("dt", info.dt);
    f.set_attribute("command_line", info.command_line);
    write_trial_arrays(f, trials, info.dt);
    const h5::Dataset trial = f.open_dataset("trial"), time = f.open_dataset("time"), output = f.open_dataset("output");
    std::string ids;
    for (const SimulationRecord& rec : records) {
      const TrainedReplica& rep = *rec.replica;
      const Simulation& s = rec.sim;
      ids += (ids.empty() ? "" : " ") + std::to_string(rep.id);
      h5::Group g = f.create_group("replica_" + std::to_string(rep.id));
      g.set_attribute("replica", rep.id);
      g.set_attribute("arch", rep.arch);
      g.set_attribute("checkpoint", rep.checkpoint);
      g.set_attribute("step", rep.step);
      g.set_attribute("weights", rep.exact ? "resume state (exact)" : "checkpoint weights (float32)");
      g.set_attribute("alpha", rep.alpha);
      g.set_attribute("n_exc", rep.config->model.n_exc());
      g.set_attribute("batch_loss", s.batch_loss);
      g.set_attribute("batch_accuracy", s.batch_accuracy);
      std::vector<double> cell_type(s.N);
      for (int i = 0; i < s.N; ++i) cell_type[i] = rep.model.col_sign[i];
      const h5::Dataset unit = make_axis(g, "unit", iota(s.N));
      h5::Dataset sign = g.create_dataset("unit_sign", H5T_NATIVE_DOUBLE, h5::Dataspace::simple({hsize_t(s.N)}));
      sign.write(H5T_NATIVE_DOUBLE, cell_type.data());
      sign.attach_scale(unit, 0);
      const h5::Dims tn{hsize_t(s.B), hsize_t(s.T), hsize_t(s.N)}, to{hsize_t(s.B), hsize_t(s.T), hsize_t(s.O)};
      create_labelled(g, "v", H5T_IEEE_F32LE, tn, {&trial, &time, &unit}, {"trial", "time", "unit"})
          .write(H5T_NATIVE_FLOAT, s.v.data());
      create_labelled(g, "r", H5T_IEEE_F32LE, tn, {&trial, &time, &unit}, {"trial", "time", "unit"})
          .write(H5T_NATIVE_FLOAT, s.r.data());
      create_labelled(g, "z", H5T_IEEE_F32LE, to, {&trial, &time, &output}, {"trial", "time", "output"})
          .write(H5T_NATIVE_FLOAT, s.z.data());
      const std::pair<const char*, const std::vector<double>*> per_trial[] = {
          {"loss", &s.loss}, {"loss_weight", &s.loss_weight}, {"accuracy", &s.accuracy},
          {"accuracy_points", &s.accuracy_points}};
      for (const auto& [name, values] : per_trial) {
        h5::Dataset ds = g.create_dataset(name, H5T_NATIVE_DOUBLE, h5::Dataspace::simple({hsize_t(s.B)}));
        ds.write(H5T_NATIVE_DOUBLE, values->data());
        ds.attach_scale(trial, 0);
      }
    }
    f.set_attribute("replicas", ids);
  });
}

}  // namespace dalesim
