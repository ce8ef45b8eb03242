# shellcheck shell=bash
# Shared helpers for the `apps` tests (tests/apps/test_*.sh): real, unmodified
# programs run over xstack through the LD_PRELOAD shim (tools/xstack-run), in
# a flat veth lab (tools/xstack-lab, docs/lab.md). See docs/apps.md.
#
# Usage in a test script:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   apps_require nginx-light nginx        # Debian package, then commands
#   apps_setup xn                         # 2-letter lab prefix; builds the lab
#   bg_a "$TMP/srv.log" 60 nginx ...      # program under test in a (xstack)
#   wait_tcp "$IP_X" 8080 30 || ...
#   out=$(in_b 30 curl ...)               # kernel peer in b
#   check "what" test ...
#   apps_finish
#
# Addresses: IP_X is the address of the program under test in namespace a:
# xstack's dedicated 198.18.0.3 (on no kernel interface: traffic to it proves
# the program runs on xstack). IP_B (198.18.0.2) is the kernel in b.
#
# Knobs (environment):
#   XS_APPS_KERNEL_ONLY=1  run the same checks with the programs in a on plain
#                          kernel sockets (no xstack-run) at 198.18.0.1: checks
#                          the tests themselves, and gives the kernel baseline.
#   XS_APPS_MODE=M         pass --mode M to xstack-run (interrupt|spin|busy-poll)
#   XS_APPS_LOG=L          pass --log L to xstack-run
#   XS_APPS_PRELOAD=PATH   the shim (default $XS_BUILD_DIR/shim/libxstack-preload.so)
#   XS_BUILD_DIR           build directory (ctest sets it; default <repo>/build)
#   XSTACK_RUN, XSTACK_LAB override tools/xstack-run, tools/xstack-lab
#   CI=true                a missing prerequisite is a failure (exit 1), not a
#                          skip (exit 77)
set -euo pipefail

APPS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$APPS_DIR/../.." && pwd)
LAB=${XSTACK_LAB:-$REPO/tools/xstack-lab}
XSRUN=${XSTACK_RUN:-$REPO/tools/xstack-run}
BUILD=${XS_BUILD_DIR:-$REPO/build}
PRELOAD=${XS_APPS_PRELOAD:-$BUILD/shim/libxstack-preload.so}
KERNEL_ONLY=false
[[ "${XS_APPS_KERNEL_ONLY:-}" == 1 ]] && KERNEL_ONLY=true
IN_CI=false
[[ "${CI:-}" == true ]] && IN_CI=true
APPS_TEST=$(basename "$0" .sh)

cannot_run() {
  if $IN_CI; then
    echo "FAIL: CI=true but $*: $APPS_TEST cannot run" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit 77
}

# apps_require PACKAGE CMD...: the commands must exist (else skip, or fail in CI).
apps_require() {
  local pkg=$1 c
  shift
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || cannot_run "command '$c' missing (apt-get install -y $pkg)"
  done
}

FAILS=0
CHECKS=0
pass() { echo "ok   - $*"; CHECKS=$((CHECKS + 1)); }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); CHECKS=$((CHECKS + 1)); }
check() {  # check DESCRIPTION CMD...
  local d=$1
  shift
  if "$@"; then pass "$d"; else fail "$d"; fi
}
# show_log FILE [LINES]: the last LINES (default 40) lines, indented
show_log() {
  echo "---- $1"
  tail -n "${2:-40}" "$1" 2>/dev/null | sed 's/^/   | /' || true
}
sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
# same_file A B: both exist, have the same size and sha256
same_file() { [[ -s "$1" && -s "$2" && "$(sha "$1")" == "$(sha "$2")" ]]; }
# same_file2 REF A B: A and B both match REF
same_file2() { same_file "$1" "$2" && same_file "$1" "$3"; }
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }

CHILDREN=()
TMP=""
N=""

# stop_bg PID: SIGTERM to the process and its group (every background command
# runs under `timeout`, which leads its own process group, so this reaches
# forked children too), up to 5 s, then SIGKILL to both.
stop_bg() {
  local pid=$1 i
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    running "$pid" || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
running() { [[ -d /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

apps_cleanup() {
  local rc=$?
  local p
  trap - EXIT
  for p in "${CHILDREN[@]}"; do
    kill -TERM -- "-$p" 2>/dev/null || true
    kill -TERM "$p" 2>/dev/null || true
  done
  ((${#CHILDREN[@]} == 0)) || sleep 0.3
  for p in "${CHILDREN[@]}"; do
    kill -KILL -- "-$p" 2>/dev/null || true
    kill -KILL "$p" 2>/dev/null || true
  done
  for p in "${CHILDREN[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -z "$N" ]] || "$LAB" down --name "$N" >/dev/null 2>&1 || true
  [[ -z "$TMP" ]] || rm -rf "$TMP"
  exit "$rc"
}

# apps_setup PREFIX: checks root, ip netns, the lab tool and (real mode) the
# launcher and the shim; builds a flat lab with a unique name PREFIX<digits>;
# sets N, TMP, IP_X, IP_B, IF_A, NS_A, NS_B, XS (the xstack-run prefix, empty
# in kernel-only mode) and installs the cleanup trap.
apps_setup() {
  local prefix=$1 c probe uniq
  [[ $(id -u) -eq 0 ]] || cannot_run "not root"
  for c in ip ethtool ping python3 timeout sha256sum; do
    command -v "$c" >/dev/null 2>&1 || cannot_run "command '$c' missing (apt-get install -y iproute2 ethtool iputils-ping python3 coreutils)"
  done
  [[ -x "$LAB" ]] || { echo "FAIL: $LAB not found or not executable" >&2; exit 1; }
  if ! $KERNEL_ONLY; then
    [[ -x "$XSRUN" ]] || cannot_run "launcher $XSRUN missing (not written yet?)"
    [[ -f "$PRELOAD" ]] || cannot_run "shim $PRELOAD not built (set XS_BUILD_DIR)"
  fi
  probe="xsaprobe$$"
  ip netns add "$probe" 2>/dev/null || cannot_run "'ip netns add' fails"
  ip netns del "$probe"

  uniq=$(((($$ * 32768) + RANDOM) % 100000000))
  N="${prefix}${uniq}"
  export XSL_QUIET=1
  TMP=$(mktemp -d "/tmp/xs-apps-$APPS_TEST.XXXXXX")
  chmod 755 "$TMP"
  trap apps_cleanup EXIT
  trap 'exit 130' INT TERM

  echo "# $APPS_TEST: lab $N, $($KERNEL_ONLY && echo 'KERNEL-ONLY mode (no xstack)' || echo 'xstack mode')"
  "$LAB" up --name "$N" >/dev/null || { echo "FAIL: lab up" >&2; exit 1; }
  eval "$("$LAB" env --name "$N")"
  IF_A=$XSL_IF_A
  NS_A=$XSL_NS_A
  NS_B=$XSL_NS_B
  IP_B=$XSL_IP_B
  if $KERNEL_ONLY; then
    IP_X=$XSL_IP_A   # 198.18.0.1: the kernel of a
    XS=()
  else
    IP_X=$XSL_IP_DEDICATED   # 198.18.0.3: xstack's own address in a
    XS=("$XSRUN" --if "$IF_A" --addr "$IP_X/24")
    [[ -z "${XS_APPS_MODE:-}" ]] || XS+=(--mode "$XS_APPS_MODE")
    [[ -z "${XS_APPS_LOG:-}" ]] || XS+=(--log "$XS_APPS_LOG")
    [[ -z "${XS_APPS_PRELOAD:-}" ]] || XS+=(--preload "$XS_APPS_PRELOAD")
    XS+=(--)
  fi
}

# xs_a SECS CMD...: runs CMD in a under xstack (kernel-only: plain), at most
# SECS seconds, in the foreground.
xs_a() {
  local t=$1
  shift
  "$LAB" exec --name "$N" a -- timeout -k 5 "$t" "${XS[@]}" "$@"
}
# in_b SECS CMD...: runs CMD in b (kernel), at most SECS seconds.
in_b() {
  local t=$1
  shift
  ip netns exec "$NS_B" timeout -k 5 "$t" "$@"
}
# kernel_a SECS CMD...: runs CMD in a on kernel sockets (never xstack).
kernel_a() {
  local t=$1
  shift
  ip netns exec "$NS_A" timeout -k 5 "$t" "$@"
}
# bg_a LOG SECS CMD... / bg_b LOG SECS CMD...: like xs_a / in_b in the
# background, stdout+stderr to LOG; sets BG_PID (the `timeout` process, which
# leads the command's process group); the cleanup trap kills it.
bg_a() {
  local log=$1 t=$2
  shift 2
  "$LAB" exec --name "$N" a -- timeout -k 5 "$t" "${XS[@]}" "$@" >"$log" 2>&1 &
  BG_PID=$!
  CHILDREN+=("$BG_PID")
}
bg_b() {
  local log=$1 t=$2
  shift 2
  ip netns exec "$NS_B" timeout -k 5 "$t" "$@" >"$log" 2>&1 &
  BG_PID=$!
  CHILDREN+=("$BG_PID")
}
# bg_io a|b IN OUT ERR SECS CMD...: like bg_a / bg_b with stdin from IN,
# stdout to OUT and stderr to ERR; sets BG_PID.
bg_io() {
  local ns=$1 in=$2 out=$3 err=$4 t=$5
  shift 5
  if [[ "$ns" == a ]]; then
    "$LAB" exec --name "$N" a -- timeout -k 5 "$t" "${XS[@]}" "$@" <"$in" >"$out" 2>"$err" &
  else
    ip netns exec "$NS_B" timeout -k 5 "$t" "$@" <"$in" >"$out" 2>"$err" &
  fi
  BG_PID=$!
  CHILDREN+=("$BG_PID")
}
# wait_rc PID: waits for a background command; sets RC to its exit status
# shellcheck disable=SC2034  # RC is read by the test scripts
wait_rc() {
  RC=0
  wait "$1" || RC=$?
}
# wait_log LOG PATTERN SECS: until LOG has a line matching PATTERN (grep -E)
wait_log() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# wait_tcp IP PORT SECS [PID]: until a TCP connect to IP:PORT succeeds. Probes
# from b when IP is in a (the server under test), from a's kernel otherwise.
# Gives up early when PID (the server) has exited. Do not use it on one-shot
# servers (nc -l, iperf3 -1): the probe would be their one connection.
wait_tcp() {
  local ip=$1 port=$2 secs=$3 pid=${4:-} ns=$NS_B end
  [[ "$ip" != "$IP_B" ]] || ns=$NS_A
  end=$((SECONDS + secs))
  while ((SECONDS < end)); do
    if timeout 2 ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$ip/$port" 2>/dev/null; then
      return 0
    fi
    [[ -z "$pid" ]] || running "$pid" || return 1
    sleep 0.2
  done
  return 1
}
# warm_arp: one ping from b to the address under test, once its server is up
# (not before: an unanswered ARP leaves b a FAILED neighbour entry), so that
# the first measured connection does not race the XDP attach or ARP.
warm_arp() { ip netns exec "$NS_B" ping -n -q -c 1 -W 2 "$IP_X" >/dev/null 2>&1 || true; }

# make_file PATH BYTES: random content
make_file() { head -c "$2" /dev/urandom >"$1"; }

apps_finish() {
  if ((FAILS > 0)); then
    echo "$APPS_TEST: $FAILS of $CHECKS check(s) FAILED"
    exit 1
  fi
  if ((CHECKS == 0)); then
    echo "$APPS_TEST: no checks ran"
    exit 1
  fi
  echo "$APPS_TEST: all $CHECKS checks passed"
  exit 0
}
