#!/usr/bin/env bash
# Test for the native-API examples in tools/examples/ (ctest label `veth`).
#
# In a flat lab with a unique name, runs each example server in namespace a
# on xstack's dedicated address 198.18.0.3 (AF_XDP on the lab's veth) and
# drives it from kernel sockets in namespace b:
#   xs_echo_server  kernel_peer.py tcp-client (10 MB, echo hash checked), then
#                   two such clients at once; SIGTERM must stop it cleanly
#   xs_http_server  GET / and GET /100000 (byte counts), a keep-alive pair of
#                   requests on one connection, a 404 (curl, or python3
#                   urllib/http.client when curl is missing or
#                   XS_EXAMPLES_NO_CURL=1)
#   xs_echo_client  in a, against kernel_peer.py tcp-echo-server in b
#   xs_zc_echo      server mode (zero-copy calls): kernel_peer.py tcp-client
#                   (10 MB, echo hash checked) and udp-echo-check (200
#                   datagrams); SIGTERM must stop it cleanly; client mode in a
#                   against kernel_peer.py tcp-echo-server in b (every byte
#                   of 2000 echoes checked)
# Always tears the lab down and kills what it started (trap), even on failure.
#
# Binaries are found in $XS_BUILD_DIR/tools/examples (ctest sets it).
# Needs root and `ip netns`. With CI=true a missing prerequisite is a FAILURE
# (exit 1); otherwise the test is skipped with exit 77 (SKIP_RETURN_CODE).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=${XSTACK_LAB:-$HERE/../../tools/xstack-lab}
PEER=$HERE/kernel_peer.py
BUILD=${XS_BUILD_DIR:-$HERE/../../build}
EX=$BUILD/tools/examples
LAB_TEST="the examples test"
source "$HERE/../support/lab_test.sh"

for c in ip ethtool tc ping python3 iptables timeout; do
  command -v "$c" >/dev/null 2>&1 || cannot_run "command '$c' missing (apt-get install -y iproute2 ethtool iputils-ping iptables python3)"
done
[[ -x "$LAB" ]] || { echo "FAIL: $LAB not found or not executable" >&2; exit 1; }
for b in xs_echo_server xs_echo_client xs_http_server xs_zc_echo; do
  [[ -x "$EX/$b" ]] || { echo "FAIL: $EX/$b not built (set XS_BUILD_DIR)" >&2; exit 1; }
done
lab_test_init xe
lab_test_up
IP_X=$XSL_IP_DEDICATED   # 198.18.0.3: xstack's own address in a
IP_B=$XSL_IP_B           # 198.18.0.2: the kernel in b
XS_ENV=(env XSTACK_IF="$XSL_IF_A" XSTACK_ADDR="$IP_X/24")
in_a() { "${IN_A[@]}" "$@"; }
in_b() { "${IN_B[@]}" "$@"; }

# stop_server PID LOG NAME: SIGTERM, then it must exit 0 within 10 s.
stop_server() {
  local pid=$1 i rc=0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    running "$pid" || break
    sleep 0.1
  done
  if running "$pid"; then
    fail "$3 exits on SIGTERM (still running after 10 s)"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return
  fi
  wait "$pid" || rc=$?
  if ((rc == 0)) && grep -q '^stopped' "$2"; then
    pass "$3 exits cleanly on SIGTERM"
  else
    fail "$3 exits cleanly on SIGTERM (rc=$rc)"
    show_log "$2"
  fi
}

# ---------------------------------------------------------------- echo server
ECHO_PORT=7000
echo "# xs_echo_server on $IP_X:$ECHO_PORT"
start_bg "$TMP/echo_server.log" "${IN_A[@]}" "${XS_ENV[@]}" "$EX/xs_echo_server" "$ECHO_PORT"
ECHO_PID=$BG_PID
if wait_for "$TMP/echo_server.log" "^listening" 20; then
  pass "xs_echo_server listening"
  # the first frames can race the XDP attach; give ARP one try before measuring
  in_b ping -n -q -c 1 -W 2 "$IP_X" >/dev/null 2>&1 || true
  out=$(in_b timeout 120 python3 "$PEER" tcp-client "$IP_X" "$ECHO_PORT" 10000000 2>&1) && rc=0 || rc=$?
  check "10 MB echoed by xs_echo_server, sha256 matches ($out)" test "$rc" -eq 0
  start_bg "$TMP/c1.log" "${IN_B[@]}" timeout 120 python3 "$PEER" tcp-client "$IP_X" "$ECHO_PORT" 10000000
  c1=$BG_PID
  start_bg "$TMP/c2.log" "${IN_B[@]}" timeout 120 python3 "$PEER" tcp-client "$IP_X" "$ECHO_PORT" 10000000
  c2=$BG_PID
  rc1=0; wait "$c1" || rc1=$?
  rc2=0; wait "$c2" || rc2=$?
  check "two concurrent clients, 10 MB each, both echoes match" test "$rc1" -eq 0 -a "$rc2" -eq 0
  ((rc1 == 0 && rc2 == 0)) || { show_log "$TMP/c1.log"; show_log "$TMP/c2.log"; }
  stop_server "$ECHO_PID" "$TMP/echo_server.log" xs_echo_server
else
  fail "xs_echo_server listening"
  show_log "$TMP/echo_server.log"
fi

# ---------------------------------------------------------------- http server
HTTP_PORT=8080
URL="http://$IP_X:$HTTP_PORT"
echo "# xs_http_server on $IP_X:$HTTP_PORT"
if [[ -z "${XS_EXAMPLES_NO_CURL:-}" ]] && command -v curl >/dev/null 2>&1; then
  echo "# client: curl"
  fetch_count() { in_b curl -s --max-time 30 -o - "$1" | wc -c; }
  fetch_status() { in_b curl -s --max-time 30 -o /dev/null -w '%{http_code}' "$1"; }
  # Two URLs in one curl run share the connection; -w counts new connects.
  keepalive_pair() {
    in_b curl -s --max-time 30 -o /dev/null -o /dev/null -w '%{num_connects} %{size_download}\n' "$1" "$2" |
      awk '{ conns += $1; bytes += $2 } END { print conns, bytes }'
  }
else
  echo "# client: python3 (curl not installed)"
  fetch_count() {
    in_b python3 -c 'import sys, urllib.request; sys.stdout.write(str(len(urllib.request.urlopen(sys.argv[1], timeout=30).read())))' "$1"
  }
  fetch_status() {
    in_b python3 -c '
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=30).status)
except urllib.error.HTTPError as e:
    print(e.code)' "$1"
  }
  keepalive_pair() {  # two requests on one http.client connection
    in_b python3 -c '
import sys, http.client, urllib.parse
u1, u2 = (urllib.parse.urlsplit(u) for u in sys.argv[1:3])
c = http.client.HTTPConnection(u1.hostname, u1.port, timeout=30)
n, socks = 0, []
for u in (u1, u2):
    c.request("GET", u.path)
    socks.append(c.sock)
    n += len(c.getresponse().read())
print(1 if socks[0] is socks[1] and c.sock is socks[1] else 2, n)' "$1" "$2"
  }
fi
start_bg "$TMP/http_server.log" "${IN_A[@]}" "${XS_ENV[@]}" "$EX/xs_http_server" "$HTTP_PORT"
HTTP_PID=$BG_PID
if wait_for "$TMP/http_server.log" "^listening" 20; then
  pass "xs_http_server listening"
  in_b ping -n -q -c 1 -W 2 "$IP_X" >/dev/null 2>&1 || true
  n=$(fetch_count "$URL/" 2>/dev/null || echo 0)
  check "GET / returns the index page ($n bytes)" test "${n:-0}" -gt 0
  n=$(fetch_count "$URL/100000" 2>/dev/null || echo 0)
  check "GET /100000 returns 100000 bytes (got $n)" test "${n:-0}" -eq 100000
  n=$(fetch_count "$URL/0" 2>/dev/null || echo x)
  check "GET /0 returns 0 bytes (got $n)" test "$n" = 0
  st=$(fetch_status "$URL/nothing-here" 2>/dev/null || echo 0)
  check "GET /nothing-here is 404 (got $st)" test "$st" = 404
  read -r conns bytes < <(keepalive_pair "$URL/100" "$URL/100000" 2>/dev/null || echo "0 0")
  check "keep-alive: /100 then /100000 on one connection (connections=$conns, bytes=$bytes)" \
    test "$conns" = 1 -a "$bytes" = 100100
  stop_server "$HTTP_PID" "$TMP/http_server.log" xs_http_server
else
  fail "xs_http_server listening"
  show_log "$TMP/http_server.log"
fi

# ---------------------------------------------------------------- echo client
KPORT=7001
echo "# xs_echo_client in a -> kernel echo server $IP_B:$KPORT in b"
start_bg "$TMP/kecho.log" "${IN_B[@]}" timeout 120 python3 "$PEER" tcp-echo-server "$IP_B" "$KPORT"
KECHO_PID=$BG_PID
if wait_for "$TMP/kecho.log" "^listening" 20; then
  out=$(in_a timeout 120 "${XS_ENV[@]}" "$EX/xs_echo_client" "$IP_B:$KPORT" 2000 1000 2>&1) && rc=0 || rc=$?
  ok=false
  [[ $rc -eq 0 && "$out" == *"ok 2000 messages of 1000 bytes"* ]] && ok=true
  check "xs_echo_client: 2000 x 1000-byte echoes match ($out)" $ok
  rc=0; wait "$KECHO_PID" || rc=$?
  check "kernel echo server saw an orderly close (rc=$rc)" test "$rc" -eq 0
else
  fail "kernel echo server listening"
  show_log "$TMP/kecho.log"
fi

# ---------------------------------------------------------------- zero-copy echo
ZC_PORT=7002
echo "# xs_zc_echo server on $IP_X:$ZC_PORT (tcp, udp)"
start_bg "$TMP/zc_server.log" "${IN_A[@]}" "${XS_ENV[@]}" "$EX/xs_zc_echo" server "$ZC_PORT"
ZC_PID=$BG_PID
if wait_for "$TMP/zc_server.log" "^listening" 20; then
  pass "xs_zc_echo server listening"
  in_b ping -n -q -c 1 -W 2 "$IP_X" >/dev/null 2>&1 || true
  out=$(in_b timeout 120 python3 "$PEER" tcp-client "$IP_X" "$ZC_PORT" 10000000 2>&1) && rc=0 || rc=$?
  check "10 MB echoed by xs_zc_echo (borrowed, reserved, committed), sha256 matches ($out)" test "$rc" -eq 0
  # XS_ZC_RX_FRAMES: the payloads were lent as the UMEM frames they arrived in.
  sleep 0.3  # > one stats publish period
  lends=$("$BUILD/tools/observe/xstack-stat" -p "$ZC_PID" 2>/dev/null | awk '$1 == "dev_rx_lends" { print $2 }')
  check "xs_zc_echo received into lent UMEM frames (dev_rx_lends=${lends:-missing})" test "${lends:-0}" -gt 100
  out=$(in_b timeout 60 python3 "$PEER" udp-echo-check "$IP_X" "$ZC_PORT" 200 2>&1) && rc=0 || rc=$?
  check "200 UDP datagrams echoed from borrowed views ($out)" test "$rc" -eq 0
  stop_server "$ZC_PID" "$TMP/zc_server.log" "xs_zc_echo server"
else
  fail "xs_zc_echo server listening"
  show_log "$TMP/zc_server.log"
fi

KZPORT=7003
echo "# xs_zc_echo client in a -> kernel echo server $IP_B:$KZPORT in b"
start_bg "$TMP/kecho2.log" "${IN_B[@]}" timeout 120 python3 "$PEER" tcp-echo-server "$IP_B" "$KZPORT"
KECHO2_PID=$BG_PID
if wait_for "$TMP/kecho2.log" "^listening" 20; then
  out=$(in_a timeout 120 "${XS_ENV[@]}" "$EX/xs_zc_echo" client "$IP_B:$KZPORT" 2000 3000 2>&1) && rc=0 || rc=$?
  ok=false
  [[ $rc -eq 0 && "$out" == *"ok 2000 messages of 3000 bytes"* ]] && ok=true
  check "xs_zc_echo client: 2000 x 3000-byte echoes match ($out)" $ok
  rc=0; wait "$KECHO2_PID" || rc=$?
  check "kernel echo server saw an orderly close (rc=$rc)" test "$rc" -eq 0
else
  fail "kernel echo server listening (zero-copy client)"
  show_log "$TMP/kecho2.log"
fi

if ((FAILS > 0)); then
  echo "test_examples: $FAILS check(s) FAILED"
  exit 1
fi
echo "test_examples: all checks passed"
