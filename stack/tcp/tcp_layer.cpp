// TEMPORARY stub so the stack links while the TCP core is written (replaced in the TCP commit).
#include "stack/tcp/tcp_layer.hpp"

namespace xs {

class TcpLayerImpl {};

TcpLayer::TcpLayer(const TcpConfig&, IpOutput&, Random&, StackCounters&)
    : impl_(std::make_unique<TcpLayerImpl>()) {}
TcpLayer::~TcpLayer() = default;
void TcpLayer::on_segment(Instant, const Ipv4Packet&, const TcpRepr&) {}
void TcpLayer::on_icmp_error(Instant, uint8_t, uint8_t, uint16_t, const Ipv4Repr&, Bytes) {}
void TcpLayer::poll(Instant) {}
Instant TcpLayer::poll_at() const { return kNever; }

}  // namespace xs
