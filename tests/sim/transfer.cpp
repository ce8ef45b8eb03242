#include "tests/sim/transfer.hpp"

namespace xs::test {

TransferResult run_transfer(const TransferSpec& spec) {
  TransferResult res;
  SimNet net(spec.ab, spec.ba, spec.seed, spec.tcp);
  Instant t0 = net.sim.now();
  TcpSocket* l = net.b->stack.tcp().open();
  (void)l->bind({Ipv4Addr::any(), 5001});
  (void)l->listen(16);
  (void)l->set_congestion(t0, spec.cc);
  TcpSocket* c = net.a->stack.tcp().open();
  (void)c->set_congestion(t0, spec.cc);
  auto cr = c->connect(t0, {kSimB, 5001});
  if (cr.has_value() || cr.error() != SockError::InProgress) {
    res.error = "connect failed";
    return res;
  }
  StreamApp client(c, 1, spec.a_to_b, 2);
  client.hold_open = true;
  std::unique_ptr<StreamApp> server;
  AppRunner runner(net.sim);
  runner.add(&client);
  net.sim.add_pollable({[&](Instant now) {
                          if (server) return;
                          auto a = l->accept(now);
                          if (a) {
                            server = std::make_unique<StreamApp>(*a, 2, spec.b_to_a, 1);
                            server->hold_open = true;
                            runner.add(server.get());
                          }
                        },
                        [&] { return (!server && !l->accept_queue_empty()) ? net.sim.now() : kNever; }});
  if (spec.measure_from.us > 0) {
    net.sim.at(t0 + spec.measure_from, [&] {
      res.b_received_at_measure = server ? server->received() : 0;
      res.ab_bytes_at_measure = net.link.stats_ab().bytes_on_wire;
    });
  }
  auto both_done = [&] {
    return server && client.peer_finished() && server->peer_finished() && client.sent() == spec.a_to_b &&
           server->sent() == spec.b_to_a;
  };
  bool ok = net.sim.run_until(t0 + spec.limit, [&] { return both_done() || client.error() || (server && server->error()); });
  res.finished = net.sim.now();
  res.completed = ok && both_done();
  if (client.error()) res.error = std::string("client: ") + to_string(*client.error());
  if (server && server->error()) res.error = std::string("server: ") + to_string(*server->error());
  res.a_info = c->info(net.sim.now());
  res.a_debug = c->debug_string();
  if (server) res.b_debug = server->socket()->debug_string();
  if (server) res.b_info = server->socket()->info(net.sim.now());
  res.corrupt = client.corrupt() || (server && server->corrupt());
  res.a_received = client.received();
  res.b_received = server ? server->received() : 0;
  res.a_sent_digest = client.sent_digest();
  res.a_recv_digest = client.recv_digest();
  if (server) {
    res.b_sent_digest = server->sent_digest();
    res.b_recv_digest = server->recv_digest();
  }
  client.close_now(net.sim.now());
  if (server) server->close_now(net.sim.now());
  l->close(net.sim.now());
  if (spec.wait_time_wait) net.sim.run_until(net.sim.now() + spec.tcp.time_wait + seconds(5));
  res.ab = net.link.stats_ab();
  res.ba = net.link.stats_ba();
  res.a_counters = net.a->stack.counters();
  res.b_counters = net.b->stack.counters();
  res.a_sockets_left = net.a->stack.tcp().socket_count();
  res.b_sockets_left = net.b->stack.tcp().socket_count();
  return res;
}

}  // namespace xs::test
