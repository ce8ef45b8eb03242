// The shim's process state: which descriptor numbers are xstack sockets (a
// lock-free table, read on every interposed call), the companion xstack epoll
// instance of each kernel epoll descriptor that watches xstack sockets, the
// runtime, and the log.
//
// Descriptor model (docs/shim.md): an xstack socket's number is a real kernel
// descriptor (the eventfd the native runtime creates for it), so numbers
// never collide with the program's other descriptors; handing a socket to the
// kernel replaces that descriptor in place with dup3.
#pragma once
#include <atomic>
#include <cstdint>

#include "socketapi/native_runtime.hpp"

namespace xs::shim {

constexpr int kMaxFd = 1 << 20;

// Orphan: an xstack socket inherited across fork, not used yet in this child.
// ProxyConn/ProxyListener/ProxyDgram: such a socket after its first use
// (fork_share.hpp): a kernel AF_UNIX socket the parent pumps to and from the
// xstack socket (a datagram proxy's messages carry the peer's address).
enum class FdKind : uint8_t {
  Kernel = 0, XsSocket = 1, Companion = 2, Orphan = 3, ProxyConn = 4, ProxyListener = 5, ProxyDgram = 6
};

extern std::atomic<uint8_t> g_kind[kMaxFd];
// kernel epoll fd -> companion xstack epoll fd + 1 (0: none)
extern std::atomic<int> g_companion[kMaxFd];
// 1: this kernel epoll fd has another epoll fd in its set (see g_nested in preload_poll.cpp)
extern std::atomic<uint8_t> g_has_nested[kMaxFd];

inline FdKind kind(int fd) {
  if (fd < 0 || fd >= kMaxFd) return FdKind::Kernel;
  return static_cast<FdKind>(g_kind[fd].load(std::memory_order_acquire));
}
inline bool is_xs(int fd) { return kind(fd) == FdKind::XsSocket; }
inline bool is_proxy(FdKind k) {
  return k == FdKind::ProxyConn || k == FdKind::ProxyListener || k == FdKind::ProxyDgram;
}
inline void set_kind(int fd, FdKind k) {
  if (fd >= 0 && fd < kMaxFd) g_kind[fd].store(static_cast<uint8_t>(k), std::memory_order_release);
}
inline int companion_of(int epfd) {
  if (epfd < 0 || epfd >= kMaxFd) return -1;
  return g_companion[epfd].load(std::memory_order_acquire) - 1;
}

// The running stack, or nullptr (then no descriptor is ours).
inline native::Runtime* rt() { return native::default_runtime(false); }
// Starts the stack from XSTACK_* on first use; nullptr when it cannot run
// here (no configuration, a fork child, start failure: logged once).
native::Runtime* rt_start();

// While a thread is inside the runtime, calls it makes (the engine opening a
// port-reservation socket, say) go straight to the kernel.
extern thread_local int t_inside;
struct Inside {
  Inside() { ++t_inside; }
  ~Inside() { --t_inside; }
  Inside(const Inside&) = delete;
  Inside& operator=(const Inside&) = delete;
};

enum class LogLevel : int { Error = 0, Warn = 1, Info = 2, Debug = 3 };
extern LogLevel g_log_level;
void log(LogLevel lvl, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Errno-preserving -1.
inline int fail(int e) {
  errno = e;
  return -1;
}

// Moves the fresh xstack socket `fd` to the kernel: a kernel socket of the
// same type with the same flags and options takes its number. 0 or -1/errno.
int handover(int fd, const char* why);
// Whether `addr`, given to connect or sendto on xstack socket `fd`, is a
// destination only the kernel reaches (a fresh socket then moves there):
// loopback to a port no xstack socket serves, a network off the interface,
// an IPv6 address that is not IPv4-mapped. An address the socket's family
// refuses is not: the runtime answers it with Linux's errno.
bool kernel_dst(int fd, const sockaddr* addr, socklen_t len);
// The same for bind: an address other than the wildcard and the stack's own.
bool kernel_bind(int fd, const sockaddr* addr, socklen_t len);
// Closes an xstack socket or companion behind `fd`, if any (before the
// number is reused by dup2/dup3). True if it was one.
bool release_xs(int fd);
// Closes the companion of a kernel epoll descriptor about to be closed.
void drop_companion(int epfd);

}  // namespace xs::shim
