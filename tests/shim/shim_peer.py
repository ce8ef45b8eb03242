#!/usr/bin/env python3
"""The kernel peer of tests/shim/test_shim.sh (run in the lab's namespace b):
plain Linux sockets, driven by shim_conformance over a control connection.

    shim_peer.py HOST PORT SECONDS

Every connection to HOST:PORT starts with one line:
  CTL            a control connection: then one command per line, each
                 answered by one line
  DATA NAME      a data connection, registered under NAME (the peer reads
                 nothing more from it unless a command says so)

Commands (NAME waits up to 5 s for its DATA connection to be registered):
  SEND NAME N            send N pattern bytes                    -> ok
  SENDHEX NAME HEX       send the bytes HEX spells                -> ok
  SENDLATER NAME MS N    send N pattern bytes MS ms from now     -> ok (at once)
  SHUTWR NAME            shutdown(SHUT_WR)                       -> ok
  CLOSE NAME             close                                   -> ok
  READ NAME N MS         read exactly N bytes within MS ms       -> data HEX | short COUNT HEX
  EOF NAME MS            read (discarding) until EOF, up to MS   -> eof COUNT | open COUNT | reset COUNT
  HASH NAME N MS         read N bytes (or to EOF) within MS      -> hash COUNT SHA256HEX
  HASHBG NAME N MS       HASH in the background (the program may
                         block sending meanwhile)                -> ok (at once)
  RESULT NAME MS         wait up to MS for HASHBG's answer       -> its answer | error timeout
  ADDR NAME              the program's side, as the peer sees it -> addr IP PORT
  DIAL NAME IP PORT      connect to the program (a listener of its
                         own), registered as NAME                 -> ok
  UDPECHO PORT           echo UDP datagrams on PORT (same host)  -> ok
  QUIT                   exit 0                                  -> ok
Prints "listening" when ready; exits after SECONDS in any case.
"""
import hashlib
import os
import socket
import sys
import threading
import time

conns = {}
results = {}
cond = threading.Condition()


def pattern(n):
    return bytes((i * 7 + 3) % 251 for i in range(n))


def readline(c, limit=256):
    out = bytearray()
    while len(out) < limit:
        b = c.recv(1)
        if not b:
            break
        if b == b"\n":
            break
        out += b
    return out.decode(errors="replace")


def lookup(name):
    with cond:
        cond.wait_for(lambda: name in conns, timeout=5)
        return conns.get(name)


HOST = [""]  # the address the peer listens on (main sets it)


def read_until(c, n, ms):
    """Reads up to n bytes (n < 0: until EOF) within ms; returns (data, eof, reset)."""
    end = time.monotonic() + ms / 1000.0
    data = bytearray()
    while n < 0 or len(data) < n:
        left = end - time.monotonic()
        if left <= 0:
            return data, False, False
        c.settimeout(left)
        try:
            want = 65536 if n < 0 else min(65536, n - len(data))
            b = c.recv(want)
        except socket.timeout:
            return data, False, False
        except ConnectionResetError:
            return data, False, True
        if not b:
            return data, True, False
        data += b
    return data, False, False


def command(line):
    f = line.split()
    if not f:
        return "error empty"
    op, args = f[0], f[1:]
    if op == "QUIT":
        return "quit"
    if op == "UDPECHO":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((HOST[0], int(args[0])))

        def echo():
            while True:
                d, a = u.recvfrom(65536)
                u.sendto(d, a)

        threading.Thread(target=echo, daemon=True).start()
        return "ok"
    if op == "DIAL":
        d = socket.create_connection((args[1], int(args[2])), timeout=5)
        d.settimeout(None)
        with cond:
            conns[args[0]] = d
            cond.notify_all()
        return "ok"
    name = args[0] if args else ""
    c = lookup(name)
    if c is None:
        return f"error no connection {name}"
    if op == "SEND":
        c.settimeout(10)
        c.sendall(pattern(int(args[1])))
        return "ok"
    if op == "SENDHEX":
        c.settimeout(10)
        c.sendall(bytes.fromhex(args[1]))
        return "ok"
    if op == "SENDLATER":
        ms, n = int(args[1]), int(args[2])

        def later():
            time.sleep(ms / 1000.0)
            try:
                c.settimeout(10)
                c.sendall(pattern(n))
            except OSError as e:
                print(f"SENDLATER {name}: {e!r}", file=sys.stderr, flush=True)

        threading.Thread(target=later, daemon=True).start()
        return "ok"
    if op == "SHUTWR":
        c.shutdown(socket.SHUT_WR)
        return "ok"
    if op == "CLOSE":
        c.close()
        with cond:
            conns.pop(name, None)
        return "ok"
    if op == "READ":
        data, _, _ = read_until(c, int(args[1]), int(args[2]))
        if len(data) == int(args[1]):
            return f"data {data.hex()}"
        return f"short {len(data)} {data.hex()}"
    if op == "EOF":
        data, eof, reset = read_until(c, -1, int(args[1]))
        return f"{'eof' if eof else 'reset' if reset else 'open'} {len(data)}"
    if op == "HASH":
        data, _, _ = read_until(c, int(args[1]), int(args[2]))
        return f"hash {len(data)} {hashlib.sha256(data).hexdigest()}"
    if op == "HASHBG":
        n, ms = int(args[1]), int(args[2])

        def bg():
            data, _, _ = read_until(c, n, ms)
            with cond:
                results[name] = f"hash {len(data)} {hashlib.sha256(data).hexdigest()}"
                cond.notify_all()

        with cond:
            results.pop(name, None)
        threading.Thread(target=bg, daemon=True).start()
        return "ok"
    if op == "RESULT":
        with cond:
            cond.wait_for(lambda: name in results, timeout=int(args[1]) / 1000.0)
            return results.pop(name, "error timeout")
    if op == "ADDR":
        ip, port = c.getpeername()[:2]
        return f"addr {ip} {port}"
    return f"error unknown command {op}"


def serve_ctl(c):
    while True:
        try:
            line = readline(c)
        except OSError:
            return
        if not line:
            return
        try:
            reply = command(line)
        except OSError as e:
            reply = f"error {e!r}".replace("\n", " ")
        if reply == "quit":
            c.sendall(b"ok\n")
            os._exit(0)
        c.sendall((reply + "\n").encode())


def handle(c):
    try:
        c.settimeout(10)
        first = readline(c)
        c.settimeout(None)
    except OSError:
        c.close()
        return
    if first == "CTL":
        serve_ctl(c)
        c.close()
    elif first.startswith("DATA "):
        with cond:
            conns[first[5:].strip()] = c
            cond.notify_all()
    else:
        print(f"bad first line {first!r}", file=sys.stderr, flush=True)
        c.close()


def main():
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    HOST[0] = host
    threading.Timer(seconds, lambda: os._exit(3)).start()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(64)
    print("listening", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
