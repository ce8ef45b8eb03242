// Differential test harness: one case body, two runs (kernel sockets in the
// lab's namespace a at 198.18.0.1, then xstack on the lab's interface at
// 198.18.0.3), the same kernel peer in namespace b (198.18.0.2). Each run
// records an observation log; the logs must be equal line by line.
//
// Logs hold only values that must match: fds print as FD, our own address as
// LOCAL, the peer's as PEER, ports outside the cases' fixed range [20000,21000)
// as EPH.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>

#include "tests/diff/socket_ops.hpp"

namespace xsdiff {

constexpr uint16_t kFixedPortLo = 20000;
constexpr uint16_t kFixedPortHi = 21000;

class Session {
 public:
  Session(SocketOps& ops, bool xstack, uint32_t local_ip, int log_fd, int ns_a_fd, int ns_b_fd);

  SocketOps& ops;
  const bool xstack;

  // ---- the log ------------------------------------------------------------
  void line(const std::string& text);
  // "step -> ret" or "step -> -1 ENAME"; errno is read before anything else.
  long rec(const char* step, long ret);
  // Like rec, but a non-negative ret (a descriptor) prints as FD.
  long rec_fd(const char* step, long ret);
  void log_result(const std::string& step, long ret, int err, const std::string& extra = "", bool fd = false);
  // "check WHAT: ok" / "check WHAT: FAILED" (a kernel FAILED means the body's
  // assumption about Linux is wrong: the test fails in every mode).
  bool check(bool cond, const std::string& what);

  // ---- addresses ----------------------------------------------------------
  uint32_t local_ip;  // host order: 198.18.0.1 (kernel) or 198.18.0.3 (xstack)
  static constexpr uint32_t kPeerIp = (198u << 24) | (18u << 16) | 2u;
  sockaddr_in local(uint16_t port) const;
  sockaddr_in peer(uint16_t port) const;
  std::string norm(const sockaddr_in& sa) const;  // LOCAL:20001, PEER:EPH, ...
  std::string norm_addr(uint32_t addr_net) const;  // LOCAL, PEER, or dotted (network order in)
  // The kernel's index of the lab interface both runs use (namespace a).
  int lab_ifindex() const;

  // ---- the body's socket (through ops), logged ----------------------------
  int tcp_socket(int extra_type_flags = 0);
  long connect_to_peer(int fd, uint16_t port, const char* step = "connect");
  long bind_local(int fd, uint16_t port, const char* step = "bind");
  long poll1(int fd, short events, int timeout_ms, const char* step = "poll");
  long recv_str(int fd, size_t max, int flags, const char* step = "recv", std::string* out = nullptr);
  long send_str(int fd, const std::string& data, int flags = MSG_NOSIGNAL, const char* step = "send");
  long getsockopt_int(int fd, int level, int name, const char* label);
  long setsockopt_int(int fd, int level, int name, int value, const char* label);
  long sockname(int fd, const char* step = "getsockname", sockaddr_in* out = nullptr);
  long peername(int fd, const char* step = "getpeername", sockaddr_in* out = nullptr);
  long close(int fd, const char* step = "close");
  void sleep_ms(int ms);

  // ---- the kernel peer in namespace b (libc, bounded by timeouts) ---------
  // TCP, or UDP when type_flags has SOCK_DGRAM; SOCK_NONBLOCK honoured. Not
  // logged unless it fails (-1).
  int peer_socket(int type_flags = 0);
  int peer_listen(uint16_t port, int backlog = 16);
  int peer_udp(uint16_t port);  // bound to PEER:port
  int peer_accept(int lfd, int timeout_ms = 3000, sockaddr_in* from = nullptr);
  // Connects to LOCAL:port; nonblocking: returns the fd with the connect in
  // progress (logged as EINPROGRESS).
  int peer_connect(uint16_t port, bool nonblocking = false);
  long peer_send(int fd, const std::string& data);
  // send(2) with flags (MSG_OOB, ...), logged under `step`.
  long peer_send_flags(int fd, const std::string& data, int flags, const char* step);
  // Urgent data: waits up to timeout_ms for POLLPRI (logged as timeout when
  // it does not come), then recv(1, MSG_OOB | flags | MSG_DONTWAIT), logged.
  long peer_recv_oob(int fd, int flags = 0, int timeout_ms = 3000, const char* step = "peer.recv(MSG_OOB)");
  long peer_recv(int fd, size_t max = 4096, int timeout_ms = 3000, std::string* out = nullptr);
  // Reads until n bytes arrived (or EOF/error/timeout): segment boundaries and
  // timing do not leak into the log.
  long peer_recv_exact(int fd, size_t n, int timeout_ms = 3000);
  // Reads until EOF/error/timeout; logs the total and how it ended.
  long peer_recv_until_eof(int fd, int timeout_ms = 3000);
  void peer_close(int fd);

 private:
  int log_fd_;
  int ns_a_fd_;
  int ns_b_fd_;
};

// poll/epoll event bits as names: "IN|OUT", "0" for none.
std::string events_str(uint32_t ev);

using Body = std::function<void(Session&)>;

// Runs body on the kernel and (unless XS_DIFF_KERNEL_ONLY=1) on xstack, in the
// lab this process created, and compares the logs (gtest failures on mismatch).
void run_diff(const char* case_name, const Body& body);

// gtest fixture: creates a lab (tools/xstack-lab up) for each test and tears it
// down afterwards, also on SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGABRT/SIGSEGV. Not
// root: fails with CI=true, else skips.
class DiffTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
};

}  // namespace xsdiff
