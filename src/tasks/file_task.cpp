// Bring-your-own trials: inputs [trial, T, I], targets and an optional mask read from a user's
// HDF5 file, split into training, validation and test trials.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "dalesim/rng.hpp"
#include "io/h5.hpp"
#include "sweep/preflight.hpp"
#include "tasks/builtin.hpp"
#include "tasks/data_cache.hpp"
#include "tasks/dataset_order.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

namespace {

struct FileData {
  int n = 0, T = 0, I = 0, O = 0;
  bool classes = false;     // class form: target, else y and mask
  std::vector<float> x;     // [n, T, I]
  std::vector<float> y;     // [n, T, O]
  std::vector<float> mask;  // [n, T, O]
  std::vector<int> target;  // [n, T], -1 = not scored
};

struct FileSpec {
  std::string path, inputs, targets, mask;
  bool mask_optional = false;  // the default name: a file without it scores every step
  bool classes = false;
  int n_outputs = 0;  // class form: 0 = largest label + 1
};

std::string shape_text(const h5::Dims& d) {
  std::string s = "[";
  for (std::size_t k = 0; k < d.size(); ++k) s += (k ? ", " : "") + std::to_string(d[k]);
  return s + "]";
}

// At most this many classes (outputs of the class form): a label of 10^9 is a mistake, not a task.
constexpr long long kMaxClasses = 65536;

[[noreturn]] void fail(const FileSpec& f, const std::string& what) {
  throw InputError("file task: task.path = \"" + f.path + "\": " + what);
}

h5::Dataset open_numeric(const FileSpec& f, const h5::File& file, const std::string& name, const char* role) {
  if (file.is_group(name))
    fail(f, std::string("\"") + name + "\" is a group, not a dataset, so it cannot hold the " + role +
                "; set task." + role + " to the path of a dataset (e.g. \"" + name + "/...\")");
  if (!file.is_dataset(name)) {
    std::string present;
    for (const std::string& c : file.child_names()) present += (present.empty() ? "" : ", ") + c;
    fail(f, std::string("no dataset \"") + name + "\" for the " + role + " (the root holds: " +
                (present.empty() ? "nothing" : present) + "); set task." + role + " to its name");
  }
  h5::Dataset ds = file.open_dataset(name);
  const H5T_class_t c = ds.type().type_class();
  if (c != H5T_INTEGER && c != H5T_FLOAT) fail(f, "dataset \"" + name + "\" is not numeric: expected integers or floats");
  return ds;
}

void check_finite(const FileSpec& f, const std::vector<float>& v, const std::string& name, bool non_negative) {
  for (std::size_t k = 0; k < v.size(); ++k)
    if (!std::isfinite(v[k]) || (non_negative && v[k] < 0))
      fail(f, "dataset \"" + name + "\" holds " + std::to_string(v[k]) + " at flat index " + std::to_string(k) +
                  (non_negative ? ": expected finite weights >= 0" : ": expected finite values"));
}

std::shared_ptr<const FileData> load_file(const FileSpec& f) {
  auto d = std::make_shared<FileData>();
  std::error_code ec;
  const auto kind = std::filesystem::status(f.path, ec).type();
  if (kind == std::filesystem::file_type::not_found) fail(f, "no such file");
  if (kind == std::filesystem::file_type::directory) fail(f, "it is a directory: expected an HDF5 file");
  if (kind != std::filesystem::file_type::regular) fail(f, "it is not a regular file (a device or a FIFO?): expected an HDF5 file");
  h5::silence_errors();
  h5::File file;
  try {
    file = h5::File::open_read_only(f.path);
  } catch (const std::runtime_error& e) {
    fail(f, std::string("cannot open it as an HDF5 file (") + e.what() + ")");
  }
  h5::Dataset in = open_numeric(f, file, f.inputs, "inputs");
  const h5::Dims xd = in.dims();
  if (xd.size() != 3 || xd[0] == 0 || xd[1] == 0 || xd[2] == 0)
    fail(f, "dataset \"" + f.inputs + "\" has shape " + shape_text(xd) + ": expected [trial, T, I], none of them 0");
  // Everything is read into memory: a dataset larger than the memory there is (a sparse file
  // can claim terabytes) is refused before a byte is read.
  const h5::Dims yd_early = file.is_dataset(f.targets) ? file.open_dataset(f.targets).dims() : h5::Dims{};
  double bytes = 4.0 * xd[0] * xd[1] * xd[2];
  if (!yd_early.empty()) {
    double n = 1;
    for (hsize_t e : yd_early) n *= static_cast<double>(e);
    bytes += 4.0 * n;
  }
  if (xd[0] > static_cast<hsize_t>(std::numeric_limits<int>::max()) || xd[1] > 100000 || xd[2] > 100000)
    fail(f, "dataset \"" + f.inputs + "\" has shape " + shape_text(xd) +
                ": expected at most 2147483647 trials, 100000 steps and 100000 inputs");
  const MemoryBudget mem = available_memory("cpu");
  if (bytes > mem.bytes)
    fail(f, "the inputs and targets need " + format_bytes(bytes) + " in memory, more than the " + format_bytes(mem.bytes) +
                " of the " + mem.source + ": use fewer trials per file");
  d->n = static_cast<int>(xd[0]);
  d->T = static_cast<int>(xd[1]);
  d->I = static_cast<int>(xd[2]);
  const std::size_t nT = static_cast<std::size_t>(d->n) * d->T;
  d->x.resize(nT * d->I);
  in.read(H5T_NATIVE_FLOAT, d->x.data());
  check_finite(f, d->x, f.inputs, false);

  h5::Dataset tg = open_numeric(f, file, f.targets, "targets");
  const h5::Dims yd = tg.dims();
  d->classes = f.classes;
  if (f.classes) {
    if (yd.size() != 2 || yd[0] != xd[0] || yd[1] != xd[1])
      fail(f, "dataset \"" + f.targets + "\" has shape " + shape_text(yd) + " but the inputs are " + shape_text(xd) +
                  ": the class form (task.target = \"class\") expects class labels [" + std::to_string(xd[0]) + ", " +
                  std::to_string(xd[1]) + "]");
    if (tg.type().type_class() != H5T_INTEGER)
      fail(f, "dataset \"" + f.targets + "\" holds floats: the class form expects integer class labels (-1: not scored)");
    // Read in 64 bits, checked, then narrowed: a label of 2^40 must not wrap around.
    std::vector<long long> labels(nT);
    tg.read(H5T_NATIVE_LLONG, labels.data());
    d->target.resize(nT);
    int largest = -1;
    for (std::size_t k = 0; k < nT; ++k) {
      if (labels[k] < -1 || labels[k] >= kMaxClasses)
        fail(f, "dataset \"" + f.targets + "\" holds the class " + std::to_string(labels[k]) + " at flat index " +
                    std::to_string(k) + ": expected classes in [0, " + std::to_string(kMaxClasses - 1) +
                    "], or -1 for steps not scored");
      d->target[k] = static_cast<int>(labels[k]);
      largest = std::max(largest, d->target[k]);
    }
    d->O = f.n_outputs > 0 ? f.n_outputs : largest + 1;
    if (d->O < 2) fail(f, "dataset \"" + f.targets + "\" names fewer than 2 classes; set task.n_outputs");
    if (largest >= d->O)
      fail(f, "dataset \"" + f.targets + "\" holds the class " + std::to_string(largest) + " but task.n_outputs = " +
                  std::to_string(d->O) + ": expected classes below it");
  } else {
    if (yd.size() != 3 || yd[0] != xd[0] || yd[1] != xd[1] || yd[2] == 0)
      fail(f, "dataset \"" + f.targets + "\" has shape " + shape_text(yd) + " but the inputs are " + shape_text(xd) +
                  ": expected [" + std::to_string(xd[0]) + ", " + std::to_string(xd[1]) + ", O] (or task.target = "
                  "\"class\" for integer labels [trial, T])");
    d->O = static_cast<int>(yd[2]);
    d->y.resize(nT * d->O);
    tg.read(H5T_NATIVE_FLOAT, d->y.data());
    check_finite(f, d->y, f.targets, false);
  }

  std::vector<float> mask;  // [n, T] or [n, T, O]; empty: every step scored
  bool per_output = false;
  if (file.is_dataset(f.mask) || !f.mask_optional) {
    h5::Dataset mk = open_numeric(f, file, f.mask, "mask");
    const h5::Dims md = mk.dims();
    per_output = md.size() == 3;
    const bool ok = md.size() >= 2 && md[0] == xd[0] && md[1] == xd[1] &&
                    (md.size() == 2 || (md.size() == 3 && !f.classes && md[2] == static_cast<hsize_t>(d->O)));
    if (!ok)
      fail(f, "dataset \"" + f.mask + "\" has shape " + shape_text(md) + ": expected [" + std::to_string(xd[0]) + ", " +
                  std::to_string(xd[1]) + "]" +
                  (f.classes ? std::string() : " or [" + std::to_string(xd[0]) + ", " + std::to_string(xd[1]) + ", " +
                                                   std::to_string(d->O) + "]"));
    mask.resize(per_output ? nT * d->O : nT);
    mk.read(H5T_NATIVE_FLOAT, mask.data());
    check_finite(f, mask, f.mask, true);
  }
  if (f.classes) {
    for (std::size_t k = 0; k < mask.size(); ++k)
      if (mask[k] == 0) d->target[k] = -1;
  } else {
    d->mask.assign(nT * d->O, 1.f);
    for (std::size_t k = 0; k < d->mask.size() && !mask.empty(); ++k) d->mask[k] = per_output ? mask[k] : mask[k / d->O];
  }
  return d;
}

// Trials [0, n_train) train, then [n_train, n_train + n_val) validation, then the test trials.
// mse form: masked MSE on the file's targets, no accuracy. class form: cross-entropy on every
// scored step, accuracy = fraction of scored steps whose argmax over all outputs is the class.
class FileTask final : public Task {
 public:
  FileTask(std::shared_ptr<const FileData> d, int n_val, int n_test) : d_(std::move(d)), n_val_(n_val), n_test_(n_test) {
    n_fit_ = d_->n - n_val_ - n_test_;
    compute_baseline();
  }
  std::string name() const override { return "file"; }
  int n_inputs() const override { return d_->I; }
  int n_outputs() const override { return d_->O; }
  int n_steps() const override { return d_->T; }
  double baseline_loss() const override { return baseline_; }
  double chance_accuracy() const override { return chance_; }

  void generate(std::uint64_t data_seed, std::int64_t iteration, int B, Batch& out) const override {
    begin(out, B);
    for (int b = 0; b < B; ++b) {
      const std::uint64_t g = static_cast<std::uint64_t>(iteration) * B + b;
      fill(out, b, static_cast<int>(epoch_item(data_seed, g, static_cast<std::uint64_t>(n_fit_))));
    }
  }
  int n_heldout(Split s) const override { return s == Split::validation ? n_val_ : n_test_; }
  void generate_heldout(Split s, std::int64_t index, int B, Batch& out) const override {
    begin(out, B);
    const int first = s == Split::validation ? n_fit_ : n_fit_ + n_val_;
    for (int b = 0; b < B; ++b) {
      const std::int64_t k = index * B + b;
      if (k < n_heldout(s)) fill(out, b, first + static_cast<int>(k));  // past the end: unscored
    }
  }

 private:
  void begin(Batch& out, int B) const {
    out.resize(B, d_->T, d_->I, d_->O);
    if (d_->classes) {
      out.loss = LossKind::cross_entropy;
      out.acc_begin = 0;
      out.acc_end = d_->O;
    }
  }
  void fill(Batch& out, int b, int trial) const {
    const int T = d_->T, I = d_->I, O = d_->O, B = out.B;
    for (int t = 0; t < T; ++t) {
      const std::size_t src = static_cast<std::size_t>(trial) * T + t, dst = static_cast<std::size_t>(t) * B + b;
      std::copy_n(&d_->x[src * I], I, &out.x[dst * I]);
      if (d_->classes) {
        out.target[dst] = d_->target[src];
        out.acc_label[dst] = d_->target[src];
      } else {
        std::copy_n(&d_->y[src * O], O, &out.y[dst * O]);
        std::copy_n(&d_->mask[src * O], O, &out.mask[dst * O]);
      }
    }
  }
  // Best input-blind output per step, fitted to the training trials: the weighted mean target
  // (mse) or the class frequencies (class; chance = the commonest class's frequency).
  void compute_baseline() {
    const int T = d_->T, O = d_->O;
    baseline_ = chance_ = std::numeric_limits<double>::quiet_NaN();
    double loss = 0, weight = 0, best = 0;
    for (int t = 0; t < T; ++t) {
      for (int o = 0; o < (d_->classes ? 1 : O); ++o) {
        double sw = 0, swy = 0, swy2 = 0;
        std::vector<double> count(d_->classes ? O : 0, 0.0);
        for (int n = 0; n < n_fit_; ++n) {
          const std::size_t k = static_cast<std::size_t>(n) * T + t;
          if (d_->classes) {
            if (d_->target[k] >= 0) count[d_->target[k]] += 1, sw += 1;
          } else {
            const double w = d_->mask[k * O + o], y = d_->y[k * O + o];
            sw += w, swy += w * y, swy2 += w * y * y;
          }
        }
        if (sw == 0) continue;
        weight += sw;
        if (d_->classes) {
          for (double c : count)
            if (c > 0) loss -= c * std::log(c / sw);
          best += *std::max_element(count.begin(), count.end());
        } else {
          loss += swy2 - swy * swy / sw;
        }
      }
    }
    if (weight > 0) baseline_ = loss / weight;
    if (weight > 0 && d_->classes) chance_ = best / weight;
  }

  std::shared_ptr<const FileData> d_;
  int n_val_, n_test_, n_fit_ = 0;
  double baseline_ = 0, chance_ = 0;
};

}  // namespace

TaskInfo file_task_info() {
  TaskInfo info;
  info.name = "file";
  info.summary =
      "your own trials from an HDF5 file: inputs [trial, T, I], targets [trial, T, O] (mse) or integer classes "
      "[trial, T] (class, -1 = not scored), optional mask [trial, T] or [trial, T, O]; train/validation/test "
      "split, held-out metrics at checkpoints";
  info.params = {
      ParamSpec{"path", Value{std::string("")}, "the HDF5 file (required)", -INFINITY, INFINITY, {}},
      ParamSpec{"inputs", Value{std::string("inputs")}, "dataset of the inputs [trial, T, I]", -INFINITY, INFINITY, {}},
      ParamSpec{"targets", Value{std::string("targets")}, "dataset of the targets", -INFINITY, INFINITY, {}},
      ParamSpec{"mask", Value{std::string("mask")},
                "dataset of loss weights (>= 0); when the default name is absent every step is scored", -INFINITY,
                INFINITY, {}},
      ParamSpec{"target", Value{std::string("mse")},
                "\"mse\": float targets [trial, T, O], masked MSE; \"class\": integer classes [trial, T], "
                "cross-entropy and accuracy",
                -INFINITY, INFINITY, {"mse", "class"}},
      ParamSpec{"n_outputs", Value{std::int64_t{0}}, "class form: number of classes (0: largest label + 1)", 0, 65536, {}},
      ParamSpec{"validation_fraction", Value{0.0}, "fraction of the trials held out for validation (after training)",
                0, 1, {}},
      ParamSpec{"test_fraction", Value{0.2}, "fraction of the trials held out for testing (the last ones)", 0, 1, {}},
  };
  return info;
}

std::unique_ptr<Task> make_file_task(const TaskConfig& cfg) {
  static const TaskInfo info = file_task_info();
  const TaskParams p(cfg, info.params);
  FileSpec f;
  f.path = p.get_string("path");
  if (f.path.empty())
    throw ConfigError("task.path", "\"\"", "the path of an HDF5 file with datasets [trial, T, I] and targets",
                      "the file task reads its trials from there");
  f.inputs = p.get_string("inputs");
  f.targets = p.get_string("targets");
  f.mask = p.get_string("mask");
  f.mask_optional = f.mask == "mask";
  f.classes = p.get_string("target") == "class";
  f.n_outputs = static_cast<int>(p.get_int("n_outputs"));
  const std::string key = "file:" + f.inputs + "|" + f.targets + "|" + f.mask + "|" + (f.classes ? "class" : "mse") +
                          "|" + std::to_string(f.n_outputs) + "|" + file_state_key({f.path});
  std::shared_ptr<const FileData> d = cached_load<FileData>(key, [&] { return load_file(f); });
  const int n_val = static_cast<int>(std::lround(p.get_double("validation_fraction") * d->n));
  const int n_test = static_cast<int>(std::lround(p.get_double("test_fraction") * d->n));
  if (d->n - n_val - n_test < 1)
    throw ConfigError("task.test_fraction", format_value(Value{p.get_double("test_fraction")}),
                      "a split that leaves training trials (the file holds " + std::to_string(d->n) + ")",
                      "lower task.test_fraction or task.validation_fraction");
  return std::make_unique<FileTask>(d, n_val, n_test);
}

}  // namespace dalesim
