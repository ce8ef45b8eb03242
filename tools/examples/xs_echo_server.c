/* xs_echo_server: a TCP echo server in plain C on the xstack native API
 * (socketapi/xstack.h). One thread, a level-triggered epoll loop over
 * non-blocking sockets, any number of clients. SIGTERM/SIGINT: closes every
 * socket and exits 0.
 *
 * The stack starts on the first xs_* call, configured from the environment:
 *   XSTACK_IF=<interface> XSTACK_ADDR=A.B.C.D/LEN [XSTACK_MODE=interrupt|spin|busy-poll]
 * In the lab (root):
 *   tools/xstack-lab up
 *   tools/xstack-lab exec a -- env XSTACK_IF=xsla XSTACK_ADDR=198.18.0.3/24 \
 *       build/tools/examples/xs_echo_server 7000
 *   tools/xstack-lab exec b -- python3 tests/veth/kernel_peer.py tcp-client 198.18.0.3 7000 1000000
 *
 * Usage: xs_echo_server PORT */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socketapi/xstack.h"

#define MAX_EVENTS 64
#define BUF_SIZE 65536

/* Per-connection state: bytes received but not yet echoed back. */
struct conn {
  int fd;
  size_t len, off; /* pending data is buf[off, len) */
  char buf[BUF_SIZE];
};

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

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
  xs_close(c->fd);
  g_conns[c->fd] = NULL;
  free(c);
}

/* Sends what is pending; returns -1 on a fatal error. */
static int flush_out(struct conn* c) {
  while (c->off < c->len) {
    ssize_t n = xs_send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    c->off += (size_t)n;
  }
  c->off = c->len = 0;
  return 0;
}

/* Wants EPOLLIN while the buffer is empty, EPOLLOUT while data is pending
 * (level-triggered: never both, so a slow reader throttles its sender). */
static int rearm(int ep, struct conn* c) {
  struct epoll_event ev = {.events = c->len > c->off ? EPOLLOUT : EPOLLIN, .data.fd = c->fd};
  return xs_epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_client(int ep, struct conn* c, uint32_t events) {
  if (c->len > c->off || (events & EPOLLOUT)) {
    if (flush_out(c) < 0) { drop(ep, c); return; }
    if (c->len > c->off) return; /* still blocked */
    if (rearm(ep, c) < 0) { drop(ep, c); return; }
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    ssize_t n = xs_recv(c->fd, c->buf, BUF_SIZE, 0);
    if (n == 0) { drop(ep, c); return; } /* peer closed: close our side too */
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      drop(ep, c);
      return;
    }
    c->off = 0;
    c->len = (size_t)n;
    if (flush_out(c) < 0) { drop(ep, c); return; }
    if (c->len > c->off && rearm(ep, c) < 0) drop(ep, c);
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]);
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "bad port '%s'\n", argv[1]);
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int ls = xs_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (ls < 0) { perror("xs_socket"); return 1; }
  int one = 1;
  xs_setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_ANY)};
  if (xs_bind(ls, (struct sockaddr*)&addr, sizeof addr) < 0) { perror("xs_bind"); return 1; }
  if (xs_listen(ls, 128) < 0) { perror("xs_listen"); return 1; }
  int ep = xs_epoll_create1(0);
  if (ep < 0) { perror("xs_epoll_create1"); return 1; }
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = ls};
  if (xs_epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev) < 0) { perror("xs_epoll_ctl"); return 1; }
  printf("listening on port %d\n", port);
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
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
              perror("xs_accept4");
            break;
          }
          struct conn* c = malloc(sizeof *c);
          if (!c || (c->fd = cfd, c->len = c->off = 0, track(c) < 0)) {
            free(c);
            xs_close(cfd);
            continue;
          }
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
          if (xs_epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0) {
            perror("xs_epoll_ctl");
            g_conns[cfd] = NULL;
            free(c);
            xs_close(cfd);
            continue;
          }
          accepted++;
        }
      } else if ((size_t)fd < g_nconns && g_conns[fd]) {
        on_client(ep, g_conns[fd], evs[i].events);
      }
    }
  }

  for (size_t i = 0; i < g_nconns; i++)
    if (g_conns[i]) drop(ep, g_conns[i]);
  free(g_conns);
  xs_close(ep);
  xs_close(ls);
  printf("stopped: %lu connections served\n", accepted);
  return 0;
}
