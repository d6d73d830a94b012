// Trials files, written by `dalesim trials` and read by simulate and fixedpoints; the `file` task
// reads the same inputs/targets/mask datasets (tasks/file_task.cpp).
#include "dynamics/trials_file.hpp"

#include <filesystem>
#include <stdexcept>

#include "dynamics/labelled_h5.hpp"
#include "io/h5.hpp"

namespace dalesim {

namespace fs = std::filesystem;

namespace {

std::string shape_text(const h5::Dims& d) {
  std::string s = "[";
  for (std::size_t k = 0; k < d.size(); ++k) s += (k ? ", " : "") + std::to_string(d[k]);
  return s + "]";
}

}  // namespace

void write_trial_arrays(h5::File& f, const TrialSet& trials, double dt) {
  const Batch& b = trials.batch;
  const int B = b.B, T = b.T, I = b.I, O = b.O;
  const bool classes = b.loss == LossKind::cross_entropy;
  f.set_attribute("loss", to_string(b.loss));
  f.set_attribute("accuracy_begin", b.acc_begin);
  f.set_attribute("accuracy_end", b.acc_end);
    const h5::Dataset trial = make_axis(f, "trial", iota(B));
    const h5::Dataset time = make_axis(f, "time", iota(T, dt > 0 ? dt : 1));
    const h5::Dataset input = make_axis(f, "input", iota(I));
    const h5::Dataset output = make_axis(f, "output", iota(O));
    create_labelled(f, "inputs", H5T_IEEE_F32LE, {h5::Dims::value_type(B), hsize_t(T), hsize_t(I)}, {&trial, &time, &input},
           {"trial", "time", "input"})
        .write(H5T_NATIVE_FLOAT, to_trial_major(b.x, T, B, I).data());
    if (classes) {
      create_labelled(f, "targets", H5T_STD_I32LE, {hsize_t(B), hsize_t(T)}, {&trial, &time}, {"trial", "time"})
          .write(H5T_NATIVE_INT, to_trial_major(b.target, T, B, 1).data());
      std::vector<float> mask(b.target.size());
      for (std::size_t k = 0; k < mask.size(); ++k) mask[k] = b.target[k] >= 0 ? 1.f : 0.f;
      create_labelled(f, "mask", H5T_IEEE_F32LE, {hsize_t(B), hsize_t(T)}, {&trial, &time}, {"trial", "time"})
          .write(H5T_NATIVE_FLOAT, to_trial_major(mask, T, B, 1).data());
    } else {
      create_labelled(f, "targets", H5T_IEEE_F32LE, {hsize_t(B), hsize_t(T), hsize_t(O)}, {&trial, &time, &output},
             {"trial", "time", "output"})
          .write(H5T_NATIVE_FLOAT, to_trial_major(b.y, T, B, O).data());
      create_labelled(f, "mask", H5T_IEEE_F32LE, {hsize_t(B), hsize_t(T), hsize_t(O)}, {&trial, &time, &output},
             {"trial", "time", "output"})
          .write(H5T_NATIVE_FLOAT, to_trial_major(b.mask, T, B, O).data());
    }
    // The accuracy definition in its per-step form: the label scored at each (trial, step), -1 none.
    std::vector<int> acc(static_cast<std::size_t>(T) * B, -1);
    if (b.acc_step >= 0) {
      for (int k = 0; k < B; ++k) acc[static_cast<std::size_t>(b.acc_step) * B + k] = b.label[k];
    } else if (!b.acc_label.empty()) {
      acc = b.acc_label;
    }
    create_labelled(f, "accuracy_label", H5T_STD_I32LE, {hsize_t(B), hsize_t(T)}, {&trial, &time}, {"trial", "time"})
        .write(H5T_NATIVE_INT, to_trial_major(acc, T, B, 1).data());
    // Per-trial labels: the condition (an index into condition_names, -1 none) and its name; the
    // correct choice of tasks scored at one final step.
    std::vector<int> condition(b.condition);
    condition.resize(B, -1);
    std::vector<std::string> names(B);
    for (int k = 0; k < B; ++k)
      if (condition[k] >= 0 && condition[k] < static_cast<int>(trials.condition_names.size()))
        names[k] = trials.condition_names[condition[k]];
    h5::Dataset cond = f.create_dataset("condition", H5T_STD_I32LE, h5::Dataspace::simple({hsize_t(B)}));
    cond.write(H5T_NATIVE_INT, condition.data());
    cond.attach_scale(trial, 0);
    const h5::Datatype text = h5::Datatype::utf8_string();
    h5::Dataset cond_name = f.create_dataset("condition_name", text.id(), h5::Dataspace::simple({hsize_t(B)}));
    cond_name.write_strings(names);
    cond_name.attach_scale(trial, 0);
    const h5::Dataset index = make_axis(f, "condition_index", iota(static_cast<int>(trials.condition_names.size())));
    h5::Dataset all = f.create_dataset("condition_names", text.id(),
                                       h5::Dataspace::simple({hsize_t(trials.condition_names.size())}));
    all.write_strings(trials.condition_names);
    all.attach_scale(index, 0);
    if (b.acc_step >= 0) {
      h5::Dataset label = f.create_dataset("label", H5T_STD_I32LE, h5::Dataspace::simple({hsize_t(B)}));
      label.write(H5T_NATIVE_INT, b.label.data());
      label.attach_scale(trial, 0);
    }
}

void write_trials_file(const std::string& path, const TrialSet& trials, const TrialsInfo& info, bool overwrite) {
  std::error_code ec;
  if (!overwrite && fs::exists(fs::symlink_status(path, ec)))
    throw InputError("output file " + path + " already exists; pass --force to overwrite it");
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec))
    throw InputError("cannot create output file " + path + ": directory " + dir.string() + " does not exist");
  const Batch& b = trials.batch;
  const bool classes = b.loss == LossKind::cross_entropy;
  write_h5_then_rename(path, [&](h5::File& f) {
    f.set_attribute("format", "dalesim-trials");
    f.set_attribute("format_version", 1);
    f.set_attribute("task", info.task);
    f.set_attribute("task_params", info.task_params);
    f.set_attribute("dt", info.dt);
    f.set_attribute("seed", info.seed);
    f.set_attribute("data_seed", std::to_string(info.data_seed));
    f.set_attribute("iteration", info.iteration);
    f.set_attribute("command_line", info.command_line);
    f.set_attribute("train_with",
                    std::string("[task] name = \"file\", path = \"") + path + "\", test_fraction = 0" +
                        (classes ? ", target = \"class\", n_outputs = " + std::to_string(b.O) : std::string()));
    write_trial_arrays(f, trials, info.dt);
  });
}

TrialSet read_trials_file(const std::string& path) {
  auto fail = [&](const std::string& what) -> void { throw InputError("trials file " + path + ": " + what); };
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("no such file");
  if (!fs::is_regular_file(path, ec)) fail("not a regular file");
  h5::silence_errors();
  h5::File f;
  try {
    f = h5::File::open_read_only(path);
  } catch (const std::runtime_error& e) {
    fail(std::string("not an HDF5 file (") + e.what() + ")");
  }
  TrialSet ts;
  ts.origin = path;
  for (const char* name : {"inputs", "targets"})
    if (!f.is_dataset(name)) fail(std::string("no dataset \"") + name + "\" (the file task's layout: inputs [trial, T, I], targets)");
  h5::Dataset in = f.open_dataset("inputs");
  const h5::Dims xd = in.dims();
  if (xd.size() != 3 || xd[0] == 0 || xd[1] == 0 || xd[2] == 0)
    fail("inputs has shape " + shape_text(xd) + ": expected [trial, T, I], none of them 0");
  const int B = static_cast<int>(xd[0]), T = static_cast<int>(xd[1]), I = static_cast<int>(xd[2]);
  h5::Dataset tg = f.open_dataset("targets");
  const h5::Dims yd = tg.dims();
  const bool classes = yd.size() == 2;
  if (!(yd.size() == 2 || yd.size() == 3) || yd[0] != xd[0] || yd[1] != xd[1] || (yd.size() == 3 && yd[2] == 0))
    fail("targets has shape " + shape_text(yd) + ": expected [" + std::to_string(B) + ", " + std::to_string(T) +
         ", O] (floats) or [" + std::to_string(B) + ", " + std::to_string(T) + "] (integer classes)");
  int O = classes ? 0 : static_cast<int>(yd[2]);
  std::vector<int> target;
  if (classes) {
    target.resize(static_cast<std::size_t>(B) * T);
    tg.read(H5T_NATIVE_INT, target.data());
    for (int c : target) O = std::max(O, c + 1);
    if (f.has_attribute("train_with") && f.is_dataset("output")) O = static_cast<int>(f.open_dataset("output").dims()[0]);
  }
  Batch& b = ts.batch;
  b.resize(B, T, I, O);
  b.loss = classes ? LossKind::cross_entropy : LossKind::mse;
  std::vector<float> x(static_cast<std::size_t>(B) * T * I);
  in.read(H5T_NATIVE_FLOAT, x.data());
  std::vector<float> y, mask;
  if (!classes) {
    y.resize(static_cast<std::size_t>(B) * T * O);
    tg.read(H5T_NATIVE_FLOAT, y.data());
  }
  const bool has_mask = f.is_dataset("mask");
  bool mask_per_output = false;
  if (has_mask) {
    h5::Dataset mk = f.open_dataset("mask");
    const h5::Dims md = mk.dims();
    mask_per_output = md.size() == 3;
    if (md.size() < 2 || md[0] != xd[0] || md[1] != xd[1] || (md.size() == 3 && (classes || md[2] != yd[2])) ||
        md.size() > 3)
      fail("mask has shape " + shape_text(md) + ": expected [" + std::to_string(B) + ", " + std::to_string(T) + "]" +
           (classes ? std::string() : " or [" + std::to_string(B) + ", " + std::to_string(T) + ", " + std::to_string(O) + "]"));
    mask.resize(mask_per_output ? static_cast<std::size_t>(B) * T * O : static_cast<std::size_t>(B) * T);
    mk.read(H5T_NATIVE_FLOAT, mask.data());
  }
  std::vector<int> acc;
  if (f.is_dataset("accuracy_label")) {
    h5::Dataset a = f.open_dataset("accuracy_label");
    if (a.dims() != h5::Dims{xd[0], xd[1]})
      fail("accuracy_label has shape " + shape_text(a.dims()) + ": expected [" + std::to_string(B) + ", " + std::to_string(T) + "]");
    acc.resize(static_cast<std::size_t>(B) * T);
    a.read(H5T_NATIVE_INT, acc.data());
    b.acc_begin = f.has_attribute("accuracy_begin") ? static_cast<int>(f.int_attribute("accuracy_begin")) : 0;
    b.acc_end = f.has_attribute("accuracy_end") ? static_cast<int>(f.int_attribute("accuracy_end")) : O;
  } else if (classes) {  // the file task's class form: every scored step, argmax over all outputs
    acc = target;
    b.acc_begin = 0;
    b.acc_end = O;
  }
  for (int k = 0; k < B; ++k)
    for (int t = 0; t < T; ++t) {
      const std::size_t src = static_cast<std::size_t>(k) * T + t, dst = static_cast<std::size_t>(t) * B + k;
      std::copy_n(&x[src * I], I, &b.x[dst * I]);
      if (classes) {
        const bool scored = !has_mask || mask[src] != 0;
        b.target[dst] = scored ? target[src] : -1;
      } else {
        for (int o = 0; o < O; ++o) {
          b.y[dst * O + o] = y[src * O + o];
          b.mask[dst * O + o] = !has_mask ? 1.f : mask_per_output ? mask[src * O + o] : mask[src];
        }
      }
      if (!acc.empty()) b.acc_label[dst] = acc[src];
    }
  if (f.has_attribute("dt")) {
    double dt = 0;
    h5::Dataset time = f.is_dataset("time") ? f.open_dataset("time") : h5::Dataset();
    if (time.valid() && T > 1) {
      const std::vector<double> tv = time.read_doubles();
      dt = tv.size() > 1 ? tv[1] - tv[0] : 0;
    }
    ts.dt = dt;
  }
  if (f.is_dataset("condition")) {
    std::vector<std::int64_t> c = f.open_dataset("condition").read_int64s();
    if (c.size() != static_cast<std::size_t>(B)) fail("condition does not hold one value per trial");
    if (f.is_dataset("condition_names")) ts.condition_names = f.open_dataset("condition_names").read_strings();
    for (int k = 0; k < B; ++k) {
      if (c[k] < -1 || c[k] >= static_cast<std::int64_t>(ts.condition_names.size()))
        fail("condition of trial " + std::to_string(k) + " is " + std::to_string(c[k]) +
             ": expected -1 or an index into condition_names (" + std::to_string(ts.condition_names.size()) + ")");
      b.condition[k] = static_cast<int>(c[k]);
    }
  }
  if (f.is_dataset("label")) {
    const std::vector<std::int64_t> l = f.open_dataset("label").read_int64s();
    if (l.size() == static_cast<std::size_t>(B))
      for (int k = 0; k < B; ++k) b.label[k] = static_cast<int>(l[k]);
  }
  return ts;
}

void slice_batch(const Batch& in, int first, int n, Batch& out) {
  out.resize(n, in.T, in.I, in.O);
  out.loss = in.loss;
  out.acc_step = in.acc_step;
  out.acc_begin = in.acc_begin;
  out.acc_end = in.acc_end;
  const int B = in.B;
  for (int t = 0; t < in.T; ++t)
    for (int k = 0; k < n; ++k) {
      const std::size_t src = static_cast<std::size_t>(t) * B + first + k, dst = static_cast<std::size_t>(t) * n + k;
      std::copy_n(&in.x[src * in.I], in.I, &out.x[dst * in.I]);
      std::copy_n(&in.y[src * in.O], in.O, &out.y[dst * in.O]);
      std::copy_n(&in.mask[src * in.O], in.O, &out.mask[dst * in.O]);
      out.target[dst] = in.target[src];
      out.acc_label[dst] = in.acc_label[src];
    }
  for (int k = 0; k < n; ++k) {
    out.label[k] = in.label[first + k];
    out.condition[k] = in.condition.empty() ? -1 : in.condition[first + k];
  }
}

}  // namespace dalesim
