// Reading a task's parameters from TaskConfig::params against its ParamSpec list, with errors that
// name `task.<key>`, the value and what is allowed.
#pragma once

#include <string>
#include <vector>

#include "dalesim/task.hpp"

namespace dalesim {

class TaskParams {
 public:
  // Checks that every given key is known and of the right type and range. Throws ConfigError.
  TaskParams(const TaskConfig& cfg, const std::vector<ParamSpec>& specs);

  std::int64_t get_int(const std::string& key) const;
  double get_double(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::vector<double> get_list(const std::string& key) const;

 private:
  const Value& get(const std::string& key) const;
  const TaskConfig& cfg_;
  const std::vector<ParamSpec>& specs_;
};

// Converts a period in ms to a whole number of steps of `dt` ms (rounded, at least `min_steps`).
int period_steps(double ms, double dt, int min_steps, const std::string& key);

}  // namespace dalesim
