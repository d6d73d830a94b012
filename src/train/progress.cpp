// Progress line (rate and ETA) on stderr and the JSON-lines progress log.
#include "train/progress.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "train/json.hpp"

namespace dalesim {

Progress::Progress(std::int64_t n_steps, int n_replicas, const std::string& log_path, bool live,
                   std::int64_t first_step)
    : n_steps_(n_steps), first_step_(first_step), n_replicas_(n_replicas), live_(live),
      start_(std::chrono::steady_clock::now()) {
  last_draw_ = start_ - std::chrono::seconds(1);
  steps_done_ = first_step;
  if (!log_path.empty()) {
    log_.open(log_path, first_step > 0 ? std::ios::app : std::ios::trunc);
    if (log_)
      log_ << "{\"event\":\"start\",\"n_steps\":" << n_steps << ",\"n_replicas\":" << n_replicas
           << ",\"first_step\":" << first_step << "}\n"
           << std::flush;
  }
}

Progress::~Progress() {
  if (!finished_) finish("failed");
  if (live_) std::fputs("\n", stderr);
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::set_tasks(const std::vector<std::string>& names) {
  tasks_ = names;
  if (log_) {
    log_ << "{\"event\":\"tasks\",\"tasks\":\"";
    for (std::size_t k = 0; k < names.size(); ++k) log_ << (k ? " " : "") << names[k];
    log_ << "\"}\n" << std::flush;
  }
}

void Progress::update(std::int64_t step, double mean_loss, int n_diverged, bool logged_row,
                      const std::vector<double>& mean_loss_by_task) {
  const double elapsed = elapsed_seconds();
  const double done = static_cast<double>(step + 1);
  steps_done_ = step + 1;
  const double rate = elapsed > 0 ? (done - static_cast<double>(first_step_)) / elapsed : 0.0;
  const double eta = rate > 0 ? (n_steps_ - done) / rate : 0.0;
  if (logged_row) {  // loss and divergence are only known on logged steps
    last_loss_ = mean_loss;
    last_diverged_ = n_diverged;
  }
  if (logged_row && log_) {
    // "step": the 0-based step just finished (its history row); "steps_done": step + 1.
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"event\":\"step\",\"step\":%lld,\"steps_done\":%lld,\"n_steps\":%lld,\"elapsed_s\":%.3f,"
                  "\"eta_s\":%.3f,\"mean_loss\":%s,\"n_diverged\":%d",
                  static_cast<long long>(step), static_cast<long long>(step + 1), static_cast<long long>(n_steps_),
                  elapsed, eta, json_number(mean_loss).c_str(), n_diverged);
    log_ << buf;
    for (std::size_t k = 0; k < tasks_.size() && k < mean_loss_by_task.size(); ++k)
      log_ << ",\"mean_loss." << tasks_[k] << "\":" << json_number(mean_loss_by_task[k]);
    log_ << "}\n" << std::flush;
  }
  const auto now = std::chrono::steady_clock::now();
  if (!live_ || (now - last_draw_ < std::chrono::milliseconds(200) && step + 1 < n_steps_)) return;
  last_draw_ = now;
  std::fprintf(stderr, "\r  step %lld/%lld  %.1f it/s  %.0f replica-it/s  ETA %.0fs  mean loss %.4g  diverged %d   ",
               static_cast<long long>(step + 1), static_cast<long long>(n_steps_), rate, rate * n_replicas_, eta,
               last_loss_, last_diverged_);
  std::fflush(stderr);
}

void Progress::finish(const std::string& status) {
  finished_ = true;
  if (log_)
    log_ << "{\"event\":\"end\",\"status\":\"" << status << "\",\"elapsed_s\":" << elapsed_seconds()
         << ",\"steps_done\":" << steps_done_ << "}\n"
         << std::flush;
}

}  // namespace dalesim
