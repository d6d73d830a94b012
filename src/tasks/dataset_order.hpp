// Which stored item a training trial reads: epochs over a dataset in keyed pseudo-random orders,
// computed from (seed, global trial index) alone, so any backend or thread regenerates it.
#pragma once

#include <cstdint>

#include "dalesim/rng.hpp"

namespace dalesim {

// A keyed bijection of [0, n): a 4-round Feistel network on 2h bits (the smallest 4^h >= n),
// cycle-walking until the value falls inside [0, n) (fewer than 4 rounds of walking on average).
inline std::uint64_t permuted_index(std::uint64_t key, std::uint64_t i, std::uint64_t n) {
  int h = 1;
  while ((std::uint64_t{1} << (2 * h)) < n) ++h;
  const std::uint64_t half = (std::uint64_t{1} << h) - 1;
  std::uint64_t x = i;
  do {
    std::uint64_t l = x >> h, r = x & half;
    for (std::uint32_t round = 0; round < 4; ++round) {
      const std::uint64_t f =
          philox4x32(key, static_cast<std::uint32_t>(r), static_cast<std::uint32_t>(r >> 32), round, 0).v[0] & half;
      const std::uint64_t next_l = r;
      r = l ^ f;
      l = next_l;
    }
    x = (l << h) | r;
  } while (x >= n);
  return x;
}

// Item of training trial `g` (= iteration * B + trial): epoch g / n visits all n items once, in
// its own order.
inline std::uint64_t epoch_item(std::uint64_t data_seed, std::uint64_t g, std::uint64_t n) {
  return permuted_index(mix_key(data_seed, 0x45504f4348ULL + g / n), g % n, n);
}

}  // namespace dalesim
