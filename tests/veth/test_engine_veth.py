#!/usr/bin/env python3
"""veth tests of the xstack engine (ctest label `veth`).

    test_engine_veth.py CASE --peer PATH/xstack-peer --lab PATH/tools/xstack-lab

Each CASE builds its own lab (tools/xstack-lab, a unique pid-based name), runs
xstack-peer (the engine on AF_XDP) in namespace a against kernel sockets
(tests/veth/kernel_peer.py) in namespace b, and always tears the lab down and
kills every process it started, also on failure, timeout or SIGTERM.

Cases: tcp_server_1g tcp_client_1g router_netem_server router_netem_client
closed_port_rst udp_both_ways ping_and_arp shared_ip_coexist sigkill_recovers
idle_interrupt multiqueue.

Exit 0 = pass, 1 = fail (what was seen is printed), 77 = skipped (not root or
no `ip netns`; with CI=true that is a failure instead).
"""
import argparse
import atexit
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL_PEER = os.path.join(HERE, "kernel_peer.py")

IP_A = "198.18.0.1"          # kernel address of namespace a
IP_B_FLAT = "198.18.0.2"     # namespace b, flat lab
IP_B_ROUTED = "198.18.1.2"   # namespace b, router lab
IP_X = "198.18.0.3"          # xstack's dedicated address (no kernel has it)
GW_A = "198.18.0.254"        # router, a side
GIB = 1 << 30
MIB = 1 << 20

PEER = None  # path of xstack-peer
LAB = None   # path of tools/xstack-lab


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def log(msg):
    print(msg, flush=True)


# ---- processes -------------------------------------------------------------

PROCS = []  # every Proc started, killed at exit


class Proc:
    """A child in its own process group; stdout/stderr collected by threads,
    each line with the monotonic time it arrived."""

    def __init__(self, name, argv, stdin=False):
        self.name = name
        self.argv = argv
        self.lines = []      # (time, line) of stdout
        self.err_lines = []  # stderr lines
        self.cond = threading.Condition()
        self.p = subprocess.Popen(
            argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.pid = self.p.pid
        PROCS.append(self)
        self.threads = [threading.Thread(target=self._read, args=(self.p.stdout, self.lines), daemon=True),
                        threading.Thread(target=self._read, args=(self.p.stderr, self.err_lines), daemon=True)]
        for t in self.threads:
            t.start()

    def _read(self, f, into):
        for raw in iter(f.readline, b""):
            with self.cond:
                into.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def out(self):
        with self.cond:
            return "\n".join(l for _, l in self.lines)

    def err(self):
        with self.cond:
            return "\n".join(l for _, l in self.err_lines)

    def describe(self):
        rc = self.p.poll()
        return (f"[{self.name}] {' '.join(self.argv)}\n  exit: {'running' if rc is None else rc}\n"
                f"  stdout: {self.out()!r}\n  stderr: {self.err()!r}")

    def wait_for(self, pattern, timeout, stream="out"):
        """Waits until a line matches `pattern`; returns (time, match).
        Fails if the process exits first or the timeout passes."""
        rx = re.compile(pattern)
        src = self.lines if stream == "out" else self.err_lines
        end = time.monotonic() + timeout
        with self.cond:
            seen = 0
            while True:
                for t, line in src[seen:]:
                    m = rx.search(line)
                    if m:
                        return t, m
                seen = len(src)
                if self.p.poll() is not None and not any(th.is_alive() for th in self.threads):
                    raise Failure(f"{self.name} exited before printing /{pattern}/:\n{self.describe()}")
                left = end - time.monotonic()
                if left <= 0:
                    raise Failure(f"{self.name}: no /{pattern}/ within {timeout} s:\n{self.describe()}")
                self.cond.wait(min(left, 0.1))

    def send_line(self, text="go"):
        self.p.stdin.write((text + "\n").encode())
        self.p.stdin.flush()

    def finish(self, timeout):
        """Waits for the exit (kills the group on timeout); returns the exit code."""
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure(f"{self.name} did not finish within {timeout} s (killed):\n{self.describe()}")
        for t in self.threads:
            t.join(5)
        return self.p.returncode

    def expect_ok(self, timeout):
        rc = self.finish(timeout)
        check(rc == 0, f"{self.name} failed:\n{self.describe()}")
        return self.out()

    def signal_group(self, sig):
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.p.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        for t in self.threads:
            t.join(5)
        return self.p.returncode

    def kill(self):
        self.signal_group(signal.SIGKILL)  # the whole group, also after the leader exited
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            pass


def kill_all():
    for p in PROCS:
        if p.p.poll() is None:
            p.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + 3
    for p in PROCS:
        try:
            p.p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        p.signal_group(signal.SIGKILL)
    for p in PROCS:
        try:
            p.p.wait(5)
        except subprocess.TimeoutExpired:
            print(f"warning: {p.name} (pid {p.pid}) survived SIGKILL", file=sys.stderr)


def run(argv, timeout=30, ok=True):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if ok and r.returncode != 0:
        raise Failure(f"command failed ({r.returncode}): {' '.join(argv)}\n  stdout: {r.stdout!r}\n"
                      f"  stderr: {r.stderr!r}")
    return r


# ---- the lab ---------------------------------------------------------------

LABS = []


class Lab:
    def __init__(self, tag, router=False, netem=None, queues=1):
        self.name = f"xe{os.getpid()}{tag}"
        check(re.fullmatch(r"[a-z0-9]{1,12}", self.name), f"bad lab name {self.name}")
        argv = [LAB, "up", "--name", self.name, "--queues", str(queues)]
        if router:
            argv.append("--router")
        if netem:
            argv += ["--netem", netem]
        LABS.append(self)
        run(argv, timeout=120)
        env = {}
        for line in run([LAB, "env", "--name", self.name]).stdout.splitlines():
            k, _, v = line.partition("=")
            env[k] = v
        self.ns_a, self.ns_b, self.ns_r = env["XSL_NS_A"], env["XSL_NS_B"], env["XSL_NS_R"]
        self.if_a, self.if_b = env["XSL_IF_A"], env["XSL_IF_B"]
        self.ip_b = env["XSL_IP_B"]
        check(env["XSL_IP_DEDICATED"] == IP_X and env["XSL_IP_A"] == IP_A, f"unexpected lab addresses: {env}")
        check(self.ip_b == (IP_B_ROUTED if router else IP_B_FLAT), f"unexpected XSL_IP_B {self.ip_b}")
        self.netem_backend = None
        if netem:
            try:
                with open(f"/run/xstack-lab/{self.name}/netem_backend") as f:
                    self.netem_backend = f.read().strip()
            except OSError:
                self.netem_backend = "?"
        log(f"lab {self.name} up ({'router' if router else 'flat'}"
            f"{', netem ' + repr(netem) + ' via ' + str(self.netem_backend) if netem else ''})")

    def down(self):
        r = subprocess.run([LAB, "down", "--name", self.name], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            print(f"warning: lab down {self.name}: {r.stderr.strip()}", file=sys.stderr)

    def ns(self, which):
        return {"a": self.ns_a, "b": self.ns_b, "r": self.ns_r}[which]

    def start(self, name, which, argv, stdin=False):
        return Proc(name, [LAB, "exec", "--name", self.name, which, "--"] + argv, stdin=stdin)

    def kpeer(self, name, which, *args, stdin=False):
        return self.start(name, which, ["python3", "-u", KERNEL_PEER] + [str(a) for a in args], stdin=stdin)

    def xpeer(self, name, mode, *args, addr=f"{IP_X}/24"):
        return self.start(name, "a", [PEER, mode, "--if", self.if_a, "--addr", addr] + [str(a) for a in args])

    def serve(self, *args, addr=f"{IP_X}/24", seconds=300):
        p = self.xpeer("xstack serve", "serve", "--seconds", seconds, *args, addr=addr)
        p.wait_for(r"^ready$", 20)
        return p

    def mac_a(self):
        out = run(["ip", "-n", self.ns_a, "link", "show", "dev", self.if_a]).stdout
        m = re.search(r"link/ether ([0-9a-f:]{17})", out)
        check(m, f"no MAC in `ip link show {self.if_a}`: {out!r}")
        return m.group(1)

    def xdp_attached(self):
        out = run(["ip", "-n", self.ns_a, "link", "show", "dev", self.if_a]).stdout
        return re.search(r"prog/xdp|\sxdp(generic|drv|offload)?\s", out) is not None, out


def cleanup():
    kill_all()
    while LABS:
        LABS.pop().down()


def stopped(p, what):
    """Stops an xstack-peer serve (SIGTERM) and checks it exits cleanly."""
    rc = p.stop(15)
    check(rc == 0, f"{what} did not exit cleanly on SIGTERM:\n{p.describe()}")
    stats = [l for l in p.err().splitlines() if "stats" in l]
    if stats:
        log(f"  {stats[-1].strip()}")


def mbps(nbytes, secs):
    return nbytes / secs / 1e6


# ---- cases -----------------------------------------------------------------

def case_tcp_server_1g():
    lab = Lab("s")
    srv = lab.serve("--tcp-port", 5001)
    t0 = time.monotonic()
    cli = lab.kpeer("kernel tcp-client", "b", "tcp-client", IP_X, 5001, GIB)
    out = cli.expect_ok(280)
    secs = time.monotonic() - t0
    check(f"ok {GIB} bytes echoed" in out, f"kernel client did not confirm the echo: {out!r}")
    log(f"  {out.strip()}")
    log(f"tcp_server_1g: 1 GiB each way in {secs:.2f} s, {mbps(GIB, secs):.1f} MB/s each way "
        f"(kernel client -> xstack echo server)")
    stopped(srv, "xstack serve")


def xstack_client_against_kernel(lab, server_ip, nbytes, timeout, gw=None):
    srv = lab.kpeer("kernel tcp-echo-server", "b", "tcp-echo-server", server_ip, 5001)
    srv.wait_for(r"^listening$", 20)
    args = ["--connect", f"{server_ip}:5001", "--bytes", nbytes]
    if gw:
        args = ["--gw", gw] + args
    t0 = time.monotonic()
    cli = lab.xpeer("xstack tcp-echo-client", "tcp-echo-client", *args)
    try:
        out = cli.expect_ok(timeout)
    except Failure as e:
        srv.stop(2)
        raise Failure(f"{e}\n{srv.describe()}")
    secs = time.monotonic() - t0
    check(re.search(rf"^ok {nbytes} bytes each way", out, re.M), f"xstack client did not confirm: {out!r}")
    srv.expect_ok(30)
    log(f"  {out.strip()}")
    stats = [l for l in cli.err().splitlines() if "stats" in l]
    if stats:
        log(f"  {stats[-1].strip()}")
    return secs


def case_tcp_client_1g():
    lab = Lab("c")
    secs = xstack_client_against_kernel(lab, IP_B_FLAT, GIB, 280)
    log(f"tcp_client_1g: 1 GiB each way in {secs:.2f} s (process start included), "
        f"{mbps(GIB, secs):.1f} MB/s each way (xstack client -> kernel echo server)")


NETEM = "delay 5ms loss 1% reorder 25%"
NETEM_BYTES = 64 * MIB
NETEM_TIMEOUT = 240


def case_router_netem_server():
    lab = Lab("n", router=True, netem=NETEM)
    srv = lab.serve("--tcp-port", 5001, "--gw", GW_A)
    t0 = time.monotonic()
    cli = lab.kpeer("kernel tcp-client", "b", "tcp-client", IP_X, 5001, NETEM_BYTES)
    out = cli.expect_ok(NETEM_TIMEOUT)
    secs = time.monotonic() - t0
    check(f"ok {NETEM_BYTES} bytes echoed" in out, f"kernel client did not confirm the echo: {out!r}")
    log(f"router_netem_server: 64 MiB each way through '{NETEM}' ({lab.netem_backend}) in {secs:.2f} s, "
        f"{mbps(NETEM_BYTES, secs):.2f} MB/s each way")
    stopped(srv, "xstack serve")


def case_router_netem_client():
    lab = Lab("m", router=True, netem=NETEM)
    secs = xstack_client_against_kernel(lab, IP_B_ROUTED, NETEM_BYTES, NETEM_TIMEOUT, gw=GW_A)
    log(f"router_netem_client: 64 MiB each way through '{NETEM}' ({lab.netem_backend}) in {secs:.2f} s, "
        f"{mbps(NETEM_BYTES, secs):.2f} MB/s each way")


def case_closed_port_rst():
    lab = Lab("r")
    srv = lab.serve("--tcp-port", 5001, "--udp-port", 5002)
    # Controls: the open ports answer, so the engine is up and sees traffic.
    lab.kpeer("kernel tcp-client", "b", "tcp-client", IP_X, 5001, 65536).expect_ok(30)
    lab.kpeer("kernel udp-echo-check", "b", "udp-echo-check", IP_X, 5002, 5).expect_ok(30)
    out = lab.kpeer("kernel tcp-expect-refused", "b", "tcp-expect-refused", IP_X, 5009).expect_ok(30)
    log(f"  TCP to closed port 5009: {out.strip()} (ECONNREFUSED: xstack sent RST)")
    out = lab.kpeer("kernel udp-expect-unreachable", "b", "udp-expect-unreachable", IP_X, 5010).expect_ok(30)
    log(f"  UDP to closed port 5010: {out.strip()} (ECONNREFUSED: xstack sent ICMP port unreachable)")
    check(srv.p.poll() is None, f"xstack serve died:\n{srv.describe()}")
    stopped(srv, "xstack serve")


def case_udp_both_ways():
    lab = Lab("u")
    n = 300
    # kernel client -> xstack UDP echo server
    srv = lab.serve("--udp-port", 5002)
    out = lab.kpeer("kernel udp-echo-check", "b", "udp-echo-check", IP_X, 5002, n).expect_ok(60)
    check(f"ok {n} datagrams" in out, f"kernel UDP client: {out!r}")
    log(f"  kernel -> xstack: {out.strip()}")
    stopped(srv, "xstack serve")
    # xstack client -> kernel UDP echo server
    ksrv = lab.kpeer("kernel udp-echo-server", "b", "udp-echo-server", IP_B_FLAT, 5002, 60)
    ksrv.wait_for(r"^listening$", 20)
    cli = lab.xpeer("xstack udp-echo-client", "udp-echo-client", "--connect", f"{IP_B_FLAT}:5002", "--count", n)
    out = cli.expect_ok(60)
    check(f"ok {n} datagrams echoed" in out, f"xstack UDP client: {out!r}")
    log(f"  xstack -> kernel: {out.strip()}")
    ksrv.stop(5)
    m = re.search(r"echoed (\d+) datagrams", ksrv.out())
    check(m and int(m.group(1)) >= n, f"kernel UDP server echoed fewer than {n}:\n{ksrv.describe()}")
    log(f"  kernel server: {m.group(0)}")


def neigh_mac(lab, ip):
    out = run(["ip", "-n", lab.ns_b, "neigh", "show", ip]).stdout
    m = re.search(r"lladdr ([0-9a-f:]{17})", out)
    return (m.group(1) if m else None), out.strip()


def ping(lab, which, ip, count, wait=1):
    r = run(["ip", "netns", "exec", lab.ns(which), "ping", "-n", "-c", str(count), "-i", "0.2", "-W",
             str(wait), ip], timeout=count * (wait + 1) + 10, ok=False)
    m = re.search(r"(\d+) received", r.stdout)
    return (int(m.group(1)) if m else 0), r.stdout + r.stderr


def start_tcpdump(lab, which, iface, argv):
    p = lab.start(f"tcpdump {iface}", which, ["tcpdump", "-i", iface] + argv)
    p.wait_for(r"listening on", 20, stream="err")
    return p


def case_ping_and_arp():
    lab = Lab("p")
    mac_a = lab.mac_a()
    mac, seen = neigh_mac(lab, IP_X)
    check(mac is None, f"ns-b already has a neighbour entry for {IP_X} before the test: {seen!r}")
    dump = start_tcpdump(lab, "b", lab.if_b, ["-nn", "-t", "-e", "-l", "arp"])

    # kernel -> xstack: ARP and ICMP echo answered by the engine
    srv = lab.serve("--tcp-port", 5001)
    got, out = ping(lab, "b", IP_X, 3, wait=2)
    check(got == 3, f"ping {IP_X} from ns-b: {got}/3 replies:\n{out}")
    log(f"  ping {IP_X} from ns-b: 3/3 answered")
    mac, seen = neigh_mac(lab, IP_X)
    check(mac == mac_a, f"ns-b neighbour entry for {IP_X} is {seen!r}, want lladdr {mac_a} (MAC of {lab.if_a})")
    log(f"  ns-b learnt {IP_X} at {mac} = MAC of {lab.if_a} (ARP reply from xstack)")
    stopped(srv, "xstack serve")
    # control: with the engine gone, nobody answers for the dedicated address
    got, out = ping(lab, "b", IP_X, 2, wait=1)
    check(got == 0, f"{IP_X} still answers ping with xstack stopped ({got} replies): the lab, not xstack, "
          f"answered?\n{out}")
    log(f"  control: with xstack stopped, {IP_X} answers no ping")

    # xstack -> kernel: the engine resolves 198.18.0.2 itself
    run(["ip", "-n", lab.ns_b, "neigh", "flush", "all"])
    mac, seen = neigh_mac(lab, IP_X)
    check(mac is None, f"neighbour entry for {IP_X} survived the flush: {seen!r}")
    xstack_client_against_kernel(lab, IP_B_FLAT, MIB, 60)
    mac, seen = neigh_mac(lab, IP_X)
    check(mac == mac_a, f"after the xstack client, ns-b's entry for {IP_X} is {seen!r}, want {mac_a}")
    time.sleep(0.3)
    dump.stop(5)
    lines = dump.out().splitlines()
    reply = [l for l in lines if re.search(rf"^{mac_a} > .*Reply {re.escape(IP_X)} is-at {mac_a}", l)]
    request = [l for l in lines if re.search(
        rf"^{mac_a} > ff:ff:ff:ff:ff:ff.*Request who-has {re.escape(IP_B_FLAT)} tell {re.escape(IP_X)}", l)]
    check(reply, f"no ARP reply '{IP_X} is-at {mac_a}' from xstack captured in ns-b; capture:\n" + "\n".join(lines))
    check(request, f"no broadcast ARP request 'who-has {IP_B_FLAT} tell {IP_X}' from {mac_a} captured; "
          f"capture:\n" + "\n".join(lines))
    log(f"  captured: {reply[0]}")
    log(f"  captured: {request[0]}")
    log(f"  ns-b then holds {IP_X} at {mac} (learnt from xstack's request)")


def case_shared_ip_coexist():
    lab = Lab("h")
    text = f"kernel-server-{os.getpid()}-on-8080"
    web = lab.kpeer("kernel server ns-a:8080", "a", "tcp-serve-once", IP_A, 8080, text)
    web.wait_for(r"^listening$", 20)
    srv = lab.serve("--tcp-port", 5001, "--shared-ip", addr=f"{IP_A}/24")
    # An echo connection through xstack stays open while ns-b also fetches from
    # the kernel server and pings the kernel: all on 198.18.0.1 at once.
    sess = lab.kpeer("kernel echo session ->xstack:5001", "b", "tcp-echo-session", IP_A, 5001, stdin=True)
    sess.wait_for(r"^round 1 ok$", 20)
    fetch = lab.kpeer("kernel fetch ->8080", "b", "tcp-fetch", IP_A, 8080)
    pinger = lab.start("ping 198.18.0.1", "b", ["ping", "-n", "-c", "5", "-i", "0.2", "-W", "2", IP_A])
    bulk = lab.kpeer("kernel tcp-client ->xstack:5001", "b", "tcp-client", IP_A, 5001, 32 * MIB)
    out = fetch.expect_ok(20)
    check(out.strip() == text, f"kernel server on 8080 returned {out.strip()!r}, want {text!r}")
    web.expect_ok(10)
    log(f"  ns-b fetched {text!r} from the kernel server on {IP_A}:8080")
    pinger.finish(20)
    m = re.search(r"(\d+) received", pinger.out())
    check(m and int(m.group(1)) == 5, f"ping {IP_A} (kernel) while xstack runs:\n{pinger.describe()}")
    log(f"  ping {IP_A} from ns-b: 5/5 answered by the kernel")
    out = bulk.expect_ok(120)
    log(f"  concurrent bulk through xstack:5001: {out.strip()}")
    check(sess.p.poll() is None, f"echo session ended early:\n{sess.describe()}")
    sess.send_line()
    sess.expect_ok(20)
    log("  echo session through xstack:5001 held open across all of it: both rounds ok")
    # Nobody listens on 8080 any more: the kernel (not xstack) refuses.
    lab.kpeer("kernel tcp-expect-refused", "b", "tcp-expect-refused", IP_A, 8080).expect_ok(20)
    check(srv.p.poll() is None, f"xstack serve died:\n{srv.describe()}")
    stopped(srv, "xstack serve (shared IP)")


def case_sigkill_recovers():
    lab = Lab("k")
    srv = lab.serve("--tcp-port", 5001, "--shared-ip", addr=f"{IP_A}/24")
    out = lab.kpeer("kernel tcp-client (before)", "b", "tcp-client", IP_A, 5001, MIB).expect_ok(30)
    log(f"  before the kill, xstack owns {IP_A}:5001: {out.strip()}")
    attached, out = lab.xdp_attached()
    check(attached, f"no XDP program on {lab.if_a} while xstack runs:\n{out}")
    # Interpreters started now, their socket work released after the kill.
    listener = lab.kpeer("kernel listener ns-a:5001", "a", "after-stdin", "tcp-echo-server", IP_A, 5001,
                         stdin=True)
    client = lab.kpeer("kernel tcp-client (after)", "b", "after-stdin", "tcp-client", IP_A, 5001, 4096,
                       stdin=True)
    time.sleep(1.0)  # both interpreters have started and block on stdin
    check(listener.p.poll() is None and client.p.poll() is None,
          f"helpers died early:\n{listener.describe()}\n{client.describe()}")

    pid = find_peer_pid(srv.pid)
    t_kill = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    listener.send_line()
    client_started = False
    t_listen = t_ok = t_gone = None
    last_link = ""
    deadline = t_kill + 10
    while time.monotonic() < deadline and (t_gone is None or t_ok is None):
        if t_gone is None:
            attached, last_link = lab.xdp_attached()
            if not attached:
                t_gone = time.monotonic() - t_kill
        if t_listen is None:
            hit = [t for t, l in listener.lines if l == "listening"]
            if hit:
                t_listen = hit[0] - t_kill
            elif listener.p.poll() is not None:
                raise Failure(f"kernel listener on {IP_A}:5001 failed after the kill:\n{listener.describe()}")
        if t_listen is not None and t_gone is not None and not client_started:
            client.send_line()
            client_started = True
        if client_started and t_ok is None:
            rc = client.p.poll()
            if rc is not None:
                client.finish(5)
                check(rc == 0, f"connection to the kernel listener on {IP_A}:5001 failed:\n{client.describe()}"
                      f"\n{listener.describe()}")
                t_ok = time.monotonic() - t_kill
        time.sleep(0.005)
    srv.finish(5)
    check(pid != srv.pid or srv.p.returncode == -signal.SIGKILL,
          f"xstack serve was not killed by SIGKILL:\n{srv.describe()}")
    check(t_gone is not None, f"XDP program still on {lab.if_a} 10 s after SIGKILL:\n{last_link}")
    check(t_ok is not None, f"no connection to the kernel listener on {IP_A}:5001 within 10 s of the kill:\n"
          f"{listener.describe()}\n{client.describe()}")
    listener.expect_ok(10)
    log(f"sigkill_recovers: after SIGKILL: XDP detached at {t_gone * 1000:.0f} ms, kernel listening on "
        f"{IP_A}:5001 at {t_listen * 1000:.0f} ms, ns-b connection echoed at {t_ok * 1000:.0f} ms")
    check(t_gone <= 1.0, f"XDP program detached only {t_gone:.3f} s after SIGKILL (limit 1 s)")
    check(t_ok <= 1.0, f"the kernel took over {IP_A}:5001 only {t_ok:.3f} s after SIGKILL (limit 1 s)")


def proc_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (all threads of the process)


def find_peer_pid(root_pid, timeout=10):
    """The xstack-peer process: root_pid itself after the exec chain of
    `xstack-lab exec` / `ip netns exec`, or else a descendant."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        children = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    s = f.read()
                ppid = int(s[s.rindex(")") + 2:].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError):
                continue
        todo = [root_pid]
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv0 = f.read().split(b"\0")[0].decode(errors="replace")
            except OSError:
                argv0 = ""
            if os.path.basename(argv0) == "xstack-peer":  # (exe may read "... (deleted)" after a rebuild)
                return pid
            todo += children.get(pid, [])
        time.sleep(0.02)
    raise Failure(f"no xstack-peer process under pid {root_pid}")


def read_pcap(path):
    """TCP/IPv4 over Ethernet from a pcap file: list of dicts."""
    with open(path, "rb") as f:
        data = f.read()
    check(len(data) >= 24, f"pcap {path} has no header ({len(data)} bytes)")
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xa1b2c3d4, 0xa1b23c4d):
        endian = "<"
    else:
        endian = ">"
        magic = struct.unpack(">I", data[:4])[0]
    check(magic in (0xa1b2c3d4, 0xa1b23c4d), f"not a pcap file: magic {data[:4].hex()}")
    tsdiv = 1e9 if magic == 0xa1b23c4d else 1e6
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    check(linktype == 1, f"pcap link type {linktype}, want Ethernet")
    pkts, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != 6 or len(ip) < ihl + 20:
            continue
        tcp = ip[ihl:]
        sport, dport, seq, ack, offflags = struct.unpack("!HHIIH", tcp[:14])
        doff = (offflags >> 12) * 4
        pkts.append(dict(t=sec + frac / tsdiv, src=socket_ntoa(ip[12:16]), dst=socket_ntoa(ip[16:20]),
                         sport=sport, dport=dport, seq=seq, ack=ack, flags=offflags & 0x3f,
                         plen=total - ihl - doff))
    return pkts


def socket_ntoa(b):
    return ".".join(str(x) for x in b)


FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10


def fmt_pkt(p, t0):
    names = "".join(c for bit, c in ((SYN, "S"), (FIN, "F"), (RST, "R"), (ACK, ".")) if p["flags"] & bit)
    return (f"{p['t'] - t0:9.4f} {p['src']}:{p['sport']} > {p['dst']}:{p['dport']} [{names}] "
            f"seq {p['seq']} ack {p['ack']} len {p['plen']}")


def case_idle_interrupt():
    lab = Lab("i")
    seconds = 10
    hold = lab.kpeer("kernel tcp-hold-server", "b", "tcp-hold-server", IP_B_FLAT, 5001, 60)
    hold.wait_for(r"^listening$", 20)
    tmp = tempfile.mkdtemp(prefix="xs-veth-idle-")
    atexit.register(shutil.rmtree, tmp, True)
    pcap = os.path.join(tmp, "idle.pcap")
    dump = start_tcpdump(lab, "b", lab.if_b, ["-nn", "-tt", "-U", "-w", pcap, f"tcp and host {IP_X}"])
    idle = lab.xpeer("xstack idle", "idle", "--mode", "interrupt", "--connect", f"{IP_B_FLAT}:5001",
                     "--keepalive", "1,1,20", "--seconds", seconds)
    pid = find_peer_pid(idle.pid)
    hold.wait_for(r"^accepted", 20)
    time.sleep(0.2)  # connect() has returned: the idle window has begun
    clk = os.sysconf("SC_CLK_TCK")
    try:
        ticks0, w0 = proc_cpu_ticks(pid), time.monotonic()
        time.sleep(seconds - 1.5)
        ticks1, w1 = proc_cpu_ticks(pid), time.monotonic()
    except (OSError, ValueError) as e:
        raise Failure(f"could not read /proc/{pid}/stat during the idle window ({e}):\n{idle.describe()}")
    out = idle.expect_ok(30)
    hold.expect_ok(20)
    time.sleep(0.3)
    dump.stop(5)

    m = re.search(r"idle ([\d.]+) s, cpu ([\d.]+) s \(([\d.]+)%\)", out)
    check(m, f"xstack idle printed no CPU report: {out!r}")
    reported = float(m.group(3))
    measured = 100.0 * (ticks1 - ticks0) / clk / (w1 - w0)
    log(f"  xstack idle reports: {m.group(0)}")
    log(f"  /proc/{pid}/stat: {ticks1 - ticks0} ticks ({clk}/s) over {w1 - w0:.2f} s = {measured:.3f}% CPU")

    pkts = read_pcap(pcap)
    check(pkts, f"tcpdump captured nothing:\n{dump.describe()}")
    t0 = pkts[0]["t"]
    trace = "\n".join(fmt_pkt(p, t0) for p in pkts)
    probes, last_ack = [], None
    for p in pkts:
        if p["src"] == IP_B_FLAT and p["flags"] & ACK:
            last_ack = p["ack"]
        elif (p["src"] == IP_X and p["dport"] == 5001 and last_ack is not None
              and p["flags"] & (SYN | FIN | RST) == 0 and p["flags"] & ACK and p["plen"] <= 1
              and p["seq"] == (last_ack - 1) & 0xffffffff):
            probes.append(p["t"])
    gaps = [b - a for a, b in zip(probes, probes[1:])]
    log(f"  {len(probes)} keepalive probes from {IP_X}; intervals (s): " + " ".join(f"{g:.3f}" for g in gaps))
    check(reported < 1.0, f"xstack reports {reported}% CPU while idle (limit 1%): {out!r}")
    check(measured < 1.0, f"/proc/{pid}/stat shows {measured:.3f}% CPU while idle (limit 1%)")
    check(len(probes) >= 8, f"only {len(probes)} keepalive probes in the {seconds} s window (want >= 8); "
          f"capture (s since first packet):\n{trace}")
    late = [f"{g:.3f}" for g in gaps if abs(g - 1.0) > 0.1]
    check(not late, f"keepalive probe intervals off 1.0 s +- 0.1 s: {late}; capture:\n{trace}")


def rx_queue_xdp_packets(lab):
    """Per-queue XDP packet counts of IF_A (ethtool -S on veth)."""
    out = run(["ip", "netns", "exec", lab.ns_a, "ethtool", "-S", lab.if_a]).stdout
    return {int(q): int(n) for q, n in re.findall(r"rx_queue_(\d+)_xdp_packets:\s*(\d+)", out)}


def case_multiqueue():
    """Two RX queues, one AF_XDP socket each: connections whose frames arrive
    on either queue are all served (the kernel peer picks its TX queue, and so
    our RX queue, by flow hash)."""
    lab = Lab("q", queues=2)
    srv = lab.serve("--tcp-port", 5001, "--queues", 2)
    # The kernel peer picks each flow's TX queue (our RX queue) by hash, so a
    # batch of flows can all land on one queue (1 in 128 for 8 flows): add
    # batches, up to 64 flows, until both queues have carried some.
    flows = 0
    per_queue = {}
    for batch in range(8):
        clients = [lab.kpeer(f"kernel tcp-client {batch}.{i}", "b", "tcp-client", IP_X, 5001, 2 * MIB)
                   for i in range(8)]
        for c in clients:
            out = c.expect_ok(120)
            check(f"ok {2 * MIB} bytes echoed" in out, f"a client was not echoed: {out!r}")
        flows += len(clients)
        per_queue = rx_queue_xdp_packets(lab)
        if all(per_queue.get(q, 0) > 100 for q in (0, 1)):
            break
    log(f"multiqueue: {flows} connections x 2 MiB each way; XDP packets per RX queue {per_queue}")
    check(len(per_queue) >= 2 and all(per_queue.get(q, 0) > 100 for q in (0, 1)),
          f"both RX queues should have carried connections: {per_queue}")
    stopped(srv, "xstack serve")


CASES = {
    "multiqueue": case_multiqueue,
    "tcp_server_1g": case_tcp_server_1g,
    "tcp_client_1g": case_tcp_client_1g,
    "router_netem_server": case_router_netem_server,
    "router_netem_client": case_router_netem_client,
    "closed_port_rst": case_closed_port_rst,
    "udp_both_ways": case_udp_both_ways,
    "ping_and_arp": case_ping_and_arp,
    "shared_ip_coexist": case_shared_ip_coexist,
    "sigkill_recovers": case_sigkill_recovers,
    "idle_interrupt": case_idle_interrupt,
}


# ---- main ------------------------------------------------------------------

def cannot_run(why):
    if os.environ.get("CI") == "true":
        print(f"FAIL: CI=true but {why}: the veth engine tests cannot run", file=sys.stderr)
        sys.exit(1)
    print(f"SKIP: {why}", file=sys.stderr)
    sys.exit(77)


def prerequisites():
    if os.geteuid() != 0:
        cannot_run("not root")
    for c in ("ip", "ethtool", "tc", "ping", "tcpdump"):
        if shutil.which(c) is None:
            cannot_run(f"command '{c}' missing (apt-get install -y iproute2 ethtool iputils-ping tcpdump)")
    probe = f"xsprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        cannot_run(f"'ip netns add' fails: {r.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    for what, path in (("--peer", PEER), ("--lab", LAB)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            print(f"FAIL: {what} {path} is not an executable file", file=sys.stderr)
            sys.exit(1)


def on_signal(signum, _frame):
    print(f"interrupted by signal {signum}: cleaning up", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


def main():
    global PEER, LAB
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--peer", required=True, help="path of xstack-peer")
    ap.add_argument("--lab", required=True, help="path of tools/xstack-lab")
    a = ap.parse_args()
    PEER, LAB = os.path.abspath(a.peer), os.path.abspath(a.lab)
    os.environ["XSL_QUIET"] = "1"
    prerequisites()
    atexit.register(cleanup)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    t0 = time.monotonic()
    try:
        CASES[a.case]()
    except Failure as e:
        print(f"FAIL veth_engine_{a.case}: {e}", flush=True)
        return 1
    except subprocess.TimeoutExpired as e:
        print(f"FAIL veth_engine_{a.case}: timed out: {e}", flush=True)
        return 1
    finally:
        cleanup()
    print(f"PASS veth_engine_{a.case} ({time.monotonic() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
