// The subcommands of the `dalesim` program, registered on a CLI11 app.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace dalesim::cli {

// Exit codes: 0 success, 1 runtime failure, 2 bad input, 3 stopped by SIGINT/SIGTERM with a resume
// point saved (`dalesim run --resume` continues).
constexpr int kExitRuntime = 1, kExitBadInput = 2, kExitInterrupted = 3;

// Each registrar adds its subcommand and returns the action to run when it was chosen.
using Action = std::function<int()>;
Action add_run_command(CLI::App& app, const std::string& command_line);
Action add_validate_command(CLI::App& app);
Action add_inspect_command(CLI::App& app);
Action add_tasks_command(CLI::App& app);
Action add_bench_command(CLI::App& app, const std::string& command_line);
Action add_status_command(CLI::App& app);
Action add_report_command(CLI::App& app);
Action add_merge_command(CLI::App& app, const std::string& command_line);
Action add_trials_command(CLI::App& app, const std::string& command_line);
Action add_simulate_command(CLI::App& app, const std::string& command_line);
Action add_fixedpoints_command(CLI::App& app, const std::string& command_line);
}  // namespace dalesim::cli

#include "dynamics/trials_file.hpp"
#include "dynamics/trained_replica.hpp"

namespace dalesim::cli {
// The trials of --trials FILE, or N trials of the replica's own task (its data seed, batch
// `iteration`); exactly one of the two (ConfigError otherwise). Shared by simulate and fixedpoints.
TrialSet simulation_trials(const TrainedReplica& first, const std::string& trials_path, int task_trials,
                           long long iteration);

}  // namespace dalesim::cli
