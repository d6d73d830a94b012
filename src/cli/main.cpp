// dalesim: train sweeps of E/I recurrent networks. Exit codes: 0 success, 1 runtime failure,
// 2 bad input (config, arguments, files), 3 stopped by a signal and resumable (cli/commands.hpp).
// Only this function catches broadly.
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <vector>

#include "cli/commands.hpp"
#include "train/interrupt.hpp"
#include "dalesim/config.hpp"
#include "dalesim/version.hpp"
#include "io/run_files.hpp"

int main(int argc, char** argv) {
  // `run`: SIGINT, SIGTERM and SIGHUP save and exit 3 from the first moment (a Slurm time limit or
  // scancel just after the task began must requeue it, not kill it with 143).
  if (argc > 1 && std::string(argv[1]) == "run") dalesim::install_stop_handlers();
  // Past a file-size limit (ulimit -f), writes then fail with EFBIG and the error names the file,
  // instead of the process being killed by SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  dalesim::disable_hdf5_cleanup_at_exit();
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);

  CLI::App app{"dalesim " DALESIM_VERSION ": batched training of excitatory/inhibitory RNN sweeps"};
  app.set_version_flag("--version", "dalesim " DALESIM_VERSION " (" DALESIM_GIT_HASH ")");
  app.require_subcommand(1);
  const std::vector<std::pair<std::string, dalesim::cli::Action>> actions = {
      {"run", dalesim::cli::add_run_command(app, command_line)},
      {"validate", dalesim::cli::add_validate_command(app)},
      {"inspect", dalesim::cli::add_inspect_command(app)},
      {"tasks", dalesim::cli::add_tasks_command(app)},
      {"bench", dalesim::cli::add_bench_command(app, command_line)},
      {"status", dalesim::cli::add_status_command(app)},
      {"report", dalesim::cli::add_report_command(app)},
      {"merge", dalesim::cli::add_merge_command(app, command_line)},
      {"trials", dalesim::cli::add_trials_command(app, command_line)},
      {"simulate", dalesim::cli::add_simulate_command(app, command_line)},
      {"fixedpoints", dalesim::cli::add_fixedpoints_command(app, command_line)},
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : dalesim::cli::kExitBadInput;
  }
  try {
    for (const auto& [name, action] : actions)
      if (app.get_subcommand(name)->parsed()) return action();
  } catch (const dalesim::InputError& e) {
    std::cerr << "dalesim: error: " << e.what() << "\n";
    return dalesim::cli::kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "dalesim: error: " << e.what() << "\n";
    return dalesim::cli::kExitRuntime;
  }
  return dalesim::cli::kExitRuntime;
}
