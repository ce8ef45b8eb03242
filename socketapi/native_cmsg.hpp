// Ancillary data (cmsg) of xs_recvmsg/xs_sendmsg, laid out and validated as
// Linux does: put_cmsg's truncation rules on receive, udp_cmsg_send +
// ip_cmsg_send + __sock_cmsg_send's checks on send. Pure functions over the
// caller's buffers; the runtime decides what to put.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>

namespace xs::native {

// Linux's SO_TIMESTAMP* numbers (asm-generic/socket.h). On x86_64 glibc's
// SO_TIMESTAMP/SO_TIMESTAMPNS are the _OLD ones (29, 35), and the kernel
// answers each with a cmsg of the same number (SCM_TIMESTAMP = 29, ...).
inline constexpr int kSoTimestampOld = 29;
inline constexpr int kSoTimestampNsOld = 35;
inline constexpr int kSoTimestampNew = 63;
inline constexpr int kSoTimestampNsNew = 64;

// What recvmsg reports, as set with setsockopt. The timestamp flags are
// Linux's SOCK_RCVTSTAMP, SOCK_RCVTSTAMPNS and SOCK_TSTAMP_NEW.
struct RecvCmsgFlags {
  bool pktinfo = false;  // IP_PKTINFO
  bool ttl = false;      // IP_RECVTTL
  bool tos = false;      // IP_RECVTOS
  bool origdst = false;  // IP_RECVORIGDSTADDR
  bool ts = false, ts_ns = false, ts_new = false;

  // setsockopt(SOL_SOCKET, SO_TIMESTAMP{,NS}{_OLD,_NEW}) (__sock_set_timestamps):
  // on picks the flavour; off (through any of the four) turns both kinds off.
  void set_timestamp(int optname, bool on);
  // getsockopt of the same four names (sk_getsockopt).
  bool timestamp_reported(int optname) const;
  bool any_ip() const { return pktinfo || ttl || tos || origdst; }
};

// Writes cmsgs into a recvmsg control buffer the way Linux put_cmsg does: a
// cmsg that does not fit is cut to the space left (its cmsg_len says so) and
// sets MSG_CTRUNC; with less than a header left nothing is written.
class CmsgWriter {
 public:
  CmsgWriter(void* control, size_t len) : base_(static_cast<uint8_t*>(control)), cur_(base_), left_(len) {}
  void put(int level, int type, const void* data, size_t len);
  // msg_controllen to report: the bytes the cmsgs took.
  size_t used() const { return static_cast<size_t>(cur_ - base_); }
  bool truncated() const { return trunc_; }

 private:
  uint8_t* base_;
  uint8_t* cur_;
  size_t left_;
  bool trunc_ = false;
};

// SO_TIMESTAMP* for a receive time in CLOCK_REALTIME microseconds, in the
// flavour `f` asks for (__sock_recv_timestamp); nothing when off.
void put_timestamp(CmsgWriter& w, const RecvCmsgFlags& f, int64_t realtime_us);

// The parts of sendmsg's control data that change a datagram.
struct SendCmsg {
  std::optional<in_pktinfo> pktinfo;  // IP_PKTINFO
  std::optional<int> ttl;             // IP_TTL, 1..255
  std::optional<int> tos;             // IP_TOS, 0..255
};

// Parses a UDP sendmsg's control data as udp_cmsg_send, ip_cmsg_send and
// __sock_cmsg_send do: 0, or the errno Linux returns. `privileged`: the
// caller may set SO_MARK and priorities above 6 (CAP_NET_ADMIN).
int parse_udp_send_cmsgs(const msghdr& msg, bool privileged, SendCmsg* out);
// TCP (tcp_sendmsg_locked: sock_cmsg_send, SOL_SOCKET only): 0 or EINVAL.
int check_tcp_send_cmsgs(const msghdr& msg, bool privileged);

}  // namespace xs::native
