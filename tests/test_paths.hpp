// Where the tests find the dalesim binary and the source tree: compiled in, overridable by the
// environment (DALESIM_BINARY, DALESIM_SOURCE_DIR) for test binaries run from another checkout;
// and how they run the binary.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace dalesim::test {

inline std::string binary_path() {
  const char* env = std::getenv("DALESIM_BINARY");
  return env && *env ? env : DALESIM_BINARY;
}

inline std::string source_dir() {
  const char* env = std::getenv("DALESIM_SOURCE_DIR");
  return env && *env ? env : DALESIM_SOURCE_DIR;
}

struct Outcome {
  int code = -1;        // exit code; -1 when killed by a signal or not started
  std::string output;   // stdout and stderr together
};

// Runs `dalesim ARGS` through the shell, with `env` (VAR=value ...) added, outside any Slurm array
// the tests themselves may run in (whose variables would choose a shard).
inline Outcome run_dalesim(const std::string& args, const std::string& env = "") {
  const std::string cmd = "env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT -u SLURM_ARRAY_TASK_MIN " + env +
                          " " + binary_path() + " " + args + " 2>&1";
  Outcome o;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return o;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) o.output.append(buf, n);
  const int status = pclose(pipe);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

}  // namespace dalesim::test
