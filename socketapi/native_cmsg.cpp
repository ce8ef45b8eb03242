#include "socketapi/native_cmsg.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace xs::native {

namespace {

constexpr size_t kHdr = sizeof(cmsghdr);  // CMSG_ALIGN(sizeof(struct cmsghdr)) on Linux
constexpr size_t align(size_t n) { return (n + sizeof(size_t) - 1) & ~(sizeof(size_t) - 1); }
constexpr size_t cmsg_len(size_t n) { return kHdr + n; }
constexpr size_t cmsg_space(size_t n) { return kHdr + align(n); }

// Linux's numbers where glibc's headers may not have them.
constexpr int kSoMark = 36;
constexpr int kSoTimestampingOld = 37;
constexpr int kSoTimestampingNew = 65;
constexpr int kSolUdp = 17;
constexpr int kIpProtocol = 52;

// The kernel's for_each_cmsghdr over a sendmsg control buffer: calls
// f(level, type, cmsg_len, data) for each; returns the first nonzero f result,
// or EINVAL for a cmsg that fails CMSG_OK (shorter than its header or running
// past msg_controllen).
template <class F>
int for_each_cmsg(const msghdr& msg, F&& f) {
  const auto* base = static_cast<const uint8_t*>(msg.msg_control);
  const size_t total = msg.msg_controllen;
  if (total < kHdr) return 0;  // __CMSG_FIRSTHDR: no header fits, no cmsg
  size_t off = 0;
  for (;;) {
    cmsghdr h;
    std::memcpy(&h, base + off, kHdr);
    if (h.cmsg_len < kHdr || h.cmsg_len > total - off) return EINVAL;  // CMSG_OK
    if (int e = f(h.cmsg_level, h.cmsg_type, size_t(h.cmsg_len), base + off + kHdr)) return e;
    const size_t next = off + align(h.cmsg_len);  // __cmsg_nxthdr
    if (next < off || next + kHdr > total) return 0;
    off = next;
  }
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// __sock_cmsg_send (SOL_SOCKET level).
int sock_cmsg(int type, size_t len, const uint8_t* data, bool privileged) {
  switch (type) {
    case kSoMark:
      if (!privileged) return EPERM;
      if (len != cmsg_len(4)) return EINVAL;
      return 0;  // no routing marks here: accepted, nothing routes by it
    case SO_PRIORITY: {
      if (len != cmsg_len(4)) return EINVAL;
      const uint32_t prio = load<uint32_t>(data);
      if (prio > 6 && !privileged) return EPERM;  // sk_set_prio_allowed
      return 0;  // SO_PRIORITY picks no queue here (docs/compat.md)
    }
    case SCM_RIGHTS:
    case SCM_CREDENTIALS:
      return 0;  // "semantically in SOL_UNIX": Linux ignores them on inet sockets
    case kSoTimestampingOld:
    case kSoTimestampingNew:
      // Linux accepts TX timestamping requests; their reports go to the
      // error queue, which xstack does not have (docs/compat.md).
      return EINVAL;
    default:
      // SCM_TXTIME without SO_TXTIME, SCM_TS_OPT_ID without
      // SOF_TIMESTAMPING_OPT_ID, unknown types: EINVAL on Linux too.
      return EINVAL;
  }
}

}  // namespace

// ---- options --------------------------------------------------------------------------

void RecvCmsgFlags::set_timestamp(int optname, bool on) {
  if (!on) {
    ts = ts_ns = false;  // SOCK_TSTAMP_NEW stays as it was
    return;
  }
  ts_new = optname == kSoTimestampNew || optname == kSoTimestampNsNew;
  ts_ns = optname == kSoTimestampNsOld || optname == kSoTimestampNsNew;
  ts = true;
}

bool RecvCmsgFlags::timestamp_reported(int optname) const {
  switch (optname) {
    case kSoTimestampOld: return ts && !ts_new && !ts_ns;
    case kSoTimestampNsOld: return ts_ns && !ts_new;
    case kSoTimestampNew: return ts && ts_new;  // (sic: no SOCK_RCVTSTAMPNS test)
    case kSoTimestampNsNew: return ts_ns && ts_new;
  }
  return false;
}

// ---- receive --------------------------------------------------------------------------

void CmsgWriter::put(int level, int type, const void* data, size_t len) {
  if (base_ == nullptr || left_ < kHdr) {
    trunc_ = true;
    return;
  }
  size_t cmlen = cmsg_len(len);
  if (left_ < cmlen) {
    trunc_ = true;
    cmlen = left_;
  }
  cmsghdr h{};
  h.cmsg_len = cmlen;
  h.cmsg_level = level;
  h.cmsg_type = type;
  std::memcpy(cur_, &h, kHdr);
  if (cmlen > kHdr) std::memcpy(cur_ + kHdr, data, cmlen - kHdr);
  const size_t adv = std::min(cmsg_space(len), left_);
  cur_ += adv;
  left_ -= adv;
}

void put_timestamp(CmsgWriter& w, const RecvCmsgFlags& f, int64_t realtime_us) {
  if (!f.ts) return;
  // __kernel_old_timeval/__kernel_sock_timeval and __kernel_old_timespec/
  // __kernel_timespec are all two 64-bit fields on x86_64; the flavour
  // decides the cmsg type and the unit of the second field.
  int64_t v[2] = {realtime_us / 1000000, realtime_us % 1000000};
  if (f.ts_ns) v[1] *= 1000;
  int type = f.ts_new ? (f.ts_ns ? kSoTimestampNsNew : kSoTimestampNew)
                      : (f.ts_ns ? kSoTimestampNsOld : kSoTimestampOld);
  w.put(SOL_SOCKET, type, v, sizeof v);
}

// ---- send -----------------------------------------------------------------------------

int parse_udp_send_cmsgs(const msghdr& msg, bool privileged, SendCmsg* out) {
  *out = SendCmsg{};
  // udp_cmsg_send: SOL_UDP first (UDP_SEGMENT, GSO, is not implemented:
  // EINVAL, where Linux would split the payload).
  bool need_ip = false;
  int e = for_each_cmsg(msg, [&](int level, int, size_t, const uint8_t*) {
    if (level != kSolUdp) {
      need_ip = true;
      return 0;
    }
    return EINVAL;
  });
  if (e != 0 || !need_ip) return e;
  // ip_cmsg_send: SOL_SOCKET through __sock_cmsg_send, SOL_IP here, any other
  // level skipped.
  return for_each_cmsg(msg, [&](int level, int type, size_t len, const uint8_t* data) {
    if (level == SOL_SOCKET) return sock_cmsg(type, len, data, privileged);
    if (level != SOL_IP) return 0;
    switch (type) {
      case IP_PKTINFO: {
        if (len != cmsg_len(sizeof(in_pktinfo))) return EINVAL;
        out->pktinfo = load<in_pktinfo>(data);
        return 0;
      }
      case IP_TTL: {
        if (len != cmsg_len(sizeof(int))) return EINVAL;
        const int v = load<int>(data);
        if (v < 1 || v > 255) return EINVAL;
        out->ttl = v;
        return 0;
      }
      case IP_TOS: {
        int v;
        if (len == cmsg_len(sizeof(int))) v = load<int>(data);
        else if (len == cmsg_len(1)) v = data[0];
        else return EINVAL;
        if (v < 0 || v > 255) return EINVAL;
        out->tos = v;
        return 0;
      }
      case kIpProtocol: {
        // Only raw sockets use it; validated and ignored on UDP, as Linux.
        if (len != cmsg_len(sizeof(int))) return EINVAL;
        const int v = load<int>(data);
        return v < 1 || v > 255 ? EINVAL : 0;
      }
      default:
        // IP_RETOPTS (IP options are not implemented) and unknown types.
        return EINVAL;
    }
  });
}

int check_tcp_send_cmsgs(const msghdr& msg, bool privileged) {
  const int e = for_each_cmsg(msg, [&](int level, int type, size_t len, const uint8_t* data) {
    return level == SOL_SOCKET ? sock_cmsg(type, len, data, privileged) : 0;
  });
  return e != 0 ? EINVAL : 0;  // tcp_sendmsg_locked turns any error into EINVAL
}

}  // namespace xs::native
