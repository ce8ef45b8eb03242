// Link and network addresses as plain values.
#pragma once
#include <array>
#include <compare>
#include <cstdint>
#include <string>

namespace xs {

struct MacAddr {
  std::array<uint8_t, 6> b{};
  constexpr auto operator<=>(const MacAddr&) const = default;
  static constexpr MacAddr broadcast() { return {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
  constexpr bool is_broadcast() const { return *this == broadcast(); }
  constexpr bool is_multicast() const { return (b[0] & 1) != 0; }
  constexpr bool is_zero() const { return *this == MacAddr{}; }
  std::string to_string() const;
};

// IPv4 address held in host byte order (so that arithmetic on prefixes is natural).
struct Ipv4Addr {
  uint32_t v = 0;
  constexpr auto operator<=>(const Ipv4Addr&) const = default;
  static constexpr Ipv4Addr from_octets(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return {uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d};
  }
  static constexpr Ipv4Addr any() { return {0}; }
  static constexpr Ipv4Addr broadcast() { return {0xffffffffu}; }
  constexpr bool is_unspecified() const { return v == 0; }
  constexpr bool is_broadcast() const { return v == 0xffffffffu; }
  constexpr bool is_multicast() const { return (v >> 28) == 0xe; }
  constexpr bool is_loopback() const { return (v >> 24) == 127; }
  std::string to_string() const;
  // Parses dotted quad; returns false on malformed input.
  static bool parse(const char* s, Ipv4Addr* out);
};

struct Ipv4Cidr {
  Ipv4Addr addr;
  uint8_t prefix_len = 32;
  constexpr uint32_t mask() const { return prefix_len == 0 ? 0 : ~uint32_t(0) << (32 - prefix_len); }
  constexpr bool contains(Ipv4Addr a) const { return (a.v & mask()) == (addr.v & mask()); }
  constexpr Ipv4Addr subnet_broadcast() const { return {addr.v | ~mask()}; }
};

// A transport endpoint.
struct Endpoint {
  Ipv4Addr addr;
  uint16_t port = 0;
  constexpr auto operator<=>(const Endpoint&) const = default;
};

}  // namespace xs
