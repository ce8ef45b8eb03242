// Neighbour cache for IPv4 over Ethernet (RFC 826, RFC 1122 2.3.2): maps next
// hops to MAC addresses, answers ARP requests for our address, and holds a
// bounded queue of frames waiting for a resolution. States follow Linux's
// neighbour subsystem, simplified: INCOMPLETE, REACHABLE, STALE, PROBE (Linux's
// DELAY+PROBE folded into one), PERMANENT. All memory is allocated at construction.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/counters.hpp"
#include "stack/base/time.hpp"
#include "stack/net/frame_sink.hpp"
#include "stack/wire/arp.hpp"

namespace xs {

// Shared-IP mode: the kernel owns ARP for our address (requests and replies
// reach the kernel, not us), so the cache neither sends nor answers ARP; it
// asks the kernel to resolve and learns results through insert_static/remove
// (the engine relays rtnetlink neighbour events).
class NeighbourResolver {
 public:
  virtual ~NeighbourResolver() = default;
  virtual void request(Ipv4Addr ip) = 0;
};

// Told about each frame dropped because its next hop never answered, so the
// sender learns "host unreachable" as Linux's ipv4_link_failure makes it
// (a local ICMP host unreachable for the packet).
class ArpFailureObserver {
 public:
  virtual ~ArpFailureObserver() = default;
  virtual void on_unresolved(Instant now, Bytes frame) = 0;
};

struct ArpConfig {
  Duration retrans_time = seconds(1);     // neigh retrans_time_ms
  uint8_t mcast_probes = 3;               // mcast_solicit: broadcast requests before failing
  uint8_t ucast_probes = 3;               // ucast_solicit: unicast re-verifications of a stale entry
  Duration reachable_time = seconds(30);  // base_reachable_time
  Duration gc_stale_time = seconds(60);   // gc_stale_time: unused stale entries expire
  size_t max_entries = 1024;              // gc_thresh3
  size_t pool_buffers = 64;               // frames awaiting resolution, whole cache
  size_t max_queue_per_entry = 16;        // per neighbour (Linux bounds by unres_qlen_bytes)
  NeighbourResolver* external = nullptr;  // set: shared-IP mode (see NeighbourResolver)
};

class ArpCache {
 public:
  enum class State : uint8_t { Incomplete, Reachable, Stale, Probe, Permanent };

  // `ip` is the address we answer for; it may be unspecified (then no replies).
  ArpCache(MacAddr mac, Ipv4Addr ip, FrameSink& sink, StackCounters& counters,
           const ArpConfig& cfg = {});
  ArpCache(const ArpCache&) = delete;
  ArpCache& operator=(const ArpCache&) = delete;

  // ---- output path (used by IpLayer) --------------------------------------
  // The MAC to use for `next_hop` now, or nullopt when unknown (the caller
  // then queues the frame with enqueue_begin). Using a STALE entry starts
  // re-verification with a unicast request (RFC 1122 2.3.2.1).
  std::optional<MacAddr> lookup(Instant now, Ipv4Addr next_hop);

  // A pool buffer of sink.max_frame_len() bytes for a complete Ethernet frame
  // to `next_hop` whose destination MAC is filled in on resolution. Starts
  // resolution if none is running. Empty when the table is full of entries
  // that cannot be evicted. Must be followed by enqueue_commit().
  MutBytes enqueue_begin(Instant now, Ipv4Addr next_hop);
  void enqueue_commit(size_t len);

  // ---- input --------------------------------------------------------------
  // An ARP packet (Ethernet payload).
  void on_arp(Instant now, Bytes payload);

  // ---- administration ------------------------------------------------------
  // A permanent entry: never aged, never changed by received ARP; replaces
  // the MAC of an existing entry and sends the frames waiting for it. In
  // shared-IP mode every entry the kernel reports valid arrives this way.
  // Returns false when the table is full.
  bool insert_static(Ipv4Addr ip, MacAddr mac);
  void remove(Ipv4Addr ip);
  void set_local_ip(Ipv4Addr ip) { ip_ = ip; }
  void set_failure_observer(ArpFailureObserver* o) { failure_observer_ = o; }

  // Retransmits requests, ages entries.
  void poll(Instant now);
  Instant poll_at() const { return next_deadline_; }

  // ---- introspection --------------------------------------------------------
  std::optional<State> state_of(Ipv4Addr ip) const;
  std::optional<MacAddr> peek(Ipv4Addr ip) const;  // no side effects
  size_t queued(Ipv4Addr ip) const;
  size_t size() const { return used_; }
  size_t free_buffers() const { return free_bufs_.size(); }

 private:
  static constexpr int32_t kNone = -1;
  static constexpr size_t kMaxQueue = 16;

  struct Entry {
    Ipv4Addr ip;
    MacAddr mac;
    State state = State::Incomplete;
    bool live = false;
    uint8_t probes = 0;       // requests sent in the current Incomplete/Probe round
    uint8_t q_head = 0;       // ring of pool buffer indices
    uint8_t q_len = 0;
    uint8_t q[kMaxQueue] = {};
    Instant confirmed;        // last proof of reachability
    Instant last_used;        // last lookup by the output path
    Instant next_probe;       // Incomplete/Probe: when to retransmit or give up
  };

  int32_t find(Ipv4Addr ip) const;
  int32_t create(Instant now, Ipv4Addr ip);  // kNone if full and nothing evictable
  void erase(int32_t idx);
  void index_insert(Ipv4Addr ip, int32_t idx);
  void index_erase(Ipv4Addr ip);
  size_t slot_of(Ipv4Addr ip) const;

  Instant deadline_of(const Entry& e) const;
  void note_deadline(Instant t) { next_deadline_ = min(next_deadline_, t); }

  void send_arp(ArpOp op, MacAddr eth_dst, MacAddr target_mac, Ipv4Addr target_ip);
  void send_request(Entry& e, bool unicast);
  void flush_queue(Entry& e);
  void drop_queue(Entry& e);
  // Resolution failed: erases the entry, then reports its queued frames.
  void fail_entry(Instant now, int32_t idx);
  void update_from(Instant now, Entry& e, MacAddr mac, bool confirmed);

  MacAddr mac_;
  Ipv4Addr ip_;
  FrameSink& sink_;
  StackCounters& c_;
  ArpConfig cfg_;

  std::vector<Entry> entries_;
  std::vector<int32_t> free_entries_;
  size_t used_ = 0;
  // Open-addressed index ip -> entry (linear probing, backward-shift delete),
  // twice the table size so probe chains stay short.
  std::vector<int32_t> index_;
  size_t index_mask_ = 0;

  std::vector<uint8_t> pool_;        // pool_buffers * frame_len
  std::vector<uint16_t> buf_len_;
  std::vector<uint8_t> free_bufs_;
  size_t frame_len_ = 0;
  int32_t pending_buf_ = kNone;      // between enqueue_begin and enqueue_commit
  int32_t pending_entry_ = kNone;

  Instant next_deadline_ = kNever;
  ArpFailureObserver* failure_observer_ = nullptr;
};

}  // namespace xs
