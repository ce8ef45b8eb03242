// The socket back ends of xstack-peer: an xstack engine on an AF_XDP device,
// or the kernel. Workloads are written once against these interfaces.
#pragma once
#include <cstddef>
#include <memory>
#include <optional>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/time.hpp"
#include "tools/peer/peer.hpp"

namespace xs::peer {

// Results: >= 0 bytes; kTimeout; kError (message printed once on stderr).
inline constexpr long kTimeout = -2;
inline constexpr long kError = -1;

class Conn {
 public:
  virtual ~Conn() = default;
  virtual long send_all(Bytes data) = 0;
  // At least one byte, 0 at end of stream.
  virtual long recv(MutBytes out, Duration timeout) = 0;
  virtual void shutdown_write() = 0;
  virtual void set_keepalive(uint32_t idle_s, uint32_t interval_s, uint32_t count) = 0;
};

class Listener {
 public:
  virtual ~Listener() = default;
  virtual std::unique_ptr<Conn> accept(Duration timeout) = 0;  // null on timeout/error
};

class Datagram {
 public:
  virtual ~Datagram() = default;
  virtual long send_to(Bytes data, Endpoint to) = 0;
  virtual long recv_from(MutBytes out, Endpoint* from, Duration timeout) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::unique_ptr<Listener> listen(uint16_t port) = 0;
  virtual std::unique_ptr<Conn> connect(Endpoint to, Duration timeout) = 0;
  virtual std::unique_ptr<Datagram> udp_bind(uint16_t port) = 0;
  virtual void print_stats() {}
};

// nullptr (and a message) when the device cannot be opened.
std::unique_ptr<Backend> make_xstack_backend(const Options& o);
std::unique_ptr<Backend> make_kernel_backend(const Options& o);

}  // namespace xs::peer
