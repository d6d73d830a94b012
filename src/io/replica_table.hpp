// The /replicas table of the output file: one column per replica parameter and per swept key,
// built in memory from the replica rows and written as 1-D datasets. Used by hdf5_writer.cpp only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dalesim/history.hpp"
#include "dalesim/task.hpp"
#include "io/h5.hpp"

namespace dalesim::replica_table {

inline void describe(h5::Object& obj, const std::string& description, const std::string& units = "") {
  obj.set_attribute("description", description);
  if (!units.empty()) obj.set_attribute("units", units);
}

// One /replicas column, built in memory and then written as a 1-D dataset of length R.
struct Column {
  enum Kind { i32, i64, u64, f64, str } kind;
  std::string name, description, units;
  std::vector<double> f;
  std::vector<std::int64_t> i;
  std::vector<std::uint64_t> u;
  std::vector<std::string> s;
};

// Which /replicas column a swept key lands in: an existing one ("model.alpha_init" -> alpha_init,
// "seed" -> seed, "task.name" -> task) or a new one named by the key with '.' -> '_'.
inline std::string axis_column_name(const std::string& key, const std::set<std::string>& existing, bool* is_new) {
  *is_new = false;
  if (key == "task.name") return "task";
  if (existing.count(key)) return key;
  for (const char* prefix : {"model.", "train.", "task."}) {
    std::string p = prefix;
    if (key.compare(0, p.size(), p) == 0 && existing.count(key.substr(p.size()))) return key.substr(p.size());
  }
  *is_new = true;
  std::string name = key;
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

// A column for one swept key: integers (and booleans as 0/1) as int64, numbers as float64, anything
// else (strings, lists) as strings.
inline Column axis_column(const std::string& key, const std::string& name, const std::vector<ReplicaRow>& rows) {
  std::vector<const Value*> values;
  bool all_int = true, all_number = true;
  for (const auto& row : rows) {
    const Value* v = nullptr;
    for (const auto& kv : row.config->axes)
      if (kv.first == key) v = &kv.second;
    values.push_back(v);
    bool is_int = v && (std::holds_alternative<std::int64_t>(*v) || std::holds_alternative<bool>(*v));
    all_int = all_int && is_int;
    all_number = all_number && (is_int || (v && std::holds_alternative<double>(*v)));
  }
  Column c{all_int ? Column::i64 : all_number ? Column::f64 : Column::str, name, "swept key " + key, "", {}, {}, {}, {}};
  for (const Value* v : values) {
    if (c.kind == Column::i64) {
      c.i.push_back(std::holds_alternative<bool>(*v) ? std::get<bool>(*v) : std::get<std::int64_t>(*v));
    } else if (c.kind == Column::f64) {
      c.f.push_back(std::holds_alternative<double>(*v) ? std::get<double>(*v)
                                                       : static_cast<double>(std::get<std::int64_t>(*v)));
    } else if (!v) {
      c.s.emplace_back("");
    } else {
      c.s.push_back(std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v) : format_value(*v));
    }
  }
  return c;
}

// "key=value; ..." of every parameter of a task: its registry defaults overridden by the config.
inline std::string task_params_text(const TaskConfig& task) {
  std::map<std::string, Value> params = task.params;
  for (const TaskInfo& t : task_registry())
    if (t.name == task.name)
      for (const ParamSpec& p : t.params) params.emplace(p.key, p.default_value);
  std::string text;
  for (const auto& [key, value] : params) text += (text.empty() ? "" : "; ") + key + "=" + format_value(value);
  return text;
}

inline std::vector<Column> replica_columns(const Sweep& sweep, const std::vector<ReplicaRow>& rows) {
  std::vector<Column> cols;
  auto num = [&](Column::Kind kind, const char* name, const char* description, const char* units, auto get) {
    Column c{kind, name, description, units, {}, {}, {}, {}};
    for (const auto& row : rows) {
      auto v = get(row, *row.config);
      if (kind == Column::f64) c.f.push_back(static_cast<double>(v));
      if (kind == Column::i32 || kind == Column::i64) c.i.push_back(static_cast<std::int64_t>(v));
      if (kind == Column::u64) c.u.push_back(static_cast<std::uint64_t>(v));
    }
    cols.push_back(std::move(c));
  };
  auto str = [&](const char* name, const char* description, auto get) {
    Column c{Column::str, name, description, "", {}, {}, {}, {}};
    for (const auto& row : rows) c.s.emplace_back(get(row, *row.config));
    cols.push_back(std::move(c));
  };
  using RR = const ReplicaRow&;
  using RC = const ReplicaConfig&;
  num(Column::i32, "id", "global replica id", "", [](RR, RC r) { return r.id; });
  num(Column::i32, "n_units", "recurrent units N", "", [](RR, RC r) { return r.model.n_units; });
  num(Column::i32, "n_exc", "excitatory units (the first n_exc indices)", "", [](RR, RC r) { return r.model.n_exc(); });
  num(Column::i32, "n_inputs", "input channels I", "", [](RR w, RC) { return w.n_inputs; });
  num(Column::i32, "n_outputs", "output channels O", "", [](RR w, RC) { return w.n_outputs; });
  num(Column::i32, "n_steps", "training steps planned", "", [](RR, RC r) { return r.train.n_steps; });
  num(Column::i32, "trial_steps", "time steps T of one trial of the task", "", [](RR w, RC) { return w.n_steps; });
  str("arch", "recurrent parameterisation", [](RR, RC r) { return to_string(r.model.arch); });
  str("optimizer", "optimiser", [](RR, RC r) { return to_string(r.train.optimizer); });
  str("rule", "learning rule of the weights (gd, eg, gd_sign, md)", [](RR, RC r) { return to_string(r.train.rule); });
  str("dale", "how Dale's law is kept during training", [](RR, RC r) { return to_string(r.train.dale); });
  str("phi", "nonlinearity", [](RR, RC r) { return to_string(r.model.phi); });
  str("precision", "arithmetic precision", [](RR, RC r) { return to_string(r.train.precision); });
  str("kernel", "train.kernel as asked for: auto, v1, v2 or v3", [](RR, RC r) { return to_string(r.train.kernel); });
  str("kernel_used", "the training kernel that ran: cpu (CPU backend), v1 or v2 (CUDA backend)",
      [](RR w, RC) { return w.kernel_used; });
  num(Column::f64, "alpha_init", "initial alpha (mix)", "", [](RR, RC r) { return r.model.alpha_init; });
  str("alpha_per", "mix: one alpha per network or per presynaptic neuron", [](RR, RC r) { return to_string(r.model.alpha_per); });
  str("alpha_form", "mix: alpha = sigmoid(a) (sigmoid) or alpha projected onto [0, 1] (clamp)",
      [](RR, RC r) { return to_string(r.model.alpha_form); });
  // The fraction used: n_exc / n_units when model.ei_ratio sets n_exc, else model.e_fraction (dann:
  // the fraction of its excitatory population).
  num(Column::f64, "e_fraction", "fraction of excitatory units (n_exc / n_units when set by model.ei_ratio)", "",
      [](RR, RC r) {
        return r.model.ei_ratio > 0 && !r.model.dann_part() ? static_cast<double>(r.model.n_exc()) / r.model.n_units
                                                             : r.model.e_fraction;
      });
  num(Column::f64, "tau_e", "time constant of excitatory units", "ms", [](RR, RC r) { return r.model.tau_e; });
  num(Column::f64, "tau_i", "time constant of inhibitory units", "ms", [](RR, RC r) { return r.model.tau_i; });
  num(Column::f64, "dt", "Euler step", "ms", [](RR, RC r) { return r.model.dt; });
  num(Column::f64, "lr", "learning rate", "", [](RR, RC r) { return r.train.lr; });
  num(Column::f64, "lr_alpha", "learning rate of alpha's logit a", "", [](RR, RC r) { return r.train.alpha_lr(); });
  num(Column::f64, "clip", "global gradient-norm clip (0 = off)", "", [](RR, RC r) { return r.train.clip; });
  for (const CostField& c : kCostFields) {
    const std::string name = std::string(c.key).substr(6);  // "train.l1_in" -> l1_in
    const auto coefficient = c.coefficient;
    const std::string description = "coefficient of the cost " + name + " in the loss (0 = none)";
    num(Column::f64, name.c_str(), description.c_str(), "", [coefficient](RR, RC r) { return r.train.*coefficient; });
  }
  num(Column::i64, "prune_at", "first pruning step (-1: never)", "", [](RR, RC r) { return r.train.prune_at; });
  num(Column::i64, "prune_every", "steps between prunings (0: once)", "", [](RR, RC r) { return r.train.prune_every; });
  num(Column::f64, "prune_fraction", "fraction of present recurrent connections removed per pruning", "",
      [](RR, RC r) { return r.train.prune_fraction; });
  num(Column::f64, "sigma_rec", "recurrent noise level", "", [](RR, RC r) { return r.model.sigma_rec; });
  num(Column::i64, "seed", "replica seed", "", [](RR, RC r) { return r.seed; });
  num(Column::u64, "init_seed", "seed of the initial weights", "", [](RR, RC r) { return r.init_seed; });
  num(Column::u64, "data_seed", "seed of the task batches", "", [](RR, RC r) { return r.data_seed; });
  num(Column::u64, "noise_seed", "seed of the recurrent noise", "", [](RR, RC r) { return r.noise_seed; });
  str("task", "task name", [](RR, RC r) { return r.task.name; });
  str("task_params",
      "every parameter of the replica's task, defaults included: 'key=value; ...' (values as in a sweep file)",
      [](RR, RC r) { return task_params_text(r.task); });
  num(Column::i32, "batch", "trials per batch", "", [](RR, RC r) { return r.task.batch; });
  num(Column::f64, "baseline_loss", "loss of the trivial predictor (the baseline to beat)", "",
      [](RR w, RC) { return w.baseline_loss; });
  num(Column::f64, "chance_accuracy", "accuracy at chance", "fraction", [](RR w, RC) { return w.chance_accuracy; });
  str("conditions",
      "the task's trial conditions, '; '-separated, in the order of the last axis of "
      "/checkpoints/eval_accuracy_by_condition (empty: none)",
      [](RR w, RC) {
        std::string joined;
        for (const std::string& c : w.conditions) joined += (joined.empty() ? "" : "; ") + c;
        return joined;
      });
  str("status", "running, complete or diverged", [](RR, RC) { return "running"; });
  num(Column::i64, "diverged_step", "step at which the replica diverged (-1: never)", "", [](RR, RC) { return -1; });

  std::set<std::string> existing;
  for (const auto& c : cols) existing.insert(c.name);
  for (const auto& key : sweep.axis_keys) {
    bool is_new = false;
    std::string name = axis_column_name(key, existing, &is_new);
    if (!is_new) continue;
    cols.push_back(axis_column(key, name, rows));
    existing.insert(name);
  }
  return cols;
}

inline h5::Dataset write_column(h5::Group& group, const Column& c) {
  const hid_t file_types[] = {H5T_STD_I32LE, H5T_STD_I64LE, H5T_STD_U64LE, H5T_IEEE_F64LE};
  std::size_t n = c.kind == Column::str ? c.s.size() : c.kind == Column::f64 ? c.f.size()
                  : c.kind == Column::u64 ? c.u.size() : c.i.size();
  h5::Dataspace space = h5::Dataspace::simple({n});
  h5::Dataset ds;
  if (c.kind == Column::str) {
    ds = group.create_dataset(c.name, h5::Datatype::utf8_string().id(), space);
    ds.write_strings(c.s);
  } else {
    ds = group.create_dataset(c.name, file_types[c.kind], space);
    if (c.kind == Column::f64) ds.write(H5T_NATIVE_DOUBLE, c.f.data());
    if (c.kind == Column::u64) ds.write(H5T_NATIVE_UINT64, c.u.data());
    if (c.kind == Column::i32 || c.kind == Column::i64) ds.write(H5T_NATIVE_INT64, c.i.data());
  }
  describe(ds, c.description, c.units);
  return ds;
}

}  // namespace dalesim::replica_table
