// The proxies of connections a fork child uses (fork_share.hpp): one thread
// in the stack's process moves bytes both ways between every such xstack
// connection and its AF_UNIX stream to the child.
//
// One thread for all of them rather than one per connection: with a thread
// each, a prefork server's requests (nginx with workers) woke a thread per
// connection, and those threads fought over the engine lock; one loop takes
// every ready connection in a single wait and keeps the lock uncontended.
#pragma once
#include <cstdint>

namespace xs::shim::pumploop {

// Called on the loop thread when a connection's proxy ends, before its
// descriptors are closed.
using DoneFn = void (*)(uint32_t id);

// Hands the pair to the loop (started on first use); the loop owns both
// descriptors from now on. False (descriptors closed, done called) when the
// loop cannot take them.
bool add(int xsfd, int ufd, uint32_t id, DoneFn done);

// The child asked for shutdown(SHUT_WR) on connection `id` (and shuts its
// end of the stream next): the loop sends the FIN once it has moved every
// byte the child wrote before its end of stream. False: not in the loop.
bool shutdown_after_child(uint32_t id);

// In a fork child: the loop thread did not come along; start afresh if the
// child ever needs one.
void forget_after_fork();

}  // namespace xs::shim::pumploop
