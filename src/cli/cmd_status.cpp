// `dalesim status OUT.h5`: progress, rate and ETA of a run from the JSON-lines progress log beside
// its output (OUT.h5.progress, written by src/train/progress.cpp), without opening the HDF5 file.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "dalesim/config.hpp"

namespace dalesim::cli {

namespace {

// Beyond this without a new line (and no end line), --follow stops waiting.
constexpr double kStaleSeconds = 120;

struct ProgressState {
  bool started = false, ended = false;
  // steps_done: training steps done (the last logged step + 1, or the end line's count);
  // first_step: where the last (resumed) start began.
  long long n_steps = 0, steps_done = 0, first_step = 0;
  int n_replicas = 0, n_diverged = 0;
  double elapsed_s = 0, eta_s = NAN, mean_loss = NAN;
  double last_gap_s = NAN;  // seconds between the last two step lines
  std::vector<std::string> tasks;
  std::vector<double> task_loss;  // mean loss per task, in `tasks` order
  std::string end_status;
  int bad_lines = 0;
};

// No line for this long is unusual for the run's own pace (ten of its gaps between step lines,
// at least 2 s): it says "no progress" rather than an ETA.
double stale_after_s(const ProgressState& p) {
  return std::max(2.0, std::isfinite(p.last_gap_s) ? 10 * p.last_gap_s : 2.0);
}

// The value after "key": in a one-line JSON object (numbers, strings without escapes, null); empty
// when the key is absent. The log is written by us, flat and compact: no general parser needed.
std::string json_field(const std::string& line, const std::string& key) {
  const std::string tag = "\"" + key + "\":";
  std::size_t at = line.find(tag);
  if (at == std::string::npos) return "";
  at += tag.size();
  if (at < line.size() && line[at] == '"') {
    std::size_t end = line.find('"', at + 1);
    return end == std::string::npos ? "" : line.substr(at + 1, end - at - 1);
  }
  std::size_t end = line.find_first_of(",}", at);
  return line.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

double json_number(const std::string& line, const std::string& key, double fallback) {
  const std::string v = json_field(line, key);
  if (v.empty() || v == "null") return fallback;
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  return end && *end == '\0' ? d : fallback;
}

ProgressState read_progress_log(const std::string& path) {
  std::ifstream in(path);
  ProgressState p;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.front() != '{' || line.back() != '}') {  // a line still being written
      ++p.bad_lines;
      continue;
    }
    const std::string event = json_field(line, "event");
    if (event == "start") {  // a resumed run appends a second start: its state is the current one
      p.started = true;
      p.ended = false;
      p.end_status.clear();
      p.n_steps = static_cast<long long>(json_number(line, "n_steps", 0));
      p.n_replicas = static_cast<int>(json_number(line, "n_replicas", 0));
      p.first_step = static_cast<long long>(json_number(line, "first_step", 0));
      p.steps_done = p.first_step;
      p.last_gap_s = NAN;
    } else if (event == "tasks") {
      p.tasks.clear();
      std::istringstream names(json_field(line, "tasks"));
      for (std::string name; names >> name;) p.tasks.push_back(name);
    } else if (event == "step") {
      // Logs before steps_done was written give the 0-based step only.
      const double step = json_number(line, "step", static_cast<double>(p.steps_done - 1));
      p.steps_done = static_cast<long long>(json_number(line, "steps_done", step + 1));
      p.n_steps = static_cast<long long>(json_number(line, "n_steps", static_cast<double>(p.n_steps)));
      const double elapsed = json_number(line, "elapsed_s", p.elapsed_s);
      p.last_gap_s = elapsed - p.elapsed_s;
      p.elapsed_s = elapsed;
      p.eta_s = json_number(line, "eta_s", NAN);
      p.mean_loss = json_number(line, "mean_loss", NAN);
      p.task_loss.clear();
      for (const std::string& t : p.tasks) p.task_loss.push_back(json_number(line, "mean_loss." + t, NAN));
      p.n_diverged = static_cast<int>(json_number(line, "n_diverged", p.n_diverged));
    } else if (event == "end") {
      p.ended = true;
      p.end_status = json_field(line, "status");
      p.elapsed_s = json_number(line, "elapsed_s", p.elapsed_s);
      p.steps_done = static_cast<long long>(json_number(line, "steps_done", static_cast<double>(p.steps_done)));
    }
  }
  return p;
}

std::string seconds_text(double s) {
  char buf[32];
  if (!std::isfinite(s)) return "?";
  if (s < 90) std::snprintf(buf, sizeof buf, "%.0f s", s);
  else if (s < 5400) std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
  else std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  return buf;
}

void print_status(const std::string& output, const ProgressState& p, double age_s) {
  const long long done = p.steps_done;
  const double pct = p.ended && p.end_status == "complete" ? 100.0 : p.n_steps > 0 ? 100.0 * done / p.n_steps : 0.0;
  const double rate = p.elapsed_s > 0 ? static_cast<double>(done - p.first_step) / p.elapsed_s : 0.0;
  const bool stalled = !p.ended && age_s > stale_after_s(p);
  std::printf("%s: %s, step %lld/%lld (%.1f%%), %d replica%s, %d diverged\n", output.c_str(),
              p.ended ? p.end_status.c_str() : stalled ? "no progress" : "running", done, p.n_steps, pct,
              p.n_replicas, p.n_replicas == 1 ? "" : "s", p.n_diverged);
  std::printf("  elapsed %s, %.1f steps/s (%.0f replica-steps/s)", seconds_text(p.elapsed_s).c_str(), rate,
              rate * p.n_replicas);
  if (!p.ended && !stalled) std::printf(", ETA %s", seconds_text(p.eta_s).c_str());
  // One task: its mean loss; several: one mean per task (their losses are not comparable).
  if (p.tasks.size() > 1 && p.task_loss.size() == p.tasks.size()) {
    std::printf(", mean loss by task:");
    for (std::size_t k = 0; k < p.tasks.size(); ++k)
      std::printf("%s %s %.4g", k ? "," : "", p.tasks[k].c_str(), p.task_loss[k]);
  } else if (std::isfinite(p.mean_loss)) {
    std::printf(", mean loss %.4g", p.mean_loss);
  }
  std::printf("\n");
  if (p.ended && p.end_status == "interrupted")
    std::printf("  stopped by a signal at a save point: `dalesim run SWEEP.toml -o %s --resume` continues it\n",
                output.c_str());
  if (p.ended && p.end_status == "failed")
    std::printf("  failed (its error is in the run's own output); the output keeps everything up to its last save "
                "point: fix the cause, then `dalesim run SWEEP.toml -o %s --resume` continues it\n", output.c_str());
  if (stalled)
    std::printf("  no progress for %s (it logged every %s before): the run may have stopped (killed or crashed); "
                "the output keeps everything up to its last checkpoint, and --resume continues it\n",
                seconds_text(age_s).c_str(), seconds_text(p.last_gap_s).c_str());
  else if (!p.ended)
    std::printf("  log updated %s ago\n", seconds_text(age_s).c_str());
}

}  // namespace

Action add_status_command(CLI::App& app) {
  struct Opts {
    std::string output;
    bool follow = false;
    double interval = 2.0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "status", "progress, rate and ETA of a run from OUT.h5.progress (never opens the HDF5 file)");
  cmd->add_option("file", o->output, "dalesim output file (or its .progress log)")->required();
  cmd->add_flag("-f,--follow", o->follow, "print again every --interval seconds until the run ends");
  cmd->add_option("--interval", o->interval, "seconds between updates with --follow")->check(CLI::PositiveNumber);
  return [o]() {
    const std::string suffix = ".progress";
    const bool is_log = o->output.size() > suffix.size() &&
                        o->output.compare(o->output.size() - suffix.size(), suffix.size(), suffix) == 0;
    const std::string log = is_log ? o->output : o->output + suffix;
    const std::string output = is_log ? o->output.substr(0, o->output.size() - suffix.size()) : o->output;
    for (;;) {
      struct stat st {};
      if (stat(log.c_str(), &st) != 0)
        throw InputError("no progress log " + log + " (dalesim run writes it beside its output file; is " + output +
                         " the output of a run?)");
      const ProgressState p = read_progress_log(log);
      if (!p.started) throw InputError(log + ": not a dalesim progress log (no start line)");
      print_status(output, p, std::difftime(std::time(nullptr), st.st_mtime));
      const double age_s = std::difftime(std::time(nullptr), st.st_mtime);
      if (!o->follow || p.ended || age_s > kStaleSeconds) return 0;
      std::fflush(stdout);
      usleep(static_cast<useconds_t>(o->interval * 1e6));
    }
  };
}

}  // namespace dalesim::cli
