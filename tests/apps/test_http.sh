#!/usr/bin/env bash
# apps test: python3 http.server and curl over xstack (ctest apps_http).
#
#   1. `python3 -m http.server --bind 198.18.0.3` (ThreadingHTTPServer) under
#      tools/xstack-run in namespace a, serving a temporary directory with a
#      1 MiB random file and a small index.html; kernel curl in b fetches both
#      (sha256 / exact body), a 404, and the 1 MiB file 4 times in parallel.
#   2. curl under tools/xstack-run in a fetches the 1 MiB file from a kernel
#      python3 http.server in b (sha256), twice in one curl run (two URLs).
# XS_APPS_KERNEL_ONLY=1 runs the same with plain kernel sockets (lib.sh).
# shellcheck source=tests/apps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apps_require curl curl
apps_setup xh

PORT=8000
mkdir -p "$TMP/www" "$TMP/wwwb"
make_file "$TMP/www/big.bin" $((1 << 20))
cp "$TMP/www/big.bin" "$TMP/wwwb/big.bin"
INDEX="<html><body>xstack apps test $N</body></html>"
printf '%s\n' "$INDEX" >"$TMP/www/index.html"

# ------------------------------------------------ 1. server on xstack
echo "# 1. python3 http.server on $IP_X:$PORT, kernel curl in b"
bg_a "$TMP/srv.log" 120 python3 -u -m http.server --bind "$IP_X" --directory "$TMP/www" "$PORT"
srv=$BG_PID
if wait_tcp "$IP_X" "$PORT" 30 "$srv"; then
  pass "1. http.server on $IP_X:$PORT accepts connections"
  in_b 60 curl -sS --max-time 50 -o "$TMP/1.big" "http://$IP_X:$PORT/big.bin" 2>"$TMP/1.curl.err" || true
  check "1. GET /big.bin: 1 MiB, sha256 matches (got $(fsize "$TMP/1.big") bytes)" \
    same_file "$TMP/www/big.bin" "$TMP/1.big"
  body=$(in_b 30 curl -sS --max-time 20 "http://$IP_X:$PORT/" 2>>"$TMP/1.curl.err" || true)
  check "1. GET / returns the index page" test "$body" = "$INDEX"
  st=$(in_b 30 curl -s --max-time 20 -o /dev/null -w '%{http_code}' "http://$IP_X:$PORT/nothing-here" || true)
  check "1. GET /nothing-here is 404 (got $st)" test "$st" = 404
  pids=()
  for i in 1 2 3 4; do
    ip netns exec "$NS_B" timeout -k 5 60 curl -sS --max-time 50 -o "$TMP/1.par$i" \
      "http://$IP_X:$PORT/big.bin" 2>>"$TMP/1.curl.err" &
    pids+=($!)
    CHILDREN+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  ok=true
  for i in 1 2 3 4; do same_file "$TMP/www/big.bin" "$TMP/1.par$i" || ok=false; done
  check "1. 4 parallel GET /big.bin, all sha256 match" $ok
  $ok || show_log "$TMP/1.curl.err"
  check "1. http.server still running" running "$srv"
  stop_bg "$srv"
else
  fail "1. http.server on $IP_X:$PORT accepts connections"
  show_log "$TMP/srv.log"
fi

# ------------------------------------------------ 2. client on xstack
echo "# 2. curl on xstack, kernel python3 http.server on $IP_B:$PORT in b"
bg_b "$TMP/ksrv.log" 120 python3 -u -m http.server --bind "$IP_B" --directory "$TMP/wwwb" "$PORT"
ksrv=$BG_PID
if wait_tcp "$IP_B" "$PORT" 30 "$ksrv"; then
  xs_a 60 curl -sS --max-time 50 -o "$TMP/2.big" "http://$IP_B:$PORT/big.bin" 2>"$TMP/2.curl.err" || true
  check "2. curl on xstack: GET /big.bin 1 MiB, sha256 matches (got $(fsize "$TMP/2.big") bytes)" \
    same_file "$TMP/www/big.bin" "$TMP/2.big"
  xs_a 60 curl -sS --max-time 50 -o "$TMP/2.a" -o "$TMP/2.b" \
    "http://$IP_B:$PORT/big.bin" "http://$IP_B:$PORT/big.bin" 2>>"$TMP/2.curl.err" || true
  check "2. curl on xstack: two URLs in one run, both sha256 match" \
    same_file2 "$TMP/www/big.bin" "$TMP/2.a" "$TMP/2.b"
  check "2. kernel server saw requests from $IP_X" grep -q "^$IP_X .*GET /big.bin" "$TMP/ksrv.log"
  [[ $FAILS -eq 0 ]] || { show_log "$TMP/2.curl.err"; show_log "$TMP/ksrv.log" 10; }
  stop_bg "$ksrv"
else
  fail "2. kernel http.server on $IP_B:$PORT listening"
  show_log "$TMP/ksrv.log"
fi

apps_finish
