/* xs_zc_echo: TCP and UDP echo on the xstack zero-copy calls (xs_zc_*,
 * docs/zerocopy.md), in plain C. Two modes:
 *
 *   xs_zc_echo server PORT
 *     TCP and UDP echo on PORT: one thread, a level-triggered epoll loop over
 *     non-blocking sockets, with XS_ZC_RX_FRAMES: payloads stay in the
 *     frames they arrived in. TCP: received bytes are borrowed in place
 *     (xs_zc_recv: one view per frame), copied once straight into reserved send-buffer space
 *     (xs_zc_send_reserve / xs_zc_send_commit), and released (xs_zc_release)
 *     as they are echoed -- no application buffer at all, one copy where the
 *     recv/send echo makes two. UDP: each borrowed datagram is sent back to
 *     its source with xs_sendto straight from the loan. SIGTERM/SIGINT:
 *     closes every socket and exits 0.
 *
 *   xs_zc_echo client IP:PORT [COUNT=1000] [SIZE=1000]
 *     Sends COUNT messages of SIZE bytes over TCP, each written in place into
 *     a reservation, and reads each echo back as loans, checking every byte.
 *     Prints "ok COUNT messages of SIZE bytes" and exits 0 when all matched.
 *
 * The stack starts on the first xs_* call, configured from the environment:
 *   XSTACK_IF=<interface> XSTACK_ADDR=A.B.C.D/LEN [XSTACK_MODE=interrupt|spin|busy-poll]
 * In the lab (root):
 *   tools/xstack-lab up
 *   tools/xstack-lab exec a -- env XSTACK_IF=xsla XSTACK_ADDR=198.18.0.3/24 \
 *       build/tools/examples/xs_zc_echo server 7002
 *   tools/xstack-lab exec b -- python3 tests/veth/kernel_peer.py tcp-client 198.18.0.3 7002 1000000
 *   tools/xstack-lab exec b -- python3 tests/veth/kernel_peer.py udp-echo-check 198.18.0.3 7002 100 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socketapi/xstack.h"

#define MAX_EVENTS 64
#define UDP_BATCH 16

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

/* Copies `len` bytes starting `off` bytes into the views `src` into the views
 * `dst` (each list one or two spans, as the calls hand them out). */
static void copy_views(const struct xs_zc_iov* src, int nsrc, size_t off, const struct xs_zc_iov* dst, int ndst,
                       size_t len) {
  int si = 0, di = 0;
  size_t doff = 0;
  while (si < nsrc && off >= src[si].len) off -= src[si++].len;
  while (len > 0 && si < nsrc && di < ndst) {
    size_t k = src[si].len - off;
    if (k > dst[di].len - doff) k = dst[di].len - doff;
    if (k > len) k = len;
    memcpy((char*)dst[di].base + doff, (const char*)src[si].base + off, k);
    len -= k;
    off += k;
    doff += k;
    if (off == src[si].len) { si++; off = 0; }
    if (doff == dst[di].len) { di++; doff = 0; }
  }
}

/* ---------------------------------------------------------------- server */

/* A TCP connection's loan: bytes borrowed from its receive queue, of which
 * `done` have been echoed (and released) so far. */
struct conn {
  int fd;
  struct xs_zc_iov loan[16];
  int nloan;
  size_t lent, done;
};

static struct conn** g_conns; /* indexed by fd */
static size_t g_nconns;

static int track(struct conn* c) {
  if ((size_t)c->fd >= g_nconns) {
    size_t n = g_nconns ? g_nconns : 64;
    while (n <= (size_t)c->fd) n *= 2;
    struct conn** p = realloc(g_conns, n * sizeof *p);
    if (!p) return -1;
    memset(p + g_nconns, 0, (n - g_nconns) * sizeof *p);
    g_conns = p;
    g_nconns = n;
  }
  g_conns[c->fd] = c;
  return 0;
}

static void drop(int ep, struct conn* c) {
  xs_epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  xs_close(c->fd); /* releases the loan and drops a reservation */
  g_conns[c->fd] = NULL;
  free(c);
}

static int want(int ep, struct conn* c, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.fd = c->fd};
  return xs_epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Echoes what the loan still holds: reserve, copy, commit, release. Returns
 * 1 when the send buffer is full (wait for EPOLLOUT), 0 when the loan is
 * done, -1 on a fatal error. */
static int echo_loan(struct conn* c) {
  while (c->done < c->lent) {
    struct xs_zc_iov out[2];
    int nout = 0;
    ssize_t r = xs_zc_send_reserve(c->fd, c->lent - c->done, out, &nout, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return 1;
      return -1;
    }
    copy_views(c->loan, c->nloan, c->done, out, nout, (size_t)r);
    if (xs_zc_send_commit(c->fd, (size_t)r, MSG_NOSIGNAL) < 0) return -1;
    /* The oldest r lent bytes are exactly the ones just echoed: give them
     * back now, so the receive window reopens while the rest is echoed. */
    if (xs_zc_release(c->fd, (size_t)r) < 0) return -1;
    c->done += (size_t)r;
  }
  c->lent = c->done = 0;
  c->nloan = 0;
  return 0;
}

static void on_client(int ep, struct conn* c) {
  for (int rounds = 0; rounds < 16; rounds++) { /* bounded: let other sockets in */
    if (c->lent == 0) {
      int n = xs_zc_recv(c->fd, c->loan, 16, MSG_DONTWAIT);
      if (n == 0) { drop(ep, c); return; } /* peer closed: close our side too */
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) { if (want(ep, c, EPOLLIN) < 0) drop(ep, c); return; }
        drop(ep, c);
        return;
      }
      c->nloan = n;
      c->done = 0;
      for (int i = 0; i < n; i++) c->lent += c->loan[i].len;
    }
    int r = echo_loan(c);
    if (r < 0) { drop(ep, c); return; }
    if (r > 0) { if (want(ep, c, EPOLLOUT) < 0) drop(ep, c); return; }
  }
  if (want(ep, c, EPOLLIN) < 0) drop(ep, c);
}

/* Every queued datagram goes back to its sender straight from the loan. */
static void on_udp(int us) {
  for (int rounds = 0; rounds < 16; rounds++) {
    struct xs_zc_iov v[UDP_BATCH];
    int n = xs_zc_recv(us, v, UDP_BATCH, MSG_DONTWAIT);
    if (n <= 0) return;
    for (int i = 0; i < n; i++)
      xs_sendto(us, v[i].base, v[i].len, 0, (struct sockaddr*)&v[i].from, sizeof v[i].from);
    xs_zc_release(us, (size_t)n);
  }
}

static int run_server(int port) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_ANY)};
  int ls = xs_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (ls < 0) { perror("xs_socket"); return 1; }
  int one = 1;
  xs_setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  /* Received payloads stay in their frames; accepted sockets inherit it. */
  if (xs_setsockopt(ls, XS_SOL_XSTACK, XS_ZC_RX_FRAMES, &one, sizeof one) < 0) { perror("XS_ZC_RX_FRAMES"); return 1; }
  if (xs_bind(ls, (struct sockaddr*)&addr, sizeof addr) < 0) { perror("xs_bind tcp"); return 1; }
  if (xs_listen(ls, 128) < 0) { perror("xs_listen"); return 1; }
  int us = xs_socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (us < 0) { perror("xs_socket udp"); return 1; }
  if (xs_setsockopt(us, XS_SOL_XSTACK, XS_ZC_RX_FRAMES, &one, sizeof one) < 0) { perror("XS_ZC_RX_FRAMES udp"); return 1; }
  if (xs_bind(us, (struct sockaddr*)&addr, sizeof addr) < 0) { perror("xs_bind udp"); return 1; }
  int ep = xs_epoll_create1(0);
  if (ep < 0) { perror("xs_epoll_create1"); return 1; }
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = ls};
  struct epoll_event uev = {.events = EPOLLIN, .data.fd = us};
  if (xs_epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev) < 0 || xs_epoll_ctl(ep, EPOLL_CTL_ADD, us, &uev) < 0) {
    perror("xs_epoll_ctl");
    return 1;
  }
  printf("listening on port %d (tcp, udp)\n", port);
  fflush(stdout);

  unsigned long accepted = 0;
  struct epoll_event evs[MAX_EVENTS];
  while (!g_stop) {
    int n = xs_epoll_wait(ep, evs, MAX_EVENTS, 500);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("xs_epoll_wait");
      break;
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        for (;;) { /* drain the accept queue */
          int cfd = xs_accept4(ls, NULL, NULL, SOCK_NONBLOCK);
          if (cfd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) perror("xs_accept4");
            break;
          }
          struct conn* c = calloc(1, sizeof *c);
          if (!c || (c->fd = cfd, track(c) < 0)) {
            free(c);
            xs_close(cfd);
            continue;
          }
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
          if (xs_epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0) {
            g_conns[cfd] = NULL;
            free(c);
            xs_close(cfd);
            continue;
          }
          accepted++;
        }
      } else if (fd == us) {
        on_udp(us);
      } else if ((size_t)fd < g_nconns && g_conns[fd]) {
        on_client(ep, g_conns[fd]);
      }
    }
  }

  for (size_t i = 0; i < g_nconns; i++)
    if (g_conns[i]) drop(ep, g_conns[i]);
  free(g_conns);
  xs_close(ep);
  xs_close(us);
  xs_close(ls);
  printf("stopped: %lu connections served\n", accepted);
  return 0;
}

/* ---------------------------------------------------------------- client */

static unsigned char pat(size_t msg, size_t i) { return (unsigned char)((msg * 131 + i * 7 + 3) % 251); }

static int run_client(const char* target, long count, long size) {
  char host[64];
  const char* colon = strrchr(target, ':');
  if (!colon || (size_t)(colon - target) >= sizeof host) {
    fprintf(stderr, "bad target '%s' (IP:PORT)\n", target);
    return 2;
  }
  memcpy(host, target, (size_t)(colon - target));
  host[colon - target] = '\0';
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &to.sin_addr) != 1) {
    fprintf(stderr, "bad address '%s'\n", host);
    return 2;
  }
  int fd = xs_socket(AF_INET, SOCK_STREAM, 0); /* blocking: the calls wait */
  if (fd < 0) { perror("xs_socket"); return 1; }
  if (xs_connect(fd, (struct sockaddr*)&to, sizeof to) < 0) { perror("xs_connect"); return 1; }
  int one = 1;
  xs_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  for (long m = 0; m < count; m++) {
    /* Send: write the message in place, possibly over several reservations. */
    for (size_t off = 0; off < (size_t)size;) {
      struct xs_zc_iov out[2];
      int nout = 0;
      ssize_t r = xs_zc_send_reserve(fd, (size_t)size - off, out, &nout, 0);
      if (r < 0) { perror("xs_zc_send_reserve"); return 1; }
      size_t k = off;
      for (int i = 0; i < nout; i++)
        for (size_t j = 0; j < out[i].len; j++) ((unsigned char*)out[i].base)[j] = pat((size_t)m, k++);
      if (xs_zc_send_commit(fd, (size_t)r, 0) < 0) { perror("xs_zc_send_commit"); return 1; }
      off += (size_t)r;
    }
    /* Receive: check the echo where it lies, then give it back. */
    for (size_t off = 0; off < (size_t)size;) {
      struct xs_zc_iov v[2];
      int n = xs_zc_recv(fd, v, 2, 0);
      if (n < 0) { perror("xs_zc_recv"); return 1; }
      if (n == 0) { fprintf(stderr, "xs_zc_echo: connection closed at message %ld\n", m); return 1; }
      size_t lent = 0;
      for (int i = 0; i < n; i++) {
        const unsigned char* p = v[i].base;
        for (size_t j = 0; j < v[i].len; j++) {
          if (off + lent + j >= (size_t)size) {
            fprintf(stderr, "xs_zc_echo: more bytes than sent at message %ld\n", m);
            return 1;
          }
          if (p[j] != pat((size_t)m, off + lent + j)) {
            fprintf(stderr, "xs_zc_echo: mismatch at message %ld byte %zu\n", m, off + lent + j);
            return 1;
          }
        }
        lent += v[i].len;
      }
      if (xs_zc_release(fd, lent) < 0) { perror("xs_zc_release"); return 1; }
      off += lent;
    }
  }
  xs_close(fd);
  printf("ok %ld messages of %ld bytes\n", count, size);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "server") == 0) {
    int port = atoi(argv[2]);
    if (port <= 0 || port > 65535) {
      fprintf(stderr, "bad port '%s'\n", argv[2]);
      return 2;
    }
    return run_server(port);
  }
  if (argc >= 3 && argc <= 5 && strcmp(argv[1], "client") == 0) {
    long count = argc > 3 ? atol(argv[3]) : 1000;
    long size = argc > 4 ? atol(argv[4]) : 1000;
    if (count <= 0 || size <= 0) {
      fprintf(stderr, "COUNT and SIZE must be positive\n");
      return 2;
    }
    return run_client(argv[2], count, size);
  }
  fprintf(stderr, "usage: %s server PORT\n       %s client IP:PORT [COUNT=1000] [SIZE=1000]\n", argv[0], argv[0]);
  return 2;
}
