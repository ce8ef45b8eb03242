#!/usr/bin/env bash
# The veth part of the demo: latency (xstack-bench-echo, one round) and a bulk
# echo of 256 MiB each way from a kernel client to a kernel server and to an
# xstack server (dedicated address 198.18.0.3), timed side by side.
#   tools/demo/veth-demo.sh [--build DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$ROOT/build
[[ ${1:-} == --build ]] && BUILD=$2
PEER=$BUILD/tools/xstack-peer
LAB=$ROOT/tools/xstack-lab
KPEER=$ROOT/tests/veth/kernel_peer.py

bash "$ROOT/tools/bench/xstack-bench-echo" --build "$BUILD" --rounds 1 --count 20000

NAME="xdm$(( $$ % 100000 ))"
export XSL_QUIET=1
cleanup() {
  pkill -f "xstack-peer serve --if $NAME" 2>/dev/null || true
  "$LAB" down --name "$NAME" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$LAB" up --name "$NAME" >/dev/null
eval "$("$LAB" env --name "$NAME")"
BYTES=$((256 << 20))

bulk() {  # bulk LABEL SERVER-IP: prints the client's result line
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$(ip netns exec "$XSL_NS_B" python3 "$KPEER" tcp-client "$2" 5001 "$BYTES" 2>&1 | tail -1)
  t1=$(date +%s.%N)
  awk -v l="$1" -v a="$t0" -v b="$t1" -v n="$BYTES" -v o="$out" \
    'BEGIN { printf "%-22s %6.2f s  %7.1f MB/s each way   (%s)\n", l, b - a, n / (b - a) / 1e6, o }'
}

echo
echo "Bulk: 256 MiB each way, kernel client (python) -> echo server, verified by SHA-256"
ip netns exec "$XSL_NS_A" python3 "$KPEER" tcp-echo-server "$XSL_IP_A" 5001 >/dev/null 2>&1 &
sleep 0.5
bulk "kernel echo server" "$XSL_IP_A"
wait || true
"$LAB" exec --name "$NAME" a -- "$PEER" serve --if "$XSL_IF_A" --addr "$XSL_IP_DEDICATED/24" --tcp-port 5001 \
  --seconds 60 >/dev/null 2>&1 &
SPID=$!
for _ in $(seq 50); do ip netns exec "$XSL_NS_B" ping -c1 -W1 "$XSL_IP_DEDICATED" >/dev/null 2>&1 && break; sleep 0.1; done
bulk "xstack echo server" "$XSL_IP_DEDICATED"
pkill -f "xstack-peer serve --if $XSL_IF_A" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true
