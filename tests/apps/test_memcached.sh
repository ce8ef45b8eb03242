#!/usr/bin/env bash
# apps test: memcached over xstack (ctest apps_memcached).
#
#   1. `memcached -t 4 -l 198.18.0.3 -p 11211 -U 0 -u root` (4 worker threads,
#      TCP only) under tools/xstack-run in namespace a; from b, the plain-socket
#      text-protocol client tests/apps/memcache_client.py: 8 threads, each on
#      its own connection, set 200 keys (1 B .. 20 KiB values), get them back
#      singly and with multi-key gets, then a fresh connection reads them all;
#      every value is compared. Run twice (two tags), then `stats` must show
#      total_items = 3200 (2 x 8 x 200).
#   2. the reverse: kernel memcached in b, the same client under
#      tools/xstack-run in a (Python threads over the shim).
# XS_APPS_KERNEL_ONLY=1 runs the same with plain kernel sockets (lib.sh).
# shellcheck source=tests/apps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apps_require memcached memcached
apps_setup xm

PORT=11211
CLIENT=$APPS_DIR/memcache_client.py

# stats_of IP RUN: `stats` output, through RUN (xs_a or in_b)
stats_of() {
  $2 20 python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"stats\r\n")
b = b""
while not b.endswith(b"END\r\n"):
    c = s.recv(65536)
    if not c:
        break
    b += c
sys.stdout.write(b.decode())' "$1" $PORT 2>&1 || true
}

# ------------------------------------------------ 1. server on xstack
echo "# 1. memcached -t 4 on $IP_X:$PORT, python3 client threads in b"
bg_a "$TMP/srv.log" 200 memcached -t 4 -l "$IP_X" -p $PORT -U 0 -u root -v
srv=$BG_PID
if wait_tcp "$IP_X" $PORT 30 "$srv"; then
  pass "1. memcached accepts connections on $IP_X:$PORT"
  for tag in a1 a2; do
    out=$(in_b 150 python3 "$CLIENT" "$IP_X" $PORT --threads 8 --keys 200 --tag "$tag" 2>&1) && rc=0 || rc=$?
    check "1. client in b ($tag): 8 connections x 200 keys set/get, every value matches ($(tail -n 3 <<<"$out" | tr '\n' ' '))" \
      test "$rc" -eq 0
  done
  st=$(stats_of "$IP_X" in_b)
  items=$(awk '/^STAT total_items / { print $3 + 0 }' <<<"$st" | tr -d '\r')
  check "1. stats: total_items = 3200 (got ${items:-none})" test "${items:-0}" = 3200
  check "1. memcached still running" running "$srv"
  stop_bg "$srv"
else
  fail "1. memcached accepts connections on $IP_X:$PORT"
  show_log "$TMP/srv.log"
fi

# ------------------------------------------------ 2. client on xstack
echo "# 2. kernel memcached on $IP_B:$PORT in b, python3 client threads on xstack"
bg_b "$TMP/ksrv.log" 200 memcached -t 4 -l "$IP_B" -p $PORT -U 0 -u root
ksrv=$BG_PID
if wait_tcp "$IP_B" $PORT 30 "$ksrv"; then
  out=$(xs_a 150 python3 "$CLIENT" "$IP_B" $PORT --threads 8 --keys 200 --tag b1 2>&1) && rc=0 || rc=$?
  check "2. client on xstack: 8 connections x 200 keys set/get, every value matches ($(tail -n 3 <<<"$out" | tr '\n' ' '))" \
    test "$rc" -eq 0
  st=$(stats_of "$IP_B" kernel_a)
  items=$(awk '/^STAT total_items / { print $3 + 0 }' <<<"$st" | tr -d '\r')
  check "2. stats: total_items = 1600 (got ${items:-none})" test "${items:-0}" = 1600
  stop_bg "$ksrv"
else
  fail "2. kernel memcached listening on $IP_B:$PORT"
  show_log "$TMP/ksrv.log"
fi

apps_finish
