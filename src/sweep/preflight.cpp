// Before a run allocates or writes anything: does the estimated training memory fit, and can the
// output file be created? A failure here is bad input (exit 2) with nothing left on disk.
#include "sweep/preflight.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "dalesim/backend.hpp"
#include "dalesim/model.hpp"
#include "dalesim/task.hpp"

namespace dalesim {

namespace {

namespace fs = std::filesystem;

constexpr const char* kLimitVariable = "DALESIM_MEMORY_LIMIT_BYTES";
constexpr double kUnlimited = std::numeric_limits<double>::infinity();

// The first number in a small file (cgroup limits); `unlimited` for "max" or an unreadable file.
double read_number_file(const char* path, double unlimited) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word) || word == "max") return unlimited;
  char* end = nullptr;
  const double v = std::strtod(word.c_str(), &end);
  return end && *end == '\0' ? v : unlimited;
}

// MemAvailable of /proc/meminfo in bytes (the kernel's estimate of what can be allocated without
// swapping); NaN where the file or the line is missing.
double meminfo_available() {
  std::ifstream in("/proc/meminfo");
  std::string name;
  double kib = 0;
  std::string unit;
  while (in >> name >> kib) {
    std::getline(in, unit);
    if (name == "MemAvailable:") return kib * 1024;
  }
  return std::nan("");
}

// What the cgroup still lets this process allocate (a container's limit is often far below the
// machine's memory): v2 memory.max - memory.current, else v1 limit - usage; infinity when unlimited.
double cgroup_room() {
  const double max2 = read_number_file("/sys/fs/cgroup/memory.max", kUnlimited);
  if (std::isfinite(max2)) return std::max(0.0, max2 - read_number_file("/sys/fs/cgroup/memory.current", 0));
  const double max1 = read_number_file("/sys/fs/cgroup/memory/memory.limit_in_bytes", kUnlimited);
  // v1 writes "unlimited" as a page-rounded LONG_MAX.
  if (std::isfinite(max1) && max1 < 1e18)
    return std::max(0.0, max1 - read_number_file("/sys/fs/cgroup/memory/memory.usage_in_bytes", 0));
  return kUnlimited;
}

MemoryBudget host_memory() {
  MemoryBudget b;
  double avail = meminfo_available();
  b.source = "host memory available (MemAvailable in /proc/meminfo)";
  if (!std::isfinite(avail)) {
    const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    avail = pages > 0 && page > 0 ? static_cast<double>(pages) * page : kUnlimited;
    b.source = "host memory available (sysconf _SC_AVPHYS_PAGES)";
  }
  const double room = cgroup_room();
  if (room < avail) {
    avail = room;
    b.source = "memory left under this process's cgroup limit (memory.max - memory.current)";
  }
  b.bytes = avail;
  return b;
}

// A task's shape depends on its name, its parameters and dt, never on the batch size: one task per
// distinct key, so a sweep of many seeds builds (and, for data tasks, loads) each task once.
std::string shape_key(const ReplicaConfig& c) {
  std::string k = c.task.name + "|" + format_value(Value{c.model.dt});
  for (const auto& [name, v] : c.task.params) k += "|" + name + "=" + format_value(v);
  return k;
}

struct TaskShape {
  int n_inputs = 0, n_outputs = 0, n_steps = 0;
};

std::string replica_text(const ReplicaConfig& c, int n_steps) {
  return "model.n_units = " + std::to_string(c.model.n_units) + ", task.batch = " + std::to_string(c.task.batch) +
         ", " + std::to_string(n_steps) + " steps" + (c.train.precision == Precision::f64 ? ", double" : "");
}

}  // namespace

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) {
    bytes /= 1024;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
  return buf;
}

MemoryBudget available_memory(const std::string& backend) {
  if (const char* env = std::getenv(kLimitVariable); env && *env) {
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (errno || !end || *end != '\0' || v == 0 || env[0] == '-')
      throw ConfigError(kLimitVariable, env, "a positive integer number of bytes",
                        "unset it to use the memory the backend has");
    return MemoryBudget{static_cast<double>(v), std::string(kLimitVariable) + " = " + env};
  }
  if (backend == "cuda" || backend == "auto") {
    // Without a usable device `cuda` fails later naming the CUDA error and `auto` runs on the host.
    const CudaDeviceInfo dev = query_cuda_device();
    if (dev.usable && dev.total_bytes > 0)
      return MemoryBudget{static_cast<double>(dev.total_bytes), "total memory of CUDA device " + dev.name};
  }
  return host_memory();
}

double estimate_sweep_bytes(const Sweep& sweep, std::size_t* largest, double* largest_bytes) {
  std::map<std::string, TaskShape> shapes;
  double total = 0, most = -1;
  std::size_t most_at = 0;
  for (std::size_t r = 0; r < sweep.replicas.size(); ++r) {
    const ReplicaConfig& c = sweep.replicas[r];
    auto it = shapes.find(shape_key(c));
    if (it == shapes.end()) {
      const auto task = make_task(c.task, c.model.dt);
      it = shapes.emplace(shape_key(c), TaskShape{task->n_inputs(), task->n_outputs(), task->n_steps()}).first;
    }
    const TaskShape& s = it->second;
    // In double: a million replicas of the largest allowed shape overflow size_t.
    const double bytes = static_cast<double>(estimate_training_bytes(c, s.n_inputs, s.n_outputs, s.n_steps));
    total += bytes;
    if (bytes > most) most = bytes, most_at = r;
  }
  if (largest) *largest = most_at;
  if (largest_bytes) *largest_bytes = std::max(most, 0.0);
  return total;
}

void check_memory_fits(const Sweep& sweep, const std::string& backend) {
  if (sweep.replicas.empty()) return;  // refused elsewhere, with its own message
  std::size_t at = 0;
  double one = 0;
  const double total = estimate_sweep_bytes(sweep, &at, &one);
  const MemoryBudget budget = available_memory(backend);
  if (total <= budget.bytes) return;
  const ReplicaConfig& big = sweep.replicas[at];
  const int n_steps = make_task(big.task, big.model.dt)->n_steps();
  const std::string allowed = "at most " + format_bytes(budget.bytes) + ", the " + budget.source;
  if (one > budget.bytes)
    throw ConfigError("sweep",
                      "replica " + std::to_string(at) + " (" + replica_text(big, n_steps) + ") needs an estimated " +
                          format_bytes(one) + " to train",
                      allowed,
                      "one replica alone does not fit, so --shard cannot help: lower task.batch, the task's length "
                      "or model.n_units");
  const double shards = std::ceil(total / budget.bytes);
  throw ConfigError(
      "sweep",
      std::to_string(sweep.replicas.size()) + " replicas needing an estimated " + format_bytes(total) +
          " to train (the largest, replica " + std::to_string(at) + ", " + format_bytes(one) + ")",
      allowed,
      "train fewer replicas per process: --shard K/N with N >= " + std::to_string(static_cast<long long>(shards)) +
          ", fewer seeds or grid values, or a smaller task.batch, task length or model.n_units");
}

void check_output_path(const std::string& path, bool force) {
  const std::string key = "--output";
  if (path.empty()) throw ConfigError(key, "\"\"", "the path of the HDF5 file to write");
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::is_directory(st))
    throw ConfigError(key, path, "a file path, not a directory",
                      path + " is a directory; name a file inside it, e.g. " + (fs::path(path) / "out.h5").string());
  const bool exists = fs::exists(st);
  if (exists && !force) throw ConfigError(key, path, "a path that does not exist yet", "pass --force to overwrite it");

  const fs::path out(path);
  const fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  const fs::file_status dst = fs::status(dir, ec);
  if (!fs::exists(dst)) {
    // A regular file somewhere above (file/out.h5, file/sub/out.h5) reads as ENOTDIR: say so.
    for (fs::path up = dir; !up.empty() && up != up.parent_path(); up = up.parent_path())
      if (fs::is_regular_file(up, ec) || (fs::exists(up, ec) && !fs::is_directory(up, ec)))
        throw ConfigError(key, path, "a file in an existing directory", up.string() + " is a file, not a directory");
    throw ConfigError(key, path, "a file in an existing directory", "directory " + dir.string() + " does not exist");
  }
  if (!fs::is_directory(dst))
    throw ConfigError(key, path, "a file in an existing directory", dir.string() + " is a file, not a directory");

  if (exists) {
    // --force: the file will be replaced. Opening it for writing (no truncation) changes nothing.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
      throw ConfigError(key, path, "a file that can be overwritten (--force)",
                        std::string("cannot open it for writing: ") + std::strerror(errno));
    ::close(fd);
  }
  // Permission bits do not stop root, but read-only mounts, /proc and full quotas do: the only
  // reliable test is to create a file there (removed at once; the output itself is not touched).
  // The longest name a run creates beside OUT is OUT.partial-a (10 bytes more): say so here,
  // instead of failing halfway. The probe's own name is short, whatever the output's.
  const long name_max = ::pathconf(dir.c_str(), _PC_NAME_MAX);
  const std::size_t longest = out.filename().string().size() + std::string(".partial-a").size();
  if (name_max > 0 && longest > static_cast<std::size_t>(name_max))
    throw ConfigError(key, path, "a file name of at most " + std::to_string(name_max - 10) + " bytes",
                      "the run also creates " + out.filename().string().substr(0, 12) + "....partial-a/-b beside it, and " +
                          dir.string() + " allows names of " + std::to_string(name_max) + " bytes");
  const std::string base = (dir / (".dalesim-probe-" + std::to_string(::getpid()))).string();
  for (int attempt = 0;; ++attempt) {
    const std::string probe = base + (attempt ? "-" + std::to_string(attempt) : "");
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::close(fd);
      ::unlink(probe.c_str());
      return;
    }
    if (errno == EEXIST && attempt < 8) continue;  // never remove a file this process did not create
    throw ConfigError(key, path, "a file in a directory where files can be created",
                      "cannot create a file in " + dir.string() + ": " + std::strerror(errno));
  }
}

}  // namespace dalesim
