// Seq: modular comparison and windows (RFC 9293 3.4).
#include <gtest/gtest.h>

#include "stack/base/seq.hpp"

namespace xs {
namespace {

TEST(Seq, OrdinaryCompare) {
  EXPECT_LT(Seq(1), Seq(2));
  EXPECT_GT(Seq(2), Seq(1));
  EXPECT_LE(Seq(2), Seq(2));
  EXPECT_GE(Seq(2), Seq(2));
  EXPECT_FALSE(Seq(2) < Seq(2));
  EXPECT_NE(Seq(2), Seq(3));
}

TEST(Seq, CompareAcrossWrap) {
  EXPECT_LT(Seq(0xfffffff0u), Seq(5));
  EXPECT_GT(Seq(5), Seq(0xfffffff0u));
  EXPECT_LT(Seq(0xffffffffu), Seq(0));
  // Just under half the space apart: still ordered by the signed distance.
  EXPECT_LT(Seq(0), Seq(0x7fffffffu));
  // Past half the space the order flips.
  EXPECT_GT(Seq(0), Seq(0x80000001u));
}

TEST(Seq, ArithmeticWraps) {
  EXPECT_EQ(Seq(0xfffffffeu) + 3, Seq(1));
  EXPECT_EQ(Seq(1) - 3, Seq(0xfffffffeu));
  Seq s(0xffffffffu);
  s += 2;
  EXPECT_EQ(s.raw(), 1u);
  EXPECT_EQ(Seq(3) - Seq(0xfffffffdu), 6);
  EXPECT_EQ(Seq(0xfffffffdu) - Seq(3), -6);
}

TEST(Seq, InWindow) {
  EXPECT_TRUE(Seq(100).in_window(Seq(100), 10));
  EXPECT_TRUE(Seq(109).in_window(Seq(100), 10));
  EXPECT_FALSE(Seq(110).in_window(Seq(100), 10));
  EXPECT_FALSE(Seq(99).in_window(Seq(100), 10));
  EXPECT_FALSE(Seq(100).in_window(Seq(100), 0));  // empty window holds nothing
}

TEST(Seq, InWindowAcrossWrap) {
  Seq start(0xfffffffau);
  EXPECT_TRUE(Seq(0xfffffffau).in_window(start, 16));
  EXPECT_TRUE(Seq(0).in_window(start, 16));
  EXPECT_TRUE(Seq(9).in_window(start, 16));
  EXPECT_FALSE(Seq(10).in_window(start, 16));
  EXPECT_FALSE(Seq(0xfffffff9u).in_window(start, 16));
}

TEST(Seq, MinMax) {
  EXPECT_EQ(seq_max(Seq(0xfffffff0u), Seq(3)), Seq(3));
  EXPECT_EQ(seq_min(Seq(0xfffffff0u), Seq(3)), Seq(0xfffffff0u));
  EXPECT_EQ(seq_max(Seq(7), Seq(7)), Seq(7));
}

}  // namespace
}  // namespace xs
