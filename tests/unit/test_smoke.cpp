#include <gtest/gtest.h>
#include "stack/base/seq.hpp"
TEST(Smoke, SeqWraps) { EXPECT_LT(xs::Seq(0xfffffff0u), xs::Seq(5)); }
