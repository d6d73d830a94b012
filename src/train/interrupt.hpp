// Stopping a run cleanly on SIGINT, SIGTERM or SIGHUP (Slurm sends SIGTERM at a job's time limit): the
// handler only records the signal; the driver finishes the current step, saves a resume point
// and returns, and `dalesim run --resume` continues from there.
#pragma once

namespace dalesim {

// Installs the handlers. A second SIGINT while stopping ends the process at once (the output file
// still shows its last commit).
void install_stop_handlers();

// The signal that asked the run to stop, or 0.
int stop_requested();

// For tests: records `signal` as if it had arrived.
void request_stop(int signal);

}  // namespace dalesim
