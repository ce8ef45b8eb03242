#include "stack/base/addr.hpp"

#include <cstdio>

namespace xs {

std::string MacAddr::to_string() const {
  char s[18];
  std::snprintf(s, sizeof s, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
  return s;
}

std::string Ipv4Addr::to_string() const {
  char s[16];
  std::snprintf(s, sizeof s, "%u.%u.%u.%u", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
  return s;
}

bool Ipv4Addr::parse(const char* s, Ipv4Addr* out) {
  uint32_t acc = 0;
  for (int part = 0; part < 4; ++part) {
    if (*s < '0' || *s > '9') return false;
    uint32_t octet = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9') {
      octet = octet * 10 + uint32_t(*s++ - '0');
      if (++digits > 3 || octet > 255) return false;
    }
    acc = acc << 8 | octet;
    if (part < 3 && *s++ != '.') return false;
  }
  if (*s != '\0') return false;
  *out = {acc};
  return true;
}

}  // namespace xs
