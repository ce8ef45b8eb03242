#!/usr/bin/env python3
"""The kernel side of the veth tests: plain Linux sockets, run with
`ip netns exec <ns-b> python3 kernel_peer.py MODE ...`. Exit 0 means the
check passed; anything else is printed on stderr."""
import hashlib
import socket
import sys
import threading


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
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
