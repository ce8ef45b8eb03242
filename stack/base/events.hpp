// Socket readiness as epoll reports it. The values equal Linux's EPOLL* bits so
// that the API layer passes them through unchanged; the stack itself does not
// include <sys/epoll.h>.
#pragma once
#include <cstdint>

namespace xs {

namespace ev {
inline constexpr uint32_t kIn = 0x001;
inline constexpr uint32_t kPri = 0x002;
inline constexpr uint32_t kOut = 0x004;
inline constexpr uint32_t kErr = 0x008;
inline constexpr uint32_t kHup = 0x010;
inline constexpr uint32_t kRdNorm = 0x040;
inline constexpr uint32_t kWrNorm = 0x100;
inline constexpr uint32_t kRdHup = 0x2000;
}  // namespace ev

// Told when a socket's readiness may have changed (a wakeup hint; the receiver
// re-reads readiness). `cookie` is what the engine attached to the socket.
class SocketObserver {
 public:
  virtual ~SocketObserver() = default;
  virtual void on_socket_event(void* cookie) = 0;
};

}  // namespace xs
