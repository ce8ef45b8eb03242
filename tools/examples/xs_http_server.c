/* xs_http_server: a small HTTP/1.1 server in plain C on the xstack native API
 * (socketapi/xstack.h): one thread, a level-triggered epoll loop over
 * non-blocking sockets.
 *   GET /      a short text page
 *   GET /<n>   n bytes (n <= 1 GiB) of the pattern "0123456789abcdef..."
 *   HEAD       the same, header only
 *   else       404 (405 for methods other than GET/HEAD)
 * Every response carries Content-Length; connections are kept alive (HTTP/1.1
 * default, "Connection: close" honoured; HTTP/1.0 closes unless keep-alive).
 * SIGTERM/SIGINT: closes every socket and exits 0.
 *
 * The stack starts on the first xs_* call, configured from the environment:
 *   XSTACK_IF=<interface> XSTACK_ADDR=A.B.C.D/LEN [XSTACK_MODE=interrupt|spin|busy-poll]
 * In the lab (root):
 *   tools/xstack-lab up
 *   tools/xstack-lab exec a -- env XSTACK_IF=xsla XSTACK_ADDR=198.18.0.3/24 \
 *       build/tools/examples/xs_http_server 8080
 *   tools/xstack-lab exec b -- curl -s http://198.18.0.3:8080/100000 | wc -c
 *
 * Usage: xs_http_server PORT */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "socketapi/xstack.h"

#define MAX_EVENTS 64
#define REQ_MAX 8192
#define HDR_MAX 512
#define MAX_BODY (1ull << 30)

static const char PATTERN[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n";
#define PATTERN_LEN (sizeof PATTERN - 1) /* 63 */

struct conn {
  int fd;
  char req[REQ_MAX]; /* received request bytes */
  size_t req_len;
  char hdr[HDR_MAX]; /* response header being sent */
  size_t hdr_len, hdr_off;
  const char* body;            /* fixed body (index page), or NULL: pattern */
  unsigned long long body_len; /* total body bytes */
  unsigned long long body_off; /* body bytes sent */
  int close_after;             /* close once the response is out */
  int sending;                 /* a response is in progress */
  int head_only;               /* HEAD: header only (Content-Length as for GET) */
};

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

static struct conn** g_conns;
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

static const char INDEX[] =
    "<html><body><h1>xstack</h1><p>Served by xs_http_server over AF_XDP.</p>"
    "<p>GET /&lt;n&gt; returns n bytes.</p></body></html>\n";

/* Does the header block (NUL-terminated, lower-cased names not assumed)
 * contain "Connection: <token>"? */
static int has_connection_token(const char* headers, const char* token) {
  const char* p = headers;
  while ((p = strchr(p, '\n')) != NULL) {
    p++;
    if (strncasecmp(p, "connection:", 11) == 0) {
      const char* v = p + 11;
      const char* end = strchr(v, '\n');
      size_t tl = strlen(token);
      for (; v && *v && (!end || v < end); v++)
        if (strncasecmp(v, token, tl) == 0) return 1;
    }
  }
  return 0;
}

/* Prepares the response to the request in c->req[0, hend). */
static void prepare(struct conn* c, size_t hend) {
  char line[REQ_MAX];
  memcpy(line, c->req, hend);
  line[hend] = '\0';
  char method[16] = "", path[1024] = "", version[16] = "";
  int status = 200;
  const char* reason = "OK";
  const char* ctype = "application/octet-stream";
  c->body = NULL;
  c->body_len = 0;
  c->head_only = 0;
  if (sscanf(line, "%15s %1023s %15s", method, path, version) != 3 ||
      strncmp(version, "HTTP/1.", 7) != 0) {
    status = 400, reason = "Bad Request";
    c->close_after = 1;
  } else {
    int http10 = strcmp(version, "HTTP/1.0") == 0;
    c->close_after = http10 ? !has_connection_token(line, "keep-alive")
                            : has_connection_token(line, "close");
    int head = strcmp(method, "HEAD") == 0;
    if (strcmp(method, "GET") != 0 && !head) {
      status = 405, reason = "Method Not Allowed";
    } else if (strcmp(path, "/") == 0) {
      c->body = INDEX;
      c->body_len = sizeof INDEX - 1;
      ctype = "text/html";
    } else {
      const char* d = path + 1;
      char* end = NULL;
      errno = 0;
      unsigned long long n = isdigit((unsigned char)*d) ? strtoull(d, &end, 10) : 0;
      if (!isdigit((unsigned char)*d) || *end != '\0' || errno || n > MAX_BODY) {
        status = 404, reason = "Not Found";
      } else {
        c->body_len = n;
        ctype = "text/plain";
      }
    }
    if (status != 200) {
      static const char NF[] = "not found\n", NA[] = "method not allowed\n";
      c->body = status == 404 ? NF : NA;
      c->body_len = status == 404 ? sizeof NF - 1 : sizeof NA - 1;
      ctype = "text/plain";
    }
    c->head_only = head;
  }
  if (status == 400) {
    static const char BR[] = "bad request\n";
    c->body = BR;
    c->body_len = sizeof BR - 1;
    ctype = "text/plain";
  }
  c->hdr_len = (size_t)snprintf(c->hdr, HDR_MAX,
                                "HTTP/1.1 %d %s\r\nServer: xs_http_server\r\n"
                                "Content-Type: %s\r\nContent-Length: %llu\r\n%s\r\n",
                                status, reason, ctype, c->body_len,
                                c->close_after ? "Connection: close\r\n" : "");
  c->hdr_off = 0;
  c->body_off = 0;
  c->sending = 1;
  /* consume the request (pipelined bytes after it stay) */
  memmove(c->req, c->req + hend, c->req_len - hend);
  c->req_len -= hend;
}

/* Sends as much of the response as the socket takes. 1: done, 0: blocked,
 * -1: error. */
static int send_some(struct conn* c) {
  char chunk[16384];
  for (;;) {
    const char* p;
    size_t len;
    if (c->hdr_off < c->hdr_len) {
      p = c->hdr + c->hdr_off;
      len = c->hdr_len - c->hdr_off;
    } else if (!c->head_only && c->body_off < c->body_len) {
      unsigned long long left = c->body_len - c->body_off;
      if (c->body) {
        p = c->body + c->body_off;
        len = (size_t)left;
      } else {
        len = left < sizeof chunk ? (size_t)left : sizeof chunk;
        for (size_t i = 0; i < len; i++) chunk[i] = PATTERN[(c->body_off + i) % PATTERN_LEN];
        p = chunk;
      }
    } else {
      c->sending = 0;
      return 1;
    }
    ssize_t n = xs_send(c->fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    if (c->hdr_off < c->hdr_len) c->hdr_off += (size_t)n;
    else c->body_off += (unsigned long long)n;
  }
}

/* Finds the end of the request header in c->req; 0 if incomplete. */
static size_t header_end(const struct conn* c) {
  for (size_t i = 3; i < c->req_len; i++)
    if (c->req[i - 3] == '\r' && c->req[i - 2] == '\n' && c->req[i - 1] == '\r' && c->req[i] == '\n')
      return i + 1;
  return 0;
}

/* Serves complete requests while the socket takes the responses; returns -1
 * when the connection should be dropped. */
static int progress(int ep, struct conn* c) {
  for (;;) {
    if (c->sending) {
      int r = send_some(c);
      if (r < 0) return -1;
      if (r == 0) break;
      if (c->close_after) return -1;
    }
    size_t hend = header_end(c);
    if (!hend) {
      if (c->req_len == REQ_MAX) return -1; /* header too large */
      break;
    }
    prepare(c, hend);
  }
  struct epoll_event ev = {.events = c->sending ? EPOLLOUT : EPOLLIN, .data.fd = c->fd};
  return xs_epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_client(int ep, struct conn* c, uint32_t events) {
  if (!c->sending && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    ssize_t n = xs_recv(c->fd, c->req + c->req_len, REQ_MAX - c->req_len, 0);
    if (n == 0) { drop(ep, c); return; }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      drop(ep, c);
      return;
    }
    c->req_len += (size_t)n;
  }
  if (progress(ep, c) < 0) drop(ep, c);
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
  sa.sa_handler = on_signal;
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
        for (;;) {
          int cfd = xs_accept4(ls, NULL, NULL, SOCK_NONBLOCK);
          if (cfd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
              perror("xs_accept4");
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
          }
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
  printf("stopped\n");
  return 0;
}
