#!/usr/bin/env bash
# Conformance of the LD_PRELOAD shim's interposition semantics (ctest
# apps_shim_conformance, label `apps`).
#
# In a flat lab with a unique name, runs xs_shim_conformance
# (tests/shim/shim_conformance.cpp) twice in namespace a, each time against a
# fresh tests/shim/shim_peer.py (kernel sockets) in namespace b:
#   kernel   plain, on kernel sockets, local address 198.18.0.1
#   xstack   under tools/xstack-run --if <a's veth> --addr 198.18.0.3/24
#            (the shim; local address 198.18.0.3, xstack's dedicated one)
# Both runs must pass every case (epoll/poll/select over mixed sets, EINTR,
# dup*, O_NONBLOCK/FIONREAD, kernel fallback, sendfile, fork, names); a
# per-case table of both runs is printed at the end.
# Always tears the lab down and kills what it started (trap), even on failure.
#
# Binaries come from $XS_BUILD_DIR (ctest sets it): tests/xs_shim_conformance
# and shim/libxstack-preload.so. XS_SHIM_ONLY=1,4 runs only those cases.
# Needs root and `ip netns`. With CI=true a missing prerequisite is a FAILURE
# (exit 1); otherwise the test is skipped with exit 77 (SKIP_RETURN_CODE).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$HERE/../..
LAB=${XSTACK_LAB:-$ROOT/tools/xstack-lab}
RUN=$ROOT/tools/xstack-run
PEER=$HERE/shim_peer.py
BUILD=${XS_BUILD_DIR:-$ROOT/build}
BIN=$BUILD/tests/xs_shim_conformance
SHIM=$BUILD/shim/libxstack-preload.so
ONLY=()
[[ -n "${XS_SHIM_ONLY:-}" ]] && ONLY=(--only "$XS_SHIM_ONLY")
LAB_TEST="the shim conformance test"
source "$HERE/../support/lab_test.sh"

lab_test_need_shim
[[ -x "$BIN" ]] || { echo "FAIL: $BIN not built (set XS_BUILD_DIR)" >&2; exit 1; }
lab_test_init xs
lab_test_up
ip netns exec "$XSL_NS_A" ip link set lo up

# run_mode MODE LOCAL PORT CMD-PREFIX... : one run against a fresh peer.
FAILS=0
run_mode() {
  local mode=$1 local_ip=$2 port=$3; shift 3
  local plog=$TMP/peer_$mode.log log=$TMP/run_$mode.log rc=0 ppid
  echo "# run: $mode (local $local_ip, peer $XSL_IP_B:$port)"
  "${IN_B[@]}" timeout 120 python3 "$PEER" "$XSL_IP_B" "$port" 110 >"$plog" 2>&1 &
  ppid=$!
  CHILDREN+=("$ppid")
  if ! wait_for "$plog" "^listening" 20; then
    echo "FAIL - $mode: peer not listening"
    show_log "$plog"
    FAILS=$((FAILS + 1))
    return
  fi
  "${IN_A[@]}" timeout 80 "$@" "$BIN" --mode "$mode" --local "$local_ip" --peer "$XSL_IP_B" --port "$port" \
    "${ONLY[@]}" >"$log" 2>&1 || rc=$?
  sed 's/^/   | /' "$log"
  kill -KILL "$ppid" 2>/dev/null || true
  wait "$ppid" 2>/dev/null || true
  if ((rc != 0)); then
    echo "FAIL - $mode run (exit $rc)"
    [[ -s "$plog" ]] && show_log "$plog"
    FAILS=$((FAILS + 1))
  elif ! grep -q '^summary: .*failed=0' "$log"; then
    echo "FAIL - $mode run: no clean summary line"
    FAILS=$((FAILS + 1))
  else
    echo "ok   - $mode run"
  fi
}

run_mode kernel "$XSL_IP_A" 7301
run_mode xstack "$XSL_IP_DEDICATED" 7302 "$RUN" --if "$XSL_IF_A" --addr "$XSL_IP_DEDICATED/24" --preload "$SHIM" --

# Per-case table of both runs.
echo "# case    kernel  xstack"
ncases=$(grep -oE "^(ok  |FAIL) - case [0-9]+" "$TMP/run_kernel.log" "$TMP/run_xstack.log" 2>/dev/null |
  grep -oE "[0-9]+$" | sort -n | tail -1 || true)
for ((i = 1; i <= ${ncases:-0}; i++)); do
  k=$(grep -E "^(ok  |FAIL) - case ${i}[: ]" "$TMP/run_kernel.log" 2>/dev/null | head -1 | cut -c1-4 || true)
  x=$(grep -E "^(ok  |FAIL) - case ${i}[: ]" "$TMP/run_xstack.log" 2>/dev/null | head -1 | cut -c1-4 || true)
  printf '# %-7s %-7s %s\n' "$i" "${k:--}" "${x:--}"
done

if ((FAILS > 0)); then
  echo "test_shim: $FAILS run(s) FAILED"
  exit 1
fi
echo "test_shim: both runs passed"
