// socketapi/log.hpp: the per-call-site token bucket lets a burst through,
// then holds further messages back and counts them.
#include <gtest/gtest.h>

#include <unistd.h>

#include "socketapi/log.hpp"

namespace xs {
namespace {

TEST(LogRateLimit, BurstThenSuppressedAndCounted) {
  log::RateLimit rl;
  uint32_t dropped = 0;
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += rl.allow(dropped);
  EXPECT_EQ(allowed, 5);
  EXPECT_EQ(rl.suppressed.load(), 95u);
  // A second later one more token; the message reports the 95 it replaced.
  usleep(1100000);
  ASSERT_TRUE(rl.allow(dropped));
  EXPECT_EQ(dropped, 95u);
  EXPECT_FALSE(rl.allow(dropped));
}

}  // namespace
}  // namespace xs
