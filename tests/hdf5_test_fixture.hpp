// The fixture of test_hdf5.cpp: a hand-made three-replica sweep (N = 4, 6, 4) and reproducible
// pseudo-random metrics, diagnostics and weights to write and compare bit for bit.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "dalesim/history.hpp"

namespace hdf5_test {

namespace fs = std::filesystem;
using namespace dalesim;

const char* const kHistoryNames[] = {"loss", "accuracy", "alpha", "grad_norm", "mean_rate", "dale_violation"};
const char* const kCheckpointNames[] = {"spectral_radius", "svd_entropy", "effective_rank", "rel_weight_change",
                                        "logw_e_mean", "logw_e_std", "logw_e_skew", "logw_i_mean",
                                        "logw_i_std", "logw_i_skew"};
const char* const kWeightNames[] = {"W_rec", "W_dale", "W_free", "W_in", "W_out", "b", "b_out", "alpha",
                                    "singular_values"};
constexpr int kInputs = 2, kOutputs = 1;

// A reproducible value in [-1, 1) for each (tag, a, b, k): splitmix64 of the packed arguments.
inline double value(std::uint64_t tag, std::uint64_t a, std::uint64_t b, std::uint64_t k) {
  std::uint64_t z = tag * 0x9E3779B97F4A7C15ULL + a * 0xBF58476D1CE4E5B9ULL + b * 0x94D049BB133111EBULL + k;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) / 4503599627370496.0 - 1.0;
}

inline std::vector<float> floats(std::size_t n, std::uint64_t tag, std::uint64_t c, std::uint64_t r) {
  std::vector<float> v(n);
  for (std::size_t k = 0; k < n; ++k) v[k] = static_cast<float>(value(tag, c, r, k));
  return v;
}

// Equal bit for bit, NaN equal to NaN.
inline bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

class Hdf5Test : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           (std::string("dalesim_hdf5_") + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    sweep_.name = "hdf5_test";
    sweep_.source_text = "name = \"hdf5_test\"\n[sweep]\nmodel.alpha_init = [0.25, 0.5, 0.75]\n";
    sweep_.resolved_text = "[model]\narch = \"mix\"\n";
    sweep_.axis_keys = {"model.alpha_init", "seed", "task.T"};
    const int n_units[] = {4, 6, 4};
    for (int r = 0; r < 3; ++r) {
      ReplicaConfig c;
      c.id = r;
      c.model.n_units = n_units[r];
      c.model.alpha_init = 0.25 * (r + 1);
      c.model.arch = r == 2 ? Arch::free : Arch::mix;
      c.train.lr = 1e-3 * (r + 1);
      c.seed = 100 + r;
      c.init_seed = derive_seed(c.seed, "init");
      c.axes = {{"model.alpha_init", c.model.alpha_init}, {"seed", std::int64_t{c.seed}},
                {"task.T", std::int64_t{10 * (r + 1)}}};
      sweep_.replicas.push_back(c);
    }
    for (const auto& c : sweep_.replicas) {
      ReplicaRow row;
      row.config = &c;
      row.n_inputs = kInputs;
      row.n_outputs = kOutputs;
      row.n_steps = 200;
      row.baseline_loss = 1.0 / 6.0;
      row.chance_accuracy = std::numeric_limits<double>::quiet_NaN();
      rows_.push_back(row);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const char* name) const { return (dir_ / name).string(); }
  std::size_t R() const { return rows_.size(); }

  std::unique_ptr<HistoryWriter> create(const std::string& p, bool overwrite = false) {
    RunInfo info{"dalesim run sweep.toml -o out.h5", "cpu", "CPU (2 threads)", "abc123", "0.1.0"};
    return create_hdf5_writer(p, sweep_, rows_, info, overwrite);
  }

  std::vector<StepMetrics> metrics(int s) const {
    std::vector<StepMetrics> m(R());
    for (std::size_t r = 0; r < R(); ++r) {
      m[r] = {value(1, s, r, 0), value(1, s, r, 1), value(1, s, r, 2), value(1, s, r, 3), value(1, s, r, 4),
              value(1, s, r, 5)};
      if (r == 2) m[r].alpha = std::numeric_limits<double>::quiet_NaN();  // free arch: no alpha
    }
    return m;
  }
  std::vector<Diagnostics> diagnostics(int c) const {
    std::vector<Diagnostics> d(R());
    for (std::size_t r = 0; r < R(); ++r) {
      double* fields[] = {&d[r].spectral_radius, &d[r].svd_entropy, &d[r].effective_rank, &d[r].rel_weight_change,
                          &d[r].logw_e_mean, &d[r].logw_e_std, &d[r].logw_e_skew, &d[r].logw_i_mean,
                          &d[r].logw_i_std, &d[r].logw_i_skew};
      for (int k = 0; k < 10; ++k) *fields[k] = value(2, c, r, k);
      d[r].singular_values = floats(rows_[r].config->model.n_units, 3, c, r);
    }
    return d;
  }
  std::vector<ReplicaWeights> weights(int c) const {
    std::vector<ReplicaWeights> ws(R());
    for (std::size_t r = 0; r < R(); ++r) {
      std::size_t n = rows_[r].config->model.n_units;
      ReplicaWeights& w = ws[r];
      w.N = static_cast<int>(n);
      w.I = kInputs;
      w.O = kOutputs;
      w.W_rec = floats(n * n, 10, c, r);
      w.W_dale = floats(n * n, 11, c, r);
      w.W_free = floats(n * n, 12, c, r);
      w.W_in = floats(n * kInputs, 13, c, r);
      w.W_out = floats(n * kOutputs, 14, c, r);
      w.b = floats(n, 15, c, r);
      w.b_out = floats(kOutputs, 16, c, r);
      w.alpha = static_cast<float>(value(17, c, r, 0));
    }
    return ws;
  }

  // Six history rows (steps 10..60) with a checkpoint after rows 3 and 6; optionally closed.
  void write_run(const std::string& p, bool close) {
    auto w = create(p);
    for (int s = 0; s < 6; ++s) {
      w->append_history(10 * (s + 1), metrics(s));
      if (s % 3 == 2) w->append_checkpoint(10 * (s + 1), diagnostics(s / 3), weights(s / 3));
    }
    w->set_replica_status({ReplicaStatus::complete, ReplicaStatus::diverged, ReplicaStatus::complete}, {-1, 40, -1});
    if (close) w->close();
  }

  void expect_history_rows(const RunFile& f, std::size_t n_rows) const {
    ASSERT_GE(f.history_step.size(), n_rows);
    for (std::size_t s = 0; s < n_rows; ++s) EXPECT_EQ(f.history_step[s], static_cast<std::int64_t>(10 * (s + 1)));
    for (int k = 0; k < 6; ++k) {
      const std::vector<double>* h = f.history_metric(kHistoryNames[k]);
      ASSERT_NE(h, nullptr) << kHistoryNames[k];
      ASSERT_EQ(h->size(), f.history_step.size() * R());
      for (std::size_t s = 0; s < n_rows; ++s) {
        std::vector<StepMetrics> m = metrics(static_cast<int>(s));
        double StepMetrics::*fields[] = {&StepMetrics::loss, &StepMetrics::accuracy, &StepMetrics::alpha,
                                         &StepMetrics::grad_norm, &StepMetrics::mean_rate,
                                         &StepMetrics::dale_violation};
        for (std::size_t r = 0; r < R(); ++r)
          EXPECT_TRUE(same((*h)[s * R() + r], m[r].*fields[k])) << kHistoryNames[k] << " s=" << s << " r=" << r;
      }
    }
  }

  void expect_weights(const std::string& p, int n_checkpoints) const {
    for (int c = 0; c < n_checkpoints; ++c) {
      std::vector<ReplicaWeights> ws = weights(c);
      for (std::size_t r = 0; r < R(); ++r) {
        ReplicaWeights got = read_checkpoint_weights(p, static_cast<int>(r), c);
        const ReplicaWeights& w = ws[r];
        EXPECT_EQ(got.N, w.N);
        EXPECT_EQ(got.I, w.I);
        EXPECT_EQ(got.O, w.O);
        EXPECT_EQ(got.W_rec, w.W_rec) << "c=" << c << " r=" << r;
        EXPECT_EQ(got.W_dale, w.W_dale);
        EXPECT_EQ(got.W_free, w.W_free);
        EXPECT_EQ(got.W_in, w.W_in);
        EXPECT_EQ(got.W_out, w.W_out);
        EXPECT_EQ(got.b, w.b);
        EXPECT_EQ(got.b_out, w.b_out);
        EXPECT_EQ(got.alpha, w.alpha);
      }
    }
  }

  template <typename Fn>
  static std::string error_of(Fn fn) {
    try {
      fn();
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path dir_;
  Sweep sweep_;
  std::vector<ReplicaRow> rows_;
};

}  // namespace hdf5_test
