// The adding problem: sum the two marked values of a random sequence, scored at the last step.
#include <cmath>
#include <limits>

#include "dalesim/rng.hpp"
#include "tasks/builtin.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

namespace {

class AddingTask final : public Task {
 public:
  AddingTask(int T, bool halves) : T_(T), halves_(halves) {}
  std::string name() const override { return "adding"; }
  int n_inputs() const override { return 2; }
  int n_outputs() const override { return 1; }
  int n_steps() const override { return T_; }
  // Predicting 1 (the mean of u1 + u2) gives Var(u1 + u2) = 2/12.
  double baseline_loss() const override { return 1.0 / 6.0; }
  double chance_accuracy() const override { return std::numeric_limits<double>::quiet_NaN(); }

  void generate(std::uint64_t data_seed, std::int64_t iteration, int B, Batch& out) const override {
    out.resize(B, T_, 2, 1);
    const std::uint64_t key = mix_key(data_seed, static_cast<std::uint64_t>(iteration));
    for (int b = 0; b < B; ++b) {
      // Counter layout of trial b: [0, T) values, T and T+1 marker positions.
      const CounterRng rng{key, static_cast<std::uint64_t>(b)};
      int p1, p2;
      if (halves_) {  // Arjovsky et al. 2016: one marker in each half
        const int h = T_ / 2;
        p1 = static_cast<int>(rng.below(T_, h));
        p2 = h + static_cast<int>(rng.below(T_ + 1, T_ - h));
      } else {  // two distinct positions anywhere
        p1 = static_cast<int>(rng.below(T_, T_));
        p2 = static_cast<int>(rng.below(T_ + 1, T_ - 1));
        if (p2 >= p1) ++p2;
      }
      double sum = 0;
      for (int t = 0; t < T_; ++t) {
        const float u = static_cast<float>(rng.uniform(t));
        float* x = &out.x[(static_cast<size_t>(t) * B + b) * 2];
        x[0] = u;
        x[1] = (t == p1 || t == p2) ? 1.f : 0.f;
        if (t == p1 || t == p2) sum += u;
      }
      const size_t last = static_cast<size_t>(T_ - 1) * B + b;
      out.y[last] = static_cast<float>(sum);
      out.mask[last] = 1.f;
    }
  }

 private:
  int T_;
  bool halves_;
};

}  // namespace

TaskInfo adding_task_info() {
  TaskInfo info;
  info.name = "adding";
  info.summary =
      "adding problem: inputs (value ~ U[0,1], marker); target = sum of the two marked values at the "
      "last step; MSE; baseline 1/6";
  info.params = {
      ParamSpec{"T", Value{std::int64_t{20}}, "sequence length in steps", 2, 100000, {}},
      ParamSpec{"positions", Value{std::string("halves")},
                "marker placement: one in each half (Arjovsky et al. 2016) or two anywhere", -INFINITY, INFINITY,
                {"halves", "anywhere"}},
  };
  return info;
}

std::unique_ptr<Task> make_adding_task(const TaskConfig& cfg) {
  static const TaskInfo info = adding_task_info();
  const TaskParams p(cfg, info.params);
  return std::make_unique<AddingTask>(static_cast<int>(p.get_int("T")), p.get_string("positions") == "halves");
}

}  // namespace dalesim
