// xstack-peer: an xstack engine on a real interface (AF_XDP), driven from the
// command line. The veth tests and the echo benchmark run it in one lab
// namespace against kernel sockets in the other. The same loops also run on
// kernel sockets (--kernel), so a benchmark compares like with like.
//
//   xstack-peer serve           [common] [--tcp-port P] [--udp-port U] [--keepalive I,V,C]
//   xstack-peer tcp-echo-client [common] --connect IP:PORT --bytes N
//   xstack-peer udp-echo-client [common] --connect IP:PORT --count N
//   xstack-peer idle            [common] --connect IP:PORT --keepalive I,V,C
//   xstack-peer pingpong        [common] --connect IP:PORT [--size B] [--count N]
// common: --if NAME --addr A.B.C.D/LEN [--gw IP] [--mode interrupt|spin|busy-poll]
//         [--queues N] [--shared-ip] [--seconds S] [--kernel] [--kernel-spin]
#include "tools/peer/peer.hpp"

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  xs::peer::Options o;
  std::string err;
  if (!xs::peer::parse_options(argc, argv, &o, &err)) {
    std::fprintf(stderr, "xstack-peer: %s\n(see the comment at the top of tools/peer/xstack_peer.cpp)\n", err.c_str());
    return 2;
  }
  return xs::peer::run(o);
}
