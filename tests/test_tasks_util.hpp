// Helpers of the task tests: reading a batch's per-step classes, scoring an oracle's classes by
// the loss and accuracy definitions of task.hpp, temporary directories and generated IDX data.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "dalesim/task.hpp"
#include "tasks/idx.hpp"

namespace dalesim::test {

inline std::size_t row(const Batch& b, int t, int n) { return static_cast<std::size_t>(t) * b.B + n; }

// The class a batch asks for at (t, n): the target (cross-entropy) or the one-hot target's index
// (mse); -1 where the step is not scored. Fails the test on a scored mse step that is not one-hot.
inline int class_at(const Batch& b, int t, int n) {
  if (b.loss == LossKind::cross_entropy) return b.target[row(b, t, n)];
  const float* y = &b.y[row(b, t, n) * b.O];
  const float* m = &b.mask[row(b, t, n) * b.O];
  int ones = 0, c = -1;
  double mask_sum = 0;
  for (int o = 0; o < b.O; ++o) {
    mask_sum += m[o];
    if (y[o] == 1.f) ++ones, c = o;
    else EXPECT_EQ(y[o], 0.f);
  }
  if (mask_sum == 0) return -1;
  EXPECT_EQ(mask_sum, b.O) << "a scored mse step weighs every output";
  EXPECT_EQ(ones, 1);
  return c;
}

struct OracleScore {
  double loss = 0;      // the batch's loss with the oracle's one-hot output (mse) or logits 40 x one-hot
  double accuracy = 0;  // NaN when the batch has none
};

// Scores per-step classes cls [T, B] (an oracle's output) by the batch's own loss and accuracy.
inline OracleScore score_classes(const Batch& b, const std::vector<int>& cls) {
  std::vector<float> z(static_cast<std::size_t>(b.T) * b.B * b.O, 0.f);
  for (std::size_t r = 0; r < cls.size(); ++r)
    if (cls[r] >= 0) z[r * b.O + cls[r]] = b.loss == LossKind::mse ? 1.f : 40.f;
  OracleScore s;
  double num = 0, den = 0;
  for (std::size_t r = 0; r < cls.size(); ++r) {
    if (b.loss == LossKind::mse) {
      for (int o = 0; o < b.O; ++o) {
        const double d = z[r * b.O + o] - b.y[r * b.O + o];
        num += b.mask[r * b.O + o] * d * d;
        den += b.mask[r * b.O + o];
      }
    } else if (b.target[r] >= 0) {
      double mx = -1e30, se = 0;
      for (int o = 0; o < b.O; ++o) mx = std::max(mx, double(z[r * b.O + o]));
      for (int o = 0; o < b.O; ++o) se += std::exp(z[r * b.O + o] - mx);
      num += mx + std::log(se) - z[r * b.O + b.target[r]];
      den += 1;
    }
  }
  s.loss = num / std::max(den, 1.0);
  int correct = 0, n = 0;
  auto argmax = [&](std::size_t r) {
    const float* zr = &z[r * b.O];
    return static_cast<int>(std::max_element(zr + b.acc_begin, zr + b.acc_end) - zr) - b.acc_begin;
  };
  if (b.acc_step >= 0) {
    for (int k = 0; k < b.B; ++k, ++n) correct += argmax(row(b, b.acc_step, k)) == b.label[k];
  } else {
    for (std::size_t r = 0; r < b.acc_label.size(); ++r)
      if (b.acc_label[r] >= 0) correct += argmax(r) == b.acc_label[r], ++n;
  }
  s.accuracy = n ? double(correct) / n : std::nan("");
  return s;
}

// A fresh directory under the test temp dir, removed at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("dalesim_" + tag + "_" + std::to_string(getpid()) + "_" + (info ? info->name() : "x"));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// An easy MNIST-like set: image k of class c = k % 10 is dark except a bright 2 x 2 block at a
// class-specific place, plus a little pixel noise and its index in pixel 0 (so every image
// differs). Train images are gzipped when `gz_train`, test images raw unless `gz_test`.
inline void write_toy_mnist(const std::string& dir, int n_train, int n_test, int rows, int cols, bool gz_train = true,
                            bool gz_test = false) {
  auto make = [&](int n, int offset, const std::string& split, bool gz) {
    IdxArray images, labels;
    images.dims = {static_cast<std::uint32_t>(n), static_cast<std::uint32_t>(rows), static_cast<std::uint32_t>(cols)};
    labels.dims = {static_cast<std::uint32_t>(n)};
    images.data.assign(static_cast<std::size_t>(n) * rows * cols, 0);
    labels.data.resize(n);
    for (int k = 0; k < n; ++k) {
      const int c = (k * 7 + offset) % 10;
      labels.data[k] = static_cast<std::uint8_t>(c);
      std::uint8_t* img = &images.data[static_cast<std::size_t>(k) * rows * cols];
      for (int p = 0; p < rows * cols; ++p) img[p] = static_cast<std::uint8_t>((p * 31 + k * 17) % 40);
      const int r0 = (c / 5) * (rows / 2), c0 = (c % 5) * (cols / 5);
      for (int dr = 0; dr < 2; ++dr)
        for (int dc = 0; dc < 2; ++dc) img[(r0 + dr) * cols + c0 + dc] = 255;
      img[rows * cols - 1] = static_cast<std::uint8_t>(k % 251);
    }
    const std::string ext = gz ? ".gz" : "";
    write_idx(dir + "/" + split + "-images-idx3-ubyte" + ext, images, gz);
    write_idx(dir + "/" + split + "-labels-idx1-ubyte" + ext, labels, gz);
  };
  make(n_train, 0, "train", gz_train);
  make(n_test, 3, "t10k", gz_test);
}

}  // namespace dalesim::test
