#!/usr/bin/env bash
# apps test: still more unmodified programs over xstack (ctest apps_extra),
# each checking the data that went through:
#   1. apache2, event MPM: first one process (-X: a listener thread and
#      worker threads sharing one epoll set), then normally (-DFOREGROUND: a
#      parent and forked children that reach the listener through the shim).
#      curl 1 MiB (sha256), 400 one-per-connection requests with every body
#      checked, ab -n 2000 -c 8 plain and keep-alive (-k): 0 failed. Found:
#      a worker's epoll_ctl(ADD) of a keep-alive connection whose next
#      request was already there did not wake the listener thread asleep in
#      epoll_wait (ab -k -c 1 stalled); a child's response written just
#      before shutdown(SHUT_WR) (its lingering close) was overtaken by the
#      FIN (empty replies);
#   2. epoll_ctl(ADD) from one thread of a socket with data waiting, while
#      another thread sleeps in epoll_wait on the set: the sleeper wakes
#      (the bug above, directly, with and without xstack sockets in the set);
#   3. python3 asyncio: TCP echo (start_server / open_connection, 4
#      connections x 250 messages + a pipelined burst each) and UDP echo
#      (DatagramProtocol, 1000 datagrams), each as server and as client;
#   4. openssl s_server -WWW (curl -k 1 MiB, sha256) and s_server -rev
#      (300 KB of lines sent back reversed); s_client fetching 1 MiB from,
#      and sending 300 KB of lines through, a kernel s_server;
#   5. wget on xstack fetching 1 MiB from a kernel http.server;
#   6. perl IO::Socket::INET, a fork-per-connection server (answers checked)
#      and a client;
#   7. iperf3 client -P 4 and -u -R against a kernel server;
#   8. redis replication: master on xstack (it forks for the RDB), kernel
#      replica in b: keys, a 64 KiB value and a SET after the sync reach the
#      replica; the reverse (replica on xstack);
#   9. busybox httpd (fork per connection): 1 MiB (sha256), 400 requests, 8
#      at once, every body checked, and its descriptor count stays flat
#      (found: the shim handed each child its references for the other
#      children too, doubling them until EMFILE; a thread that polled an
#      xstack socket left an eventfd behind);
#  10. rsync --daemon (fork per connection) pull and push, and rsync as a
#      client; mosquitto with 500 QoS 1 messages and a 300 KB one;
#  11. OpenSSH: sshd on xstack (each connection a child that re-executes
#      sshd, which then calls closefrom: found, that closed the shim's
#      channel to the parent, and every socket option call on the connection
#      failed with EBADF), ssh reading and writing 1 MiB, scp; ssh on xstack
#      to a kernel sshd.
# XS_APPS_KERNEL_ONLY=1 runs the same with plain kernel sockets (lib.sh).
# shellcheck source=tests/apps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apps_require apache2 apache2
apps_require apache2-utils ab
apps_require curl curl
apps_require wget wget
apps_require openssl openssl
apps_require util-linux rev
apps_require perl perl
apps_require netcat-openbsd nc
apps_require iperf3 iperf3
apps_require redis-server redis-server
apps_require redis-tools redis-cli
apps_require busybox busybox
apps_require rsync rsync
apps_require mosquitto mosquitto
apps_require mosquitto-clients mosquitto_pub mosquitto_sub
apps_require openssh-server /usr/sbin/sshd
apps_require openssh-client ssh scp ssh-keygen
[[ -f /usr/lib/apache2/modules/mod_mpm_event.so ]] || cannot_run "apache2's mod_mpm_event.so missing"
apps_setup xe

mkdir -p "$TMP/www"
make_file "$TMP/www/blob" $((1 << 20))
echo "hello from xstack" >"$TMP/www/index.html"
chmod 755 "$TMP/www"
chmod 644 "$TMP/www/"*

# An HTTP/1.0 client: N requests, C at once, one connection each; every
# body must be FILE's content exactly. Prints "ok/N" and the first bad reply.
cat >"$TMP/hget.py" <<'EOF'
import socket, sys, threading
host, port, path, n, conc, want = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), open(sys.argv[6], "rb").read()
ok = [0]; bad = []; lk = threading.Lock()
def worker():
    for _ in range(n // conc):
        data = b""
        try:
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: x\r\n\r\n")
            while d := s.recv(65536):
                data += d
            s.close()
        except Exception as e:
            data += b"<%r>" % e
        good = data.startswith(b"HTTP/1.") and b" 200 " in data[:16] and data.split(b"\r\n\r\n", 1)[-1] == want
        with lk:
            ok[0] += good
            if not good and not bad: bad.append(data[:120])
ts = [threading.Thread(target=worker) for _ in range(conc)]
[t.start() for t in ts]; [t.join() for t in ts]
print("%d/%d" % (ok[0], n), *(repr(b) for b in bad))
EOF

# ab_ok LABEL FILE WANT: ab's output FILE shows WANT complete, 0 failed
ab_ok() {
  local done_n failed_n
  done_n=$(awk '/^Complete requests:/ {print $3}' "$2")
  failed_n=$(awk '/^Failed requests:/ {print $3}' "$2")
  check "$1: ${done_n:-?} of $3 complete, ${failed_n:-?} failed ($(awk '/^Requests per second/ {print $4}' "$2") req/s)" \
    test "${done_n:-0}" = "$3" -a "${failed_n:-1}" = 0
  [[ "${done_n:-0}" == "$3" && "${failed_n:-1}" == 0 ]] || show_log "$2" 30
}

# ------------------------------------------------ 1. apache2 event MPM
mkdir -p "$TMP/apache"
chmod 777 "$TMP/apache"
cat >"$TMP/httpd.conf" <<EOF
ServerRoot /etc/apache2
ServerName xs.test
Listen $IP_X:8080
PidFile $TMP/apache/httpd.pid
ErrorLog $TMP/apache/error.log
Mutex file:$TMP/apache
DefaultRuntimeDir $TMP/apache
LogLevel warn
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
User www-data
Group www-data
TypesConfig /etc/mime.types
DocumentRoot $TMP/www
DirectoryIndex index.html
<Directory $TMP/www>
  Require all granted
</Directory>
StartServers 2
ThreadsPerChild 25
MaxRequestWorkers 150
EOF
for mode in single forked; do
  if [[ $mode == single ]]; then
    echo "# 1. apache2 -X (one process, event MPM threads) on $IP_X:8080"
    bg_a "$TMP/apache.log" 90 apache2 -X -f "$TMP/httpd.conf"
  else
    echo "# 1. apache2 -DFOREGROUND (parent + forked children) on $IP_X:8080"
    bg_a "$TMP/apache.log" 90 apache2 -DFOREGROUND -f "$TMP/httpd.conf"
  fi
  srv=$BG_PID
  if wait_tcp "$IP_X" 8080 30 "$srv"; then
    warm_arp
    in_b 30 curl -sS -o "$TMP/ap.out" "http://$IP_X:8080/blob" 2>"$TMP/curl.err" || true
    check "1. $mode: curl got 1 MiB from apache, sha256 matches" same_file "$TMP/www/blob" "$TMP/ap.out"
    got=$(in_b 60 python3 "$TMP/hget.py" "$IP_X" 8080 /index.html 400 8 "$TMP/www/index.html" 2>&1 || true)
    check "1. $mode: 400 one-per-connection requests, 8 at once, bodies intact: $got" test "${got%% *}" = 400/400
    in_b 60 ab -q -n 2000 -c 8 "http://$IP_X:8080/index.html" >"$TMP/ab_c.out" 2>&1 || true
    ab_ok "1. $mode: ab -n 2000 -c 8" "$TMP/ab_c.out" 2000
    in_b 60 ab -q -k -n 2000 -c 8 "http://$IP_X:8080/index.html" >"$TMP/ab_k.out" 2>&1 || true
    ab_ok "1. $mode: ab -k -n 2000 -c 8 (keep-alive)" "$TMP/ab_k.out" 2000
    # one connection at a time: each keep-alive request is re-added to the
    # listener's epoll set by a worker while the listener sleeps
    in_b 20 ab -q -k -n 400 -c 1 "http://$IP_X:8080/index.html" >"$TMP/ab_k1.out" 2>&1 || true
    ab_ok "1. $mode: ab -k -n 400 -c 1 (keep-alive, within 20 s)" "$TMP/ab_k1.out" 400
    check "1. $mode: apache still running" running "$srv"
  else
    fail "1. $mode: apache listening"
    show_log "$TMP/apache.log"
    show_log "$TMP/apache/error.log"
  fi
  stop_bg "$srv"
done

# ------------------------------------------------ 2. epoll_ctl from another thread
echo "# 2. epoll_ctl(ADD) of a socket with data from one thread wakes another in epoll_wait"
cat >"$TMP/ep_add.py" <<'EOF'
import select, socket, sys, threading, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 7500)); l.listen(8)
print("listening", flush=True)
for variant in ("kernel fd only in the set", "an xstack socket in the set already"):
    ep = select.epoll()
    r, w = socket.socketpair()
    ep.register(r.fileno(), select.EPOLLIN)
    if variant.startswith("an"):
        ep.register(l.fileno(), select.EPOLLIN)
    c, _ = l.accept()
    if variant.startswith("an"):
        ep.poll(0)   # the listener's event, taken
    time.sleep(0.3)  # the peer's line is here now
    res = []
    th = threading.Thread(target=lambda: res.append(ep.poll(3.0)))
    th.start()
    time.sleep(0.3)  # the thread sleeps in epoll_wait
    t1 = time.monotonic()
    ep.register(c.fileno(), select.EPOLLIN)
    th.join()
    woke = time.monotonic() - t1
    got = any(fd == c.fileno() for fd, _ in res[0])
    print("%s: %s after %.3f s" % (variant, "woke" if got and woke < 1 else "NOT woken", woke), flush=True)
    c.close(); ep.close(); r.close(); w.close()
EOF
bg_a "$TMP/ep_add.log" 30 python3 "$TMP/ep_add.py" "$IP_X"
srv=$BG_PID
if wait_log "$TMP/ep_add.log" '^listening' 20; then
  warm_arp
  for i in 1 2; do
    (echo "line-$i"; sleep 2) | in_b 10 nc -n "$IP_X" 7500 >/dev/null 2>&1 || true
  done
  wait_rc "$srv"
  check "2. the sleeping thread woke (kernel fd only in the set): $(grep '^kernel' "$TMP/ep_add.log" || echo no answer)" \
    grep -q '^kernel fd only in the set: woke' "$TMP/ep_add.log"
  check "2. the sleeping thread woke (xstack socket in the set): $(grep '^an xstack' "$TMP/ep_add.log" || echo no answer)" \
    grep -q '^an xstack socket in the set already: woke' "$TMP/ep_add.log"
else
  fail "2. epoll_ctl program listening"
  show_log "$TMP/ep_add.log"
fi
stop_bg "$srv"

# ------------------------------------------------ 3. python asyncio
cat >"$TMP/aio.py" <<'EOF'
import asyncio, hashlib, sys
role, host, port, life = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
N = 1000
def msg(i):
    return hashlib.sha256(str(i).encode()).hexdigest().encode() * (1 + i % 37) + b"\n"
async def tcp_server():
    async def handle(r, w):
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.close()
    srv = await asyncio.start_server(handle, host, port, reuse_address=True)
    print("listening", flush=True)
    async with srv:
        await asyncio.sleep(life)
async def one_client(k, n):
    r, w = await asyncio.open_connection(host, port)
    ok = 0
    for i in range(n):
        m = msg(k * 100000 + i)
        w.write(m)
        await w.drain()
        ok += await r.readexactly(len(m)) == m
    burst = b"".join(msg(k * 7 + i) for i in range(200))
    w.write(burst)
    await w.drain()
    same = await r.readexactly(len(burst)) == burst
    w.close()
    await w.wait_closed()
    return ok, same
async def tcp_client():
    res = await asyncio.gather(*(one_client(k, N // 4) for k in range(4)))
    ok = sum(r[0] for r in res); bursts = sum(r[1] for r in res)
    print(f"tcp {ok}/{N} messages {bursts}/4 bursts", flush=True)
    return ok == N and bursts == 4
class Echo(asyncio.DatagramProtocol):
    def connection_made(self, t): self.t = t
    def datagram_received(self, d, a): self.t.sendto(d, a)
async def udp_server():
    t, _ = await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=(host, port))
    print("listening", flush=True)
    await asyncio.sleep(life)
    t.close()
class Client(asyncio.DatagramProtocol):
    def __init__(self): self.got = {}; self.ev = asyncio.Event()
    def datagram_received(self, d, a):
        self.got[int(d.split(b":", 1)[0])] = d
        if len(self.got) >= N: self.ev.set()
async def udp_client():
    t, p = await asyncio.get_running_loop().create_datagram_endpoint(Client, remote_addr=(host, port))
    sent = {}
    for i in range(N):
        sent[i] = b"%d:" % i + msg(i)[:64 + i % 900]
        t.sendto(sent[i])
        if i % 50 == 49:
            await asyncio.sleep(0.005)
    for _ in range(3):  # resend what is missing (UDP may drop)
        try:
            await asyncio.wait_for(p.ev.wait(), 2)
            break
        except asyncio.TimeoutError:
            for i in sent:
                if i not in p.got: t.sendto(sent[i])
    ok = sum(p.got.get(i) == d for i, d in sent.items())
    print(f"udp {ok}/{N} datagrams", flush=True)
    t.close()
    return ok == N
main = {"tcp-server": tcp_server, "tcp-client": tcp_client, "udp-server": udp_server, "udp-client": udp_client}[role]
sys.exit(0 if asyncio.run(main()) in (None, True) else 1)
EOF
for proto in tcp udp; do
  echo "# 3. asyncio $proto echo: server on $IP_X, kernel client in b"
  bg_a "$TMP/aio_s.log" 60 python3 "$TMP/aio.py" "$proto-server" "$IP_X" 7600 30
  srv=$BG_PID
  if wait_log "$TMP/aio_s.log" '^listening' 20; then
    warm_arp
    out=$(in_b 30 python3 "$TMP/aio.py" "$proto-client" "$IP_X" 7600 0 2>&1 || true)
    check "3. asyncio $proto server on xstack: $out" grep -qE '^(tcp 1000/1000 messages 4/4 bursts|udp 1000/1000 datagrams)$' <<<"$out"
  else
    fail "3. asyncio $proto server listening"
    show_log "$TMP/aio_s.log"
  fi
  stop_bg "$srv"
  echo "# 3. asyncio $proto echo: kernel server on $IP_B, client on xstack"
  bg_b "$TMP/aio_b.log" 60 python3 "$TMP/aio.py" "$proto-server" "$IP_B" 7601 30
  srv=$BG_PID
  if wait_log "$TMP/aio_b.log" '^listening' 20; then
    out=$(xs_a 30 python3 "$TMP/aio.py" "$proto-client" "$IP_B" 7601 0 2>&1 || true)
    check "3. asyncio $proto client on xstack: $out" grep -qE '^(tcp 1000/1000 messages 4/4 bursts|udp 1000/1000 datagrams)$' <<<"$out"
  else
    fail "3. asyncio $proto kernel server listening"
  fi
  stop_bg "$srv"
done

# ------------------------------------------------ 4. openssl s_server / s_client
echo "# 4. openssl s_server / s_client (TLS 1.3, throwaway self-signed certificate)"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 1 -subj /CN=xs.test 2>/dev/null
head -c 225000 /dev/urandom | base64 -w 76 >"$TMP/up.b64"   # 300 KB of lines
rev "$TMP/up.b64" >"$TMP/up.rev"
# s_server -WWW (serves files from its working directory) on xstack, curl -k from b
bg_a "$TMP/ssl_www.log" 60 bash -c "cd '$TMP/www' && exec openssl s_server -accept '$IP_X:8443' -cert '$TMP/cert.pem' -key '$TMP/key.pem' -WWW"
srv=$BG_PID
if wait_log "$TMP/ssl_www.log" '^ACCEPT' 20; then
  warm_arp
  in_b 30 curl -sSk -o "$TMP/tls.out" "https://$IP_X:8443/blob" 2>"$TMP/tls.err" || true
  check "4. curl -k got 1 MiB from s_server -WWW on xstack, sha256 matches" same_file "$TMP/www/blob" "$TMP/tls.out"
else
  fail "4. s_server -WWW listening"
  show_log "$TMP/ssl_www.log"
fi
stop_bg "$srv"
# s_server -rev on xstack: 300 KB of base64 lines from a kernel s_client,
# each line sent back reversed (s_server -quiet as a sink loses the tail of
# what it copies to stdout when the peer hangs up, kernel or not)
bg_a "$TMP/rev_s.log" 60 openssl s_server -accept "$IP_X:8444" -cert "$TMP/cert.pem" -key "$TMP/key.pem" -naccept 1 -rev
srv=$BG_PID
sleep 2   # one connection only: no probe
warm_arp
(cat "$TMP/up.b64"; sleep 2) | in_b 20 openssl s_client -connect "$IP_X:8444" -quiet 2>"$TMP/sc.err" |
  grep -v '^CONNECTION' >"$TMP/rev.out" || true
check "4. s_server -rev on xstack: 300 KB of lines from a kernel s_client came back reversed ($(fsize "$TMP/rev.out") bytes)" \
  same_file "$TMP/up.rev" "$TMP/rev.out"
stop_bg "$srv"
# s_client on xstack against kernel s_servers in b
bg_b "$TMP/ssl_b.log" 60 bash -c "cd '$TMP/www' && exec openssl s_server -accept '$IP_B:8445' -cert '$TMP/cert.pem' -key '$TMP/key.pem' -WWW"
srv=$BG_PID
if wait_log "$TMP/ssl_b.log" '^ACCEPT' 20; then
  (printf 'GET /blob HTTP/1.0\r\n\r\n'; sleep 3) | xs_a 20 openssl s_client -connect "$IP_B:8445" -quiet \
    >"$TMP/sc_get.out" 2>"$TMP/sc_get.err" || true
  python3 -c "import sys; d = open(sys.argv[1], 'rb').read(); open(sys.argv[2], 'wb').write(d.split(b'\r\n\r\n', 1)[-1])" \
    "$TMP/sc_get.out" "$TMP/sc_get.body"
  check "4. s_client on xstack fetched 1 MiB from a kernel s_server, sha256 matches" same_file "$TMP/www/blob" "$TMP/sc_get.body"
else
  fail "4. kernel s_server -WWW listening"
fi
stop_bg "$srv"
bg_b "$TMP/rev_b.log" 60 openssl s_server -accept "$IP_B:8446" -cert "$TMP/cert.pem" -key "$TMP/key.pem" -naccept 1 -rev
srv=$BG_PID
sleep 1
(cat "$TMP/up.b64"; sleep 2) | xs_a 20 openssl s_client -connect "$IP_B:8446" -quiet 2>"$TMP/sc2.err" |
  grep -v '^CONNECTION' >"$TMP/rev2.out" || true
check "4. s_client on xstack: 300 KB of lines to a kernel s_server -rev came back reversed ($(fsize "$TMP/rev2.out") bytes)" \
  same_file "$TMP/up.rev" "$TMP/rev2.out"
stop_bg "$srv"

# ------------------------------------------------ 5. wget
echo "# 5. wget on xstack from a kernel http.server on $IP_B:8090"
bg_b "$TMP/hs.log" 60 python3 -m http.server --bind "$IP_B" --directory "$TMP/www" 8090
srv=$BG_PID
if wait_tcp "$IP_B" 8090 20 "$srv"; then
  xs_a 30 wget -q -O "$TMP/wget.out" "http://$IP_B:8090/blob" 2>"$TMP/wget.err" || true
  check "5. wget got 1 MiB, sha256 matches" same_file "$TMP/www/blob" "$TMP/wget.out"
  check "5. the kernel server logged the client at $IP_X" grep -q "^$IP_X - .*GET /blob" "$TMP/hs.log"
else
  fail "5. kernel http.server listening"
fi
stop_bg "$srv"

# ------------------------------------------------ 6. perl IO::Socket::INET
cat >"$TMP/pl_srv.pl" <<'EOF'
use strict; use IO::Socket::INET; use Digest::SHA qw(sha256_hex);
$SIG{CHLD} = 'IGNORE';
my $l = IO::Socket::INET->new(LocalAddr => $ARGV[0], LocalPort => $ARGV[1], Listen => 16, ReuseAddr => 1) or die "listen: $!";
$| = 1; print "listening\n";
for (1 .. $ARGV[2]) {
  my $c = $l->accept or next;
  my $pid = fork(); die "fork: $!" unless defined $pid;
  if ($pid == 0) {
    $l->close;
    while (my $line = <$c>) {
      chomp $line;
      if ($line =~ /^BLOB (\d+)/) { srand($1); print $c join('', map { chr(int(rand(256))) } 1 .. $1); last; }
      print $c sha256_hex($line), " ", $c->peerhost, "\n";
    }
    $c->shutdown(1); close $c; exit 0;
  }
  close $c;
}
1 while wait() != -1;  # the children's sockets live in this process under xstack
EOF
cat >"$TMP/pl_cli.pl" <<'EOF'
use strict; use IO::Socket::INET; use Digest::SHA qw(sha256_hex);
my ($host, $port, $conns, $peer) = @ARGV; my ($ok, $tot) = (0, 0);
for my $k (1 .. $conns) {
  my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Timeout => 5) or die "connect: $!";
  for my $i (1 .. 200) {
    my $m = "conn $k line $i " . ('x' x ($i * 7));
    print $s "$m\n"; my $a = <$s>; $tot++;
    $ok++ if defined $a && $a eq sha256_hex($m) . " $peer\n";
  }
  close $s;
}
my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Timeout => 5) or die "connect: $!";
print $s "BLOB 1048576\n"; local $/; my $got = <$s>; close $s;
srand(1048576); my $want = join('', map { chr(int(rand(256))) } 1 .. 1048576);
print "lines $ok/$tot blob ", ((defined $got && $got eq $want) ? "ok" : "BAD"), "\n";
EOF
echo "# 6. perl fork-per-connection server on $IP_X:7700, kernel client"
bg_a "$TMP/pl_s.log" 60 perl "$TMP/pl_srv.pl" "$IP_X" 7700 5
srv=$BG_PID
if wait_log "$TMP/pl_s.log" '^listening' 20; then
  warm_arp
  out=$(in_b 30 perl "$TMP/pl_cli.pl" "$IP_X" 7700 4 "$IP_B" 2>&1 || true)
  check "6. perl server on xstack (a child per connection): $out" test "$out" = "lines 800/800 blob ok"
else
  fail "6. perl server listening"
  show_log "$TMP/pl_s.log"
fi
stop_bg "$srv"
echo "# 6. perl client on xstack, kernel perl server on $IP_B:7701"
bg_b "$TMP/pl_b.log" 60 perl "$TMP/pl_srv.pl" "$IP_B" 7701 5
srv=$BG_PID
if wait_log "$TMP/pl_b.log" '^listening' 20; then
  out=$(xs_a 30 perl "$TMP/pl_cli.pl" "$IP_B" 7701 4 "$IP_X" 2>&1 || true)
  check "6. perl client on xstack (the server saw $IP_X): $out" test "$out" = "lines 800/800 blob ok"
else
  fail "6. kernel perl server listening"
fi
stop_bg "$srv"

# ------------------------------------------------ 7. iperf3 client -P 4, -u -R
echo "# 7. iperf3 client on xstack, kernel iperf3 -s on $IP_B"
bg_b "$TMP/ip_s.log" 20 iperf3 -s -B "$IP_B" -p 5301 -1
srv=$BG_PID
sleep 1
xs_a 15 iperf3 -c "$IP_B" -p 5301 -P 4 -t 2 --json >"$TMP/ip_p4.json" 2>"$TMP/ip_p4.err" || true
out=$(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["end"]
s, r = e["sum_sent"]["bytes"], e["sum_received"]["bytes"]
ok = len(e["streams"]) == 4 and all(x["receiver"]["bytes"] > 0 for x in e["streams"]) and 0 < r <= s and r >= 0.98 * s
print("%s: 4 streams sent %d, received %d bytes" % ("ok" if ok else "BAD", s, r))' "$TMP/ip_p4.json" 2>&1 || echo "no result")
check "7. iperf3 -P 4: $out" grep -q '^ok' <<<"$out"
stop_bg "$srv"
bg_b "$TMP/ip_s2.log" 20 iperf3 -s -B "$IP_B" -p 5302 -1
srv=$BG_PID
sleep 1
xs_a 15 iperf3 -c "$IP_B" -p 5302 -u -R -b 100M -t 2 --json >"$TMP/ip_ur.json" 2>"$TMP/ip_ur.err" || true
out=$(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["end"]["sum"]
ok = s["bytes"] > 0 and s["lost_percent"] < 10
print("%s: %d bytes, %d packets, %.2f%% lost" % ("ok" if ok else "BAD", s["bytes"], s["packets"], s["lost_percent"]))' \
  "$TMP/ip_ur.json" 2>&1 || echo "no result")
check "7. iperf3 -u -R (100 Mbit/s to xstack): $out" grep -q '^ok' <<<"$out"
stop_bg "$srv"

# ------------------------------------------------ 8. redis replication
BIG=$(head -c 49152 /dev/urandom | base64 -w0)
printf '%s' "$BIG" >"$TMP/big.val"
# repl_check WHERE MASTER_RUN MASTER_IP REPLICA_RUN REPLICA_IP
repl_check() {
  local where=$1 mrun=$2 mip=$3 rrun=$4 rip=$5 i v
  for ((i = 0; i < 75; i++)); do
    v=$($rrun 5 redis-cli -h "$rip" -p 6391 INFO replication 2>/dev/null | tr -d '\r' | grep '^master_link_status:' || true)
    [[ "$v" == master_link_status:up ]] && break
    sleep 0.2
  done
  check "8. $where: replica linked ($v)" test "$v" = master_link_status:up
  v=$($rrun 10 redis-cli -h "$rip" -p 6391 DBSIZE 2>&1 || true)
  check "8. $where: the replica has the master's 2001 keys (got $v)" test "$v" = 2001
  v=$($rrun 10 redis-cli -h "$rip" -p 6391 GET big 2>/dev/null || true)
  check "8. $where: the 64 KiB value reached the replica intact" test "$v" = "$BIG"
  v=$($rrun 10 redis-cli -h "$rip" -p 6391 GET k:1234 2>&1 || true)
  check "8. $where: k:1234 on the replica = '$v'" test "$v" = v-1234
  $mrun 10 redis-cli -h "$mip" -p 6390 SET after "set-after-sync-$N" >/dev/null 2>&1 || true
  for ((i = 0; i < 25; i++)); do
    v=$($rrun 5 redis-cli -h "$rip" -p 6391 GET after 2>&1 || true)
    [[ "$v" == "set-after-sync-$N" ]] && break
    sleep 0.2
  done
  check "8. $where: a SET on the master after the sync reached the replica" test "$v" = "set-after-sync-$N"
}
fill_master() {  # fill_master RUN IP
  { for i in $(seq 1 2000); do printf 'SET k:%d v-%d\n' "$i" "$i"; done; } | $1 20 redis-cli -h "$2" -p 6390 >/dev/null 2>&1 || true
  $1 10 redis-cli -h "$2" -p 6390 -x SET big <"$TMP/big.val" >/dev/null 2>&1 || true
}
mkdir -p "$TMP/rm" "$TMP/rr"
RCOMMON=(--save '' --appendonly no --protected-mode no --repl-diskless-sync-delay 0)
echo "# 8. redis master on $IP_X:6390 (xstack), kernel replica on $IP_B:6391"
bg_a "$TMP/redis_m.log" 60 redis-server --bind "$IP_X" --port 6390 --dir "$TMP/rm" "${RCOMMON[@]}"
m=$BG_PID
if wait_tcp "$IP_X" 6390 20 "$m"; then
  warm_arp
  fill_master in_b "$IP_X"
  bg_b "$TMP/redis_r.log" 60 redis-server --bind "$IP_B" --port 6391 --dir "$TMP/rr" "${RCOMMON[@]}" --replicaof "$IP_X" 6390
  r=$BG_PID
  repl_check "master on xstack" in_b "$IP_X" in_b "$IP_B"
  grep -q 'Synchronization with replica .* succeeded' "$TMP/redis_m.log" || show_log "$TMP/redis_m.log" 15
  stop_bg "$r"
else
  fail "8. redis master on xstack listening"
  show_log "$TMP/redis_m.log"
fi
stop_bg "$m"
echo "# 8. kernel redis master on $IP_B:6390, replica on xstack $IP_X:6391"
rm -rf "$TMP/rm" "$TMP/rr"
mkdir -p "$TMP/rm" "$TMP/rr"
bg_b "$TMP/redis_m2.log" 60 redis-server --bind "$IP_B" --port 6390 --dir "$TMP/rm" "${RCOMMON[@]}"
m=$BG_PID
if wait_tcp "$IP_B" 6390 20 "$m"; then
  fill_master in_b "$IP_B"
  bg_a "$TMP/redis_r2.log" 60 redis-server --bind "$IP_X" --port 6391 --dir "$TMP/rr" "${RCOMMON[@]}" --replicaof "$IP_B" 6390
  r=$BG_PID
  if wait_tcp "$IP_X" 6391 20 "$r"; then
    warm_arp
    repl_check "replica on xstack" in_b "$IP_B" in_b "$IP_X"
  else
    fail "8. redis replica on xstack listening"
    show_log "$TMP/redis_r2.log"
  fi
  stop_bg "$r"
else
  fail "8. kernel redis master listening"
fi
stop_bg "$m"

# ------------------------------------------------ 9. busybox httpd
echo "# 9. busybox httpd (fork per connection) on $IP_X:8088"
bg_a "$TMP/bb.log" 90 busybox httpd -f -p "$IP_X:8088" -h "$TMP/www"
srv=$BG_PID
if wait_tcp "$IP_X" 8088 20 "$srv"; then
  warm_arp
  bb=$(pgrep -n -f "^busybox httpd -f -p $IP_X:8088" || true)
  fds0=$(find "/proc/$bb/fd" -mindepth 1 2>/dev/null | wc -l)
  in_b 30 curl -sS -o "$TMP/bb.out" "http://$IP_X:8088/blob" 2>"$TMP/curl.err" || true
  check "9. curl got 1 MiB from busybox httpd, sha256 matches" same_file "$TMP/www/blob" "$TMP/bb.out"
  # the peak while 8 children overlap: a few descriptors per child (the
  # parent's references for it, its channel), not a doubling per fork
  in_b 90 python3 "$TMP/hget.py" "$IP_X" 8088 /index.html 400 8 "$TMP/www/index.html" >"$TMP/bb_get.out" 2>&1 &
  getter=$!
  peak=$fds0
  while kill -0 "$getter" 2>/dev/null; do
    n=$(find "/proc/$bb/fd" -mindepth 1 2>/dev/null | wc -l)
    ((n <= peak)) || peak=$n
    sleep 0.05
  done
  wait "$getter" || true
  got=$(cat "$TMP/bb_get.out")
  check "9. 400 requests, 8 at once, a child each, bodies intact: $got" test "${got%% *}" = 400/400
  sleep 0.5
  fds1=$(find "/proc/$bb/fd" -mindepth 1 2>/dev/null | wc -l)
  check "9. busybox's descriptors: $fds0 before, at most $peak during, $fds1 after 401 connections" \
    test "$peak" -le $((fds0 + 200)) -a "$fds1" -le $((fds0 + 20))
  check "9. every child could use its connection ($(grep -c 'not usable' "$TMP/bb.log" || true) 'not usable in this child')" \
    test "$(grep -c 'not usable' "$TMP/bb.log" || true)" = 0
  grep -q 'not usable' "$TMP/bb.log" && show_log "$TMP/bb.log" 5
else
  fail "9. busybox httpd listening"
  show_log "$TMP/bb.log"
fi
stop_bg "$srv"

# ------------------------------------------------ 10. rsync daemon, mosquitto
echo "# 10. rsync --daemon on $IP_X:8730"
mkdir -p "$TMP/rs/mod" "$TMP/rs/up"
make_file "$TMP/rs/mod/big.bin" 2000000
for i in $(seq 1 30); do make_file "$TMP/rs/mod/f$i" $((i * 1000)); done
make_file "$TMP/rs/up/u.bin" 1500000
cat >"$TMP/rs/rsyncd.conf" <<EOF
reverse lookup = no
use chroot = no
[mod]
  path = $TMP/rs/mod
  read only = false
  uid = root
  gid = root
EOF
bg_a "$TMP/rs/a.log" 60 rsync --daemon --no-detach --config="$TMP/rs/rsyncd.conf" --address="$IP_X" --port=8730 \
  --log-file="$TMP/rs/rsyncd_a.log"
srv=$BG_PID
if wait_tcp "$IP_X" 8730 20 "$srv"; then
  warm_arp
  in_b 30 rsync -a "rsync://$IP_X:8730/mod/" "$TMP/rs/pull/" >"$TMP/rs/pull.log" 2>&1 || true
  check "10. rsync pull from the daemon on xstack: 31 files identical" diff -r "$TMP/rs/mod" "$TMP/rs/pull"
  in_b 30 rsync -a "$TMP/rs/up/" "rsync://$IP_X:8730/mod/upl/" >"$TMP/rs/push.log" 2>&1 || true
  check "10. rsync push to the daemon on xstack: 1.5 MB identical" same_file "$TMP/rs/up/u.bin" "$TMP/rs/mod/upl/u.bin"
  rm -rf "$TMP/rs/mod/upl"
else
  fail "10. rsync daemon listening"
  show_log "$TMP/rs/a.log"
fi
stop_bg "$srv"
bg_b "$TMP/rs/b.log" 60 rsync --daemon --no-detach --config="$TMP/rs/rsyncd.conf" --address="$IP_B" --port=8731 \
  --log-file="$TMP/rs/rsyncd_b.log"
srv=$BG_PID
if wait_tcp "$IP_B" 8731 20 "$srv"; then
  xs_a 30 rsync -a "rsync://$IP_B:8731/mod/" "$TMP/rs/pull2/" >"$TMP/rs/pull2.log" 2>&1 || true
  check "10. rsync client on xstack pulled from a kernel daemon: 31 files identical" diff -r "$TMP/rs/mod" "$TMP/rs/pull2"
else
  fail "10. kernel rsync daemon listening"
fi
stop_bg "$srv"

echo "# 10. mosquitto on $IP_X:1883, kernel mosquitto_sub / mosquitto_pub"
cat >"$TMP/mosq.conf" <<EOF
listener 1883 $IP_X
allow_anonymous true
persistence false
log_dest stderr
EOF
bg_a "$TMP/mosq.log" 60 mosquitto -c "$TMP/mosq.conf"
srv=$BG_PID
if wait_tcp "$IP_X" 1883 20 "$srv"; then
  warm_arp
  for i in $(seq 1 500); do echo "msg-$i-$(echo "$i" | sha256sum | cut -c1-32)"; done >"$TMP/mq.lines"
  sed 's|^|xs/t |' "$TMP/mq.lines" >"$TMP/mq.want"
  bg_b "$TMP/mq.got" 20 mosquitto_sub -h "$IP_X" -t 'xs/#' -C 500 -v -q 1
  sub=$BG_PID
  sleep 1
  in_b 15 mosquitto_pub -h "$IP_X" -t xs/t -l -q 1 <"$TMP/mq.lines" 2>/dev/null || true
  wait_rc "$sub"
  check "10. mosquitto delivered 500 QoS 1 messages in order, intact ($(wc -l <"$TMP/mq.got") lines)" \
    cmp -s "$TMP/mq.want" "$TMP/mq.got"
  make_file "$TMP/mq.bin" 300000
  bg_b "$TMP/mq_big.got" 20 mosquitto_sub -h "$IP_X" -t big -C 1 -N
  sub=$BG_PID
  sleep 1
  in_b 15 mosquitto_pub -h "$IP_X" -t big -f "$TMP/mq.bin" -q 1 2>/dev/null || true
  wait_rc "$sub"
  check "10. mosquitto delivered a 300 KB message intact" same_file "$TMP/mq.bin" "$TMP/mq_big.got"
else
  fail "10. mosquitto listening"
  show_log "$TMP/mosq.log"
fi
stop_bg "$srv"

# ------------------------------------------------ 11. OpenSSH
echo "# 11. sshd on $IP_X:2222 (a child per connection that re-executes sshd), kernel ssh/scp"
mkdir -p "$TMP/ssh" /run/sshd
chmod 755 "$TMP/ssh"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/hk"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/ck"
cp "$TMP/ssh/ck.pub" "$TMP/ssh/authorized_keys"
sshd_conf() {  # sshd_conf ADDRESS FILE
  cat >"$2" <<EOF
Port 2222
ListenAddress $1
HostKey $TMP/ssh/hk
PidFile $TMP/ssh/sshd-$1.pid
AuthorizedKeysFile $TMP/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
Subsystem sftp internal-sftp
EOF
}
sshd_conf "$IP_X" "$TMP/ssh/sshd_a.conf"
sshd_conf "$IP_B" "$TMP/ssh/sshd_b.conf"
SSHO=(-i "$TMP/ssh/ck" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR)
WANT=$(sha "$TMP/www/blob")
bg_a "$TMP/ssh/sshd_a.log" 60 /usr/sbin/sshd -D -e -f "$TMP/ssh/sshd_a.conf"
srv=$BG_PID
if wait_log "$TMP/ssh/sshd_a.log" 'Server listening' 20; then
  warm_arp
  got=$(in_b 20 ssh -p 2222 "${SSHO[@]}" "root@$IP_X" "cat '$TMP/www/blob'" | sha256sum | cut -d' ' -f1 || true)
  check "11. ssh from b: 1 MiB read through sshd on xstack, sha256 matches" test "$got" = "$WANT"
  got=$(in_b 20 ssh -p 2222 "${SSHO[@]}" "root@$IP_X" sha256sum <"$TMP/www/blob" | cut -d' ' -f1 || true)
  check "11. ssh from b: 1 MiB written through sshd on xstack, sha256 matches" test "$got" = "$WANT"
  in_b 20 scp -q -P 2222 "${SSHO[@]}" "root@$IP_X:$TMP/www/blob" "$TMP/ssh/scp.out" || true
  check "11. scp from b: 1 MiB, sha256 matches" same_file "$TMP/www/blob" "$TMP/ssh/scp.out"
  sleep 0.3
  # the re-executed sshd closes every descriptor from 6 up (closefrom): the
  # shim's channel to the process with the stack must survive it
  bad=$(grep -c 'Bad file descriptor' "$TMP/ssh/sshd_a.log" || true)
  check "11. sshd logged no socket errors ($bad 'Bad file descriptor')" test "$bad" = 0
  [[ "$bad" == 0 ]] || show_log "$TMP/ssh/sshd_a.log" 10
else
  fail "11. sshd on xstack listening"
  show_log "$TMP/ssh/sshd_a.log"
fi
stop_bg "$srv"
echo "# 11. ssh on xstack to a kernel sshd on $IP_B:2222"
bg_b "$TMP/ssh/sshd_b.log" 60 /usr/sbin/sshd -D -e -f "$TMP/ssh/sshd_b.conf"
srv=$BG_PID
if wait_log "$TMP/ssh/sshd_b.log" 'Server listening' 20; then
  got=$(xs_a 20 ssh -p 2222 "${SSHO[@]}" "root@$IP_B" "cat '$TMP/www/blob'" | sha256sum | cut -d' ' -f1 || true)
  check "11. ssh on xstack: 1 MiB read from a kernel sshd, sha256 matches" test "$got" = "$WANT"
  # shellcheck disable=SC2016  # expanded by the remote shell
  got=$(xs_a 20 ssh -p 2222 "${SSHO[@]}" "root@$IP_B" 'echo $SSH_CLIENT' 2>&1 || true)
  check "11. the kernel sshd saw the client at $IP_X ($got)" test "${got%% *}" = "$IP_X"
else
  fail "11. kernel sshd listening"
fi
stop_bg "$srv"

apps_finish
