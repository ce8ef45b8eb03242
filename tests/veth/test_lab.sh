#!/usr/bin/env bash
# Test for tools/xstack-lab (ctest label `veth`).
#
# Brings up labs with unique names, checks connectivity, queues, checksum
# offload, bpffs in `exec a`, idempotent `up`, the router variant with netem
# (RTT vs configured delay, in each direction), loss, and that `down` removes
# everything. Always tears its labs down (trap), even on failure.
#
# Needs root and `ip netns`. With CI=true a missing prerequisite is a FAILURE
# (exit 1); otherwise the test is skipped with exit 77 (SKIP_RETURN_CODE).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=${XSTACK_LAB:-$HERE/../../tools/xstack-lab}
IN_CI=false
[[ "${CI:-}" == true ]] && IN_CI=true

cannot_run() {
  if $IN_CI; then
    echo "FAIL: CI=true but $*: the lab test cannot run" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit 77
}

[[ $(id -u) -eq 0 ]] || cannot_run "not root"
for c in ip ethtool tc ping python3 iptables; do
  command -v "$c" >/dev/null 2>&1 || cannot_run "command '$c' missing (apt-get install -y iproute2 ethtool iputils-ping iptables python3)"
done
[[ -x "$LAB" ]] || { echo "FAIL: $LAB not found or not executable" >&2; exit 1; }
probe="xslprobe$$"
if ! ip netns add "$probe" 2>/dev/null; then
  cannot_run "'ip netns add' fails"
fi
ip netns del "$probe"

# Unique names (<= 12 chars): flat lab N1, router lab N2.
uniq=$(( ($$ * 32768 + RANDOM) % 100000000 ))
N1="xt${uniq}"
N2="xr${uniq}"
export XSL_QUIET=1

cleanup() {
  local rc=$?
  "$LAB" down --name "$N1" >/dev/null 2>&1 || true
  "$LAB" down --name "$N2" >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILS=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() {  # check DESCRIPTION CMD...
  local d=$1; shift
  if "$@"; then pass "$d"; else fail "$d"; fi
}
# a process is gone when /proc has no entry or it is a zombie not yet reaped by init
gone() { [[ ! -d /proc/$1 ]] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
lab_ns() { ip netns list | awk '{print $1}' | grep -E "^$1-(a|b|r)$" | sort | tr '\n' ' ' || true; }

# min RTT in ms (integer microseconds to avoid float shell maths) of COUNT pings
# min_rtt_us LABNAME NS DST COUNT -> prints microseconds, or -1 if no reply
min_rtt_us() {
  local out
  out=$("$LAB" exec --name "$1" "$2" -- ping -n -c "$4" -i 0.1 -W 2 "$3" 2>&1 || true)
  awk -F'[/ =]+' '/^rtt|^round-trip/ { for (i = 1; i <= NF; i++) if ($i == "mdev") { printf "%d\n", $(i+1) * 1000; found=1 } }
                  END { if (!found) print -1 }' <<<"$out"
}
received() {  # received LABNAME NS DST COUNT -> number of replies
  "$LAB" exec --name "$1" "$2" -- ping -n -c "$4" -i 0.05 -W 1 "$3" 2>/dev/null |
    awk '/packets transmitted/ { print $4; f=1 } END { if (!f) print 0 }' || true
}

# ---------------------------------------------------------------- flat lab
echo "# flat lab $N1 (2 queues)"
check "up --queues 2" "$LAB" up --name "$N1" --queues 2
check "namespaces $N1-a and $N1-b exist" test "$(lab_ns "$N1")" = "$N1-a $N1-b "
check "ping b -> a (198.18.0.1)" "$LAB" exec --name "$N1" b -- ping -n -q -c 3 -i 0.1 -W 2 198.18.0.1
check "ping a -> b (198.18.0.2)" "$LAB" exec --name "$N1" a -- ping -n -q -c 1 -W 2 198.18.0.2
check "a's veth has 2 tx/rx queues" \
  bash -c "ip -n $N1-a -d link show dev ${N1}a | grep -q 'numtxqueues 2 numrxqueues 2'"
check "b's veth has 2 tx/rx queues" \
  bash -c "ip -n $N1-b -d link show dev ${N1}b | grep -q 'numtxqueues 2 numrxqueues 2'"
check "b's veth (kernel side) has tx checksum offload off" \
  bash -c "ip netns exec $N1-b ethtool -k ${N1}b | grep -q '^tx-checksumming: off'"
check "dedicated IP 198.18.0.3 not configured in a" \
  bash -c "! ip -n $N1-a addr show | grep -q '198.18.0.3/'"
check "exec a mounts bpffs at /sys/fs/bpf" \
  bash -c "[ \"\$('$LAB' exec --name $N1 a -- stat -f -c %T /sys/fs/bpf)\" = bpf_fs ]"
check "status succeeds" bash -c "'$LAB' status --name $N1 >/dev/null"

echo "# up again on an existing lab (idempotent: rebuild)"
check "second up succeeds" "$LAB" up --name "$N1" --queues 2
check "still exactly one a and one b namespace" test "$(lab_ns "$N1")" = "$N1-a $N1-b "
check "ping b -> a after second up" "$LAB" exec --name "$N1" b -- ping -n -q -c 2 -i 0.1 -W 2 198.18.0.1

# Optional: an XDP program left attached (netlink) is shown by status and does not block down.
if command -v clang >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  printf '%s\n' '__attribute__((section("xdp"), used)) int xdp_pass(void *c) { return 2; }' \
                '__attribute__((section("license"), used)) char _l[] = "GPL";' >"$tmp/p.c"
  if clang -O2 -target bpf -c "$tmp/p.c" -o "$tmp/p.o" 2>/dev/null &&
     ip -n "$N1-a" link set dev "${N1}a" xdpdrv obj "$tmp/p.o" sec xdp 2>/dev/null; then
    check "status reports the attached XDP program" \
      bash -c "'$LAB' status --name $N1 | grep -q '${N1}a .*xdp: attached'"
  else
    echo "note - could not attach a test XDP program; XDP status check not run"
  fi
  rm -rf "$tmp"
fi

echo "# down"
check "down succeeds" "$LAB" down --name "$N1"
check "no $N1 namespaces left" test -z "$(lab_ns "$N1")"
check "down again succeeds (nothing to do)" "$LAB" down --name "$N1"
check "status of a missing lab exits non-zero" bash -c "! '$LAB' status --name $N1 >/dev/null"

# ---------------------------------------------------------------- router lab + netem
# netem "delay D" sits on BOTH router egress interfaces. A packet a->b leaves
# the router towards b once (D), the reply leaves it towards a once (D):
#   ping a<->b   RTT >= 2*D   (one netem hop per direction)
#   ping r -> a  RTT >= D     (only r's egress towards a is impaired)
#   ping r -> b  RTT >= D     (only r's egress towards b is impaired)
# The last two prove that each direction is delayed on its own.
D_MS=5
echo "# router lab $N2, netem 'delay ${D_MS}ms'"
check "up --router --netem 'delay ${D_MS}ms'" "$LAB" up --name "$N2" --router --netem "delay ${D_MS}ms"
check "namespaces $N2-a, $N2-b, $N2-r exist" test "$(lab_ns "$N2")" = "$N2-a $N2-b $N2-r "
backend=$(cat "/run/xstack-lab/$N2/netem_backend" 2>/dev/null || echo "?")
echo "# netem backend: $backend"
check "router forwards (ip_forward=1)" \
  bash -c "[ \"\$(ip netns exec $N2-r sysctl -n net.ipv4.ip_forward)\" = 1 ]"
for dev in "${N2}ra" "${N2}rb"; do
  check "router's $dev has tx checksum offload off" \
    bash -c "ip netns exec $N2-r ethtool -k $dev | grep -q '^tx-checksumming: off'"
done
check "b's veth has tx checksum offload off" \
  bash -c "ip netns exec $N2-b ethtool -k ${N2}b | grep -q '^tx-checksumming: off'"

rtt_check() {  # rtt_check FROM DST MIN_US MAX_US
  local us
  us=$(min_rtt_us "$N2" "$1" "$2" 10)
  if ((us >= $3 && us < $4)); then
    pass "ping $1 -> $2: min RTT $((us / 1000)).$(printf %03d $((us % 1000))) ms in [$(($3 / 1000)), $(($4 / 1000))) ms"
  else
    fail "ping $1 -> $2: min RTT ${us} us, expected [$3, $4) us"
  fi
}
D_US=$((D_MS * 1000))
# Lower bounds are the physics; upper bounds catch delay applied twice per hop
# (generous: the nfqueue backend wakes up in userspace on a loaded machine).
rtt_check b 198.18.0.1 $((2 * D_US)) $((2 * D_US + 3 * D_US / 2))
rtt_check a 198.18.1.2 $((2 * D_US)) $((2 * D_US + 3 * D_US / 2))
rtt_check r 198.18.0.1 "$D_US" $((D_US + 3 * D_US / 4))
rtt_check r 198.18.1.2 "$D_US" $((D_US + 3 * D_US / 4))
helper_pid=$(cat "/run/xstack-lab/$N2/impair.pid" 2>/dev/null || true)

echo "# up again with 'loss 100%': nothing gets through"
check "up --router --netem 'delay 1ms loss 100%'" "$LAB" up --name "$N2" --router --netem "delay 1ms loss 100%"
if [[ -n "$helper_pid" ]]; then
  check "the previous impairment helper was stopped" gone "$helper_pid"
fi
check "still exactly three namespaces" test "$(lab_ns "$N2")" = "$N2-a $N2-b $N2-r "
got=$(received "$N2" b 198.18.0.1 5)
check "no replies through 100% loss (got $got)" test "$got" -eq 0

echo "# the documented example spec"
check "up --router --netem 'delay 5ms loss 1% reorder 25%' --queues 2 --mtu 3000" \
  "$LAB" up --name "$N2" --router --netem "delay 5ms loss 1% reorder 25%" --queues 2 --mtu 3000
got=$(received "$N2" b 198.18.0.1 20)
check "most pings get through 1% loss (got $got/20)" test "$got" -ge 15
check "a's veth has MTU 3000" bash -c "ip -n $N2-a link show dev ${N2}a | grep -q 'mtu 3000'"
helper_pid=$(cat "/run/xstack-lab/$N2/impair.pid" 2>/dev/null || true)

check "down (router lab) succeeds" "$LAB" down --name "$N2"
check "no $N2 namespaces left" test -z "$(lab_ns "$N2")"
if [[ -n "$helper_pid" ]]; then
  check "impairment helper stopped by down" gone "$helper_pid"
fi

echo "# argument errors"
check "--netem without --router is refused" bash -c "! '$LAB' up --name $N1 --netem 'delay 1ms' 2>/dev/null"
check "a name too long for interface names is refused" bash -c "! '$LAB' up --name abcdefghijklm 2>/dev/null"
check "no namespaces created by refused commands" test -z "$(lab_ns "$N1")"

if ((FAILS > 0)); then
  echo "test_lab: $FAILS check(s) FAILED"
  exit 1
fi
echo "test_lab: all checks passed"
