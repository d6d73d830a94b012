// Reads dalesim output files back (for `dalesim inspect`, analysis and round-trip tests). Works on
// complete files and on files whose writer is still running or was killed (status "running").
#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "dalesim/history.hpp"
#include "io/h5.hpp"

namespace dalesim {

namespace {

constexpr int kNewestFormatVersion = 1;

h5::File open_dalesim_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw std::runtime_error("no such file: " + path);
  if (fs::is_directory(path, ec)) throw std::runtime_error(path + ": is a directory, not a dalesim output file");
  h5::File file;
  try {
    file = h5::File::open_read_only(path);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": not an HDF5 file or truncated (" + e.what() + ")");
  }
  if (!file.has_attribute("format") || file.string_attribute("format") != "dalesim")
    throw std::runtime_error(path + ": not a dalesim output file (no 'format' attribute equal to \"dalesim\" "
                             "at the root; was it written by another program?)");
  std::int64_t version = file.has_attribute("format_version") ? file.int_attribute("format_version") : 0;
  if (version > kNewestFormatVersion)
    throw std::runtime_error(path + ": written in dalesim format_version " + std::to_string(version) +
                             ", but this dalesim reads format_version <= " + std::to_string(kNewestFormatVersion) +
                             "; it needs a newer dalesim");
  return file;
}

std::string string_or_empty(const h5::Object& obj, const std::string& name) {
  return obj.has_attribute(name) ? obj.string_attribute(name) : std::string();
}

bool is_numeric(const h5::Dataset& ds) {
  H5T_class_t c = ds.type().type_class();
  return c == H5T_INTEGER || c == H5T_FLOAT;
}

// Reads every numeric [step, replica] dataset of `group` into names/values (in name order); the
// 1-D axes and replica coordinates beside them are not metrics.
void read_metrics(const h5::Group& group, std::vector<std::string>* names, std::vector<std::vector<double>>* values) {
  for (const std::string& name : group.child_names()) {
    if (name == "step" || !group.is_dataset(name)) continue;
    h5::Dataset ds = group.open_dataset(name);
    if (!is_numeric(ds) || ds.dims().size() != 2) continue;
    names->push_back(name);
    values->push_back(ds.read_doubles());
  }
}

template <typename T>
const T* find_named(const std::vector<std::string>& names, const std::vector<T>& values, const std::string& name) {
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? nullptr : &values[static_cast<std::size_t>(it - names.begin())];
}

}  // namespace

const std::vector<double>* RunFile::numeric_column(const std::string& name) const {
  return find_named(numeric_column_names, numeric_columns, name);
}
const std::vector<std::string>* RunFile::string_column(const std::string& name) const {
  return find_named(string_column_names, string_columns, name);
}
const std::vector<double>* RunFile::history_metric(const std::string& name) const {
  return find_named(history_metric_names, history, name);
}
std::vector<StepMetrics> RunFile::history_row(std::size_t s) const {
  const std::size_t R = static_cast<std::size_t>(n_replicas);
  std::vector<StepMetrics> row(R);
  for (const auto& [name, member] : kStepMetricFields)
    if (const std::vector<double>* v = history_metric(name))
      for (std::size_t r = 0; r < R && (s + 1) * R <= v->size(); ++r) row[r].*member = (*v)[s * R + r];
  return row;
}

const std::vector<double>* RunFile::checkpoint_metric(const std::string& name) const {
  return find_named(checkpoint_metric_names, checkpoints, name);
}

RunFile read_run_file(const std::string& path) {
  h5::File file = open_dalesim_file(path);
  RunFile run;
  try {
    run.format = file.string_attribute("format");
    run.format_version = static_cast<int>(file.int_attribute("format_version"));
    run.status = string_or_empty(file, "status");
    run.sweep_text = string_or_empty(file, "sweep_text");
    run.resolved_config = string_or_empty(file, "resolved_config");
    run.command_line = string_or_empty(file, "command_line");
    run.backend = string_or_empty(file, "backend");
    run.device = string_or_empty(file, "device");
    run.git_hash = string_or_empty(file, "git_hash");
    run.engine_version = string_or_empty(file, "dalesim_version");
    run.n_replicas = file.has_attribute("n_replicas") ? static_cast<int>(file.int_attribute("n_replicas")) : 0;

    if (file.is_group("replicas")) {
      h5::Group replicas = file.open_group("replicas");
      for (const std::string& name : replicas.child_names()) {
        if (!replicas.is_dataset(name)) continue;
        h5::Dataset ds = replicas.open_dataset(name);
        if (name == "replica" && ds.is_scale()) continue;  // the netCDF dimension, a copy of the id column
        H5T_class_t c = ds.type().type_class();
        if (c == H5T_INTEGER || c == H5T_FLOAT) {
          run.numeric_column_names.push_back(name);
          run.numeric_columns.push_back(ds.read_doubles());
        } else if (c == H5T_STRING) {
          run.string_column_names.push_back(name);
          run.string_columns.push_back(ds.read_strings());
        }
      }
    }
    if (file.is_group("history")) {
      h5::Group history = file.open_group("history");
      if (history.is_dataset("step")) run.history_step = history.open_dataset("step").read_int64s();
      read_metrics(history, &run.history_metric_names, &run.history);
    }
    if (file.is_group("checkpoints")) {
      h5::Group ckpt = file.open_group("checkpoints");
      if (ckpt.is_dataset("step")) run.checkpoint_step = ckpt.open_dataset("step").read_int64s();
      read_metrics(ckpt, &run.checkpoint_metric_names, &run.checkpoints);
    }
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": cannot read dalesim file: " + e.what());
  }
  return run;
}

ReplicaWeights read_checkpoint_weights(const std::string& path, int replica, int c) {
  h5::File file = open_dalesim_file(path);
  if (!file.exists("checkpoints") || !file.open_group("checkpoints").exists("weights"))
    throw std::runtime_error(path + ": has no /checkpoints/weights group");
  h5::Group weights = file.open_group("checkpoints").open_group("weights");
  for (const std::string& name : weights.child_names()) {
    if (!weights.is_group(name)) continue;
    h5::Group g = weights.open_group(name);
    std::vector<std::int64_t> ids = g.open_dataset("replica").read_int64s();
    auto it = std::find(ids.begin(), ids.end(), replica);
    if (it == ids.end()) continue;
    hsize_t m = static_cast<hsize_t>(it - ids.begin());

    // Each dataset is [C, R_g, ...] with `rank` axes; anything else (a damaged or foreign file)
    // is refused before its dims are indexed or a block is selected.
    auto dims_of = [&](const h5::Dataset& ds, const char* dataset, std::size_t rank) {
      h5::Dims d = ds.dims();
      std::string shape;
      for (hsize_t x : d) shape += (shape.empty() ? "" : ", ") + std::to_string(x);
      if (d.size() != rank || d[1] != ids.size())
        throw std::runtime_error(path + ": " + g.path() + "/" + dataset + " has shape [" + shape + "], expected " +
                                 std::to_string(rank) + " axes [checkpoint, replica (" + std::to_string(ids.size()) +
                                 " in " + g.path() + "/replica), ...]");
      if (c < 0 || static_cast<hsize_t>(c) >= d[0])
        throw std::runtime_error(path + ": checkpoint index " + std::to_string(c) + " out of range (the file has " +
                                 std::to_string(d[0]) + " checkpoints)");
      return d;
    };
    hsize_t ci = static_cast<hsize_t>(c);
    ReplicaWeights w;
    // Reads the block of (checkpoint c, replica m) of a [C, R_g, ...] dataset.
    auto read = [&](const char* dataset, std::size_t rank, std::vector<float>* out) {
      h5::Dataset ds = g.open_dataset(dataset);
      h5::Dims d = dims_of(ds, dataset, rank), start(d.size(), 0), count = d;
      start[0] = ci;
      start[1] = m;
      count[0] = count[1] = 1;
      std::size_t n = 1;
      for (std::size_t k = 2; k < d.size(); ++k) n *= d[k];
      out->assign(n, 0.f);
      if (n > 0) ds.read_block(H5T_NATIVE_FLOAT, start, count, out->data());
      return d;
    };
    w.N = static_cast<int>(read("W_rec", 4, &w.W_rec)[2]);
    read("W_dale", 4, &w.W_dale);
    read("W_free", 4, &w.W_free);
    w.I = static_cast<int>(read("W_in", 4, &w.W_in)[3]);
    w.O = static_cast<int>(read("W_out", 4, &w.W_out)[2]);
    read("b", 3, &w.b);
    read("b_out", 3, &w.b_out);
    std::vector<float> alpha;
    read("alpha", 2, &alpha);
    w.alpha = alpha.at(0);
    if (g.exists("alpha_units")) read("alpha_units", 3, &w.alpha_units);
    return w;
  }
  throw std::runtime_error(path + ": replica " + std::to_string(replica) + " is not in any weight group");
}

}  // namespace dalesim
