#!/usr/bin/env python3
"""netem-like delay / loss / reordering in userspace, via NFQUEUE.

Used by tools/xstack-lab when the kernel has no sch_netem (CONFIG_NET_SCH_NETEM
unset, no loadable modules). It runs inside the lab's router namespace; the lab
adds `iptables -t mangle -A POSTROUTING -o <router egress> -j NFQUEUE` rules so
every packet leaving the router (both directions) is queued here, and this
program issues each packet's verdict later (delay), never (loss: NF_DROP), or
out of order (reorder). Pure Python, no bindings: it speaks nfnetlink_queue
over a raw netlink socket.

Supported netem subset:
  delay TIME [JITTER]          uniform jitter in [TIME-JITTER, TIME+JITTER]
  loss [random] PCT            independent per packet (correlation ignored)
  reorder PCT [CORR]           PCT of packets are sent at once (needs delay),
                               the rest are delayed, as netem does (gap 1)
  limit N                      packets held at most (default 10000); excess dropped
Times: us/usec, ms/msec, s/sec; a bare number is microseconds (as tc).
Percentages: "1%" or "1" (both mean one percent, as tc).

Usage: impair.py --queue N [--maxlen N] [--ready FILE] -- NETEM-ARGS...
       impair.py --check -- NETEM-ARGS...     (validate only)
SIGTERM/SIGINT: exit (held packets are dropped by the kernel when the queue goes).
"""
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NLMSG_DONE = 3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_DROP = 0
NF_ACCEPT = 1


class SpecError(Exception):
    pass


def parse_time_us(s):
    units = (("usec", 1), ("us", 1), ("msec", 1000), ("ms", 1000), ("sec", 1e6), ("s", 1e6))
    for suf, mul in units:
        if s.endswith(suf):
            num = s[: -len(suf)]
            break
    else:
        num, mul = s, 1
    try:
        v = float(num) * mul
    except ValueError:
        raise SpecError("bad time %r (use e.g. 5ms, 500us)" % s)
    if v < 0:
        raise SpecError("negative time %r" % s)
    return v


def is_num(s):
    try:
        float(s.rstrip("%"))
        return True
    except ValueError:
        return False


def parse_pct(s):
    try:
        v = float(s.rstrip("%"))
    except ValueError:
        raise SpecError("bad percentage %r (use e.g. 1%%)" % s)
    if not 0 <= v <= 100:
        raise SpecError("percentage out of range: %r" % s)
    return v / 100.0


def parse_spec(args):
    spec = {"delay_us": 0.0, "jitter_us": 0.0, "loss": 0.0, "reorder": 0.0, "limit": 10000}
    i = 0
    n = len(args)
    while i < n:
        a = args[i]
        if a in ("delay", "latency"):
            if i + 1 >= n:
                raise SpecError("delay needs a time")
            spec["delay_us"] = parse_time_us(args[i + 1])
            i += 2
            if i < n and args[i][:1].isdigit():
                spec["jitter_us"] = parse_time_us(args[i])
                i += 1
                if i < n and is_num(args[i]):
                    i += 1  # correlation: accepted, ignored
        elif a in ("loss", "drop"):
            i += 1
            if i < n and args[i] == "random":
                i += 1
            if i >= n:
                raise SpecError("loss needs a percentage")
            spec["loss"] = parse_pct(args[i])
            i += 1
            if i < n and is_num(args[i]):
                i += 1
        elif a == "reorder":
            if i + 1 >= n:
                raise SpecError("reorder needs a percentage")
            spec["reorder"] = parse_pct(args[i + 1])
            i += 2
            if i < n and is_num(args[i]):
                i += 1
        elif a == "limit":
            if i + 1 >= n or not args[i + 1].isdigit():
                raise SpecError("limit needs a packet count")
            spec["limit"] = int(args[i + 1])
            i += 2
        else:
            raise SpecError(
                "netem option %r is not supported by the nfqueue fallback "
                "(supported: delay, loss, reorder, limit)" % a)
    if spec["reorder"] > 0 and spec["delay_us"] <= 0:
        raise SpecError("reorder needs a delay (as in netem)")
    if spec["jitter_us"] > spec["delay_us"]:
        spec["jitter_us"] = spec["delay_us"]
    return spec


def nlmsg(mtype, flags, seq, queue, payload):
    nfgen = struct.pack("BBH", socket.AF_UNSPEC, 0, socket.htons(queue))
    body = nfgen + payload
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | mtype, flags, seq, 0) + body


def nla(atype, data):
    ln = 4 + len(data)
    return struct.pack("=HH", ln, atype) + data + b"\0" * ((4 - ln % 4) % 4)


def config(sock, queue, payload, seq):
    sock.send(nlmsg(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, queue, payload))
    data = sock.recv(65536)
    ln, mtype = struct.unpack_from("=IH", data, 0)
    if mtype == NLMSG_ERROR:
        err = struct.unpack_from("=i", data, 16)[0]
        if err:
            raise OSError(-err, "nfqueue config: " + os.strerror(-err))


def main(argv):
    queue = 0
    maxlen = 8192
    ready = None
    check = False
    if "--" in argv:
        k = argv.index("--")
        opts, spec_args = argv[:k], argv[k + 1:]
    else:
        opts, spec_args = argv, []
    i = 0
    while i < len(opts):
        if opts[i] == "--queue":
            queue = int(opts[i + 1]); i += 2
        elif opts[i] == "--maxlen":
            maxlen = int(opts[i + 1]); i += 2
        elif opts[i] == "--ready":
            ready = opts[i + 1]; i += 2
        elif opts[i] == "--check":
            check = True; i += 1
        elif opts[i] in ("-h", "--help"):
            print(__doc__); return 0
        else:
            print("impair.py: unknown option %r" % opts[i], file=sys.stderr); return 2
    try:
        spec = parse_spec(spec_args)
    except SpecError as e:
        print("impair.py: %s" % e, file=sys.stderr)
        return 2
    if check:
        return 0

    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((0, 0))
    config(sock, queue, nla(NFQA_CFG_CMD, struct.pack("=BBH", NFQNL_CFG_CMD_BIND, 0, 0)), 1)
    config(sock, queue, nla(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META) + b"\0\0\0"), 2)
    config(sock, queue, nla(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", maxlen)), 3)
    sock.setblocking(False)

    stats = {"seen": 0, "lost": 0, "reordered": 0, "overlimit": 0, "sent": 0}
    stop = []

    def on_signal(signum, frame):
        # Raise: Python retries an interrupted select() (PEP 475) if the handler returns.
        stop.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, lambda s, f: print("stats %s" % stats, flush=True))

    if ready:
        with open(ready, "w") as f:
            f.write("%d\n" % os.getpid())
    print("impair: queue %d spec %s" % (queue, spec), flush=True)

    try:
        loop(sock, queue, spec, stats)
    except KeyboardInterrupt:
        pass
    print("impair: exit, stats %s" % stats, flush=True)
    return 0


def loop(sock, queue, spec, stats):
    heap = []  # (due, seq, packet_id)
    seq = 0
    delay = spec["delay_us"] / 1e6
    jitter = spec["jitter_us"] / 1e6
    rnd = random.Random()

    def verdict(pid, v):
        sock.send(nlmsg(NFQNL_MSG_VERDICT, NLM_F_REQUEST, 0, queue,
                        nla(NFQA_VERDICT_HDR, struct.pack(">II", v, pid))))

    while True:
        timeout = None
        if heap:
            timeout = max(0.0, heap[0][0] - time.monotonic())
        try:
            r, _, _ = select.select([sock], [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        if r:
            while True:
                try:
                    data = sock.recv(1 << 16)
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno == 105:  # ENOBUFS: kernel dropped notifications
                        print("impair: ENOBUFS (queue overrun)", file=sys.stderr, flush=True)
                        continue
                    raise
                off = 0
                while off + 16 <= len(data):
                    ln, mtype = struct.unpack_from("=IH", data, off)
                    if ln < 16:
                        break
                    if mtype == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET):
                        a = off + 20
                        end = off + ln
                        pid = None
                        while a + 4 <= end:
                            alen, atype = struct.unpack_from("=HH", data, a)
                            if alen < 4:
                                break
                            if (atype & 0x3FFF) == NFQA_PACKET_HDR:
                                pid = struct.unpack_from(">I", data, a + 4)[0]
                                break
                            a += (alen + 3) & ~3
                        if pid is not None:
                            stats["seen"] += 1
                            if spec["loss"] and rnd.random() < spec["loss"]:
                                stats["lost"] += 1
                                verdict(pid, NF_DROP)
                            elif len(heap) >= spec["limit"]:
                                stats["overlimit"] += 1
                                verdict(pid, NF_DROP)
                            elif delay <= 0 or (spec["reorder"] and rnd.random() < spec["reorder"]):
                                if delay > 0:
                                    stats["reordered"] += 1
                                stats["sent"] += 1
                                verdict(pid, NF_ACCEPT)
                            else:
                                d = delay
                                if jitter:
                                    d += rnd.uniform(-jitter, jitter)
                                seq += 1
                                heapq.heappush(heap, (now + d, seq, pid))
                    off += (ln + 3) & ~3
        now = time.monotonic()
        while heap and heap[0][0] <= now:
            _, _, pid = heapq.heappop(heap)
            stats["sent"] += 1
            verdict(pid, NF_ACCEPT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
