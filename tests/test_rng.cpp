// The counter-based RNG: Philox4x32-10 known-answer vectors and the moments of its derived draws.
#include <gtest/gtest.h>

#include <cmath>

#include "dalesim/rng.hpp"

namespace dalesim {
namespace {

// Known-answer vectors published with the Philox generator (Salmon et al., SC'11, Random123).
TEST(Rng, PhiloxKnownAnswers) {
  const Philox4x32 zero = philox4x32(0, 0, 0, 0, 0);
  EXPECT_EQ(zero.v[0], 0x6627e8d5u);
  EXPECT_EQ(zero.v[1], 0xe169c58du);
  EXPECT_EQ(zero.v[2], 0xbc57ac4cu);
  EXPECT_EQ(zero.v[3], 0x9b00dbd8u);
  const Philox4x32 ones = philox4x32(0xffffffffffffffffULL, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(ones.v[0], 0x408f276du);
  EXPECT_EQ(ones.v[1], 0x41c83b0eu);
  EXPECT_EQ(ones.v[2], 0xa20bc7c6u);
  EXPECT_EQ(ones.v[3], 0x6d5451fdu);
  const Philox4x32 pi = philox4x32((0x299f31d0ULL << 32) | 0xa4093822ULL, 0x243f6a88u, 0x85a308d3u, 0x13198a2eu,
                                   0x03707344u);
  EXPECT_EQ(pi.v[0], 0xd16cfe09u);
  EXPECT_EQ(pi.v[1], 0x94fdccebu);
  EXPECT_EQ(pi.v[2], 0x5001e420u);
  EXPECT_EQ(pi.v[3], 0x24126ea1u);
}

TEST(Rng, MomentsOfDerivedDraws) {
  const CounterRng rng{12345, 6};
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0, se = 0;
  int below_hist[5] = {0, 0, 0, 0, 0};
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform(i);
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
    su += u;
    const double z = rng.normal(i);
    sn += z;
    sn2 += z * z;
    se += rng.exponential(i, 2.0);
    ++below_hist[rng.below(i, 5)];
  }
  EXPECT_NEAR(su / n, 0.5, 0.005);
  EXPECT_NEAR(sn / n, 0.0, 0.01);
  EXPECT_NEAR(sn2 / n, 1.0, 0.015);
  EXPECT_NEAR(se / n, 2.0, 0.03);
  for (int k = 0; k < 5; ++k) EXPECT_NEAR(below_hist[k] / double(n), 0.2, 0.005);
}

TEST(Rng, StreamsAndKeysAreIndependent) {
  const CounterRng a{1, 0}, b{1, 1}, c{2, 0};
  int same_ab = 0, same_ac = 0;
  for (int i = 0; i < 1000; ++i) {
    same_ab += a.block(i).v[0] == b.block(i).v[0];
    same_ac += a.block(i).v[0] == c.block(i).v[0];
  }
  EXPECT_LE(same_ab, 1);
  EXPECT_LE(same_ac, 1);
  EXPECT_NE(mix_key(5, 0), mix_key(5, 1));
  EXPECT_EQ(a.uniform(17), CounterRng({1, 0}).uniform(17));
}

}  // namespace
}  // namespace dalesim
