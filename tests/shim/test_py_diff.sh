#!/usr/bin/env bash
# Differential conformance of the LD_PRELOAD shim, driven by Python (ctest
# apps_shim_pydiff, label `apps`).
#
# In a flat lab with a unique name, runs tests/shim/py_diff.py twice in
# namespace a, each time against a fresh tests/shim/py_diff_peer.py (kernel
# sockets) in namespace b:
#   kernel   plain python3 on kernel sockets, local address 198.18.0.1
#   xstack   python3 under tools/xstack-run --if <a's veth> --addr 198.18.0.3/24
#            (the shim interposes python3's libc socket calls)
# Each run prints one normalised JSON line per case; the test compares them
# case by case and fails on any difference (or when the kernel run itself
# does not complete every case cleanly). The cases that differ are listed. Cases
# named info_* (host-configuration or by-design differences: HZ rounding of
# SO_RCVTIMEO, the default congestion control) are shown but never fail.
# Each run must also report the backend it was meant to use (fstat of a fresh
# socket: a socket for the kernel, an eventfd for xstack), so a shim that
# silently fell back to the kernel cannot pass.
# Always tears the lab down and kills what it started (trap), even on failure.
#
# Binaries come from $XS_BUILD_DIR (ctest sets it): shim/libxstack-preload.so.
# XS_PYDIFF_ONLY=case1,case2 runs only those cases. XS_PYDIFF_KEEP=DIR keeps
# both runs' JSON output in DIR.
# Needs root and `ip netns`. With CI=true a missing prerequisite is a FAILURE
# (exit 1); otherwise the test is skipped with exit 77 (SKIP_RETURN_CODE).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$HERE/../..
LAB=${XSTACK_LAB:-$ROOT/tools/xstack-lab}
RUN=$ROOT/tools/xstack-run
PEER=$HERE/py_diff_peer.py
CASES=$HERE/py_diff.py
BUILD=${XS_BUILD_DIR:-$ROOT/build}
SHIM=$BUILD/shim/libxstack-preload.so
PORT=7400
ONLY=()
[[ -n "${XS_PYDIFF_ONLY:-}" ]] && ONLY=(--only "$XS_PYDIFF_ONLY")
LAB_TEST="the python differential shim test"
source "$HERE/../support/lab_test.sh"

lab_test_need_shim
lab_test_init pd
lab_test_up
ip netns exec "$XSL_NS_A" ip link set lo up

# run_mode MODE LOCAL CMD-PREFIX... : one run against a fresh peer; the
# JSON lines go to $TMP/MODE.jsonl.
run_mode() {
  local mode=$1 local_ip=$2; shift 2
  local plog=$TMP/peer_$mode.log out=$TMP/$mode.jsonl err=$TMP/$mode.err rc=0 ppid
  echo "# run: $mode (local $local_ip, peer $XSL_IP_B:$PORT)"
  # no `timeout` wrapper: $! must be the peer itself (lab exec execs down to
  # it) so that the kill below reaches it; it exits by itself after 75 s
  "${IN_B[@]}" python3 "$PEER" "$XSL_IP_B" "$PORT" 75 >"$plog" 2>&1 &
  ppid=$!
  CHILDREN+=("$ppid")
  if ! wait_for "$plog" "^listening" 20; then
    fail "$mode: peer not listening"
    show_log "$plog"
    return
  fi
  "${IN_A[@]}" timeout -k 5 60 "$@" python3 "$CASES" --local "$local_ip" --peer "$XSL_IP_B" --port "$PORT" \
    "${ONLY[@]}" >"$out" 2>"$err" || rc=$?
  kill -KILL "$ppid" 2>/dev/null || true
  wait "$ppid" 2>/dev/null || true
  if [[ -s "$err" ]]; then
    echo "   stderr of the $mode run:"
    sed 's/^/   | /' "$err" | head -40
  fi
  [[ -s "$plog" ]] && grep -v '^listening' "$plog" | sed 's/^/   peer | /' | head -20 || true
  if ((rc != 0)); then
    fail "$mode run (exit $rc)"
  elif ! grep -q '"summary"' "$out"; then
    fail "$mode run: no summary line"
  elif ! grep -q "\"backend\": \"$mode\"" "$out"; then
    fail "$mode run: its sockets were not on $mode ($(grep -o '"backend": "[a-z]*"' "$out"))"
  else
    pass "$mode run completed ($(grep -o '"summary".*' "$out"))"
  fi
}

run_mode kernel "$XSL_IP_A"
run_mode xstack "$XSL_IP_DEDICATED" "$RUN" --if "$XSL_IF_A" --addr "$XSL_IP_DEDICATED/24" --preload "$SHIM" --

if [[ -n "${XS_PYDIFF_KEEP:-}" ]]; then
  mkdir -p "$XS_PYDIFF_KEEP"
  cp "$TMP/kernel.jsonl" "$TMP/xstack.jsonl" "$XS_PYDIFF_KEEP/" 2>/dev/null || true
fi

# Case-by-case comparison; the kernel run must also be clean on its own.
rc=0
python3 - "$TMP/kernel.jsonl" "$TMP/xstack.jsonl" <<'PY' || rc=$?
import json, sys

def load(path):
    cases, order, summary = {}, [], None
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if "summary" in d:
                    summary = d["summary"]
                elif "case" in d:
                    cases[d["case"]] = d["r"]
                    order.append(d["case"])
    except OSError:
        pass
    return cases, order, summary

k, korder, ksum = load(sys.argv[1])
x, xorder, xsum = load(sys.argv[2])
order = korder + [c for c in xorder if c not in k]
bad_kernel = [c for c in korder if isinstance(k[c], str) and (k[c] == "TIMEOUT" or k[c].startswith("X:"))]
# info_* cases record a difference that depends on the host's configuration
# or on what xstack implements by design (HZ, the default congestion control):
# shown, never a failure.
# Only the cases that differ get a row: CI shows a bounded excerpt of a
# failing test's output, and 160 "same" rows would push the mismatch out of it.
diff, info = [], []
for c in order:
    if k.get(c, "<missing>") != x.get(c, "<missing>"):
        (info if c.startswith("info_") else diff).append(c)
print(f"# {len(order) - len(diff) - len(info)} of {len(order)} cases the same")
for c in order:
    if c in diff or c in info:
        print("# %-32s %s" % (c, "differs (info)" if c in info else "DIFFERENT"))
for c in diff + info:
    print(f"{'MISMATCH' if c in diff else 'INFO-DIFF'} {c}")
    print(f"   kernel: {json.dumps(k.get(c, '<missing>'), sort_keys=True)}")
    print(f"   xstack: {json.dumps(x.get(c, '<missing>'), sort_keys=True)}")
for c in bad_kernel:
    print(f"KERNEL-ERROR {c}: {k[c]}")
print(f"cases: {len(order)}  mismatches: {len(diff)}  info differences: {len(info)}  kernel errors: {len(bad_kernel)}")
sys.exit(1 if diff or bad_kernel or not order else 0)
PY
((rc == 0)) || fail "kernel and xstack runs differ (or the kernel run is not clean)"

if ((FAILS > 0)); then
  echo "test_py_diff: $FAILS check(s) FAILED"
  exit 1
fi
echo "test_py_diff: both runs agree"
