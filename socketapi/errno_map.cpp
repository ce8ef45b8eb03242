#include "socketapi/errno_map.hpp"

#include <cerrno>

namespace xs {

int to_errno(SockError e) {
  switch (e) {
    case SockError::WouldBlock: return EAGAIN;
    case SockError::InProgress: return EINPROGRESS;
    case SockError::AlreadyInProgress: return EALREADY;
    case SockError::IsConnected: return EISCONN;
    case SockError::NotConnected: return ENOTCONN;
    case SockError::ConnectionRefused: return ECONNREFUSED;
    case SockError::ConnectionReset: return ECONNRESET;
    case SockError::ConnectionAborted: return ECONNABORTED;
    case SockError::TimedOut: return ETIMEDOUT;
    case SockError::BrokenPipe: return EPIPE;
    case SockError::AddressInUse: return EADDRINUSE;
    case SockError::AddressNotAvailable: return EADDRNOTAVAIL;
    case SockError::NetUnreachable: return ENETUNREACH;
    case SockError::HostUnreachable: return EHOSTUNREACH;
    case SockError::InvalidArgument: return EINVAL;
    case SockError::MessageTooLong: return EMSGSIZE;
    case SockError::NoBufferSpace: return ENOBUFS;
    case SockError::NoMemory: return ENOMEM;
    case SockError::AccessDenied: return EACCES;
    case SockError::NotSupported: return EOPNOTSUPP;
    case SockError::ProtocolOption: return ENOPROTOOPT;
    case SockError::DestAddrRequired: return EDESTADDRREQ;
    case SockError::NotFound: return ENOENT;
    case SockError::Busy: return EBUSY;
  }
  return EINVAL;
}

}  // namespace xs
