// `dalesim report OUT.h5 -o report.html`: runs the Python analysis package (analysis/dalesim_analysis)
// with Debian's /usr/bin/python3 to write a self-contained HTML report of a sweep.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "dalesim/config.hpp"
#include "dalesim/history.hpp"

namespace dalesim::cli {

namespace {

namespace fs = std::filesystem;

bool is_executable(const fs::path& p) { return !p.empty() && access(p.c_str(), X_OK) == 0 && !fs::is_directory(p); }

// Debian's interpreter sees the python3-* packages; a python3 earlier on PATH may be another one.
std::string find_python(const std::string& requested) {
  if (!requested.empty()) {
    if (!is_executable(requested))
      throw InputError("--python " + requested + ": not an executable file");
    return requested;
  }
  if (const char* env = std::getenv("DALESIM_PYTHON"); env && *env) {
    if (!is_executable(env)) throw InputError(std::string("DALESIM_PYTHON=") + env + ": not an executable file");
    return env;
  }
  if (is_executable("/usr/bin/python3")) return "/usr/bin/python3";
  if (const char* path = std::getenv("PATH")) {
    std::string dirs = path;
    for (std::size_t start = 0; start <= dirs.size();) {
      std::size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      fs::path candidate = fs::path(dirs.substr(start, end - start)) / "python3";
      if (is_executable(candidate)) return candidate.string();
      start = end + 1;
    }
  }
  throw std::runtime_error(
      "no Python interpreter: /usr/bin/python3 does not exist and python3 is not on PATH; install the Debian "
      "packages python3 python3-numpy python3-h5py python3-matplotlib python3-pandas python3-xarray, or set "
      "DALESIM_PYTHON to an interpreter that has them");
}

// The folder holding the dalesim_analysis package: $DALESIM_ANALYSIS_DIR, the source tree this binary
// was built from, or beside the binary (build/../analysis, bin/../share/dalesim/analysis).
std::string find_package_dir() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("DALESIM_ANALYSIS_DIR"); env && *env) candidates.emplace_back(env);
#ifdef DALESIM_SOURCE_DIR
  candidates.push_back(fs::path(DALESIM_SOURCE_DIR) / "analysis");
#endif
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path().parent_path() / "analysis");
    candidates.push_back(exe.parent_path().parent_path() / "share" / "dalesim" / "analysis");
  }
  std::string tried;
  for (const fs::path& dir : candidates) {
    if (fs::exists(dir / "dalesim_analysis" / "__init__.py", ec)) return dir.string();
    tried += (tried.empty() ? "" : ", ") + dir.string();
  }
  throw std::runtime_error("cannot find the Python package dalesim_analysis (looked in " + tried +
                           "); set DALESIM_ANALYSIS_DIR to the folder that holds it (the source tree's analysis/)");
}

// Runs argv[0] with `argv`, PYTHONPATH led by `package_dir`; returns its exit status.
int run_python(const std::vector<std::string>& args, const std::string& package_dir) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("cannot start " + args[0] + ": fork failed");
  if (pid == 0) {
    const char* old = std::getenv("PYTHONPATH");
    const std::string path = package_dir + (old && *old ? ":" + std::string(old) : "");
    setenv("PYTHONPATH", path.c_str(), 1);
    setenv("MPLBACKEND", "Agg", 1);  // no display needed
    execv(argv[0], argv.data());
    std::fprintf(stderr, "dalesim: error: cannot run %s\n", argv[0]);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("waiting for " + args[0] + " failed");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace

Action add_report_command(CLI::App& app) {
  struct Opts {
    std::string input, output, python;
    double beat_baseline = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "report", "write a self-contained HTML report (figures, replica table, sweep file, status) of an output file");
  cmd->add_option("file", o->input, "dalesim HDF5 output (complete or still running)")->required();
  cmd->add_option("-o,--output", o->output, "HTML file to write")->required();
  cmd->add_option("--python", o->python, "Python interpreter (default: $DALESIM_PYTHON, /usr/bin/python3, python3)");
  CLI::Option* beat = cmd->add_option("--beat-baseline", o->beat_baseline,
                  "only the replicas whose final loss is at most (1 - X) x their task's baseline loss (X in [0, 1))");
  return [o, beat]() {
    const bool filter = beat->count() > 0;
    if (!fs::exists(o->input)) throw InputError("no such file: " + o->input);
    // The engine's reader reads the whole file first, as `inspect` does: a damaged file (a flipped
    // bit) is refused here rather than drawn from whatever parts still read.
    try {
      read_run_file(o->input);
    } catch (const std::runtime_error& e) {
      throw InputError("report: " + o->input + " does not read whole: " + e.what());
    }
    const fs::path out(o->output);
    const fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    if (!fs::is_directory(dir))
      throw ConfigError("--output", o->output, "a file in an existing directory",
                        "directory " + dir.string() + " does not exist");
    if (filter && !(o->beat_baseline >= 0 && o->beat_baseline < 1))
      throw ConfigError("--beat-baseline", format_value(Value{o->beat_baseline}), "a fraction in [0, 1)",
                        "0.1 keeps the replicas whose final loss is at most 90% of their task's baseline");
    const std::string python = find_python(o->python);
    const std::string package_dir = find_package_dir();
    std::vector<std::string> args = {python, "-m", "dalesim_analysis", "report", o->input, "-o", o->output};
    if (filter) {
      char value[32];
      std::snprintf(value, sizeof value, "%.17g", o->beat_baseline);
      args.insert(args.end(), {"--beat-baseline", value});
    }
    const int code = run_python(args, package_dir);
    if (code == 0) return 0;
    if (code == 2) throw InputError("report: " + o->input + " could not be read (see above)");
    if (code == 3)
      throw std::runtime_error("report: " + python + " lacks Python modules the report needs (see above)");
    throw std::runtime_error("report: " + python + " -m dalesim_analysis failed with exit code " +
                             std::to_string(code) + " (package from " + package_dir + ")");
  };
}

}  // namespace dalesim::cli
