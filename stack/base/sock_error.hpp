// Errors a socket operation can return inside the stack. The API layer maps
// each to the errno Linux returns for the same situation (socketapi/errno_map).
#pragma once
#include <cstdint>

namespace xs {

enum class SockError : uint8_t {
  WouldBlock,          // EAGAIN
  InProgress,          // EINPROGRESS (non-blocking connect started)
  AlreadyInProgress,   // EALREADY
  IsConnected,         // EISCONN
  NotConnected,        // ENOTCONN
  ConnectionRefused,   // ECONNREFUSED
  ConnectionReset,     // ECONNRESET
  ConnectionAborted,   // ECONNABORTED
  TimedOut,            // ETIMEDOUT
  BrokenPipe,          // EPIPE
  AddressInUse,        // EADDRINUSE
  AddressNotAvailable, // EADDRNOTAVAIL
  NetUnreachable,      // ENETUNREACH
  HostUnreachable,     // EHOSTUNREACH
  InvalidArgument,     // EINVAL
  MessageTooLong,      // EMSGSIZE
  NoBufferSpace,       // ENOBUFS
  NoMemory,            // ENOMEM
  AccessDenied,        // EACCES (broadcast without SO_BROADCAST)
  NotSupported,        // EOPNOTSUPP
  ProtocolOption,      // ENOPROTOOPT
  DestAddrRequired,    // EDESTADDRREQ
  NotFound,            // ENOENT (unknown congestion control name)
  Busy,                // EBUSY (zero-copy loan or reservation in the way)
};

const char* to_string(SockError e);

}  // namespace xs
