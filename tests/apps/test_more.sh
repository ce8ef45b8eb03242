#!/usr/bin/env bash
# apps test: more unmodified programs over xstack (ctest apps_more), each
# chosen for a shim path the others do not take:
#   1. lighttpd (epoll, writev, sendfile) serving a 3 MiB file to curl, then
#      ab from b, keep-alive and one connection per request: no failures;
#   2. dnsmasq answering dig over UDP and over TCP (its TCP side forks a child
#      per connection; it enumerates interfaces with SIOCGIFCONF on a socket);
#   3. socat TCP-LISTEN,fork with EXEC:cat (fork, then exec with the
#      connection as the new program's stdin/stdout);
#   4. socat UDP-RECVFROM,fork with EXEC:cat (a UDP socket used by a child);
#   5. ncat --keep-open --exec /bin/cat (fork, fork again, exec);
#   6. a Python inetd: accept, fork, dup2 onto 0/1, exec python, which asks
#      getpeername on stdin and answers one line;
#   7. haproxy in TCP mode in front of a kernel http.server in b: curl 1 MiB
#      through it, then wrk with `Connection: close` (haproxy shuts its client
#      side down before closing it, so those connections reach TIME_WAIT while
#      haproxy still holds them, and wrk's next SYN from the same port reopens
#      them): no socket errors, haproxy still running.
# XS_APPS_KERNEL_ONLY=1 runs the same with plain kernel sockets (lib.sh).
# shellcheck source=tests/apps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apps_require lighttpd lighttpd
apps_require apache2-utils ab
apps_require dnsmasq-base dnsmasq
apps_require dnsutils dig
apps_require socat socat
apps_require ncat ncat
apps_require curl curl
apps_require haproxy haproxy
apps_require wrk wrk
apps_setup xm

# ------------------------------------------------ 1. lighttpd + curl + ab
echo "# 1. lighttpd on $IP_X:8080"
mkdir -p "$TMP/www"
make_file "$TMP/www/blob" $((3 << 20))
echo "hello from lighttpd" >"$TMP/www/index.html"
cat >"$TMP/lighttpd.conf" <<EOF
server.document-root = "$TMP/www"
server.port = 8080
server.bind = "$IP_X"
server.errorlog = "$TMP/lighttpd.err"
server.pid-file = "$TMP/lighttpd.pid"
server.username = ""
server.groupname = ""
EOF
bg_a "$TMP/lighttpd.log" 90 lighttpd -D -f "$TMP/lighttpd.conf"
srv=$BG_PID
if wait_tcp "$IP_X" 8080 30 "$srv"; then
  warm_arp
  in_b 30 curl -sS -o "$TMP/blob.out" "http://$IP_X:8080/blob" 2>"$TMP/curl.err" || true
  check "1. curl got the 3 MiB file from lighttpd, sha256 matches ($(fsize "$TMP/blob.out") bytes)" \
    same_file "$TMP/www/blob" "$TMP/blob.out"
  in_b 60 ab -q -k -n 3000 -c 16 "http://$IP_X:8080/index.html" >"$TMP/ab_k.out" 2>&1 || true
  in_b 60 ab -q -n 1000 -c 8 "http://$IP_X:8080/index.html" >"$TMP/ab_c.out" 2>&1 || true
  for f in ab_k ab_c; do
    done_n=$(awk '/^Complete requests:/ {print $3}' "$TMP/$f.out")
    failed_n=$(awk '/^Failed requests:/ {print $3}' "$TMP/$f.out")
    want=$([[ $f == ab_k ]] && echo 3000 || echo 1000)
    check "1. ab ($([[ $f == ab_k ]] && echo keep-alive || echo 'one connection per request')): ${done_n:-?} of $want complete, ${failed_n:-?} failed" \
      test "${done_n:-0}" = "$want" -a "${failed_n:-1}" = 0
    [[ "${done_n:-0}" == "$want" ]] || show_log "$TMP/$f.out"
  done
else
  fail "1. lighttpd listening"
  show_log "$TMP/lighttpd.log"
fi
stop_bg "$srv"

# ------------------------------------------------ 2. dnsmasq + dig
echo "# 2. dnsmasq on $IP_X:53, dig from b over UDP and TCP"
cat >"$TMP/dnsmasq.conf" <<EOF
no-resolv
no-hosts
port=53
listen-address=$IP_X
bind-interfaces
address=/lab.test/198.18.0.77
EOF
bg_a "$TMP/dnsmasq.log" 60 dnsmasq -d -C "$TMP/dnsmasq.conf" -u root --pid-file="$TMP/dnsmasq.pid"
srv=$BG_PID
if wait_log "$TMP/dnsmasq.log" 'started' 30; then
  warm_arp
  udp=$(in_b 10 dig +short +time=2 +tries=2 @"$IP_X" one.lab.test 2>&1 || true)
  check "2. dig over UDP: '$udp' (want 198.18.0.77)" test "$udp" = 198.18.0.77
  tcp=$(in_b 10 dig +short +tcp +time=2 +tries=2 @"$IP_X" two.lab.test 2>&1 || true)
  check "2. dig over TCP (dnsmasq forks per connection): '$tcp' (want 198.18.0.77)" test "$tcp" = 198.18.0.77
else
  fail "2. dnsmasq started"
fi
grep -q 'Inappropriate ioctl' "$TMP/dnsmasq.log" && show_log "$TMP/dnsmasq.log"
stop_bg "$srv"

# ------------------------------------------------ 3. socat TCP fork + exec
echo "# 3. socat TCP-LISTEN:7001,fork EXEC:cat on $IP_X"
bg_a "$TMP/socat_tcp.log" 60 socat "TCP-LISTEN:7001,bind=$IP_X,reuseaddr,fork" EXEC:cat
srv=$BG_PID
if wait_tcp "$IP_X" 7001 30 "$srv"; then
  ok=0
  for i in 1 2 3; do
    got=$( (echo "line-$i"; sleep 1) | in_b 10 socat - "TCP:$IP_X:7001" 2>/dev/null || true)
    [[ "$got" == "line-$i" ]] && ok=$((ok + 1))
  done
  check "3. socat fork+exec echoed 3 of 3 connections (got $ok)" test "$ok" = 3
else
  fail "3. socat TCP listening"
  show_log "$TMP/socat_tcp.log"
fi
stop_bg "$srv"

# ------------------------------------------------ 4. socat UDP fork + exec
echo "# 4. socat UDP-RECVFROM:7003,fork EXEC:cat on $IP_X"
bg_a "$TMP/socat_udp.log" 60 socat "UDP-RECVFROM:7003,bind=$IP_X,fork" EXEC:cat
srv=$BG_PID
sleep 1
warm_arp
ok=0
for i in 1 2 3; do
  got=$(echo "dgram-$i" | in_b 5 socat -T 2 - "UDP:$IP_X:7003" 2>/dev/null || true)
  [[ "$got" == "dgram-$i" ]] && ok=$((ok + 1))
done
check "4. socat UDP fork+exec answered 3 of 3 datagrams (got $ok)" test "$ok" = 3
[[ $ok == 3 ]] || show_log "$TMP/socat_udp.log"
stop_bg "$srv"

# ------------------------------------------------ 5. ncat --exec
echo "# 5. ncat -l --keep-open --exec /bin/cat on $IP_X:7200"
bg_a "$TMP/ncat.log" 60 ncat -l "$IP_X" 7200 --keep-open --exec /bin/cat
srv=$BG_PID
if wait_tcp "$IP_X" 7200 30 "$srv"; then
  ok=0
  for i in 1 2 3; do
    got=$( (echo "ncat-$i"; sleep 1) | in_b 10 ncat "$IP_X" 7200 2>/dev/null || true)
    [[ "$got" == "ncat-$i" ]] && ok=$((ok + 1))
  done
  check "5. ncat --exec echoed 3 of 3 connections (got $ok)" test "$ok" = 3
  [[ $ok == 3 ]] || show_log "$TMP/ncat.log"
else
  fail "5. ncat listening"
  show_log "$TMP/ncat.log"
fi
stop_bg "$srv"

# ------------------------------------------------ 6. a Python inetd
echo "# 6. python inetd on $IP_X:7300: fork, dup2 onto 0/1, exec"
cat >"$TMP/inetd.py" <<'EOF'
import os, socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 7300))
l.listen(8)
print("listening", flush=True)
for _ in range(2):
    c, _ = l.accept()
    pid = os.fork()
    if pid == 0:
        os.dup2(c.fileno(), 0)
        os.dup2(c.fileno(), 1)
        os.execvp(sys.executable, [sys.executable, "-c", """
import os, socket, sys
s = socket.socket(fileno=os.dup(0))
peer = s.getpeername()[0]
line = sys.stdin.readline().strip()
print(peer, line.upper(), flush=True)
"""])
    c.close()
    os.waitpid(pid, 0)
EOF
bg_a "$TMP/inetd.log" 60 python3 "$TMP/inetd.py" "$IP_X"
srv=$BG_PID
if wait_log "$TMP/inetd.log" '^listening' 30; then
  warm_arp
  ok=0
  for i in 1 2; do
    got=$( (echo "word$i"; sleep 1) | in_b 10 nc -n "$IP_X" 7300 2>/dev/null || true)
    [[ "$got" == "$IP_B WORD$i" ]] && ok=$((ok + 1))
  done
  check "6. the exec'd program saw its peer $IP_B and answered 2 of 2 connections (got $ok)" test "$ok" = 2
  [[ $ok == 2 ]] || show_log "$TMP/inetd.log"
else
  fail "6. python inetd listening"
  show_log "$TMP/inetd.log"
fi
stop_bg "$srv"

# ------------------------------------------------ 7. haproxy TCP mode + wrk close
echo "# 7. haproxy (TCP mode) on $IP_X:9000 -> kernel http.server on $IP_B:8090"
mkdir -p "$TMP/wwwb"
make_file "$TMP/wwwb/blob" $((1 << 20))
echo "hello through haproxy" >"$TMP/wwwb/index.html"
# http.server listens with a backlog of 5: 16 connections through haproxy
# overflow it, and the kernel drops SYNs that then wait 1 s and 3 s for their
# retransmission (wrk timeouts on the kernel as on xstack). 512 keeps the
# backend out of the measurement.
bg_b "$TMP/backend.log" 90 python3 -c '
import runpy, socketserver, sys
socketserver.TCPServer.request_queue_size = 512
sys.argv = ["http.server"] + sys.argv[1:]
runpy.run_module("http.server", run_name="__main__")' --bind "$IP_B" --directory "$TMP/wwwb" 8090
be=$BG_PID
cat >"$TMP/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  timeout connect 3s
  timeout client 10s
  timeout server 10s
frontend ftcp
  mode tcp
  bind $IP_X:9000
  default_backend btcp
backend btcp
  mode tcp
  server s1 $IP_B:8090
EOF
bg_a "$TMP/haproxy.log" 90 haproxy -db -f "$TMP/haproxy.cfg"
px=$BG_PID
if wait_tcp "$IP_B" 8090 30 "$be" && wait_tcp "$IP_X" 9000 30 "$px"; then
  warm_arp
  in_b 30 curl -sS -o "$TMP/hap.out" "http://$IP_X:9000/blob" 2>"$TMP/hap_curl.err" || true
  check "7. curl through haproxy got 1 MiB, sha256 matches" same_file "$TMP/wwwb/blob" "$TMP/hap.out"
  # 200 client ports: wrk reuses each many times over, so its SYNs meet
  # haproxy-side connections in TIME_WAIT; tcp_tw_reuse lets wrk reuse its
  # own TIME_WAIT ports at once (b is the test's own namespace)
  ip netns exec "$NS_B" sysctl -q -w net.ipv4.ip_local_port_range="40000 40199" net.ipv4.tcp_tw_reuse=1
  ip netns exec "$NS_B" sysctl -q -w net.ipv4.tcp_tw_reuse_delay=1 2>/dev/null || true  # Linux >= 6.13
  in_b 30 wrk -t2 -c16 -d3s --timeout 3s -H 'Connection: close' "http://$IP_X:9000/index.html" \
    >"$TMP/hap_wrk.out" 2>&1 || true
  reqs=$(awk '/requests in/ {print $1}' "$TMP/hap_wrk.out")
  echo "#    wrk latency (avg stdev max): $(awk '/Latency/ {print $2, $3, $4}' "$TMP/hap_wrk.out")"
  clean=no
  if [[ "${reqs:-0}" -gt 0 ]] && ! grep -qE 'Socket errors|Non-2xx' "$TMP/hap_wrk.out"; then clean=yes; fi
  errs=$(grep -E 'Socket errors|Non-2xx' "$TMP/hap_wrk.out" | tr -s ' ' | tr '\n' ';' || true)
  check "7. wrk Connection: close through haproxy: ${reqs:-no} requests; errors: ${errs:-none}" test "$clean" = yes
  check "7. haproxy still running afterwards" running "$px"
  [[ $clean == yes ]] || { show_log "$TMP/hap_wrk.out"; show_log "$TMP/haproxy.log"; }
else
  fail "7. haproxy and its backend listening"
  show_log "$TMP/haproxy.log"
fi
stop_bg "$px"
stop_bg "$be"

apps_finish
