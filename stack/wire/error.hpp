// Why a frame was rejected. Every rejection is counted by the layer that parsed it.
#pragma once
#include <cstdint>

namespace xs {

enum class WireError : uint8_t {
  Truncated,     // shorter than the header or than a length field says
  BadLength,     // a length field is inconsistent (IHL < 5, data offset < 5, ...)
  BadVersion,    // IPv4 version != 4, ARP hardware/protocol not Ethernet/IPv4
  BadChecksum,
  BadOption,     // malformed option list
  Malformed,     // illegal field combination (e.g. TCP SYN+RST, source port 0)
  Unsupported,   // well-formed but not something we handle
};

const char* to_string(WireError e);

}  // namespace xs
