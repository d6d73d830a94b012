// The crash-safe output file of a run (history.hpp): appended data waits in memory until a commit,
// which writes it to the copy OUT.h5 does not link to, puts that copy on disk, moves the link to
// it, then brings the other copy level. A kill at any moment thus leaves OUT.h5 pointing at a
// whole file (HDF5 updates metadata in place, so a file killed in the middle of a flush may not
// open at all: the copy being written is never the one shown).
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>

#include "dalesim/config.hpp"
#include "dalesim/history.hpp"
#include "dalesim/model.hpp"
#include "io/h5.hpp"
#include "io/hdf5_writer.hpp"
#include "io/run_files.hpp"

namespace dalesim {

namespace fs = std::filesystem;

std::array<std::string, 2> run_file_copies(const std::string& path) {
  return {path + ".partial-a", path + ".partial-b"};
}

OutputOnDisk output_on_disk(const std::string& path) {
  std::error_code ec;
  if (fs::exists(path, ec)) return OutputOnDisk::file;
  const auto copies = run_file_copies(path);
  if (fs::exists(copies[0], ec) || fs::exists(copies[1], ec)) return OutputOnDisk::lost_link;
  // A dangling link without copies is a file that cannot be read: reported as one.
  return fs::is_symlink(path, ec) ? OutputOnDisk::file : OutputOnDisk::nothing;
}

void remove_run_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_symlink(path, ec)) fs::remove(path, ec);
  for (const std::string& c : run_file_copies(path)) fs::remove(c, ec);
}

void disable_hdf5_cleanup_at_exit() { H5dont_atexit(); }

namespace {

// HDF5's error stack for a failed write is long; a person needs the system's reason (e.g. "No
// space left on device") and the call that failed.
std::string short_write_error(const std::string& what) {
  const std::string key = "error message = '";
  const auto at = what.find(key);
  if (at == std::string::npos) return what;
  const auto end = what.find('\'', at + key.size());
  return what.substr(at + key.size(), end - at - key.size()) + " (" + what.substr(0, what.find(" (")) + ")";
}

[[noreturn]] void fail_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// Makes `link` a symbolic link to `target` (a name in the same directory) in one atomic step.
void point_link(const std::string& link, const std::string& target) {
  const std::string tmp = link + ".link";
  ::unlink(tmp.c_str());
  if (::symlink(fs::path(target).filename().c_str(), tmp.c_str()) != 0) fail_errno("cannot create link " + tmp);
  if (::rename(tmp.c_str(), link.c_str()) != 0) fail_errno("cannot rename " + tmp + " to " + link);
  // The directory entry itself is made durable, so a save point survives a power cut, not only a
  // killed process.
  const fs::path parent = fs::path(link).parent_path();
  const int dir = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

// A run file could not be written for want of space; the message says what to do next.
struct DiskFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Bytes free to this process on the file system holding `path`'s directory; -1 when unknown.
double free_bytes(const std::string& path) {
  const fs::path dir = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
  struct statvfs st{};
  if (::statvfs(dir.c_str(), &st) != 0) return -1;
  return static_cast<double>(st.f_bavail) * static_cast<double>(st.f_frsize);
}

// A write that failed where the disk is (nearly) full failed for want of space, whatever the
// layer above says ("Input/output error" from a copy, an HDF5 flush stack): say so, briefly.
bool disk_full(const std::string& path, const std::string& what, double needed) {
  if (what.find("No space left on device") != std::string::npos || what.find("errno = 28") != std::string::npos)
    return true;
  const double free = free_bytes(path);
  return free >= 0 && free < std::max(needed, 64.0 * 1024);
}

std::string full_disk_message(const std::string& file, const std::string& next) {
  const double free = free_bytes(file);
  return "writing " + file + " failed: No space left on device (" +
         (free >= 0 ? std::to_string(static_cast<long long>(free / 1024)) + " KiB free there" : std::string("the disk is full")) +
         "); " + next;
}

void copy_file(const std::string& from, const std::string& to) {
  std::error_code ec, size_ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (!ec) return;
  const double size = static_cast<double>(fs::file_size(from, size_ec));
  if (disk_full(to, "", size)) throw DiskFull(full_disk_message(to, "make room, then run the same command again"));
  throw std::runtime_error("cannot copy " + from + " to " + to + ": " + ec.message());
}

// What one commit adds to a copy. Both copies receive the same deltas, in the same order.
struct Delta {
  std::vector<std::pair<std::int64_t, std::vector<StepMetrics>>> rows;
  std::int64_t checkpoint_step = -1;  // -1: no checkpoint in this commit
  const std::vector<Diagnostics>* diag = nullptr;
  const std::vector<ReplicaWeights>* weights = nullptr;
  std::int64_t next_iteration = -1;  // -1: no resume state
  const std::vector<ReplicaModel>* state = nullptr;
  std::optional<std::pair<std::vector<ReplicaStatus>, std::vector<std::int64_t>>> status;
  std::optional<ResumePoint> truncate_to;
  std::string resumed_by;  // a resumed run's command line
  std::string run_line;    // its line of the `runs` attribute
};

class RunFileWriter final : public HistoryWriter {
 public:
  // `copies`: one or two open copies, equal in content; `shown`: the one `path` links to.
  RunFileWriter(std::string path, std::vector<std::unique_ptr<Hdf5Writer>> copies, int shown)
      : path_(std::move(path)), copies_(std::move(copies)), shown_(shown) {}

  void append_history(std::int64_t step, const std::vector<StepMetrics>& per_replica) override {
    check_usable("append_history");
    copies_[0]->check_history(per_replica);
    pending_.rows.emplace_back(step, per_replica);
  }

  void append_checkpoint(std::int64_t step, const std::vector<Diagnostics>& diag,
                         const std::vector<ReplicaWeights>& weights, const std::vector<ReplicaModel>* state) override {
    check_usable("append_checkpoint");
    copies_[0]->check_checkpoint(diag, weights);
    if (state) copies_[0]->check_state(*state);
    pending_.checkpoint_step = step;
    pending_.diag = &diag;
    pending_.weights = &weights;
    if (state) pending_.next_iteration = step, pending_.state = state;
    commit();
  }

  void save_resume_point(std::int64_t next_iteration, const std::vector<ReplicaModel>& state) override {
    check_usable("save_resume_point");
    copies_[0]->check_state(state);
    pending_.next_iteration = next_iteration;
    pending_.state = &state;
    commit();
  }

  void set_replica_status(const std::vector<ReplicaStatus>& status,
                          const std::vector<std::int64_t>& diverged_step) override {
    check_usable("set_replica_status");
    copies_[0]->check_status(status, diverged_step);
    pending_.status.emplace(status, diverged_step);
  }

  // Resumes: both copies truncated to the saved point, the resuming command line recorded.
  void begin_resume(const ResumePoint& point, const std::string& command_line, const std::string& run_line) {
    pending_.run_line = run_line;
    pending_.truncate_to = point;
    pending_.resumed_by = command_line;
    commit();
  }

  void close() override {
    if (closed_) return;
    check_usable("close");
    closed_ = true;
    // The last rows and the status go to the copy not shown, which is closed complete and then
    // renamed over the link: OUT.h5 is the finished file, the other copy goes.
    const int last = hidden();
    guarded(last, [&] {
      apply(*copies_[last], pending_);
      copies_[last]->close();
    });
    if (::rename(copies_[last]->path().c_str(), path_.c_str()) != 0)
      fail_errno("cannot rename " + copies_[last]->path() + " to " + path_);
    copies_.clear();
    std::error_code ec;
    for (const std::string& c : run_file_copies(path_)) fs::remove(c, ec);
  }

 private:
  int hidden() const { return copies_.size() == 1 ? 0 : 1 - shown_; }

  void check_usable(const char* what) const {
    if (closed_) throw std::logic_error("HDF5 writer for " + path_ + ": " + what + " after close()");
    if (failed_) throw std::logic_error("HDF5 writer for " + path_ + ": " + what + " after a failed write");
  }

  // Runs `body` on copy k; a failure (a full disk, a file size limit) names the copy, and leaves
  // the writer unusable: OUT.h5 still shows the last commit.
  template <class Body>
  void guarded(int k, Body body) {
    try {
      body();
    } catch (const std::exception& e) {
      failed_ = true;
      throw std::runtime_error("writing " + copies_[k]->path() + " failed: " + short_write_error(e.what()) + "; " +
                               path_ + " keeps its last save point: make room, then continue with --resume");
    }
  }

  static void apply(Hdf5Writer& w, const Delta& d) {
    if (d.truncate_to) w.truncate(d.truncate_to->history_rows, d.truncate_to->checkpoint_rows);
    if (!d.resumed_by.empty()) {
      h5::File& f = w.file();
      const std::int64_t n = f.has_attribute("resume_count") ? f.int_attribute("resume_count") : 0;
      f.set_attribute("resume_count", n + 1);
      f.set_attribute("resumed_by", d.resumed_by);
      // Every run that wrote the file, not only the first (whose backend, device and command line
      // the attributes of those names keep).
      const std::string before = f.has_attribute("runs") ? f.string_attribute("runs") : std::string();
      f.set_attribute("runs", before.empty() ? d.run_line : before + "\n" + d.run_line);
    }
    for (const auto& [step, metrics] : d.rows) w.append_history(step, metrics);
    if (d.checkpoint_step >= 0) w.append_checkpoint(d.checkpoint_step, *d.diag, *d.weights);
    if (d.state) w.write_resume_state(d.next_iteration, *d.state);
    if (d.status) w.set_replica_status(d.status->first, d.status->second);
  }

  void commit() {
    const int first = hidden();
    guarded(first, [&] {
      apply(*copies_[first], pending_);
      copies_[first]->file().sync();
    });
    if (copies_.size() == 2) {
      point_link(path_, copies_[first]->path());
      shown_ = first;
      const int other = 1 - first;
      guarded(other, [&] {
        apply(*copies_[other], pending_);
        copies_[other]->file().flush();
      });
    }
    pending_ = Delta{};
  }

  std::string path_;
  std::vector<std::unique_ptr<Hdf5Writer>> copies_;
  int shown_ = 0;
  Delta pending_;
  bool closed_ = false, failed_ = false;
};

}  // namespace

std::unique_ptr<HistoryWriter> create_hdf5_writer(const std::string& path, const Sweep& sweep,
                                                  const std::vector<ReplicaRow>& rows, const RunInfo& info,
                                                  bool overwrite, bool two_copies) {
  std::error_code ec;
  const auto copies = run_file_copies(path);
  const bool left_copies = fs::exists(copies[0], ec) || fs::exists(copies[1], ec);
  if (!overwrite && (fs::exists(fs::symlink_status(path, ec)) || left_copies))
    throw std::runtime_error("output file " + path + (left_copies ? " holds an unfinished run" : " already exists") +
                             "; pass --force to overwrite it" + (left_copies ? " (or --resume to continue it)" : ""));
  fs::path dir = fs::path(path).parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec))
    throw std::runtime_error("cannot create output file " + path + ": directory " + dir.string() +
                             " does not exist");
  // Whatever is at the copies' names now belongs to no run we keep (the checks above): remove the
  // entries themselves, so that a symlink planted there is not followed and its target not
  // overwritten.
  for (const std::string& c : copies) fs::remove(c, ec);  // a link itself, never its target
  bool created = false;  // set once a copy exists: only then is there ours to remove on failure
  try {
    h5::silence_errors();
    std::vector<std::unique_ptr<Hdf5Writer>> writers;
    try {
      writers.push_back(std::make_unique<Hdf5Writer>(copies[0], sweep, rows, info));
    } catch (const std::exception& e) {
      created = fs::exists(copies[0], ec);
      std::string what = e.what();
      if (what.find("H5Fcreate") != std::string::npos)
        throw std::runtime_error("cannot create output file " + path + " (is the directory writable?): " + what);
      throw;
    }
    created = true;
    writers[0]->file().sync();
    if (two_copies) {
      writers.clear();  // closes copy a, so that its bytes can be copied
      copy_file(copies[0], copies[1]);
      writers.push_back(std::make_unique<Hdf5Writer>(copies[0]));
      writers.push_back(std::make_unique<Hdf5Writer>(copies[1]));
    }
    point_link(path, copies[0]);  // replaces an existing file only now (--force)
    return std::make_unique<RunFileWriter>(path, std::move(writers), 0);
  } catch (const std::exception& e) {
    if (created)
      for (const std::string& c : copies) fs::remove(c, ec);  // never leave a half-written file behind
    if (!dynamic_cast<const DiskFull*>(&e) && disk_full(copies[0], e.what(), 0))
      throw DiskFull(full_disk_message(copies[0], "nothing was saved yet: make room, then run the same command again"));
    throw;
  }
}

std::unique_ptr<HistoryWriter> resume_hdf5_writer(const std::string& path, const ResumePoint& point,
                                                  const RunInfo& info) {
  h5::silence_errors();
  std::error_code ec;
  const auto copies = run_file_copies(path);
  // The copy OUT.h5 shows is the one to continue; the other is made equal to it.
  int shown = 0;
  if (fs::is_symlink(path, ec)) {
    const std::string target = fs::read_symlink(path, ec).filename().string();
    if (target == fs::path(copies[1]).filename().string()) shown = 1;
    else if (target != fs::path(copies[0]).filename().string())
      throw InputError(path + " links to " + target + ", not to one of its run's copies " + copies[0] + " or " +
                       copies[1]);
  } else {
    copy_file(path, copies[0]);  // a plain file (copied out by hand): continue in copies
    point_link(path, copies[0]);
  }
  copy_file(copies[shown], copies[1 - shown]);
  std::vector<std::unique_ptr<Hdf5Writer>> writers;
  writers.push_back(std::make_unique<Hdf5Writer>(copies[0]));
  writers.push_back(std::make_unique<Hdf5Writer>(copies[1]));
  auto writer = std::make_unique<RunFileWriter>(path, std::move(writers), shown);
  writer->begin_resume(point, info.command_line.empty() ? "(unknown)" : info.command_line,
                       run_log_line("resume", info));
  return writer;
}

bool has_resume_point(const std::string& path) {
  h5::silence_errors();
  return h5::File::open_read_only(path).is_group("resume");
}

SavedState read_saved_state(const std::string& path) {
  h5::silence_errors();
  const h5::File f = h5::File::open_read_only(path);
  if (!f.is_group("resume"))
    throw InputError(path + " holds no resume state (/resume): it was written by a dalesim without --resume or "
                            "killed before its first checkpoint; start it again with --force");
  const h5::Group g = f.open_group("resume");
  SavedState s;
  s.point.next_iteration = g.int_attribute("next_iteration");
  s.point.history_rows = static_cast<std::size_t>(g.int_attribute("history_rows"));
  s.point.checkpoint_rows = static_cast<std::size_t>(g.int_attribute("checkpoint_rows"));
  const std::vector<std::int64_t> offset = g.open_dataset("offset").read_int64s();
  const std::vector<double> params = g.open_dataset("params").read_doubles();
  const std::vector<double> m1 = g.open_dataset("moment1").read_doubles();
  const std::vector<double> m2 = g.open_dataset("moment2").read_doubles();
  s.adam_steps = g.open_dataset("adam_steps").read_int64s();
  s.diverged_step = g.open_dataset("diverged_step").read_int64s();
  const std::size_t R = offset.empty() ? 0 : offset.size() - 1;
  if (s.adam_steps.size() != R || s.diverged_step.size() != R || m1.size() != params.size() ||
      m2.size() != params.size())
    throw InputError(path + ": its resume state (/resume) is inconsistent: datasets of different sizes");
  for (std::size_t r = 0; r < R; ++r) {
    const auto begin = offset[r], end = offset[r + 1];
    if (begin < 0 || end < begin || end > static_cast<std::int64_t>(params.size()))
      throw InputError(path + ": its resume state (/resume) is inconsistent: offsets out of range");
    s.params.emplace_back(params.begin() + begin, params.begin() + end);
    s.moment1.emplace_back(m1.begin() + begin, m1.begin() + end);
    s.moment2.emplace_back(m2.begin() + begin, m2.begin() + end);
  }
  if (g.exists("mask_rec")) {
    const std::vector<std::int64_t> mo = g.open_dataset("mask_offset").read_int64s();
    const std::vector<double> masks = g.open_dataset("mask_rec").read_doubles();
    if (mo.size() != R + 1)
      throw InputError(path + ": its resume state (/resume) is inconsistent: mask offsets for another replica count");
    for (std::size_t r = 0; r < R; ++r) {
      if (mo[r] < 0 || mo[r + 1] < mo[r] || mo[r + 1] > static_cast<std::int64_t>(masks.size()))
        throw InputError(path + ": its resume state (/resume) is inconsistent: mask offsets out of range");
      s.mask_rec.emplace_back(masks.begin() + mo[r], masks.begin() + mo[r + 1]);
    }
  }
  return s;
}

ResumePoint read_resume_point(const std::string& path, std::vector<ReplicaModel>& models) {
  SavedState s = read_saved_state(path);
  if (s.params.size() != models.size())
    throw InputError(path + ": its resume state holds " + std::to_string(s.params.size()) +
                     " replicas, the sweep has " + std::to_string(models.size()));
  for (std::size_t r = 0; r < models.size(); ++r) {
    ReplicaModel& m = models[r];
    if (s.params[r].size() != m.layout.size)
      throw InputError(path + ": replica at position " + std::to_string(r) + " has " +
                       std::to_string(s.params[r].size()) + " saved parameters, the sweep's model has " +
                       std::to_string(m.layout.size));
    m.params = std::move(s.params[r]);
    m.moment1 = std::move(s.moment1[r]);
    m.moment2 = std::move(s.moment2[r]);
    m.adam_steps = s.adam_steps[r];
    m.diverged_step = s.diverged_step[r];
    if (!s.mask_rec.empty() && !s.mask_rec[r].empty()) {  // empty: merged from a file without masks
      if (s.mask_rec[r].size() != m.mask_rec.size())
        throw InputError(path + ": replica at position " + std::to_string(r) + " has a saved recurrent mask of " +
                         std::to_string(s.mask_rec[r].size()) + " entries, the sweep's model " +
                         std::to_string(m.mask_rec.size()));
      m.mask_rec = std::move(s.mask_rec[r]);
    }
  }
  return s.point;
}

}  // namespace dalesim
