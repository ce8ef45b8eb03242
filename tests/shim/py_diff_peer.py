#!/usr/bin/env python3
"""The kernel peer of tests/shim/test_py_diff.sh (lab namespace b): plain
Linux sockets, used by tests/shim/py_diff.py.

    py_diff_peer.py HOST PORT SECONDS

TCP HOST:PORT: every connection starts with one line "TAG CMD ARGS..."; TAG
names the connection (results are kept under it), CMD is one of
  ECHO                  echo until EOF, then close
  CLOSE                 close at once (FIN)
  RST                   close with SO_LINGER {1, 0} (RST)
  SEND N                send N pattern bytes, then drain
  SENDCLOSE N           send N pattern bytes, then close
  SENDSPLIT N1 MS N2    send N1 bytes, MS ms later N2 more, then drain
  SHUTWR                shutdown(SHUT_WR), then drain
  DRAIN                 drain
  LATESEND              drain to EOF, send "late", then record "rst" if the
                        client answers with a RST within 1.5 s, else "none"
  HOLDEOF MS            drain, then keep the connection MS ms before closing
  HASH                  read to EOF, answer "hash COUNT SHA256", close
  LINES                 send "line1\\nline2\\npartial", close
  ADDR                  answer "addr IP PORT" (the client as seen), drain
  CONNECT PORT MODE     connect to the client's IP:PORT (MODE hold: keep it
                        open and drain it; hello: send "hello" then drain;
                        close: close at once; rst: abort at once with RST);
                        answer "ok" or "err ERRNAME"
  UDPFROM SPORT DPORT HEX  send the datagram HEX from HOST:SPORT to the
                        client's IP:DPORT; answer "ok"
  RESULT OTHERTAG MS    wait up to MS for OTHERTAG's drain result; answer it
  UDPSEEN N MS          bind a UDP socket (IP_RECVTTL, IP_RECVTOS) on HOST:0,
                        answer "port P", read up to N datagrams for MS ms,
                        answer "seen TTL/TOS/LEN ..." (or "seen none")
  SENDOOB               send "ab", then "c" with MSG_OOB, then drain
  RECVOOB MS            wait up to MS for urgent data; answer "oob HEX" or
                        "oob none", then drain
  SLEEP MS              read nothing for MS ms, then drain
"drain" reads (discarding) until EOF, reset or 20 s, and records
"eof COUNT" | "reset COUNT" | "open COUNT" under TAG.
UDP HOST:PORT echoes every datagram (including empty ones).
Prints "listening" when ready; exits after SECONDS in any case.
"""
import errno
import hashlib
import os
import select
import socket
import struct
import sys
import threading
import time

results = {}
cond = threading.Condition()
keep = []  # sockets kept open on purpose
HOST = [""]
ECHO_UDP = [None]  # the UDP echo socket (UDPFROM from PORT sends with it)


def pattern(n):
    base = bytes((i * 7 + 3) % 251 for i in range(251))
    return (base * (n // 251 + 1))[:n]


def readline(c, limit=512):
    out = bytearray()
    while len(out) < limit:
        b = c.recv(1)
        if not b or b == b"\n":
            break
        out += b
    return out.decode(errors="replace")


def record(tag, value):
    with cond:
        results[tag] = value
        cond.notify_all()


def drain(c, tag, seconds=20, hash_=False):
    end = time.monotonic() + seconds
    n = 0
    h = hashlib.sha256()
    state = "open"
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        c.settimeout(left)
        try:
            b = c.recv(262144)
        except socket.timeout:
            break
        except ConnectionResetError:
            state = "reset"
            break
        except OSError as e:
            state = "error " + errno.errorcode.get(e.errno, str(e.errno))
            break
        if not b:
            state = "eof"
            break
        n += len(b)
        if hash_:
            h.update(b)
    record(tag, f"{state} {n}")
    if hash_:
        return n, h.hexdigest()
    return f"{state} {n}"



def send_line(c, s):
    try:
        c.sendall((s + "\n").encode())
    except OSError:
        pass


def handle(c):
    try:
        c.settimeout(10)
        line = readline(c)
        c.settimeout(None)
    except OSError:
        c.close()
        return
    f = line.split()
    if len(f) < 2:
        c.close()
        return
    tag, op, a = f[0], f[1], f[2:]
    try:
        if op == "ECHO":
            n = 0
            c.settimeout(20)
            state = "open"
            while True:
                try:
                    b = c.recv(65536)
                except ConnectionResetError:
                    state = "reset"
                    break
                except socket.timeout:
                    break
                if not b:
                    state = "eof"
                    break
                n += len(b)
                try:
                    c.sendall(b)
                except OSError:
                    state = "reset"
                    break
            record(tag, f"{state} {n}")
            c.close()
        elif op == "CLOSE":
            c.close()
        elif op == "RST":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        elif op == "SEND":
            c.sendall(pattern(int(a[0])))
            drain(c, tag)
            c.close()
        elif op == "SENDCLOSE":
            c.sendall(pattern(int(a[0])))
            c.close()
        elif op == "SENDSPLIT":
            c.sendall(pattern(int(a[0])))
            time.sleep(int(a[1]) / 1000.0)
            c.sendall(pattern(int(a[2])))
            drain(c, tag)
            c.close()
        elif op == "SHUTWR":
            c.shutdown(socket.SHUT_WR)
            drain(c, tag)
            c.close()
        elif op == "DRAIN":
            drain(c, tag)
            c.close()
        elif op == "LATESEND":
            # after the client's FIN, send data and see whether it answers RST
            state = drain(c, tag + ".drain", seconds=5)
            c.sendall(b"late")
            p = select.poll()
            p.register(c, select.POLLERR)
            got = p.poll(1500)
            record(tag, ("rst" if got else "none") + f" (after {state})")
            c.close()
        elif op == "HOLDEOF":
            drain(c, tag)
            time.sleep(int(a[0]) / 1000.0)
            c.close()
        elif op == "HASH":
            n, h = drain(c, tag, hash_=True)
            send_line(c, f"hash {n} {h}")
            c.close()
        elif op == "LINES":
            c.sendall(b"line1\nline2\npartial")
            c.close()
        elif op == "ADDR":
            ip, port = c.getpeername()[:2]
            send_line(c, f"addr {ip} {port}")
            drain(c, tag)
            c.close()
        elif op == "CONNECT":
            ip = c.getpeername()[0]
            o = socket.socket()
            o.settimeout(5)
            try:
                o.connect((ip, int(a[0])))
            except OSError as e:
                send_line(c, "err " + (errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__))
                o.close()
                drain(c, tag)
                c.close()
                return
            mode = a[1] if len(a) > 1 else "hold"
            if mode == "close":
                o.close()
            elif mode == "rst":
                o.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                o.close()
            elif mode == "hello":
                o.sendall(b"hello")
            send_line(c, "ok")
            if mode not in ("close", "rst"):
                threading.Thread(target=lambda: (drain(o, tag + ".out"), o.close()), daemon=True).start()
            drain(c, tag)
            c.close()
        elif op == "UDPFROM":
            ip = c.getpeername()[0]
            data = bytes.fromhex(a[2]) if len(a) > 2 else b""
            if int(a[0]) == ECHO_UDP[0].getsockname()[1]:
                ECHO_UDP[0].sendto(data, (ip, int(a[1])))
            else:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                u.bind((HOST[0], int(a[0])))
                u.sendto(data, (ip, int(a[1])))
                u.close()
            send_line(c, "ok")
            c.close()
        elif op == "UDPSEEN":
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12), 1)
            u.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTOS", 13), 1)
            u.bind((HOST[0], 0))
            send_line(c, f"port {u.getsockname()[1]}")
            seen = []
            end = time.monotonic() + int(a[1]) / 1000.0
            while len(seen) < int(a[0]):
                left = end - time.monotonic()
                if left <= 0 or not select.select([u], [], [], left)[0]:
                    break
                d, anc, _, _ = u.recvmsg(65536, 256)
                ttl = tos = -1
                for lvl, typ, data in anc:
                    if typ == getattr(socket, "IP_TTL", 2):
                        ttl = struct.unpack("i", data[:4])[0]
                    elif typ == getattr(socket, "IP_TOS", 1):
                        tos = data[0]
                seen.append(f"{ttl}/{tos:#x}/{len(d)}")
            u.close()
            send_line(c, "seen " + (" ".join(seen) or "none"))
            drain(c, tag, seconds=3)
            c.close()
        elif op == "SENDOOB":
            c.sendall(b"ab")
            c.send(b"c", socket.MSG_OOB)
            drain(c, tag)
            c.close()
        elif op == "RECVOOB":
            p = select.poll()
            p.register(c, select.POLLPRI)
            got = "none"
            if p.poll(int(a[0])):
                try:
                    got = c.recv(1, socket.MSG_OOB).hex()
                except OSError as e:
                    got = "err " + errno.errorcode.get(e.errno, str(e.errno))
            send_line(c, f"oob {got}")
            drain(c, tag)
            c.close()
        elif op == "SLEEP":
            time.sleep(int(a[0]) / 1000.0)
            drain(c, tag)
            c.close()
        elif op == "RESULT":
            with cond:
                cond.wait_for(lambda: a[0] in results, timeout=int(a[1]) / 1000.0)
                r = results.get(a[0], "timeout")
            send_line(c, r)
            c.close()
        else:
            send_line(c, f"error unknown {op}")
            c.close()
    except OSError as e:
        print(f"{tag} {op}: {e!r}", file=sys.stderr, flush=True)
        try:
            c.close()
        except OSError:
            pass


def udp_echo(u):
    while True:
        try:
            d, addr = u.recvfrom(65536)
            u.sendto(d, addr)
        except OSError as e:
            print(f"udp echo: {e!r}", file=sys.stderr, flush=True)


def main():
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    HOST[0] = host
    threading.Timer(seconds, lambda: os._exit(3)).start()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((host, port))
    ECHO_UDP[0] = u
    threading.Thread(target=udp_echo, args=(u,), daemon=True).start()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(128)
    print("listening", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
