// A small blocking TCP API over the engine, for examples and tests until the
// native socket API (xs_socket & co.) sits on the engine. Every call takes the
// engine lock, so it is safe from any thread.
#pragma once
#include <optional>

#include "socketapi/engine.hpp"
#include "stack/tcp/tcp_socket.hpp"
#include "stack/udp/udp_socket.hpp"

namespace xs::internal {

Expected<TcpSocket*, SockError> tcp_listen(Engine& e, uint16_t port, int backlog);
Expected<TcpSocket*, SockError> tcp_accept(Engine& e, TcpSocket* listener, Duration timeout);
Expected<TcpSocket*, SockError> tcp_connect(Engine& e, Endpoint remote, Duration timeout);
// Sends all of `data` (blocking up to timeout). Returns bytes sent.
Expected<size_t, SockError> tcp_send_all(Engine& e, TcpSocket* s, Bytes data, Duration timeout);
// Receives at least one byte (0 at end of stream), blocking up to timeout.
Expected<size_t, SockError> tcp_recv(Engine& e, TcpSocket* s, MutBytes out, Duration timeout);
void tcp_shutdown_write(Engine& e, TcpSocket* s);
void tcp_close(Engine& e, TcpSocket* s);
// SO_KEEPALIVE with TCP_KEEPIDLE/KEEPINTVL/KEEPCNT; TCP_NODELAY.
void tcp_set_keepalive(Engine& e, TcpSocket* s, Duration idle, Duration interval, uint32_t count);
void tcp_set_nodelay(Engine& e, TcpSocket* s, bool on);

Expected<UdpSocket*, SockError> udp_bind(Engine& e, uint16_t port);
// Sends one datagram to `to` (or the connected peer when nullopt).
Expected<size_t, SockError> udp_send_to(Engine& e, UdpSocket* s, Bytes data, std::optional<Endpoint> to);
// Receives one datagram, blocking up to timeout.
Expected<UdpRecv, SockError> udp_recv_from(Engine& e, UdpSocket* s, MutBytes out, Duration timeout);
void udp_close(Engine& e, UdpSocket* s);

}  // namespace xs::internal
