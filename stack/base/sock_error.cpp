#include "stack/base/sock_error.hpp"

namespace xs {

const char* to_string(SockError e) {
  switch (e) {
    case SockError::WouldBlock: return "would block";
    case SockError::InProgress: return "in progress";
    case SockError::AlreadyInProgress: return "already in progress";
    case SockError::IsConnected: return "is connected";
    case SockError::NotConnected: return "not connected";
    case SockError::ConnectionRefused: return "connection refused";
    case SockError::ConnectionReset: return "connection reset";
    case SockError::ConnectionAborted: return "connection aborted";
    case SockError::TimedOut: return "timed out";
    case SockError::BrokenPipe: return "broken pipe";
    case SockError::AddressInUse: return "address in use";
    case SockError::AddressNotAvailable: return "address not available";
    case SockError::NetUnreachable: return "network unreachable";
    case SockError::HostUnreachable: return "host unreachable";
    case SockError::InvalidArgument: return "invalid argument";
    case SockError::MessageTooLong: return "message too long";
    case SockError::NoBufferSpace: return "no buffer space";
    case SockError::NoMemory: return "no memory";
    case SockError::AccessDenied: return "access denied";
    case SockError::NotSupported: return "not supported";
    case SockError::ProtocolOption: return "protocol option not available";
    case SockError::DestAddrRequired: return "destination address required";
    case SockError::NotFound: return "not found";
    case SockError::Busy: return "busy";
  }
  return "?";
}

}  // namespace xs
