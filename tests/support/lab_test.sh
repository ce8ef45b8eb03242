# shellcheck shell=bash
# The frame shared by shell tests that build a lab of their own
# (tests/veth/test_examples.sh, tests/veth/test_observability.sh,
# tests/shim/test_shim.sh, tests/shim/test_py_diff.sh). Sourced after `set -euo pipefail` with
#   LAB_TEST="the ... test"   (named in the CI failure message)
#   LAB (tools/xstack-lab)
# It gives: IN_CI, cannot_run, lab_test_init PREFIX (root, netns, unique lab
# name N, TMP, CHILDREN, the cleanup trap), lab_test_need_shim (the commands,
# lab tool, launcher and shim a shim test needs), lab_test_up (the lab, its env,
# IN_A/IN_B), pass/fail/check/show_log, start_bg, wait_for, running.
# A test that must clean up more defines lab_test_cleanup_extra.

IN_CI=false
[[ "${CI:-}" == true ]] && IN_CI=true

# In CI a test that cannot run fails (exit 1); elsewhere it is skipped (77).
cannot_run() {
  if $IN_CI; then
    echo "FAIL: CI=true but $*: $LAB_TEST cannot run" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit 77
}

lab_test_cleanup() {
  local rc=$?
  local p
  for p in "${CHILDREN[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${CHILDREN[@]}"; do wait "$p" 2>/dev/null || true; done
  "$LAB" down --name "$N" >/dev/null 2>&1 || true
  if declare -F lab_test_cleanup_extra >/dev/null; then lab_test_cleanup_extra || true; fi
  rm -rf "$TMP"
  exit "$rc"
}

# lab_test_init PREFIX: checks root and namespaces, picks a lab name
# PREFIX<digits> no other run uses, and tears everything down on exit.
lab_test_init() {
  [[ $(id -u) -eq 0 ]] || cannot_run "not root"
  local probe="${1}probe$$"
  ip netns add "$probe" 2>/dev/null || cannot_run "'ip netns add' fails"
  ip netns del "$probe"
  local uniq=$(( ($$ * 32768 + RANDOM) % 100000000 ))
  N="${1}${uniq}"
  export XSL_QUIET=1
  TMP=$(mktemp -d)
  CHILDREN=()
  trap lab_test_cleanup EXIT
  trap 'exit 130' INT TERM
}

# lab_test_need_shim: what a test running a program under the shim needs:
# the commands (missing: cannot_run), and the lab tool $LAB, the launcher
# $RUN and the built shim $SHIM (missing: a failure, it is ours to build).
lab_test_need_shim() {
  local c
  for c in ip ethtool python3 timeout; do
    command -v "$c" >/dev/null 2>&1 || cannot_run "command '$c' missing (apt-get install -y iproute2 ethtool python3 coreutils)"
  done
  [[ -x "$LAB" ]] || { echo "FAIL: $LAB not found or not executable" >&2; exit 1; }
  [[ -x "$RUN" ]] || { echo "FAIL: $RUN not found or not executable" >&2; exit 1; }
  [[ -f "$SHIM" ]] || { echo "FAIL: $SHIM not built (set XS_BUILD_DIR)" >&2; exit 1; }
}

# lab_test_up: the flat lab; sets the XSL_* variables, IN_A and IN_B.
lab_test_up() {
  echo "# lab $N"
  "$LAB" up --name "$N" >/dev/null || { echo "FAIL: lab up" >&2; exit 1; }
  eval "$("$LAB" env --name "$N")"
  IN_A=("$LAB" exec --name "$N" a --)
  IN_B=("$LAB" exec --name "$N" b --)
}

FAILS=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() {  # check DESCRIPTION CMD...
  local d=$1; shift
  if "$@"; then pass "$d"; else fail "$d"; fi
}
show_log() { echo "---- $1"; sed 's/^/   | /' "$1" 2>/dev/null || true; }

# start_bg LOG CMD... : runs the external CMD in the background; sets BG_PID.
# Pass "${IN_A[@]}" (not a shell function): lab exec execs all the way down,
# so $! ends up being the program itself, which a signal must reach.
start_bg() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  BG_PID=$!
  CHILDREN+=("$BG_PID")
}
wait_for() {  # wait_for LOG PATTERN SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# a process runs when /proc has an entry that is not a zombie (not yet reaped)
running() { [[ -d /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
