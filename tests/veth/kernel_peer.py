#!/usr/bin/env python3
"""The kernel side of the veth tests: plain Linux sockets, run with
`ip netns exec <ns-b> python3 kernel_peer.py MODE ...`. Exit 0 means the
check passed; anything else is printed on stderr."""
import hashlib
import signal
import socket
import sys
import threading
import time


def pattern(n, seed):
    """Deterministic bytes, cheap to produce in chunks."""
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB
    out = bytearray()
    while len(out) < n:
        out += block[: n - len(out)]
    return bytes(out)


def tcp_client(host, port, nbytes):
    """Connects, streams nbytes while reading the echo; the echo must match."""
    data = pattern(nbytes, "client")
    s = socket.create_connection((host, port), timeout=60)
    got = hashlib.sha256()
    received = 0

    def reader():
        nonlocal received
        while True:
            b = s.recv(1 << 16)
            if not b:
                return
            got.update(b)
            received += len(b)

    t = threading.Thread(target=reader)
    t.start()
    view = memoryview(data)
    for off in range(0, len(data), 1 << 16):
        s.sendall(view[off:off + (1 << 16)])
    s.shutdown(socket.SHUT_WR)
    t.join(120)
    s.close()
    want = hashlib.sha256(data).hexdigest()
    if received != nbytes or got.hexdigest() != want:
        print(f"echo mismatch: received {received}/{nbytes}", file=sys.stderr)
        return 1
    print(f"ok {nbytes} bytes echoed, sha256 {want[:16]}")
    return 0


def tcp_echo_server(host, port):
    """Accepts one connection and echoes it until EOF (prints when listening)."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(4)
    print("listening", flush=True)
    ls.settimeout(60)
    c, _ = ls.accept()
    c.settimeout(120)
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        c.sendall(b)
    c.shutdown(socket.SHUT_WR)
    c.close()
    return 0


def tcp_expect_refused(host, port):
    try:
        socket.create_connection((host, port), timeout=10)
    except ConnectionRefusedError:
        print("refused")
        return 0
    except OSError as e:
        print(f"wrong error: {e!r}", file=sys.stderr)
        return 1
    print("connected to a port that should be closed", file=sys.stderr)
    return 1


def udp_echo_check(host, port, count):
    """Sends datagrams and expects each echoed back."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    for i in range(count):
        msg = f"datagram {i}".encode() * (1 + i % 7)
        s.sendto(msg, (host, port))
        b, _ = s.recvfrom(65536)
        if b != msg:
            print(f"udp echo mismatch at {i}", file=sys.stderr)
            return 1
    print(f"ok {count} datagrams")
    return 0


def tcp_hold_server(host, port, seconds):
    """Accepts one connection and holds it open, reading, until the peer
    closes it or `seconds` pass (prints when listening and when accepted)."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(4)
    print("listening", flush=True)
    ls.settimeout(60)
    c, peer = ls.accept()
    print(f"accepted {peer[0]}:{peer[1]}", flush=True)
    start = time.monotonic()
    received = 0
    while True:
        left = seconds - (time.monotonic() - start)
        if left <= 0:
            break
        c.settimeout(left)
        try:
            b = c.recv(1 << 16)
        except socket.timeout:
            break
        if not b:
            break
        received += len(b)
    print(f"held {time.monotonic() - start:.2f} s, received {received} bytes", flush=True)
    c.close()
    return 0


def tcp_serve_once(host, port, text):
    """Accepts one connection, sends `text`, closes (prints when listening)."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(4)
    print("listening", flush=True)
    ls.settimeout(60)
    c, peer = ls.accept()
    c.settimeout(10)
    c.sendall(text.encode())
    c.shutdown(socket.SHUT_WR)
    c.close()
    print(f"served {peer[0]}:{peer[1]}", flush=True)
    return 0


def tcp_fetch(host, port):
    """Connects, reads until EOF and prints what it read."""
    s = socket.create_connection((host, port), timeout=10)
    data = bytearray()
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        data += b
    s.close()
    print(data.decode(errors="replace"), flush=True)
    return 0


def tcp_echo_session(host, port):
    """Connects and checks one echoed round, then waits for a line on stdin
    (the connection stays open meanwhile) and checks a second round."""
    s = socket.create_connection((host, port), timeout=10)
    for rnd in (1, 2):
        if rnd == 2:
            sys.stdin.readline()
        data = pattern(1 << 16, f"session {rnd}")
        s.sendall(data)
        got = bytearray()
        while len(got) < len(data):
            b = s.recv(1 << 16)
            if not b:
                print(f"round {rnd}: EOF after {len(got)} bytes", file=sys.stderr)
                return 1
            got += b
        if bytes(got) != data:
            print(f"round {rnd}: echo mismatch", file=sys.stderr)
            return 1
        print(f"round {rnd} ok", flush=True)
    s.shutdown(socket.SHUT_WR)
    if s.recv(1):
        print("data after the echo", file=sys.stderr)
        return 1
    s.close()
    return 0


def udp_echo_server(host, port, seconds):
    """Echoes datagrams for `seconds` or until SIGTERM (prints when bound and,
    at the end, how many it echoed)."""

    class Stop(Exception):
        pass

    def on_term(*_):
        raise Stop()

    signal.signal(signal.SIGTERM, on_term)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, port))
    print("listening", flush=True)
    end = time.monotonic() + seconds
    echoed = 0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            b, peer = s.recvfrom(65536)
        except (socket.timeout, Stop):
            break
        s.sendto(b, peer)
        echoed += 1
    print(f"echoed {echoed} datagrams", flush=True)
    return 0


def udp_expect_unreachable(host, port):
    """A connected UDP socket sends to a closed port; the ICMP port unreachable
    that comes back must surface as ECONNREFUSED on the next receive."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    s.settimeout(2)
    for attempt in range(3):
        try:
            s.send(b"anyone there?")
            b = s.recv(65536)
        except ConnectionRefusedError:
            print(f"refused (attempt {attempt + 1})")
            return 0
        except socket.timeout:
            continue
        except OSError as e:
            print(f"wrong error: {e!r}", file=sys.stderr)
            return 1
        print(f"got a reply {b!r} from a port that should be closed", file=sys.stderr)
        return 1
    print("no ICMP port unreachable within 3 attempts", file=sys.stderr)
    return 1


def main(argv):
    mode = argv[1]
    if mode == "tcp-client":
        return tcp_client(argv[2], int(argv[3]), int(argv[4]))
    if mode == "tcp-echo-server":
        return tcp_echo_server(argv[2], int(argv[3]))
    if mode == "tcp-expect-refused":
        return tcp_expect_refused(argv[2], int(argv[3]))
    if mode == "udp-echo-check":
        return udp_echo_check(argv[2], int(argv[3]), int(argv[4]))
    if mode == "tcp-hold-server":
        return tcp_hold_server(argv[2], int(argv[3]), float(argv[4]))
    if mode == "tcp-serve-once":
        return tcp_serve_once(argv[2], int(argv[3]), argv[4])
    if mode == "tcp-fetch":
        return tcp_fetch(argv[2], int(argv[3]))
    if mode == "tcp-echo-session":
        return tcp_echo_session(argv[2], int(argv[3]))
    if mode == "udp-echo-server":
        return udp_echo_server(argv[2], int(argv[3]), float(argv[4]))
    if mode == "udp-expect-unreachable":
        return udp_expect_unreachable(argv[2], int(argv[3]))
    if mode == "after-stdin":
        # Waits for a line on stdin, then runs MODE ARGS... (lets a test start
        # the interpreter early and time only the socket work).
        sys.stdin.readline()
        return main(argv[1:])
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
