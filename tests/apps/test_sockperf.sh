#!/usr/bin/env bash
# apps test: sockperf ping-pong latency over xstack (ctest apps_sockperf).
#
#   1. sockperf server (`sockperf sr`) under tools/xstack-run in namespace a on
#      198.18.0.3, TCP (port 11111) and UDP (port 11112); kernel
#      `sockperf pp -t 3` in b.
#   2. kernel sockperf server in b (198.18.0.2), `sockperf pp -t 3` under
#      xstack-run in a, TCP and UDP.
# sockperf exits 0 even when it fails, so the check reads its output: a
# "Summary: Latency is X usec" line, ReceivedMessages > 0 in the valid
# period, percentile lines, and no "ERROR" / "No messages were received".
# Before each measured run, short 1 s ping-pongs are retried until one works
# (the server's readiness; sockperf prints nothing useful when it listens).
# XS_APPS_KERNEL_ONLY=1 runs the same with plain kernel sockets (lib.sh).
# shellcheck source=tests/apps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apps_require sockperf sockperf
apps_setup xp


# sp_ok LOG: the output of a sockperf pp run shows a valid measurement
sp_ok() {
  grep -q 'Summary: Latency is [0-9.]* usec' "$1" &&
    grep -q 'percentile 99.000' "$1" &&
    grep -qE 'Valid Duration.*ReceivedMessages=[1-9]' "$1" &&
    ! grep -qE 'ERROR|No messages were received' "$1"
}
strip() { sed 's/\x1b\[[0-9;]*m//g' "$1" >"$1.txt" && mv "$1.txt" "$1"; }

# pp_case NAME WHERE_SERVER IP PORT CLIENT_RUN [--tcp]
pp_case() {
  local name=$1 where=$2 ip=$3 port=$4 run=$5 srv tag i ready=false lat
  shift 5
  tag=${name//[^a-zA-Z0-9]/_}
  if [[ $where == a ]]; then
    bg_a "$TMP/$tag.srv" 120 sockperf sr "$@" -i "$ip" -p "$port"
  else
    bg_b "$TMP/$tag.srv" 120 sockperf sr "$@" -i "$ip" -p "$port"
  fi
  srv=$BG_PID
  for ((i = 0; i < 10; i++)); do
    $run 15 sockperf pp "$@" -i "$ip" -p "$port" -t 1 >"$TMP/$tag.probe" 2>&1 || true
    strip "$TMP/$tag.probe"
    if sp_ok "$TMP/$tag.probe"; then ready=true; break; fi
    running "$srv" || break
    sleep 1
  done
  if ! $ready; then
    fail "$name: sockperf server answers a 1 s ping-pong (10 tries)"
    show_log "$TMP/$tag.probe" 15
    show_log "$TMP/$tag.srv" 15
    stop_bg "$srv"
    return
  fi
  $run 30 sockperf pp "$@" -i "$ip" -p "$port" -t 3 >"$TMP/$tag.log" 2>&1 || true
  strip "$TMP/$tag.log"
  lat=$(grep -o 'Summary: Latency is [0-9.]* usec' "$TMP/$tag.log" || echo 'no summary')
  check "$name: 3 s ping-pong, $lat, $(grep -oE 'percentile 99.000 = *[0-9.]*' "$TMP/$tag.log" | tr -s ' ' || true)" \
    sp_ok "$TMP/$tag.log"
  sp_ok "$TMP/$tag.log" || show_log "$TMP/$tag.log" 25
  check "$name: sockperf server still running" running "$srv"
  stop_bg "$srv"
}

echo "# 1. sockperf server on xstack ($IP_X), kernel sockperf pp in b"
pp_case "1. TCP, server on xstack" a "$IP_X" 11111 in_b --tcp
pp_case "1. UDP, server on xstack" a "$IP_X" 11112 in_b
echo "# 2. kernel sockperf server in b ($IP_B), sockperf pp on xstack"
pp_case "2. TCP, client on xstack" b "$IP_B" 11111 xs_a --tcp
pp_case "2. UDP, client on xstack" b "$IP_B" 11112 xs_a

apps_finish
