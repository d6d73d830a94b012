// Where the tests find the dalesim binary and the source tree: compiled in, overridable by the
// environment (DALESIM_BINARY, DALESIM_SOURCE_DIR) for test binaries run from another checkout.
#pragma once

#include <cstdlib>
#include <string>

namespace dalesim::test {

inline std::string binary_path() {
  const char* env = std::getenv("DALESIM_BINARY");
  return env && *env ? env : DALESIM_BINARY;
}

inline std::string source_dir() {
  const char* env = std::getenv("DALESIM_SOURCE_DIR");
  return env && *env ? env : DALESIM_SOURCE_DIR;
}

}  // namespace dalesim::test
