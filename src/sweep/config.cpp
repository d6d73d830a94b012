// Names, formatting and errors shared by everything that reads or writes a config.
#include "dalesim/config.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace dalesim {

namespace {
std::string build_message(const std::string& key, const std::string& value, const std::string& allowed,
                          const std::string& hint) {
  std::string m = "invalid config: " + key;
  if (!value.empty()) m += " = " + value;
  if (!allowed.empty()) m += "; allowed: " + allowed;
  if (!hint.empty()) m += " (" + hint + ")";
  return m;
}

std::string format_double(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  // Shortest representation that round-trips.
  for (int prec = 1; prec <= 17; ++prec) {
    char b2[64];
    std::snprintf(b2, sizeof b2, "%.*g", prec, d);
    const bool exponent = std::strchr(b2, 'e') != nullptr;
    const double mag = std::fabs(d);
    // "100.0" rather than "1e+02": exponents only for very large or very small magnitudes.
    if (exponent && mag >= 1e-5 && mag < 1e16) continue;
    if (std::strtod(b2, nullptr) == d) {
      std::string s = b2;
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
      return s;
    }
  }
  return buf;
}
}  // namespace

namespace {

// A key as a reader can see it: control characters and invisible code points (zero-width spaces
// and joiners, bidirectional marks, the byte-order mark) written as \u{XXXX}, so that a key that
// looks right but is not can be told apart.
std::string visible(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + len > s.size()) len = 1;
    std::uint32_t cp = len == 1 ? c : c & (0x7f >> len);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    const bool invisible = cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || (cp >= 0x200b && cp <= 0x200f) ||
                           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) || cp == 0xfeff;
    if (invisible) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u{%04X}", static_cast<unsigned>(cp));
      out += buf;
    } else {
      out.append(s, i, len);
    }
    i += len;
  }
  return out;
}

}  // namespace

ConfigError::ConfigError(std::string key, std::string value, std::string allowed, std::string hint)
    : InputError(build_message(visible(key), value, allowed, hint)),
      key_(std::move(key)),
      value_(std::move(value)),
      allowed_(std::move(allowed)),
      hint_(std::move(hint)) {}

std::string format_value(const Value& v) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return format_double(d); }
    std::string operator()(const std::string& s) const { return "\"" + s + "\""; }
    std::string operator()(const std::vector<double>& xs) const {
      std::string out = "[";
      for (size_t i = 0; i < xs.size(); ++i) out += (i ? ", " : "") + format_double(xs[i]);
      return out + "]";
    }
  };
  return std::visit(Visitor{}, v);
}

int ModelConfig::n_exc() const {
  if (dann_part()) return n_units;
  if (ei_ratio > 0) return n_units - static_cast<int>(std::ceil(n_units / (ei_ratio + 1)));
  return static_cast<int>(std::lround(e_fraction * n_units));
}

const char* to_string(Arch a) {
  switch (a) {
    case Arch::free: return "free";
    case Arch::colei: return "colei";
    case Arch::mix: return "mix";
    case Arch::dann: return "dann";
  }
  return "?";
}
const char* to_string(DalePart d) { return d == DalePart::colei ? "colei" : "dann"; }
const char* to_string(Rule r) {
  static const char* names[] = {"gd", "eg", "gd_sign", "md"};
  return names[static_cast<int>(r)];
}
const char* to_string(Phi p) {
  switch (p) {
    case Phi::relu: return "relu";
    case Phi::tanh: return "tanh";
    case Phi::softplus: return "softplus";
    case Phi::sigmoid: return "sigmoid";
  }
  return "?";
}
const char* to_string(Optim o) { return o == Optim::sgd ? "sgd" : "adam"; }
const char* to_string(DaleMode d) {
  static const char* names[] = {"clamp", "abs", "relu"};
  return names[static_cast<int>(d)];
}
const char* to_string(AlphaPer a) { return a == AlphaPer::network ? "network" : "neuron"; }
const char* to_string(AlphaForm a) { return a == AlphaForm::sigmoid ? "sigmoid" : "clamp"; }
const char* to_string(FreeInit f) {
  static const char* names[] = {"gaussian", "orthogonal", "uniform", "lognormal", "lowrank"};
  return names[static_cast<int>(f)];
}
const char* to_string(LognormalSigns s) { return s == LognormalSigns::dale ? "dale" : "random"; }
const char* to_string(SpectrumFrom s) {
  static const char* names[] = {"none", "gaussian", "orthogonal", "uniform", "lognormal", "lowrank", "colei"};
  return names[static_cast<int>(s)];
}
const char* to_string(Population p) { return p == Population::all ? "all" : "exc"; }
const char* to_string(InputSign s) { return s == InputSign::free ? "free" : "positive"; }
const char* to_string(Precision p) { return p == Precision::f32 ? "float" : "double"; }
const char* to_string(CudaKernel k) {
  static const char* names[] = {"auto", "v1", "v2", "v3"};
  return names[static_cast<int>(k)];
}

std::uint64_t derive_seed(std::int64_t seed, const char* stream) {
  // FNV-1a over the stream name, mixed with the seed by splitmix64's finaliser.
  std::uint64_t h = 1469598103934665603ULL;
  for (const char* c = stream; *c; ++c) h = (h ^ static_cast<unsigned char>(*c)) * 1099511628211ULL;
  std::uint64_t z = h ^ (static_cast<std::uint64_t>(seed) + 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace dalesim
