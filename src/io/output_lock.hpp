// The lock a `dalesim run` holds on its output path for as long as it runs: OUT.h5.lock, locked
// with flock and holding the owner's pid. Taken before any file of the output is read for the
// decision or touched, so a second run on the same output (with --force, --resume or neither) is
// refused instead of truncating the live copies.
#pragma once

#include <string>

namespace dalesim {

class OutputLock {
 public:
  // Takes the lock of `output` or throws ConfigError (exit 2): "another dalesim process (pid N)
  // is writing OUT.h5". Never waits.
  explicit OutputLock(const std::string& output);
  ~OutputLock();  // removes OUT.h5.lock, then releases it
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

  static std::string lock_path(const std::string& output) { return output + ".lock"; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace dalesim
