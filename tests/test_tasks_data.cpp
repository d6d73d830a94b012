// Data-backed tasks and memory: the IDX reader (plain, gzip, damaged files), seqmnist on generated
// and real data (splits, epochs, permutation, learning above chance with held-out accuracy in the
// output), the copy task, and the file task's round trip and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "cpu/replica_trainer.hpp"
#include "dalesim/history.hpp"
#include "dalesim/model.hpp"
#include "dalesim/sweep.hpp"
#include "io/h5.hpp"
#include "tasks/idx.hpp"
#include "test_tasks_util.hpp"
#include "train/driver.hpp"

namespace dalesim {
namespace {

using test::row;
using test::TempDir;

// The InputError message of `f`, or "(no error)".
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

IdxArray small_array() {
  IdxArray a;
  a.dims = {3, 4, 5};
  for (int k = 0; k < 60; ++k) a.data.push_back(static_cast<std::uint8_t>(k * 4));
  return a;
}

TEST(Idx, RoundTripPlainAndGzip) {
  TempDir dir("idx");
  const IdxArray a = small_array();
  write_idx(dir / "a", a, false);
  write_idx(dir / "a.gz", a, true);
  EXPECT_EQ(read_bytes(dir / "a").size(), 16u + 60);
  EXPECT_EQ(static_cast<unsigned char>(read_bytes(dir / "a.gz")[0]), 0x1f);  // really gzipped
  for (const std::string name : {"a", "a.gz"}) {
    const IdxArray b = read_idx(dir / name, 3);
    EXPECT_EQ(b.dims, a.dims);
    EXPECT_EQ(b.data, a.data);
  }
}

TEST(Idx, DamagedFilesAreClearErrorsNamingTheFile) {
  TempDir dir("idx_bad");
  const IdxArray a = small_array();
  write_idx(dir / "good", a, false);
  write_idx(dir / "good.gz", a, true);
  const std::string plain = read_bytes(dir / "good"), gz = read_bytes(dir / "good.gz");

  std::string e = error_of([&] { read_idx(dir / "missing.gz"); });
  EXPECT_HAS(e, dir / "missing.gz");
  EXPECT_HAS(e, "does not exist");

  write_bytes(dir / "magic", "\x01\x02" + plain.substr(2));
  e = error_of([&] { read_idx(dir / "magic"); });
  EXPECT_HAS(e, dir / "magic");
  EXPECT_HAS(e, "wrong magic 01 02 08 03");
  EXPECT_HAS(e, "expected 00 00 08 <rank>");

  std::string as_float = plain;
  as_float[2] = 0x0D;
  write_bytes(dir / "float", as_float);
  EXPECT_HAS(error_of([&] { read_idx(dir / "float"); }), "type 0x0d (float32): expected 0x08 (unsigned byte)");

  e = error_of([&] { read_idx(dir / "good", 1); });
  EXPECT_HAS(e, "rank 3: expected 1 (labels)");

  write_bytes(dir / "short", plain.substr(0, plain.size() - 7));
  e = error_of([&] { read_idx(dir / "short"); });
  EXPECT_HAS(e, dir / "short");
  EXPECT_HAS(e, "truncated: its header declares 3 x 4 x 5 = 60 bytes of data, the file holds 53");

  write_bytes(dir / "short.gz", gz.substr(0, gz.size() / 2));
  e = error_of([&] { read_idx(dir / "short.gz"); });
  EXPECT_HAS(e, dir / "short.gz");
  EXPECT_TRUE(e.find("truncated") != std::string::npos || e.find("corrupt gzip") != std::string::npos) << e;

  std::string flipped = gz;
  for (std::size_t k = 12; k < flipped.size() - 8; ++k) flipped[k] = static_cast<char>(flipped[k] ^ 0x5a);
  write_bytes(dir / "corrupt.gz", flipped);
  e = error_of([&] { read_idx(dir / "corrupt.gz"); });
  EXPECT_HAS(e, dir / "corrupt.gz");
  EXPECT_NE(e, "(no error)");

  write_bytes(dir / "long", plain + "xyz");
  EXPECT_HAS(error_of([&] { read_idx(dir / "long"); }), "bytes beyond the 3 x 4 x 5");

  write_bytes(dir / "empty", "");
  EXPECT_HAS(error_of([&] { read_idx(dir / "empty"); }), "shorter than the 4-byte magic");

  std::string huge = plain.substr(0, 16);
  huge[4] = huge[8] = huge[12] = '\x7f';
  write_bytes(dir / "huge", huge);
  EXPECT_HAS(error_of([&] { read_idx(dir / "huge"); }), "a corrupt header?");
}

TaskConfig seqmnist(const std::string& dir, std::map<std::string, Value> params = {}) {
  TaskConfig c;
  c.name = "seqmnist";
  c.params = std::move(params);
  c.params["dir"] = Value{dir};
  return c;
}

TEST(SeqMnist, RowAndPixelOrderShapesTargetsAndValues) {
  TempDir dir("mnist");
  test::write_toy_mnist(dir.str(), 50, 20, 8, 10);
  const IdxArray images = read_idx(dir / "t10k-images-idx3-ubyte", 3);
  const IdxArray labels = read_idx(dir / "t10k-labels-idx1-ubyte", 1);
  for (const std::string order : {"row", "pixel"}) {
    SCOPED_TRACE(order);
    const auto task = make_task(seqmnist(dir.str(), {{"order", Value{order}}, {"validation", Value{std::int64_t{10}}}}), 20);
    const bool pixel = order == "pixel";
    EXPECT_EQ(task->n_steps(), pixel ? 80 : 8);
    EXPECT_EQ(task->n_inputs(), pixel ? 1 : 10);
    EXPECT_EQ(task->n_outputs(), 10);
    EXPECT_EQ(task->n_heldout(Split::test), 20);
    EXPECT_EQ(task->n_heldout(Split::validation), 10);
    Batch b;
    task->generate_heldout(Split::test, 1, 8, b);  // test images 8..15
    EXPECT_EQ(b.loss, LossKind::cross_entropy);
    for (int n = 0; n < 8; ++n) {
      const std::uint8_t* img = &images.data[static_cast<std::size_t>(8 + n) * 80];
      for (int p = 0; p < 80; ++p) {
        const int t = pixel ? p : p / 10, i = pixel ? 0 : p % 10;
        ASSERT_EQ(b.x[row(b, t, n) * b.I + i], img[p] / 255.f);
      }
      for (int t = 0; t < b.T; ++t) {
        const int want = t == b.T - 1 ? labels.data[8 + n] : -1;
        EXPECT_EQ(b.target[row(b, t, n)], want);  // classified at the last step only
        EXPECT_EQ(b.acc_label[row(b, t, n)], want);
      }
    }
    EXPECT_EQ(b.n_accuracy_points(), 8);
    EXPECT_EQ(b.loss_weight(), 8);
    task->generate_heldout(Split::test, 2, 8, b);  // images 16..19, then 4 unscored trials
    EXPECT_EQ(b.loss_weight(), 4);
    EXPECT_EQ(b.n_accuracy_points(), 4);
    for (int t = 0; t < b.T; ++t)
      for (int i = 0; i < b.I; ++i) EXPECT_EQ(b.x[row(b, t, 6) * b.I + i], 0.f);
  }
}

TEST(SeqMnist, TrainingVisitsEachTrainingImageOncePerEpochAndNeverTheHeldOutOnes) {
  TempDir dir("mnist_epochs");
  test::write_toy_mnist(dir.str(), 60, 10, 8, 10);
  const auto task = make_task(seqmnist(dir.str(), {{"validation", Value{std::int64_t{12}}}}), 20);
  // Images differ in their last pixel (its index): read the item of each trial back from it.
  auto item_of = [&](const Batch& b, int n) { return static_cast<int>(std::lround(b.x[row(b, 7, n) * 10 + 9] * 255)); };
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::multiset<int> seen;
    for (int it = epoch * 6; it < epoch * 6 + 6; ++it) {  // 48 training images, batches of 8
      Batch b;
      task->generate(77, it, 8, b);
      for (int n = 0; n < 8; ++n) {
        const int k = item_of(b, n);
        ASSERT_LT(k, 48) << "a validation image in a training batch";
        EXPECT_EQ(b.target[row(b, 7, n)], (k * 7) % 10);  // the label of image k
        seen.insert(k);
      }
    }
    EXPECT_EQ(seen.size(), 48u);
    EXPECT_EQ(std::set<int>(seen.begin(), seen.end()).size(), 48u) << "epoch " << epoch;
  }
  Batch a, b, c;
  task->generate(77, 0, 8, a);
  task->generate(77, 0, 8, b);
  task->generate(78, 0, 8, c);
  EXPECT_EQ(a.x, b.x);
  EXPECT_NE(a.x, c.x);  // another data seed, another order
  Batch v;
  task->generate_heldout(Split::validation, 0, 12, v);
  for (int n = 0; n < 12; ++n) EXPECT_EQ(item_of(v, n), 48 + n);
}

TEST(SeqMnist, PermutationIsFixedByItsSeed) {
  TempDir dir("mnist_perm");
  test::write_toy_mnist(dir.str(), 20, 10, 8, 10);
  auto pixels = [&](std::int64_t seed, bool permute) {
    const auto task = make_task(seqmnist(dir.str(), {{"order", Value{std::string("pixel")}},
                                                     {"permute", Value{permute}},
                                                     {"permutation_seed", Value{seed}},
                                                     {"validation", Value{std::int64_t{0}}}}),
                                20);
    Batch b;
    task->generate_heldout(Split::test, 0, 1, b);
    return b.x;
  };
  const std::vector<float> plain = pixels(0, false), p1 = pixels(1, true), p1b = pixels(1, true), p2 = pixels(2, true);
  EXPECT_EQ(p1, p1b);
  EXPECT_NE(p1, p2);
  EXPECT_NE(p1, plain);
  std::vector<float> a = plain, b = p1;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b) << "a permutation of the same pixels";
}

TEST(SeqMnist, MissingOrInconsistentFilesAreClearErrors) {
  TempDir dir("mnist_bad");
  std::string e = error_of([&] { make_task(seqmnist(dir.str()), 20); });
  EXPECT_HAS(e, dir / "train-images-idx3-ubyte.gz");
  EXPECT_HAS(e, "dataset-fashion-mnist");

  test::write_toy_mnist(dir.str(), 20, 10, 8, 10);
  IdxArray labels;
  labels.dims = {19};
  labels.data.assign(19, 1);
  write_idx(dir / "train-labels-idx1-ubyte.gz", labels, true);
  EXPECT_HAS(error_of([&] { make_task(seqmnist(dir.str()), 20); }), "holds 20 images but");

  labels.dims = {20};
  labels.data.assign(20, 1);
  labels.data[5] = 12;
  write_idx(dir / "train-labels-idx1-ubyte.gz", labels, true);
  EXPECT_HAS(error_of([&] { make_task(seqmnist(dir.str()), 20); }), "label 12 of item 5");

  labels.data[5] = 3;
  write_idx(dir / "train-labels-idx1-ubyte.gz", labels, true);
  try {
    make_task(seqmnist(dir.str(), {{"validation", Value{std::int64_t{20}}}}), 20);
    FAIL() << "a validation split of the whole train file was accepted";
  } catch (const ConfigError& err) {
    EXPECT_EQ(err.key(), "task.validation");
  }
}

TEST(SeqMnist, SmallRunLearnsAboveChanceAndRecordsHeldOutAccuracy) {
  TempDir dir("mnist_run");
  test::write_toy_mnist(dir.str(), 700, 200, 8, 10);
  Sweep sweep = parse_sweep("name = \"toy\"\n[model]\narch = \"free\"\nn_units = 32\ndt = 20.0\ntau_e = 20.0\n"
                            "tau_i = 20.0\n[task]\nname = \"seqmnist\"\nbatch = 32\nvalidation = 100\ndir = \"" +
                                dir.str() +
                                "\"\n[train]\nlr = 0.01\nn_steps = 120\nlog_every = 20\ncheckpoint_every = 60\n"
                                "[sweep]\nseeds = 2\n",
                            "toy.toml");
  // The second replica trains on the adding problem instead: a task without held-out data.
  ReplicaConfig& other = sweep.replicas[1];
  other.task = TaskConfig{};
  other.task.name = "adding";
  other.task.batch = 32;
  other.task.params["T"] = Value{std::int64_t{8}};
  RunOptions options;
  options.output = dir / "out.h5";
  options.n_threads = 2;
  std::ostringstream log;
  run_sweep(sweep, options, log);
  EXPECT_HAS(log.str(), "test set at the end: mean loss");

  const RunFile f = read_run_file(options.output);
  const std::vector<double>* test_acc = f.checkpoint_metric("test_accuracy");
  const std::vector<double>* test_loss = f.checkpoint_metric("test_loss");
  const std::vector<double>* val_acc = f.checkpoint_metric("validation_accuracy");
  ASSERT_TRUE(test_acc && test_loss && val_acc);
  ASSERT_EQ(f.checkpoint_step, (std::vector<std::int64_t>{0, 60, 120}));
  const std::size_t last = 2 * 2;  // [C, R], C = 3, R = 2
  EXPECT_GT((*test_acc)[last], 0.5) << "chance is 0.1";
  EXPECT_GT((*val_acc)[last], 0.5);
  EXPECT_LT((*test_loss)[last], (*test_loss)[0]);
  EXPECT_NEAR((*test_loss)[0], std::log(10.0), 0.5);  // an untrained network is near the prior
  for (int c = 0; c < 3; ++c) {
    EXPECT_TRUE(std::isnan((*test_acc)[2 * c + 1])) << "the adding replica has no test set";
    EXPECT_TRUE(std::isnan((*test_loss)[2 * c + 1]));
  }
  EXPECT_NEAR((*f.numeric_column("baseline_loss"))[0], std::log(10.0), 1e-9);  // balanced classes
  EXPECT_NEAR((*f.numeric_column("chance_accuracy"))[0], 0.1, 1e-9);
  EXPECT_NEAR((*f.numeric_column("baseline_loss"))[1], 1.0 / 6.0, 1e-12);

  // At step 0 the driver's batch-weighted test metrics (7 batches of 32, the last with 8 trials)
  // are those of the initial network on the whole split at once.
  const auto task = make_task(sweep.replicas[0].task, sweep.replicas[0].model.dt);
  const ReplicaModel model = init_replica(sweep.replicas[0], task->n_inputs(), task->n_outputs());
  Batch whole;
  task->generate_heldout(Split::test, 0, 200, whole);
  cpu::ReplicaTrainer<float> trainer(model);
  const StepMetrics m0 = trainer.evaluate(whole, -1);
  EXPECT_NEAR((*test_loss)[0], m0.loss, 1e-5 * m0.loss);
  EXPECT_NEAR((*test_acc)[0], m0.accuracy, 1.0 / 200);
}

TEST(SeqMnist, RealFashionMnistWhenInstalled) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::ifstream(dir + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST is not installed (Debian package dataset-fashion-mnist, files under " << dir << ")";
  TaskConfig c;
  c.name = "seqmnist";  // the default dir
  const auto task = make_task(c, 20);
  EXPECT_EQ(task->n_steps(), 28);
  EXPECT_EQ(task->n_inputs(), 28);
  EXPECT_EQ(task->n_heldout(Split::test), 10000);
  EXPECT_EQ(task->n_heldout(Split::validation), 5000);
  EXPECT_NEAR(task->baseline_loss(), std::log(10.0), 1e-3);
  EXPECT_NEAR(task->chance_accuracy(), 5550.0 / 55000, 1e-9);  // the commonest class of the first 55000
  Batch b;
  task->generate_heldout(Split::test, 0, 5, b);
  const int labels[5] = {9, 2, 1, 1, 6};
  const int row10[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 53, 129, 120, 147, 175, 157, 166, 135, 154, 168, 140, 0, 0};
  for (int n = 0; n < 5; ++n) EXPECT_EQ(b.target[row(b, 27, n)], labels[n]);
  for (int i = 0; i < 28; ++i) EXPECT_EQ(b.x[row(b, 10, 0) * 28 + i], row10[i] / 255.f);
}

TEST(Copy, LayoutTargetsOracleAndBaseline) {
  TaskConfig c;
  c.name = "copy";
  c.params["T"] = Value{std::int64_t{5}};
  const auto task = make_task(c, 20);
  EXPECT_EQ(task->n_steps(), 25);
  EXPECT_EQ(task->n_inputs(), 10);
  EXPECT_EQ(task->n_outputs(), 10);
  EXPECT_DOUBLE_EQ(task->baseline_loss(), 10 * std::log(8.0) / 25);
  EXPECT_DOUBLE_EQ(task->chance_accuracy(), 0.125);
  Batch b;
  task->generate(3, 1, 30, b);
  EXPECT_EQ(b.loss, LossKind::cross_entropy);
  std::vector<int> oracle(25 * 30, 0);
  for (int n = 0; n < 30; ++n) {
    int symbol[25];
    for (int t = 0; t < 25; ++t) {
      int ones = 0;
      for (int i = 0; i < 10; ++i) {
        const float v = b.x[row(b, t, n) * 10 + i];
        ASSERT_TRUE(v == 0.f || v == 1.f);
        if (v == 1.f) ++ones, symbol[t] = i;
      }
      ASSERT_EQ(ones, 1) << "one-hot inputs";
    }
    for (int t = 0; t < 25; ++t) {
      if (t < 10) EXPECT_TRUE(symbol[t] >= 1 && symbol[t] <= 8);
      else EXPECT_EQ(symbol[t], t == 14 ? 9 : 0) << "blanks, the delimiter at T + 9, blanks";
      // Memoryless baseline: blank for the first T + 10 steps, then the data in order.
      EXPECT_EQ(b.target[row(b, t, n)], t < 15 ? 0 : symbol[t - 15]);
      EXPECT_EQ(b.acc_label[row(b, t, n)], t < 15 ? -1 : symbol[t - 15]);
      if (t >= 15) oracle[row(b, t, n)] = symbol[t - 15];
    }
  }
  const test::OracleScore s = test::score_classes(b, oracle);
  EXPECT_LT(s.loss, 1e-9);
  EXPECT_EQ(s.accuracy, 1.0);
  EXPECT_EQ(b.n_accuracy_points(), 300);
  EXPECT_EQ(b.loss_weight(), 25 * 30);  // every step is scored
}

// ---- the file task -----------------------------------------------------------------------------

void write_dataset(h5::File& f, const std::string& name, hid_t type, hid_t mem, const h5::Dims& dims, const void* data) {
  h5::Dataset ds = f.create_dataset(name, type, h5::Dataspace::simple(dims));
  ds.write(mem, data);
}

// 10 trials of T = 6, I = 3, O = 2; trial k holds k + t / 10 + i / 100 in its inputs and has
// 3 + k % 4 scored steps.
void write_user_file(const std::string& path, bool with_mask = true, bool double_inputs = false) {
  h5::silence_errors();
  h5::File f = h5::File::create(path, true);
  std::vector<double> x(10 * 6 * 3), y(10 * 6 * 2);
  std::vector<std::uint8_t> mask(10 * 6);
  for (int k = 0; k < 10; ++k)
    for (int t = 0; t < 6; ++t) {
      for (int i = 0; i < 3; ++i) x[(k * 6 + t) * 3 + i] = k + t / 10.0 + i / 100.0;
      for (int o = 0; o < 2; ++o) y[(k * 6 + t) * 2 + o] = (o ? -1 : 1) * (k + t) * 0.5;
      mask[k * 6 + t] = t < 3 + k % 4;
    }
  std::vector<float> xf(x.begin(), x.end());
  if (double_inputs)
    write_dataset(f, "stim", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {10, 6, 3}, x.data());
  else
    write_dataset(f, "stim", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {10, 6, 3}, xf.data());
  write_dataset(f, "out", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {10, 6, 2}, y.data());
  if (with_mask) write_dataset(f, "mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, {10, 6}, mask.data());
  f.close();
}

TaskConfig file_cfg(const std::string& path, std::map<std::string, Value> params = {}) {
  TaskConfig c;
  c.name = "file";
  c.params = std::move(params);
  c.params["path"] = Value{path};
  if (!c.params.count("inputs")) c.params["inputs"] = Value{std::string("stim")};
  if (!c.params.count("targets")) c.params["targets"] = Value{std::string("out")};
  return c;
}

TEST(FileTask, RoundTripWithMaskAndSplits) {
  TempDir dir("file_task");
  for (const bool as_double : {false, true}) {
    write_user_file(dir / "trials.h5", true, as_double);
    const auto task = make_task(
        file_cfg(dir / "trials.h5", {{"test_fraction", Value{0.2}}, {"validation_fraction", Value{0.1}}}), 20);
    EXPECT_EQ(task->n_steps(), 6);
    EXPECT_EQ(task->n_inputs(), 3);
    EXPECT_EQ(task->n_outputs(), 2);
    EXPECT_EQ(task->n_heldout(Split::test), 2);
    EXPECT_EQ(task->n_heldout(Split::validation), 1);
    EXPECT_TRUE(std::isnan(task->chance_accuracy()));
    // One epoch of 7 training trials in one batch: each exactly once, copied exactly.
    Batch b;
    task->generate(4, 0, 7, b);
    std::set<int> seen;
    for (int n = 0; n < 7; ++n) {
      const int k = static_cast<int>(std::lround(b.x[row(b, 0, n) * 3]));
      ASSERT_LT(k, 7) << "a held-out trial in a training batch";
      seen.insert(k);
      for (int t = 0; t < 6; ++t) {
        for (int i = 0; i < 3; ++i) EXPECT_EQ(b.x[row(b, t, n) * 3 + i], static_cast<float>(k + t / 10.0 + i / 100.0));
        for (int o = 0; o < 2; ++o) {
          EXPECT_EQ(b.y[row(b, t, n) * 2 + o], static_cast<float>((o ? -1 : 1) * (k + t) * 0.5));
          EXPECT_EQ(b.mask[row(b, t, n) * 2 + o], t < 3 + k % 4 ? 1.f : 0.f) << "variable lengths by the mask";
        }
      }
    }
    EXPECT_EQ(seen.size(), 7u);
    task->generate_heldout(Split::test, 0, 4, b);
    EXPECT_EQ(std::lround(b.x[row(b, 0, 0) * 3]), 8);
    EXPECT_EQ(std::lround(b.x[row(b, 0, 1) * 3]), 9);
    EXPECT_EQ(b.loss_weight(), 2 * ((3 + 8 % 4) + (3 + 9 % 4)));  // trials 2, 3 of the batch unscored
    task->generate_heldout(Split::validation, 0, 4, b);
    EXPECT_EQ(std::lround(b.x[row(b, 0, 0) * 3]), 7);
    // Baseline: masked variance of the targets around their per-step mean over the training trials.
    double loss = 0, weight = 0;
    for (int t = 0; t < 6; ++t)
      for (int o = 0; o < 2; ++o) {
        std::vector<double> ys;
        for (int k = 0; k < 7; ++k)
          if (t < 3 + k % 4) ys.push_back((o ? -1 : 1) * (k + t) * 0.5);
        double mean = 0;
        for (double v : ys) mean += v / ys.size();
        for (double v : ys) loss += (v - mean) * (v - mean);
        weight += ys.size();
      }
    EXPECT_NEAR(task->baseline_loss(), loss / weight, 1e-9);
  }
  // Without a mask dataset every step is scored.
  write_user_file(dir / "nomask.h5", false);
  Batch b;
  make_task(file_cfg(dir / "nomask.h5"), 20)->generate(1, 0, 3, b);
  EXPECT_EQ(b.loss_weight(), 3 * 6 * 2);
}

TEST(FileTask, ClassFormRoundTrip) {
  TempDir dir("file_class");
  {
    h5::silence_errors();
    h5::File f = h5::File::create(dir / "cls.h5", true);
    std::vector<float> x(5 * 4 * 2, 0.5f);
    std::vector<std::int32_t> c(5 * 4);
    for (int k = 0; k < 5; ++k)
      for (int t = 0; t < 4; ++t) c[k * 4 + t] = t < 2 ? -1 : (k + t) % 3;
    write_dataset(f, "inputs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {5, 4, 2}, x.data());
    write_dataset(f, "targets", H5T_STD_I32LE, H5T_NATIVE_INT32, {5, 4}, c.data());
    f.close();
  }
  TaskConfig c;
  c.name = "file";
  c.params = {{"path", Value{dir / "cls.h5"}}, {"target", Value{std::string("class")}}, {"test_fraction", Value{0.0}}};
  const auto task = make_task(c, 20);
  EXPECT_EQ(task->n_outputs(), 3);  // largest class + 1
  EXPECT_EQ(task->n_heldout(Split::test), 0);
  Batch b;
  task->generate(2, 0, 5, b);
  EXPECT_EQ(b.loss, LossKind::cross_entropy);
  EXPECT_EQ(b.loss_weight(), 10);
  EXPECT_EQ(b.n_accuracy_points(), 10);
  EXPECT_EQ(b.acc_begin, 0);
  EXPECT_EQ(b.acc_end, 3);
  for (int n = 0; n < 5; ++n)
    for (int t = 0; t < 4; ++t) EXPECT_EQ(b.target[row(b, t, n)] < 0, t < 2);
  // Class frequencies per step over the 5 trials: t = 2 -> {2, 0, 1, 2, 0}, t = 3 -> {0, 1, 2, 0, 1}.
  const double h = -(2 * std::log(0.4) + 2 * std::log(0.4) + std::log(0.2));
  EXPECT_NEAR(task->baseline_loss(), 2 * h / 10, 1e-9);
  EXPECT_NEAR(task->chance_accuracy(), 0.4, 1e-12);
}

// Inputs a careless or hostile user can write: huge or 64-bit class labels, a group where a
// dataset should be, a directory or a device as the path, datasets larger than memory.
TEST(FileTask, HostileFilesAreClearErrors) {
  TempDir dir("file_hostile");
  auto err = [&](const TaskConfig& c) { return error_of([&] { make_task(c, 20); }); };
  {
    h5::silence_errors();
    h5::File f = h5::File::create(dir / "labels.h5", true);
    write_dataset(f, "stim", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2, 3, 1}, std::vector<float>(6, 1.f).data());
    std::vector<long long> big(6, 0), wide(6, 1);
    big[4] = 1000000000;   // used to make the task allocate 10^9 outputs (std::bad_alloc)
    wide[2] = 1LL << 40;   // used to wrap around to 0 in 32 bits ("fewer than 2 classes")
    write_dataset(f, "big", H5T_STD_I64LE, H5T_NATIVE_LLONG, {2, 3}, big.data());
    write_dataset(f, "wide", H5T_STD_I64LE, H5T_NATIVE_LLONG, {2, 3}, wide.data());
    f.create_group("grp");
    f.close();
  }
  const Value cls{std::string("class")};
  EXPECT_HAS(err(file_cfg(dir / "labels.h5", {{"target", cls}, {"targets", Value{std::string("big")}}})),
             "holds the class 1000000000 at flat index 4: expected classes in [0, 65535]");
  EXPECT_HAS(err(file_cfg(dir / "labels.h5", {{"target", cls}, {"targets", Value{std::string("wide")}}})),
             "holds the class 1099511627776 at flat index 2");
  EXPECT_HAS(err(file_cfg(dir / "labels.h5", {{"inputs", Value{std::string("grp")}}})),
             "\"grp\" is a group, not a dataset, so it cannot hold the inputs");
  EXPECT_HAS(err(file_cfg(dir.str())), "it is a directory: expected an HDF5 file");
  EXPECT_HAS(err(file_cfg("/dev/zero")), "it is not a regular file");
  // A dataset claiming more than the memory there is: refused before it is read.
  {
    h5::File f = h5::File::create(dir / "huge.h5", true);
    write_dataset(f, "out", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2, 3, 1}, std::vector<float>(6, 0.f).data());
    // Chunked and never written: the file stays small however large the dataset claims to be.
    h5::PropList dcpl = h5::PropList::dataset_create();
    dcpl.set_chunk({1, 10, 100});
    f.create_dataset("stim", H5T_IEEE_F32LE, h5::Dataspace::simple({2000000, 1000, 100}), dcpl);
    f.close();
  }
  EXPECT_HAS(err(file_cfg(dir / "huge.h5")), "in memory, more than the");
}

TEST(FileTask, ShapeTypeAndValueErrorsAreClear) {
  TempDir dir("file_bad");
  write_user_file(dir / "ok.h5");
  auto err = [&](const TaskConfig& c) { return error_of([&] { make_task(c, 20); }); };

  TaskConfig no_path;
  no_path.name = "file";
  try {
    make_task(no_path, 20);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "task.path");
  }
  EXPECT_HAS(err(file_cfg(dir / "nope.h5")), "no such file");
  write_bytes(dir / "text.h5", "not hdf5\n");
  EXPECT_HAS(err(file_cfg(dir / "text.h5")), "cannot open it as an HDF5 file");
  std::string e = err(file_cfg(dir / "ok.h5", {{"inputs", Value{std::string("inputz")}}}));
  EXPECT_HAS(e, dir / "ok.h5");
  EXPECT_HAS(e, "no dataset \"inputz\" for the inputs (the root holds: mask, out, stim)");
  EXPECT_HAS(err(file_cfg(dir / "ok.h5", {{"inputs", Value{std::string("mask")}}})),
             "dataset \"mask\" has shape [10, 6]: expected [trial, T, I]");
  EXPECT_HAS(err(file_cfg(dir / "ok.h5", {{"targets", Value{std::string("stim")}}, {"mask", Value{std::string("out")}}})),
             "dataset \"out\" has shape [10, 6, 2]: expected [10, 6] or [10, 6, 3]");
  EXPECT_HAS(err(file_cfg(dir / "ok.h5", {{"targets", Value{std::string("mask")}}})),
             "dataset \"mask\" has shape [10, 6] but the inputs are [10, 6, 3]: expected [10, 6, O]");
  EXPECT_HAS(err(file_cfg(dir / "ok.h5", {{"target", Value{std::string("class")}}})),
             "the class form (task.target = \"class\") expects class labels [10, 6]");
  // Integer data of the right shape is accepted as classes, whatever its storage type (uint8 here).
  EXPECT_EQ(err(file_cfg(dir / "ok.h5", {{"target", Value{std::string("class")}}, {"targets", Value{std::string("mask")}}})),
            "(no error)");
  EXPECT_HAS(err(file_cfg(dir / "ok.h5", {{"mask", Value{std::string("weights")}}})), "no dataset \"weights\" for the mask");
  {
    h5::File f = h5::File::create(dir / "bad.h5", true);
    std::vector<float> x(4 * 3 * 1, 1.f), y(4 * 3 * 1, 0.f);
    x[5] = std::nanf("");
    write_dataset(f, "stim", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {4, 3, 1}, x.data());
    write_dataset(f, "out", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {4, 3, 1}, y.data());
    f.close();
  }
  EXPECT_HAS(err(file_cfg(dir / "bad.h5")), "dataset \"stim\" holds nan at flat index 5: expected finite values");
  {
    h5::File f = h5::File::create(dir / "bad2.h5", true);
    write_dataset(f, "stim", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {4, 3, 1}, std::vector<float>(12, 1.f).data());
    write_dataset(f, "out", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {4, 3, 1}, std::vector<float>(12, 0.f).data());
    write_dataset(f, "neg", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {4, 3}, std::vector<float>(12, -1.f).data());
    write_dataset(f, "fclass", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {4, 3}, std::vector<float>(12, 1.f).data());
    write_dataset(f, "lowclass", H5T_STD_I32LE, H5T_NATIVE_INT32, {4, 3}, std::vector<std::int32_t>(12, -2).data());
    f.close();
  }
  EXPECT_HAS(err(file_cfg(dir / "bad2.h5", {{"mask", Value{std::string("neg")}}})), "expected finite weights >= 0");
  EXPECT_HAS(err(file_cfg(dir / "bad2.h5", {{"target", Value{std::string("class")}}, {"targets", Value{std::string("fclass")}}})),
             "holds floats: the class form expects integer class labels");
  EXPECT_HAS(err(file_cfg(dir / "bad2.h5", {{"target", Value{std::string("class")}}, {"targets", Value{std::string("lowclass")}}})),
             "holds the class -2");
  try {
    make_task(file_cfg(dir / "bad2.h5", {{"test_fraction", Value{0.9}}, {"validation_fraction", Value{0.2}}}), 20);
    FAIL() << "a split without training trials was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "task.test_fraction");
  }
}

// Every registered task: its parameters are documented with defaults inside their own ranges,
// and its batches depend on the key only (same key, same batch; another data seed or iteration,
// another batch), with the declared shapes.
TEST(TaskRegistry, EveryTaskDocumentedShapedAndDeterministic) {
  TempDir dir("registry");
  test::write_toy_mnist(dir.str(), 40, 10, 8, 10);
  write_user_file(dir / "trials.h5");
  std::set<std::string> names;
  for (const TaskInfo& info : task_registry()) {
    SCOPED_TRACE(info.name);
    names.insert(info.name);
    EXPECT_FALSE(info.summary.empty());
    for (const ParamSpec& p : info.params) {
      EXPECT_FALSE(p.doc.empty()) << p.key;
      const Value& d = p.default_value;
      const double x = d.index() == 1 ? double(std::get<std::int64_t>(d)) : d.index() == 2 ? std::get<double>(d) : 0;
      if (d.index() == 1 || d.index() == 2) EXPECT_TRUE(x >= p.min && x <= p.max) << p.key;
      if (d.index() == 3 && !p.choices.empty())
        EXPECT_EQ(std::count(p.choices.begin(), p.choices.end(), std::get<std::string>(d)), 1) << p.key;
    }
    TaskConfig c;
    c.name = info.name;
    if (info.name == "seqmnist") c = seqmnist(dir.str(), {{"validation", Value{std::int64_t{8}}}});
    if (info.name == "file") c = file_cfg(dir / "trials.h5");
    const auto task = make_task(c, 20.0);
    Batch a, b, other_seed, other_it;
    task->generate(5, 2, 16, a);
    task->generate(5, 2, 16, b);
    task->generate(6, 2, 16, other_seed);
    task->generate(5, 3, 16, other_it);
    EXPECT_EQ(a.T, task->n_steps());
    EXPECT_EQ(a.I, task->n_inputs());
    EXPECT_EQ(a.O, task->n_outputs());
    EXPECT_EQ(a.x, b.x);
    EXPECT_EQ(a.y, b.y);
    EXPECT_EQ(a.mask, b.mask);
    EXPECT_EQ(a.target, b.target);
    EXPECT_EQ(a.acc_label, b.acc_label);
    EXPECT_NE(a.x, other_seed.x);
    EXPECT_NE(a.x, other_it.x);
    EXPECT_GT(a.loss_weight(), 0);
    EXPECT_TRUE(std::isfinite(task->baseline_loss()) && task->baseline_loss() > 0);
  }
  EXPECT_EQ(names, (std::set<std::string>{"adding", "perceptual_dm", "context_dm", "delay_match", "delay_compare",
                                          "go_nogo", "ready_set_go", "copy", "seqmnist", "file"}));
}

}  // namespace
}  // namespace dalesim
