// Ancillary data helpers of the native API (socketapi/native_cmsg.hpp): put_cmsg's
// truncation rules and sendmsg control parsing, with the values Linux 6.18 gives.
#include "socketapi/native_cmsg.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

using namespace xs::native;

namespace {

// What recvmsg reports for a timestamp + IP_PKTINFO + IP_TTL set in a
// control buffer of `len` bytes: (msg_controllen, MSG_CTRUNC).
std::pair<size_t, bool> write_three(size_t len) {
  alignas(cmsghdr) uint8_t buf[256] = {};
  CmsgWriter w(buf, len);
  RecvCmsgFlags f;
  f.ts = true;
  put_timestamp(w, f, 1700000000123456);
  in_pktinfo pi{};
  w.put(SOL_IP, IP_PKTINFO, &pi, sizeof pi);
  int ttl = 64;
  w.put(SOL_IP, IP_TTL, &ttl, sizeof ttl);
  return {w.used(), w.truncated()};
}

TEST(NativeCmsg, PutCmsgTruncatesAsLinux) {
  // Measured on Linux (tests/diff UdpCmsgRecv): timestamp 32 + pktinfo 32 + ttl 24.
  EXPECT_EQ(write_three(0), std::make_pair(size_t(0), true));
  EXPECT_EQ(write_three(4), std::make_pair(size_t(0), true));
  EXPECT_EQ(write_three(16), std::make_pair(size_t(16), true));
  EXPECT_EQ(write_three(20), std::make_pair(size_t(20), true));
  EXPECT_EQ(write_three(40), std::make_pair(size_t(32), true));  // 8 left: less than a header
  EXPECT_EQ(write_three(60), std::make_pair(size_t(60), true));  // pktinfo's 28 fit, not its padding
  EXPECT_EQ(write_three(80), std::make_pair(size_t(80), true));
  EXPECT_EQ(write_three(84), std::make_pair(size_t(84), false));  // the last cmsg needs no padding
  EXPECT_EQ(write_three(200), std::make_pair(size_t(88), false));
  CmsgWriter none(nullptr, 64);
  none.put(SOL_IP, IP_TTL, "abcd", 4);
  EXPECT_TRUE(none.truncated());
  EXPECT_EQ(none.used(), 0u);
}

TEST(NativeCmsg, TimestampFlavours) {
  alignas(cmsghdr) uint8_t buf[64];
  RecvCmsgFlags f;
  f.set_timestamp(kSoTimestampNsNew, true);
  EXPECT_TRUE(f.timestamp_reported(kSoTimestampNsNew));
  EXPECT_TRUE(f.timestamp_reported(kSoTimestampNew));  // Linux: SO_TIMESTAMP_NEW ignores NS
  EXPECT_FALSE(f.timestamp_reported(kSoTimestampOld));
  CmsgWriter w(buf, sizeof buf);
  put_timestamp(w, f, 1700000000123456);
  cmsghdr h;
  std::memcpy(&h, buf, sizeof h);
  EXPECT_EQ(h.cmsg_type, kSoTimestampNsNew);
  int64_t v[2];
  std::memcpy(v, buf + sizeof h, sizeof v);
  EXPECT_EQ(v[0], 1700000000);
  EXPECT_EQ(v[1], 123456000);
  f.set_timestamp(kSoTimestampOld, false);  // any of the four turns both off
  EXPECT_FALSE(f.ts);
  EXPECT_FALSE(f.ts_ns);
  CmsgWriter w2(buf, sizeof buf);
  put_timestamp(w2, f, 1);
  EXPECT_EQ(w2.used(), 0u);
}

struct Ctl {
  alignas(cmsghdr) uint8_t buf[128] = {};
  size_t len = 0;
  Ctl& add(int level, int type, const void* data, size_t n) {
    cmsghdr h{};
    h.cmsg_len = CMSG_LEN(n);
    h.cmsg_level = level;
    h.cmsg_type = type;
    std::memcpy(buf + len, &h, sizeof h);
    std::memcpy(buf + len + CMSG_LEN(0), data, n);
    len += CMSG_SPACE(n);
    return *this;
  }
  msghdr msg() {
    msghdr m{};
    m.msg_control = buf;
    m.msg_controllen = len;
    return m;
  }
};

TEST(NativeCmsg, UdpSendCmsgsParsedAsLinux) {
  const int ttl = 9, tos = 0x20, zero = 0, big = 256;
  in_pktinfo pi{};
  pi.ipi_ifindex = 3;
  SendCmsg out;
  {
    Ctl c;
    c.add(SOL_IP, IP_TTL, &ttl, sizeof ttl).add(SOL_IP, IP_TOS, "\x28", 1).add(SOL_IP, IP_PKTINFO, &pi, sizeof pi);
    msghdr m = c.msg();
    ASSERT_EQ(parse_udp_send_cmsgs(m, false, &out), 0);
    EXPECT_EQ(out.ttl, 9);
    EXPECT_EQ(out.tos, 0x28);
    ASSERT_TRUE(out.pktinfo.has_value());
    EXPECT_EQ(out.pktinfo->ipi_ifindex, 3);
  }
  auto err = [&](int level, int type, const void* d, size_t n, bool priv = false) {
    Ctl c;
    c.add(level, type, d, n);
    msghdr m = c.msg();
    return parse_udp_send_cmsgs(m, priv, &out);
  };
  EXPECT_EQ(err(SOL_IP, IP_TTL, &zero, sizeof zero), EINVAL);
  EXPECT_EQ(err(SOL_IP, IP_TTL, "\x07", 1), EINVAL);
  EXPECT_EQ(err(SOL_IP, IP_TOS, &big, sizeof big), EINVAL);
  EXPECT_EQ(err(SOL_IP, IP_TOS, &tos, sizeof tos), 0);
  EXPECT_EQ(err(SOL_IP, IP_PKTINFO, &ttl, sizeof ttl), EINVAL);
  EXPECT_EQ(err(SOL_IP, 99, &ttl, sizeof ttl), EINVAL);
  EXPECT_EQ(err(12345, 1, &ttl, sizeof ttl), 0);             // other levels are skipped
  EXPECT_EQ(err(SOL_SOCKET, SCM_RIGHTS, &ttl, sizeof ttl), 0);  // ignored on inet sockets
  EXPECT_EQ(err(SOL_SOCKET, 99, &ttl, sizeof ttl), EINVAL);
  EXPECT_EQ(err(IPPROTO_UDP, 103, "\x00\x05", 2), EINVAL);  // UDP_SEGMENT: not implemented
  EXPECT_EQ(err(SOL_SOCKET, SO_PRIORITY, &ttl, sizeof ttl), EPERM);  // 9 > 6
  EXPECT_EQ(err(SOL_SOCKET, SO_PRIORITY, &ttl, sizeof ttl, true), 0);
  {
    Ctl c;
    c.add(SOL_IP, IP_TTL, &ttl, sizeof ttl);
    msghdr m = c.msg();
    m.msg_controllen = 8;  // less than a header: no cmsg at all
    EXPECT_EQ(parse_udp_send_cmsgs(m, false, &out), 0);
    EXPECT_FALSE(out.ttl.has_value());
    m.msg_controllen = CMSG_LEN(sizeof ttl) - 1;  // cmsg_len runs past the buffer
    EXPECT_EQ(parse_udp_send_cmsgs(m, false, &out), EINVAL);
  }
  {
    Ctl c;
    c.add(SOL_IP, IP_TTL, &ttl, sizeof ttl).add(SOL_SOCKET, 99, &ttl, sizeof ttl);
    msghdr m = c.msg();
    EXPECT_EQ(check_tcp_send_cmsgs(m, false), EINVAL);
    Ctl ok;
    ok.add(SOL_IP, 99, &ttl, sizeof ttl);
    msghdr m2 = ok.msg();
    EXPECT_EQ(check_tcp_send_cmsgs(m2, false), 0);  // TCP looks at SOL_SOCKET only
  }
}

}  // namespace
