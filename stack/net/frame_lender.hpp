// Receive-side counterpart of FrameSink: lets a socket keep the frame its
// payload arrived in instead of copying the payload into its receive queue
// (zero-copy receive, docs/zerocopy.md). The device lends the frame it is
// delivering; the socket gives it back when the application has read or
// released the bytes. Frames held this way are not on the fill ring, so the
// device bounds how many it lends and the stack copies when it refuses.
#pragma once
#include <cstdint>
#include <optional>

#include "stack/base/bytes.hpp"

namespace xs {

class FrameLender {
 public:
  virtual ~FrameLender() = default;
  // Keeps the frame holding `bytes` out of reuse until release() and returns
  // a handle for it. Only the frame being delivered (during receive_frame)
  // can be held: nullopt when `bytes` lie elsewhere (e.g. a reassembled
  // datagram) or the device lends no more frames now.
  virtual std::optional<uint64_t> hold(Bytes bytes) = 0;
  // Gives a held frame back for reuse. Each handle is released exactly once.
  virtual void release(uint64_t handle) = 0;
};

}  // namespace xs
