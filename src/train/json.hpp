// The few JSON pieces the progress log and the bench output write by hand.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

namespace dalesim {

// JSON has no NaN or infinity: a value that is not finite is written as null.
inline std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

}  // namespace dalesim
