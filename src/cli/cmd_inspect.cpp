// `dalesim inspect` (a table of replicas and their final metrics) and `dalesim tasks`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cli/commands.hpp"
#include "dalesim/history.hpp"
#include "dalesim/task.hpp"

namespace dalesim::cli {

namespace {
// Last finite value of a [S, R] metric for replica r (NaN when none).
double last_value(const RunFile& f, const std::string& metric, int r) {
  const std::vector<double>* m = f.history_metric(metric);
  if (!m) return std::nan("");
  const size_t S = f.history_step.size(), R = static_cast<size_t>(f.n_replicas);
  for (size_t s = S; s-- > 0;)
    if (std::isfinite((*m)[s * R + r])) return (*m)[s * R + r];
  return std::nan("");
}
// Last finite value of a [C, R] checkpoint metric for replica r (NaN when none).
double last_checkpoint(const RunFile& f, const std::string& metric, int r) {
  const std::vector<double>* m = f.checkpoint_metric(metric);
  if (!m) return std::nan("");
  const size_t C = f.checkpoint_step.size(), R = static_cast<size_t>(f.n_replicas);
  for (size_t c = C; c-- > 0;)
    if (std::isfinite((*m)[c * R + r])) return (*m)[c * R + r];
  return std::nan("");
}
}  // namespace

Action add_inspect_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("inspect", "print a table of the replicas in an output file and their final metrics");
  cmd->add_option("file", *path, "dalesim HDF5 output")->required();
  return [path]() {
    RunFile f;
    try {
      f = read_run_file(*path);
    } catch (const std::runtime_error& e) {
      throw InputError(e.what());  // an unreadable file named by the user is bad input
    }
    std::printf("%s: %d replicas, status %s, backend %s (%s), %zu logged steps, %zu checkpoints\n", path->c_str(),
                f.n_replicas, f.status.c_str(), f.backend.c_str(), f.device.c_str(), f.history_step.size(),
                f.checkpoint_step.size());
    // Every swept axis gets a column (seed, arch, task and alpha_init have theirs), so that rows of
    // different conditions never look alike.
    struct Extra {
      std::string name;
      const std::vector<double>* numbers;
      const std::vector<std::string>* strings;
      int width;
    };
    std::vector<Extra> extra;
    {
      std::istringstream axes(f.sweep_axes);
      for (std::string name; axes >> name;) {
        if (name == "seed" || name == "arch" || name == "task" || name == "alpha_init") continue;
        Extra e{name, f.numeric_column(name), f.string_column(name), std::max<int>(8, static_cast<int>(name.size()))};
        if (e.strings)
          for (const std::string& v : *e.strings) e.width = std::max<int>(e.width, static_cast<int>(v.size()));
        if (e.numbers || e.strings) extra.push_back(e);
      }
    }
    const auto* arch = f.string_column("arch");
    const auto* task = f.string_column("task");
    const auto* status = f.string_column("status");
    const auto* n_units = f.numeric_column("n_units");
    const auto* n_exc = f.numeric_column("n_exc");
    const auto* alpha_init = f.numeric_column("alpha_init");
    const auto* seed = f.numeric_column("seed");
    std::printf("%5s  %-6s  %6s  %5s  %10s  %5s  %-14s", "id", "arch", "N", "N_E", "alpha_init", "seed", "task");
    for (const Extra& e : extra) std::printf("  %*s", e.width, e.name.c_str());
    std::printf("  %-9s  %11s  %11s  %8s  %11s  %8s\n", "status", "final loss", "final alpha", "accuracy", "eval loss",
                "eval acc");
    for (int r = 0; r < f.n_replicas; ++r) {
      auto s = [&](const std::vector<std::string>* c) { return c ? (*c)[r].c_str() : "?"; };
      auto d = [&](const std::vector<double>* c) { return c ? (*c)[r] : std::nan(""); };
      std::printf("%5d  %-6s  %6.0f  %5.0f  %10.3g  %5.0f  %-14s", r, s(arch), d(n_units), d(n_exc), d(alpha_init),
                  d(seed), s(task));
      for (const Extra& e : extra) {
        if (e.numbers) std::printf("  %*.4g", e.width, (*e.numbers)[r]);
        else std::printf("  %*s", e.width, (*e.strings)[r].c_str());
      }
      std::printf("  %-9s  %11.4g  %11.4g  %8.3g  %11.4g  %8.3g\n", s(status), last_value(f, "loss", r),
                  last_value(f, "alpha", r), last_value(f, "accuracy", r), last_checkpoint(f, "eval_loss", r),
                  last_checkpoint(f, "eval_accuracy", r));
    }
    return 0;
  };
}

Action add_tasks_command(CLI::App& app) {
  app.add_subcommand("tasks", "list the tasks and their parameters (task.<key> in a sweep file)");
  return []() {
    for (const TaskInfo& t : task_registry()) {
      std::printf("%s\n  %s\n", t.name.c_str(), t.summary.c_str());
      for (const ParamSpec& p : t.params)
        std::printf("    task.%-14s default %-28s %s\n", p.key.c_str(), format_value(p.default_value).c_str(),
                    p.doc.c_str());
    }
    return 0;
  };
}

}  // namespace dalesim::cli
