// One copy of a run's HDF5 file: creates the layout (or reopens an existing file) and appends
// history rows, checkpoints and the resume state. It never flushes by itself: the crash-safe
// writer (run_file_writer.cpp) decides when a copy is brought to a consistent state on disk.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dalesim/history.hpp"
#include "io/h5.hpp"
#include "io/replica_table.hpp"

namespace dalesim {

// Replicas of one (N, I, O): their weights share datasets [C, R_g, ...] under /checkpoints/weights.
struct ShapeGroup {
  int N = 0, I = 0, O = 0;
  std::vector<int> members;  // positions in the rows / the R axis
  h5::Group group;
  h5::Dataset replica, W_rec, W_dale, W_free, W_in, W_out, b, b_out, alpha, alpha_units, singular_values, logw_hist_e, logw_hist_i;
};

// One line of the root attribute `runs`, the list of the runs that wrote a file: the UTC time,
// `what` ("start" or "resume"), the backend and device, and the command line.
std::string run_log_line(const char* what, const RunInfo& info);

class Hdf5Writer {
 public:
  // Creates the file (replacing an existing one), writes the root attributes and /replicas.
  Hdf5Writer(const std::string& path, const Sweep& sweep, const std::vector<ReplicaRow>& rows, const RunInfo& info);
  // Reopens a file this writer made, to append to it.
  explicit Hdf5Writer(const std::string& path);
  ~Hdf5Writer() = default;  // handles close in reverse order, the file last

  const std::string& path() const { return path_; }
  // Throw std::invalid_argument, before anything is written, for sizes that do not match the file.
  void check_history(const std::vector<StepMetrics>& per_replica) const;
  void check_checkpoint(const std::vector<Diagnostics>& diag, const std::vector<ReplicaWeights>& weights) const;
  void check_state(const std::vector<ReplicaModel>& models) const;
  void check_status(const std::vector<ReplicaStatus>& status, const std::vector<std::int64_t>& diverged_step) const;

  void append_history(std::int64_t step, const std::vector<StepMetrics>& per_replica);
  void append_checkpoint(std::int64_t step, const std::vector<Diagnostics>& diag,
                         const std::vector<ReplicaWeights>& weights);
  // Writes /resume (created at the first call, overwritten in place after): every replica's
  // parameters and optimiser state, and the iteration to continue from.
  void write_resume_state(std::int64_t next_iteration, const std::vector<ReplicaModel>& models);
  void set_replica_status(const std::vector<ReplicaStatus>& status, const std::vector<std::int64_t>& diverged_step);
  // Drops history rows and checkpoints past the given counts (a resumed run continues from there).
  void truncate(std::size_t history_rows, std::size_t checkpoint_rows);
  h5::File& file() { return file_; }
  // Marks the file complete and closes it.
  void close();

 private:
  void create_checkpoint_groups(const std::vector<ReplicaRow>& rows, const std::vector<replica_table::Column>& columns,
                                const std::vector<std::string>& coordinates);

  std::string path_;
  std::size_t R_ = 0;
  h5::File file_;  // declared first: destroyed after every dataset below
  h5::Dataset status_, diverged_step_;
  h5::Dataset history_step_, checkpoint_step_;
  std::vector<h5::Dataset> history_, checkpoints_;  // in kHistoryFields / kCheckpointFields order
  std::vector<ShapeGroup> shapes_;
};

}  // namespace dalesim
