// Differential cases: each body runs on the kernel and on xstack (see
// diff_harness.hpp); the logs must match. Ports in [20000,21000) are fixed
// per case and compared raw; everything else is normalised.
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "tests/diff/diff_harness.hpp"

namespace xsdiff {
namespace {

constexpr int kWait = 2000;  // ms: poll/epoll waits for something that must happen

// Connects a blocking body socket to a peer listener on `port`; returns the
// body fd, the peer's accepted fd in *peer_fd.
int connected_pair(Session& r, uint16_t port, int* peer_lfd, int* peer_fd) {
  *peer_lfd = r.peer_listen(port);
  const int fd = r.tcp_socket();
  r.connect_to_peer(fd, port);
  *peer_fd = r.peer_accept(*peer_lfd);
  return fd;
}

// ---- connect ------------------------------------------------------------------------
TEST_F(DiffTest, ConnectClosedPortRefused) {
  run_diff("ConnectClosedPortRefused", [](Session& r) {
    const int fd = r.tcp_socket();
    r.connect_to_peer(fd, 20001);
    r.getsockopt_int(fd, SOL_SOCKET, SO_ERROR, "SO_ERROR");
    r.connect_to_peer(fd, 20001, "connect again");
    r.close(fd);
  });
}

TEST_F(DiffTest, ConnectSendRecvEcho) {
  run_diff("ConnectSendRecvEcho", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20002, &lfd, &pfd);
    r.send_str(fd, "hello");
    r.peer_recv(pfd);
    r.peer_send(pfd, "world!");
    r.poll1(fd, POLLIN, kWait);
    r.recv_str(fd, 100, 0);
    r.close(fd);
    r.peer_recv(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, NonblockingConnect) {
  run_diff("NonblockingConnect", [](Session& r) {
    const int lfd = r.peer_listen(20003);
    const int fd = r.tcp_socket(SOCK_NONBLOCK);
    r.connect_to_peer(fd, 20003);
    r.poll1(fd, POLLOUT, kWait);
    r.getsockopt_int(fd, SOL_SOCKET, SO_ERROR, "SO_ERROR");
    r.connect_to_peer(fd, 20003, "connect 2nd");
    r.connect_to_peer(fd, 20003, "connect 3rd");
    r.rec("fcntl(F_GETFL)&O_NONBLOCK", r.ops.fcntl(fd, F_GETFL, 0) & O_NONBLOCK);
    const int pfd = r.peer_accept(lfd);
    r.close(fd);
    r.peer_recv(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, NonblockingConnectRefused) {
  run_diff("NonblockingConnectRefused", [](Session& r) {
    const int fd = r.tcp_socket(SOCK_NONBLOCK);
    r.connect_to_peer(fd, 20004);
    r.poll1(fd, POLLOUT, kWait);
    r.getsockopt_int(fd, SOL_SOCKET, SO_ERROR, "SO_ERROR");
    r.getsockopt_int(fd, SOL_SOCKET, SO_ERROR, "SO_ERROR again");
    r.close(fd);
  });
}

// ---- receive ------------------------------------------------------------------------
TEST_F(DiffTest, RecvEmptyNonblocking) {
  run_diff("RecvEmptyNonblocking", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20005, &lfd, &pfd);
    r.recv_str(fd, 100, MSG_DONTWAIT, "recv(MSG_DONTWAIT)");
    const int fl = r.ops.fcntl(fd, F_GETFL, 0);
    r.rec("fcntl(F_SETFL, |O_NONBLOCK)", r.ops.fcntl(fd, F_SETFL, fl | O_NONBLOCK));
    r.recv_str(fd, 100, 0, "recv nonblocking");
    int n = -1;
    r.rec("ioctl(FIONREAD)", r.ops.ioctl(fd, FIONREAD, &n));
    r.line("FIONREAD=" + std::to_string(n));
    r.poll1(fd, POLLIN | POLLOUT, 0);
    r.close(fd);
    r.peer_recv(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, PeekThenRecv) {
  run_diff("PeekThenRecv", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20006, &lfd, &pfd);
    r.peer_send(pfd, "abcdef");
    r.poll1(fd, POLLIN, kWait);
    int n = -1;
    r.rec("ioctl(FIONREAD)", r.ops.ioctl(fd, FIONREAD, &n));
    r.line("FIONREAD=" + std::to_string(n));
    r.recv_str(fd, 4, MSG_PEEK, "recv(4, MSG_PEEK)");
    r.recv_str(fd, 100, MSG_PEEK, "recv(100, MSG_PEEK)");
    r.recv_str(fd, 100, 0, "recv(100)");
    r.recv_str(fd, 100, MSG_DONTWAIT, "recv(MSG_DONTWAIT) empty");
    r.close(fd);
    r.peer_recv(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// ---- shutdown and close -------------------------------------------------------------
TEST_F(DiffTest, ShutdownWrPeerSeesEof) {
  run_diff("ShutdownWrPeerSeesEof", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20007, &lfd, &pfd);
    r.send_str(fd, "bye");
    r.rec("shutdown(SHUT_WR)", r.ops.shutdown(fd, SHUT_WR));
    r.peer_recv(pfd);
    r.peer_recv(pfd);
    r.send_str(fd, "more", MSG_NOSIGNAL, "send after SHUT_WR");
    r.peer_send(pfd, "late reply");
    r.poll1(fd, POLLIN, kWait);
    r.recv_str(fd, 100, 0);
    r.peer_close(pfd);
    r.poll1(fd, POLLIN | POLLRDHUP, kWait);
    r.recv_str(fd, 100, 0, "recv at EOF");
    r.close(fd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, CloseWithUnreadDataSendsRst) {
  run_diff("CloseWithUnreadDataSendsRst", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20008, &lfd, &pfd);
    r.peer_send(pfd, "never read");
    r.poll1(fd, POLLIN, kWait);
    r.close(fd);
    r.peer_recv(pfd);
    r.peer_send(pfd, "after reset");
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, LingerZeroCloseSendsRst) {
  run_diff("LingerZeroCloseSendsRst", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20009, &lfd, &pfd);
    linger lg{1, 0};
    r.rec("setsockopt(SO_LINGER {1,0})", r.ops.setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
    linger got{-1, -1};
    socklen_t len = sizeof(got);
    r.rec("getsockopt(SO_LINGER)", r.ops.getsockopt(fd, SOL_SOCKET, SO_LINGER, &got, &len));
    r.line("SO_LINGER={" + std::to_string(got.l_onoff) + "," + std::to_string(got.l_linger) +
           "} len=" + std::to_string(len));
    r.send_str(fd, "data");
    r.peer_recv(pfd);
    r.close(fd);
    r.peer_recv(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// tcp_close: TCP_LINGER2 < 0 resets a connection closed in FIN_WAIT_2 (our
// FIN acknowledged, the peer's not yet sent): the peer's next send fails.
TEST_F(DiffTest, Linger2NegativeResetsInFinWait2) {
  run_diff("Linger2NegativeResetsInFinWait2", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20178, &lfd, &pfd);
    r.setsockopt_int(fd, IPPROTO_TCP, TCP_LINGER2, -1, "TCP_LINGER2");
    r.rec("shutdown(SHUT_WR)", r.ops.shutdown(fd, SHUT_WR));
    r.peer_recv(pfd);  // EOF: our FIN arrived (and is acknowledged)
    r.sleep_ms(100);
    r.close(fd);
    r.sleep_ms(100);
    r.peer_send_flags(pfd, "x", MSG_NOSIGNAL, "peer.send after the RST");  // ECONNRESET
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// ---- options ------------------------------------------------------------------------
TEST_F(DiffTest, SockoptDefaults) {
  run_diff("SockoptDefaults", [](Session& r) {
    const int fd = r.tcp_socket();
    r.getsockopt_int(fd, SOL_SOCKET, SO_TYPE, "SO_TYPE");
    r.getsockopt_int(fd, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN");
    r.getsockopt_int(fd, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL");
    r.getsockopt_int(fd, SOL_SOCKET, SO_ERROR, "SO_ERROR");
    r.getsockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN");
    r.getsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");
    r.getsockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE");
    r.setsockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
    r.getsockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE");
    r.setsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, 4096, "SO_RCVBUF");
    r.getsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF");
    r.setsockopt_int(fd, SOL_SOCKET, SO_SNDBUF, 4096, "SO_SNDBUF");
    r.getsockopt_int(fd, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY");
    r.setsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_MAXSEG, "TCP_MAXSEG before connect");
    // A short buffer: Linux truncates the int (len reported as given).
    char one = 0x7f;
    socklen_t len = 1;
    r.rec("getsockopt(SO_TYPE, len=1)", r.ops.getsockopt(fd, SOL_SOCKET, SO_TYPE, &one, &len));
    r.line("val=" + std::to_string(int(one)) + " len=" + std::to_string(len));
    r.close(fd);
  });
}

TEST_F(DiffTest, UnknownOptionNoProtoOpt) {
  run_diff("UnknownOptionNoProtoOpt", [](Session& r) {
    const int fd = r.tcp_socket();
    r.getsockopt_int(fd, SOL_SOCKET, 9999, "SOL_SOCKET/9999");
    r.setsockopt_int(fd, SOL_SOCKET, 9999, 1, "SOL_SOCKET/9999");
    r.getsockopt_int(fd, IPPROTO_TCP, 9999, "IPPROTO_TCP/9999");
    r.setsockopt_int(fd, IPPROTO_TCP, 9999, 1, "IPPROTO_TCP/9999");
    r.getsockopt_int(fd, IPPROTO_IP, 9999, "IPPROTO_IP/9999");
    r.getsockopt_int(fd, 9999, 1, "level 9999/1");
    r.close(fd);
  });
}

// ---- bind / listen / accept ---------------------------------------------------------
TEST_F(DiffTest, BindTwiceEinval) {
  run_diff("BindTwiceEinval", [](Session& r) {
    const int fd = r.tcp_socket();
    r.bind_local(fd, 20011);
    r.bind_local(fd, 20012, "bind again");
    r.sockname(fd);
    const int fd2 = r.tcp_socket();
    r.bind_local(fd2, 20011, "bind in use");
    sockaddr_in other = r.local(20013);
    other.sin_addr.s_addr = htonl((198u << 24) | (18u << 16) | 99u);
    r.rec("bind 198.18.0.99", r.ops.bind(fd2, reinterpret_cast<sockaddr*>(&other), sizeof(other)));
    r.close(fd2);
    r.close(fd);
  });
}

TEST_F(DiffTest, ListenAcceptKernelClient) {
  run_diff("ListenAcceptKernelClient", [](Session& r) {
    const int ls = r.tcp_socket();
    r.setsockopt_int(ls, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    r.bind_local(ls, 20014);
    r.rec("listen", r.ops.listen(ls, 8));
    r.getsockopt_int(ls, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN");
    const int c = r.peer_connect(20014);
    if (r.poll1(ls, POLLIN, kWait) != 1) return;
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    const int fd = int(r.rec_fd("accept4", r.ops.accept4(ls, reinterpret_cast<sockaddr*>(&from), &len, 0)));
    r.line("accepted from " + r.norm(from) + " len=" + std::to_string(len));
    r.sockname(fd);
    r.peername(fd);
    r.peer_send(c, "ping");
    r.poll1(fd, POLLIN, kWait);
    r.recv_str(fd, 100, 0);
    r.send_str(fd, "pong");
    r.peer_recv(c);
    r.close(fd);
    r.peer_recv(c);
    r.peer_close(c);
    r.rec("fcntl(F_SETFL, O_NONBLOCK)", r.ops.fcntl(ls, F_SETFL, O_NONBLOCK));
    r.rec_fd("accept4 nothing pending", r.ops.accept4(ls, nullptr, nullptr, 0));
    r.close(ls);
  });
}

TEST_F(DiffTest, AcceptFullBacklog) {
  run_diff("AcceptFullBacklog", [](Session& r) {
    const int ls = r.tcp_socket(SOCK_NONBLOCK);
    r.bind_local(ls, 20015);
    r.rec("listen(1)", r.ops.listen(ls, 1));
    int c[3];
    // Spaced so each handshake completes before the next SYN: the kernel does
    // the whole handshake inside connect() over veth, so back-to-back SYNs
    // would meet a different queue state on xstack (SYN cookies) than on the
    // kernel.
    for (int i = 0; i < 3; ++i) {
      c[i] = r.peer_connect(20015, true);
      r.sleep_ms(100);
    }
    r.sleep_ms(300);
    for (int i = 0; i < 3; ++i) {
      pollfd p{c[i], POLLOUT, 0};
      const int n = ::poll(&p, 1, 0);
      r.line("peer client " + std::to_string(i) + " connected at 500ms: " + (n == 1 ? "yes" : "no"));
    }
    r.poll1(ls, POLLIN, 0);
    r.rec_fd("accept4 #1", r.ops.accept4(ls, nullptr, nullptr, 0));
    r.rec_fd("accept4 #2", r.ops.accept4(ls, nullptr, nullptr, 0));
    r.rec_fd("accept4 #3 (queue empty)", r.ops.accept4(ls, nullptr, nullptr, 0));
    // The dropped SYN is retransmitted (1 s) and now fits.
    r.poll1(ls, POLLIN, 3000, "poll for the retransmitted SYN");
    r.rec_fd("accept4 #3", r.ops.accept4(ls, nullptr, nullptr, 0));
    for (int i = 0; i < 3; ++i) {
      pollfd p{c[i], POLLOUT, 0};
      const int n = ::poll(&p, 1, 0);
      r.line("peer client " + std::to_string(i) + " connected at end: " + (n == 1 ? "yes" : "no"));
      r.peer_close(c[i]);
    }
    r.close(ls);
  });
}

TEST_F(DiffTest, ReuseAddrOnTimeWaitPort) {
  run_diff("ReuseAddrOnTimeWaitPort", [](Session& r) {
    const int ls = r.tcp_socket();
    r.setsockopt_int(ls, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    r.bind_local(ls, 20016);
    r.rec("listen", r.ops.listen(ls, 8));
    const int c = r.peer_connect(20016);
    if (r.poll1(ls, POLLIN, kWait) != 1) return;  // a blocking accept would hang
    const int fd = int(r.rec_fd("accept4", r.ops.accept4(ls, nullptr, nullptr, 0)));
    r.close(fd);  // active close: this side goes to TIME_WAIT
    r.peer_recv(c);
    r.peer_close(c);
    r.close(ls);
    r.sleep_ms(200);
    const int s1 = r.tcp_socket();
    r.bind_local(s1, 20016, "bind without SO_REUSEADDR (TIME_WAIT)");
    r.close(s1);
    const int s2 = r.tcp_socket();
    r.setsockopt_int(s2, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    r.bind_local(s2, 20016, "bind with SO_REUSEADDR");
    r.rec("listen", r.ops.listen(s2, 8));
    const int c2 = r.peer_connect(20016);
    if (r.poll1(s2, POLLIN, kWait) != 1) return;
    const int fd2 = int(r.rec_fd("accept4", r.ops.accept4(s2, nullptr, nullptr, 0)));
    r.close(fd2);
    r.peer_recv(c2);
    r.peer_close(c2);
    r.close(s2);
  });
}

TEST_F(DiffTest, GetsocknameGetpeername) {
  run_diff("GetsocknameGetpeername", [](Session& r) {
    const int fd = r.tcp_socket();
    r.sockname(fd, "getsockname unbound");
    r.peername(fd, "getpeername unconnected");
    const int lfd = r.peer_listen(20017);
    r.connect_to_peer(fd, 20017);
    sockaddr_in mine{};
    r.sockname(fd, "getsockname", &mine);
    r.peername(fd);
    sockaddr_in seen{};
    const int pfd = r.peer_accept(lfd, 3000, &seen);
    r.check(seen.sin_port == mine.sin_port, "the peer sees our getsockname port");
    r.check(ntohs(mine.sin_port) != 0, "ephemeral port assigned");
    socklen_t small = 4;
    sockaddr_in sa{};
    r.rec("getsockname(len=4)", r.ops.getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &small));
    r.line("len after=" + std::to_string(small) + " family=" + std::to_string(sa.sin_family));
    r.close(fd);
    r.peer_recv(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// ---- readiness ----------------------------------------------------------------------
TEST_F(DiffTest, EpollLevelVsEdgeTriggered) {
  run_diff("EpollLevelVsEdgeTriggered", [](Session& r) {
    int lfd, p1, p2;
    const int lt = connected_pair(r, 20018, &lfd, &p1);
    const int fd2 = r.tcp_socket();
    r.connect_to_peer(fd2, 20018);
    p2 = r.peer_accept(lfd);
    const int et = fd2;
    const int ep = int(r.rec_fd("epoll_create1", r.ops.epoll_create1(EPOLL_CLOEXEC)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = 1;
    r.rec("epoll_ctl(ADD lt, EPOLLIN)", r.ops.epoll_ctl(ep, EPOLL_CTL_ADD, lt, &ev));
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u32 = 2;
    r.rec("epoll_ctl(ADD et, EPOLLIN|EPOLLET)", r.ops.epoll_ctl(ep, EPOLL_CTL_ADD, et, &ev));
    r.rec("epoll_ctl(ADD et again)", r.ops.epoll_ctl(ep, EPOLL_CTL_ADD, et, &ev));
    auto wait = [&](const char* step, int timeout) {
      epoll_event evs[4]{};
      const int n = r.ops.epoll_wait(ep, evs, 4, timeout);
      const int e = errno;
      std::string extra;
      for (int i = 0; i < n; ++i)
        extra += " {" + std::to_string(evs[i].data.u32) + ":" + events_str(evs[i].events) + "}";
      r.log_result(step, n, e, extra);
    };
    wait("epoll_wait idle", 0);
    r.peer_send(p1, "lt-data");
    wait("epoll_wait lt data", kWait);
    wait("epoll_wait lt again (level: still ready)", 0);
    r.recv_str(lt, 100, 0);
    wait("epoll_wait lt drained", 0);
    r.peer_send(p2, "et-data");
    wait("epoll_wait et data", kWait);
    wait("epoll_wait et again (edge: reported once)", 0);
    r.peer_send(p2, "more");
    wait("epoll_wait et new data", kWait);
    r.recv_str(et, 100, 0);
    wait("epoll_wait et drained", 0);
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = 1;
    r.rec("epoll_ctl(MOD lt, EPOLLIN|EPOLLOUT)", r.ops.epoll_ctl(ep, EPOLL_CTL_MOD, lt, &ev));
    wait("epoll_wait writable", 0);
    r.rec("epoll_ctl(DEL lt)", r.ops.epoll_ctl(ep, EPOLL_CTL_DEL, lt, nullptr));
    r.rec("epoll_ctl(DEL lt again)", r.ops.epoll_ctl(ep, EPOLL_CTL_DEL, lt, nullptr));
    r.close(ep);
    r.close(lt);
    r.close(et);
    r.peer_close(p1);
    r.peer_close(p2);
    r.peer_close(lfd);
  });
}

// Nested epoll: an epoll instance in another reports EPOLLIN while it has
// events (LT and ET), cycles and self-adds are refused, and closing the
// inner instance removes it from the outer one.
TEST_F(DiffTest, NestedEpoll) {
  run_diff("NestedEpoll", [](Session& r) {
    int lfd, p1;
    const int fd = connected_pair(r, 20047, &lfd, &p1);
    const int inner = int(r.rec_fd("epoll_create1 inner", r.ops.epoll_create1(0)));
    const int outer = int(r.rec_fd("epoll_create1 outer", r.ops.epoll_create1(0)));
    const int et_outer = int(r.rec_fd("epoll_create1 et outer", r.ops.epoll_create1(0)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = 7;
    r.rec("ADD socket to inner", r.ops.epoll_ctl(inner, EPOLL_CTL_ADD, fd, &ev));
    ev.data.u32 = 8;
    r.rec("ADD inner to outer", r.ops.epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev));
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u32 = 9;
    r.rec("ADD inner to et outer", r.ops.epoll_ctl(et_outer, EPOLL_CTL_ADD, inner, &ev));
    ev.events = EPOLLIN;
    r.rec("ADD outer to inner (cycle)", r.ops.epoll_ctl(inner, EPOLL_CTL_ADD, outer, &ev));
    r.rec("ADD outer to itself", r.ops.epoll_ctl(outer, EPOLL_CTL_ADD, outer, &ev));
    auto wait = [&](int ep, const char* step, int timeout) {
      epoll_event evs[4]{};
      const int n = r.ops.epoll_wait(ep, evs, 4, timeout);
      const int e = errno;
      std::string extra;
      for (int i = 0; i < n; ++i)
        extra += " {" + std::to_string(evs[i].data.u32) + ":" + events_str(evs[i].events) + "}";
      r.log_result(step, n, e, extra);
    };
    wait(outer, "outer idle", 0);
    wait(et_outer, "et outer idle", 0);
    r.peer_send(p1, "nested");
    wait(outer, "outer: inner has an event", kWait);
    wait(outer, "outer again (level)", 0);
    wait(et_outer, "et outer: inner has an event", kWait);
    wait(et_outer, "et outer again (edge: once)", 0);
    pollfd pf{inner, POLLIN, 0};
    r.rec("poll(inner) readiness", r.ops.poll(&pf, 1, 0));
    r.rec("poll(inner) revents", pf.revents);
    wait(inner, "inner itself", 0);
    r.recv_str(fd, 100, 0);
    wait(outer, "outer after the data is read", 0);
    r.close(inner);
    wait(outer, "outer after inner closed", 0);
    r.rec("DEL inner after close", r.ops.epoll_ctl(outer, EPOLL_CTL_DEL, inner, nullptr));
    r.close(outer);
    r.close(et_outer);
    r.close(fd);
    r.peer_close(p1);
    r.peer_close(lfd);
  });
}

// ---- errors on the wrong state ------------------------------------------------------
TEST_F(DiffTest, WrongStateErrors) {
  run_diff("WrongStateErrors", [](Session& r) {
    const int fd = r.tcp_socket();
    r.send_str(fd, "x", MSG_NOSIGNAL, "send unconnected");
    r.recv_str(fd, 10, MSG_DONTWAIT, "recv unconnected");
    r.rec("shutdown unconnected", r.ops.shutdown(fd, SHUT_RDWR));
    r.rec_fd("accept4 not listening", r.ops.accept4(fd, nullptr, nullptr, SOCK_NONBLOCK));
    r.rec("shutdown(bad how)", r.ops.shutdown(fd, 7));
    r.rec("listen", r.ops.listen(fd, 4));
    r.sockname(fd, "getsockname after listen (autobind)");
    r.connect_to_peer(fd, 20019, "connect on listener");
    r.close(fd);
    r.rec("close(-1)", r.ops.close(-1));
    r.rec_fd("socket(SOCK_STREAM, IPPROTO_UDP)", r.ops.socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
  });
}

// ---- the peer closes or resets ------------------------------------------------------
TEST_F(DiffTest, PeerFinThenSend) {
  run_diff("PeerFinThenSend", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20020, &lfd, &pfd);
    r.peer_send(pfd, "last words");
    r.rec("peer.shutdown(SHUT_WR)", ::shutdown(pfd, SHUT_WR));
    // Data and FIN are two segments: over AF_XDP the data can be seen alone first,
    // as with any kernel peer across a real wire. Wait for the FIN, then compare.
    r.poll1(fd, POLLRDHUP, kWait, "poll until the FIN arrives");
    r.poll1(fd, POLLIN | POLLRDHUP, 0);
    r.recv_str(fd, 100, 0);
    r.poll1(fd, POLLIN | POLLOUT | POLLRDHUP, kWait, "poll at EOF");
    r.recv_str(fd, 100, 0, "recv at EOF");
    r.recv_str(fd, 100, 0, "recv at EOF again");
    r.send_str(fd, "still open");  // half-closed: the peer can read this
    r.peer_recv(pfd);
    r.close(fd);
    r.peer_recv(pfd, 4096, 3000);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, PeerResetSeen) {
  run_diff("PeerResetSeen", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20021, &lfd, &pfd);
    linger lg{1, 0};
    ::setsockopt(pfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    ::close(pfd);
    r.line("peer closed with SO_LINGER {1,0} (RST)");
    r.poll1(fd, POLLIN, kWait,
            "poll until the RST arrives");  // POLLOUT alone is ready before it
    r.poll1(fd, POLLIN | POLLOUT | POLLRDHUP, 0);
    r.getsockopt_int(fd, SOL_SOCKET, SO_ERROR, "SO_ERROR");
    r.recv_str(fd, 100, MSG_DONTWAIT, "recv after RST");
    r.recv_str(fd, 100, MSG_DONTWAIT, "recv after RST again");
    r.send_str(fd, "x", MSG_NOSIGNAL, "send after RST");
    r.poll1(fd, POLLIN | POLLOUT, 0, "poll after RST");
    r.close(fd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, ShutdownRd) {
  run_diff("ShutdownRd", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20022, &lfd, &pfd);
    r.rec("shutdown(SHUT_RD)", r.ops.shutdown(fd, SHUT_RD));
    r.poll1(fd, POLLIN | POLLOUT | POLLRDHUP, 0);
    r.recv_str(fd, 100, MSG_DONTWAIT, "recv after SHUT_RD");
    r.send_str(fd, "can still send");
    r.peer_recv(pfd);
    r.rec("shutdown(SHUT_RDWR)", r.ops.shutdown(fd, SHUT_RDWR));
    r.peer_recv(pfd);
    r.close(fd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// ---- socket state and flags ---------------------------------------------------------
TEST_F(DiffTest, FreshSocketPollAndFlags) {
  run_diff("FreshSocketPollAndFlags", [](Session& r) {
    const int fd = r.tcp_socket();
    r.poll1(fd, POLLIN | POLLOUT | POLLRDHUP, 0, "poll fresh");
    r.rec("fcntl(F_GETFD)", r.ops.fcntl(fd, F_GETFD, 0));
    r.rec("fcntl(F_GETFL)&O_NONBLOCK", r.ops.fcntl(fd, F_GETFL, 0) & O_NONBLOCK);
    int on = 1;
    r.rec("ioctl(FIONBIO, 1)", r.ops.ioctl(fd, FIONBIO, &on));
    r.rec("fcntl(F_GETFL)&O_NONBLOCK after FIONBIO", r.ops.fcntl(fd, F_GETFL, 0) & O_NONBLOCK);
    r.rec("fcntl(F_SETFD, FD_CLOEXEC)", r.ops.fcntl(fd, F_SETFD, FD_CLOEXEC));
    r.rec("fcntl(F_GETFD)", r.ops.fcntl(fd, F_GETFD, 0));
    r.close(fd);
    const int fd2 = r.tcp_socket(SOCK_CLOEXEC | SOCK_NONBLOCK);
    r.rec("fcntl(F_GETFD) SOCK_CLOEXEC", r.ops.fcntl(fd2, F_GETFD, 0));
    r.rec("fcntl(F_GETFL)&O_NONBLOCK SOCK_NONBLOCK", r.ops.fcntl(fd2, F_GETFL, 0) & O_NONBLOCK);
    r.rec("listen", r.ops.listen(fd2, 4));
    r.poll1(fd2, POLLIN | POLLOUT, 0, "poll idle listener");
    r.close(fd2);
  });
}

TEST_F(DiffTest, AcceptFlagsAndInheritance) {
  run_diff("AcceptFlagsAndInheritance", [](Session& r) {
    const int ls = r.tcp_socket(SOCK_NONBLOCK);
    r.setsockopt_int(ls, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY on listener");
    r.setsockopt_int(ls, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE on listener");
    r.bind_local(ls, 20024);
    r.rec("listen", r.ops.listen(ls, 8));
    const int c1 = r.peer_connect(20024);
    const int c2 = r.peer_connect(20024);
    if (r.poll1(ls, POLLIN, kWait) != 1) return;
    r.sleep_ms(100);
    const int a1 = int(r.rec_fd("accept4(0)", r.ops.accept4(ls, nullptr, nullptr, 0)));
    const int a2 = int(r.rec_fd("accept4(SOCK_NONBLOCK|SOCK_CLOEXEC)",
                                r.ops.accept4(ls, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)));
    r.rec("a1 F_GETFL&O_NONBLOCK (not inherited)", r.ops.fcntl(a1, F_GETFL, 0) & O_NONBLOCK);
    r.rec("a1 F_GETFD", r.ops.fcntl(a1, F_GETFD, 0));
    r.rec("a2 F_GETFL&O_NONBLOCK", r.ops.fcntl(a2, F_GETFL, 0) & O_NONBLOCK);
    r.rec("a2 F_GETFD", r.ops.fcntl(a2, F_GETFD, 0));
    r.getsockopt_int(a1, IPPROTO_TCP, TCP_NODELAY, "a1 TCP_NODELAY (inherited)");
    r.getsockopt_int(a1, SOL_SOCKET, SO_KEEPALIVE, "a1 SO_KEEPALIVE (inherited)");
    r.getsockopt_int(a1, IPPROTO_TCP, TCP_MAXSEG, "a1 TCP_MAXSEG");
    r.getsockopt_int(a1, SOL_SOCKET, SO_ACCEPTCONN, "a1 SO_ACCEPTCONN");
    r.close(a1);
    r.close(a2);
    r.peer_recv(c1);
    r.peer_recv(c2);
    r.peer_close(c1);
    r.peer_close(c2);
    r.close(ls);
  });
}

TEST_F(DiffTest, RcvTimeoTimesOut) {
  run_diff("RcvTimeoTimesOut", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20025, &lfd, &pfd);
    timeval tv{0, 300000};
    r.rec("setsockopt(SO_RCVTIMEO 300ms)", r.ops.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
    timeval got{};
    socklen_t len = sizeof(got);
    r.rec("getsockopt(SO_RCVTIMEO)", r.ops.getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &got, &len));
    r.line("SO_RCVTIMEO={" + std::to_string(got.tv_sec) + "," + std::to_string(got.tv_usec) + "}");
    const auto t0 = std::chrono::steady_clock::now();
    r.recv_str(fd, 100, 0, "recv blocking with timeout");
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    r.check(ms >= 250 && ms < 1500, "recv waited about 300 ms");
    r.close(fd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// ---- bulk data and send-buffer limits -----------------------------------------------
std::string pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 7 + seed + i / 4093) % 251);
  return s;
}

TEST_F(DiffTest, BulkBothWays) {
  run_diff("BulkBothWays", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20026, &lfd, &pfd);
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_MAXSEG, "TCP_MAXSEG connected");
    constexpr size_t kN = 4u << 20;
    const std::string out = pattern(kN, 1), back = pattern(kN, 2);
    std::string got_peer, got_body;
    size_t sent = 0, psent = 0;
    const int bfl = r.ops.fcntl(fd, F_GETFL, 0);
    r.ops.fcntl(fd, F_SETFL, bfl | O_NONBLOCK);
    ::fcntl(pfd, F_SETFL, ::fcntl(pfd, F_GETFL, 0) | O_NONBLOCK);
    std::string err;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(12);
    char buf[65536];
    while ((got_peer.size() < kN || got_body.size() < kN) && std::chrono::steady_clock::now() < deadline) {
      if (sent < kN) {
        const ssize_t n = r.ops.send(fd, out.data() + sent, std::min<size_t>(kN - sent, 65536), MSG_NOSIGNAL);
        if (n > 0)
          sent += size_t(n);
        else if (n < 0 && errno != EAGAIN)
          err += " send:" + std::to_string(errno);
      }
      if (psent < kN) {
        const ssize_t n = ::send(pfd, back.data() + psent, std::min<size_t>(kN - psent, 65536), MSG_NOSIGNAL);
        if (n > 0) psent += size_t(n);
      }
      ssize_t n;
      while ((n = ::recv(pfd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) got_peer.append(buf, size_t(n));
      while ((n = r.ops.recv(fd, buf, sizeof(buf), 0)) > 0) got_body.append(buf, size_t(n));
      if (n < 0 && errno != EAGAIN) err += " recv:" + std::to_string(errno);
      pollfd p{pfd, POLLIN, 0};
      ::poll(&p, 1, 1);
      if (err.size() > 200) break;
    }
    r.line("body sent " + std::to_string(sent) + ", peer got " + std::to_string(got_peer.size()) +
           (got_peer == out ? " (intact)" : " (CORRUPT)"));
    r.line("peer sent " + std::to_string(psent) + ", body got " + std::to_string(got_body.size()) +
           (got_body == back ? " (intact)" : " (CORRUPT)"));
    r.line("errors:" + (err.empty() ? std::string(" none") : err));
    r.close(fd);
    r.peer_recv(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, SendBufferFillsThenDrains) {
  run_diff("SendBufferFillsThenDrains", [](Session& r) {
    // A fixed, small peer receive buffer (inherited by the accepted socket):
    // no window growth once the peer stops reading, so "full" stays full.
    const int lfd = r.peer_listen(20027);
    const int rcvbuf = 65536;
    ::setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    const int fd = r.tcp_socket();
    r.connect_to_peer(fd, 20027);
    const int pfd = r.peer_accept(lfd);
    r.sleep_ms(50);
    r.rec("fcntl(F_SETFL, O_NONBLOCK)", r.ops.fcntl(fd, F_SETFL, O_NONBLOCK));
    const std::string chunk(65536, 'z');
    size_t total = 0;
    ssize_t n = 0;
    int e = 0;
    for (int i = 0; i < 2000; ++i) {  // the peer does not read: both buffers fill
      n = r.ops.send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      e = errno;
      if (n <= 0) break;
      total += size_t(n);
    }
    r.sleep_ms(200);                  // in-flight segments land; the peer's window closes
    for (int i = 0; i < 2000; ++i) {  // anything that freed up: fill again
      const ssize_t m = r.ops.send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (m <= 0) break;
      total += size_t(m);
    }
    r.log_result("send until full", n, e);
    r.check(total > 0, "sent something first");
    r.poll1(fd, POLLOUT, 0, "poll full");
    int outq = -1;
    r.rec("ioctl(SIOCOUTQ) when full", r.ops.ioctl(fd, SIOCOUTQ, &outq));
    r.check(outq > 0, "SIOCOUTQ > 0 while the peer does not read");
    size_t drained = 0;
    char buf[65536];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (drained < total && std::chrono::steady_clock::now() < deadline) {
      pollfd p{pfd, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      const ssize_t m = ::recv(pfd, buf, sizeof(buf), MSG_DONTWAIT);
      if (m <= 0) break;
      drained += size_t(m);
    }
    r.check(drained == total, "the peer read everything that was accepted");
    r.poll1(fd, POLLOUT, kWait, "poll after the peer drained");
    r.sleep_ms(100);
    outq = -1;
    r.rec("ioctl(SIOCOUTQ) drained", r.ops.ioctl(fd, SIOCOUTQ, &outq));
    r.line("SIOCOUTQ=" + std::to_string(outq));
    r.close(fd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// ---- UDP ----------------------------------------------------------------------------
TEST_F(DiffTest, UdpSendtoRecvfrom) {
  run_diff("UdpSendtoRecvfrom", [](Session& r) {
    const int pu = r.peer_udp(20028);
    const int fd = int(r.rec_fd("socket(UDP)", r.ops.socket(AF_INET, SOCK_DGRAM, 0)));
    r.getsockopt_int(fd, SOL_SOCKET, SO_TYPE, "SO_TYPE");
    r.bind_local(fd, 20029);
    const sockaddr_in to = r.peer(20028);
    r.rec("sendto", r.ops.sendto(fd, "dgram-1", 7, 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to)));
    std::string got;
    r.peer_recv(pu, 100, 3000, &got);
    const sockaddr_in back = r.local(20029);
    r.rec("peer.sendto", ::sendto(pu, "reply-12", 8, 0, reinterpret_cast<const sockaddr*>(&back), sizeof(back)));
    r.rec("peer.sendto 2", ::sendto(pu, "r2", 2, 0, reinterpret_cast<const sockaddr*>(&back), sizeof(back)));
    r.poll1(fd, POLLIN, kWait);
    int n = -1;
    r.sleep_ms(50);
    r.rec("ioctl(FIONREAD) (first datagram)", r.ops.ioctl(fd, FIONREAD, &n));
    r.line("FIONREAD=" + std::to_string(n));
    char buf[100];
    sockaddr_in from{};
    socklen_t fl = sizeof(from);
    const ssize_t m = r.ops.recvfrom(fd, buf, 5, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    r.log_result("recvfrom(5) truncates", m, errno, m > 0 ? std::string(buf, size_t(m)) + " from " + r.norm(from) : "");
    r.recv_str(fd, 100, 0, "recv 2nd datagram");
    r.recv_str(fd, 100, MSG_DONTWAIT, "recv empty");
    r.connect_to_peer(fd, 20028, "connect(UDP)");
    r.peername(fd);
    r.send_str(fd, "via connect", 0);
    r.peer_recv(pu);
    r.close(fd);
    r.peer_close(pu);
  });
}

TEST_F(DiffTest, UdpConnectedToClosedPort) {
  run_diff("UdpConnectedToClosedPort", [](Session& r) {
    const int fd = int(r.rec_fd("socket(UDP)", r.ops.socket(AF_INET, SOCK_DGRAM, 0)));
    r.connect_to_peer(fd, 20030, "connect(UDP, closed port)");
    r.send_str(fd, "anyone?", 0);
    r.poll1(fd, POLLIN, 1000);
    r.recv_str(fd, 100, MSG_DONTWAIT, "recv after ICMP");
    r.recv_str(fd, 100, MSG_DONTWAIT, "recv again");
    r.close(fd);
  });
}

// ---- more options and flags ---------------------------------------------------------
TEST_F(DiffTest, KeepaliveOptions) {
  run_diff("KeepaliveOptions", [](Session& r) {
    const int fd = r.tcp_socket();
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT");
    r.setsockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, 30, "TCP_KEEPIDLE");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE");
    r.setsockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, 0, "TCP_KEEPIDLE");
    r.setsockopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT, 200, "TCP_KEEPCNT");
    r.setsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 5, "SO_REUSEADDR");
    r.getsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR (normalised to 1)");
    int v = 1;
    r.rec("setsockopt(SO_KEEPALIVE, optlen=2)", r.ops.setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, 2));
    r.rec("setsockopt(TCP_NODELAY, optlen=0)", r.ops.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, 0));
    r.close(fd);
  });
}

TEST_F(DiffTest, MsgWaitall) {
  run_diff("MsgWaitall", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20031, &lfd, &pfd);
    r.peer_send(pfd, "01234");
    r.poll1(fd, POLLIN, kWait);
    std::thread later([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      ::send(pfd, "56789", 5, MSG_NOSIGNAL);
    });
    r.recv_str(fd, 10, MSG_WAITALL, "recv(10, MSG_WAITALL) across two segments");
    later.join();
    r.peer_close(pfd);
    r.poll1(fd, POLLIN, kWait);
    r.recv_str(fd, 10, MSG_WAITALL, "recv(MSG_WAITALL) at EOF");
    r.close(fd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, ConnectUnreachableHost) {
  run_diff("ConnectUnreachableHost", [](Session& r) {
    // 198.18.0.77: on the link, answered by nobody (ARP fails).
    const int fd = r.tcp_socket(SOCK_NONBLOCK);
    sockaddr_in sa = r.peer(20032);
    sa.sin_addr.s_addr = htonl((198u << 24) | (18u << 16) | 77u);
    r.rec("connect(198.18.0.77)", r.ops.connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)));
    r.rec("connect again (in progress)", r.ops.connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)));
    const int lfd = r.peer_listen(20032);
    r.connect_to_peer(fd, 20032, "connect elsewhere (in progress)");
    r.poll1(fd, POLLOUT, 8000, "poll (ARP gives up)");
    r.getsockopt_int(fd, SOL_SOCKET, SO_ERROR, "SO_ERROR");
    r.close(fd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, AcceptAfterClientReset) {
  run_diff("AcceptAfterClientReset", [](Session& r) {
    const int ls = r.tcp_socket(SOCK_NONBLOCK);
    r.bind_local(ls, 20033);
    r.rec("listen", r.ops.listen(ls, 8));
    const int c = r.peer_connect(20033);
    r.poll1(ls, POLLIN, kWait);
    r.peer_send(c, "hi");
    linger lg{1, 0};
    ::setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    ::close(c);
    r.line("peer reset the queued connection");
    r.sleep_ms(200);
    const int fd = int(r.rec_fd("accept4", r.ops.accept4(ls, nullptr, nullptr, SOCK_NONBLOCK)));
    if (fd >= 0) {
      r.peername(fd);
      r.poll1(fd, POLLIN | POLLOUT, 0);
      r.recv_str(fd, 100, 0, "recv 1");
      r.recv_str(fd, 100, 0, "recv 2");
      r.send_str(fd, "x", MSG_NOSIGNAL);
      r.close(fd);
    }
    r.close(ls);
  });
}

TEST_F(DiffTest, EpollOneshotListenerAndPoll) {
  run_diff("EpollOneshotListenerAndPoll", [](Session& r) {
    const int ls = r.tcp_socket(SOCK_NONBLOCK);
    r.bind_local(ls, 20034);
    r.rec("listen", r.ops.listen(ls, 8));
    const int ep = int(r.rec_fd("epoll_create1", r.ops.epoll_create1(0)));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u32 = 7;
    r.rec("epoll_ctl(ADD listener, EPOLLIN|EPOLLONESHOT)", r.ops.epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev));
    auto wait = [&](const char* step, int timeout) {
      epoll_event evs[4]{};
      const int n = r.ops.epoll_wait(ep, evs, 4, timeout);
      const int e = errno;
      std::string extra;
      for (int i = 0; i < n; ++i)
        extra += " {" + std::to_string(evs[i].data.u32) + ":" + events_str(evs[i].events) + "}";
      r.log_result(step, n, e, extra);
    };
    wait("epoll_wait idle listener", 0);
    const int c1 = r.peer_connect(20034);
    wait("epoll_wait connection pending", kWait);
    wait("epoll_wait oneshot disarmed", 0);
    r.rec("epoll_ctl(MOD rearm)", r.ops.epoll_ctl(ep, EPOLL_CTL_MOD, ls, &ev));
    wait("epoll_wait rearmed (still pending)", 0);
    const int a = int(r.rec_fd("accept4", r.ops.accept4(ls, nullptr, nullptr, 0)));
    // poll: a negative fd is ignored; several fds at once.
    pollfd p[3] = {{ls, POLLIN, 0}, {-1, POLLIN, 0}, {a, POLLIN | POLLOUT, 0}};
    const int n = r.ops.poll(p, 3, 0);
    r.log_result("poll3", n, errno,
                 "revents=" + events_str(uint16_t(p[0].revents)) + "," + events_str(uint16_t(p[1].revents)) + "," +
                     events_str(uint16_t(p[2].revents)));
    epoll_event ev2{};
    ev2.events = EPOLLIN | EPOLLRDHUP;
    ev2.data.u32 = 9;
    r.rec("epoll_ctl(ADD accepted, EPOLLIN|EPOLLRDHUP)", r.ops.epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev2));
    r.rec("epoll_wait(maxevents=0)", r.ops.epoll_wait(ep, &ev2, 0, 0));
    ::shutdown(c1, SHUT_WR);
    r.line("peer shutdown(SHUT_WR)");
    wait("epoll_wait peer FIN", kWait);
    r.rec("epoll_ctl(ADD epfd to itself)", r.ops.epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev2));
    r.close(a);
    r.close(ep);
    r.close(ls);
    r.peer_close(c1);
  });
}

TEST_F(DiffTest, TcpSendtoRecvfromAddresses) {
  run_diff("TcpSendtoRecvfromAddresses", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20035, &lfd, &pfd);
    const sockaddr_in other = r.peer(20099);
    r.rec("sendto(connected TCP, other address)",
          r.ops.sendto(fd, "abc", 3, MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&other), sizeof(other)));
    r.rec("sendto(connected TCP, no address)", r.ops.sendto(fd, "def", 3, MSG_NOSIGNAL, nullptr, 0));
    r.peer_recv_exact(pfd, 6);
    r.peer_send(pfd, "xyz");
    r.poll1(fd, POLLIN, kWait);
    char buf[16] = {};
    sockaddr_in from{};
    from.sin_family = 0xbeef & 0xff;
    socklen_t fl = sizeof(from);
    const ssize_t n = r.ops.recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl);
    r.log_result("recvfrom(TCP)", n, errno, "fromlen=" + std::to_string(fl));
    r.rec("ioctl(SIOCOUTQNSD)", [&] {
      int v = -1;
      const int rc = r.ops.ioctl(fd, SIOCOUTQNSD, &v);
      return rc == 0 ? v : rc;
    }());
    r.close(fd);
    r.rec("close again", r.ops.close(fd));
    r.peer_recv(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, IpOptionsAndRcvlowat) {
  run_diff("IpOptionsAndRcvlowat", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20036, &lfd, &pfd);
    r.getsockopt_int(fd, IPPROTO_IP, IP_TTL, "IP_TTL");
    r.setsockopt_int(fd, IPPROTO_IP, IP_TTL, 32, "IP_TTL");
    r.getsockopt_int(fd, IPPROTO_IP, IP_TTL, "IP_TTL");
    r.getsockopt_int(fd, IPPROTO_IP, IP_TOS, "IP_TOS");
    r.setsockopt_int(fd, IPPROTO_IP, IP_TOS, 0x10, "IP_TOS");
    r.getsockopt_int(fd, IPPROTO_IP, IP_TOS, "IP_TOS");
    r.getsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, "SO_RCVLOWAT");
    r.setsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, 8, "SO_RCVLOWAT");
    r.getsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, "SO_RCVLOWAT");
    r.peer_send(pfd, "1234");
    r.sleep_ms(200);
    r.poll1(fd, POLLIN, 0, "poll 4 bytes < lowat 8");
    r.peer_send(pfd, "5678");
    r.poll1(fd, POLLIN, kWait, "poll 8 bytes >= lowat 8");
    r.recv_str(fd, 100, MSG_DONTWAIT);
    r.close(fd);
    r.peer_recv(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// Linux 6.x option values: SO_BINDTODEVICE unbound (optlen 0), TCP_LINGER2
// (-1 / clamp to 120 / sysctl 60), TCP_WINDOW_CLAMP (0 fresh, raised to
// SOCK_MIN_RCVBUF/2, 0 refused once not closed), TCP_NOTSENT_LOWAT (a u32),
// TCP_QUICKACK (!pingpong, entered by a prompt reply).
TEST_F(DiffTest, LingerClampLowatQuickackBindtodevice) {
  run_diff("LingerClampLowatQuickackBindtodevice", [](Session& r) {
    auto bindtodevice = [&r](int fd, const char* what) {
      char dev[16];
      std::memset(dev, 'x', sizeof dev);
      socklen_t len = sizeof dev;
      r.rec(what, r.ops.getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &len));
      r.rec("SO_BINDTODEVICE optlen", static_cast<long>(len));
    };
    const int s = r.tcp_socket();
    bindtodevice(s, "getsockopt(SO_BINDTODEVICE) fresh");
    r.rec("setsockopt(SO_BINDTODEVICE \"\")", r.ops.setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "", 0));
    bindtodevice(s, "getsockopt(SO_BINDTODEVICE) after unbind");
    r.getsockopt_int(s, IPPROTO_TCP, TCP_LINGER2, "TCP_LINGER2 fresh");
    for (int v : {-5, 1000, 30, 0}) {
      r.setsockopt_int(s, IPPROTO_TCP, TCP_LINGER2, v, "TCP_LINGER2 set");
      r.getsockopt_int(s, IPPROTO_TCP, TCP_LINGER2, "TCP_LINGER2");
    }
    r.getsockopt_int(s, IPPROTO_TCP, TCP_WINDOW_CLAMP, "TCP_WINDOW_CLAMP fresh");
    for (int v : {0, -1, 100, 5000}) {
      r.setsockopt_int(s, IPPROTO_TCP, TCP_WINDOW_CLAMP, v, "TCP_WINDOW_CLAMP set");
      r.getsockopt_int(s, IPPROTO_TCP, TCP_WINDOW_CLAMP, "TCP_WINDOW_CLAMP");
    }
    r.getsockopt_int(s, IPPROTO_TCP, TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT fresh");
    for (int v : {-1, 100, 0}) {
      r.setsockopt_int(s, IPPROTO_TCP, TCP_NOTSENT_LOWAT, v, "TCP_NOTSENT_LOWAT set");
      r.getsockopt_int(s, IPPROTO_TCP, TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT");
    }
    r.getsockopt_int(s, IPPROTO_TCP, TCP_QUICKACK, "TCP_QUICKACK fresh");
    for (int v : {0, 1, 0, 2}) {
      r.setsockopt_int(s, IPPROTO_TCP, TCP_QUICKACK, v, "TCP_QUICKACK set");
      r.getsockopt_int(s, IPPROTO_TCP, TCP_QUICKACK, "TCP_QUICKACK");
    }
    r.close(s);
    int lfd, pfd;
    const int fd = connected_pair(r, 20176, &lfd, &pfd);
    bindtodevice(fd, "getsockopt(SO_BINDTODEVICE) connected");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_LINGER2, "TCP_LINGER2 connected");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT connected");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_QUICKACK, "TCP_QUICKACK connected");
    r.setsockopt_int(fd, IPPROTO_TCP, TCP_WINDOW_CLAMP, 0, "TCP_WINDOW_CLAMP 0 connected");
    r.setsockopt_int(fd, IPPROTO_TCP, TCP_WINDOW_CLAMP, 5000, "TCP_WINDOW_CLAMP 5000 connected");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_WINDOW_CLAMP, "TCP_WINDOW_CLAMP connected");
    // A reply sent at once after data arrived enters ping-pong mode.
    r.peer_send(pfd, "q");
    r.poll1(fd, POLLIN, kWait);
    r.recv_str(fd, 100, MSG_DONTWAIT);
    r.send_str(fd, "r");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_QUICKACK, "TCP_QUICKACK after a prompt reply");
    r.peer_recv(pfd);
    r.setsockopt_int(fd, IPPROTO_TCP, TCP_QUICKACK, 1, "TCP_QUICKACK 1");
    r.getsockopt_int(fd, IPPROTO_TCP, TCP_QUICKACK, "TCP_QUICKACK after set 1");
    r.close(fd);
    r.peer_close(pfd);
    // TCP_QUICKACK 0 is forgotten once an active open completes, and on listen().
    const int q = r.tcp_socket();
    r.setsockopt_int(q, IPPROTO_TCP, TCP_QUICKACK, 0, "TCP_QUICKACK 0 before connect");
    r.connect_to_peer(q, 20176);
    const int qp = r.peer_accept(lfd);
    r.getsockopt_int(q, IPPROTO_TCP, TCP_QUICKACK, "TCP_QUICKACK after connect");
    r.close(q);
    r.peer_close(qp);
    r.peer_close(lfd);
    const int ls = r.tcp_socket();
    r.setsockopt_int(ls, IPPROTO_TCP, TCP_QUICKACK, 0, "TCP_QUICKACK 0 before listen");
    r.bind_local(ls, 20177);
    r.rec("listen", r.ops.listen(ls, 4));
    r.getsockopt_int(ls, IPPROTO_TCP, TCP_QUICKACK, "TCP_QUICKACK listening");
    r.close(ls);
  });
}

// Options Linux keeps on every socket whatever the stack does with them:
// SO_PRIORITY (and IP_TOS setting it), SO_SNDLOWAT (fixed at 1), IP_MTU
// (ENOTCONN before there is a route), TCP_FASTOPEN off, SIOCATMARK.
TEST_F(DiffTest, PriorityMtuAndFixedOptions) {
  run_diff("PriorityMtuAndFixedOptions", [](Session& r) {
    const int s = r.tcp_socket();
    r.getsockopt_int(s, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY fresh");
    r.setsockopt_int(s, IPPROTO_IP, IP_TOS, 0x10, "IP_TOS lowdelay");
    r.getsockopt_int(s, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY after IP_TOS 0x10");
    r.setsockopt_int(s, SOL_SOCKET, SO_PRIORITY, 3, "SO_PRIORITY 3");
    r.setsockopt_int(s, IPPROTO_IP, IP_TOS, 0x10, "IP_TOS unchanged");
    r.getsockopt_int(s, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY kept when TOS unchanged");
    r.setsockopt_int(s, IPPROTO_IP, IP_TOS, 0x08, "IP_TOS throughput");
    r.getsockopt_int(s, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY after IP_TOS 0x08");
    r.getsockopt_int(s, SOL_SOCKET, SO_SNDLOWAT, "SO_SNDLOWAT");
    r.setsockopt_int(s, SOL_SOCKET, SO_SNDLOWAT, 100, "SO_SNDLOWAT set");
    r.getsockopt_int(s, IPPROTO_IP, IP_MTU, "IP_MTU unconnected");
    r.getsockopt_int(s, IPPROTO_TCP, TCP_FASTOPEN, "TCP_FASTOPEN");
    r.rec("ioctl(SIOCATMARK) unconnected", [&] {
      int v = -1;
      const int rc = r.ops.ioctl(s, SIOCATMARK, &v);
      return rc == 0 ? v : rc;
    }());
    r.close(s);
    int lfd, pfd;
    const int fd = connected_pair(r, 20045, &lfd, &pfd);
    r.getsockopt_int(fd, IPPROTO_IP, IP_MTU, "IP_MTU connected");
    r.peer_send(pfd, "abc");
    r.poll1(fd, POLLIN, kWait);
    r.rec("ioctl(SIOCATMARK) with data", [&] {
      int v = -1;
      const int rc = r.ops.ioctl(fd, SIOCATMARK, &v);
      return rc == 0 ? v : rc;
    }());
    r.recv_str(fd, 100, MSG_DONTWAIT);
    const int pu = r.peer_udp(20046);
    const int u = int(r.rec_fd("socket(UDP)", r.ops.socket(AF_INET, SOCK_DGRAM, 0)));
    r.getsockopt_int(u, IPPROTO_IP, IP_MTU, "IP_MTU UDP unconnected");
    r.connect_to_peer(u, 20046, "connect(UDP)");
    r.getsockopt_int(u, IPPROTO_IP, IP_MTU, "IP_MTU UDP connected");
    r.rec("ioctl(SIOCATMARK) UDP", [&] {
      int v = -1;
      const int rc = r.ops.ioctl(u, SIOCATMARK, &v);
      return rc == 0 ? v : rc;
    }());
    r.close(u);
    r.peer_close(pu);
    r.close(fd);
    r.peer_recv(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

TEST_F(DiffTest, BindListenConflicts) {
  run_diff("BindListenConflicts", [](Session& r) {
    const int a = r.tcp_socket();
    r.setsockopt_int(a, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR a");
    r.bind_local(a, 20037, "bind a");
    r.rec("listen a", r.ops.listen(a, 4));
    const int b = r.tcp_socket();
    r.setsockopt_int(b, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR b");
    r.bind_local(b, 20037, "bind b on a listening port (both SO_REUSEADDR)");
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_port = htons(20037);
    r.rec("bind b INADDR_ANY same port", r.ops.bind(b, reinterpret_cast<sockaddr*>(&any), sizeof(any)));
    sockaddr_in sa = r.local(20038);
    r.rec("bind short addrlen", r.ops.bind(b, reinterpret_cast<sockaddr*>(&sa), sizeof(sa) - 1));
    sa.sin_family = AF_INET6;
    r.rec("bind AF_INET6 family", r.ops.bind(b, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)));
    r.close(b);
    const int lfd = r.peer_listen(20039);
    const int c = r.tcp_socket();
    r.connect_to_peer(c, 20039);
    r.bind_local(c, 20040, "bind after connect");
    r.rec("listen on connected", r.ops.listen(c, 4));
    const int pfd = r.peer_accept(lfd);
    r.close(c);
    r.peer_recv(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
    r.close(a);
  });
}

TEST_F(DiffTest, UdpLargeAndTruncated) {
  run_diff("UdpLargeAndTruncated", [](Session& r) {
    const int pu = r.peer_udp(20041);
    const int fd = int(r.rec_fd("socket(UDP)", r.ops.socket(AF_INET, SOCK_DGRAM, 0)));
    r.bind_local(fd, 20042);
    r.connect_to_peer(fd, 20041, "connect(UDP)");
    const std::string big = pattern(3000, 5);  // > MTU: fragmented both ways
    r.send_str(fd, big, 0, "send 3000");
    std::string got;
    pollfd p{pu, POLLIN, 0};
    if (::poll(&p, 1, 3000) == 1) {
      char buf[4000];
      const ssize_t n = ::recv(pu, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) got.assign(buf, size_t(n));
    }
    r.line("peer got " + std::to_string(got.size()) + (got == big ? " (intact)" : " (differs)"));
    const sockaddr_in back = r.local(20042);
    r.rec("peer.sendto 3000",
          ::sendto(pu, big.data(), big.size(), 0, reinterpret_cast<const sockaddr*>(&back), sizeof(back)));
    r.poll1(fd, POLLIN, kWait);
    char small[100];
    const ssize_t n = r.ops.recv(fd, small, sizeof(small), MSG_TRUNC);
    r.log_result("recv(100, MSG_TRUNC)", n, errno,
                 n > 0 ? (std::string(small, 100) == big.substr(0, 100) ? "prefix ok" : "prefix differs") : "");
    r.rec("peer.sendto 0 bytes", ::sendto(pu, "", 0, 0, reinterpret_cast<const sockaddr*>(&back), sizeof(back)));
    r.poll1(fd, POLLIN, kWait);
    r.recv_str(fd, 100, 0, "recv empty datagram");
    r.close(fd);
    r.peer_close(pu);
  });
}

// ---- urgent data (MSG_OOB; RFC 9293 3.8.5, Linux's BSD reading) ----------------------
namespace oob {

void atmark(Session& r, int fd, const char* step) {
  int v = -1;
  const int rc = r.ops.ioctl(fd, SIOCATMARK, &v);
  r.log_result(step, rc, errno, rc == 0 ? "mark=" + std::to_string(v) : "");
}

void inq(Session& r, int fd) {
  int v = -1;
  const int rc = r.ops.ioctl(fd, FIONREAD, &v);
  r.log_result("ioctl(FIONREAD)", rc, errno, rc == 0 ? "n=" + std::to_string(v) : "");
}

}  // namespace oob

// No urgent data: recv(MSG_OOB) is EINVAL, the mark is not reached, and the
// option reads back as set.
TEST_F(DiffTest, OobNoneErrors) {
  run_diff("OobNoneErrors", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20170, &lfd, &pfd);
    r.recv_str(fd, 10, MSG_OOB, "recv(MSG_OOB) none");
    r.recv_str(fd, 10, MSG_OOB | MSG_PEEK, "recv(MSG_OOB|MSG_PEEK) none");
    r.recv_str(fd, 10, MSG_OOB | MSG_DONTWAIT, "recv(MSG_OOB|MSG_DONTWAIT) none");
    oob::atmark(r, fd, "SIOCATMARK");
    r.getsockopt_int(fd, SOL_SOCKET, SO_OOBINLINE, "SO_OOBINLINE");
    r.setsockopt_int(fd, SOL_SOCKET, SO_OOBINLINE, 1, "SO_OOBINLINE");
    r.getsockopt_int(fd, SOL_SOCKET, SO_OOBINLINE, "SO_OOBINLINE");
    r.setsockopt_int(fd, SOL_SOCKET, SO_OOBINLINE, 0, "SO_OOBINLINE");
    r.send_str(fd, "", MSG_OOB | MSG_NOSIGNAL, "send(0 bytes, MSG_OOB)");
    r.poll1(fd, POLLIN | POLLPRI, 0);
    r.close(fd);
    const int l = r.tcp_socket();
    r.bind_local(l, 20176);
    r.rec("listen", r.ops.listen(l, 4));
    oob::atmark(r, l, "SIOCATMARK on a listener");
    r.recv_str(l, 10, MSG_OOB, "recv(MSG_OOB) on a listener");
    r.close(l);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// The program sends urgent data; the kernel peer sees POLLPRI, reads the
// byte with MSG_OOB, and the stream without it.
TEST_F(DiffTest, OobSendPeerReadsUrgent) {
  run_diff("OobSendPeerReadsUrgent", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20171, &lfd, &pfd);
    r.send_str(fd, "ab");
    r.send_str(fd, "xyz", MSG_OOB | MSG_NOSIGNAL, "send(MSG_OOB)");
    r.send_str(fd, "de");
    r.sleep_ms(200);
    r.peer_recv_oob(pfd, MSG_PEEK, kWait, "peer.recv(MSG_OOB|MSG_PEEK)");
    r.peer_recv(pfd);  // up to the mark: "abxy"
    r.peer_recv_oob(pfd);
    r.peer_recv_oob(pfd, 0, 0, "peer.recv(MSG_OOB) again");
    r.peer_recv(pfd);  // "de"
    // A second urgent byte, alone, after the first was acknowledged.
    r.send_str(fd, "!", MSG_OOB | MSG_NOSIGNAL, "send(MSG_OOB) 1 byte");
    r.peer_recv_oob(pfd);
    r.send_str(fd, "end");
    r.peer_recv_exact(pfd, 3);
    r.close(fd);
    r.peer_recv_until_eof(pfd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// The kernel peer sends urgent data: POLLPRI/EPOLLPRI, FIONREAD up to the
// mark, a read stopping at the mark, SIOCATMARK, recv(MSG_OOB) (peek, read,
// again: EINVAL), the byte not in the stream.
TEST_F(DiffTest, OobRecvUrgentFromPeer) {
  run_diff("OobRecvUrgentFromPeer", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20172, &lfd, &pfd);
    oob::atmark(r, fd, "SIOCATMARK before");
    r.peer_send(pfd, "ab");
    r.peer_send_flags(pfd, "c", MSG_OOB, "peer.send(MSG_OOB)");
    r.peer_send(pfd, "de");
    r.sleep_ms(200);
    r.poll1(fd, POLLIN | POLLPRI, kWait);
    const int ep = r.ops.epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLPRI;
    r.rec("epoll_ctl(ADD, IN|PRI)", r.ops.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    epoll_event got{};
    const int n = r.ops.epoll_wait(ep, &got, 1, 0);
    r.log_result("epoll_wait", n, errno, n > 0 ? "events=" + events_str(got.events) : "");
    oob::inq(r, fd);
    oob::atmark(r, fd, "SIOCATMARK");
    r.recv_str(fd, 100, 0, "recv(100)");
    oob::atmark(r, fd, "SIOCATMARK at mark");
    oob::inq(r, fd);
    r.poll1(fd, POLLIN | POLLPRI, 0);
    r.recv_str(fd, 10, MSG_OOB | MSG_PEEK, "recv(MSG_OOB|MSG_PEEK)");
    r.recv_str(fd, 10, MSG_OOB, "recv(MSG_OOB)");
    r.recv_str(fd, 10, MSG_OOB, "recv(MSG_OOB) again");
    r.poll1(fd, POLLIN | POLLPRI, 0);
    oob::atmark(r, fd, "SIOCATMARK after OOB read");
    r.recv_str(fd, 100, 0, "recv(100) rest");
    oob::atmark(r, fd, "SIOCATMARK after rest");
    r.recv_str(fd, 10, MSG_OOB, "recv(MSG_OOB) after rest");
    r.recv_str(fd, 100, MSG_DONTWAIT, "recv(MSG_DONTWAIT) empty");
    r.close(ep);
    r.close(fd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// Reading past an unread urgent byte drops it; a read never crosses the
// mark, not even with MSG_WAITALL; the byte is skipped when only it is left.
TEST_F(DiffTest, OobUnreadByteAndWaitall) {
  run_diff("OobUnreadByteAndWaitall", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20173, &lfd, &pfd);
    timeval tv{1, 0};
    r.rec("setsockopt(SO_RCVTIMEO, 1 s)", r.ops.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    r.peer_send(pfd, "ab");
    r.peer_send_flags(pfd, "c", MSG_OOB, "peer.send(MSG_OOB)");
    r.peer_send(pfd, "de");
    r.sleep_ms(200);
    r.recv_str(fd, 10, MSG_WAITALL, "recv(10, MSG_WAITALL)");
    r.recv_str(fd, 10, MSG_PEEK, "recv(10, MSG_PEEK) at mark");
    r.recv_str(fd, 10, 0, "recv(10) past the mark");
    r.recv_str(fd, 10, MSG_OOB, "recv(MSG_OOB) after reading past");
    r.poll1(fd, POLLIN | POLLPRI, 0);
    // Only the urgent byte queued, at the mark: not readable, skipped by recv.
    r.peer_send_flags(pfd, "z", MSG_OOB, "peer.send(MSG_OOB) alone");
    r.sleep_ms(200);
    r.poll1(fd, POLLIN | POLLPRI, 0);
    oob::atmark(r, fd, "SIOCATMARK");
    oob::inq(r, fd);
    r.recv_str(fd, 10, MSG_DONTWAIT, "recv(MSG_DONTWAIT) at mark");
    oob::atmark(r, fd, "SIOCATMARK after");
    r.recv_str(fd, 10, MSG_OOB, "recv(MSG_OOB) after skip");
    r.poll1(fd, POLLIN | POLLPRI, 0);
    r.close(fd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// SO_OOBINLINE: the urgent byte stays in the stream, recv(MSG_OOB) is EINVAL,
// the mark still stops reads and SIOCATMARK still reports it.
TEST_F(DiffTest, OobInline) {
  run_diff("OobInline", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20174, &lfd, &pfd);
    r.setsockopt_int(fd, SOL_SOCKET, SO_OOBINLINE, 1, "SO_OOBINLINE");
    r.peer_send(pfd, "ab");
    r.peer_send_flags(pfd, "c", MSG_OOB, "peer.send(MSG_OOB)");
    r.peer_send(pfd, "de");
    r.sleep_ms(200);
    r.poll1(fd, POLLIN | POLLPRI, kWait);
    oob::inq(r, fd);
    oob::atmark(r, fd, "SIOCATMARK");
    r.recv_str(fd, 100, 0, "recv(100)");
    oob::atmark(r, fd, "SIOCATMARK at mark");
    r.recv_str(fd, 10, MSG_OOB, "recv(MSG_OOB) inline");
    r.poll1(fd, POLLIN | POLLPRI, 0);
    r.recv_str(fd, 100, 0, "recv(100) from the mark");
    oob::atmark(r, fd, "SIOCATMARK after");
    r.poll1(fd, POLLIN | POLLPRI, 0);
    r.close(fd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// A second urgent byte replaces an unread first one; the first leaves the
// stream when it is the next byte to read (Linux tcp_check_urg).
TEST_F(DiffTest, OobSecondReplacesFirst) {
  run_diff("OobSecondReplacesFirst", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20175, &lfd, &pfd);
    r.peer_send_flags(pfd, "ab", MSG_OOB, "peer.send(ab, MSG_OOB)");
    r.sleep_ms(200);
    r.recv_str(fd, 10, 0, "recv(10)");
    oob::atmark(r, fd, "SIOCATMARK");
    r.peer_send_flags(pfd, "cd", MSG_OOB, "peer.send(cd, MSG_OOB)");
    r.sleep_ms(200);
    oob::atmark(r, fd, "SIOCATMARK after second");
    r.recv_str(fd, 10, MSG_OOB, "recv(MSG_OOB)");
    r.recv_str(fd, 10, 0, "recv(10) again");
    oob::atmark(r, fd, "SIOCATMARK at second mark");
    r.recv_str(fd, 10, MSG_DONTWAIT, "recv(MSG_DONTWAIT)");
    r.close(fd);
    r.peer_close(pfd);
    r.peer_close(lfd);
  });
}

// ---- ancillary data (cmsg) -----------------------------------------------------------
// Linux's SO_TIMESTAMP* numbers (glibc's SO_TIMESTAMP is the _OLD one on x86_64).
constexpr int kTsOld = 29, kTsNsOld = 35, kTsNew = 63, kTsNsNew = 64;

// A recvmsg's control data as a log string: lengths, flags, and the values
// that must match (addresses normalised, the lab interface as IF, timestamps
// checked against the clock).
std::string cmsg_str(Session& r, const msghdr& m) {
  std::string out = "controllen=" + std::to_string(m.msg_controllen);
  if (m.msg_flags & MSG_CTRUNC) out += " CTRUNC";
  if (m.msg_flags & MSG_TRUNC) out += " TRUNC";
  if (m.msg_control == nullptr) return out;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&m), c)) {
    const size_t n = c->cmsg_len >= CMSG_LEN(0) ? c->cmsg_len - CMSG_LEN(0) : 0;
    const uint8_t* d = CMSG_DATA(c);
    out += " [" + std::to_string(c->cmsg_level) + "/" + std::to_string(c->cmsg_type) +
           " len=" + std::to_string(c->cmsg_len);
    if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_PKTINFO && n >= sizeof(in_pktinfo)) {
      in_pktinfo pi;
      memcpy(&pi, d, sizeof pi);
      out += " PKTINFO if=" + (pi.ipi_ifindex == r.lab_ifindex() ? std::string("IF") : std::to_string(pi.ipi_ifindex)) +
             " spec=" + r.norm_addr(pi.ipi_spec_dst.s_addr) + " addr=" + r.norm_addr(pi.ipi_addr.s_addr);
    } else if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_TTL && n >= sizeof(int)) {
      int v;
      memcpy(&v, d, sizeof v);
      out += " TTL=" + std::to_string(v);
    } else if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_TOS && n >= 1) {
      out += " TOS=" + std::to_string(d[0]);
    } else if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR && n >= sizeof(sockaddr_in)) {
      sockaddr_in sin;
      memcpy(&sin, d, sizeof sin);
      out += " ORIGDST=" + r.norm(sin);
    } else if (c->cmsg_level == SOL_SOCKET && n >= 16 &&
               (c->cmsg_type == kTsOld || c->cmsg_type == kTsNsOld || c->cmsg_type == kTsNew ||
                c->cmsg_type == kTsNsNew)) {
      int64_t v[2];
      memcpy(v, d, sizeof v);
      const bool ns = c->cmsg_type == kTsNsOld || c->cmsg_type == kTsNsNew;
      timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      const int64_t age_ms =
          (int64_t(now.tv_sec) - v[0]) * 1000 + now.tv_nsec / 1000000 - (ns ? v[1] / 1000000 : v[1] / 1000);
      const bool ok = v[1] >= 0 && v[1] < (ns ? 1000000000 : 1000000) && age_ms >= 0 && age_ms < 10000;
      out += std::string(" TS") + (ns ? "NS" : "") + (ok ? " plausible" : " IMPLAUSIBLE");
    }
    out += "]";
  }
  return out;
}

// recvmsg into a `ctl`-byte control buffer; logs data, source and cmsgs.
long recvmsg_log(Session& r, int fd, size_t ctl, int flags, const char* step, bool null_control = false) {
  char data[200];
  alignas(cmsghdr) uint8_t control[512] = {};
  sockaddr_in from{};
  iovec iov{data, sizeof data};
  msghdr m{};
  m.msg_name = &from;
  m.msg_namelen = sizeof from;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = null_control ? nullptr : control;
  m.msg_controllen = ctl;
  const ssize_t n = r.ops.recvmsg(fd, &m, flags);
  const int e = errno;
  std::string extra;
  if (n >= 0) {
    extra = "'" + std::string(data, size_t(std::min<ssize_t>(n, ssize_t(sizeof data)))) + "'";
    if (m.msg_namelen > 0) extra += " from " + r.norm(from);
    extra += " " + cmsg_str(r, m);
  }
  r.log_result(step, n, e, extra);
  return n;
}

// The peer's side of a datagram: payload, source, TTL and TOS as received.
void peer_recv_meta(Session& r, int pu, const char* step = "peer.recvmsg") {
  pollfd p{pu, POLLIN, 0};
  if (::poll(&p, 1, 3000) != 1) {
    r.line(std::string(step) + " -> timeout");
    return;
  }
  char data[200];
  alignas(cmsghdr) uint8_t control[256] = {};
  sockaddr_in from{};
  iovec iov{data, sizeof data};
  msghdr m{};
  m.msg_name = &from;
  m.msg_namelen = sizeof from;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(pu, &m, MSG_DONTWAIT);
  const int e = errno;
  std::string extra;
  if (n >= 0) {
    extra = "'" + std::string(data, size_t(n)) + "' from " + r.norm(from);
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_TTL) {
        int v;
        memcpy(&v, CMSG_DATA(c), sizeof v);
        extra += " ttl=" + std::to_string(v);
      } else if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_TOS) {
        extra += " tos=" + std::to_string(*CMSG_DATA(c));
      }
    }
  }
  r.log_result(step, n, e, extra);
}

// A control buffer holding one cmsg.
struct OneCmsg {
  alignas(cmsghdr) uint8_t buf[CMSG_SPACE(64)] = {};
  size_t len = 0;
  OneCmsg(int level, int type, const void* data, size_t n) {
    cmsghdr* c = reinterpret_cast<cmsghdr*>(buf);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(n);
    memcpy(CMSG_DATA(c), data, n);
    len = CMSG_SPACE(n);
  }
};

long sendmsg_log(Session& r, int fd, const sockaddr_in& to, const std::string& payload, const void* control,
                 size_t controllen, const char* step, int flags = 0) {
  iovec iov{const_cast<char*>(payload.data()), payload.size()};
  msghdr m{};
  m.msg_name = const_cast<sockaddr_in*>(&to);
  m.msg_namelen = sizeof to;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = const_cast<void*>(control);
  m.msg_controllen = controllen;
  return r.rec(step, r.ops.sendmsg(fd, &m, flags));
}

in_pktinfo pktinfo(int ifindex, uint32_t spec_host) {
  in_pktinfo pi{};
  pi.ipi_ifindex = ifindex;
  pi.ipi_spec_dst.s_addr = htonl(spec_host);
  return pi;
}

TEST_F(DiffTest, UdpCmsgRecv) {
  run_diff("UdpCmsgRecv", [](Session& r) {
    const int pu = r.peer_udp(20050);
    const int fd = int(r.rec_fd("socket(UDP)", r.ops.socket(AF_INET, SOCK_DGRAM, 0)));
    r.bind_local(fd, 20051);
    for (int opt : {IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, IP_RECVORIGDSTADDR})
      r.getsockopt_int(fd, IPPROTO_IP, opt, ("IPPROTO_IP " + std::to_string(opt) + " default").c_str());
    for (int opt : {kTsOld, kTsNsOld, kTsNew, kTsNsNew})
      r.getsockopt_int(fd, SOL_SOCKET, opt, ("SO_TIMESTAMP* " + std::to_string(opt) + " default").c_str());
    const sockaddr_in back = r.local(20051);
    auto peer_send = [&](const char* s) {
      r.rec((std::string("peer.sendto ") + s).c_str(),
            ::sendto(pu, s, strlen(s), 0, reinterpret_cast<const sockaddr*>(&back), sizeof(back)));
    };
    // Queued before IP_PKTINFO: Linux reports interface 0 and spec_dst 0.
    peer_send("early");
    r.poll1(fd, POLLIN, kWait);
    r.sleep_ms(20);
    recvmsg_log(r, fd, 256, MSG_PEEK, "recvmsg(PEEK) no options");
    r.setsockopt_int(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
    r.setsockopt_int(fd, IPPROTO_IP, IP_RECVTTL, 7, "IP_RECVTTL");
    r.setsockopt_int(fd, IPPROTO_IP, IP_RECVTOS, 1, "IP_RECVTOS");
    r.setsockopt_int(fd, IPPROTO_IP, IP_RECVORIGDSTADDR, 1, "IP_RECVORIGDSTADDR");
    r.setsockopt_int(fd, SOL_SOCKET, kTsOld, 1, "SO_TIMESTAMP");
    for (int opt : {IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, IP_RECVORIGDSTADDR})
      r.getsockopt_int(fd, IPPROTO_IP, opt, ("IPPROTO_IP " + std::to_string(opt)).c_str());
    recvmsg_log(r, fd, 256, 0, "recvmsg early");
    const int tos = 0x20, ttl = 9;
    r.rec("peer IP_TOS", ::setsockopt(pu, IPPROTO_IP, IP_TOS, &tos, sizeof tos));
    r.rec("peer IP_TTL", ::setsockopt(pu, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl));
    peer_send("late");
    r.poll1(fd, POLLIN, kWait);
    recvmsg_log(r, fd, 256, MSG_PEEK, "recvmsg(PEEK) late");
    recvmsg_log(r, fd, 256, 0, "recvmsg late");
    // Timestamp flavours: each cmsg type, and what getsockopt reports.
    for (int opt : {kTsNsOld, kTsNew, kTsNsNew, kTsOld}) {
      r.setsockopt_int(fd, SOL_SOCKET, opt, 1, ("SO_TIMESTAMP* " + std::to_string(opt)).c_str());
      for (int g : {kTsOld, kTsNsOld, kTsNew, kTsNsNew})
        r.getsockopt_int(fd, SOL_SOCKET, g, ("  get " + std::to_string(g)).c_str());
      peer_send("ts");
      r.poll1(fd, POLLIN, kWait);
      recvmsg_log(r, fd, 256, 0, "recvmsg ts");
    }
    r.setsockopt_int(fd, SOL_SOCKET, kTsNsOld, 0, "SO_TIMESTAMPNS off (turns all off)");
    for (int g : {kTsOld, kTsNsOld, kTsNew, kTsNsNew})
      r.getsockopt_int(fd, SOL_SOCKET, g, ("  get " + std::to_string(g)).c_str());
    r.rec("SO_TIMESTAMP 1-byte value", r.ops.setsockopt(fd, SOL_SOCKET, kTsOld, "\x01", 1));
    r.setsockopt_int(fd, SOL_SOCKET, kTsOld, 1, "SO_TIMESTAMP again");
    // Control buffers too small: put_cmsg truncation and MSG_CTRUNC.
    for (size_t ctl : {size_t(0), size_t(4), size_t(16), size_t(20), size_t(32), size_t(40), size_t(60),
                       size_t(CMSG_SPACE(16) + CMSG_SPACE(12)), size_t(CMSG_SPACE(16) + CMSG_SPACE(12) + 16)}) {
      peer_send("t");
      r.poll1(fd, POLLIN, kWait);
      recvmsg_log(r, fd, ctl, 0, ("recvmsg ctl=" + std::to_string(ctl)).c_str());
    }
    peer_send("null");
    r.poll1(fd, POLLIN, kWait);
    recvmsg_log(r, fd, 64, 0, "recvmsg NULL control, controllen 64", true);
    // recvmmsg: each message gets its own cmsgs.
    peer_send("m1");
    peer_send("m2");
    r.poll1(fd, POLLIN, kWait);
    r.sleep_ms(50);
    {
      char d1[50], d2[50];
      alignas(cmsghdr) uint8_t c1[256], c2[24];
      iovec v1{d1, sizeof d1}, v2{d2, sizeof d2};
      mmsghdr mm[2] = {};
      mm[0].msg_hdr.msg_iov = &v1;
      mm[0].msg_hdr.msg_iovlen = 1;
      mm[0].msg_hdr.msg_control = c1;
      mm[0].msg_hdr.msg_controllen = sizeof c1;
      mm[1].msg_hdr.msg_iov = &v2;
      mm[1].msg_hdr.msg_iovlen = 1;
      mm[1].msg_hdr.msg_control = c2;
      mm[1].msg_hdr.msg_controllen = sizeof c2;
      const int n = r.ops.recvmmsg(fd, mm, 2, MSG_DONTWAIT, nullptr);
      const int e = errno;
      std::string extra;
      for (int i = 0; i < n; ++i)
        extra += " #" + std::to_string(i) + " len=" + std::to_string(mm[i].msg_len) + " " + cmsg_str(r, mm[i].msg_hdr);
      r.log_result("recvmmsg(2)", n, e, extra);
    }
    // Options off: no cmsg, no MSG_CTRUNC.
    for (int opt : {IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, IP_RECVORIGDSTADDR})
      r.rec("IPPROTO_IP off (0-byte value)", r.ops.setsockopt(fd, IPPROTO_IP, opt, "", 0));
    r.setsockopt_int(fd, SOL_SOCKET, kTsOld, 0, "SO_TIMESTAMP off");
    r.getsockopt_int(fd, IPPROTO_IP, IP_PKTINFO, "IP_PKTINFO after 0-byte set");
    peer_send("plain");
    r.poll1(fd, POLLIN, kWait);
    recvmsg_log(r, fd, 0, 0, "recvmsg options off, ctl=0");
    r.close(fd);
    r.peer_close(pu);
  });
}

TEST_F(DiffTest, UdpCmsgSend) {
  run_diff("UdpCmsgSend", [](Session& r) {
    const int pu = r.peer_udp(20052);
    const int on = 1;
    ::setsockopt(pu, IPPROTO_IP, IP_RECVTTL, &on, sizeof on);
    ::setsockopt(pu, IPPROTO_IP, IP_RECVTOS, &on, sizeof on);
    const int fd = int(r.rec_fd("socket(UDP)", r.ops.socket(AF_INET, SOCK_DGRAM, 0)));
    r.bind_local(fd, 20053);
    const sockaddr_in to = r.peer(20052);
    const int ttl7 = 7, ttl0 = 0, tos20 = 0x20, tos256 = 256, one = 1;
    const uint8_t tos28 = 0x28, byte7 = 7;
    {
      OneCmsg c(SOL_IP, IP_TTL, &ttl7, sizeof ttl7);
      sendmsg_log(r, fd, to, "ttl7", c.buf, c.len, "sendmsg IP_TTL 7");
      peer_recv_meta(r, pu);
    }
    {
      OneCmsg c(SOL_IP, IP_TOS, &tos20, sizeof tos20);
      sendmsg_log(r, fd, to, "tos-int", c.buf, c.len, "sendmsg IP_TOS int 0x20");
      peer_recv_meta(r, pu);
      OneCmsg b(SOL_IP, IP_TOS, &tos28, 1);
      sendmsg_log(r, fd, to, "tos-byte", b.buf, b.len, "sendmsg IP_TOS byte 0x28");
      peer_recv_meta(r, pu);
    }
    {
      // Two cmsgs in one buffer.
      alignas(cmsghdr) uint8_t buf[CMSG_SPACE(sizeof(int)) * 2] = {};
      cmsghdr* c = reinterpret_cast<cmsghdr*>(buf);
      c->cmsg_level = SOL_IP;
      c->cmsg_type = IP_TTL;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(c), &ttl7, sizeof(int));
      c = reinterpret_cast<cmsghdr*>(buf + CMSG_SPACE(sizeof(int)));
      c->cmsg_level = SOL_IP;
      c->cmsg_type = IP_TOS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(c), &tos20, sizeof(int));
      sendmsg_log(r, fd, to, "both", buf, sizeof buf, "sendmsg IP_TTL+IP_TOS");
      peer_recv_meta(r, pu);
    }
    r.rec("sendto plain", r.ops.sendto(fd, "plain", 5, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to));
    peer_recv_meta(r, pu, "peer.recvmsg plain (socket defaults again)");
    const int ifx = r.lab_ifindex();
    struct {
      const char* step;
      in_pktinfo pi;
    } pk[] = {
        {"sendmsg IP_PKTINFO spec=LOCAL if=IF", pktinfo(ifx, r.local_ip)},
        {"sendmsg IP_PKTINFO spec=ANY if=0", pktinfo(0, 0)},
        {"sendmsg IP_PKTINFO spec=LOCAL if=0", pktinfo(0, r.local_ip)},
        {"sendmsg IP_PKTINFO spec=198.18.0.9 (not ours)", pktinfo(0, (198u << 24) | (18u << 16) | 9u)},
        {"sendmsg IP_PKTINFO spec=255.255.255.255", pktinfo(0, 0xffffffffu)},
        {"sendmsg IP_PKTINFO spec=224.0.0.1", pktinfo(0, 0xe0000001u)},
        {"sendmsg IP_PKTINFO if=999 (none)", pktinfo(999, 0)},
    };
    for (const auto& k : pk) {
      OneCmsg c(SOL_IP, IP_PKTINFO, &k.pi, sizeof k.pi);
      if (sendmsg_log(r, fd, to, "pk", c.buf, c.len, k.step) > 0) peer_recv_meta(r, pu);
    }
    struct {
      const char* step;
      int level, type;
      const void* data;
      size_t n;
    } bad[] = {
        {"sendmsg IP_PKTINFO short", SOL_IP, IP_PKTINFO, &one, sizeof one},
        {"sendmsg IP_TTL 0", SOL_IP, IP_TTL, &ttl0, sizeof ttl0},
        {"sendmsg IP_TTL 1 byte", SOL_IP, IP_TTL, &byte7, 1},
        {"sendmsg IP_TOS 256", SOL_IP, IP_TOS, &tos256, sizeof tos256},
        {"sendmsg SOL_IP type 99", SOL_IP, 99, &one, sizeof one},
        {"sendmsg level 12345 (skipped)", 12345, 1, &one, sizeof one},
        {"sendmsg SCM_RIGHTS (ignored on inet)", SOL_SOCKET, SCM_RIGHTS, &one, sizeof one},
        {"sendmsg SOL_SOCKET type 99", SOL_SOCKET, 99, &one, sizeof one},
        {"sendmsg SOL_UDP type 1", IPPROTO_UDP, 1, &one, sizeof one},
        {"sendmsg SO_PRIORITY 3", SOL_SOCKET, SO_PRIORITY, &ttl7, sizeof ttl7},
    };
    for (const auto& b : bad) {
      OneCmsg c(b.level, b.type, b.data, b.n);
      if (sendmsg_log(r, fd, to, "x", c.buf, c.len, b.step) > 0) peer_recv_meta(r, pu);
    }
    {
      OneCmsg c(SOL_IP, IP_TTL, &ttl7, sizeof ttl7);
      reinterpret_cast<cmsghdr*>(c.buf)->cmsg_len = c.len + 8;  // past msg_controllen
      sendmsg_log(r, fd, to, "x", c.buf, c.len, "sendmsg cmsg_len past controllen");
      reinterpret_cast<cmsghdr*>(c.buf)->cmsg_len = 8;  // shorter than its header
      sendmsg_log(r, fd, to, "x", c.buf, c.len, "sendmsg cmsg_len 8");
      if (sendmsg_log(r, fd, to, "tiny", c.buf, 8, "sendmsg controllen 8 (no cmsg)") > 0) peer_recv_meta(r, pu);
      sendmsg_log(r, fd, to, "x", nullptr, 16, "sendmsg NULL control, controllen 16");
    }
    {
      // sendmmsg: each message's own cmsgs.
      OneCmsg a(SOL_IP, IP_TTL, &ttl7, sizeof ttl7);
      const int ttl11 = 11;
      OneCmsg b(SOL_IP, IP_TTL, &ttl11, sizeof ttl11);
      iovec v1{const_cast<char*>("mm1"), 3}, v2{const_cast<char*>("mm2"), 3};
      mmsghdr mm[2] = {};
      for (int i = 0; i < 2; ++i) {
        mm[i].msg_hdr.msg_name = const_cast<sockaddr_in*>(&to);
        mm[i].msg_hdr.msg_namelen = sizeof to;
        mm[i].msg_hdr.msg_iovlen = 1;
      }
      mm[0].msg_hdr.msg_iov = &v1;
      mm[0].msg_hdr.msg_control = a.buf;
      mm[0].msg_hdr.msg_controllen = a.len;
      mm[1].msg_hdr.msg_iov = &v2;
      mm[1].msg_hdr.msg_control = b.buf;
      mm[1].msg_hdr.msg_controllen = b.len;
      r.rec("sendmmsg(2)", r.ops.sendmmsg(fd, mm, 2, 0));
      peer_recv_meta(r, pu);
      peer_recv_meta(r, pu);
    }
    {
      // MSG_MORE: the first call's cmsgs shape the datagram; later ones are not parsed.
      OneCmsg a(SOL_IP, IP_TTL, &ttl7, sizeof ttl7);
      OneCmsg bad2(SOL_IP, 99, &one, sizeof one);
      sendmsg_log(r, fd, to, "cork-", a.buf, a.len, "sendmsg MSG_MORE IP_TTL 7", MSG_MORE);
      sendmsg_log(r, fd, to, "ed", bad2.buf, bad2.len, "sendmsg (pending, bad cmsg not parsed)");
      peer_recv_meta(r, pu);
    }
    r.close(fd);
    r.peer_close(pu);
  });
}

TEST_F(DiffTest, TcpCmsgTimestamp) {
  run_diff("TcpCmsgTimestamp", [](Session& r) {
    int lfd, pfd;
    const int fd = connected_pair(r, 20054, &lfd, &pfd);
    r.setsockopt_int(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
    r.setsockopt_int(fd, IPPROTO_IP, IP_RECVTTL, 1, "IP_RECVTTL");
    r.setsockopt_int(fd, IPPROTO_IP, IP_RECVTOS, 1, "IP_RECVTOS");
    r.getsockopt_int(fd, IPPROTO_IP, IP_PKTINFO, "IP_PKTINFO");
    r.getsockopt_int(fd, IPPROTO_IP, IP_RECVTOS, "IP_RECVTOS");
    r.setsockopt_int(fd, SOL_SOCKET, kTsOld, 1, "SO_TIMESTAMP");
    // Linux turns receive stamping on (net_enable_timestamp) from a work
    // item: a segment arriving at once may carry no stamp, and TCP then
    // reports none.
    r.sleep_ms(100);
    r.peer_send(pfd, "abc");
    r.poll1(fd, POLLIN, kWait);
    recvmsg_log(r, fd, 128, 0, "recvmsg (only a timestamp on TCP)");
    r.peer_send(pfd, "def");
    r.poll1(fd, POLLIN, kWait);
    recvmsg_log(r, fd, 128, MSG_PEEK, "recvmsg PEEK");
    recvmsg_log(r, fd, 0, 0, "recvmsg ctl=0");
    r.peer_send(pfd, "g");
    r.poll1(fd, POLLIN, kWait);
    recvmsg_log(r, fd, 20, 0, "recvmsg ctl=20");
    r.setsockopt_int(fd, SOL_SOCKET, kTsNsOld, 1, "SO_TIMESTAMPNS");
    r.peer_send(pfd, "h");
    r.poll1(fd, POLLIN, kWait);
    recvmsg_log(r, fd, 128, 0, "recvmsg ns");
    recvmsg_log(r, fd, 128, MSG_DONTWAIT, "recvmsg empty");
    r.setsockopt_int(fd, SOL_SOCKET, kTsOld, 0, "SO_TIMESTAMP off");
    r.peer_send(pfd, "i");
    r.poll1(fd, POLLIN, kWait);
    recvmsg_log(r, fd, 128, 0, "recvmsg off");
    // sendmsg on TCP: SOL_SOCKET cmsgs are checked (EINVAL), others ignored.
    const sockaddr_in to = r.peer(20054);
    const int ttl7 = 7, one = 1;
    OneCmsg ip(SOL_IP, IP_TTL, &ttl7, sizeof ttl7);
    sendmsg_log(r, fd, to, "ip-cmsg", ip.buf, ip.len, "sendmsg SOL_IP IP_TTL (ignored)");
    OneCmsg so(SOL_SOCKET, 99, &one, sizeof one);
    sendmsg_log(r, fd, to, "so-cmsg", so.buf, so.len, "sendmsg SOL_SOCKET 99");
    r.peer_recv_exact(pfd, 7);
    r.setsockopt_int(fd, SOL_SOCKET, kTsOld, 1, "SO_TIMESTAMP on");
    r.peer_close(pfd);
    r.poll1(fd, POLLIN, kWait);
    recvmsg_log(r, fd, 128, 0, "recvmsg at EOF (no cmsg)");
    r.close(fd);
    r.peer_close(lfd);
  });
}

}  // namespace
}  // namespace xsdiff
