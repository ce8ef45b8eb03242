#!/usr/bin/env bash
# Test for xstack-stat and xstack-dump (docs/observability.md; ctest label `veth`).
#
# In a flat lab with a unique name, runs xs_echo_server on xstack's dedicated
# address 198.18.0.3 in namespace a, and from namespace b a kernel client that
# connects, echoes 1000 bytes and holds the connection open. Checks:
#   xstack-stat -p PID     the connection ESTAB with both addresses, the
#                          listener, tcp_in_segs > 0; --json parses
#   xstack-dump -p PID     started before the client: the pcap (read back by
#                          tcpdump/tshark and by a parser here) holds exactly one
#                          SYN, one SYN-ACK, and 1000 payload bytes each way for
#                          that connection; -c COUNT stops after COUNT frames
#   SIGKILLed xstack-dump  the engine notices and removes the capture segment
#   server stops           its stats segment is gone
# Always tears the lab down and kills what it started (trap), even on failure.
#
# Binaries from $XS_BUILD_DIR (ctest sets it). Needs root, `ip netns`, tcpdump
# or tshark. With CI=true a missing prerequisite is a FAILURE (exit 1);
# otherwise the test is skipped with exit 77 (SKIP_RETURN_CODE).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=${XSTACK_LAB:-$HERE/../../tools/xstack-lab}
BUILD=${XS_BUILD_DIR:-$HERE/../../build}
SERVER=$BUILD/tools/examples/xs_echo_server
STAT=$BUILD/tools/observe/xstack-stat
DUMP=$BUILD/tools/observe/xstack-dump
LAB_TEST="the observability test"
source "$HERE/../support/lab_test.sh"

for c in ip ethtool ping python3 timeout; do
  command -v "$c" >/dev/null 2>&1 || cannot_run "command '$c' missing (apt-get install -y iproute2 ethtool iputils-ping python3)"
done
READER=""
if command -v tshark >/dev/null 2>&1; then READER=tshark
elif command -v tcpdump >/dev/null 2>&1; then READER=tcpdump
else cannot_run "neither tshark nor tcpdump installed (apt-get install -y tcpdump)"; fi
[[ -x "$LAB" ]] || { echo "FAIL: $LAB not found or not executable" >&2; exit 1; }
for b in "$SERVER" "$STAT" "$DUMP"; do
  [[ -x "$b" ]] || { echo "FAIL: $b not built (set XS_BUILD_DIR)" >&2; exit 1; }
done
lab_test_init xo
# a server killed by the cleanup cannot unlink its segments
lab_test_cleanup_extra() {
  [[ -n "${SRV_PID:-}" ]] && rm -f "/dev/shm/xstack-$SRV_PID" "/dev/shm/xstack-$SRV_PID-cap"
}
lab_test_up
IP_X=$XSL_IP_DEDICATED   # 198.18.0.3: xstack's own address in a
IP_B=$XSL_IP_B           # 198.18.0.2: the kernel in b
PORT=7000

start_bg "$TMP/server.log" "${IN_A[@]}" env XSTACK_IF="$XSL_IF_A" XSTACK_ADDR="$IP_X/24" XSTACK_STATS_PERIOD_MS=50 \
  "$SERVER" "$PORT"
SRV_PID=$BG_PID
wait_for "$TMP/server.log" "^listening" 20 || { show_log "$TMP/server.log"; echo "FAIL: server did not start"; exit 1; }
"${IN_B[@]}" ping -n -q -c 1 -W 2 "$IP_X" >/dev/null 2>&1 || true  # ARP, XDP attach settles
check "stats segment /dev/shm/xstack-$SRV_PID exists" test -e "/dev/shm/xstack-$SRV_PID"

# ------------------------------------------------------------ capture + client
start_bg "$TMP/dump.log" "$DUMP" -p "$SRV_PID" -w "$TMP/conn.pcap" -G 60
DUMP_PID=$BG_PID
wait_for "$TMP/dump.log" "capturing" 10 || { show_log "$TMP/dump.log"; fail "xstack-dump starts"; }
# The engine attaches at its first poll after a publish period has passed
# since the last snapshot (here 50 ms): let that period pass, so the poll that
# takes the SYN attaches first.
sleep 0.2

# The client: connect, echo 1000 bytes, print its port, hold the connection
# until $TMP/release exists (at most 30 s), then close.
cat >"$TMP/client.py" <<'EOF'
import os, socket, sys, time
host, port, release = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=10)
data = bytes((i * 7) & 255 for i in range(1000))
s.sendall(data)
got = b""
while len(got) < len(data):
    chunk = s.recv(4096)
    if not chunk:
        break
    got += chunk
print("port", s.getsockname()[1], "echo", "ok" if got == data else "BAD", flush=True)
for _ in range(300):
    if os.path.exists(release):
        break
    time.sleep(0.1)
s.close()
print("closed", flush=True)
EOF
start_bg "$TMP/client.log" "${IN_B[@]}" timeout 60 python3 "$TMP/client.py" "$IP_X" "$PORT" "$TMP/release"
CLIENT_PID=$BG_PID
if wait_for "$TMP/client.log" "^port" 15; then
  CPORT=$(awk '/^port/ { print $2 }' "$TMP/client.log")
  check "client echo of 1000 bytes" grep -q "echo ok" "$TMP/client.log"
else
  show_log "$TMP/client.log"
  fail "client connects"
  CPORT=0
fi

# ------------------------------------------------------------ xstack-stat
sleep 0.3  # > one publish period (50 ms) after the echo
"$STAT" -p "$SRV_PID" >"$TMP/stat.txt" 2>&1 || true
show_log "$TMP/stat.txt" | head -40
check "xstack-stat: ESTAB $IP_X:$PORT <-> $IP_B:$CPORT" \
  grep -Eq "^tcp +ESTAB +[0-9]+ +[0-9]+ +$IP_X:$PORT +$IP_B:$CPORT( |$)" "$TMP/stat.txt"
check "xstack-stat: the listener on port $PORT" grep -Eq "^tcp +LISTEN +0 +[0-9]+ +[0-9.]+:$PORT " "$TMP/stat.txt"
check "xstack-stat: info line with rtt and cwnd" grep -Eq "rtt:[0-9.]+/[0-9.]+ .*cwnd:[0-9]+ .*bytes_received:1000 " \
  "$TMP/stat.txt"
insegs=$(awk '$1 == "tcp_in_segs" { print $2 }' "$TMP/stat.txt")
check "xstack-stat: tcp_in_segs nonzero (${insegs:-missing})" test "${insegs:-0}" -gt 0
"$STAT" -p "$SRV_PID" -t >"$TMP/stat_t.txt" 2>&1 || true
check "xstack-stat -t: no counters" bash -c "! grep -q tcp_in_segs '$TMP/stat_t.txt' && grep -q ESTAB '$TMP/stat_t.txt'"
"$STAT" -p "$SRV_PID" --json >"$TMP/stat.json" 2>&1 || true
check "xstack-stat --json parses and has the connection and tcp_in_segs" python3 - "$TMP/stat.json" "$IP_B:$CPORT" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
socks = [s for s in doc[0]["sockets"] if s["state"] == "ESTAB" and s["peer"] == sys.argv[2]]
sys.exit(0 if len(socks) == 1 and doc[0]["counters"]["tcp_in_segs"] > 0 else 1)
EOF
"$STAT" >"$TMP/stat_all.txt" 2>&1 || true
check "xstack-stat (no -p) lists this process" grep -q "pid $SRV_PID " "$TMP/stat_all.txt"

# ------------------------------------------------------------ close, stop dump
touch "$TMP/release"
rc=0; wait "$CLIENT_PID" || rc=$?
check "client closed cleanly" test "$rc" -eq 0
sleep 0.5  # FIN/ACK exchange captured
kill -INT "$DUMP_PID" 2>/dev/null || true
rc=0; wait "$DUMP_PID" || rc=$?
show_log "$TMP/dump.log"
check "xstack-dump exits 0 on SIGINT" test "$rc" -eq 0
check "xstack-dump reports counts on exit" grep -Eq "[0-9]+ packets captured, 0 dropped" "$TMP/dump.log"
check "capture segment removed" test ! -e "/dev/shm/xstack-$SRV_PID-cap"

# Frames of the connection, from a plain parser of the pcap.
cat >"$TMP/pcap_count.py" <<'EOF'
import struct, sys
path, cport, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b = open(path, "rb").read()
magic, _, _, _, _, snap, link = struct.unpack("<IHHiIII", b[:24])
assert magic in (0xa1b2c3d4, 0xa1b23c4d) and link == 1, "bad pcap header"
off, frames, syn, synack, fin, c2s, s2c = 24, 0, 0, 0, 0, 0, 0
while off < len(b):
    _, _, caplen, origlen = struct.unpack("<IIII", b[off:off + 16])
    f = b[off + 16:off + 16 + caplen]
    off += 16 + caplen
    frames += 1
    if len(f) < 54 or f[12:14] != b"\x08\x00" or f[23] != 6:
        continue
    ihl = (f[14] & 15) * 4
    tot = struct.unpack(">H", f[16:18])[0]
    t = 14 + ihl
    sp, dp = struct.unpack(">HH", f[t:t + 4])
    flags = f[t + 13]
    doff = (f[t + 12] >> 4) * 4
    payload = tot - ihl - doff
    if (sp, dp) == (cport, sport):
        syn += (flags & 0x12) == 0x02
        fin += bool(flags & 0x01)
        c2s += payload
    elif (sp, dp) == (sport, cport):
        synack += (flags & 0x12) == 0x12
        fin += bool(flags & 0x01)
        s2c += payload
print(f"frames={frames} syn={syn} synack={synack} fin={fin} c2s={c2s} s2c={s2c}")
EOF
counts=$(python3 "$TMP/pcap_count.py" "$TMP/conn.pcap" "$CPORT" "$PORT" 2>&1) || true
echo "# pcap: $counts"
check "pcap: exactly one SYN and one SYN-ACK of the connection" \
  grep -q "syn=1 synack=1 " <<<"$counts"
check "pcap: 1000 payload bytes each way" grep -q "c2s=1000 s2c=1000" <<<"$counts"
check "pcap: both FINs" grep -q "fin=2 " <<<"$counts"
frames=$(sed -n 's/^frames=\([0-9]*\).*/\1/p' <<<"$counts")
if [[ $READER == tshark ]]; then
  n_read=$(tshark -r "$TMP/conn.pcap" 2>/dev/null | wc -l)
  n_syn=$(tshark -r "$TMP/conn.pcap" -Y "tcp.port==$CPORT && tcp.flags.syn==1" 2>/dev/null | wc -l)
else
  n_read=$(tcpdump -nn -r "$TMP/conn.pcap" 2>/dev/null | wc -l)
  n_syn=$(tcpdump -nn -r "$TMP/conn.pcap" "tcp port $CPORT and tcp[tcpflags] & tcp-syn != 0" 2>/dev/null | wc -l)
fi
check "$READER reads all $frames frames (read $n_read)" test "${frames:-x}" = "$n_read"
check "$READER finds SYN and SYN-ACK of port $CPORT ($n_syn)" test "$n_syn" -eq 2

# ------------------------------------------------------------ -c COUNT
start_bg "$TMP/dump_c.log" "$DUMP" -p "$SRV_PID" -w "$TMP/count.pcap" -c 3 -G 20 --micro
DC_PID=$BG_PID
wait_for "$TMP/dump_c.log" "capturing" 10 || true
"${IN_B[@]}" ping -n -q -c 4 -i 0.2 -W 2 "$IP_X" >/dev/null 2>&1 || true
rc=0; wait "$DC_PID" || rc=$?
check "xstack-dump -c 3 stops by itself (rc=$rc)" grep -q "count reached; 3 packets captured" "$TMP/dump_c.log"
if [[ $READER == tshark ]]; then n_read=$(tshark -r "$TMP/count.pcap" 2>/dev/null | wc -l)
else n_read=$(tcpdump -nn -r "$TMP/count.pcap" 2>/dev/null | wc -l); fi
check "$READER reads 3 frames from the -c 3 capture ($n_read)" test "$n_read" -eq 3

# ------------------------------------------------------------ killed reader
start_bg "$TMP/dump_k.log" "$DUMP" -p "$SRV_PID" -w "$TMP/killed.pcap"
DK_PID=$BG_PID
wait_for "$TMP/dump_k.log" "capturing" 10 || true
"${IN_B[@]}" ping -n -q -c 1 -W 2 "$IP_X" >/dev/null 2>&1 || true  # the engine attaches
wait_for "$TMP/dump_k.log" "attached" 5 || true
check "capture segment exists while xstack-dump runs" test -e "/dev/shm/xstack-$SRV_PID-cap"
kill -KILL "$DK_PID" 2>/dev/null || true
wait "$DK_PID" 2>/dev/null || true
gone=false
for ((i = 0; i < 50; i++)); do
  [[ -e "/dev/shm/xstack-$SRV_PID-cap" ]] || { gone=true; break; }
  sleep 0.1
done
check "engine detaches a SIGKILLed xstack-dump and removes its segment" $gone
rc=0; "$STAT" -p "$SRV_PID" -s >/dev/null 2>&1 || rc=$?
check "xstack-stat still reads the process (rc=$rc)" test "$rc" -eq 0

# ------------------------------------------------------------ server exit
kill -TERM "$SRV_PID" 2>/dev/null || true
for ((i = 0; i < 100; i++)); do running "$SRV_PID" || break; sleep 0.1; done
check "server exited on SIGTERM" bash -c "! test -d /proc/$SRV_PID || grep -q '^State:.*Z' /proc/$SRV_PID/status"
wait "$SRV_PID" 2>/dev/null || true
check "stats segment removed when the engine stops" test ! -e "/dev/shm/xstack-$SRV_PID"
rc=0; "$STAT" -p "$SRV_PID" >/dev/null 2>&1 || rc=$?
check "xstack-stat -p on a gone process fails" test "$rc" -ne 0

if ((FAILS > 0)); then
  echo "test_observability: $FAILS check(s) FAILED"
  exit 1
fi
echo "test_observability: all checks passed"
