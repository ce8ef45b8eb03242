// Private to socketapi/native_*.cpp: the descriptor object behind every
// xstack fd and the small helpers the native runtime's files share.
#pragma once

#include "socketapi/native_runtime.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>
#include <optional>
#include <unordered_set>

#include "socketapi/errno_map.hpp"
#include "socketapi/kernel_host.hpp"
#include "socketapi/native_cmsg.hpp"
#include "socketapi/private_fd.hpp"
#include "socketapi/v4_mapped.hpp"
#include "socketapi/xdp_packet_device.hpp"
#include "socketapi/xstack.h"
#include "stack/wire/ipv4.hpp"

namespace xs::native {

struct Runtime::Obj {
  enum class Kind : uint8_t { Tcp, Udp, Epoll };
  enum class Ss : uint8_t { Unconnected, Connecting, Connected };  // Linux sock->state
  struct Reg {
    uint32_t events = 0;
    epoll_data_t data{};
    std::shared_ptr<Obj> target;
    uint64_t seen_gen = 0;
    bool disabled = false;  // EPOLLONESHOT fired
    bool queued = false;    // on the instance's ready list
  };
  // A registration of this object in an epoll instance: the instance and the
  // descriptor number it was added under (a dup may be added separately).
  struct Watch {
    Obj* ep;
    int fd;
  };

  Kind kind = Kind::Tcp;
  int fd = -1;
  // An AF_INET6 socket: it carries IPv4 only, through IPv4-mapped addresses
  // (RFC 4291 section 2.5.5.2), as a Linux dual-stack socket does for an
  // IPv4 peer; names it reports are AF_INET6. xstack has no IPv6 address.
  bool inet6 = false;
  bool v6only = false;     // IPV6_V6ONLY: no IPv4 at all
  bool bound_mapped_any = false;  // bound to ::ffff:0.0.0.0, which getsockname shows as such
  int tclass = 0;          // IPV6_TCLASS, IPV6_UNICAST_HOPS: kept and
  int unicast_hops = -1;   // reported; they mark IPv6 packets only
  TcpSocket* tcp = nullptr;
  UdpSocket* udp = nullptr;
  bool nonblock = false, cloexec = false, closed = false;
  Duration rcvtimeo{0}, sndtimeo{0};  // 0: none
  Ss ss = Ss::Unconnected;
  bool shut_rd = false, shut_wr = false;  // UDP (TCP keeps its own)
  // Generic SOL_SOCKET flags Linux keeps on every socket (UDP: no effect).
  bool keepalive = false, broadcast = false, linger_on = false;
  bool oobinline = false;  // SO_OOBINLINE of a UDP socket (TCP keeps it in TcpSocketOptions)
  int linger_s = 0;
  int rcvlowat = 1;
  int peek_off = -1;  // SO_PEEK_OFF: where MSG_PEEK starts; -1: off (sk_peek_off)
  // SO_PRIORITY (and IP_TOS's mapping to it). Linux uses it to pick a queue
  // in the qdisc; AF_XDP TX has one ring and no qdisc, as a veth has none
  // (noqueue), so it orders nothing here either: kept and reported.
  int priority = 0;
  bool rcvbuf_set = false;  // SO_RCVBUF given (Linux SOCK_RCVBUF_LOCK)
  bool corked = false;                  // UDP: a MSG_MORE datagram is pending
  std::optional<Endpoint> cork_dst;
  UdpSocket::TxOverrides cork_ov;       // the corking call's cmsgs (IP_TTL, IP_TOS, IP_PKTINFO)
  // Ancillary data recvmsg delivers (IP_PKTINFO, IP_RECVTTL, ..., SO_TIMESTAMP*).
  RecvCmsgFlags cm;
  std::vector<uint8_t> cork_buf;
  uint64_t gen = 1;              // bumped on every readiness event
  std::vector<Watch> watchers;   // epoll registrations of this object
  std::map<int, Reg> regs;       // epoll: fd -> registration
  // epoll: registrations that may be ready, oldest first (Linux's rdllist):
  // a target's events queue it, a collect drops the ones found not ready and
  // moves a reported level-triggered one to the tail. epoll_wait thus costs
  // O(candidates), not O(registrations).
  std::vector<int> ready;
  std::vector<int> ready_tail;  // epoll: collect's scratch (reported LT entries), kept to avoid an allocation per wait
  int refs = 1;                  // descriptor numbers naming this object (dup_alias)
  // Signal-driven I/O (F_SETOWN, F_SETOWN_EX, F_SETSIG, O_ASYNC / FIOASYNC):
  // the owner (a process, -process group, or a thread), the signal (0: SIGIO)
  // and the readiness last reported, so a change is signalled once.
  bool async = false;
  int owner = 0;
  int owner_type = F_OWNER_PID;
  int sigio = 0;
  uint32_t async_seen = 0;
  bool wake = false;             // epoll: write fd when a target signals (epoll_set_wake)
  bool wake_pending = false;     // epoll: written since the last wait_begin
  // epoll: a thread polls in wait_begin and collects right after: events its
  // poll queues need no wake (two system calls per event loop iteration);
  // what its collect leaves ready writes the wake (Runtime::epoll_wait).
  bool collecting = false;
};

inline int fail(int e) {
  errno = e;
  return -1;
}

inline Instant deadline_after(bool nonblock, Duration timeo) {
  // Instant{} is before any CLOCK_MONOTONIC reading: already expired, without
  // a clock read on the (common) non-blocking and no-timeout paths.
  if (nonblock || timeo.us < 0) return Instant{};  // a negative SO_*TIMEO: do not wait
  if (timeo.us == 0) return kNever;
  return Engine::clock_now() + timeo;
}

// A blocking call's deadline, computed when the call first waits (as Linux
// counts SO_RCVTIMEO/SO_SNDTIMEO from the wait): a call that need not wait
// reads no clock for it.
class WaitDeadline {
 public:
  WaitDeadline(bool nonblock, Duration timeo) : nonblock_(nonblock), timeo_(timeo) {}
  operator Instant() {  // NOLINT: converts where wait_locked takes an Instant
    if (!set_) {
      at_ = deadline_after(nonblock_, timeo_);
      set_ = true;
    }
    return at_;
  }

 private:
  bool nonblock_;
  bool set_ = false;
  Duration timeo_;
  Instant at_;
};

inline Endpoint endpoint_of(const sockaddr_in& sin) {
  return {Ipv4Addr{ntohl(sin.sin_addr.s_addr)}, ntohs(sin.sin_port)};
}

inline sockaddr_in sockaddr_of(Endpoint ep) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(ep.port);
  sin.sin_addr.s_addr = htonl(ep.addr.v);
  return sin;
}

// An AF_INET6 address's IPv4 meaning: "::" is 0.0.0.0, ::ffff:a.b.c.d is
// a.b.c.d; nullopt for any other IPv6 address (none is xstack's).
inline std::optional<Endpoint> v4_of(const sockaddr_in6& s6) {
  const uint16_t port = ntohs(s6.sin6_port);
  if (IN6_IS_ADDR_UNSPECIFIED(&s6.sin6_addr)) return Endpoint{Ipv4Addr::any(), port};
  if (!IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr)) return std::nullopt;
  return Endpoint{Ipv4Addr{v4_in_mapped(s6.sin6_addr)}, port};
}

// An AF_INET6 socket's name for `ep`: IPv4-mapped, or "::" for the wildcard
// (unless `mapped_any`: bound as ::ffff:0.0.0.0).
inline sockaddr_in6 sockaddr6_of(Endpoint ep, bool mapped_any = false) {
  sockaddr_in6 s6{};
  s6.sin6_family = AF_INET6;
  s6.sin6_port = htons(ep.port);
  if (ep.addr.v != 0 || mapped_any) s6.sin6_addr = v4_mapped(ep.addr.v);
  return s6;
}

// Linux move_addr_to_user: copies min(*len, sizeof) and reports the full size.
// An AF_INET6 socket reports sockaddr_in6.
inline int put_addr(Endpoint ep, sockaddr* addr, socklen_t* len, bool inet6 = false, bool mapped_any = false) {
  if (addr == nullptr) return 0;
  if (len == nullptr) return EFAULT;
  if (static_cast<int>(*len) < 0) return EINVAL;
  if (inet6) {
    sockaddr_in6 s6 = sockaddr6_of(ep, mapped_any);
    std::memcpy(addr, &s6, std::min<size_t>(*len, sizeof s6));
    *len = sizeof s6;
    return 0;
  }
  sockaddr_in sin = sockaddr_of(ep);
  std::memcpy(addr, &sin, std::min<size_t>(*len, sizeof sin));
  *len = sizeof sin;
  return 0;
}

// The IPv4 endpoint an application's address names on socket `o`, or an
// errno. AF_INET sockets: sockaddr_in (AF_UNSPEC with INADDR_ANY too, for
// bind). AF_INET6 sockets, as Linux's inet6_bind / tcp_v6_connect /
// ip6_datagram_connect / udpv6_sendmsg: at least SIN6_LEN_RFC2133 (24)
// bytes of AF_INET6, IPv4-mapped or "::"; UDP also takes AF_INET for
// connect and sendto. Any other IPv6 address is one xstack cannot reach:
// EADDRNOTAVAIL for bind, ENETUNREACH for a destination, as on a host with
// no IPv6 address or route.
enum class AddrUse : uint8_t { Bind, Connect, SendTo };
constexpr socklen_t kSin6LenRfc2133 = 24;

struct AddrResult {
  int err = 0;
  Endpoint ep{};
};

inline AddrResult addr_in(const Runtime::Obj& o, const sockaddr* addr, socklen_t len, AddrUse use) {
  sa_family_t fam = AF_UNSPEC;
  if (len >= sizeof fam) std::memcpy(&fam, addr, sizeof fam);
  const bool udp_v4_ok = o.kind == Runtime::Obj::Kind::Udp && use != AddrUse::Bind && !o.v6only;
  if (!o.inet6 || (fam == AF_INET && udp_v4_ok)) {
    if (len < sizeof(sockaddr_in)) return {EINVAL};
    sockaddr_in sin;
    std::memcpy(&sin, addr, sizeof sin);
    const bool any_unspec = sin.sin_family == AF_UNSPEC && sin.sin_addr.s_addr == htonl(INADDR_ANY);
    const bool ok = sin.sin_family == AF_INET || (use == AddrUse::Bind && any_unspec) ||
                    (use == AddrUse::SendTo && sin.sin_family == AF_UNSPEC);
    if (!ok) return {EAFNOSUPPORT};
    return {0, endpoint_of(sin)};
  }
  if (fam == AF_INET && o.kind == Runtime::Obj::Kind::Udp && use != AddrUse::Bind) return {EAFNOSUPPORT};  // v6only
  if (use == AddrUse::SendTo && fam != AF_INET6) return {EINVAL};  // udpv6_sendmsg's default case
  if (len < kSin6LenRfc2133) return {EINVAL};
  if (fam != AF_INET6) return {EAFNOSUPPORT};
  sockaddr_in6 s6{};
  std::memcpy(&s6, addr, std::min<size_t>(len, sizeof s6));
  std::optional<Endpoint> ep = v4_of(s6);
  if (o.v6only) {
    // Only IPv6 traffic, and xstack has none: a mapped address is refused
    // as Linux does, any other IPv6 one is unreachable.
    if (ep && ep->addr.v != 0) return {use == AddrUse::Bind ? EINVAL : ENETUNREACH};
    return {use == AddrUse::Bind ? EADDRNOTAVAIL : ENETUNREACH};
  }
  if (!ep) return {use == AddrUse::Bind ? EADDRNOTAVAIL : ENETUNREACH};
  return {0, *ep};
}

#define XS_SOCK_OR_FAIL(o, fd)                                  \
  auto o = lookup_locked(fd);                                   \
  if (!o) return fail(bad_fd_errno(fd));                        \
  if (o->kind == Obj::Kind::Epoll) return fail(ENOTSOCK)

}  // namespace xs::native
