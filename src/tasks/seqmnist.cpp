// Sequential MNIST (Le et al. 2015): an image read row by row (28 steps x 28 inputs) or pixel by
// pixel (784 x 1), optionally in a fixed permuted pixel order, classified at the last step.
// Reads the standard IDX files, so MNIST, Fashion-MNIST and KMNIST all work.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "dalesim/rng.hpp"
#include "tasks/builtin.hpp"
#include "tasks/data_cache.hpp"
#include "tasks/dataset_order.hpp"
#include "tasks/idx.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

namespace {

constexpr int kClasses = 10;

struct MnistData {
  int rows = 0, cols = 0;
  int n_train = 0, n_test = 0;  // images in the train and t10k files
  std::vector<std::uint8_t> train_x, test_x;  // [n, rows * cols]
  std::vector<std::uint8_t> train_y, test_y;  // [n]
};

// `<dir>/<base>.gz`, else `<dir>/<base>`; an error naming both when neither exists.
std::string find_idx(const std::string& dir, const std::string& base) {
  namespace fs = std::filesystem;
  for (const std::string& name : {base + ".gz", base}) {
    std::error_code ec;
    if (fs::exists(fs::path(dir) / name, ec)) return (fs::path(dir) / name).string();
  }
  throw InputError("seqmnist: neither " + (fs::path(dir) / (base + ".gz")).string() + " nor " +
                   (fs::path(dir) / base).string() + " exists (task.dir = \"" + dir +
                   "\"; MNIST-style IDX files are expected there; Fashion-MNIST: apt-get install "
                   "dataset-fashion-mnist, files under /usr/share/datasets/fashion-mnist/)");
}

void read_pair(const std::string& images_path, const std::string& labels_path, MnistData& d,
               std::vector<std::uint8_t>& x, std::vector<std::uint8_t>& y, int& n) {
  IdxArray images = read_idx(images_path, 3);
  IdxArray labels = read_idx(labels_path, 1);
  if (images.dims[0] != labels.dims[0])
    throw InputError("seqmnist: " + images_path + " holds " + std::to_string(images.dims[0]) + " images but " +
                     labels_path + " holds " + std::to_string(labels.dims[0]) + " labels: expected one label per image");
  if (images.dims[0] == 0) throw InputError("seqmnist: " + images_path + " holds no images");
  if (d.rows == 0) {
    d.rows = static_cast<int>(images.dims[1]);
    d.cols = static_cast<int>(images.dims[2]);
    if (d.rows == 0 || d.cols == 0) throw InputError("seqmnist: " + images_path + " has images of size 0");
  } else if (d.rows != static_cast<int>(images.dims[1]) || d.cols != static_cast<int>(images.dims[2])) {
    throw InputError("seqmnist: " + images_path + " has images of " + std::to_string(images.dims[1]) + " x " +
                     std::to_string(images.dims[2]) + " pixels, the training images " + std::to_string(d.rows) +
                     " x " + std::to_string(d.cols) + ": expected the same size");
  }
  for (std::size_t k = 0; k < labels.data.size(); ++k)
    if (labels.data[k] >= kClasses)
      throw InputError("seqmnist: label " + std::to_string(labels.data[k]) + " of item " + std::to_string(k) + " in " +
                       labels_path + ": expected classes 0-9");
  n = static_cast<int>(images.dims[0]);
  x = std::move(images.data);
  y = std::move(labels.data);
}

std::shared_ptr<const MnistData> load_mnist(const std::string& dir) {
  const std::vector<std::string> paths = {find_idx(dir, "train-images-idx3-ubyte"),
                                          find_idx(dir, "train-labels-idx1-ubyte"),
                                          find_idx(dir, "t10k-images-idx3-ubyte"), find_idx(dir, "t10k-labels-idx1-ubyte")};
  return cached_load<MnistData>("mnist:" + file_state_key(paths), [&] {
    auto d = std::make_shared<MnistData>();
    try {
      read_pair(paths[0], paths[1], *d, d->train_x, d->train_y, d->n_train);
      read_pair(paths[2], paths[3], *d, d->test_x, d->test_y, d->n_test);
    } catch (const InputError& e) {
      // The file's own error says what is wrong with it; the key says which setting chose it.
      throw InputError("seqmnist (task.dir = \"" + dir + "\"): " + e.what() +
                       "; a damaged or partial copy? Fashion-MNIST: apt-get install --reinstall dataset-fashion-mnist");
    }
    return std::shared_ptr<const MnistData>(d);
  });
}

// Inputs: pixel intensities / 255 in [0, 1] (no normalisation), in scanline order or the fixed
// permutation; row-wise: step t reads sequence positions [t cols, (t + 1) cols). Outputs: 10
// classes, cross-entropy and accuracy at the last step only. Training images are the first
// n_train - validation of the train file, visited in epochs of keyed random order; the last
// `validation` images of the train file are the validation split, the t10k file the test split.
class SeqMnistTask final : public Task {
 public:
  SeqMnistTask(std::shared_ptr<const MnistData> data, bool pixel, std::vector<int> perm, int n_validation,
               int eval_cap)
      : d_(std::move(data)), pixel_(pixel), perm_(std::move(perm)), n_val_(n_validation), eval_cap_(eval_cap) {
    n_fit_ = d_->n_train - n_val_;
    std::vector<double> count(kClasses, 0.0);
    for (int k = 0; k < n_fit_; ++k) count[d_->train_y[k]] += 1;
    baseline_ = 0;
    chance_ = 0;
    for (double c : count) {
      const double p = c / n_fit_;
      if (p > 0) baseline_ -= p * std::log(p);
      chance_ = std::max(chance_, p);
    }
  }
  std::string name() const override { return "seqmnist"; }
  int n_inputs() const override { return pixel_ ? 1 : d_->cols; }
  int n_outputs() const override { return kClasses; }
  int n_steps() const override { return pixel_ ? d_->rows * d_->cols : d_->rows; }
  // The class prior: its entropy (nats) and the frequency of the commonest class.
  double baseline_loss() const override { return baseline_; }
  double chance_accuracy() const override { return chance_; }

  void generate(std::uint64_t data_seed, std::int64_t iteration, int B, Batch& out) const override {
    begin(out, B);
    for (int b = 0; b < B; ++b) {
      const std::uint64_t g = static_cast<std::uint64_t>(iteration) * B + b;
      const int item = static_cast<int>(epoch_item(data_seed, g, static_cast<std::uint64_t>(n_fit_)));
      fill(out, b, &d_->train_x[static_cast<std::size_t>(item) * pixels()], d_->train_y[item]);
    }
  }

  int n_heldout(Split s) const override {
    const int n = s == Split::validation ? n_val_ : d_->n_test;
    return eval_cap_ > 0 ? std::min(n, eval_cap_) : n;
  }

  void generate_heldout(Split s, std::int64_t index, int B, Batch& out) const override {
    begin(out, B);
    const int n = n_heldout(s);
    for (int b = 0; b < B; ++b) {
      const std::int64_t k = index * B + b;
      if (k >= n) continue;  // past the split's end: left unscored
      if (s == Split::validation) {
        const std::size_t item = static_cast<std::size_t>(n_fit_ + k);
        fill(out, b, &d_->train_x[item * pixels()], d_->train_y[item]);
      } else {
        fill(out, b, &d_->test_x[static_cast<std::size_t>(k) * pixels()], d_->test_y[k]);
      }
    }
  }

 private:
  int pixels() const { return d_->rows * d_->cols; }
  void begin(Batch& out, int B) const {
    out.resize(B, n_steps(), n_inputs(), kClasses);
    out.loss = LossKind::cross_entropy;
    out.acc_begin = 0;
    out.acc_end = kClasses;
  }
  void fill(Batch& out, int b, const std::uint8_t* image, int label) const {
    const int I = n_inputs(), P = pixels();
    for (int s = 0; s < P; ++s) {
      const int t = s / I, i = s % I;
      const int pixel = perm_.empty() ? s : perm_[s];
      out.x[(static_cast<std::size_t>(t) * out.B + b) * I + i] = image[pixel] / 255.f;
    }
    const std::size_t last = static_cast<std::size_t>(out.T - 1) * out.B + b;
    out.target[last] = label;
    out.acc_label[last] = label;
  }

  std::shared_ptr<const MnistData> d_;
  bool pixel_;
  std::vector<int> perm_;  // sequence position -> pixel index; empty: scanline order
  int n_val_, eval_cap_, n_fit_ = 0;
  double baseline_ = 0, chance_ = 0;
};

// The fixed pixel order of `seed`: Fisher-Yates driven by the counter-based RNG.
std::vector<int> pixel_permutation(int n, std::int64_t seed) {
  std::vector<int> perm(n);
  for (int k = 0; k < n; ++k) perm[k] = k;
  const CounterRng rng{mix_key(static_cast<std::uint64_t>(seed), 0x7065726d), 0};
  for (int k = n - 1; k > 0; --k) std::swap(perm[k], perm[rng.below(k, static_cast<std::uint32_t>(k + 1))]);
  return perm;
}

}  // namespace

TaskInfo seqmnist_task_info() {
  TaskInfo info;
  info.name = "seqmnist";
  info.summary =
      "sequential MNIST-style image classification from IDX files (MNIST, Fashion-MNIST, KMNIST): row-wise "
      "(28 steps x 28 inputs) or pixel-wise (784 x 1), optional fixed permutation; 10 outputs, cross-entropy "
      "and accuracy at the last step; validation and test accuracy at checkpoints";
  info.params = {
      ParamSpec{"dir", Value{std::string("/usr/share/datasets/fashion-mnist")},
                "directory of train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
                "t10k-labels-idx1-ubyte[.gz]",
                -INFINITY, INFINITY, {}},
      ParamSpec{"order", Value{std::string("row")}, "one image row per step (row) or one pixel per step (pixel)",
                -INFINITY, INFINITY, {"row", "pixel"}},
      ParamSpec{"permute", Value{false}, "read the pixels in a fixed random order (psMNIST)", -INFINITY, INFINITY, {}},
      ParamSpec{"permutation_seed", Value{std::int64_t{0}}, "seed of that order (recorded with the run)", 0, 1e18, {}},
      ParamSpec{"validation", Value{std::int64_t{5000}},
                "last images of the train file held out as the validation split (never trained on)", 0, 1e9, {}},
      ParamSpec{"eval_trials", Value{std::int64_t{0}},
                "at most this many trials of each held-out split evaluated at a checkpoint (0: all)", 0, 1e9, {}},
  };
  return info;
}

std::unique_ptr<Task> make_seqmnist_task(const TaskConfig& cfg) {
  static const TaskInfo info = seqmnist_task_info();
  const TaskParams p(cfg, info.params);
  std::shared_ptr<const MnistData> data = load_mnist(p.get_string("dir"));
  const std::int64_t n_val = p.get_int("validation");
  if (n_val >= data->n_train)
    throw ConfigError("task.validation", std::to_string(n_val),
                      "fewer than the " + std::to_string(data->n_train) + " images of the train file",
                      "the rest is the training set");
  std::vector<int> perm;
  if (p.get_bool("permute")) perm = pixel_permutation(data->rows * data->cols, p.get_int("permutation_seed"));
  return std::make_unique<SeqMnistTask>(data, p.get_string("order") == "pixel", std::move(perm),
                                        static_cast<int>(n_val), static_cast<int>(p.get_int("eval_trials")));
}

}  // namespace dalesim
