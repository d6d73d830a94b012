// Counter-based random numbers (Philox4x32-10): the value at (key, counter) is a pure function,
// so every backend and every thread regenerates the same stream without shared state.
#pragma once

#include <cmath>
#include <cstdint>

#include "dalesim/host_device.hpp"

namespace dalesim {

struct Philox4x32 {
  std::uint32_t v[4];
};

DALESIM_HOST_DEVICE inline void philox_mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                               std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

// Philox4x32 with 10 rounds (Salmon et al., SC'11), keyed by a 64-bit key.
DALESIM_HOST_DEVICE inline Philox4x32 philox4x32(std::uint64_t key, std::uint32_t c0, std::uint32_t c1,
                                                 std::uint32_t c2, std::uint32_t c3) {
  std::uint32_t k0 = static_cast<std::uint32_t>(key), k1 = static_cast<std::uint32_t>(key >> 32);
  std::uint32_t x0 = c0, x1 = c1, x2 = c2, x3 = c3;
  for (int r = 0; r < 10; ++r) {
    std::uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, x0, hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, x2, hi1, lo1);
    const std::uint32_t n0 = hi1 ^ x1 ^ k0, n2 = hi0 ^ x3 ^ k1;
    x0 = n0;
    x1 = lo1;
    x2 = n2;
    x3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4x32{{x0, x1, x2, x3}};
}

// Uniform on (0, 1): 24 random bits, never exactly 0 or 1 (safe for log).
DALESIM_HOST_DEVICE inline double u32_to_unit(std::uint32_t x) {
  return ((x >> 8) + 0.5) * (1.0 / 16777216.0);
}

// A stream of random numbers addressed by (key, stream, index): index i of stream s is
// philox(key, {i_lo, i_hi, s_lo, s_hi}). Streams name what is drawn (a tensor, a trial field).
struct CounterRng {
  std::uint64_t key;
  std::uint64_t stream;

  DALESIM_HOST_DEVICE Philox4x32 block(std::uint64_t index) const {
    return philox4x32(key, static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
                      static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32));
  }
  // Uniform (0, 1) number at position `index`.
  DALESIM_HOST_DEVICE double uniform(std::uint64_t index) const { return u32_to_unit(block(index).v[0]); }
  // Standard normal at position `index` (Box-Muller on two words of one block).
  DALESIM_HOST_DEVICE double normal(std::uint64_t index) const {
    const Philox4x32 b = block(index);
    const double u1 = u32_to_unit(b.v[0]), u2 = u32_to_unit(b.v[1]);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Exponential with mean `scale`.
  DALESIM_HOST_DEVICE double exponential(std::uint64_t index, double scale) const {
    return -scale * std::log(uniform(index));
  }
  // Integer uniform in [0, n).
  DALESIM_HOST_DEVICE std::uint32_t below(std::uint64_t index, std::uint32_t n) const {
    return static_cast<std::uint32_t>((static_cast<std::uint64_t>(block(index).v[2]) * n) >> 32);
  }
};

// Combines a seed with a small integer (iteration, tensor id) into a new key: splitmix64.
DALESIM_HOST_DEVICE inline std::uint64_t mix_key(std::uint64_t seed, std::uint64_t x) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (x + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace dalesim
