#!/usr/bin/env bash
# apps test: programs that make AF_INET6 sockets by default (ctest
# apps_dualstack). A dual-stack socket (IPV6_V6ONLY off) carries IPv4 through
# IPv4-mapped addresses; xstack serves that IPv4 traffic, and hands a socket
# that turns to IPv6 proper (IPV6_V6ONLY, ::1) to the kernel (docs/shim.md):
#   1. python3 -m http.server --bind :: (its DualStackServer turns
#      IPV6_V6ONLY off): curl from b fetches 1 MiB (sha256) and the server
#      logs its client as ::ffff:$IP_B;
#   2. iperf3 -s with no -B (it listens on "::" with IPV6_V6ONLY off): a
#      kernel client's 2 s upload arrives;
#   3. redis-server with its default listeners ("bind * -::*": 0.0.0.0 and
#      an IPv6-only "::"): SET/GET from b over IPv4, and GET over ::1 from a
#      (the IPv6-only listener, served by the kernel);
#   4. curl on xstack fetching from a kernel server through an IPv4-mapped
#      URL (http://[::ffff:$IP_B]:port/): an AF_INET6 client socket; the
#      server sees the client at $IP_X.
# XS_APPS_KERNEL_ONLY=1 runs the same with plain kernel sockets (lib.sh).
# shellcheck source=tests/apps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apps_require iperf3 iperf3
apps_require redis-server redis-server
apps_require redis-tools redis-cli
apps_require curl curl
apps_setup xd

# ------------------------------------------------ 1. http.server on "::"
echo "# 1. python3 -m http.server --bind :: 8000 (dual-stack)"
mkdir -p "$TMP/www"
make_file "$TMP/www/blob" $((1 << 20))
bg_a "$TMP/http.log" 60 python3 -u -m http.server --bind :: --directory "$TMP/www" 8000
srv=$BG_PID
if wait_tcp "$IP_X" 8000 30 "$srv"; then
  warm_arp
  in_b 30 curl -sS -o "$TMP/blob.out" "http://$IP_X:8000/blob" 2>"$TMP/curl1.err" || true
  check "1. curl got 1 MiB from the dual-stack http.server, sha256 matches" same_file "$TMP/www/blob" "$TMP/blob.out"
  check "1. the server logged its client as ::ffff:$IP_B" grep -q "::ffff:$IP_B .*GET /blob" "$TMP/http.log"
  grep -q "::ffff:$IP_B" "$TMP/http.log" || show_log "$TMP/http.log"
else
  fail "1. http.server listening on port 8000"
  show_log "$TMP/http.log"
fi
stop_bg "$srv"

# ------------------------------------------------ 2. iperf3 -s on "::"
echo "# 2. iperf3 -s -1 (no -B: '::', IPV6_V6ONLY off), kernel client from b"
bg_a "$TMP/iperf3_s.log" 60 iperf3 -s -1 -p 5211
srv=$BG_PID
sleep 1.5
warm_arp
in_b 30 iperf3 -c "$IP_X" -p 5211 -t 2 --json >"$TMP/iperf3_c.json" 2>&1 || true
bytes=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["end"]["sum_received"]["bytes"])' \
  "$TMP/iperf3_c.json" 2>/dev/null || echo 0)
check "2. iperf3 server on '::' received $bytes bytes from $IP_B" test "$bytes" -gt 1000000
[[ "$bytes" -gt 1000000 ]] 2>/dev/null || { show_log "$TMP/iperf3_c.json"; show_log "$TMP/iperf3_s.log"; }
wait_rc "$srv"

# ------------------------------------------------ 3. redis default listeners
echo "# 3. redis-server with its default listeners (bind * -::*)"
bg_a "$TMP/redis.log" 60 redis-server --port 6391 --save '' --appendonly no --protected-mode no
srv=$BG_PID
if wait_tcp "$IP_X" 6391 30 "$srv"; then
  warm_arp
  set_r=$(in_b 10 redis-cli -h "$IP_X" -p 6391 SET dual stack 2>&1 || true)
  get_r=$(in_b 10 redis-cli -h "$IP_X" -p 6391 GET dual 2>&1 || true)
  check "3. SET/GET over IPv4 from b: '$set_r' '$get_r'" test "$set_r/$get_r" = "OK/stack"
  lo6=$(kernel_a 10 redis-cli -h ::1 -p 6391 GET dual 2>&1 || true)
  check "3. GET over ::1 in a (the IPv6-only listener, the kernel's): '$lo6'" test "$lo6" = stack
  [[ "$lo6" == stack ]] || show_log "$TMP/redis.log"
else
  fail "3. redis-server listening on 6391"
  show_log "$TMP/redis.log"
fi
stop_bg "$srv"

# ------------------------------------------------ 4. curl on an IPv4-mapped URL
echo "# 4. curl on xstack to http://[::ffff:$IP_B]:8001/ (a kernel http.server in b)"
mkdir -p "$TMP/wwwb"
make_file "$TMP/wwwb/blob" $((1 << 20))
bg_b "$TMP/ksrv.log" 60 python3 -u -m http.server --bind "$IP_B" --directory "$TMP/wwwb" 8001
ksrv=$BG_PID
if wait_tcp "$IP_B" 8001 30 "$ksrv"; then
  xs_a 30 curl -sS -g -o "$TMP/blob4.out" "http://[::ffff:$IP_B]:8001/blob" 2>"$TMP/curl4.err" || true
  check "4. curl through the IPv4-mapped URL got 1 MiB, sha256 matches" same_file "$TMP/wwwb/blob" "$TMP/blob4.out"
  check "4. the kernel server saw the client at $IP_X" grep -q "^$IP_X .*GET /blob" "$TMP/ksrv.log"
  grep -q "^$IP_X " "$TMP/ksrv.log" || { show_log "$TMP/ksrv.log"; show_log "$TMP/curl4.err"; }
else
  fail "4. kernel http.server listening on $IP_B:8001"
fi
stop_bg "$ksrv"

apps_finish
