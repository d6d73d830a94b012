// Progress reporting: a live line on a terminal and a JSON-lines log beside the output file that can
// be followed (tail -f) without opening the HDF5 file.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace dalesim {

class Progress {
 public:
  // A resumed run starts at `first_step`; its log is appended to, with a second start event.
  Progress(std::int64_t n_steps, int n_replicas, const std::string& log_path, bool live, std::int64_t first_step = 0);
  ~Progress();
  // The tasks of the run, by name: a logged step's loss is given per task (losses of different
  // tasks are not comparable). Call before the first update.
  void set_tasks(const std::vector<std::string>& names);
  // Called after step `step` (0-based) completes, when step + 1 steps are done; the losses (mean
  // over live replicas, overall and per task in set_tasks order) and the divergence count matter
  // only when `logged_row` (they are measured on logged steps).
  void update(std::int64_t step, double mean_loss, int n_diverged, bool logged_row,
              const std::vector<double>& mean_loss_by_task = {});
  // Writes the end event ("complete", "interrupted") with the steps done. A run that ends by an
  // exception (exit 1) gets one with status "failed" from the destructor, so `dalesim status`
  // does not say running.
  void finish(const std::string& status);
  double elapsed_seconds() const;

 private:
  std::int64_t n_steps_, first_step_;
  int n_replicas_;
  bool live_;
  bool finished_ = false;  // an end event was written; else the destructor writes "failed"
  std::ofstream log_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  double last_loss_ = 0;
  int last_diverged_ = 0;
  std::int64_t steps_done_ = 0;
  std::vector<std::string> tasks_;
};

}  // namespace dalesim
