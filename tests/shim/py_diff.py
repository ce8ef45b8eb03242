#!/usr/bin/env python3
"""Differential socket conformance cases, driven by plain Python (ctest
apps_shim_pydiff, tests/shim/test_py_diff.sh).

    py_diff.py --local IP --peer IP --port PORT [--only NAME,NAME...]

The same script runs once on kernel sockets and once under tools/xstack-run
(the LD_PRELOAD shim interposes python3's libc socket calls), against
tests/shim/py_diff_peer.py (kernel sockets, the other namespace) on PEER:PORT.
Every case prints one JSON line {"case": NAME, "r": RESULT}; RESULT holds
return values, errno names (E:ENAME), flags and states, normalised so that
the two runs are comparable: the local address is "LOCAL", the peer's
"PEER", ports in [PORT, PORT+1000) are "P+k" and other nonzero ports
(ephemeral ones) are "EPH". Nothing here depends on timing except through
bounded waits for a condition (wait_until / select with a timeout).
A case that raises something unexpected prints "X:<exception>", a case that
exceeds its time budget prints "TIMEOUT". The last line is a summary.
"""
import argparse
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import select
import selectors
import signal
import socket
import stat
import struct
import sys
import tempfile
import termios
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--local", required=True)
ap.add_argument("--peer", required=True)
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--only", default="")
ap.add_argument("--budget", type=float, default=6.0, help="seconds per case")
ARGS = ap.parse_args()
LOCAL, PEER, PORT = ARGS.local, ARGS.peer, ARGS.port
CLOSED_TCP = PORT + 1   # nobody listens there (TCP)
CLOSED_UDP = PORT + 2   # nobody listens there (UDP)
BCAST = ".".join(PEER.split(".")[:3] + ["255"])

SOL_TCP = socket.IPPROTO_TCP
TCP_INFO = getattr(socket, "TCP_INFO", 11)
SIOCOUTQ = 0x5411
POLLRDHUP = getattr(select, "POLLRDHUP", 0x2000)

CASES = []
CUR = [""]
SEQ = [0]
_next_port = [PORT + 100]


def case(fn):
    CASES.append(fn)
    return fn


def lport():
    """A fresh fixed local port for binds (PORT+100 ...)."""
    _next_port[0] += 1
    return _next_port[0]


def ename(e):
    if isinstance(e, OSError) and e.errno:
        return "E:" + errno.errorcode.get(e.errno, str(e.errno))
    return "X:" + type(e).__name__


def E(f, *a, **k):
    """f(*a, **k), or the errno name it failed with."""
    try:
        return f(*a, **k)
    except OSError as e:
        return ename(e)


def nip(ip):
    if ip == LOCAL:
        return "LOCAL"
    if ip == PEER:
        return "PEER"
    return ip


def nport(p):
    if p == 0:
        return 0
    if PORT <= p < PORT + 1000:
        return f"P+{p - PORT}"
    return "EPH"


def A(addr):
    """A normalised (ip, port) address, or the errno string passed in."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        return [nip(addr[0]), nport(addr[1])]
    return addr


def gso(s, level, opt, buflen=None):
    if buflen is None:
        return E(s.getsockopt, level, opt)
    r = E(s.getsockopt, level, opt, buflen)
    return r.hex() if isinstance(r, bytes) else r


def sso(s, level, opt, val):
    r = E(s.setsockopt, level, opt, val)
    return 0 if r is None else r


def wait_until(pred, timeout=3.0, step=0.005):
    end = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return True
        except OSError:
            pass
        if time.monotonic() >= end:
            return False
        time.sleep(step)


def pattern(n):
    base = bytes((i * 7 + 3) % 251 for i in range(251))
    return (base * (n // 251 + 1))[:n]


def tag():
    SEQ[0] += 1
    return f"{CUR[0]}.{SEQ[0]}"


def conn(cmd, t=None, s=None):
    """A TCP connection to the peer that starts with 'TAG CMD'."""
    if s is None:
        s = socket.socket()
    s.connect((PEER, PORT))
    s.sendall(f"{t or tag()} {cmd}\n".encode())
    return s


def readline(s, limit=512):
    out = bytearray()
    while len(out) < limit:
        b = s.recv(1)
        if not b or b == b"\n":
            break
        out += b
    return out.decode(errors="replace")


def ask(cmd):
    s = conn(cmd)
    try:
        return readline(s)
    finally:
        s.close()


def peer_result(t, ms=3000):
    return ask(f"RESULT {t} {ms}")


def readable(s, timeout=3.0):
    return bool(select.select([s], [], [], timeout)[0])


def fionread(s):
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def outq(s):
    return struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCOUTQ, b"\0" * 4))[0]


def pollev(s, mask=None, ms=0):
    if mask is None:
        mask = select.POLLIN | select.POLLOUT | select.POLLPRI | POLLRDHUP
    p = select.poll()
    p.register(s, mask)
    r = p.poll(ms)
    return r[0][1] if r else 0


def evnames(m):
    names = []
    for n in ("POLLIN", "POLLPRI", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL"):
        if m & getattr(select, n):
            names.append(n[4:])
            m &= ~getattr(select, n)
    if m & POLLRDHUP:
        names.append("RDHUP")
        m &= ~POLLRDHUP
    if m:
        names.append(hex(m))
    return "|".join(names) or "0"


def tcpi_state(s):
    r = E(s.getsockopt, SOL_TCP, TCP_INFO, 104)
    if isinstance(r, bytes):
        return {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
                6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
                11: "CLOSING"}.get(r[0], r[0])
    return r


def listener(addr_ip=None, backlog=16):
    s = socket.socket()
    s.bind((addr_ip or LOCAL, lport()))
    s.listen(backlog)
    return s


def accept_from_peer(ls, mode="hold"):
    """The peer connects to ls (CONNECT); returns (accepted socket, addr, control)."""
    c = conn(f"CONNECT {ls.getsockname()[1]} {mode}")
    line = readline(c)
    if line != "ok":
        raise RuntimeError(f"peer connect: {line}")
    a, addr = ls.accept()
    return a, addr, c


def linger(on, secs):
    return struct.pack("ii", on, secs)


# ---------------------------------------------------------------- defaults

@case
def tcp_defaults():
    s = socket.socket()
    r = {}
    for n, lv, o in [("SO_TYPE", socket.SOL_SOCKET, socket.SO_TYPE),
                     ("SO_DOMAIN", socket.SOL_SOCKET, socket.SO_DOMAIN),
                     ("SO_PROTOCOL", socket.SOL_SOCKET, socket.SO_PROTOCOL),
                     ("SO_ERROR", socket.SOL_SOCKET, socket.SO_ERROR),
                     ("SO_REUSEADDR", socket.SOL_SOCKET, socket.SO_REUSEADDR),
                     ("SO_REUSEPORT", socket.SOL_SOCKET, socket.SO_REUSEPORT),
                     ("SO_KEEPALIVE", socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                     ("SO_BROADCAST", socket.SOL_SOCKET, socket.SO_BROADCAST),
                     ("SO_OOBINLINE", socket.SOL_SOCKET, socket.SO_OOBINLINE),
                     ("SO_ACCEPTCONN", socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
                     ("SO_RCVLOWAT", socket.SOL_SOCKET, socket.SO_RCVLOWAT),
                     ("SO_SNDLOWAT", socket.SOL_SOCKET, socket.SO_SNDLOWAT),
                     ("TCP_NODELAY", SOL_TCP, socket.TCP_NODELAY),
                     ("TCP_MAXSEG", SOL_TCP, socket.TCP_MAXSEG),
                     ("TCP_KEEPIDLE", SOL_TCP, socket.TCP_KEEPIDLE),
                     ("TCP_KEEPINTVL", SOL_TCP, socket.TCP_KEEPINTVL),
                     ("TCP_KEEPCNT", SOL_TCP, socket.TCP_KEEPCNT),
                     ("IP_TTL", socket.IPPROTO_IP, socket.IP_TTL),
                     ("IP_TOS", socket.IPPROTO_IP, socket.IP_TOS)]:
        r[n] = gso(s, lv, o)
    r["SO_LINGER"] = gso(s, socket.SOL_SOCKET, socket.SO_LINGER, 8)
    r["SO_RCVTIMEO"] = gso(s, socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
    s.close()
    return r


@case
def udp_defaults():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r = {}
    for n, lv, o in [("SO_TYPE", socket.SOL_SOCKET, socket.SO_TYPE),
                     ("SO_DOMAIN", socket.SOL_SOCKET, socket.SO_DOMAIN),
                     ("SO_PROTOCOL", socket.SOL_SOCKET, socket.SO_PROTOCOL),
                     ("SO_ERROR", socket.SOL_SOCKET, socket.SO_ERROR),
                     ("SO_BROADCAST", socket.SOL_SOCKET, socket.SO_BROADCAST),
                     ("SO_ACCEPTCONN", socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
                     ("IP_TTL", socket.IPPROTO_IP, socket.IP_TTL),
                     ("IP_TOS", socket.IPPROTO_IP, socket.IP_TOS),
                     ("TCP_NODELAY", SOL_TCP, socket.TCP_NODELAY)]:
        r[n] = gso(s, lv, o)
    s.close()
    return r


@case
def buf_defaults():
    r = {}
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        r[str(int(kind))] = [gso(s, socket.SOL_SOCKET, socket.SO_RCVBUF),
                             gso(s, socket.SOL_SOCKET, socket.SO_SNDBUF)]
        s.close()
    return r


@case
def buf_set_get():
    r = []
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            row = []
            for v in (65536, 1, 1 << 30, -5):
                row.append([sso(s, socket.SOL_SOCKET, opt, v), gso(s, socket.SOL_SOCKET, opt)])
            r.append(row)
        s.close()
    return r


@case
def sockopt_roundtrip():
    s = socket.socket()
    r = {}
    for n, lv, o, v in [("SO_REUSEADDR", socket.SOL_SOCKET, socket.SO_REUSEADDR, 5),
                        ("SO_KEEPALIVE", socket.SOL_SOCKET, socket.SO_KEEPALIVE, 7),
                        ("SO_OOBINLINE", socket.SOL_SOCKET, socket.SO_OOBINLINE, 1),
                        ("TCP_NODELAY", SOL_TCP, socket.TCP_NODELAY, 9),
                        ("TCP_KEEPIDLE", SOL_TCP, socket.TCP_KEEPIDLE, 30),
                        ("TCP_KEEPINTVL", SOL_TCP, socket.TCP_KEEPINTVL, 5),
                        ("TCP_KEEPCNT", SOL_TCP, socket.TCP_KEEPCNT, 3),
                        ("IP_TTL", socket.IPPROTO_IP, socket.IP_TTL, 17),
                        ("IP_TOS", socket.IPPROTO_IP, socket.IP_TOS, 0x10)]:
        r[n] = [sso(s, lv, o, v), gso(s, lv, o)]
    r["SO_LINGER"] = [sso(s, socket.SOL_SOCKET, socket.SO_LINGER, linger(1, 5)),
                      gso(s, socket.SOL_SOCKET, socket.SO_LINGER, 8)]
    r["SO_REUSEADDR_off"] = [sso(s, socket.SOL_SOCKET, socket.SO_REUSEADDR, 0),
                             gso(s, socket.SOL_SOCKET, socket.SO_REUSEADDR)]
    s.close()
    return r


@case
def sockopt_invalid_values():
    s = socket.socket()
    r = {}
    r["IP_TTL_0"] = sso(s, socket.IPPROTO_IP, socket.IP_TTL, 0)
    r["IP_TTL_256"] = sso(s, socket.IPPROTO_IP, socket.IP_TTL, 256)
    r["IP_TTL_-1"] = [sso(s, socket.IPPROTO_IP, socket.IP_TTL, 20),
                      sso(s, socket.IPPROTO_IP, socket.IP_TTL, -1),
                      gso(s, socket.IPPROTO_IP, socket.IP_TTL)]
    r["TCP_KEEPIDLE_0"] = sso(s, SOL_TCP, socket.TCP_KEEPIDLE, 0)
    r["TCP_KEEPINTVL_0"] = sso(s, SOL_TCP, socket.TCP_KEEPINTVL, 0)
    r["TCP_KEEPCNT_0"] = sso(s, SOL_TCP, socket.TCP_KEEPCNT, 0)
    r["TCP_KEEPIDLE_big"] = sso(s, SOL_TCP, socket.TCP_KEEPIDLE, 40000)
    r["TCP_MAXSEG_1"] = sso(s, SOL_TCP, socket.TCP_MAXSEG, 1)
    r["TCP_MAXSEG_70000"] = sso(s, SOL_TCP, socket.TCP_MAXSEG, 70000)
    s.close()
    return r


@case
def sockopt_optlen():
    s = socket.socket()
    r = {}
    r["set_REUSEADDR_2bytes"] = sso(s, socket.SOL_SOCKET, socket.SO_REUSEADDR, b"\x01\x00")
    r["set_NODELAY_2bytes"] = sso(s, SOL_TCP, socket.TCP_NODELAY, b"\x01\x00")
    r["set_TTL_1byte"] = [sso(s, socket.IPPROTO_IP, socket.IP_TTL, b"\x21"),
                          gso(s, socket.IPPROTO_IP, socket.IP_TTL)]
    r["get_TTL_1byte"] = gso(s, socket.IPPROTO_IP, socket.IP_TTL, 1)
    r["get_TYPE_2bytes"] = gso(s, socket.SOL_SOCKET, socket.SO_TYPE, 2)
    r["get_TYPE_8bytes"] = gso(s, socket.SOL_SOCKET, socket.SO_TYPE, 8)
    r["get_LINGER_4bytes"] = gso(s, socket.SOL_SOCKET, socket.SO_LINGER, 4)
    r["set_LINGER_4bytes"] = sso(s, socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00")
    r["set_RCVTIMEO_4bytes"] = sso(s, socket.SOL_SOCKET, socket.SO_RCVTIMEO, b"\x01\x00\x00\x00")
    s.close()
    return r


@case
def sockopt_unknown():
    s = socket.socket()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r = {
        "tcp_get_sol_9999": gso(s, socket.SOL_SOCKET, 9999),
        "tcp_set_sol_9999": sso(s, socket.SOL_SOCKET, 9999, 1),
        "tcp_get_tcp_9999": gso(s, SOL_TCP, 9999),
        "tcp_set_tcp_9999": sso(s, SOL_TCP, 9999, 1),
        "tcp_get_ip_9999": gso(s, socket.IPPROTO_IP, 9999),
        "tcp_get_level_12345": gso(s, 12345, 1),
        "tcp_set_level_12345": sso(s, 12345, 1, 1),
        "udp_get_tcp_nodelay": gso(u, SOL_TCP, socket.TCP_NODELAY),
        "udp_set_tcp_nodelay": sso(u, SOL_TCP, socket.TCP_NODELAY, 1),
        "udp_get_sol_9999": gso(u, socket.SOL_SOCKET, 9999),
    }
    s.close()
    u.close()
    return r


@case
def rcvtimeo_roundtrip():
    s = socket.socket()
    r = []
    for sec, usec in ((1, 500000), (0, 0), (3, 0)):
        r.append([sso(s, socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", sec, usec)),
                  list(struct.unpack("ll", s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)))])
    r.append(sso(s, socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 2000000)))
    r.append(sso(s, socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", -1, 0)))
    r.append(list(struct.unpack("ll", s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16))))
    s.close()
    return r


@case
def info_tcp_congestion_default():
    # net.ipv4.tcp_congestion_control (may be an algorithm xstack lacks)
    s = socket.socket()
    TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)
    r = E(lambda: s.getsockopt(SOL_TCP, TCP_CONGESTION, 16).rstrip(b"\0").decode())
    s.close()
    return r


@case
def info_rcvtimeo_granularity():
    s = socket.socket()
    sso(s, socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 1000))
    r = list(struct.unpack("ll", s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)))
    s.close()
    return r


@case
def tcp_maxseg():
    s = socket.socket()
    r = {"fresh": gso(s, SOL_TCP, socket.TCP_MAXSEG)}
    s.connect((PEER, PORT))
    s.sendall(f"{tag()} DRAIN\n".encode())
    r["connected"] = gso(s, SOL_TCP, socket.TCP_MAXSEG)
    s.close()
    s = socket.socket()
    r["set1000"] = sso(s, SOL_TCP, socket.TCP_MAXSEG, 1000)
    r["get_before"] = gso(s, SOL_TCP, socket.TCP_MAXSEG)
    conn("DRAIN", s=s)
    r["get_after"] = gso(s, SOL_TCP, socket.TCP_MAXSEG)
    s.close()
    return r


# ---------------------------------------------------------------- bind / listen

@case
def bind_twice():
    s = socket.socket()
    r = [E(s.bind, (LOCAL, lport())), E(s.bind, (LOCAL, lport())), A(s.getsockname())]
    s.close()
    return r


@case
def bind_in_use_listening():
    p = lport()
    s1 = socket.socket()
    s1.bind((LOCAL, p))
    s1.listen(4)
    s2 = socket.socket()
    s3 = socket.socket()
    s3.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s4 = socket.socket()
    r = [E(s2.bind, (LOCAL, p)), E(s3.bind, (LOCAL, p)), E(s4.bind, ("0.0.0.0", p))]
    for s in (s1, s2, s3, s4):
        s.close()
    return r


@case
def bind_reuseaddr_both():
    p = lport()
    s1, s2, s3 = socket.socket(), socket.socket(), socket.socket()
    for s in (s1, s2):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    r = [E(s1.bind, (LOCAL, p)), E(s2.bind, (LOCAL, p)), E(s3.bind, (LOCAL, p)),
         E(s1.listen, 4), E(s2.listen, 4)]
    for s in (s1, s2, s3):
        s.close()
    return r


@case
def bind_any_then_specific():
    p = lport()
    s1, s2 = socket.socket(), socket.socket()
    r = [E(s1.bind, ("0.0.0.0", p)), E(s2.bind, (LOCAL, p)), A(s1.getsockname())]
    s1.close()
    s2.close()
    return r


@case
def bind_not_local():
    s = socket.socket()
    r = [E(s.bind, ("198.18.0.77", lport())), gso(s, socket.SOL_SOCKET, socket.SO_TYPE), A(s.getsockname())]
    s.close()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.append(E(u.bind, ("198.18.0.77", lport())))
    u.close()
    return r


@case
def bind_port0():
    s = socket.socket()
    s.bind((LOCAL, 0))
    ip, port = s.getsockname()
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    r = [A((ip, port)), lo <= port <= hi]
    s.close()
    return r


@case
def getsockname_fresh():
    s = socket.socket()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r = [A(s.getsockname()), A(u.getsockname()), E(s.getpeername), E(u.getpeername)]
    s.close()
    u.close()
    return r


@case
def listen_without_bind():
    s = socket.socket()
    r = [E(s.listen, 4), A(s.getsockname()), gso(s, socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
         tcpi_state(s)]
    s.close()
    return r


@case
def listen_backlog0_accept():
    s = socket.socket()
    s.bind((LOCAL, lport()))
    s.listen(0)
    a, addr, c = accept_from_peer(s)
    r = [A(addr), A(a.getsockname()), A(a.getpeername()), gso(a, socket.SOL_SOCKET, socket.SO_ACCEPTCONN)]
    a.close()
    c.close()
    s.close()
    return r


@case
def listen_misuse():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s = socket.socket()
    s.bind((LOCAL, lport()))
    r = {"udp_listen": E(u.listen, 1), "accept_unlistened": E(s.accept)}
    c = conn("DRAIN")
    r["listen_connected"] = E(c.listen, 1)
    r["accept_connected"] = E(c.accept)
    r["bind_connected"] = E(c.bind, (LOCAL, lport()))
    for x in (u, s, c):
        x.close()
    return r


@case
def listen_relisten():
    s = socket.socket()
    s.bind((LOCAL, lport()))
    r = [E(s.listen, 1), E(s.listen, 8), E(s.connect, (PEER, PORT)), E(s.send, b"x"),
         E(s.recv, 1), E(s.shutdown, socket.SHUT_RDWR), tcpi_state(s)]
    s.close()
    return r


@case
def udp_bind_in_use():
    p = lport()
    u1, u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r = [E(u1.bind, (LOCAL, p)), E(u2.bind, (LOCAL, p))]
    u1.close()
    u2.close()
    p = lport()
    u1, u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for u in (u1, u2):
        u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    r += [E(u1.bind, (LOCAL, p)), E(u2.bind, (LOCAL, p))]
    u1.close()
    u2.close()
    return r


# ---------------------------------------------------------------- connect

@case
def connect_refused_blocking():
    s = socket.socket()
    r = [E(s.connect, (PEER, CLOSED_TCP)), gso(s, socket.SOL_SOCKET, socket.SO_ERROR), E(s.getpeername),
         tcpi_state(s)]
    # Linux lets the same socket connect again
    r.append(E(s.connect, (PEER, PORT)))
    if r[-1] is None:
        s.sendall(f"{tag()} DRAIN\n".encode())
        r.append(A(s.getpeername()))
    s.close()
    return r


@case
def connect_refused_nonblocking():
    s = socket.socket()
    s.setblocking(False)
    r = [E(s.connect_ex, (PEER, CLOSED_TCP))]
    r[0] = errno.errorcode.get(r[0], r[0])
    w = select.select([], [s], [], 3)[1]
    r.append(bool(w))
    r.append(evnames(pollev(s)))
    r.append(gso(s, socket.SOL_SOCKET, socket.SO_ERROR))
    r.append(gso(s, socket.SOL_SOCKET, socket.SO_ERROR))
    r.append(E(s.recv, 1))
    s.close()
    return r


@case
def connect_nonblocking_ok():
    s = socket.socket()
    s.setblocking(False)
    r = [errno.errorcode.get(s.connect_ex((PEER, PORT)), "0")]
    r.append(bool(select.select([], [s], [], 3)[1]))
    r.append(gso(s, socket.SOL_SOCKET, socket.SO_ERROR))
    r.append(errno.errorcode.get(s.connect_ex((PEER, PORT)), "0"))
    r.append(E(s.connect, (PEER, PORT)))
    r.append(evnames(pollev(s)))
    s.close()
    return r


@case
def connect_twice_and_names():
    s = conn("ECHO")
    r = [E(s.connect, (PEER, PORT)), E(s.connect, (PEER, CLOSED_TCP)), A(s.getsockname()), A(s.getpeername())]
    s.sendall(b"hello")
    r.append(E(s.recv, 100))
    r.append(tcpi_state(s))
    s.close()
    return r


@case
def unconnected_tcp_ops():
    s = socket.socket()
    r = {"getpeername": E(s.getpeername), "shutdown": E(s.shutdown, socket.SHUT_RDWR),
         "send": E(s.send, b"x"), "recv": E(s.recv, 1), "sendto": E(s.sendto, b"x", (PEER, PORT)),
         "recv_dontwait": E(s.recv, 1, socket.MSG_DONTWAIT), "poll": evnames(pollev(s)),
         "state": tcpi_state(s)}
    s.close()
    return r


@case
def connect_timeout_python():
    # Python's socket.settimeout path (non-blocking + poll) against a live peer
    s = socket.create_connection((PEER, PORT), timeout=2)
    s.sendall(f"{tag()} DRAIN\n".encode())
    r = [s.gettimeout(), s.getblocking()]
    s.settimeout(0.2)
    r.append(E(s.recv, 10))
    s.close()
    return r


# ---------------------------------------------------------------- data

@case
def send_recv_peek():
    s = conn("SEND 10")
    r = [readable(s), E(fionread, s), E(s.recv, 4, socket.MSG_PEEK), E(s.recv, 4, socket.MSG_PEEK),
         E(s.recv, 100)]
    s.close()
    return [x.hex() if isinstance(x, bytes) else x for x in r]


@case
def recv_dontwait_empty():
    s = conn("ECHO")
    r = [E(s.recv, 10, socket.MSG_DONTWAIT), E(s.recv, 10, socket.MSG_DONTWAIT | socket.MSG_PEEK),
         evnames(pollev(s))]
    s.close()
    return r


@case
def recv_waitall():
    s = conn("SENDSPLIT 500 150 700")
    d = E(s.recv, 1000, socket.MSG_WAITALL)
    r = [len(d) if isinstance(d, bytes) else d,
         d == pattern(500) + pattern(700)[:500] if isinstance(d, bytes) else None]
    d2 = E(s.recv, 1000, socket.MSG_WAITALL | socket.MSG_DONTWAIT)
    r.append(len(d2) if isinstance(d2, bytes) else d2)
    s.close()
    return r


@case
def recv_after_peer_close():
    s = conn("SENDCLOSE 5")
    r = [E(s.recv, 100)]
    r.append(wait_until(lambda: pollev(s) & POLLRDHUP))
    r += [E(s.recv, 100), E(s.recv, 100), E(s.recv, 100, socket.MSG_DONTWAIT), evnames(pollev(s)),
          tcpi_state(s)]
    s.close()
    return [x.hex() if isinstance(x, bytes) else x for x in r]


@case
def send_after_peer_close():
    s = conn("CLOSE")
    r = [E(s.recv, 10)]
    r.append(E(s.send, b"a"))  # accepted locally; the peer answers RST
    r.append(wait_until(lambda: pollev(s) & select.POLLERR, 3))
    r.append(evnames(pollev(s)))
    for _ in range(3):
        r.append(E(s.send, b"b"))
    r.append(gso(s, socket.SOL_SOCKET, socket.SO_ERROR))
    r.append(E(s.recv, 10))
    r.append(tcpi_state(s))
    s.close()
    return r


@case
def recv_after_rst():
    s = conn("RST")
    ok = wait_until(lambda: pollev(s) & select.POLLERR, 3)
    r = [ok, evnames(pollev(s)), E(s.recv, 10), E(s.recv, 10), gso(s, socket.SOL_SOCKET, socket.SO_ERROR),
         E(s.send, b"x"), tcpi_state(s)]
    s.close()
    return r


@case
def rst_pending_so_error():
    s = conn("RST")
    wait_until(lambda: pollev(s) & select.POLLERR, 3)
    r = [gso(s, socket.SOL_SOCKET, socket.SO_ERROR), gso(s, socket.SOL_SOCKET, socket.SO_ERROR),
         E(s.recv, 10), E(s.send, b"x")]
    s.close()
    return r


@case
def shutdown_wr_peer_eof():
    s = conn("HASH")
    s.sendall(pattern(100))
    r = [E(s.shutdown, socket.SHUT_WR), readline(s), E(s.send, b"x"), E(s.recv, 10)]
    r.append(wait_until(lambda: pollev(s) & select.POLLHUP))
    r.append(evnames(pollev(s)))
    s.close()
    return r


@case
def shutdown_rd():
    s = conn("ECHO")
    r = [E(s.shutdown, socket.SHUT_RD), E(s.recv, 10), evnames(pollev(s)), E(s.send, b"abc")]
    r.append(wait_until(lambda: fionread(s) == 3, 1.0))
    r.append(E(s.recv, 10))
    r.append(E(s.shutdown, socket.SHUT_RD))
    r.append(E(s.shutdown, 7))
    s.close()
    return [x.hex() if isinstance(x, bytes) else x for x in r]


@case
def shutdown_wr_state():
    s = conn("HOLDEOF 3000")
    s.shutdown(socket.SHUT_WR)
    r = [wait_until(lambda: tcpi_state(s) == "FIN_WAIT2", 2), tcpi_state(s), E(s.shutdown, socket.SHUT_WR),
         evnames(pollev(s))]
    s.close()
    return r


@case
def both_shutdown_states():
    s = conn("SHUTWR")
    r = [wait_until(lambda: pollev(s) & POLLRDHUP), tcpi_state(s), evnames(pollev(s))]
    s.shutdown(socket.SHUT_WR)
    r.append(wait_until(lambda: tcpi_state(s) == "CLOSE", 3))
    r.append(tcpi_state(s))
    r.append(evnames(pollev(s)))
    r.append(E(s.recv, 1))
    r.append(E(s.send, b"x"))
    s.close()
    return r


@case
def active_close_timewait_state():
    # we FIN first, the peer answers FIN: Linux moves the connection to a
    # time-wait mini socket and the descriptor's socket is CLOSE
    s = conn("DRAIN")
    s.shutdown(socket.SHUT_WR)
    r = [wait_until(lambda: pollev(s) & POLLRDHUP, 3),
         wait_until(lambda: tcpi_state(s) not in ("FIN_WAIT1", "FIN_WAIT2"), 2),
         tcpi_state(s), evnames(pollev(s)), E(s.recv, 10), E(s.send, b"x"),
         gso(s, socket.SOL_SOCKET, socket.SO_ERROR), E(s.connect, (PEER, PORT)), A(E(s.getpeername))]
    s.close()
    return r


@case
def sendto_on_connected_tcp():
    s = conn("ECHO")
    r = [E(s.sendto, b"to", (PEER, 9)), readable(s)]
    wait_until(lambda: fionread(s) == 2, 2)
    r.append(E(s.recv, 10))
    s.close()
    return r


@case
def connect_timeout_blackhole():
    # nobody has 198.18.0.99: the Python-level timeout fires first
    s = socket.socket()
    s.settimeout(0.3)
    r = [E(s.connect, ("198.18.0.99", 80)), tcpi_state(s)]
    s.close()
    return r


@case
def names_after_close_states():
    r = {}
    s = conn("RST")
    wait_until(lambda: pollev(s) & select.POLLERR, 3)
    r["rst"] = [tcpi_state(s), A(E(s.getpeername)), A(E(s.getsockname))]
    s.close()
    s = conn("SHUTWR")
    wait_until(lambda: pollev(s) & POLLRDHUP, 3)
    s.shutdown(socket.SHUT_WR)
    wait_until(lambda: tcpi_state(s) == "CLOSE", 3)
    r["passive_close"] = [tcpi_state(s), A(E(s.getpeername)), A(E(s.getsockname))]
    s.close()
    s = socket.socket()
    E(s.connect, (PEER, CLOSED_TCP))
    r["refused"] = [A(E(s.getpeername)), A(E(s.getsockname))]
    s.close()
    return r


@case
def bind_over_time_wait():
    ls = listener()
    p = ls.getsockname()[1]
    c = conn(f"CONNECT {p} hold")
    readline(c)
    a, _ = ls.accept()
    a.shutdown(socket.SHUT_WR)  # we close first: TIME-WAIT on our side
    r = [wait_until(lambda: pollev(a) & POLLRDHUP, 3)]
    a.close()
    ls.close()
    s1 = socket.socket()
    r.append(E(s1.bind, (LOCAL, p)))
    s1.close()
    s2 = socket.socket()
    s2.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    r.append(E(s2.bind, (LOCAL, p)))
    r.append(E(s2.listen, 4))
    s2.close()
    c.close()
    return r


@case
def shutdown_listener():
    ls = listener()
    r = [E(ls.shutdown, socket.SHUT_WR), tcpi_state(ls), E(ls.shutdown, socket.SHUT_RD), tcpi_state(ls),
         evnames(pollev(ls)), gso(ls, socket.SOL_SOCKET, socket.SO_ACCEPTCONN)]
    ls.setblocking(False)
    r.append(E(ls.accept))
    r.append(E(ls.listen, 4))
    r.append(tcpi_state(ls))
    ls.close()
    return r


@case
def recv_oob_errqueue_empty():
    s = conn("ECHO")
    r = [E(s.recv, 1, socket.MSG_OOB), E(s.recv, 1, getattr(socket, "MSG_ERRQUEUE", 0x2000)),
         E(s.recv, 1, socket.MSG_DONTWAIT)]
    s.close()
    u = udp()
    r.append(E(u.recv, 1, socket.MSG_OOB | socket.MSG_DONTWAIT))
    r.append(E(u.recv, 1, getattr(socket, "MSG_ERRQUEUE", 0x2000)))
    r.append(E(u.sendto, b"x", socket.MSG_OOB, (PEER, CLOSED_UDP)))
    u.close()
    return r


@case
def tcp_options_connected():
    s = conn("DRAIN")
    tcp = SOL_TCP
    r = {}
    for n, o, v in [("TCP_CORK", getattr(socket, "TCP_CORK", 3), 1),
                    ("TCP_USER_TIMEOUT", getattr(socket, "TCP_USER_TIMEOUT", 18), 5000),
                    ("TCP_QUICKACK", getattr(socket, "TCP_QUICKACK", 12), 1),
                    ("TCP_SYNCNT", getattr(socket, "TCP_SYNCNT", 7), 3),
                    ("TCP_LINGER2", getattr(socket, "TCP_LINGER2", 8), 10),
                    ("TCP_WINDOW_CLAMP", getattr(socket, "TCP_WINDOW_CLAMP", 10), 20000),
                    ("TCP_NOTSENT_LOWAT", getattr(socket, "TCP_NOTSENT_LOWAT", 25), 16384),
                    ("TCP_DEFER_ACCEPT", getattr(socket, "TCP_DEFER_ACCEPT", 9), 0)]:
        r[n] = [gso(s, tcp, o), sso(s, tcp, o, v), gso(s, tcp, o)]
    # the current clamp depends on the window: only its presence is compared
    r["TCP_WINDOW_CLAMP"][0] = "int" if isinstance(r["TCP_WINDOW_CLAMP"][0], int) else r["TCP_WINDOW_CLAMP"][0]
    TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)
    r["TCP_CONGESTION"] = [sso(s, tcp, TCP_CONGESTION, b"reno"),
                           E(lambda: s.getsockopt(tcp, TCP_CONGESTION, 16).rstrip(b"\0").decode()),
                           sso(s, tcp, TCP_CONGESTION, b"bogus")]
    r["SO_PRIORITY"] = [sso(s, socket.SOL_SOCKET, socket.SO_PRIORITY, 3), gso(s, socket.SOL_SOCKET, socket.SO_PRIORITY)]
    r["SO_RCVLOWAT"] = [sso(s, socket.SOL_SOCKET, socket.SO_RCVLOWAT, 10), gso(s, socket.SOL_SOCKET, socket.SO_RCVLOWAT)]
    r["SO_SNDLOWAT"] = sso(s, socket.SOL_SOCKET, socket.SO_SNDLOWAT, 10)
    r["SO_BINDTODEVICE"] = gso(s, socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
    s.close()
    return r


@case
def tcp_options_fresh():
    s = socket.socket()
    tcp = SOL_TCP
    TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)
    r = {"cork": gso(s, tcp, getattr(socket, "TCP_CORK", 3)),
         "user_timeout": gso(s, tcp, getattr(socket, "TCP_USER_TIMEOUT", 18)),
         "syncnt": gso(s, tcp, getattr(socket, "TCP_SYNCNT", 7)),
         "linger2": gso(s, tcp, getattr(socket, "TCP_LINGER2", 8)),
         "window_clamp": gso(s, tcp, getattr(socket, "TCP_WINDOW_CLAMP", 10)),
         "quickack": gso(s, tcp, getattr(socket, "TCP_QUICKACK", 12)),
         "priority": gso(s, socket.SOL_SOCKET, socket.SO_PRIORITY)}
    s.close()
    return r


@case
def epoll_edge_triggered():
    s = conn("ECHO")
    ep = select.epoll()
    ep.register(s.fileno(), select.EPOLLIN | select.EPOLLET)
    r = [[evnames(e) for _, e in ep.poll(0)]]
    s.sendall(b"one")
    r.append([evnames(e) for _, e in ep.poll(3)])
    r.append([evnames(e) for _, e in ep.poll(0)])  # edge: nothing new
    wait_until(lambda: fionread(s) == 3, 1)
    s.sendall(b"two")
    wait_until(lambda: fionread(s) == 6, 2)
    r.append([evnames(e) for _, e in ep.poll(3)])
    r.append(E(s.recv, 10))
    ep.modify(s.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
    s.sendall(b"3")
    r.append([evnames(e) for _, e in ep.poll(3)])
    wait_until(lambda: fionread(s) == 1, 2)
    r.append([evnames(e) for _, e in ep.poll(0)])  # one-shot: disarmed
    ep.close()
    s.close()
    return r


@case
def udp_pktinfo_ttl_cmsg():
    u = udp()
    IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
    r = [sso(u, socket.IPPROTO_IP, IP_PKTINFO, 1),
         sso(u, socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12), 1),
         sso(u, socket.IPPROTO_IP, getattr(socket, "IP_RECVTOS", 13), 1)]
    u.sendto(b"c", (PEER, PORT))
    readable(u)
    d, anc, flags, a = u.recvmsg(10, 256)
    cm = []
    for lvl, typ, data in anc:
        if typ == IP_PKTINFO:
            ifi, spec, addr = struct.unpack("i4s4s", data[:12])
            cm.append(["PKTINFO", ifi > 0, nip(socket.inet_ntoa(spec)), nip(socket.inet_ntoa(addr))])
        else:
            cm.append([lvl, typ, len(data), data[0] if typ != getattr(socket, "IP_RECVTTL", 12) else data[0] > 0])
    r += [d.decode(), sorted(cm, key=str), flags, A(a)]
    u.close()
    return r


@case
def udp_fragmented():
    u = udp()
    u.connect((PEER, PORT))
    r = []
    for n in (1472, 1473, 3000, 20000):
        u.send(pattern(n))
        ok = readable(u, 2)
        d = E(u.recv, 65536, socket.MSG_DONTWAIT) if ok else "no-echo"
        r.append([n, ok, (len(d), d == pattern(n)) if isinstance(d, bytes) else d])
    u.close()
    return r


@case
def udp_peek():
    u = udp()
    u.sendto(b"peek", (PEER, PORT))
    readable(u)
    r = [E(u.recvfrom, 2, socket.MSG_PEEK), E(u.recvfrom, 10)]
    r = [[x[0].decode(), A(x[1])] if isinstance(x, tuple) else x for x in r]
    u.close()
    return r


@case
def udp_connect_port0():
    u = udp()
    r = [E(u.connect, (PEER, 0)), A(E(u.getpeername)), E(u.send, b"x"), A(u.getsockname())]
    u.close()
    return r


@case
def tcp_connect_port0():
    s = socket.socket()
    s.settimeout(1.0)  # the peer answers RST (from port 0) at once
    r = [E(s.connect, (PEER, 0)), tcpi_state(s)]
    s.close()
    return r


@case
def udp_connected_sendto_other():
    u = udp()
    u.connect((PEER, CLOSED_UDP))
    r = [E(u.sendto, b"o", (PEER, PORT)), readable(u, 2), E(u.recv, 10, socket.MSG_DONTWAIT)]
    u.close()
    return r


@case
def recv_into_small():
    s = conn("SEND 10")
    buf = bytearray(4)
    readable(s)
    wait_until(lambda: fionread(s) == 10, 2)
    n1 = E(s.recv_into, buf)
    b1 = bytes(buf).hex()
    buf2 = bytearray(16)
    n2 = E(s.recv_into, buf2, 3)
    n3 = E(s.recv_into, buf2)
    r = [n1, b1, n2, n3, bytes(buf2[:n3 if isinstance(n3, int) else 0]).hex()]
    s.close()
    return r


@case
def sendall_4mb_hash():
    data = pattern(4 << 20)
    s = conn("HASH")
    r = [E(s.sendall, data), E(s.shutdown, socket.SHUT_WR)]
    line = readline(s)
    r.append(line == f"hash {len(data)} {hashlib.sha256(data).hexdigest()}")
    s.close()
    return r


@case
def recv_1mb_to_eof():
    s = conn("SENDCLOSE 1000000")
    h = hashlib.sha256()
    n = 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        n += len(b)
        h.update(b)
    s.close()
    return [n, h.hexdigest() == hashlib.sha256(pattern(1000000)).hexdigest()]


@case
def makefile_readline():
    s = conn("LINES")
    f = s.makefile("rb")
    r = [f.readline().decode(), f.readline().decode(), f.readline().decode(), f.readline().decode()]
    f.close()
    s.close()
    return r


@case
def sendmsg_recvmsg_tcp():
    s = conn("ECHO")
    r = [E(s.sendmsg, [b"ab", b"cd", b"ef"])]
    wait_until(lambda: fionread(s) == 6, 2)
    d, anc, flags, addr = s.recvmsg(100)
    r += [d.decode(), anc, flags, addr]
    r.append(E(outq, s))
    s.close()
    return r


@case
def os_read_write_fd():
    s = conn("ECHO")
    fd = s.fileno()
    r = [E(os.write, fd, b"xyz")]
    readable(s)
    wait_until(lambda: fionread(s) == 3, 2)
    r.append(E(os.read, fd, 10))
    r.append(E(os.writev, fd, [b"12", b"34"]))
    wait_until(lambda: fionread(s) == 4, 2)
    r.append(E(os.readv, fd, [bytearray(1), bytearray(10)]))
    s.close()
    return [x.decode() if isinstance(x, bytes) else x for x in r]


@case
def recv_trunc_tcp():
    s = conn("SEND 10")
    wait_until(lambda: fionread(s) == 10, 2)
    buf = bytearray(4)
    r = [E(s.recv_into, buf, 4, socket.MSG_TRUNC), E(fionread, s), E(s.recv, 100)]
    s.close()
    return [x.hex() if isinstance(x, bytes) else x for x in r]


@case
def rcvtimeo_blocking_recv():
    s = conn("DRAIN")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 200000))
    r = [s.gettimeout(), E(s.recv, 10)]
    s.close()
    return r


@case
def close_with_unread_data_rst():
    t = tag()
    s = conn("SEND 100", t)
    wait_until(lambda: fionread(s) == 100, 2)
    s.close()
    return peer_result(t)


@case
def close_linger0_rst():
    t = tag()
    s = conn("DRAIN", t)
    s.sendall(b"abc")
    # wait until the data is acknowledged: otherwise Nagle may still hold it
    # (timing, not semantics), and an abort discards what was not sent
    wait_until(lambda: outq(s) == 0, 2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger(1, 0))
    s.close()
    return peer_result(t)


@case
def close_graceful_eof():
    t = tag()
    s = conn("DRAIN", t)
    s.sendall(b"abcdef")
    s.close()
    return peer_result(t)


@case
def sendfile_tcp():
    data = pattern(300000)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        f.seek(0)
        s = conn("HASH")
        n = E(s.sendfile, f)
        s.shutdown(socket.SHUT_WR)
        line = readline(s)
        s.close()
    return [n, line == f"hash {len(data)} {hashlib.sha256(data).hexdigest()}"]


# ---------------------------------------------------------------- UDP

def udp():
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


@case
def udp_echo_recvfrom():
    u = udp()
    r = [E(u.sendto, b"ping", (PEER, PORT)), readable(u)]
    d, a = u.recvfrom(100)
    r += [d.decode(), A(a), A(u.getsockname()), E(u.getpeername)]
    u.close()
    return r


@case
def udp_getsockname_after_sendto():
    u = udp()
    r = [A(u.getsockname()), E(u.sendto, b"x", (PEER, CLOSED_UDP)), A(u.getsockname())]
    u.close()
    return r


@case
def udp_connected():
    u = udp()
    u.bind((LOCAL, lport()))
    r = [E(u.connect, (PEER, PORT)), A(u.getsockname()), A(u.getpeername()), E(u.send, b"hi")]
    readable(u)
    r.append(E(u.recv, 100))
    # a datagram from another port of the peer must be filtered out
    r.append(ask(f"UDPFROM {PORT + 3} {u.getsockname()[1]} 6f74686572"))
    r.append(ask(f"UDPFROM {PORT} {u.getsockname()[1]} 7269676874"))
    r.append(readable(u))
    r.append(E(u.recv, 100))
    r.append(E(u.recv, 100, socket.MSG_DONTWAIT))
    r.append(E(u.sendto, b"x", (PEER, PORT)))
    u.close()
    return [x.decode() if isinstance(x, bytes) else x for x in r]


@case
def udp_unconnected_filter_none():
    u = udp()
    u.bind((LOCAL, lport()))
    r = [ask(f"UDPFROM {PORT + 3} {u.getsockname()[1]} 6f74686572"), readable(u)]
    d, a = u.recvfrom(100)
    r += [d.decode(), A(a)]
    u.close()
    return r


@case
def udp_truncation():
    u = udp()
    u.connect((PEER, PORT))
    data = pattern(100)
    r = []
    u.send(data)
    readable(u)
    d, anc, flags, a = u.recvmsg(10)
    r.append([len(d), flags & socket.MSG_TRUNC != 0, A(a)])
    u.send(data)
    readable(u)
    d, a = u.recvfrom(10)
    r.append([len(d), A(a)])
    u.send(data)
    readable(u)
    buf = bytearray(10)
    r.append(E(u.recv_into, buf, 10, socket.MSG_TRUNC))
    u.send(data)
    readable(u)
    r.append(E(u.recv_into, buf, 10, socket.MSG_PEEK | socket.MSG_TRUNC))
    r.append(E(fionread, u))
    r.append(len(u.recv(1000)))
    u.close()
    return r


@case
def udp_empty_datagram():
    u = udp()
    r = [E(u.sendto, b"", (PEER, PORT)), readable(u)]
    r.append(E(fionread, u))
    d, a = u.recvfrom(100)
    r += [d.hex(), A(a), E(u.recv, 10, socket.MSG_DONTWAIT)]
    u.close()
    return r


@case
def udp_icmp_refused_connected():
    u = udp()
    u.connect((PEER, CLOSED_UDP))
    r = [E(u.send, b"x"), wait_until(lambda: pollev(u) & select.POLLERR, 2), evnames(pollev(u)),
         E(u.recv, 10), E(u.recv, 10, socket.MSG_DONTWAIT), E(u.send, b"y")]
    u.close()
    return r


@case
def udp_icmp_refused_so_error():
    u = udp()
    u.connect((PEER, CLOSED_UDP))
    u.send(b"x")
    r = [wait_until(lambda: pollev(u) & select.POLLERR, 2), gso(u, socket.SOL_SOCKET, socket.SO_ERROR),
         gso(u, socket.SOL_SOCKET, socket.SO_ERROR), E(u.recv, 10, socket.MSG_DONTWAIT)]
    u.close()
    return r


@case
def udp_icmp_unconnected_silent():
    u = udp()
    r = [E(u.sendto, b"x", (PEER, CLOSED_UDP))]
    # an unconnected socket does not report the ICMP error (no IP_RECVERR); a
    # datagram echoed afterwards proves the ICMP has had time to arrive
    u.sendto(b"y", (PEER, PORT))
    r.append(readable(u))
    r.append(E(u.recv, 10))
    r.append(gso(u, socket.SOL_SOCKET, socket.SO_ERROR))
    r.append(E(u.recv, 10, socket.MSG_DONTWAIT))
    u.close()
    return r


@case
def udp_broadcast():
    u = udp()
    r = [E(u.sendto, b"x", (BCAST, CLOSED_UDP)), E(u.sendto, b"x", ("255.255.255.255", CLOSED_UDP)),
         sso(u, socket.SOL_SOCKET, socket.SO_BROADCAST, 1), gso(u, socket.SOL_SOCKET, socket.SO_BROADCAST),
         E(u.sendto, b"x", (BCAST, CLOSED_UDP)), E(u.sendto, b"x", ("255.255.255.255", CLOSED_UDP))]
    u.close()
    return r


@case
def udp_limited_broadcast_fresh():
    # on a fresh socket (nothing sent yet) 255.255.255.255
    u = udp()
    r = [E(u.sendto, b"x", ("255.255.255.255", CLOSED_UDP))]
    u.close()
    u = udp()
    u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    r.append(E(u.sendto, b"x", ("255.255.255.255", CLOSED_UDP)))
    u.close()
    return r


@case
def offsubnet_after_use():
    # 198.19.5.5: in the lab's /15 but not on the /24, and there is no
    # default route in namespace a
    u = udp()
    u.sendto(b"x", (PEER, PORT))
    readable(u)
    u.recv(10)
    r = [E(u.sendto, b"x", ("198.19.5.5", 9)), E(u.connect, ("198.19.5.5", 9))]
    u.close()
    u = udp()
    r.append(E(u.sendto, b"x", ("198.19.5.5", 9)))  # fresh
    u.close()
    s = socket.socket()
    s.bind((LOCAL, 0))
    s.settimeout(1.0)
    r.append(E(s.connect, ("198.19.5.5", 80)))  # bound first
    s.close()
    s = socket.socket()
    s.settimeout(1.0)
    r.append(E(s.connect, ("198.19.5.5", 80)))  # fresh
    s.close()
    return r


@case
def udp_misc_errors():
    u = udp()
    r = {"send_unconnected": E(u.send, b"x"), "sendto_port0": E(u.sendto, b"x", (PEER, 0)),
         "recv_dontwait": E(u.recv, 10, socket.MSG_DONTWAIT),
         "sendto_65508": E(u.sendto, b"\0" * 65508, (PEER, CLOSED_UDP)),
         "sendto_65507": E(u.sendto, b"\0" * 65507, (PEER, CLOSED_UDP)),
         "poll_fresh": evnames(pollev(u))}
    u.close()
    return r


@case
def udp_shutdown_unconnected():
    # Linux fails with ENOTCONN but still records the shutdown (inet_shutdown)
    u = udp()
    r = [E(u.shutdown, socket.SHUT_RDWR), evnames(pollev(u)), E(u.sendto, b"x", (PEER, CLOSED_UDP)),
         E(u.recv, 10, socket.MSG_DONTWAIT)]
    u.close()
    return r


@case
def udp_connected_shutdown():
    u = udp()
    u.connect((PEER, PORT))
    r = [E(u.shutdown, socket.SHUT_RD), E(u.recv, 10, socket.MSG_DONTWAIT), evnames(pollev(u)),
         E(u.shutdown, socket.SHUT_WR), E(u.send, b"x"), evnames(pollev(u))]
    u.close()
    return r


@case
def udp_reconnect():
    u = udp()
    u.connect((PEER, CLOSED_UDP))
    r = [A(u.getpeername()), E(u.connect, (PEER, PORT)), A(u.getpeername()), E(u.send, b"z")]
    readable(u)
    r.append(E(u.recv, 10))
    u.close()
    return r


# ---------------------------------------------------------------- readiness

@case
def listener_readiness_and_accept():
    s = listener()
    r = [select.select([s], [s], [s], 0)[0:2] == ([], []), evnames(pollev(s))]
    c = conn(f"CONNECT {s.getsockname()[1]} hello")
    r.append(readline(c))
    r.append(readable(s))
    r.append(evnames(pollev(s)))
    a, addr = s.accept()
    r += [A(addr), A(a.getsockname()), A(a.getpeername()), evnames(pollev(s))]
    r.append(readable(a))
    r.append(E(a.recv, 10))
    r.append(tcpi_state(s))
    r.append(tcpi_state(a))
    a.close()
    c.close()
    s.close()
    return r


@case
def accept_nonblocking():
    s = listener()
    s.setblocking(False)
    r = [E(s.accept)]
    c = conn(f"CONNECT {s.getsockname()[1]} hold")
    r.append(readline(c))
    r.append(readable(s))
    a, addr = s.accept()
    r.append(A(addr))
    r.append(a.getblocking())
    r.append(fcntl.fcntl(a.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK != 0)
    r.append(E(s.accept))
    a.close()
    c.close()
    s.close()
    return r


@case
def accept_inherits_options():
    ls = socket.socket()
    for lv, o, v in [(SOL_TCP, socket.TCP_NODELAY, 1), (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
                     (SOL_TCP, socket.TCP_KEEPIDLE, 77), (SOL_TCP, socket.TCP_KEEPCNT, 4),
                     (socket.SOL_SOCKET, socket.SO_RCVBUF, 65536), (socket.SOL_SOCKET, socket.SO_SNDBUF, 65536),
                     (socket.IPPROTO_IP, socket.IP_TOS, 0x20), (socket.IPPROTO_IP, socket.IP_TTL, 33),
                     (socket.SOL_SOCKET, socket.SO_LINGER, linger(1, 3)),
                     (socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 2, 0))]:
        ls.setsockopt(lv, o, v)
    ls.bind((LOCAL, lport()))
    ls.listen(4)
    a, _, c = accept_from_peer(ls)
    r = {"TCP_NODELAY": gso(a, SOL_TCP, socket.TCP_NODELAY),
         "SO_KEEPALIVE": gso(a, socket.SOL_SOCKET, socket.SO_KEEPALIVE),
         "TCP_KEEPIDLE": gso(a, SOL_TCP, socket.TCP_KEEPIDLE),
         "TCP_KEEPCNT": gso(a, SOL_TCP, socket.TCP_KEEPCNT),
         "SO_RCVBUF": gso(a, socket.SOL_SOCKET, socket.SO_RCVBUF),
         "SO_SNDBUF": gso(a, socket.SOL_SOCKET, socket.SO_SNDBUF),
         "IP_TOS": gso(a, socket.IPPROTO_IP, socket.IP_TOS),
         "IP_TTL": gso(a, socket.IPPROTO_IP, socket.IP_TTL),
         "SO_LINGER": gso(a, socket.SOL_SOCKET, socket.SO_LINGER, 8),
         "SO_RCVTIMEO": gso(a, socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16),
         "SO_ACCEPTCONN": gso(a, socket.SOL_SOCKET, socket.SO_ACCEPTCONN)}
    a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger(0, 0))
    a.close()
    c.close()
    ls.close()
    return r


@case
def accept_after_peer_gone():
    r = []
    for mode in ("close", "rst"):
        ls = listener()
        c = conn(f"CONNECT {ls.getsockname()[1]} {mode}")
        r.append(readline(c))
        r.append(readable(ls))
        time.sleep(0.2)  # the FIN / RST reaches the queued connection (unobservable before accept)
        ls.setblocking(False)
        a = E(ls.accept)
        if isinstance(a, tuple):
            s = a[0]
            r += [A(a[1]), tcpi_state(s), evnames(pollev(s)), E(s.recv, 10), E(s.recv, 10), A(E(s.getpeername))]
            s.close()
        else:
            r.append(a)
        c.close()
        ls.close()
    return r


@case
def connect_inprogress_then_shutdown():
    # 198.18.0.99 does not exist: the connect stays in progress (ARP/SYN)
    s = socket.socket()
    s.setblocking(False)
    r = [errno.errorcode.get(s.connect_ex(("198.18.0.99", 80)), "0"),
         errno.errorcode.get(s.connect_ex(("198.18.0.99", 80)), "0"),
         E(s.connect, ("198.18.0.99", 81)), evnames(pollev(s)), tcpi_state(s),
         E(s.send, b"x"), E(s.recv, 1), E(s.getpeername)]
    r += [E(s.shutdown, socket.SHUT_RDWR), tcpi_state(s), evnames(pollev(s)),
          gso(s, socket.SOL_SOCKET, socket.SO_ERROR), gso(s, socket.SOL_SOCKET, socket.SO_ERROR),
          E(s.getpeername)]
    s.close()
    return r


@case
def rcvlowat_poll():
    s = conn("SENDSPLIT 3 200 3")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 5)
    r = [wait_until(lambda: fionread(s) == 3, 2), evnames(pollev(s)), readable(s, 0)]
    r += [wait_until(lambda: fionread(s) == 6, 2), evnames(pollev(s)), readable(s, 0), E(s.recv, 100)]
    s.close()
    return [x.hex() if isinstance(x, bytes) else x for x in r]


@case
def waitall_peer_closes_early():
    s = conn("SENDCLOSE 5")
    r = [E(s.recv, 100, socket.MSG_WAITALL), E(s.recv, 100, socket.MSG_WAITALL)]
    s.close()
    return [x.hex() if isinstance(x, bytes) else x for x in r]


@case
def accept4_flags():
    s = listener()
    c = conn(f"CONNECT {s.getsockname()[1]} hold")
    readline(c)
    readable(s)
    fd, addr = s._accept()  # accept4(SOCK_CLOEXEC) in CPython
    r = [A(addr), fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK, fcntl.fcntl(fd, fcntl.F_GETFD)]
    os.close(fd)
    c.close()
    s.close()
    return r


@case
def connect_writable_poll():
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((PEER, PORT))
    r = [bool(select.select([], [s], [], 3)[1])]
    s.setblocking(True)
    s.sendall(f"{tag()} ECHO\n".encode())
    r.append(evnames(pollev(s)))
    r.append(select.select([s], [s], [s], 0)[0:3] == ([], [s], []))
    s.close()
    return r


@case
def poll_fresh_sockets():
    s = socket.socket()
    u = udp()
    sr, sw, sx = select.select([s, u], [s, u], [s, u], 0)
    r = [evnames(pollev(s)), evnames(pollev(u)), [x is s for x in sr], [x is s for x in sw], len(sx)]
    s.close()
    u.close()
    return r


@case
def poll_peer_fin():
    s = conn("SHUTWR")
    r = [wait_until(lambda: pollev(s) & POLLRDHUP, 3), evnames(pollev(s)),
         evnames(pollev(s, select.POLLIN)), evnames(pollev(s, select.POLLOUT)), evnames(pollev(s, 0))]
    s.close()
    return r


@case
def poll_closed_fd():
    s = socket.socket()
    fd = s.fileno()
    s.close()
    p = select.poll()
    p.register(fd, select.POLLIN)
    ev = p.poll(0)
    r = [evnames(ev[0][1]) if ev else "none"]
    r.append(E(select.select, [fd], [], [], 0))
    r.append(E(os.read, fd, 1))
    return r


@case
def selectors_mixed():
    sel = selectors.DefaultSelector()
    ls = listener()
    ls.setblocking(False)
    rp, wp = os.pipe()
    sel.register(ls, selectors.EVENT_READ, "listener")
    sel.register(rp, selectors.EVENT_READ, "pipe")
    r = [sorted(k.data for k, _ in sel.select(0))]
    c = conn(f"CONNECT {ls.getsockname()[1]} hello")
    readline(c)
    os.write(wp, b"p")
    seen = set()
    end = time.monotonic() + 3
    while len(seen) < 2 and time.monotonic() < end:
        for k, ev in sel.select(1):
            seen.add(k.data)
            if k.data == "pipe":
                os.read(rp, 10)
                sel.unregister(rp)
    r.append(sorted(seen))
    a, _ = ls.accept()
    a.setblocking(False)
    sel.register(a, selectors.EVENT_READ | selectors.EVENT_WRITE, "conn")
    evs = {}
    end = time.monotonic() + 3
    while time.monotonic() < end:
        for k, ev in sel.select(1):
            evs[k.data] = ev
        if evs.get("conn") == selectors.EVENT_READ | selectors.EVENT_WRITE:
            break
    r.append(evs.get("conn"))
    r.append(E(a.recv, 10))
    sel.close()
    for x in (a, ls, c):
        x.close()
    os.close(rp)
    os.close(wp)
    return r


# ---------------------------------------------------------------- descriptors / misc

@case
def blocking_flags():
    s = socket.socket()
    r = [s.getblocking(), s.gettimeout(), fcntl.fcntl(s.fileno(), fcntl.F_GETFL),
         fcntl.fcntl(s.fileno(), fcntl.F_GETFD)]
    s.setblocking(False)
    r += [s.getblocking(), s.gettimeout(), fcntl.fcntl(s.fileno(), fcntl.F_GETFL)]
    s.settimeout(1.5)
    r += [s.getblocking(), fcntl.fcntl(s.fileno(), fcntl.F_GETFL)]
    s.setblocking(True)
    r.append(fcntl.fcntl(s.fileno(), fcntl.F_GETFL))
    fcntl.fcntl(s.fileno(), fcntl.F_SETFD, 0)
    r.append(fcntl.fcntl(s.fileno(), fcntl.F_GETFD))
    s.close()
    n = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    r += [int(n.type), n.getblocking(), fcntl.fcntl(n.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK != 0]
    n.close()
    return r


@case
def dup_then_close_one():
    t = tag()
    s = conn("ECHO", t)
    s2 = s.dup()
    fd3 = os.dup(s.fileno())
    s.close()
    r = [E(s2.send, b"dup"), readable(s2), E(s2.recv, 10), A(s2.getpeername())]
    s2.close()
    r.append(E(os.write, fd3, b"os"))
    r.append(bool(select.select([fd3], [], [], 3)[0]))
    r.append(E(os.read, fd3, 10))
    os.close(fd3)
    r.append(peer_result(t))
    return [x.decode() if isinstance(x, bytes) else x for x in r]


@case
def dup_close_last_with_unread():
    t = tag()
    s = conn("ECHO", t)
    fd2 = os.dup(s.fileno())
    s.sendall(b"xy")
    wait_until(lambda: fionread(s) == 2, 2)
    s.close()
    os.close(fd2)
    return peer_result(t)


@case
def late_data_after_close():
    # Linux tcp_rcv_state_process: data for FIN-WAIT-1/2 with RCV_SHUTDOWN -> RST
    t = tag()
    s = conn("LATESEND", t)
    s.close()
    return peer_result(t, 5000)


@case
def late_data_after_shutdown_rdwr():
    # the same without close(): shutdown(SHUT_RDWR) also sets RCV_SHUTDOWN
    t = tag()
    s = conn("LATESEND", t)
    r = [E(s.shutdown, socket.SHUT_RDWR), peer_result(t, 5000)]
    r.append(tcpi_state(s))
    r.append(E(s.recv, 10))
    s.close()
    return r


@case
def late_data_after_shutdown_wr():
    # SHUT_WR only: the late data is queued and readable (no RST)
    t = tag()
    s = conn("LATESEND", t)
    r = [E(s.shutdown, socket.SHUT_WR), peer_result(t, 5000), E(s.recv, 10), E(s.recv, 10)]
    s.close()
    return r


@case
def socket_from_fileno():
    s = conn("ECHO")
    fd = os.dup(s.fileno())
    s2 = socket.socket(fileno=fd)
    r = [int(s2.family), int(s2.type), s2.proto, A(s2.getpeername())]
    s2.close()
    s.close()
    return r


@case
def fileno_and_detach():
    s = socket.socket()
    fd = s.fileno()
    r = [fd >= 0]
    d = s.detach()
    r += [d == fd, s.fileno()]
    s2 = socket.socket(fileno=d)
    r.append(gso(s2, socket.SOL_SOCKET, socket.SO_TYPE))
    s2.close()
    r.append(E(os.close, d))
    return r


@case
def socketpair_unix():
    a, b = socket.socketpair()
    a.sendall(b"unix")
    r = [int(a.family), int(a.type), E(b.recv, 10).decode(), gso(a, socket.SOL_SOCKET, socket.SO_DOMAIN)]
    a.close()
    b.close()
    return r


@case
def inet6_socket():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError as e:
        return ename(e)
    r = [int(s.family), gso(s, socket.SOL_SOCKET, socket.SO_DOMAIN), E(s.bind, ("::1", 0)),
         s.getsockname()[0]]
    s.close()
    return r


@case
def tcp_info_states():
    s = socket.socket()
    r = {"fresh": tcpi_state(s)}
    s.close()
    s = listener()
    r["listen"] = tcpi_state(s)
    s.close()
    s = conn("DRAIN")
    r["established"] = tcpi_state(s)
    s.close()
    s = conn("CLOSE")
    wait_until(lambda: pollev(s) & POLLRDHUP)
    r["close_wait"] = tcpi_state(s)
    s.shutdown(socket.SHUT_WR)
    r["last_ack_or_close"] = wait_until(lambda: tcpi_state(s) == "CLOSE")
    s.close()
    s = socket.socket()
    E(s.connect, (PEER, CLOSED_TCP))
    r["refused"] = tcpi_state(s)
    s.close()
    u = udp()
    r["udp"] = tcpi_state(u)
    u.close()
    return r


@case
def ioctl_queues():
    s = conn("SEND 10")
    wait_until(lambda: fionread(s) == 10, 2)
    r = [E(fionread, s), E(outq, s)]
    ls = listener()
    r.append(E(fionread, ls))
    s.close()
    ls.close()
    return r


# ================================================================ batch 2
# (signals, connect/disconnect sequences, corking, TTL/TOS on the wire, TCP
# option bounds, iovecs and ancillary data, raw addresses, high descriptors,
# epoll semantics, ioctls, urgent data, UDP sizes and PMTU, port allocation,
# many connections, threads blocked in calls)

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.sendto.restype = ctypes.c_ssize_t
LIBC.sendto.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_char_p,
                        ctypes.c_uint32]
LIBC.connect.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
LIBC.bind.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
SIOCATMARK = 0x8905
SIOCINQ = termios.FIONREAD
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_MTU = getattr(socket, "IP_MTU", 14)
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
SO_PEEK_OFF = getattr(socket, "SO_PEEK_OFF", 42)
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)
TCP_CORK = getattr(socket, "TCP_CORK", 3)
TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)
TCP_SYNCNT = getattr(socket, "TCP_SYNCNT", 7)
TCP_DEFER_ACCEPT = getattr(socket, "TCP_DEFER_ACCEPT", 9)
TCP_LINGER2 = getattr(socket, "TCP_LINGER2", 8)
TCP_WINDOW_CLAMP = getattr(socket, "TCP_WINDOW_CLAMP", 10)
TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)
TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)


def sin(ip, port, family=socket.AF_INET):
    return struct.pack("=HH4s8x", family, socket.htons(port), socket.inet_aton(ip))


def craw(rv):
    """A raw libc return value, or the errno name."""
    if rv < 0:
        e = ctypes.get_errno()
        return "E:" + errno.errorcode.get(e, str(e))
    return rv


def c_connect(fd, addr, alen=None):
    ctypes.set_errno(0)
    return craw(LIBC.connect(fd, addr, len(addr) if alen is None else alen))


def c_bind(fd, addr, alen=None):
    ctypes.set_errno(0)
    return craw(LIBC.bind(fd, addr, len(addr) if alen is None else alen))


def c_sendto(fd, data, addr, alen=None, flags=0):
    ctypes.set_errno(0)
    return craw(LIBC.sendto(fd, data, len(data), flags, addr, (len(addr) if addr else 0) if alen is None else alen))


class Sig:
    """Counts deliveries of a signal while active."""

    def __init__(self, signum):
        self.signum, self.n = signum, 0

    def _h(self, signum, frame):
        self.n += 1

    def __enter__(self):
        self.old = signal.signal(self.signum, self._h)
        return self

    def __exit__(self, *a):
        signal.signal(self.signum, self.old)

    def count(self):
        time.sleep(0.001)  # let the interpreter run a pending handler
        return self.n


def ev_list(evs):
    return sorted(evnames(e) for _, e in evs)


# ---------------------------------------------------------------- SIGPIPE

@case
def sigpipe_after_shutdown_wr():
    s = conn("HOLDEOF 2000")
    s.shutdown(socket.SHUT_WR)
    with Sig(signal.SIGPIPE) as g:
        r = [E(s.send, b"x"), g.count(), E(s.send, b"x", socket.MSG_NOSIGNAL), g.count(),
             E(s.sendmsg, [b"x"]), g.count(), E(s.sendmsg, [b"x"], [], socket.MSG_NOSIGNAL), g.count(),
             E(os.write, s.fileno(), b"x"), g.count(), E(os.writev, s.fileno(), [b"x"]), g.count(),
             E(s.sendto, b"x", (PEER, PORT)), g.count(), E(s.send, b""), g.count()]
    s.close()
    return r


@case
def sigpipe_after_rst():
    s = conn("RST")
    wait_until(lambda: pollev(s) & select.POLLERR, 3)
    with Sig(signal.SIGPIPE) as g:
        r = [E(s.send, b"x"), g.count(), E(s.send, b"x"), g.count(),
             E(s.send, b"x", socket.MSG_NOSIGNAL), g.count(), E(s.recv, 1), g.count()]
    s.close()
    return r


@case
def sigpipe_other_sockets():
    r = {}
    with Sig(signal.SIGPIPE) as g:
        s = socket.socket()
        r["tcp_fresh"] = [E(s.send, b"x"), g.count(), E(s.send, b"x", socket.MSG_NOSIGNAL), g.count()]
        s.close()
        ls = listener()
        r["listener"] = [E(ls.send, b"x"), g.count()]
        ls.close()
        u = udp()
        u.connect((PEER, PORT))
        u.shutdown(socket.SHUT_WR)
        r["udp_shut_wr"] = [E(u.send, b"x"), g.count(), E(u.sendto, b"x", (PEER, PORT)), g.count()]
        u.close()
        u = udp()
        r["udp_unconnected"] = [E(u.send, b"x"), g.count()]
        u.close()
    return r


# ---------------------------------------------------------------- connect sequences

@case
def connect_nb_refused_reconnect():
    r = {}
    # without reading SO_ERROR: the next connect reports the refusal
    s = socket.socket()
    s.setblocking(False)
    r["first"] = errno.errorcode.get(s.connect_ex((PEER, CLOSED_TCP)), "0")
    select.select([], [s], [], 3)
    r["again_closed"] = errno.errorcode.get(s.connect_ex((PEER, CLOSED_TCP)), "0")
    r["third"] = errno.errorcode.get(s.connect_ex((PEER, PORT)), "0")
    r["third_done"] = bool(select.select([], [s], [], 3)[1])
    r["third_err"] = gso(s, socket.SOL_SOCKET, socket.SO_ERROR)
    r["third_peer"] = A(E(s.getpeername))
    s.setblocking(True)
    E(s.sendall, f"{tag()} DRAIN\n".encode())
    s.close()
    # SO_ERROR read first: the next connect finds no error
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((PEER, CLOSED_TCP))
    select.select([], [s], [], 3)
    r["so_error"] = gso(s, socket.SOL_SOCKET, socket.SO_ERROR)
    r["after_read"] = errno.errorcode.get(s.connect_ex((PEER, PORT)), "0")
    r["after_read_2"] = errno.errorcode.get(s.connect_ex((PEER, PORT)), "0")
    select.select([], [s], [], 3)
    r["after_read_peer"] = A(E(s.getpeername))
    s.close()
    return r


@case
def connect_unspec_udp():
    u = udp()
    u.connect((PEER, PORT))
    r = [A(u.getsockname()), c_connect(u.fileno(), struct.pack("=H14x", socket.AF_UNSPEC)),
         A(E(u.getpeername)), A(u.getsockname()), E(u.send, b"x"), E(u.sendto, b"y", (PEER, PORT))]
    r.append(readable(u))
    r.append([x.decode() if isinstance(x, bytes) else x for x in [E(u.recv, 10)]])
    u.close()
    # explicitly bound: the address stays
    u = udp()
    u.bind((LOCAL, lport()))
    u.connect((PEER, PORT))
    r += [c_connect(u.fileno(), struct.pack("=H14x", socket.AF_UNSPEC)), A(u.getsockname()),
          c_connect(u.fileno(), struct.pack("=H14x", socket.AF_UNSPEC))]
    u.close()
    # short AF_UNSPEC address
    u = udp()
    r.append(c_connect(u.fileno(), struct.pack("=H", socket.AF_UNSPEC)))
    u.close()
    return r


@case
def connect_unspec_tcp():
    r = {}
    t = tag()
    s = conn("DRAIN", t)
    s.sendall(b"abc")
    wait_until(lambda: outq(s) == 0, 2)
    r["disconnect"] = c_connect(s.fileno(), struct.pack("=H14x", socket.AF_UNSPEC))
    r["state"] = tcpi_state(s)
    r["peername"] = A(E(s.getpeername))
    r["peer"] = peer_result(t)
    r["reconnect"] = E(s.connect, (PEER, PORT))
    if r["reconnect"] is None:
        s.sendall(f"{tag()} DRAIN\n".encode())
        r["reconnected"] = [A(s.getpeername()), tcpi_state(s)]
    s.close()
    s = socket.socket()
    r["fresh"] = [c_connect(s.fileno(), struct.pack("=H14x", socket.AF_UNSPEC)), tcpi_state(s)]
    s.close()
    ls = listener()
    r["listener"] = [c_connect(ls.fileno(), struct.pack("=H14x", socket.AF_UNSPEC)), tcpi_state(ls),
                     gso(ls, socket.SOL_SOCKET, socket.SO_ACCEPTCONN), E(ls.listen, 4), tcpi_state(ls)]
    ls.close()
    return r


@case
def raw_address_errors():
    r = {}
    u = udp()
    fd = u.fileno()
    r["udp_sendto_len8"] = c_sendto(fd, b"x", sin(PEER, PORT), 8)
    r["udp_sendto_len0_unconnected"] = c_sendto(fd, b"x", sin(PEER, PORT), 0)
    r["udp_sendto_inet6_family"] = c_sendto(fd, b"x", sin(PEER, CLOSED_UDP, 10))
    r["udp_sendto_unspec_family"] = c_sendto(fd, b"x", sin(PEER, CLOSED_UDP, socket.AF_UNSPEC))
    r["udp_sendto_len20"] = c_sendto(fd, b"x", sin(PEER, CLOSED_UDP) + b"\0" * 4)
    r["udp_connect_len8"] = c_connect(fd, sin(PEER, PORT), 8)
    r["udp_bind_len8"] = c_bind(fd, sin(LOCAL, lport()), 8)
    u.close()
    s = socket.socket()
    fd = s.fileno()
    r["tcp_bind_len8"] = c_bind(fd, sin(LOCAL, lport()), 8)
    r["tcp_bind_inet6_family"] = c_bind(fd, sin(LOCAL, lport(), 10))
    r["tcp_bind_unspec_local"] = c_bind(fd, sin(LOCAL, lport(), socket.AF_UNSPEC))
    r["tcp_connect_len8"] = c_connect(fd, sin(PEER, PORT), 8)
    r["tcp_connect_inet6_family"] = c_connect(fd, sin(PEER, PORT, 10))
    r["tcp_name"] = A(s.getsockname())
    s.close()
    s = socket.socket()
    r["tcp_bind_unspec_any"] = [c_bind(s.fileno(), sin("0.0.0.0", 0, socket.AF_UNSPEC)), A(s.getsockname())]
    s.close()
    return r


@case
def shutdown_misuse():
    r = {}
    u = udp()
    r["udp_accept"] = E(u.accept)
    r["udp_fresh_how3"] = E(u.shutdown, 3)
    r["udp_fresh_how-1"] = E(u.shutdown, -1)
    u.close()
    s = conn("HOLDEOF 2000")
    r["tcp_how3"] = E(s.shutdown, 3)
    r["tcp_how-1"] = E(s.shutdown, -1)
    r["rdwr_1"] = E(s.shutdown, socket.SHUT_RDWR)
    r["rdwr_2"] = E(s.shutdown, socket.SHUT_RDWR)
    r["wr_3"] = E(s.shutdown, socket.SHUT_WR)
    r["state"] = wait_until(lambda: tcpi_state(s) == "FIN_WAIT2", 2)
    r["rd_4"] = E(s.shutdown, socket.SHUT_RD)
    s.close()
    s = socket.socket()
    r["fresh_how3"] = E(s.shutdown, 3)
    s.close()
    return r


# ---------------------------------------------------------------- corking

@case
def cork_holds_until_uncork():
    s = conn("ECHO")
    r = [sso(s, SOL_TCP, TCP_CORK, 1), gso(s, SOL_TCP, TCP_CORK), E(s.send, pattern(100))]
    time.sleep(0.15)
    r.append(readable(s, 0))
    r.append(sso(s, SOL_TCP, TCP_CORK, 0))
    r.append(wait_until(lambda: fionread(s) == 100, 2))
    r.append(E(s.recv, 1000) == pattern(100))
    s.close()
    return r


@case
def msg_more_holds():
    s = conn("ECHO")
    r = [E(s.send, b"abc", socket.MSG_MORE)]
    time.sleep(0.15)
    r.append(readable(s, 0))
    r.append(E(s.send, b"def"))
    r.append(wait_until(lambda: fionread(s) == 6, 2))
    r.append(E(s.recv, 100))
    s.close()
    return r


@case
def cork_nodelay_pushes():
    s = conn("ECHO")
    r = [sso(s, SOL_TCP, TCP_CORK, 1), E(s.send, b"abc")]
    time.sleep(0.15)
    r.append(readable(s, 0))
    r.append(sso(s, SOL_TCP, socket.TCP_NODELAY, 1))
    r.append(wait_until(lambda: fionread(s) == 3, 1))
    r += [gso(s, SOL_TCP, TCP_CORK), gso(s, SOL_TCP, socket.TCP_NODELAY)]
    s.close()
    return r


@case
def cork_full_segments_go():
    s = conn("ECHO")
    s.setsockopt(SOL_TCP, TCP_CORK, 1)
    s.sendall(pattern(5000))
    wait_until(lambda: fionread(s) > 0, 1)
    time.sleep(0.1)
    n = fionread(s)
    r = [0 < n < 5000]
    s.setsockopt(SOL_TCP, TCP_CORK, 0)
    r.append(wait_until(lambda: fionread(s) == 5000, 2))
    s.close()
    return r


# ---------------------------------------------------------------- TTL / TOS on the wire

def udpseen(n):
    c = conn(f"UDPSEEN {n} 1500")
    line = readline(c)
    return c, int(line.split()[1])


@case
def udp_ttl_tos_on_wire():
    c, p = udpseen(3)
    u = udp()
    u.sendto(b"a", (PEER, p))
    r = [sso(u, socket.IPPROTO_IP, socket.IP_TTL, 33), sso(u, socket.IPPROTO_IP, socket.IP_TOS, 0x28)]
    u.sendto(b"bb", (PEER, p))
    r += [sso(u, socket.IPPROTO_IP, socket.IP_TTL, -1), sso(u, socket.IPPROTO_IP, socket.IP_TOS, 0)]
    u.connect((PEER, p))
    u.send(b"ccc")
    r.append(readline(c))
    u.close()
    c.close()
    return r


@case
def udp_sendmsg_cmsg_ttl_tos():
    c, p = udpseen(3)
    u = udp()
    ip = socket.IPPROTO_IP
    r = [E(u.sendmsg, [b"a"], [(ip, socket.IP_TTL, struct.pack("i", 7))], 0, (PEER, p)),
         E(u.sendmsg, [b"bb"], [(ip, socket.IP_TOS, struct.pack("i", 0x10))], 0, (PEER, p)),
         E(u.sendmsg, [b"x"], [(ip, socket.IP_TTL, struct.pack("i", 0))], 0, (PEER, p)),
         E(u.sendmsg, [b"x"], [(ip, socket.IP_TTL, struct.pack("i", 256))], 0, (PEER, p)),
         E(u.sendmsg, [b"ccc"], [(ip, socket.IP_TOS, b"\x20")], 0, (PEER, p)),
         gso(u, ip, socket.IP_TTL), gso(u, ip, socket.IP_TOS)]
    r.append(readline(c))
    u.close()
    c.close()
    return r


@case
def tcp_ttl_tos_accept_side():
    # IP_TTL/IP_TOS set on a connected TCP socket read back; the peer's echo still works
    s = conn("ECHO")
    r = [sso(s, socket.IPPROTO_IP, socket.IP_TTL, 9), sso(s, socket.IPPROTO_IP, socket.IP_TOS, 0x48),
         gso(s, socket.IPPROTO_IP, socket.IP_TTL), gso(s, socket.IPPROTO_IP, socket.IP_TOS),
         sso(s, socket.IPPROTO_IP, socket.IP_TOS, 0x4b), gso(s, socket.IPPROTO_IP, socket.IP_TOS),
         E(s.send, b"ok")]
    wait_until(lambda: fionread(s) == 2, 2)
    r.append(E(s.recv, 10))
    s.close()
    return r


# ---------------------------------------------------------------- TCP option bounds

@case
def tcp_keepalive_bounds():
    s = conn("DRAIN")
    r = {}
    r["on"] = [sso(s, socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1), gso(s, socket.SOL_SOCKET, socket.SO_KEEPALIVE)]
    for n, o in (("idle", socket.TCP_KEEPIDLE), ("intvl", socket.TCP_KEEPINTVL), ("cnt", socket.TCP_KEEPCNT)):
        row = []
        for v in (1, 2, 127, 128, 32767, 32768, -1):
            row.append([v, sso(s, SOL_TCP, o, v), gso(s, SOL_TCP, o)])
        r[n] = row
    r["off"] = [sso(s, socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0), gso(s, socket.SOL_SOCKET, socket.SO_KEEPALIVE)]
    s.close()
    return r


@case
def tcp_user_timeout_syncnt():
    s = socket.socket()
    r = {"ut": [[v, sso(s, SOL_TCP, TCP_USER_TIMEOUT, v), gso(s, SOL_TCP, TCP_USER_TIMEOUT)]
                for v in (1, 1000, 0, -1, 2 ** 31 - 1)],
         "syncnt": [[v, sso(s, SOL_TCP, TCP_SYNCNT, v), gso(s, SOL_TCP, TCP_SYNCNT)]
                    for v in (1, 0, 127, 128, -1, 5)]}
    s.close()
    s = conn("DRAIN")
    r["ut_connected"] = [sso(s, SOL_TCP, TCP_USER_TIMEOUT, 2500), gso(s, SOL_TCP, TCP_USER_TIMEOUT)]
    s.close()
    return r


@case
def tcp_defer_accept_rounding():
    r = {}
    for kind in ("fresh", "listener"):
        s = socket.socket() if kind == "fresh" else listener()
        r[kind] = [[v, sso(s, SOL_TCP, TCP_DEFER_ACCEPT, v), gso(s, SOL_TCP, TCP_DEFER_ACCEPT)]
                   for v in (1, 2, 3, 4, 10, 30, 100, 1000, 0, -1)]
        s.close()
    return r


@case
def tcp_linger2_clamp_quickack():
    s = socket.socket()
    r = {"linger2": [[v, sso(s, SOL_TCP, TCP_LINGER2, v), gso(s, SOL_TCP, TCP_LINGER2)]
                     for v in (30, 0, -1, 200, 120, -5)],
         "window_clamp": [[v, sso(s, SOL_TCP, TCP_WINDOW_CLAMP, v), gso(s, SOL_TCP, TCP_WINDOW_CLAMP)]
                          for v in (100000, 100, 0, -1)],
         "quickack": [[v, sso(s, SOL_TCP, TCP_QUICKACK, v), gso(s, SOL_TCP, TCP_QUICKACK)]
                      for v in (0, 1, 2, -1)],
         "notsent_lowat": [[v, sso(s, SOL_TCP, TCP_NOTSENT_LOWAT, v), gso(s, SOL_TCP, TCP_NOTSENT_LOWAT)]
                           for v in (1, 0, -1)]}
    s.close()
    s = conn("DRAIN")
    r["clamp0_connected"] = sso(s, SOL_TCP, TCP_WINDOW_CLAMP, 0)
    r["maxseg_connected"] = [sso(s, SOL_TCP, socket.TCP_MAXSEG, 1000), "int" if isinstance(gso(s, SOL_TCP, socket.TCP_MAXSEG), int) else "err"]
    s.close()
    return r


@case
def sockopt_privileged():
    s = socket.socket()
    u = udp()
    r = {"rcvbufforce": [sso(s, socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 1 << 22),
                         gso(s, socket.SOL_SOCKET, socket.SO_RCVBUF)],
         "sndbufforce": [sso(s, socket.SOL_SOCKET, getattr(socket, "SO_SNDBUFFORCE", 32), 1 << 22),
                         gso(s, socket.SOL_SOCKET, socket.SO_SNDBUF)],
         "mark": [sso(s, socket.SOL_SOCKET, getattr(socket, "SO_MARK", 36), 5),
                  gso(s, socket.SOL_SOCKET, getattr(socket, "SO_MARK", 36))],
         "freebind": [sso(u, socket.IPPROTO_IP, getattr(socket, "IP_FREEBIND", 15), 1),
                      gso(u, socket.IPPROTO_IP, getattr(socket, "IP_FREEBIND", 15)),
                      E(u.bind, ("198.18.0.77", lport())), A(u.getsockname())]}
    s.close()
    u.close()
    return r


# ---------------------------------------------------------------- iovecs / ancillary

@case
def iov_max_limits():
    s = conn("ECHO")
    fd = s.fileno()
    r = [E(os.writev, fd, [b"a"] * 1024), E(os.writev, fd, [b"a"] * 1025),
         E(s.sendmsg, [b"b"] * 1025), E(s.sendmsg, [b"b"] * 1024)]
    wait_until(lambda: fionread(s) == 2048, 2)
    r.append(E(os.readv, fd, [bytearray(1)] * 1025))
    r.append(E(lambda: s.recvmsg_into([bytearray(1) for _ in range(1025)])[0]))
    r.append(E(os.readv, fd, [bytearray(1) for _ in range(1024)]))
    r.append(E(lambda: s.recvmsg_into([bytearray(1) for _ in range(1024)])[0]))
    s.close()
    return r


@case
def udp_gather_scatter():
    u = udp()
    u.connect((PEER, PORT))
    r = [E(os.writev, u.fileno(), [b"ab", b"cd", b"ef"])]
    readable(u)
    b1, b2 = bytearray(2), bytearray(3)
    n, anc, flags, a = u.recvmsg_into([b1, b2])
    r += [n, bytes(b1 + b2).decode(), bool(flags & socket.MSG_TRUNC), A(a)]
    r.append(E(u.sendmsg, [b"x", b"", b"yz"]))
    readable(u)
    r.append(E(os.readv, u.fileno(), [bytearray(1), bytearray(5)]))
    r.append(E(u.sendmsg, []))
    readable(u)
    r.append(E(u.recvmsg, 10)[0:3])
    u.close()
    return r


@case
def cmsg_send_misc():
    r = {}
    s = conn("ECHO")
    r["tcp_ip_ttl_cmsg"] = E(s.sendmsg, [b"t"], [(socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", 5))])
    r["tcp_scm_rights"] = E(s.sendmsg, [b"r"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", 0))])
    r["tcp_sol_bogus"] = E(s.sendmsg, [b"b"], [(socket.SOL_SOCKET, 77, struct.pack("i", 0))])
    r["tcp_msgname"] = E(s.sendmsg, [b"n"], [], 0, (PEER, 9))
    wait_until(lambda: fionread(s) >= 2, 1)
    time.sleep(0.05)
    r["tcp_echo"] = E(s.recv, 10, socket.MSG_DONTWAIT)
    s.close()
    u = udp()
    ip = socket.IPPROTO_IP
    r["udp_scm_rights"] = E(u.sendmsg, [b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", 0))], 0,
                            (PEER, CLOSED_UDP))
    r["udp_sol_bogus"] = E(u.sendmsg, [b"x"], [(socket.SOL_SOCKET, 77, struct.pack("i", 0))], 0, (PEER, CLOSED_UDP))
    r["udp_ip_bogus"] = E(u.sendmsg, [b"x"], [(ip, 99, struct.pack("i", 0))], 0, (PEER, CLOSED_UDP))
    r["udp_tcp_level"] = E(u.sendmsg, [b"x"], [(SOL_TCP, 1, struct.pack("i", 0))], 0, (PEER, CLOSED_UDP))
    r["udp_ttl_short"] = E(u.sendmsg, [b"x"], [(ip, socket.IP_TTL, b"\x05")], 0, (PEER, CLOSED_UDP))
    u.close()
    return r


@case
def udp_recvmsg_ctrunc_peek():
    u = udp()
    u.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12), 1)
    u.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_PKTINFO", 8), 1)
    u.sendto(b"hello", (PEER, PORT))
    readable(u)
    d, anc, flags, a = u.recvmsg(2, socket.CMSG_SPACE(4), socket.MSG_PEEK)
    r = [d.decode(), len(anc), bool(flags & socket.MSG_TRUNC), bool(flags & socket.MSG_CTRUNC)]
    d, anc, flags, a = u.recvmsg(2, 0, socket.MSG_PEEK | socket.MSG_TRUNC)
    r += [d.decode(), len(anc), bool(flags & socket.MSG_TRUNC), bool(flags & socket.MSG_CTRUNC)]
    d, anc, flags, a = u.recvmsg(100, 256)
    r += [d.decode(), len(anc), flags, A(a)]
    u.close()
    return r


@case
def recv_zero_length():
    r = {}
    s = conn("SEND 10")
    wait_until(lambda: fionread(s) == 10, 2)
    r["tcp_data"] = [E(s.recv, 0), E(fionread, s), E(s.recv, 0, socket.MSG_PEEK)]
    s.close()
    s = conn("ECHO")
    r["tcp_empty"] = [E(s.recv, 0, socket.MSG_DONTWAIT), E(s.send, b"")]
    s.close()
    u = udp()
    u.connect((PEER, PORT))
    u.send(b"12345")
    u.send(b"123456789")
    wait_until(lambda: select.select([u], [], [], 0)[0], 2)
    time.sleep(0.05)
    r["udp"] = [E(u.recv, 0), E(fionread, u), E(u.recv, 100), E(u.recv, 0, socket.MSG_DONTWAIT),
                E(u.send, b""), readable(u), E(u.recv, 10)]
    u.close()
    return r


# ---------------------------------------------------------------- descriptors

@case
def high_fd_numbers():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    fill = []
    r = {}
    try:
        while True:
            fd = os.open("/dev/null", os.O_RDONLY)
            fill.append(fd)
            if fd >= 1100:
                break
        s = conn("ECHO")
        r["fd_high"] = s.fileno() > 1023
        try:
            select.select([s], [], [], 0)
            r["select"] = "ok"
        except ValueError:
            r["select"] = "ValueError"
        r["poll_out"] = evnames(pollev(s))
        s.sendall(b"hi")
        r["poll_in"] = wait_until(lambda: pollev(s, select.POLLIN) & select.POLLIN, 2)
        r["recv"] = E(s.recv, 10)
        fd2 = 1500
        os.dup2(s.fileno(), fd2)
        r["dup2_write"] = E(os.write, fd2, b"d2")
        p = select.poll()
        p.register(fd2, select.POLLIN)
        r["dup2_poll"] = [evnames(e) for _, e in p.poll(2000)]
        r["dup2_read"] = E(os.read, fd2, 10)
        os.close(fd2)
        ep = select.epoll()
        ep.register(s.fileno(), select.EPOLLIN)
        s.sendall(b"ep")
        r["epoll"] = [evnames(e) for _, e in ep.poll(2)]
        ep.close()
        s.close()
    finally:
        for fd in fill:
            os.close(fd)
    return r


@case
def poll_negative_fd_ctypes():
    s = conn("ECHO")

    class PollFd(ctypes.Structure):
        _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]

    arr = (PollFd * 3)((-1, select.POLLIN, 0), (s.fileno(), select.POLLOUT, 0), (-5, select.POLLOUT, 0))
    n = LIBC.poll(arr, 3, 0)
    r = [n, [evnames(x.revents) for x in arr]]
    arr2 = (PollFd * 1)((-1, select.POLLIN, 0))
    r.append(LIBC.poll(arr2, 1, 50))
    s.close()
    return r


@case
def fionbio_ioctl():
    s = conn("DRAIN")
    r = [fcntl.ioctl(s.fileno(), termios.FIONBIO, struct.pack("i", 1)) is not None,
         fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK != 0]
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 300000))
    t0 = time.monotonic()
    r.append(E(os.read, s.fileno(), 10))
    r.append(time.monotonic() - t0 < 0.2)
    fcntl.ioctl(s.fileno(), termios.FIONBIO, struct.pack("i", 0))
    r.append(fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK != 0)
    t0 = time.monotonic()
    r.append(E(os.read, s.fileno(), 10))
    r.append(time.monotonic() - t0 >= 0.2)
    s.close()
    return r


@case
def o_async_sigio():
    s = conn("ECHO")
    with Sig(signal.SIGIO) as g:
        r = [E(fcntl.fcntl, s.fileno(), fcntl.F_SETOWN, os.getpid()), E(fcntl.fcntl, s.fileno(), fcntl.F_GETOWN) == os.getpid()]
        fl = fcntl.fcntl(s.fileno(), fcntl.F_GETFL)
        r.append(E(fcntl.fcntl, s.fileno(), fcntl.F_SETFL, fl | os.O_ASYNC))
        r.append(fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_ASYNC != 0)
        s.sendall(b"x")
        r.append(wait_until(lambda: g.n > 0, 2))
        fcntl.fcntl(s.fileno(), fcntl.F_SETFL, fl)
    s.close()
    return r


# ---------------------------------------------------------------- epoll

@case
def epoll_oneshot_rearm():
    s = conn("SEND 3")
    ep = select.epoll()
    ep.register(s.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
    r = [[evnames(e) for _, e in ep.poll(3)], [evnames(e) for _, e in ep.poll(0)]]
    ep.modify(s.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
    r.append([evnames(e) for _, e in ep.poll(0)])
    r.append([evnames(e) for _, e in ep.poll(0)])
    ep.modify(s.fileno(), select.EPOLLIN)
    r.append([evnames(e) for _, e in ep.poll(0)])
    r.append([evnames(e) for _, e in ep.poll(0)])
    r.append(E(ep.register, s.fileno(), select.EPOLLIN))
    ep.close()
    s.close()
    return r


@case
def epoll_rdhup_hup():
    s = conn("SHUTWR")
    ep = select.epoll()
    ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLOUT)
    ok = wait_until(lambda: any(e & select.EPOLLRDHUP for _, e in ep.poll(0)), 3)
    r = [ok, [evnames(e) for _, e in ep.poll(0)]]
    ep.modify(s.fileno(), select.EPOLLIN)
    r.append([evnames(e) for _, e in ep.poll(0)])
    s.shutdown(socket.SHUT_WR)
    ep.modify(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLOUT)
    r.append(wait_until(lambda: any(e & select.EPOLLHUP for _, e in ep.poll(0)), 3))
    r.append([evnames(e) for _, e in ep.poll(0)])
    ep.modify(s.fileno(), 0)
    r.append([evnames(e) for _, e in ep.poll(0)])
    ep.close()
    s.close()
    return r


@case
def epoll_exclusive_rules():
    s = conn("ECHO")
    ep = select.epoll()
    X = getattr(select, "EPOLLEXCLUSIVE", 1 << 28)
    r = [E(ep.register, s.fileno(), select.EPOLLIN | X | select.EPOLLONESHOT),
         E(ep.register, s.fileno(), select.EPOLLIN | X),
         E(ep.modify, s.fileno(), select.EPOLLIN),
         E(ep.modify, s.fileno(), select.EPOLLIN | X),
         [evnames(e) for _, e in ep.poll(0)]]
    s.sendall(b"x")
    r.append(wait_until(lambda: ep.poll(0), 2))
    r.append([evnames(e) for _, e in ep.poll(0)])
    r.append(E(ep.unregister, s.fileno()))
    ep.close()
    s.close()
    return r


@case
def epoll_two_instances():
    s = conn("SEND 2")
    e1, e2 = select.epoll(), select.epoll()
    e1.register(s.fileno(), select.EPOLLIN)
    e2.register(s.fileno(), select.EPOLLIN | select.EPOLLET)
    r = [[evnames(e) for _, e in e1.poll(3)], [evnames(e) for _, e in e2.poll(3)],
         [evnames(e) for _, e in e1.poll(0)], [evnames(e) for _, e in e2.poll(0)]]
    e1.unregister(s.fileno())
    r.append([evnames(e) for _, e in e1.poll(0)])
    r.append(E(s.recv, 10))
    r.append([evnames(e) for _, e in e2.poll(0)])
    e1.close()
    e2.close()
    s.close()
    return r


@case
def epoll_close_semantics():
    r = {}
    ep = select.epoll()
    s = conn("SEND 2")
    fd = s.fileno()
    ep.register(fd, select.EPOLLIN)
    wait_until(lambda: fionread(s) == 2, 2)
    r["before"] = [evnames(e) for _, e in ep.poll(0)]
    s.close()
    r["after_close"] = ep.poll(0)
    r["del_closed"] = E(ep.unregister, fd)
    # a registered number closed while a dup keeps the socket: still reported
    s = conn("SEND 2")
    fd = s.fileno()
    ep.register(fd, select.EPOLLIN)
    d = os.dup(fd)
    wait_until(lambda: fionread(s) == 2, 2)
    s.close()
    evs = ep.poll(0)
    r["after_close_with_dup"] = [[x == fd, evnames(e)] for x, e in evs]
    r["del_after_close_with_dup"] = E(ep.unregister, fd)
    r["add_dup"] = E(ep.register, d, select.EPOLLIN)
    r["dup_events"] = sorted([x == d, evnames(e)] for x, e in ep.poll(0))
    os.close(d)
    r["after_all_closed"] = ep.poll(0)
    ep.close()
    return r


@case
def epoll_ctl_errors():
    s = socket.socket()
    ep = select.epoll()
    r = {"del_unregistered": E(ep.unregister, s.fileno()),
         "mod_unregistered": E(ep.modify, s.fileno(), select.EPOLLIN),
         "add": E(ep.register, s.fileno(), select.EPOLLIN),
         "add_twice": E(ep.register, s.fileno(), select.EPOLLIN),
         "add_self": E(ep.register, ep.fileno(), select.EPOLLIN),
         "fresh_events": [evnames(e) for _, e in ep.poll(0)]}
    with tempfile.TemporaryFile() as f:
        r["add_regular_file"] = E(ep.register, f.fileno(), select.EPOLLIN)
    r["del"] = E(ep.unregister, s.fileno())
    r["del_twice"] = E(ep.unregister, s.fileno())
    ep.close()
    s.close()
    return r


@case
def epoll_maxevents_rotation():
    socks = [conn("SEND 1") for _ in range(3)]
    for s in socks:
        wait_until(lambda: fionread(s) == 1, 2)
    ep = select.epoll()
    for s in socks:
        ep.register(s.fileno(), select.EPOLLIN)
    p1 = ep.poll(0, 2)
    p2 = ep.poll(0, 2)
    r = [len(p1), len(p2), len(set(fd for fd, _ in p1 + p2)), len(ep.poll(0, 10))]
    ep.close()
    for s in socks:
        s.close()
    return r


@case
def epoll_out_edge_vs_level():
    s = conn("DRAIN")
    ep = select.epoll()
    ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLET)
    r = [[evnames(e) for _, e in ep.poll(0)], [evnames(e) for _, e in ep.poll(0)]]
    s.send(b"x")
    wait_until(lambda: outq(s) == 0, 2)
    r.append(len(ep.poll(0.5)) <= 1)
    ep.modify(s.fileno(), select.EPOLLOUT)
    r += [[evnames(e) for _, e in ep.poll(0)], [evnames(e) for _, e in ep.poll(0)]]
    ep.close()
    s.close()
    return r


# ---------------------------------------------------------------- ioctls / urgent data / options

@case
def urgent_data_receive():
    s = conn("SENDOOB")
    r = [wait_until(lambda: pollev(s) & select.POLLPRI, 2)]
    wait_until(lambda: fionread(s) >= 2, 1)
    r.append(evnames(pollev(s)))
    r.append(E(lambda: struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCATMARK, b"\0" * 4))[0]))
    r.append(E(s.recv, 1, socket.MSG_OOB))
    r.append(E(s.recv, 1, socket.MSG_OOB))
    r.append(E(s.recv, 10))
    r.append(E(lambda: struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCATMARK, b"\0" * 4))[0]))
    r.append(evnames(pollev(s)))
    s.close()
    return r


@case
def urgent_data_send():
    s = conn("RECVOOB 2000")
    r = [E(s.send, b"ab"), E(s.send, b"c", socket.MSG_OOB), readline(s)]
    s.close()
    return r


@case
def udp_inq_outq():
    u = udp()
    u.connect((PEER, PORT))
    u.send(b"12345")
    u.send(b"123456789")
    wait_until(lambda: readable(u, 0), 2)
    time.sleep(0.05)
    r = [E(fionread, u), E(lambda: struct.unpack("i", fcntl.ioctl(u.fileno(), SIOCINQ, b"\0" * 4))[0]),
         wait_until(lambda: outq(u) == 0, 1), E(outq, u)]
    u.recv(100)
    r.append(E(fionread, u))
    u.recv(100)
    r.append(E(fionread, u))
    r.append(E(lambda: struct.unpack("i", fcntl.ioctl(u.fileno(), SIOCATMARK, b"\0" * 4))[0]))
    u.close()
    return r


@case
def so_peek_off():
    r = {}
    s = conn("SEND 10")
    wait_until(lambda: fionread(s) == 10, 2)
    r["tcp"] = [gso(s, socket.SOL_SOCKET, SO_PEEK_OFF), sso(s, socket.SOL_SOCKET, SO_PEEK_OFF, 0),
                E(s.recv, 4, socket.MSG_PEEK), E(s.recv, 4, socket.MSG_PEEK),
                gso(s, socket.SOL_SOCKET, SO_PEEK_OFF), E(s.recv, 3), gso(s, socket.SOL_SOCKET, SO_PEEK_OFF),
                E(s.recv, 10, socket.MSG_PEEK), E(s.recv, 10)]
    r["tcp"] = [x.hex() if isinstance(x, bytes) else x for x in r["tcp"]]
    s.close()
    u = udp()
    u.connect((PEER, PORT))
    u.send(b"abcdef")
    u.send(b"XYZ")
    readable(u)
    time.sleep(0.05)
    r["udp"] = [gso(u, socket.SOL_SOCKET, SO_PEEK_OFF), sso(u, socket.SOL_SOCKET, SO_PEEK_OFF, 0),
                E(u.recv, 2, socket.MSG_PEEK), E(u.recv, 2, socket.MSG_PEEK),
                gso(u, socket.SOL_SOCKET, SO_PEEK_OFF), E(u.recv, 10), gso(u, socket.SOL_SOCKET, SO_PEEK_OFF),
                E(u.recv, 10)]
    u.close()
    return r


@case
def socket_kind_queries():
    ls = listener()
    a, addr, c = accept_from_peer(ls)
    r = {"accepted": [int(a.type), a.proto, gso(a, socket.SOL_SOCKET, socket.SO_TYPE),
                      gso(a, socket.SOL_SOCKET, socket.SO_PROTOCOL), gso(a, socket.SOL_SOCKET, socket.SO_DOMAIN),
                      gso(a, socket.SOL_SOCKET, socket.SO_ACCEPTCONN)],
         "listener": [gso(ls, socket.SOL_SOCKET, socket.SO_ACCEPTCONN), gso(ls, socket.SOL_SOCKET, socket.SO_ERROR)],
         "connected": gso(c, socket.SOL_SOCKET, socket.SO_ACCEPTCONN)}
    a.close()
    c.close()
    ls.close()
    u = udp()
    r["udp_rcvlowat"] = [sso(u, socket.SOL_SOCKET, socket.SO_RCVLOWAT, 10), gso(u, socket.SOL_SOCKET, socket.SO_RCVLOWAT)]
    u.sendto(b"abc", (PEER, PORT))
    r["udp_lowat_readable"] = [readable(u), E(u.recv, 10)]
    r["udp_rcvlowat_0"] = [sso(u, socket.SOL_SOCKET, socket.SO_RCVLOWAT, 0), gso(u, socket.SOL_SOCKET, socket.SO_RCVLOWAT)]
    u.close()
    return r


# ---------------------------------------------------------------- UDP sizes, PMTU, multicast, errors

@case
def udp_64k_echo():
    u = udp()
    u.connect((PEER, PORT))
    r = []
    for n in (65507, 65000, 65508):
        s = E(u.send, pattern(n))
        ok = isinstance(s, int) and readable(u, 2)
        d = E(u.recv, 70000, socket.MSG_DONTWAIT) if ok else "no-echo"
        r.append([n, s, (len(d), d == pattern(n)) if isinstance(d, bytes) else d])
    u.close()
    return r


@case
def ip_mtu_discover():
    r = {}
    s = socket.socket()
    u = udp()
    r["defaults"] = [gso(s, socket.IPPROTO_IP, IP_MTU_DISCOVER), gso(u, socket.IPPROTO_IP, IP_MTU_DISCOVER)]
    r["roundtrip"] = [[v, sso(u, socket.IPPROTO_IP, IP_MTU_DISCOVER, v), gso(u, socket.IPPROTO_IP, IP_MTU_DISCOVER)]
                      for v in (0, 2, 3, 4, 5, 6, -1, 1)]
    r["mtu_unconnected"] = [gso(u, socket.IPPROTO_IP, IP_MTU), gso(s, socket.IPPROTO_IP, IP_MTU)]
    s.close()
    u.connect((PEER, PORT))
    r["mtu_connected_udp"] = gso(u, socket.IPPROTO_IP, IP_MTU)
    r["do_1473"] = [sso(u, socket.IPPROTO_IP, IP_MTU_DISCOVER, 2), E(u.send, pattern(1473)), E(u.send, pattern(1472))]
    r["dont_1473"] = [sso(u, socket.IPPROTO_IP, IP_MTU_DISCOVER, 0), E(u.send, pattern(1473))]
    u.close()
    # connected before any option: stays on xstack under the shim
    u = udp()
    u.connect((PEER, PORT))
    r["connected_first"] = [gso(u, socket.IPPROTO_IP, IP_MTU_DISCOVER), gso(u, socket.IPPROTO_IP, IP_MTU),
                            sso(u, socket.IPPROTO_IP, IP_MTU_DISCOVER, 2), E(u.send, pattern(1473)),
                            sso(u, socket.IPPROTO_IP, IP_MTU_DISCOVER, 0), E(u.send, pattern(1473))]
    u.close()
    s = conn("DRAIN")
    r["mtu_connected_tcp"] = gso(s, socket.IPPROTO_IP, IP_MTU)
    r["tcp_set_do"] = [sso(s, socket.IPPROTO_IP, IP_MTU_DISCOVER, 2), gso(s, socket.IPPROTO_IP, IP_MTU_DISCOVER)]
    s.close()
    return r


@case
def udp_multicast_opts():
    u = udp()
    ip = socket.IPPROTO_IP
    r = {"defaults": [gso(u, ip, socket.IP_MULTICAST_TTL), gso(u, ip, socket.IP_MULTICAST_LOOP),
                      gso(u, ip, socket.IP_MULTICAST_IF)],
         "ttl": [sso(u, ip, socket.IP_MULTICAST_TTL, 5), gso(u, ip, socket.IP_MULTICAST_TTL),
                 sso(u, ip, socket.IP_MULTICAST_TTL, 256)],
         "loop": [sso(u, ip, socket.IP_MULTICAST_LOOP, 0), gso(u, ip, socket.IP_MULTICAST_LOOP)]}
    u.close()
    u = udp()
    r["send_fresh"] = E(u.sendto, b"m", ("224.0.0.1", CLOSED_UDP))
    u.close()
    return r


@case
def udp_connect_broadcast():
    def name(u):
        a = A(E(u.getpeername))
        return ["BCAST", a[1]] if isinstance(a, list) and a[0] == BCAST else a
    u = udp()
    r = [E(u.connect, (BCAST, CLOSED_UDP)), name(u)]
    u.close()
    u = udp()
    u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    r += [E(u.connect, (BCAST, CLOSED_UDP)), name(u), E(u.send, b"b")]
    r.append(E(u.setsockopt, socket.SOL_SOCKET, socket.SO_BROADCAST, 0))
    r.append(E(u.send, b"b"))
    u.close()
    return r


@case
def udp_recverr_queue():
    u = udp()
    r = [sso(u, socket.IPPROTO_IP, IP_RECVERR, 1), gso(u, socket.IPPROTO_IP, IP_RECVERR),
         E(u.sendto, b"x", (PEER, CLOSED_UDP))]
    r.append(wait_until(lambda: pollev(u) & select.POLLERR, 2))
    r.append(evnames(pollev(u)))
    r.append(gso(u, socket.SOL_SOCKET, socket.SO_ERROR))
    try:
        d, anc, flags, a = u.recvmsg(10, 512, getattr(socket, "MSG_ERRQUEUE", 0x2000))
        cm = []
        for lvl, typ, data in anc:
            ee_errno, ee_origin, ee_type, ee_code = struct.unpack("IBBB", data[:7])
            off = data[16:32]
            cm.append([lvl, typ, errno.errorcode.get(ee_errno, ee_errno), ee_origin, ee_type, ee_code,
                       nip(socket.inet_ntoa(off[4:8])) if len(off) >= 8 else None])
        r.append([d.hex(), cm, bool(flags & getattr(socket, "MSG_ERRQUEUE", 0x2000)), A(a)])
    except OSError as e:
        r.append(ename(e))
    r.append(E(u.recv, 10, socket.MSG_DONTWAIT))
    r.append(E(u.sendto, b"z", (PEER, PORT)))
    u.close()
    return r


@case
def udp_timestamp_cmsg():
    u = udp()
    r = [sso(u, socket.SOL_SOCKET, SO_TIMESTAMP, 1), gso(u, socket.SOL_SOCKET, SO_TIMESTAMP)]
    u.sendto(b"t", (PEER, PORT))
    readable(u)
    d, anc, flags, a = u.recvmsg(10, 256)
    cm = []
    for lvl, typ, data in anc:
        sec, usec = struct.unpack("ll", data[:16])
        cm.append([lvl, typ, len(data), abs(sec + usec / 1e6 - time.time()) < 5])
    r += [d.decode(), cm]
    u.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 0)
    u.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_TIMESTAMPNS", 35), 1)
    u.sendto(b"n", (PEER, PORT))
    readable(u)
    d, anc, flags, a = u.recvmsg(10, 256)
    r.append([[lvl, typ, len(data)] for lvl, typ, data in anc])
    u.close()
    return r


@case
def udp_recv_flags_misc():
    u = udp()
    u.connect((PEER, PORT))
    r = [E(u.recv, 10, socket.MSG_PEEK | socket.MSG_DONTWAIT)]
    u.send(b"wait")
    readable(u)
    r.append(E(u.recv, 100, socket.MSG_WAITALL))
    u.send(b"truncated!")
    readable(u)
    buf = bytearray(4)
    r.append(E(u.recv_into, buf, 4, socket.MSG_TRUNC))
    r.append(buf.decode())
    r.append(E(u.recv, 10, socket.MSG_DONTWAIT))
    u.close()
    return r


# ---------------------------------------------------------------- ports

@case
def bind_port0_distinct():
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    r = []
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        a, b = socket.socket(socket.AF_INET, kind), socket.socket(socket.AF_INET, kind)
        a.bind(("0.0.0.0", 0))
        b.bind(("0.0.0.0", 0))
        pa, pb = a.getsockname()[1], b.getsockname()[1]
        r.append([pa != pb, lo <= pa <= hi, lo <= pb <= hi, A(a.getsockname())])
        c = socket.socket(socket.AF_INET, kind)
        r.append(E(c.bind, ("0.0.0.0", pa)))
        c.close()
        a.close()
        b.close()
    return r


@case
def reuseport_listeners():
    p = lport()
    l1, l2, l3 = socket.socket(), socket.socket(), socket.socket()
    for s in (l1, l2):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    r = [E(l1.bind, (LOCAL, p)), E(l1.listen, 8), E(l2.bind, (LOCAL, p)), E(l2.listen, 8), E(l3.bind, (LOCAL, p)),
         gso(l2, socket.SOL_SOCKET, socket.SO_REUSEPORT)]
    ctl = []
    for _ in range(4):
        c = conn(f"CONNECT {p} hold")
        ctl.append(readline(c))
        ctl.append(c)
    got = 0
    for s in (l1, l2):
        s.setblocking(False)
    end = time.monotonic() + 2
    acc = []
    while got < 4 and time.monotonic() < end:
        for s in select.select([l1, l2], [], [], 0.5)[0]:
            try:
                a, _ = s.accept()
                acc.append(a)
                got += 1
            except BlockingIOError:
                pass
    r.append([x for x in ctl if isinstance(x, str)])
    r.append(got)
    for x in acc + [c for c in ctl if not isinstance(c, str)] + [l1, l2, l3]:
        x.close()
    u1, u2 = udp(), udp()
    for u in (u1, u2):
        u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    q = lport()
    r += [E(u1.bind, (LOCAL, q)), E(u2.bind, (LOCAL, q))]
    u1.close()
    u2.close()
    return r


@case
def many_connections_300():
    socks = []
    r = {}
    try:
        for i in range(300):
            socks.append(conn("ECHO"))
        r["opened"] = len(socks)
        r["ports_distinct"] = len(set(s.getsockname()[1] for s in socks))
        for i, s in enumerate(socks):
            s.send(bytes([i % 256]))
        ok = 0
        for i, s in enumerate(socks):
            s.settimeout(2)
            if s.recv(1) == bytes([i % 256]):
                ok += 1
        r["echoed"] = ok
    finally:
        for s in socks:
            s.close()
    return r


# ---------------------------------------------------------------- flow control / threads

@case
def send_buffer_full():
    # The peer reads nothing for 3 s. Filling stops at the first EAGAIN, but
    # data still in flight is ACKed after it and frees buffer space (POLLOUT,
    # a timed send that copies) on either stack, depending on timing. So fill
    # until a pause of 150 ms frees nothing: the peer's window is then closed
    # and the state is the same on both stacks.
    s = conn("SLEEP 3000")
    s.setblocking(False)
    total, err, settled = 0, None, False
    chunk = b"\0" * 65536
    for _ in range(8):
        before = total
        for _ in range(2000):
            try:
                total += s.send(chunk)
            except BlockingIOError as e:
                err = ename(e)
                break
        if total == before:
            settled = True
            break
        time.sleep(0.15)
    r = [err, total > 0, settled, evnames(pollev(s, select.POLLOUT))]
    s.setblocking(True)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 100000))
    x = E(s.send, chunk)
    r.append(x if isinstance(x, str) else "int")
    r.append(wait_until(lambda: pollev(s, select.POLLOUT) & select.POLLOUT, 5))
    s.close()
    return r


@case
def send_after_peer_shutwr():
    t = tag()
    s = conn("SHUTWR", t)
    r = [wait_until(lambda: pollev(s) & POLLRDHUP, 3), E(s.recv, 10), E(s.sendall, pattern(1000)),
         E(s.shutdown, socket.SHUT_WR), peer_result(t)]
    s.close()
    return r


def _in_thread(fn):
    out = []
    th = threading.Thread(target=lambda: out.append(E(fn)), daemon=True)
    th.start()
    return th, out


@case
def shutdown_wakes_blocked_recv():
    s = conn("DRAIN")
    th, out = _in_thread(lambda: s.recv(10))
    time.sleep(0.1)
    r = [th.is_alive(), E(s.shutdown, socket.SHUT_RD)]
    th.join(2)
    r += [th.is_alive(), out]
    s.close()
    return r


@case
def shutdown_wakes_blocked_accept():
    ls = listener()
    th, out = _in_thread(lambda: ls.accept())
    time.sleep(0.1)
    r = [th.is_alive(), E(ls.shutdown, socket.SHUT_RDWR)]
    th.join(2)
    r += [th.is_alive(), out]
    ls.close()
    return r


@case
def self_connect():
    # a program connecting to its own listener on its own address (the
    # stack's loopback queue under xstack, docs/shim.md)
    ls = listener()
    c = socket.socket()
    c.settimeout(1)
    r = [E(c.connect, (LOCAL, ls.getsockname()[1]))]
    if r[0] is None:
        a, addr = ls.accept()
        c.sendall(b"self")
        r += [A(addr), E(a.recv, 10)]
        a.close()
    c.close()
    ls.close()
    return r


# ---------------------------------------------------------------- AF_INET6
# A dual-stack AF_INET6 socket carries IPv4 through IPv4-mapped addresses
# (::ffff:a.b.c.d); xstack serves those, and moves a socket that turns to
# real IPv6 (::1, IPV6_V6ONLY) to the kernel.

MAPPED_PEER = "::ffff:" + PEER
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)
IPV6_UNICAST_HOPS = getattr(socket, "IPV6_UNICAST_HOPS", 16)


def A6(addr):
    """An AF_INET6 name as [family tag, ip, port, flowinfo, scope]."""
    if isinstance(addr, tuple) and len(addr) == 4:
        ip = addr[0]
        if ip.startswith("::ffff:"):
            ip = "::ffff:" + nip(ip[7:])
        return [ip, nport(addr[1]), addr[2], addr[3]]
    return A(addr)


@case
def inet6_dual_stack_listener():
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    r = [gso(ls, socket.SOL_SOCKET, socket.SO_DOMAIN), gso(ls, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY),
         A6(ls.getsockname()), sso(ls, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)]
    port = lport()
    ls.bind(("::", port))
    ls.listen(4)
    r.append(A6(ls.getsockname()))
    a, addr, c = accept_from_peer(ls, "hello")
    r += [A6(addr), A6(a.getsockname()), A6(a.getpeername()), gso(a, socket.SOL_SOCKET, socket.SO_DOMAIN),
          E(a.recv, 64)]
    a.sendall(b"back")
    a.close()
    c.close()
    ls.close()
    return r


@case
def inet6_connect_mapped():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(5)
    r = [E(s.connect, (MAPPED_PEER, PORT))]
    t = tag()
    s.sendall(f"{t} ADDR\n".encode())
    line = readline(s).split()
    r += [[line[0], nip(line[1]), nport(int(line[2]))] if len(line) == 3 else line,
          A6(s.getpeername()), A6(s.getsockname())[0], s.getsockname()[1] == int(line[2]) if len(line) == 3 else None]
    s.close()
    # AF_INET on a stream AF_INET6 socket: EAFNOSUPPORT (tcp_v6_connect)
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sin = struct.pack("<H", socket.AF_INET) + struct.pack(">H", PORT) + socket.inet_aton(PEER) + bytes(8 + 12)
    rc = LIBC.connect(s.fileno(), sin, len(sin))
    r.append([rc, errno.errorcode.get(ctypes.get_errno(), "0") if rc else "0"])
    s.close()
    return r


@case
def inet6_udp_mapped():
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.settimeout(3)
    port = lport()
    u.bind(("::", port))
    r = [A6(u.getsockname()), u.sendto(b"v6-mapped", (MAPPED_PEER, PORT))]
    d, frm = u.recvfrom(100)
    r += [d, A6(frm)]
    # sockaddr_in on a UDP AF_INET6 socket is taken (udpv6_sendmsg -> udp_sendmsg)
    sin = struct.pack("<H", socket.AF_INET) + struct.pack(">H", PORT) + socket.inet_aton(PEER) + bytes(8)
    r.append(LIBC.sendto(u.fileno(), b"v4-addr", 7, 0, sin, len(sin)))
    d, frm = u.recvfrom(100)
    r += [d, A6(frm)]
    r.append(E(u.connect, (MAPPED_PEER, PORT)))
    r += [A6(u.getpeername()), u.send(b"conn"), u.recv(100)]
    u.close()
    return r


@case
def inet6_address_errors():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    mapped_local = (b"\0" * 10) + b"\xff\xff" + socket.inet_aton(LOCAL)
    good = struct.pack("<H", socket.AF_INET6) + struct.pack(">H", lport()) + bytes(4) + mapped_local + bytes(4)
    r = []
    for buf, n in ((good, 23), (good[:2] + good[2:16], 16), (struct.pack("<H", socket.AF_INET) + good[2:], 28)):
        rc = LIBC.bind(s.fileno(), buf, n)
        r.append([rc, errno.errorcode.get(ctypes.get_errno(), "0") if rc else "0"])
    r.append(LIBC.bind(s.fileno(), good, 24))  # SIN6_LEN_RFC2133 is enough
    r += [A6(s.getsockname()), sso(s, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)]
    s.close()
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    r.append(E(s.bind, ("::ffff:198.18.0.77", lport())))  # nobody's address (the kernel's answer under the shim)
    s.close()
    v4 = socket.socket()
    r.append(gso(v4, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
    r.append(sso(v4, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1))
    v4.close()
    return r


@case
def inet6_options():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    r = []
    for x in (s, u):
        r += [gso(x, socket.IPPROTO_IPV6, IPV6_UNICAST_HOPS), sso(x, socket.IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9),
              gso(x, socket.IPPROTO_IPV6, IPV6_UNICAST_HOPS), sso(x, socket.IPPROTO_IPV6, IPV6_UNICAST_HOPS, 300),
              sso(x, socket.IPPROTO_IPV6, IPV6_TCLASS, 0xbb), gso(x, socket.IPPROTO_IPV6, IPV6_TCLASS),
              sso(x, socket.IPPROTO_IPV6, IPV6_TCLASS, -1), gso(x, socket.IPPROTO_IPV6, IPV6_TCLASS),
              gso(x, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1), sso(x, socket.IPPROTO_IP, socket.IP_TOS, 0x10),
              gso(x, socket.IPPROTO_IP, socket.IP_TOS), gso(x, socket.SOL_SOCKET, socket.SO_TYPE)]
    # still usable for IPv4 after all that
    r.append(E(s.connect, (MAPPED_PEER, PORT)))
    s.sendall(f"{tag()} ADDR\n".encode())
    r.append(readline(s).split()[0])
    s.close()
    u.close()
    return r


@case
def inet6_v6only_and_loopback_to_kernel():
    # IPV6_V6ONLY and ::1 are IPv6 proper: the kernel's, under the shim too
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    r = [sso(ls, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1), E(ls.bind, ("::1", 0)),
         gso(ls, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)]
    ls.listen(1)
    c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    c.settimeout(3)
    r.append(E(c.connect, ("::1", ls.getsockname()[1])))
    a, addr = ls.accept()
    c.sendall(b"lo6")
    r += [addr[0], E(a.recv, 10), A6(c.getpeername())[0]]
    a.close()
    c.close()
    ls.close()
    # a dual-stack listener and a v6-only one on the same port (redis, memcached)
    port = lport()
    d = socket.socket(socket.AF_INET)
    d.bind(("0.0.0.0", port))
    d.listen(1)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    r += [sso(v6, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1), E(v6.bind, ("::", port))]
    v6.close()
    d.close()
    return r


@case
def fd_numbers_as_kernel():
    # descriptors the shim keeps for itself (its epoll companions, the
    # engine's) sit above the program's: the program's next descriptors are
    # numbered as on Linux (wrk sizes its event loop by them)
    probe = os.open("/dev/null", os.O_RDONLY)
    os.close(probe)
    ep = select.epoll()
    s = socket.socket()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ep.register(s.fileno(), select.EPOLLIN)
    ep.register(u.fileno(), select.EPOLLIN)
    ep.poll(0)
    t = socket.socket()
    r = [x - probe for x in (ep.fileno(), s.fileno(), u.fileno(), t.fileno())]
    for x in (t, u, s, ep):
        x.close()
    return r


# ---------------------------------------------------------------- runner

class CaseTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise CaseTimeout()


def normalise(v):
    if isinstance(v, (tuple, list)):
        return [normalise(x) for x in v]
    if isinstance(v, dict):
        return {str(k): normalise(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, str):
        return v.replace(LOCAL, "LOCAL").replace(PEER, "PEER")
    if isinstance(v, float):
        return round(v, 3)
    return v


def main():
    only = set(x for x in ARGS.only.split(",") if x)
    signal.signal(signal.SIGALRM, on_alarm)
    n = bad = 0
    for fn in CASES:
        if only and fn.__name__ not in only:
            continue
        CUR[0] = fn.__name__
        n += 1
        signal.setitimer(signal.ITIMER_REAL, ARGS.budget)
        try:
            r = fn()
        except CaseTimeout:
            r = "TIMEOUT"
            bad += 1
        except Exception as e:  # noqa: BLE001 - reported, compared
            r = "X:" + type(e).__name__ + ":" + (ename(e) if isinstance(e, OSError) else str(e))
            bad += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        print(json.dumps({"case": fn.__name__, "r": normalise(r)}, sort_keys=True), flush=True)
    # which stack served the sockets: an xstack socket's number is an eventfd
    # (docs/shim.md), which the un-interposed fstat sees
    probe = socket.socket()
    backend = "kernel" if stat.S_ISSOCK(os.fstat(probe.fileno()).st_mode) else "xstack"
    probe.close()
    print(json.dumps({"summary": {"cases": n, "errors": bad, "backend": backend}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
