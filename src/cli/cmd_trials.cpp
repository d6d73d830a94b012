// `dalesim trials`: a task's trials written as a trials file, in the layout the `file` task reads.
#include <algorithm>
#include <cstdio>
#include <regex>

#include "cli/commands.hpp"
#include "dalesim/sweep.hpp"
#include "dalesim/task.hpp"
#include "dynamics/simulation_file.hpp"
#include "dynamics/trials_file.hpp"

namespace dalesim::cli {

namespace {

// `-p key=value` as a TOML line: numbers, booleans, lists and quoted strings as written, any
// other value as a string.
std::string toml_line(const std::string& kv) {
  const std::size_t eq = kv.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("-p", kv, "key=value, e.g. -p coherences=[6.4,51.2] or -p target=class",
                      "`dalesim tasks` lists each task's parameters");
  const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
  static const std::regex bare(R"(^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$|^true$|^false$|^\[.*\]$|^".*"$)");
  if (!std::regex_match(key, std::regex("^[A-Za-z_][A-Za-z0-9_]*$")))
    throw ConfigError("-p", kv, "a task parameter name (letters, digits, _) before the =",
                      "`dalesim tasks` lists each task's parameters");
  if (std::regex_match(value, bare)) return key + " = " + value + "\n";
  std::string quoted = "\"";
  for (char c : value) quoted += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return key + " = " + quoted + "\"\n";
}

}  // namespace

Action add_trials_command(CLI::App& app, const std::string& command_line) {
  struct Opts {
    std::string task, output;
    std::vector<std::string> params;
    int n = 0;
    long long seed = 0, iteration = 0;
    double dt = 20.0;
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "trials", "write a task's trials (inputs, targets, mask, condition labels) as a file the `file` task reads");
  cmd->add_option("task", o->task, "task name (`dalesim tasks` lists them)")->required();
  cmd->add_option("-p,--param", o->params, "task parameter key=value (task.<key> of a sweep file); repeatable");
  cmd->add_option("-n,--trials", o->n, "number of trials")->required()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("-o,--output", o->output, "trials file to write (HDF5)")->required();
  cmd->add_option("--seed", o->seed,
                  "the sweep's `seed`: the trials are those a replica with this seed trains on (data_seed derived "
                  "from it)")
      ->check(CLI::Range(0LL, (1LL << 62)));
  cmd->add_option("--iteration", o->iteration,
                  "which training batch (0 = the first step's); with -n equal to task.batch, exactly that batch")
      ->check(CLI::Range(0LL, (1LL << 40)));
  cmd->add_option("--dt", o->dt, "model.dt in ms (task periods are converted to steps with it)");
  cmd->add_flag("--force", o->force, "overwrite an existing output file");
  return [o, command_line]() {
    check_new_output(o->output, o->force);
    std::string text = "name = \"trials\"\nseed = " + std::to_string(o->seed) + "\n[model]\ndt = " +
                       format_value(Value{o->dt}) + "\n[task]\nname = \"" + o->task + "\"\nbatch = " +
                       std::to_string(o->n) + "\n";
    // Parameter names are checked here, so that the message names -p, not a line of the sweep
    // text built below (an unknown task is named by parse_sweep, with the list of tasks).
    const auto& tasks = task_registry();
    const auto spec = std::find_if(tasks.begin(), tasks.end(), [&](const TaskInfo& t) { return t.name == o->task; });
    std::string params;
    for (const std::string& p : o->params) {
      params += toml_line(p);
      const std::string key = p.substr(0, p.find('='));
      if (spec != tasks.end() &&
          std::none_of(spec->params.begin(), spec->params.end(), [&](const ParamSpec& s) { return s.key == key; })) {
        std::string keys;
        for (const ParamSpec& s : spec->params) keys += (keys.empty() ? "" : ", ") + s.key;
        throw ConfigError("-p", p, "a parameter of task \"" + o->task + "\": " + keys, "`dalesim tasks` documents them");
      }
    }
    const Sweep sweep = parse_sweep(text + params, "dalesim trials -p");
    const ReplicaConfig& cfg = sweep.replicas.at(0);
    const std::unique_ptr<Task> task = make_task(cfg.task, cfg.model.dt);
    TrialSet ts;
    task->generate(cfg.data_seed, o->iteration, o->n, ts.batch);
    ts.condition_names = task->condition_names();
    ts.dt = cfg.model.dt;
    TrialsInfo info;
    info.task = task->name();
    info.task_params = params;
    info.dt = cfg.model.dt;
    info.seed = o->seed;
    info.data_seed = cfg.data_seed;
    info.iteration = o->iteration;
    info.command_line = command_line;
    write_trials_file(o->output, ts, info, o->force);
    const Batch& b = ts.batch;
    std::printf("%s: %d trials of %s, %d steps of %g ms, %d inputs, %d outputs, loss %s\n", o->output.c_str(), b.B,
                info.task.c_str(), b.T, cfg.model.dt, b.I, b.O, to_string(b.loss));
    std::printf("train on them with: [task] name = \"file\", path = \"%s\", test_fraction = 0%s\n", o->output.c_str(),
                b.loss == LossKind::cross_entropy ? (", target = \"class\", n_outputs = " + std::to_string(b.O)).c_str()
                                                  : "");
    return 0;
  };
}

}  // namespace dalesim::cli
