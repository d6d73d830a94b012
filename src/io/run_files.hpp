// The names a run's output file goes by on disk: OUT.h5, and while the run goes on the two copies
// OUT.h5 links to in turn (see HistoryWriter in dalesim/history.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "dalesim/history.hpp"

namespace dalesim {

// The copies of an unfinished run: OUT.h5.partial-a and OUT.h5.partial-b.
std::array<std::string, 2> run_file_copies(const std::string& path);

// What an output path holds: nothing; a file (finished, or an unfinished run's link to its copies,
// to be told apart by its status attribute); or an unfinished run's copies without the link.
enum class OutputOnDisk { nothing, file, lost_link };
OutputOnDisk output_on_disk(const std::string& path);

// Whether the run file at `path` holds a resume point (none before its first checkpoint).
bool has_resume_point(const std::string& path);

// The training state saved in a run file's /resume, per replica (in /replicas order).
struct SavedState {
  ResumePoint point;
  std::vector<std::vector<double>> params, moment1, moment2;
  std::vector<std::int64_t> adam_steps, diverged_step;
  std::vector<std::vector<float>> mask_rec;  // [replica][N * N]; empty when the file has none
};
// Throws InputError for a file without /resume or with an inconsistent one.
SavedState read_saved_state(const std::string& path);

// For programs: HDF5 is not to close files at exit. After a failed write (a full disk) it cannot
// close that file and crashes in its exit handler; every file is closed by its owner before exit.
// Call before any other HDF5 call.
void disable_hdf5_cleanup_at_exit();

// Removes an unfinished run's link and copies (a finished file at `path` is left alone).
void remove_run_file(const std::string& path);

}  // namespace dalesim
