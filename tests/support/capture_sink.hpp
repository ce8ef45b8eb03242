// A FrameSink for tests: records every frame sent, can refuse buffers on
// demand, and parses what it captured.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/net/frame_sink.hpp"
#include "stack/wire/arp.hpp"
#include "stack/wire/ethernet.hpp"
#include "stack/wire/icmp.hpp"
#include "stack/wire/ipv4.hpp"
#include "stack/wire/udp.hpp"

namespace xs::test {

class CaptureSink : public FrameSink {
 public:
  explicit CaptureSink(size_t max_frame_len = 1514) : buf_(max_frame_len), max_(max_frame_len) {}

  MutBytes tx_acquire() override;
  void tx_commit(size_t len) override;
  size_t max_frame_len() const override { return max_; }

  std::vector<std::vector<uint8_t>> frames;
  // The next `refuse` tx_acquire() calls return an empty span (no TX room).
  size_t refuse = 0;

  size_t size() const { return frames.size(); }
  void clear() { frames.clear(); }
  // Removes and returns every captured frame.
  std::vector<std::vector<uint8_t>> take();
  const std::vector<uint8_t>& last() const { return frames.back(); }

  // Parse helpers for frame i (default: the last); nullopt when it is not that kind.
  std::optional<EthernetFrame> eth(size_t i = npos) const;
  std::optional<ArpRepr> arp(size_t i = npos) const;
  std::optional<Ipv4Packet> ipv4(size_t i = npos) const;
  std::optional<IcmpRepr> icmp(size_t i = npos) const;
  std::optional<UdpRepr> udp(size_t i = npos) const;

  static constexpr size_t npos = SIZE_MAX;

 private:
  const std::vector<uint8_t>& at(size_t i) const { return i == npos ? frames.back() : frames.at(i); }
  std::vector<uint8_t> buf_;
  size_t max_;
  bool acquired_ = false;
};

// ---- frame builders (what a peer would send) ------------------------------

std::vector<uint8_t> arp_frame(MacAddr eth_dst, const ArpRepr& a);
// Ethernet + IPv4 (20-byte header, valid checksum) + `l4` as given.
// ip.payload_len is set from l4.size().
std::vector<uint8_t> ipv4_frame(MacAddr dst, MacAddr src, Ipv4Repr ip, Bytes l4);
// A UDP datagram (header + payload, checksum computed).
std::vector<uint8_t> udp_datagram(Ipv4Addr src, uint16_t sport, Ipv4Addr dst, uint16_t dport, Bytes payload);
// An ICMP message with a correct checksum.
std::vector<uint8_t> icmp_message(uint8_t type, uint8_t code, uint32_t rest, Bytes payload);

}  // namespace xs::test
