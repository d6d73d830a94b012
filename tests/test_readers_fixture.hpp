// Shared by test_readers*.cpp: one small sweep run by the dalesim binary (once per test suite),
// running shell commands, and the values the engine's own reader sees.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "dalesim/history.hpp"

namespace readers_test {

namespace fs = std::filesystem;

struct Outcome {
  int code = -1;
  std::string output;  // stdout and stderr together
};

inline Outcome shell(const std::string& command) {
  Outcome o;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return o;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) o.output.append(buf.data(), n);
  const int status = pclose(pipe);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

inline bool on_path(const std::string& program) {
  return shell("command -v " + program + " > /dev/null").code == 0;
}

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Debian's interpreter sees the python3-* packages (a python3 earlier on PATH may not).
constexpr const char* kPython = "/usr/bin/python3";

// Why a Python reader test must skip, or "" when `modules` import.
inline std::string python_missing(const std::string& modules, const std::string& packages) {
  if (access(kPython, X_OK) != 0) return std::string(kPython) + " not found (Debian package python3)";
  if (shell(std::string(kPython) + " -c " + quote("import " + modules)).code != 0)
    return "cannot import " + modules + " in " + kPython + " (Debian packages " + packages +
           "; .ci/install-deps installs them)";
  return "";
}

// Two swept axes, two seeds: 8 replicas of 8 units, 7 steps, logged at 0, 3, 6, checkpoints at 0, 5, 7.
constexpr const char* kSweep = R"(
name = "readers"
[model]
arch = "mix"
n_units = 8
[task]
name = "adding"
T = 6
batch = 4
[train]
n_steps = 7
log_every = 3
checkpoint_every = 5
[sweep]
seeds = 2
[sweep.grid]
"model.alpha_init" = [0.3, 0.7]
"model.e_fraction" = [0.5, 0.75]
)";

// Runs the sweep once for the whole suite; tests read `out`, `run` and compare against them.
class ReaderSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = (fs::path(::testing::TempDir()) / ("dalesim_readers_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir);
    std::ofstream(dir + "/sweep.toml") << kSweep;
    out = dir + "/out.h5";
    Outcome o = shell(std::string(DALESIM_BINARY) + " run " + quote(dir + "/sweep.toml") + " -o " + quote(out) + " -q");
    if (o.code != 0) {
      setup_error = "dalesim run failed (" + std::to_string(o.code) + "): " + o.output;
      return;
    }
    run = std::make_unique<dalesim::RunFile>(dalesim::read_run_file(out));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir, ec);
    run.reset();
  }
  void SetUp() override { ASSERT_TRUE(setup_error.empty()) << setup_error; }

  // What the engine's reader reports: replica r's loss at the last logged step.
  static double engine_last_loss(int r) {
    const std::size_t S = run->history_step.size(), R = static_cast<std::size_t>(run->n_replicas);
    return (*run->history_metric("loss"))[(S - 1) * R + static_cast<std::size_t>(r)];
  }

  static inline std::string dir, out, setup_error;
  static inline std::unique_ptr<dalesim::RunFile> run;
};

}  // namespace readers_test
