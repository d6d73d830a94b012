// The copying-memory task (Arjovsky, Shah & Bengio 2016): remember 10 symbols over T blank
// steps and reproduce them after a delimiter. Cross-entropy over every step.
#include <cmath>
#include <limits>

#include "dalesim/rng.hpp"
#include "tasks/builtin.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

namespace {

constexpr int kSymbols = 10;  // alphabet: 0 blank, 1-8 data, 9 delimiter (one-hot inputs)
constexpr int kData = 8;      // data symbols 1..8
constexpr int kRecall = 10;   // symbols to copy

// A trial of length T + 20: 10 data symbols, T - 1 blanks, the delimiter, 10 blanks. Target:
// blank for the first T + 10 steps, then the 10 data symbols in order.
class CopyTask final : public Task {
 public:
  explicit CopyTask(int T) : T_(T) {}
  std::string name() const override { return "copy"; }
  int n_inputs() const override { return kSymbols; }
  int n_outputs() const override { return kSymbols; }
  int n_steps() const override { return T_ + 2 * kRecall; }
  // Memoryless: blanks exactly, then uniform over the 8 data symbols.
  double baseline_loss() const override { return kRecall * std::log(double(kData)) / n_steps(); }
  double chance_accuracy() const override { return 1.0 / kData; }

  void generate(std::uint64_t data_seed, std::int64_t iteration, int B, Batch& out) const override {
    const int L = n_steps();
    out.resize(B, L, kSymbols, kSymbols);
    out.loss = LossKind::cross_entropy;
    out.acc_begin = 0;
    out.acc_end = kSymbols;
    const std::uint64_t key = mix_key(data_seed, static_cast<std::uint64_t>(iteration));
    for (int b = 0; b < B; ++b) {
      // Counter layout of trial b: k the k-th data symbol.
      const CounterRng rng{key, static_cast<std::uint64_t>(b)};
      int data[kRecall];
      for (int k = 0; k < kRecall; ++k) data[k] = 1 + static_cast<int>(rng.below(k, kData));
      for (int t = 0; t < L; ++t) {
        const std::size_t row = static_cast<std::size_t>(t) * B + b;
        const int in = t < kRecall ? data[t] : t == T_ + kRecall - 1 ? kSymbols - 1 : 0;
        out.x[row * kSymbols + in] = 1.f;
        const int recall = t - (T_ + kRecall);
        out.target[row] = recall >= 0 ? data[recall] : 0;
        if (recall >= 0) out.acc_label[row] = data[recall];
      }
    }
  }

 private:
  int T_;
};

}  // namespace

TaskInfo copy_task_info() {
  TaskInfo info;
  info.name = "copy";
  info.summary =
      "copying memory (Arjovsky 2016): 10 symbols from 8, T blanks, a delimiter, recall the 10 symbols; "
      "one-hot 10 inputs and 10 outputs, cross-entropy over all T + 20 steps; baseline 10 log 8 / (T + 20); "
      "accuracy over the recalled symbols, chance 1/8";
  info.params = {
      ParamSpec{"T", Value{std::int64_t{100}}, "delay: blank steps between the symbols and their recall (length T + 20)",
                1, 100000, {}},
  };
  return info;
}

std::unique_ptr<Task> make_copy_task(const TaskConfig& cfg) {
  static const TaskInfo info = copy_task_info();
  const TaskParams p(cfg, info.params);
  return std::make_unique<CopyTask>(static_cast<int>(p.get_int("T")));
}

}  // namespace dalesim
