// AF_INET6 sockets in the native API: a dual-stack socket carries IPv4
// through IPv4-mapped addresses (RFC 4291 section 2.5.5.2) and reports
// AF_INET6 names, with the errno Linux gives for each malformed address.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tests/support/native_pair.hpp"

namespace xs {
namespace {

using namespace testing_native;

sockaddr_in6 mapped(Ipv4Addr a, uint16_t port) {
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  s.sin6_port = htons(port);
  s.sin6_addr.s6_addr[10] = s.sin6_addr.s6_addr[11] = 0xff;
  const uint32_t v = htonl(a.v);
  std::memcpy(s.sin6_addr.s6_addr + 12, &v, 4);
  return s;
}
sockaddr_in6 any6(uint16_t port) {
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  s.sin6_port = htons(port);
  return s;
}
const sockaddr* sa6(const sockaddr_in6& s) { return reinterpret_cast<const sockaddr*>(&s); }

std::string text(const sockaddr_in6& s) {
  char b[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &s.sin6_addr, b, sizeof b);
  return std::string(b) + ":" + std::to_string(ntohs(s.sin6_port));
}

std::string name_of(Runtime& r, int fd, bool peer) {
  sockaddr_in6 s{};
  socklen_t len = sizeof s;
  int rc = peer ? r.getpeername(fd, reinterpret_cast<sockaddr*>(&s), &len) : r.getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len);
  if (rc != 0) return "errno " + std::to_string(errno);
  if (len != sizeof s || s.sin6_family != AF_INET6) return "not AF_INET6";
  return text(s);
}

TEST(NativeInet6, DualStackListenerAcceptsIpv4Peer) {
  NativePair p;
  int l = p.b->socket(AF_INET6, SOCK_STREAM, 0);
  ASSERT_GE(l, 0);
  int v = -1;
  socklen_t vl = sizeof v;
  EXPECT_EQ(p.b->getsockopt(l, SOL_SOCKET, SO_DOMAIN, &v, &vl), 0);
  EXPECT_EQ(v, AF_INET6);
  EXPECT_EQ(name_of(*p.b, l, false), ":::0");
  int zero = 0;
  EXPECT_EQ(p.b->setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero), 0);
  auto any = any6(6100);
  ASSERT_EQ(p.b->bind(l, sa6(any), sizeof any), 0);
  EXPECT_EQ(name_of(*p.b, l, false), ":::6100");
  ASSERT_EQ(p.b->listen(l, 4), 0);

  // An AF_INET client: the listener's peer shows as IPv4-mapped.
  int c = p.a->socket(AF_INET, SOCK_STREAM, 0);
  auto dst = sin_of(kB, 6100);
  ASSERT_EQ(p.a->connect(c, sa(dst), sizeof dst), 0) << strerror(errno);
  sockaddr_in6 peer{};
  socklen_t pl = sizeof peer;
  int s = p.b->accept(l, reinterpret_cast<sockaddr*>(&peer), &pl);
  ASSERT_GE(s, 0);
  EXPECT_EQ(pl, sizeof(sockaddr_in6));
  EXPECT_EQ(peer.sin6_family, AF_INET6);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr));
  EXPECT_EQ(text(peer).substr(0, 18), "::ffff:198.18.0.1:");
  EXPECT_EQ(name_of(*p.b, s, false), "::ffff:198.18.0.2:6100");
  vl = sizeof v;
  EXPECT_EQ(p.b->getsockopt(s, SOL_SOCKET, SO_DOMAIN, &v, &vl), 0);
  EXPECT_EQ(v, AF_INET6);

  // Data both ways.
  EXPECT_EQ(p.a->send(c, "ping", 4, 0), 4);
  char buf[8] = {};
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  EXPECT_EQ(p.b->send(s, "pong", 4, 0), 4);
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  p.a->close(c);
  p.b->close(s);
  p.b->close(l);
}

TEST(NativeInet6, ConnectsToMappedAddress) {
  NativePair p;
  int l = p.listen_b(6101);
  int c = p.a->socket(AF_INET6, SOCK_STREAM, 0);
  ASSERT_GE(c, 0);
  auto dst = mapped(kB, 6101);
  ASSERT_EQ(p.a->connect(c, sa6(dst), sizeof dst), 0) << strerror(errno);
  EXPECT_EQ(name_of(*p.a, c, true), "::ffff:198.18.0.2:6101");
  EXPECT_EQ(name_of(*p.a, c, false).substr(0, 18), "::ffff:198.18.0.1:");
  sockaddr_in peer{};
  socklen_t pl = sizeof peer;
  int s = p.b->accept(l, reinterpret_cast<sockaddr*>(&peer), &pl);
  ASSERT_GE(s, 0);
  EXPECT_EQ(pl, sizeof(sockaddr_in));  // the AF_INET listener sees plain IPv4
  EXPECT_EQ(ntohl(peer.sin_addr.s_addr), kA.v);
  p.a->close(c);
  p.b->close(s);
  p.b->close(l);
}

TEST(NativeInet6, AddressErrorsAsLinux) {
  NativePair p;
  int s = p.a->socket(AF_INET6, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  auto ok = mapped(kA, 6102);
  // inet6_bind: shorter than SIN6_LEN_RFC2133 (24) is EINVAL, another family EAFNOSUPPORT.
  EXPECT_EQ(p.a->bind(s, sa6(ok), 23), -1);
  EXPECT_EQ(errno, EINVAL);
  auto v4 = sin_of(kA, 6102);
  EXPECT_EQ(p.a->bind(s, sa(v4), sizeof v4), -1);
  EXPECT_EQ(errno, EINVAL);  // 16 bytes: too short before the family is looked at
  sockaddr_in6 v4long{};
  std::memcpy(&v4long, &v4, sizeof v4);
  EXPECT_EQ(p.a->bind(s, sa6(v4long), sizeof v4long), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  // An IPv6 address that is not the stack's (xstack has none).
  sockaddr_in6 loop6 = any6(6102);
  loop6.sin6_addr = in6addr_loopback;
  EXPECT_EQ(p.a->bind(s, sa6(loop6), sizeof loop6), -1);
  EXPECT_EQ(errno, EADDRNOTAVAIL);
  auto other = mapped(kB, 6102);
  EXPECT_EQ(p.a->bind(s, sa6(other), sizeof other), -1);
  EXPECT_EQ(errno, EADDRNOTAVAIL);
  ASSERT_EQ(p.a->bind(s, sa6(ok), 24), 0);  // SIN6_LEN_RFC2133 is enough
  EXPECT_EQ(name_of(*p.a, s, false), "::ffff:198.18.0.1:6102");
  // IPV6_V6ONLY once bound: EINVAL (inet_num set).
  int one = 1;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one), -1);
  EXPECT_EQ(errno, EINVAL);

  // tcp_v6_connect: short EINVAL, AF_INET EAFNOSUPPORT, a real IPv6 address unreachable.
  int c = p.a->socket(AF_INET6, SOCK_STREAM, 0);
  auto dst = mapped(kB, 6103);
  EXPECT_EQ(p.a->connect(c, sa6(dst), 20), -1);
  EXPECT_EQ(errno, EINVAL);
  sockaddr_in6 v4dst{};
  auto v4b = sin_of(kB, 6103);
  std::memcpy(&v4dst, &v4b, sizeof v4b);
  EXPECT_EQ(p.a->connect(c, sa6(v4dst), sizeof v4dst), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  EXPECT_EQ(p.a->connect(c, sa6(loop6), sizeof loop6), -1);
  EXPECT_EQ(errno, ENETUNREACH);

  // An AF_INET socket refuses AF_INET6 addresses, as before.
  int s4 = p.a->socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(p.a->bind(s4, sa6(ok), sizeof ok), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  int tc = 0;
  socklen_t tl = sizeof tc;
  EXPECT_EQ(p.a->getsockopt(s4, IPPROTO_IPV6, IPV6_V6ONLY, &tc, &tl), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  // Bound as ::ffff:0.0.0.0, the name stays IPv4-mapped (not "::").
  int m = p.a->socket(AF_INET6, SOCK_DGRAM, 0);
  auto mapped_any = mapped(Ipv4Addr::any(), 6106);
  ASSERT_EQ(p.a->bind(m, sa6(mapped_any), sizeof mapped_any), 0);
  EXPECT_EQ(name_of(*p.a, m, false), "::ffff:0.0.0.0:6106");
  p.a->close(m);
  p.a->close(s);
  p.a->close(c);
  p.a->close(s4);
}

TEST(NativeInet6, V6OnlyRefusesMappedAddresses) {
  NativePair p;
  int s = p.a->socket(AF_INET6, SOCK_DGRAM, 0);
  int one = 1;
  ASSERT_EQ(p.a->setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one), 0);
  int v = 0;
  socklen_t vl = sizeof v;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl), 0);
  EXPECT_EQ(v, 1);
  auto m = mapped(kA, 6104);
  EXPECT_EQ(p.a->bind(s, sa6(m), sizeof m), -1);
  EXPECT_EQ(errno, EINVAL);  // __inet6_bind: a v4-mapped address on a v6-only socket
  auto d = mapped(kB, 6104);
  EXPECT_EQ(p.a->sendto(s, "x", 1, 0, sa6(d), sizeof d), -1);
  EXPECT_EQ(errno, ENETUNREACH);  // udpv6_sendmsg
  auto d4 = sin_of(kB, 6104);
  EXPECT_EQ(p.a->connect(s, sa(d4), sizeof d4), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);  // ip6_datagram_connect
  p.a->close(s);
}

TEST(NativeInet6, OptionsKeptAndBounded) {
  NativePair p;
  int s = p.a->socket(AF_INET6, SOCK_STREAM, 0);
  int v = 0;
  socklen_t vl = sizeof v;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, &vl), 0);
  EXPECT_EQ(v, 64);
  int hops = 7;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops), 0);
  vl = sizeof v;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, &vl), 0);
  EXPECT_EQ(v, 7);
  int bad = 256;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &bad, sizeof bad), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_IPV6, IPV6_TCLASS, &hops, 2), -1);
  EXPECT_EQ(errno, EINVAL);  // shorter than an int
  int tc = 0xb8 | 3;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_IPV6, IPV6_TCLASS, &tc, sizeof tc), 0);
  vl = sizeof v;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_IPV6, IPV6_TCLASS, &v, &vl), 0);
  EXPECT_EQ(v, 0xb8);  // a stream socket keeps the ECN bits to TCP
  int minus1 = -1;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_IPV6, IPV6_TCLASS, &minus1, sizeof minus1), 0);
  vl = sizeof v;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_IPV6, IPV6_TCLASS, &v, &vl), 0);
  EXPECT_EQ(v, 0);
  // One byte asked: one byte given (ipv6_getsockopt copies min(len, 4)).
  unsigned char one_byte = 0xff;
  vl = 1;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one_byte, &vl), 0);
  EXPECT_EQ(vl, 1u);
  EXPECT_EQ(one_byte, 0);
  // Options xstack does not implement are refused, not ignored.
  int on = 1;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
  p.a->close(s);
}

TEST(NativeInet6, UdpMappedAndPlainDestinations) {
  NativePair p;
  int r = p.b->socket(AF_INET6, SOCK_DGRAM, 0);
  auto any = any6(6105);
  ASSERT_EQ(p.b->bind(r, sa6(any), sizeof any), 0);
  int s = p.a->socket(AF_INET6, SOCK_DGRAM, 0);
  auto dst = mapped(kB, 6105);
  ASSERT_EQ(p.a->sendto(s, "one", 3, 0, sa6(dst), sizeof dst), 3);
  // A UDP AF_INET6 socket also takes an AF_INET destination (udpv6_sendmsg).
  auto dst4 = sin_of(kB, 6105);
  ASSERT_EQ(p.a->sendto(s, "two", 3, 0, sa(dst4), sizeof dst4), 3);
  // udpv6_sendmsg: another family is EINVAL.
  sockaddr_in6 unix_fam = dst;
  unix_fam.sin6_family = AF_UNIX;
  EXPECT_EQ(p.a->sendto(s, "x", 1, 0, sa6(unix_fam), sizeof unix_fam), -1);
  EXPECT_EQ(errno, EINVAL);
  for (const char* want : {"one", "two"}) {
    pollfd pf{r, POLLIN, 0};
    ASSERT_EQ(p.b->poll(&pf, 1, 5000), 1);
    char buf[8] = {};
    sockaddr_in6 from{};
    socklen_t fl = sizeof from;
    ASSERT_EQ(p.b->recvfrom(r, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl), 3);
    EXPECT_EQ(std::string(buf, 3), want);
    EXPECT_EQ(fl, sizeof(sockaddr_in6));
    EXPECT_EQ(text(from).substr(0, 18), "::ffff:198.18.0.1:");
  }
  // Connected with AF_INET: the peer is still reported as AF_INET6.
  ASSERT_EQ(p.a->connect(s, sa(dst4), sizeof dst4), 0);
  EXPECT_EQ(name_of(*p.a, s, true), "::ffff:198.18.0.2:6105");
  p.a->close(s);
  p.b->close(r);
}

}  // namespace
}  // namespace xs
