// libFuzzer target: bytes as a sweep file's text -> parse, expand the grid, validate every replica
// and the run settings, as `dalesim run` and `dalesim validate` do before anything runs.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dalesim/sweep.hpp"
#include "sweep/toml.hpp"
#include "train/driver.hpp"

namespace {

// The parser allows up to 1e6 replicas (several GB of configs); a fuzzed input must stay small
// and fast, so bigger sweeps are skipped before parsing (tests/test_sweep.cpp covers the limit).
constexpr std::size_t kMaxReplicas = 512;

std::size_t saturating_mul(std::size_t a, std::size_t b) {
  return (b != 0 && a > SIZE_MAX / b) ? SIZE_MAX : a * b;
}

// The largest array length among the leaves of `node` (nested tables flatten into dotted keys).
std::size_t longest_list(const toml::node& node) {
  if (const toml::array* a = node.as_array()) return a->size();
  std::size_t n = 1;
  if (const toml::table* t = node.as_table())
    for (auto&& [k, child] : *t) n = std::max(n, longest_list(child));
  return n;
}

// Product of the list lengths of the grid leaves.
std::size_t grid_size(const toml::node& node) {
  if (const toml::array* a = node.as_array()) return a->size();
  std::size_t n = 1;
  if (const toml::table* t = node.as_table())
    for (auto&& [k, child] : *t) n = saturating_mul(n, grid_size(child));
  return n;
}

// An upper bound on the replicas the sweep expands to, over-counting where unsure (each zip
// counts its longest list; bad syntax counts 1, since the parser rejects it at once).
std::size_t replica_bound(const std::string& text) {
  toml::table root;
  try {
    root = dalesim::parse_toml(text, "fuzz.toml");
  } catch (const dalesim::ConfigError&) {
    return 1;
  }
  const toml::table* sweep = root["sweep"].as_table();
  if (!sweep) return 1;
  std::size_t n = 1;
  for (auto&& [k, node] : *sweep) {
    if (k.str() == "seeds") {
      if (auto i = node.as_integer())
        n = saturating_mul(n, i->get() > 0 ? static_cast<std::size_t>(i->get()) : 1);
      else
        n = saturating_mul(n, longest_list(node));
    } else if (k.str() == "grid") {
      n = saturating_mul(n, grid_size(node));
    } else if (const toml::array* zips = node.as_array(); zips && zips->is_array_of_tables()) {
      for (const toml::node& z : *zips) n = saturating_mul(n, longest_list(z));
    } else {
      n = saturating_mul(n, longest_list(node));
    }
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (replica_bound(text) > kMaxReplicas) return 0;
  try {
    const dalesim::Sweep sweep = dalesim::parse_sweep(text, "fuzz.toml");
    dalesim::check_run_settings(sweep);
  } catch (const dalesim::InputError&) {
    // ConfigError and InputError are the documented answers to bad input; anything else escapes
    // and libFuzzer reports it as a crash.
  }
  return 0;
}
