#include "socketapi/kernel_net.hpp"

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "socketapi/log.hpp"
#include "stack/base/bytes.hpp"

namespace xs {
namespace {

// Dumps are retried when the kernel flags them NLM_F_DUMP_INTR (the table
// changed underneath); a busy table may need a few tries.
constexpr int kDumpTries = 5;
// Big enough for any dump skb the kernel builds (at most 32 KiB); a larger
// message would be cut, which MSG_TRUNC reports.
constexpr size_t kRxBufSize = 64 * 1024;
constexpr int kNotifyRcvBuf = 4 << 20;
// The kernel's NUD_VALID (include/net/neighbour.h; not in the UAPI headers).
constexpr uint16_t kNudValid = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;

// ---------------------------------------------------------------- parsing
// Headers are copied out with memcpy (no casts onto the buffer) and every
// length is checked against what remains before any byte of it is read.

struct NlMsg {
  uint16_t type = 0;
  uint16_t flags = 0;
  uint32_t seq = 0;
  Bytes payload;  // after the nlmsghdr, nlmsg_len - 16 bytes
};

// Calls fn(msg) for each message in buf while fn returns true. Returns false
// when a length field is inconsistent (the rest of buf is then ignored).
template <class F>
bool for_each_msg(Bytes buf, F&& fn) {
  while (buf.size() >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    std::memcpy(&h, buf.data(), sizeof(h));
    if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > buf.size()) return false;
    if (!fn(NlMsg{h.nlmsg_type, h.nlmsg_flags, h.nlmsg_seq, buf.subspan(sizeof(h), h.nlmsg_len - sizeof(h))})) {
      return true;
    }
    buf = buf.subspan(std::min<size_t>(NLMSG_ALIGN(h.nlmsg_len), buf.size()));
  }
  return buf.empty();
}

// Calls fn(type, data) for each well-formed attribute; stops at a bad length.
template <class F>
void for_each_attr(Bytes buf, F&& fn) {
  while (buf.size() >= sizeof(rtattr)) {
    rtattr a;
    std::memcpy(&a, buf.data(), sizeof(a));
    if (a.rta_len < sizeof(a) || a.rta_len > buf.size()) return;
    fn(uint16_t(a.rta_type & NLA_TYPE_MASK), buf.subspan(sizeof(a), a.rta_len - sizeof(a)));
    buf = buf.subspan(std::min<size_t>(RTA_ALIGN(a.rta_len), buf.size()));
  }
}

// The fixed family header T at the start of a payload, and the attributes after it.
template <class T>
bool split(Bytes payload, T* hdr, Bytes* attrs) {
  if (payload.size() < sizeof(T)) return false;
  std::memcpy(hdr, payload.data(), sizeof(T));
  *attrs = payload.subspan(std::min<size_t>(NLMSG_ALIGN(sizeof(T)), payload.size()));
  return true;
}

std::optional<uint32_t> attr_u32(Bytes d) {
  if (d.size() != 4) return std::nullopt;
  uint32_t v;
  std::memcpy(&v, d.data(), 4);
  return v;
}

std::optional<Ipv4Addr> attr_ip(Bytes d) {
  if (d.size() != 4) return std::nullopt;
  return Ipv4Addr{load_be32(d.data())};  // network order on the wire
}

// One hop of RTA_MULTIPATH: the first nexthop through `prefer_ifindex`, else the first.
void pick_multipath(Bytes d, int prefer_ifindex, KernelRoute* r) {
  bool have = false;
  while (d.size() >= sizeof(rtnexthop)) {
    rtnexthop nh;
    std::memcpy(&nh, d.data(), sizeof(nh));
    if (nh.rtnh_len < sizeof(nh) || nh.rtnh_len > d.size()) return;
    if (!have || nh.rtnh_ifindex == prefer_ifindex) {
      r->ifindex = nh.rtnh_ifindex;
      r->gateway.reset();
      for_each_attr(d.subspan(sizeof(nh), nh.rtnh_len - sizeof(nh)), [&](uint16_t type, Bytes a) {
        if (type == RTA_GATEWAY) r->gateway = attr_ip(a);
      });
      have = true;
      if (nh.rtnh_ifindex == prefer_ifindex) return;
    }
    d = d.subspan(std::min<size_t>(RTNH_ALIGN(nh.rtnh_len), d.size()));
  }
}

// A main-table IPv4 route, or nullopt for anything we do not track.
std::optional<KernelRoute> parse_route(Bytes payload, int our_ifindex) {
  rtmsg rt;
  Bytes attrs;
  if (!split(payload, &rt, &attrs) || rt.rtm_family != AF_INET || rt.rtm_dst_len > 32) return std::nullopt;
  // Source- and TOS-specific routes need inputs next_hop() does not have.
  if (rt.rtm_src_len != 0 || rt.rtm_tos != 0 || (rt.rtm_flags & RTM_F_CLONED) != 0) return std::nullopt;
  const bool sends = rt.rtm_type == RTN_UNICAST;
  const bool drops = rt.rtm_type == RTN_BLACKHOLE || rt.rtm_type == RTN_UNREACHABLE ||
                     rt.rtm_type == RTN_PROHIBIT || rt.rtm_type == RTN_THROW;
  if (!sends && !drops) return std::nullopt;  // local/broadcast/multicast live elsewhere
  uint32_t table = rt.rtm_table;
  KernelRoute r;
  r.dst.prefix_len = rt.rtm_dst_len;
  Bytes multipath;
  for_each_attr(attrs, [&](uint16_t type, Bytes d) {
    switch (type) {
      case RTA_TABLE: table = attr_u32(d).value_or(table); break;
      case RTA_DST: r.dst.addr = attr_ip(d).value_or(Ipv4Addr{}); break;
      case RTA_GATEWAY: r.gateway = attr_ip(d); break;
      case RTA_OIF: r.ifindex = int(attr_u32(d).value_or(0)); break;
      case RTA_PRIORITY: r.metric = attr_u32(d).value_or(0); break;
      case RTA_MULTIPATH: multipath = d; break;
      default: break;
    }
  });
  if (table != RT_TABLE_MAIN) return std::nullopt;
  if (!multipath.empty()) pick_multipath(multipath, our_ifindex, &r);
  r.dst.addr.v &= r.dst.mask();
  if (drops) {
    r.ifindex = 0;
    r.gateway.reset();
  }
  return r;
}

// A neighbour event for `ifindex`, or nullopt when there is nothing to report.
std::optional<KernelNeighbour> parse_neigh(const NlMsg& m, int ifindex) {
  ndmsg nd;
  Bytes attrs;
  if (!split(m.payload, &nd, &attrs) || nd.ndm_family != AF_INET || nd.ndm_ifindex != ifindex) return std::nullopt;
  if ((nd.ndm_flags & NTF_PROXY) != 0) return std::nullopt;  // proxy-ARP entries are not next hops
  std::optional<Ipv4Addr> ip;
  std::optional<MacAddr> mac;
  for_each_attr(attrs, [&](uint16_t type, Bytes d) {
    if (type == NDA_DST) ip = attr_ip(d);
    if (type == NDA_LLADDR && d.size() == 6) {
      MacAddr a;
      std::memcpy(a.b.data(), d.data(), 6);
      mac = a;
    }
  });
  if (!ip) return std::nullopt;
  KernelNeighbour n{*ip, MacAddr{}, NeighKind::Gone};
  if (m.type == RTM_DELNEIGH) return n;
  if ((nd.ndm_state & NUD_FAILED) != 0) {
    n.kind = NeighKind::Failed;
    return n;
  }
  // A valid state without a usable lladdr (not seen on Ethernet) is no answer yet.
  if ((nd.ndm_state & kNudValid) == 0 || !mac) return std::nullopt;
  n.kind = NeighKind::Valid;
  n.mac = *mac;
  return n;
}

std::string errno_text(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

// ---------------------------------------------------------------- requests

// Builds one request: nlmsghdr, a family header, then attributes.
class NlRequest {
 public:
  template <class T>
  NlRequest(uint16_t type, uint16_t flags, const T& family_hdr) : buf_(NLMSG_HDRLEN) {
    hdr_.nlmsg_type = type;
    hdr_.nlmsg_flags = flags;
    append(&family_hdr, sizeof(T));
  }
  void attr(uint16_t type, const void* data, size_t len) {
    rtattr a{uint16_t(RTA_LENGTH(len)), type};
    append(&a, sizeof(a));
    append(data, len);
  }
  Bytes finish(uint32_t seq) {
    hdr_.nlmsg_len = uint32_t(buf_.size());
    hdr_.nlmsg_seq = seq;
    std::memcpy(buf_.data(), &hdr_, sizeof(hdr_));
    return Bytes(buf_);
  }

 private:
  void append(const void* p, size_t len) {
    const size_t at = buf_.size();
    buf_.resize(at + NLMSG_ALIGN(len), 0);
    std::memcpy(buf_.data() + at, p, len);
  }
  nlmsghdr hdr_{};
  std::vector<uint8_t> buf_;
};

// The kernel's text for a failed request (extended ACK), or strerror.
std::string ack_error(const NlMsg& m, int err) {
  std::string text = std::strerror(err);
  if ((m.flags & NLM_F_ACK_TLVS) == 0 || m.payload.size() < sizeof(nlmsgerr)) return text;
  // NETLINK_CAP_ACK is set, so the TLVs follow nlmsgerr directly (NLM_F_CAPPED).
  const size_t skip = (m.flags & NLM_F_CAPPED) != 0 ? NLMSG_ALIGN(sizeof(nlmsgerr)) : m.payload.size();
  for_each_attr(m.payload.subspan(std::min(skip, m.payload.size())), [&](uint16_t type, Bytes d) {
    if (type != NLMSGERR_ATTR_MSG || d.empty()) return;
    const char* msg = reinterpret_cast<const char*>(d.data());
    text += " (" + std::string(msg, strnlen(msg, d.size())) + ")";
  });
  return text;
}

int open_socket(bool nonblock) {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), NETLINK_ROUTE);
  if (fd < 0) return -1;
  const int one = 1;
  // Best effort: without them errors only lack the kernel's explanation.
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  return fd;
}

// Receives one datagram from the kernel into buf. 0 bytes: EAGAIN. Messages
// from other processes (a unicast to our port id) are dropped, not parsed.
Expected<size_t, int> recv_from_kernel(int fd, std::vector<uint8_t>& buf) {
  for (;;) {
    sockaddr_nl from{};
    iovec iov{buf.data(), buf.size()};
    msghdr mh{};
    mh.msg_name = &from;
    mh.msg_namelen = sizeof(from);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    const ssize_t n = recvmsg(fd, &mh, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return size_t(0);
      return unexpected(errno);
    }
    if ((mh.msg_flags & MSG_TRUNC) != 0) return unexpected(EMSGSIZE);
    if (from.nl_pid != 0) continue;
    return size_t(n);
  }
}

struct NlError {
  int err = 0;       // errno value
  std::string text;  // for people
};

NlError nl_error(const char* what, int err) { return {err, errno_text(what, err)}; }

// Sends req and reads the replies carrying its seq until NLMSG_DONE (a dump)
// or NLMSG_ERROR (an error, or the ACK of a plain request); on_msg sees each
// data message. Returns true when the kernel flagged the dump as interrupted
// (NLM_F_DUMP_INTR), so the caller must discard what it got and retry.
Expected<bool, NlError> transact(int fd, std::vector<uint8_t>& buf, Bytes req, uint32_t seq,
                                 const std::function<void(const NlMsg&)>& on_msg) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    return unexpected(nl_error("netlink send", errno));
  }
  bool interrupted = false;
  bool done = false;
  NlError error;
  while (!done) {
    auto n = recv_from_kernel(fd, buf);
    if (!n) return unexpected(nl_error("netlink recv", n.error()));
    // The request socket blocks with SO_RCVTIMEO: 0 bytes means the kernel never answered.
    if (*n == 0) return unexpected(NlError{ETIMEDOUT, "netlink: no reply from the kernel"});
    const bool ok = for_each_msg(Bytes(buf.data(), *n), [&](const NlMsg& m) {
      if (m.seq != seq) return true;  // a late reply to an earlier, abandoned request
      if ((m.flags & NLM_F_DUMP_INTR) != 0) interrupted = true;
      if (m.type == NLMSG_DONE) {
        // Since 4.x DONE carries the dump's own error code.
        const auto code = m.payload.size() >= 4 ? attr_u32(m.payload.first(4)) : std::nullopt;
        if (code && int32_t(*code) < 0) error = NlError{-int32_t(*code), std::strerror(-int32_t(*code))};
        done = true;
        return false;
      }
      if (m.type == NLMSG_ERROR) {
        int32_t code = 0;
        if (m.payload.size() < sizeof(code)) {
          error = NlError{EPROTO, "netlink: short error message"};
        } else {
          std::memcpy(&code, m.payload.data(), sizeof(code));  // nlmsgerr.error
          if (code < 0) error = NlError{-code, ack_error(m, -code)};
        }
        done = true;  // an ACK (error 0) ends a plain request; any error ends a dump
        return false;
      }
      if (m.type >= RTM_BASE) on_msg(m);
      return true;
    });
    if (!ok) return unexpected(NlError{EPROTO, "netlink: malformed reply"});
  }
  if (error.err != 0) return unexpected(error);
  return interrupted;
}

}  // namespace

// ---------------------------------------------------------------- KernelNetWatcher

Expected<std::unique_ptr<KernelNetWatcher>, std::string> KernelNetWatcher::open(int ifindex) {
  if (ifindex <= 0) return unexpected(std::string("kernel_net: bad ifindex ") + std::to_string(ifindex));
  const int notify = open_socket(true);
  if (notify < 0) return unexpected(errno_text("netlink socket", errno));
  const int request = open_socket(false);
  if (request < 0) {
    const int err = errno;
    close(notify);
    return unexpected(errno_text("netlink socket", err));
  }
  std::unique_ptr<KernelNetWatcher> w(new KernelNetWatcher(notify, request, ifindex));
  w->rx_buf_.resize(kRxBufSize);

  // Root may exceed rmem_max; a deep buffer makes overruns (and re-dumps) rare.
  if (setsockopt(notify, SOL_SOCKET, SO_RCVBUFFORCE, &kNotifyRcvBuf, sizeof(kNotifyRcvBuf)) != 0) {
    setsockopt(notify, SOL_SOCKET, SO_RCVBUF, &kNotifyRcvBuf, sizeof(kNotifyRcvBuf));
  }
  // A kernel that never answers must not hang the engine.
  const timeval tv{2, 0};
  setsockopt(request, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  for (int fd : {notify, request}) {
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      return unexpected(errno_text("netlink bind", errno));
    }
  }
  // After bind(): bind() sets the first 32 groups to nl_groups, which would
  // drop these. Before the dumps, so no change falls between a dump and the
  // first event.
  for (int group : {RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR}) {
    if (setsockopt(notify, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) != 0) {
      return unexpected(errno_text("netlink add membership", errno));
    }
  }
  if (auto s = w->dump_routes(); !s) return unexpected(s.error());
  if (auto s = w->dump_neighbours(nullptr); !s) return unexpected(s.error());
  return w;
}

KernelNetWatcher::~KernelNetWatcher() {
  if (notify_fd_ >= 0) close(notify_fd_);
  if (request_fd_ >= 0) close(request_fd_);
}

Status<std::string> KernelNetWatcher::dump_routes() {
  rtmsg rt{};
  rt.rtm_family = AF_INET;
  for (int attempt = 0; attempt < kDumpTries; ++attempt) {
    NlRequest req(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, rt);
    std::vector<KernelRoute> got;
    const uint32_t seq = ++seq_;
    auto r = transact(request_fd_, rx_buf_, req.finish(seq), seq, [&](const NlMsg& m) {
      if (m.type != RTM_NEWROUTE) return;
      if (auto route = parse_route(m.payload, ifindex_)) got.push_back(*route);
    });
    if (!r) return unexpected("route dump: " + r.error().text);
    if (!*r) {
      routes_ = std::move(got);
      return {};
    }
  }
  return unexpected(std::string("route dump: interrupted by changes on every try"));
}

Status<std::string> KernelNetWatcher::dump_neighbours(const std::function<void(const KernelNeighbour&)>* on_neigh) {
  ndmsg nd{};
  nd.ndm_family = AF_INET;
  nd.ndm_ifindex = ifindex_;
  for (int attempt = 0; attempt < kDumpTries; ++attempt) {
    NlRequest req(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, nd);
    const uint32_t ifindex = uint32_t(ifindex_);
    req.attr(NDA_IFINDEX, &ifindex, sizeof(ifindex));  // kernel-side filter; we filter again
    std::vector<KernelNeighbour> got;
    const uint32_t seq = ++seq_;
    auto r = transact(request_fd_, rx_buf_, req.finish(seq), seq, [&](const NlMsg& m) {
      if (m.type != RTM_NEWNEIGH) return;
      if (auto n = parse_neigh(m, ifindex_)) got.push_back(*n);
    });
    if (!r) return unexpected("neighbour dump: " + r.error().text);
    if (*r) continue;
    if (on_neigh == nullptr) {
      initial_ = got;
      for (const auto& n : got) known_[n.ip.v] = n;
      return {};
    }
    // After an overrun: report what changed, and Gone for what vanished.
    std::map<uint32_t, KernelNeighbour> before = known_;
    for (const auto& n : got) {
      before.erase(n.ip.v);
      note_neighbour(n, on_neigh);
    }
    for (const auto& [ip, n] : before) note_neighbour(KernelNeighbour{n.ip, MacAddr{}, NeighKind::Gone}, on_neigh);
    return {};
  }
  return unexpected(std::string("neighbour dump: interrupted by changes on every try"));
}

void KernelNetWatcher::note_neighbour(const KernelNeighbour& n,
                                      const std::function<void(const KernelNeighbour&)>* on_neigh) {
  auto it = known_.find(n.ip.v);
  if (n.kind == NeighKind::Gone) {
    if (it == known_.end()) return;  // never reported (e.g. died INCOMPLETE)
    known_.erase(it);
  } else {
    // Valid repeats on every REACHABLE/STALE/DELAY/PROBE move with the same MAC;
    // Failed is passed on every time, as it ends each resolve() that fails.
    const bool repeat = it != known_.end() && it->second.kind == n.kind && it->second.mac == n.mac;
    if (repeat && n.kind == NeighKind::Valid) return;
    known_[n.ip.v] = n;
  }
  if (on_neigh != nullptr && *on_neigh) (*on_neigh)(n);
}

void KernelNetWatcher::apply_route(bool add, const KernelRoute& r) {
  // The kernel keys a route by (table, prefix, tos, metric); table and tos are fixed here.
  auto same = [&](const KernelRoute& x) {
    return x.dst.addr == r.dst.addr && x.dst.prefix_len == r.dst.prefix_len && x.metric == r.metric;
  };
  std::erase_if(routes_, same);
  if (add) routes_.push_back(r);
}

void KernelNetWatcher::process(const std::function<void(const KernelNeighbour&)>& on_neigh) {
  bool overrun = false;
  bool links_changed = false;
  for (;;) {
    auto n = recv_from_kernel(notify_fd_, rx_buf_);
    if (!n) {
      // ENOBUFS: the kernel dropped events. Keep draining what was queued, then re-dump.
      if (n.error() == ENOBUFS || n.error() == EMSGSIZE) {
        overrun = true;
        continue;
      }
      XS_LOG(Warn, "netlink notifications: %s", std::strerror(n.error()));
      break;
    }
    if (*n == 0) break;
    for_each_msg(Bytes(rx_buf_.data(), *n), [&](const NlMsg& m) {
      switch (m.type) {
        case RTM_NEWROUTE:
        case RTM_DELROUTE:
          if (auto r = parse_route(m.payload, ifindex_)) apply_route(m.type == RTM_NEWROUTE, *r);
          break;
        case RTM_NEWNEIGH:
        case RTM_DELNEIGH:
          if (auto nb = parse_neigh(m, ifindex_)) note_neighbour(*nb, &on_neigh);
          break;
        case RTM_NEWLINK:
        case RTM_DELLINK:
        case RTM_NEWADDR:
        case RTM_DELADDR:
          links_changed = true;
          break;
        default:
          break;
      }
      return true;
    });
  }
  if (overrun) ++overruns_;
  if (overrun || links_changed) {
    if (auto s = dump_routes(); !s) XS_LOG(Warn, "%s", s.error().c_str());
  }
  if (overrun) {
    if (auto s = dump_neighbours(&on_neigh); !s) XS_LOG(Warn, "%s", s.error().c_str());
  }
}

std::optional<Ipv4Addr> KernelNetWatcher::next_hop(Ipv4Addr dst) const {
  const KernelRoute* best = nullptr;
  for (const auto& r : routes_) {
    if (!r.dst.contains(dst)) continue;
    if (best == nullptr || r.dst.prefix_len > best->dst.prefix_len ||
        (r.dst.prefix_len == best->dst.prefix_len && r.metric < best->metric)) {
      best = &r;
    }
  }
  if (best == nullptr || best->ifindex != ifindex_) return std::nullopt;
  return best->gateway.value_or(dst);
}

Expected<std::optional<KernelNetWatcher::NeighEntry>, std::string> KernelNetWatcher::neigh_state(Ipv4Addr ip) {
  ndmsg nd{};
  nd.ndm_family = AF_INET;
  nd.ndm_ifindex = ifindex_;
  NlRequest req(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_ACK, nd);
  uint8_t dst[4];
  store_be32(dst, ip.v);
  req.attr(NDA_DST, dst, sizeof(dst));
  std::optional<NeighEntry> state;
  const uint32_t seq = ++seq_;
  auto r = transact(request_fd_, rx_buf_, req.finish(seq), seq, [&](const NlMsg& m) {
    ndmsg got;
    Bytes attrs;
    if (m.type == RTM_NEWNEIGH && split(m.payload, &got, &attrs) && got.ndm_ifindex == ifindex_) {
      NeighEntry e;
      e.state = got.ndm_state;
      for_each_attr(attrs, [&](uint16_t type, Bytes d) {
        if (type == NDA_LLADDR && d.size() == 6) {
          MacAddr a;
          std::memcpy(a.b.data(), d.data(), 6);
          e.mac = a;
        }
      });
      state = e;
    }
  });
  if (!r && r.error().err != ENOENT) return unexpected(r.error().text);
  return state;
}

Expected<std::optional<MacAddr>, std::string> KernelNetWatcher::resolve(Ipv4Addr ip) {
  // NTF_USE clears NUD_PERMANENT before it probes (verified on 6.18: a
  // permanent entry became INCOMPLETE), so an entry that needs no
  // resolution is left alone. An administrator making it permanent between
  // the two requests is a race we accept.
  auto state = neigh_state(ip);
  if (!state) return unexpected("resolve " + ip.to_string() + ": " + state.error());
  std::optional<MacAddr> usable;
  if (*state && ((*state)->state & kNudValid) != 0) usable = (*state)->mac;
  if (*state && ((*state)->state & (NUD_PERMANENT | NUD_NOARP)) != 0) return usable;
  // Reachable, or already being resolved: nothing to start.
  if (*state && ((*state)->state & (NUD_REACHABLE | NUD_INCOMPLETE | NUD_DELAY | NUD_PROBE)) != 0) return usable;

  ndmsg nd{};
  nd.ndm_family = AF_INET;
  nd.ndm_ifindex = ifindex_;
  nd.ndm_state = NUD_NONE;  // ignored with NTF_USE: the entry's own state drives the probe
  nd.ndm_flags = NTF_USE;
  NlRequest req(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, nd);
  uint8_t dst[4];
  store_be32(dst, ip.v);
  req.attr(NDA_DST, dst, sizeof(dst));
  const uint32_t seq = ++seq_;
  auto r = transact(request_fd_, rx_buf_, req.finish(seq), seq, [](const NlMsg&) {});
  if (!r) return unexpected("resolve " + ip.to_string() + ": " + r.error().text);
  return usable;  // a STALE entry's MAC stays usable while the kernel re-verifies it
}

}  // namespace xs
