// SIGINT/SIGTERM/SIGHUP handlers that ask the driver to stop at the end of the current step (interrupt.hpp).
#include "train/interrupt.hpp"

#include <csignal>

namespace dalesim {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int signal) {
  if (g_stop_signal != 0 && signal == SIGINT) {
    std::signal(SIGINT, SIG_DFL);  // asked twice: the user means now
    std::raise(SIGINT);
    return;
  }
  g_stop_signal = signal;
}

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // file writes in progress go on
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);  // a closed terminal or ssh session: save, as for SIGTERM
}

int stop_requested() { return g_stop_signal; }

void request_stop(int signal) { g_stop_signal = signal; }

}  // namespace dalesim
