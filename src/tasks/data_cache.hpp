// A process-wide cache of data sets loaded from files, so that the many Task objects of a sweep
// (one per replica stream) share one copy. Entries are keyed by the files' paths, sizes and
// modification times, so a changed file is read again.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace dalesim {

// A key naming `paths` as they are now on disk (missing files count as size -1).
inline std::string file_state_key(const std::vector<std::string>& paths) {
  std::string key;
  for (const std::string& p : paths) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(p, ec);
    const auto time = std::filesystem::last_write_time(p, ec);
    key += p + "|" + (ec ? "-1" : std::to_string(size) + "|" + std::to_string(time.time_since_epoch().count())) + ";";
  }
  return key;
}

// Returns the cached value for `key`, calling `load` (under the lock) the first time. Values live
// until the process ends.
template <class T>
std::shared_ptr<const T> cached_load(const std::string& key, const std::function<std::shared_ptr<const T>()>& load) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const T>> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  std::shared_ptr<const T> value = load();  // throws for bad files: nothing is cached then
  cache.emplace(key, value);
  return value;
}

}  // namespace dalesim
