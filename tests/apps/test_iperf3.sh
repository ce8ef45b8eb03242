#!/usr/bin/env bash
# apps test: iperf3 over xstack (ctest apps_iperf3).
#
# Every run is 3 s with --json on the client; the check reads the JSON: no
# "error", sender and receiver byte totals > 0, receiver <= sender and
# receiver >= 98% of sender (iperf3 stops counting at the receiver a moment
# before the sender: in-flight bytes may be missing, never extra ones).
#   1. iperf3 -s -1 -B 198.18.0.3 under tools/xstack-run in namespace a,
#      kernel iperf3 -c in b: TCP upload to xstack, then (new server) -R
#      (xstack sends), then UDP -b 100M (received packets > 0, loss < 10%).
#   2. kernel iperf3 -s -1 in b (198.18.0.2), iperf3 -c under xstack-run in a:
#      TCP upload from xstack, then -R (xstack receives).
# XS_APPS_KERNEL_ONLY=1 runs the same with plain kernel sockets (lib.sh).
# shellcheck source=tests/apps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apps_require iperf3 iperf3
apps_setup xi

PORT=5201
SECS=3

# json_check FILE: prints a summary; exit 0 when the numbers are consistent
json_check() {
  python3 - "$1" <<'EOF'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception as e:
    print("no JSON (%s)" % e); sys.exit(1)
if j.get("error"):
    print("iperf3 error: %s" % j["error"]); sys.exit(1)
end = j.get("end", {})
if j.get("start", {}).get("test_start", {}).get("protocol") == "UDP":
    s = end.get("sum", {})
    pk, lost, b = s.get("packets", 0), s.get("lost_percent", 100.0), s.get("bytes", 0)
    print("UDP %d bytes, %d packets, %.2f%% lost" % (b, pk, lost))
    sys.exit(0 if b > 0 and pk > 0 and lost < 10.0 else 1)
snd, rcv = end.get("sum_sent", {}), end.get("sum_received", {})
sb, rb = snd.get("bytes", 0), rcv.get("bytes", 0)
print("sent %d bytes, received %d bytes (%.1f Mbit/s)" % (sb, rb, rcv.get("bits_per_second", 0) / 1e6))
sys.exit(0 if sb > 0 and rb > 0 and rb <= sb and rb >= 0.98 * sb else 1)
EOF
}

# run_case NAME WHERE_SERVER SERVER_IP CLIENT_RUN CLIENT_ARGS...
#   WHERE_SERVER: a (iperf3 -s under xstack) or b (kernel)
run_case() {
  local name=$1 where=$2 ip=$3 run=$4 srv summary rc
  shift 4
  local tag=${name//[^a-zA-Z0-9]/_}
  if [[ $where == a ]]; then
    bg_a "$TMP/$tag.srv" 60 iperf3 -s -1 -4 -B "$ip" -p $PORT --forceflush
  else
    bg_b "$TMP/$tag.srv" 60 iperf3 -s -1 -4 -B "$ip" -p $PORT --forceflush
  fi
  srv=$BG_PID
  if ! wait_log "$TMP/$tag.srv" 'Server listening' 30; then
    fail "$name: iperf3 server listening"
    show_log "$TMP/$tag.srv"
    stop_bg "$srv"
    return
  fi
  [[ $where != a ]] || warm_arp
  $run 60 iperf3 -c "$ip" -4 -p $PORT -t $SECS --json "$@" >"$TMP/$tag.json" 2>"$TMP/$tag.err" || true
  summary=$(json_check "$TMP/$tag.json") && rc=0 || rc=$?
  check "$name: $summary" test "$rc" -eq 0
  if ((rc != 0)); then
    show_log "$TMP/$tag.err" 10
    show_log "$TMP/$tag.srv" 15
  fi
  # the one-off server exits by itself after its test
  for ((i = 0; i < 50; i++)); do running "$srv" || break; sleep 0.1; done
  stop_bg "$srv"
}

echo "# 1. iperf3 server on xstack ($IP_X), kernel client in b"
run_case "1. b -> xstack server, TCP" a "$IP_X" in_b
run_case "1. xstack server -> b, TCP -R" a "$IP_X" in_b -R
run_case "1. b -> xstack server, UDP 100 Mbit/s" a "$IP_X" in_b -u -b 100M -l 1400
echo "# 2. kernel iperf3 server in b ($IP_B), client on xstack"
run_case "2. xstack client -> b, TCP" b "$IP_B" xs_a
run_case "2. b -> xstack client, TCP -R" b "$IP_B" xs_a -R

apps_finish
