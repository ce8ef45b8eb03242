#include "stack/wire/error.hpp"

namespace xs {

const char* to_string(WireError e) {
  switch (e) {
    case WireError::Truncated: return "truncated";
    case WireError::BadLength: return "bad length";
    case WireError::BadVersion: return "bad version";
    case WireError::BadChecksum: return "bad checksum";
    case WireError::BadOption: return "bad option";
    case WireError::Malformed: return "malformed";
    case WireError::Unsupported: return "unsupported";
  }
  // Only reachable if a byte outside the enum was cast to WireError.
  return "unknown";
}

}  // namespace xs
