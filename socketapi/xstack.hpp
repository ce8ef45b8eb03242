// A thin C++ layer over the native C API (socketapi/xstack.h): an owning
// descriptor that closes itself, std::span I/O, and results that carry either
// a value or the errno the call failed with.
#pragma once
#include <array>
#include <cerrno>
#include <cstddef>
#include <span>
#include <utility>

#include "socketapi/xstack.h"

namespace xs {

// A value or an errno (a small stand-in for std::expected<T, int>).
template <class T>
class Result {
 public:
  static Result ok(T v) { return Result(std::move(v), 0); }
  static Result fail(int err) { return Result(T{}, err); }
  // From a C call's return value: negative means errno holds the reason.
  static Result from(T v) { return v < 0 ? fail(errno) : ok(v); }
  bool has_value() const { return err_ == 0; }
  explicit operator bool() const { return has_value(); }
  const T& value() const { return v_; }
  T& value() { return v_; }
  const T& operator*() const { return v_; }
  T& operator*() { return v_; }
  const T* operator->() const { return &v_; }
  T* operator->() { return &v_; }
  int error() const { return err_; }  // the errno, 0 on success

 private:
  Result(T v, int e) : v_(std::move(v)), err_(e) {}
  T v_;
  int err_;
};

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { reset(); }
  Socket(Socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Socket& operator=(Socket&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  static Result<Socket> open(int domain, int type, int protocol = 0) {
    int fd = xs_socket(domain, type, protocol);
    if (fd < 0) return Result<Socket>::fail(errno);
    return Result<Socket>::ok(Socket(fd));
  }

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) xs_close(fd_);
    fd_ = -1;
  }

  Result<int> bind(const sockaddr* a, socklen_t len) { return Result<int>::from(xs_bind(fd_, a, len)); }
  Result<int> listen(int backlog) { return Result<int>::from(xs_listen(fd_, backlog)); }
  Result<int> connect(const sockaddr* a, socklen_t len) { return Result<int>::from(xs_connect(fd_, a, len)); }
  Result<Socket> accept(int flags = 0, sockaddr* a = nullptr, socklen_t* len = nullptr) {
    int fd = xs_accept4(fd_, a, len, flags);
    if (fd < 0) return Result<Socket>::fail(errno);
    return Result<Socket>::ok(Socket(fd));
  }
  Result<ssize_t> send(std::span<const std::byte> data, int flags = 0) {
    return Result<ssize_t>::from(xs_send(fd_, data.data(), data.size(), flags));
  }
  Result<ssize_t> recv(std::span<std::byte> out, int flags = 0) {
    return Result<ssize_t>::from(xs_recv(fd_, out.data(), out.size(), flags));
  }
  Result<int> shutdown(int how) { return Result<int>::from(xs_shutdown(fd_, how)); }

  // ---- zero-copy (docs/zerocopy.md) ----------------------------------------
  // Receives by borrowing: fills `out` with views into the stack's receive
  // queue (see bytes()); returns how many, 0 at end of stream (TCP).
  Result<int> zc_recv(std::span<xs_zc_iov> out, int flags = 0) {
    return Result<int>::from(xs_zc_recv(fd_, out.data(), static_cast<int>(out.size()), flags));
  }
  // The oldest `count` lent bytes (TCP) or datagrams (UDP) go back to the stack.
  Result<int> zc_release(size_t count) { return Result<int>::from(xs_zc_release(fd_, count)); }
  // Writable send-buffer space: write the payload into spans[0] then
  // spans[1], then zc_commit() what was written.
  struct Reservation {
    std::array<std::span<std::byte>, 2> spans;
    size_t size = 0;  // bytes reserved, over both spans
  };
  Result<Reservation> zc_reserve(size_t len, int flags = 0) {
    xs_zc_iov v[2] = {};
    int n = 0;
    ssize_t r = xs_zc_send_reserve(fd_, len, v, &n, flags);
    if (r < 0) return Result<Reservation>::fail(errno);
    Reservation res;
    for (int i = 0; i < n; ++i) res.spans[static_cast<size_t>(i)] = writable(v[i]);
    res.size = static_cast<size_t>(r);
    return Result<Reservation>::ok(res);
  }
  Result<ssize_t> zc_commit(size_t len, int flags = 0) {
    return Result<ssize_t>::from(xs_zc_send_commit(fd_, len, flags));
  }
  // A received view's bytes (read-only: they are the stack's).
  static std::span<const std::byte> bytes(const xs_zc_iov& v) {
    return {static_cast<const std::byte*>(v.base), v.len};
  }
  static std::span<std::byte> writable(const xs_zc_iov& v) { return {static_cast<std::byte*>(v.base), v.len}; }
  template <class T>
  Result<int> setopt(int level, int name, const T& v) {
    return Result<int>::from(xs_setsockopt(fd_, level, name, &v, sizeof v));
  }
  template <class T>
  Result<T> getopt(int level, int name) {
    T v{};
    socklen_t len = sizeof v;
    if (xs_getsockopt(fd_, level, name, &v, &len) < 0) return Result<T>::fail(errno);
    return Result<T>::ok(v);
  }

 private:
  int fd_ = -1;
};

}  // namespace xs
