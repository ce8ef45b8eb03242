// Address value types: parsing, printing, prefixes.
#include <gtest/gtest.h>

#include "stack/base/addr.hpp"

namespace xs {
namespace {

TEST(Ipv4Addr, ParseValid) {
  Ipv4Addr a;
  ASSERT_TRUE(Ipv4Addr::parse("198.18.0.199", &a));
  EXPECT_EQ(a, Ipv4Addr::from_octets(198, 18, 0, 199));
  EXPECT_EQ(a.v, 0xc61200c7u);
  ASSERT_TRUE(Ipv4Addr::parse("0.0.0.0", &a));
  EXPECT_TRUE(a.is_unspecified());
  ASSERT_TRUE(Ipv4Addr::parse("255.255.255.255", &a));
  EXPECT_TRUE(a.is_broadcast());
}

TEST(Ipv4Addr, ParseRejectsMalformed) {
  const char* bad[] = {"", "1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "1..2.3",
                       "1.2.3.4 ", " 1.2.3.4", "a.b.c.d", "1.2.3.", ".1.2.3", "1234.1.1.1", "1.2.3.-4"};
  for (const char* s : bad) {
    Ipv4Addr a = Ipv4Addr::from_octets(198, 19, 9, 9);
    EXPECT_FALSE(Ipv4Addr::parse(s, &a)) << '"' << s << '"';
    EXPECT_EQ(a, Ipv4Addr::from_octets(198, 19, 9, 9)) << "output touched on failure: " << s;
  }
}

TEST(Ipv4Addr, ToStringRoundTrips) {
  EXPECT_EQ(Ipv4Addr::from_octets(198, 19, 2, 15).to_string(), "198.19.2.15");
  EXPECT_EQ(Ipv4Addr::broadcast().to_string(), "255.255.255.255");
  for (const char* s : {"198.18.3.4", "127.0.0.1", "224.0.0.251"}) {
    Ipv4Addr a;
    ASSERT_TRUE(Ipv4Addr::parse(s, &a));
    EXPECT_EQ(a.to_string(), s);
  }
}

TEST(Ipv4Addr, Classes) {
  EXPECT_TRUE(Ipv4Addr::from_octets(224, 0, 0, 1).is_multicast());
  EXPECT_TRUE(Ipv4Addr::from_octets(239, 255, 255, 255).is_multicast());
  EXPECT_FALSE(Ipv4Addr::from_octets(240, 0, 0, 1).is_multicast());
  EXPECT_TRUE(Ipv4Addr::from_octets(127, 1, 2, 3).is_loopback());
  EXPECT_FALSE(Ipv4Addr::from_octets(198, 18, 0, 1).is_loopback());
  EXPECT_LT(Ipv4Addr::from_octets(198, 17, 255, 255), Ipv4Addr::from_octets(198, 18, 0, 0));
}

TEST(Ipv4Cidr, ContainsAndBroadcast) {
  Ipv4Cidr net{Ipv4Addr::from_octets(198, 18, 7, 33), 24};
  EXPECT_EQ(net.mask(), 0xffffff00u);
  EXPECT_TRUE(net.contains(Ipv4Addr::from_octets(198, 18, 7, 1)));
  EXPECT_TRUE(net.contains(Ipv4Addr::from_octets(198, 18, 7, 255)));
  EXPECT_FALSE(net.contains(Ipv4Addr::from_octets(198, 18, 8, 1)));
  EXPECT_EQ(net.subnet_broadcast(), Ipv4Addr::from_octets(198, 18, 7, 255));

  Ipv4Cidr odd{Ipv4Addr::from_octets(198, 19, 130, 3), 17};
  EXPECT_EQ(odd.mask(), 0xffff8000u);
  EXPECT_TRUE(odd.contains(Ipv4Addr::from_octets(198, 19, 255, 255)));
  EXPECT_FALSE(odd.contains(Ipv4Addr::from_octets(198, 19, 127, 255)));
  EXPECT_EQ(odd.subnet_broadcast(), Ipv4Addr::from_octets(198, 19, 255, 255));
}

TEST(Ipv4Cidr, PrefixExtremes) {
  Ipv4Cidr all{Ipv4Addr::from_octets(198, 18, 3, 4), 0};  // default route: no UB shift by 32
  EXPECT_EQ(all.mask(), 0u);
  EXPECT_TRUE(all.contains(Ipv4Addr::from_octets(198, 19, 1, 1)));
  Ipv4Cidr host{Ipv4Addr::from_octets(198, 18, 3, 4), 32};
  EXPECT_EQ(host.mask(), 0xffffffffu);
  EXPECT_TRUE(host.contains(Ipv4Addr::from_octets(198, 18, 3, 4)));
  EXPECT_FALSE(host.contains(Ipv4Addr::from_octets(198, 18, 3, 5)));
  EXPECT_EQ(host.subnet_broadcast(), Ipv4Addr::from_octets(198, 18, 3, 4));
}

TEST(MacAddr, ToStringAndClasses) {
  MacAddr m{{0x02, 0x00, 0x5e, 0x10, 0xab, 0x0f}};
  EXPECT_EQ(m.to_string(), "02:00:5e:10:ab:0f");
  EXPECT_FALSE(m.is_multicast());
  EXPECT_TRUE((MacAddr{{0x01, 0x00, 0x5e, 0, 0, 1}}.is_multicast()));
  EXPECT_TRUE(MacAddr::broadcast().is_broadcast());
  EXPECT_TRUE(MacAddr::broadcast().is_multicast());
  EXPECT_TRUE(MacAddr{}.is_zero());
  EXPECT_FALSE(m.is_zero());
}

}  // namespace
}  // namespace xs
