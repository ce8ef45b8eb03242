#!/usr/bin/env bash
# apps test: Redis over xstack (ctest apps_redis).
#
#   1. redis-server under tools/xstack-run in namespace a
#      (--bind 198.18.0.3 --port 6379 --save '' --appendonly no: no background
#      save, so it never forks), driven from kernel sockets in b:
#      redis-cli SET/GET of a small value and of a 64 KiB value (compared),
#      CLIENT LIST shows the client at b's address, redis-benchmark -t set,get
#      -n 20000 -q prints requests per second for SET and GET, and the values
#      are still intact after the benchmark.
#   2. the reverse: kernel redis-server in b (198.18.0.2), redis-cli and
#      redis-benchmark under tools/xstack-run in a; CLIENT LIST shows the
#      client at xstack's address.
# XS_APPS_KERNEL_ONLY=1 runs the same with plain kernel sockets (lib.sh).
# shellcheck source=tests/apps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apps_require redis-server redis-server
apps_require redis-tools redis-cli redis-benchmark
apps_setup xr

PORT=6379
SMALL="xstack-value-$N-$RANDOM"
BIG=$(head -c 49152 /dev/urandom | base64 -w0)   # 65536 printable bytes
mkdir -p "$TMP/ra" "$TMP/rb"

# redis_checks WHERE RUN SERVER_IP CLIENT_IP: the data checks, with every
# client command run through RUN (xs_a or in_b).
redis_checks() {
  local where=$1 run=$2 ip=$3 cip=$4 v out
  v=$($run 30 redis-cli -h "$ip" -p $PORT SET small "$SMALL" 2>&1 || true)
  check "$where: SET small -> $v" test "$v" = OK
  v=$($run 30 redis-cli -h "$ip" -p $PORT GET small 2>&1 || true)
  check "$where: GET small returns the value" test "$v" = "$SMALL"
  printf '%s' "$BIG" >"$TMP/big.val"
  v=$($run 30 redis-cli -h "$ip" -p $PORT -x SET big <"$TMP/big.val" 2>&1 || true)
  check "$where: SET big (64 KiB) -> $v" test "$v" = OK
  v=$($run 30 redis-cli -h "$ip" -p $PORT GET big 2>/dev/null || true)
  check "$where: GET big returns the 64 KiB value (got ${#v} bytes)" test "$v" = "$BIG"
  v=$($run 30 redis-cli -h "$ip" -p $PORT CLIENT LIST 2>&1 || true)
  check "$where: CLIENT LIST shows the client at $cip" grep -q "addr=$cip:" <<<"$v"
  $run 120 redis-benchmark -h "$ip" -p $PORT -t set,get -n 20000 -q >"$TMP/bench.log" 2>&1 || true
  out=$(tr '\r' '\n' <"$TMP/bench.log" | grep -E '^(SET|GET): [0-9.]+ requests per second' || true)
  check "$where: redis-benchmark SET rate: $(grep -o '^SET: [0-9.]* requests per second' <<<"$out" || echo none)" \
    grep -q '^SET: ' <<<"$out"
  check "$where: redis-benchmark GET rate: $(grep -o '^GET: [0-9.]* requests per second' <<<"$out" || echo none)" \
    grep -q '^GET: ' <<<"$out"
  grep -q '^GET: ' <<<"$out" || show_log "$TMP/bench.log" 10
  v=$($run 30 redis-cli -h "$ip" -p $PORT GET big 2>/dev/null || true)
  check "$where: after the benchmark GET big still returns the value" test "$v" = "$BIG"
  # redis-benchmark without -r SETs one key, "key:__rand_int__", to "VXK" (-d 3)
  v=$($run 30 redis-cli -h "$ip" -p $PORT GET key:__rand_int__ 2>&1 || true)
  check "$where: the benchmark's key holds its 3-byte value (got '$v')" test "$v" = VXK
  v=$($run 30 redis-cli -h "$ip" -p $PORT DBSIZE 2>&1 || true)
  check "$where: DBSIZE is 3 after the benchmark (got $v)" test "$v" = 3
}

# ------------------------------------------------ 1. server on xstack
echo "# 1. redis-server on $IP_X:$PORT, kernel redis-cli/redis-benchmark in b"
bg_a "$TMP/srv.log" 200 redis-server --bind "$IP_X" --port $PORT --save '' --appendonly no \
  --protected-mode no --daemonize no --dir "$TMP/ra" --logfile ''
srv=$BG_PID
if wait_tcp "$IP_X" $PORT 30 "$srv"; then
  pass "1. redis-server accepts connections on $IP_X:$PORT"
  redis_checks "1. server on xstack" in_b "$IP_X" "$IP_B"
  check "1. redis-server still running" running "$srv"
  stop_bg "$srv"
else
  fail "1. redis-server accepts connections on $IP_X:$PORT"
  show_log "$TMP/srv.log"
fi

# ------------------------------------------------ 2. clients on xstack
echo "# 2. kernel redis-server on $IP_B:$PORT in b, redis-cli/redis-benchmark on xstack"
bg_b "$TMP/ksrv.log" 200 redis-server --bind "$IP_B" --port $PORT --save '' --appendonly no \
  --protected-mode no --daemonize no --dir "$TMP/rb" --logfile ''
ksrv=$BG_PID
if wait_tcp "$IP_B" $PORT 30 "$ksrv"; then
  redis_checks "2. clients on xstack" xs_a "$IP_B" "$IP_X"
  stop_bg "$ksrv"
else
  fail "2. kernel redis-server listening on $IP_B:$PORT"
  show_log "$TMP/ksrv.log"
fi

apps_finish
