// Socket options as Linux 6.x answers them through the native API:
// SO_BINDTODEVICE (unbound), TCP_QUICKACK (ping-pong mode), TCP_LINGER2,
// TCP_NOTSENT_LOWAT and TCP_WINDOW_CLAMP value semantics. Expected values
// were checked against a 6.x kernel on loopback.
#include <gtest/gtest.h>

#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

#include "socketapi/memory_device.hpp"
#include "socketapi/native_runtime.hpp"
#include "tests/support/native_pair.hpp"

namespace xs {
namespace {

using native::Runtime;
using namespace testing_native;

int get_int(Runtime& r, int fd, int level, int name) {
  int v = -12345;
  socklen_t len = sizeof v;
  EXPECT_EQ(r.getsockopt(fd, level, name, &v, &len), 0) << name << " errno " << errno;
  EXPECT_EQ(len, sizeof(int));
  return v;
}
int set_int(Runtime& r, int fd, int level, int name, int v) {
  int rc = r.setsockopt(fd, level, name, &v, sizeof v);
  return rc == 0 ? 0 : errno;
}

// sock_getbindtodevice: an unbound socket (TCP or UDP) answers optlen 0 and
// copies nothing, whatever the buffer size; an empty name unbinds (a no-op).
TEST(NativeLinuxOptions, BindToDeviceUnbound) {
  NativePair p;
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    int s = p.a->socket(AF_INET, type, 0);
    char name[IFNAMSIZ];
    std::memset(name, 'x', sizeof name);
    socklen_t len = sizeof name;
    EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, name, &len), 0);
    EXPECT_EQ(len, 0u);
    EXPECT_EQ(name[0], 'x');  // untouched
    len = 0;
    EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, nullptr, &len), 0);
    EXPECT_EQ(len, 0u);
    EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "", 0), 0);
    EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "\0\0", 2), 0);
    // Binding to a device is not implemented: refused, never ignored.
    EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "eth0", 4), -1);
    EXPECT_EQ(errno, ENOPROTOOPT);
    len = sizeof name;
    EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, name, &len), 0);
    EXPECT_EQ(len, 0u);
    p.a->close(s);
  }
}

// TCP_QUICKACK reads !inet_csk_in_pingpong_mode: 1 until set to 0; a reply
// sent right after data arrives enters ping-pong mode by itself.
TEST(NativeLinuxOptions, QuickAckReportsPingPong) {
  NativePair p;
  int s = p.a->socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(get_int(*p.a, s, IPPROTO_TCP, TCP_QUICKACK), 1);
  EXPECT_EQ(set_int(*p.a, s, IPPROTO_TCP, TCP_QUICKACK, 0), 0);
  EXPECT_EQ(get_int(*p.a, s, IPPROTO_TCP, TCP_QUICKACK), 0);
  EXPECT_EQ(set_int(*p.a, s, IPPROTO_TCP, TCP_QUICKACK, 2), 0);
  EXPECT_EQ(get_int(*p.a, s, IPPROTO_TCP, TCP_QUICKACK), 1);
  p.a->close(s);

  auto [c, srv] = p.connected(70);
  EXPECT_EQ(get_int(*p.a, c, IPPROTO_TCP, TCP_QUICKACK), 1);
  EXPECT_EQ(get_int(*p.b, srv, IPPROTO_TCP, TCP_QUICKACK), 1);
  ASSERT_EQ(p.a->send(c, "q", 1, 0), 1);
  char buf[4];
  ASSERT_EQ(p.b->recv(srv, buf, sizeof buf, 0), 1);
  ASSERT_EQ(p.b->send(srv, "r", 1, 0), 1);  // a reply within the ACK timeout
  EXPECT_EQ(get_int(*p.b, srv, IPPROTO_TCP, TCP_QUICKACK), 0);
  ASSERT_EQ(p.a->recv(c, buf, sizeof buf, 0), 1);
  EXPECT_EQ(get_int(*p.a, c, IPPROTO_TCP, TCP_QUICKACK), 1);  // sent before it received
  EXPECT_EQ(set_int(*p.b, srv, IPPROTO_TCP, TCP_QUICKACK, 1), 0);
  EXPECT_EQ(get_int(*p.b, srv, IPPROTO_TCP, TCP_QUICKACK), 1);
}

// do_tcp_setsockopt TCP_LINGER2: < 0 is -1, > 120 s clamped, 0 is the sysctl
// (tcp_fin_timeout = 60 s), read back in seconds.
TEST(NativeLinuxOptions, Linger2Values) {
  NativePair p;
  int s = p.a->socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(get_int(*p.a, s, IPPROTO_TCP, TCP_LINGER2), 60);
  const std::pair<int, int> cases[] = {{-5, -1}, {0, 60}, {1, 1}, {30, 30}, {121, 120}, {1000, 120}};
  for (auto [in, out] : cases) {
    EXPECT_EQ(set_int(*p.a, s, IPPROTO_TCP, TCP_LINGER2, in), 0);
    EXPECT_EQ(get_int(*p.a, s, IPPROTO_TCP, TCP_LINGER2), out) << in;
  }
  int v = 5;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_LINGER2, &v, 2), -1);
  EXPECT_EQ(errno, EINVAL);
}

// TCP_NOTSENT_LOWAT is kept as a u32: 0 (the default, "use the sysctl"),
// any value, -1 read back as -1.
TEST(NativeLinuxOptions, NotsentLowatValues) {
  NativePair p;
  int s = p.a->socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(get_int(*p.a, s, IPPROTO_TCP, TCP_NOTSENT_LOWAT), 0);
  for (int v : {-1, 0, 1, 100}) {
    EXPECT_EQ(set_int(*p.a, s, IPPROTO_TCP, TCP_NOTSENT_LOWAT, v), 0);
    EXPECT_EQ(get_int(*p.a, s, IPPROTO_TCP, TCP_NOTSENT_LOWAT), v);
  }
}

// tcp_set_window_clamp: 0 only while closed (else EINVAL), anything else at
// least SOCK_MIN_RCVBUF / 2 (negative included); 0 on a fresh socket.
TEST(NativeLinuxOptions, WindowClampValues) {
  NativePair p;
  int s = p.a->socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(get_int(*p.a, s, IPPROTO_TCP, TCP_WINDOW_CLAMP), 0);
  const std::pair<int, int> cases[] = {{0, 0}, {-1, 1152}, {1, 1152}, {100, 1152}, {5000, 5000}, {1 << 20, 1 << 20}};
  for (auto [in, out] : cases) {
    EXPECT_EQ(set_int(*p.a, s, IPPROTO_TCP, TCP_WINDOW_CLAMP, in), 0);
    EXPECT_EQ(get_int(*p.a, s, IPPROTO_TCP, TCP_WINDOW_CLAMP), out) << in;
  }
  auto [c, srv] = p.connected(71);
  EXPECT_GT(get_int(*p.a, c, IPPROTO_TCP, TCP_WINDOW_CLAMP), 0);
  EXPECT_EQ(set_int(*p.a, c, IPPROTO_TCP, TCP_WINDOW_CLAMP, 0), EINVAL);
  EXPECT_EQ(set_int(*p.a, c, IPPROTO_TCP, TCP_WINDOW_CLAMP, -1), 0);
  EXPECT_EQ(get_int(*p.a, c, IPPROTO_TCP, TCP_WINDOW_CLAMP), 1152);
}

}  // namespace
}  // namespace xs
