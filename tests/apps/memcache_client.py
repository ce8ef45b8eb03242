#!/usr/bin/env python3
"""Plain-socket memcached text-protocol client for tests/apps/test_memcached.sh.

memcache_client.py HOST PORT [--threads T] [--keys K] [--tag TAG]

T threads, each on its own TCP connection, each `set`s K keys with distinct
pseudo-random values (1 B .. 20 KiB), then `get`s them back one by one and
with one multi-key `get`, comparing every value; then a fresh connection reads
every key of every thread. Prints "ok T threads x K keys, N bytes" and exits
0 only if every value matched.
"""
import argparse
import hashlib
import socket
import sys
import threading


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=20)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by server")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def set(self, key, value):
        self.s.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value))
        line = self._line()
        if line != b"STORED":
            raise ValueError("set %r: %r" % (key, line))

    def get_many(self, keys):
        self.s.sendall(b"get " + b" ".join(keys) + b"\r\n")
        out = {}
        while True:
            line = self._line()
            if line == b"END":
                return out
            parts = line.split()
            if len(parts) != 4 or parts[0] != b"VALUE":
                raise ValueError("get: unexpected %r" % line)
            data = self._exact(int(parts[3]) + 2)
            if data[-2:] != b"\r\n":
                raise ValueError("get %r: value not followed by CRLF" % parts[1])
            out[parts[1]] = data[:-2]

    def close(self):
        self.s.close()


def value_for(tag, t, i):
    size = 1 + (int.from_bytes(hashlib.sha256(b"%s/%d/%d" % (tag, t, i)).digest()[:4], "big") % 20480)
    seed = hashlib.sha256(b"v/%s/%d/%d" % (tag, t, i)).digest()
    return (seed * (size // 32 + 1))[:size].replace(b"\r", b"r").replace(b"\n", b"n")


def keys_for(tag, t, n):
    return [b"%s:t%d:k%d" % (tag, t, i) for i in range(n)]


def worker(host, port, tag, t, n, errors, counts):
    try:
        c = Conn(host, port)
        keys = keys_for(tag, t, n)
        total = 0
        for i, k in enumerate(keys):
            v = value_for(tag, t, i)
            c.set(k, v)
            total += len(v)
        for i, k in enumerate(keys):
            got = c.get_many([k]).get(k)
            if got != value_for(tag, t, i):
                raise ValueError("get %r: wrong value (%s bytes)" % (k, None if got is None else len(got)))
        for start in range(0, n, 50):
            got = c.get_many(keys[start:start + 50])
            for i in range(start, min(n, start + 50)):
                if got.get(keys[i]) != value_for(tag, t, i):
                    raise ValueError("multi-get %r: wrong value" % keys[i])
        c.close()
        counts[t] = total
    except Exception as e:  # reported by main
        errors.append("thread %d: %s: %s" % (t, type(e).__name__, e))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--keys", type=int, default=200)
    ap.add_argument("--tag", default="xs")
    a = ap.parse_args()
    tag = a.tag.encode()
    errors, counts = [], {}
    ths = [threading.Thread(target=worker, args=(a.host, a.port, tag, t, a.keys, errors, counts))
           for t in range(a.threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(120)
    if any(th.is_alive() for th in ths):
        errors.append("a thread did not finish within 120 s")
    if not errors:
        try:
            c = Conn(a.host, a.port)
            for t in range(a.threads):
                keys = keys_for(tag, t, a.keys)
                for start in range(0, a.keys, 50):
                    got = c.get_many(keys[start:start + 50])
                    for i in range(start, min(a.keys, start + 50)):
                        if got.get(keys[i]) != value_for(tag, t, i):
                            raise ValueError("fresh connection: %r wrong" % keys[i])
            c.close()
        except Exception as e:
            errors.append("fresh connection: %s: %s" % (type(e).__name__, e))
    if errors:
        for e in errors:
            print("error:", e, file=sys.stderr)
        sys.exit(1)
    print("ok %d threads x %d keys, %d bytes" % (a.threads, a.keys, sum(counts.values())))


if __name__ == "__main__":
    main()
