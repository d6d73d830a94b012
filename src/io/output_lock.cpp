// OutputLock (output_lock.hpp): flock on OUT.h5.lock. The holder removes the lock file before it
// releases the lock; a process that locked a file removed meanwhile sees that the path no longer
// names its file and tries again, so two processes never both hold the lock of one output.
#include "io/output_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "dalesim/config.hpp"

namespace dalesim {

namespace {

std::string owner_of(const std::string& path) {
  std::ifstream in(path);
  std::string pid;
  std::getline(in, pid);
  return pid.empty() ? "unknown pid" : "pid " + pid;
}

}  // namespace

OutputLock::OutputLock(const std::string& output) : path_(lock_path(output)) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
      throw ConfigError("--output", output, "a path whose directory takes the lock file " + path_,
                        std::string("creating it failed: ") + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err != EWOULDBLOCK)
        throw ConfigError("--output", output, "a path whose lock file " + path_ + " can be locked",
                          std::string("flock failed: ") + std::strerror(err));
      throw ConfigError("--output", output, "an output no other dalesim process is writing",
                        "another dalesim process (" + owner_of(path_) + ") is writing " + output +
                            "; wait for it to finish, or stop it first (it saves and exits on SIGTERM) and continue "
                            "with --resume");
    }
    struct stat held{}, named{};
    if (::fstat(fd, &held) == 0 && ::stat(path_.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev) {
      const std::string pid = std::to_string(::getpid()) + "\n";
      if (::ftruncate(fd, 0) != 0 || ::write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
        // The pid is only for the message of a refused second run; the lock itself holds.
      }
      fd_ = fd;
      return;
    }
    ::close(fd);  // the previous holder removed this file after we opened it: lock the new one
  }
  throw ConfigError("--output", output, "a lock file that stays in place", path_ + " keeps being replaced");
}

OutputLock::~OutputLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::close(fd_);
}

}  // namespace dalesim
