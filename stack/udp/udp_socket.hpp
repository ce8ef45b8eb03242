// A UDP socket with Linux semantics (man 7 udp, man 7 socket): bind/connect
// rules, SO_* options, SO_ERROR from ICMP, and a bounded receive queue held
// in one byte ring per socket (no allocation per datagram).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/events.hpp"
#include "stack/base/expected.hpp"
#include "stack/base/sock_error.hpp"
#include "stack/base/time.hpp"

namespace xs {

class UdpLayer;
class FrameLender;

// What a received datagram carried besides its payload, kept per datagram
// in the receive queue for ancillary data (IP_PKTINFO, IP_TTL, IP_TOS,
// IP_ORIGDSTADDR, SO_TIMESTAMP*). Fixed size: no allocation per datagram.
struct UdpRxMeta {
  Ipv4Addr dst;             // the IP destination (ours, or a broadcast address)
  uint16_t dst_port = 0;
  uint8_t ttl = 0;
  uint8_t tos = 0;
  // IP_PKTINFO was on when the datagram was queued: Linux fills the interface
  // and spec_dst only then (ipv4_pktinfo_prepare), else both are 0.
  bool pktinfo = false;
  Ipv4Addr spec_dst;        // the local address a reply would come from (fib_compute_spec_dst)
  Instant arrival;          // when the frame reached the stack
};

struct UdpRecv {
  size_t copied = 0;        // bytes written to the caller's buffer
  size_t datagram_len = 0;  // full datagram length (what MSG_TRUNC returns)
  Endpoint from;
  UdpRxMeta meta;
};

class UdpSocket {
 public:
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  // Gives back every frame still holding a queued datagram (zc_frames).
  ~UdpSocket();

  // bind(2). Port 0 picks an ephemeral port. EINVAL if already bound,
  // EADDRNOTAVAIL for an address that is not ours, EADDRINUSE on conflict
  // (unless both sockets set SO_REUSEADDR, or both SO_REUSEPORT).
  Status<SockError> bind(Endpoint local);
  // connect(2): sets the default destination, binds an ephemeral port if
  // needed, fixes the local address to the route's source, and from then on
  // accepts datagrams only from `remote`. Port 0 is accepted as Linux does.
  Status<SockError> connect(Endpoint remote);
  // connect(AF_UNSPEC): forgets the peer; an address or port that bind()
  // did not set explicitly is released again (Linux __udp_disconnect).
  void disconnect();

  // Per-datagram overrides of the socket's settings (sendmsg ancillary data:
  // IP_PKTINFO's ipi_spec_dst, IP_TTL, IP_TOS).
  struct TxOverrides {
    std::optional<Ipv4Addr> src;  // replaces the bound address (0: the route's choice)
    std::optional<uint8_t> ttl;
    std::optional<uint8_t> tos;
  };
  // False when dst (limited broadcast, multicast) has no route: no named
  // source address and no default gateway.
  bool has_route_for_group(Ipv4Addr dst, const TxOverrides* ov) const;
  // sendto(2)/send(2). dst overrides the connected peer.
  Expected<size_t, SockError> send_to(Instant now, Bytes payload, std::optional<Endpoint> dst = std::nullopt,
                                      const TxOverrides* ov = nullptr);
  // send(2): to the connected peer.
  Expected<size_t, SockError> send(Instant now, Bytes payload) { return send_to(now, payload, std::nullopt); }
  // recvfrom(2). Copies at most out.size() bytes of the next datagram; the
  // rest of it is discarded unless peek (MSG_PEEK). WouldBlock when empty.
  // peek_off: SO_PEEK_OFF, where a peek starts (bytes into the queue).
  Expected<UdpRecv, SockError> recv_from(MutBytes out, bool peek = false, size_t peek_off = 0);

  // ---- zero-copy receive (docs/zerocopy.md) ---------------------------------
  struct View {
    Bytes payload;  // the whole datagram, in place in the receive queue (or its frame)
    Endpoint from;
  };
  // Lends up to out.size() of the oldest readable datagrams, in order, in
  // place: they stay queued (charged against rcvbuf) until zc_release.
  // WouldBlock when none is readable; a pending error first, as recv_from.
  Expected<size_t, SockError> zc_borrow(std::span<View> out);
  // Frees the oldest n lent datagrams. InvalidArgument when fewer are lent.
  Status<SockError> zc_release(size_t n);
  size_t zc_lent() const { return lent_; }
  // Keep received payloads in the device's frames (FrameLender, see
  // UdpLayer::frame_lender) instead of copying them into the receive queue.
  // Per datagram: when the lender refuses (or there is none) it is copied as
  // usual. rcvbuf accounting is the same either way. Turning it off affects
  // only datagrams received afterwards.
  void set_zc_frames(bool on) { zc_frames_ = on; }
  bool zc_frames() const { return zc_frames_; }
  // Queued datagrams (readable or lent) whose payload sits in a held frame.
  size_t rx_frames_held() const { return frames_held_; }

  // SO_ERROR: an asynchronous error (ICMP) waiting to be reported.
  std::optional<SockError> pending_error() const { return error_; }
  std::optional<SockError> take_error();

  // epoll bits (ev::).
  uint32_t readiness() const;
  void set_observer(SocketObserver* obs, void* cookie) { observer_ = obs; cookie_ = cookie; }

  // ---- options -------------------------------------------------------------
  // SO_RCVBUF / SO_SNDBUF: the value is doubled (kernel bookkeeping overhead),
  // capped by net.core.[rw]mem_max, floored at SOCK_MIN_RCVBUF/SNDBUF; the
  // getter returns the doubled value, as getsockopt does.
  void set_rcvbuf(uint32_t bytes);
  uint32_t rcvbuf() const { return rcvbuf_; }
  void set_sndbuf(uint32_t bytes);
  uint32_t sndbuf() const { return sndbuf_; }
  void set_broadcast(bool on) { broadcast_ = on; }
  // IP_MTU_DISCOVER (IP_PMTUDISC_DONT 0 ... OMIT 5; Linux's default WANT 1).
  void set_pmtudisc(uint8_t mode) { pmtudisc_ = mode; }
  uint8_t pmtudisc() const { return pmtudisc_; }
  bool broadcast() const { return broadcast_; }
  void set_reuseaddr(bool on) { reuseaddr_ = on; }
  bool reuseaddr() const { return reuseaddr_; }
  void set_reuseport(bool on) { reuseport_ = on; }
  bool reuseport() const { return reuseport_; }
  void set_tos(uint8_t tos) { tos_ = tos; }
  uint8_t tos() const { return tos_; }
  // IP_TTL: 1..255, or -1 for the default; anything else is EINVAL.
  Status<SockError> set_ttl(int ttl);
  uint8_t ttl() const;
  // IP_PKTINFO: datagrams queued while it is on record the interface's
  // spec_dst (see UdpRxMeta::pktinfo); the other receive options only shape
  // what the API layer reports and live there.
  void set_recv_pktinfo(bool on) { recv_pktinfo_ = on; }
  bool recv_pktinfo() const { return recv_pktinfo_; }

  // getsockname / getpeername.
  Endpoint local() const { return local_; }
  std::optional<Endpoint> remote() const { return remote_; }

  // FIONREAD: for UDP, the size of the next datagram (0 if none; Linux).
  size_t bytes_readable() const;
  // Datagrams and payload bytes queued for reading; bytes charged against rcvbuf.
  size_t rx_datagrams() const { return count_; }
  size_t rx_queued_bytes() const { return payload_bytes_; }
  size_t rx_charged() const { return charged_; }
  // SIOCOUTQ: datagrams leave at once, nothing is held.
  size_t tx_queued_bytes() const { return 0; }

 private:
  friend class UdpLayer;
  // Bytes of each queued record before its payload: length, source address
  // and port, then the UdpRxMeta fields (layout at ring_ below).
  static constexpr size_t kRecHdr = 32;
  // A length field with this value marks the rest of the ring as unused: the
  // next record starts at offset 0.
  static constexpr uint32_t kWrapMark = 0xffffffff;
  // Header flags byte (offset 22).
  static constexpr uint8_t kFlagPktinfo = 1;  // UdpRxMeta::pktinfo
  static constexpr uint8_t kFlagFrame = 2;    // payload in a lent frame (body below)
  // Body of a record whose payload stays in a held frame: the payload's
  // address (8 bytes), then the lender's handle (u64).
  static constexpr size_t kFrameBody = 16;

  explicit UdpSocket(UdpLayer& layer);

  // Appends a datagram; false (and nothing queued) when rcvbuf is exhausted.
  bool enqueue(Bytes payload, Endpoint from, const UdpRxMeta& meta);
  void set_error(SockError e);
  void notify() { if (observer_ != nullptr) observer_->on_socket_event(cookie_); }
  bool autobind(std::optional<Endpoint> remote);
  // Records never wrap (a lent datagram is one contiguous span): a record
  // that does not fit before the end of the ring starts at offset 0.
  struct Rec {
    size_t pos;  // of the header
    uint32_t len;   // the datagram's length
    uint32_t body;  // bytes stored after the header: len, or kFrameBody
    bool in_frame;  // kFlagFrame
    Endpoint from;
  };
  Rec rec_at(size_t pos) const;  // pos: a record's offset, or where the writer wrapped
  UdpRxMeta meta_at(const Rec& r) const;
  static size_t after(const Rec& r) { return r.pos + kRecHdr + r.body; }  // where the next record may be
  const uint8_t* payload_at(const Rec& r) const;  // in the ring, or in the held frame
  // Asks the lender to hold the frame `payload` lies in; nullopt: copy it.
  std::optional<uint64_t> hold_frame(Bytes payload);
  void release_frame(const Rec& r);  // r.in_frame
  size_t stored() const { return count_ + lent_; }
  // Offset for a record of n bytes, or nullopt when the ring has no room.
  std::optional<size_t> place(size_t n) const;
  // The ring size for the current rcvbuf (see ensure_ring).
  size_t ring_target() const;
  void ensure_ring();
  // Frees the oldest stored record (at head_; the caller has already taken it
  // off count_ or lent_): gives its frame back, uncharges it, advances head_.
  void drop_front();

  UdpLayer& layer_;
  Endpoint local_;
  std::optional<Endpoint> remote_;
  bool bind_addr_locked_ = false;  // address set by bind(), kept over disconnect
  bool bind_port_locked_ = false;  // port set by bind(), kept over disconnect
  bool hashed_ = false;            // in the layer's port table
  UdpSocket* next_in_port_ = nullptr;

  uint32_t rcvbuf_;
  uint32_t sndbuf_;
  bool broadcast_ = false;
  bool reuseaddr_ = false;
  bool reuseport_ = false;
  uint8_t tos_ = 0;
  int ttl_ = -1;
  uint8_t pmtudisc_ = 1;  // IP_PMTUDISC_WANT
  bool recv_pktinfo_ = false;
  bool zc_frames_ = false;

  std::optional<SockError> error_;
  SocketObserver* observer_ = nullptr;
  void* cookie_ = nullptr;

  // Receive queue: records [len u32][src addr u32][src port u16][dst port u16]
  // [dst addr u32][spec_dst u32][ttl u8][tos u8][flags u8][pad u8]
  // [arrival i64][payload] (flags bit 0: UdpRxMeta::pktinfo) back to back in
  // a ring (flags bit 1: the body is instead {payload address, frame handle},
  // kFrameBody bytes, the payload staying in a frame held from held_by_), allocated on first use and grown only by set_rcvbuf (deferred
  // while datagrams are lent, since growing moves them).
  // Stored records are [head_, tail_); the first lent_ of them are lent to
  // the application, the count_ after them (from read_) are readable.
  std::vector<uint8_t> ring_;
  size_t head_ = 0;   // offset of the oldest stored record
  size_t read_ = 0;   // offset of the oldest readable record
  size_t tail_ = 0;   // offset where the next record goes
  size_t count_ = 0;  // readable datagrams
  size_t lent_ = 0;   // lent datagrams (zero-copy receive)
  size_t charged_ = 0;        // stored datagrams' charge against rcvbuf
  size_t payload_bytes_ = 0;  // readable payload bytes
  // Stored records whose payload is in a held frame, and the lender that
  // holds them all (they are released through it; a different lender set
  // meanwhile lends nothing to this socket until they are back).
  size_t frames_held_ = 0;
  FrameLender* held_by_ = nullptr;
};

}  // namespace xs
