// Where the stack puts outgoing Ethernet frames. The device (AF_XDP socket,
// simulator link, test capture) lends a buffer, the stack writes a frame into
// it, and commits its length. No copy, no allocation.
#pragma once
#include <cstddef>

#include "stack/base/bytes.hpp"

namespace xs {

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // A buffer of at least max_frame_len() bytes, or an empty span when the
  // device has no room now (the frame is then dropped and counted).
  virtual MutBytes tx_acquire() = 0;
  // Sends the first `len` bytes of the buffer from the last tx_acquire().
  virtual void tx_commit(size_t len) = 0;
  // Largest frame the device carries (MTU + 14).
  virtual size_t max_frame_len() const = 0;
};

}  // namespace xs
