#!/usr/bin/env bash
# apps test: OpenBSD netcat (Debian netcat-openbsd) over xstack (ctest apps_nc).
#
# nc under tools/xstack-run in namespace a (xstack's 198.18.0.3), a kernel nc in
# namespace b; every transfer is a 1 MiB random file, checked by sha256:
#   1. nc -l on xstack receives from a kernel client      (b -> xstack server)
#   2. nc -l -N on xstack sends to a kernel client        (xstack server -> b)
#   3. nc on xstack connects and sends to a kernel nc -l  (xstack client -> b)
#   4. nc on xstack connects and receives from nc -l -N   (b -> xstack client)
# netcat-openbsd flags used: -l listen (address and port as arguments), -N
# shutdown(SHUT_WR) after EOF on stdin (so the peer sees EOF), -d do not read
# stdin, -n no DNS, -v prints "Listening on ..." once listen() returned.
# XS_APPS_KERNEL_ONLY=1 runs the same with plain kernel sockets (lib.sh).
# shellcheck source=tests/apps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apps_require netcat-openbsd nc
nc -h 2>&1 | grep -q 'OpenBSD netcat' || cannot_run "nc is not OpenBSD netcat (apt-get install -y netcat-openbsd)"
apps_setup xc

SIZE=$((1 << 20))
make_file "$TMP/data" "$SIZE"

# ------------------------------------------------ 1. xstack server receives
echo "# 1. nc -l on $IP_X:5000 receives 1 MiB from kernel nc in b"
bg_io a /dev/null "$TMP/1.out" "$TMP/1.err" 60 nc -v -n -l "$IP_X" 5000
srv=$BG_PID
if wait_log "$TMP/1.err" '^Listening on' 30; then
  warm_arp
  crc=0
  in_b 60 nc -n -N "$IP_X" 5000 <"$TMP/data" 2>"$TMP/1.cli.err" || crc=$?
  wait_rc "$srv"
  check "1. server on xstack received 1 MiB, sha256 matches (got $(fsize "$TMP/1.out") bytes; client rc=$crc, server rc=$RC)" \
    same_file "$TMP/data" "$TMP/1.out"
  [[ $RC -eq 0 && $crc -eq 0 ]] || { show_log "$TMP/1.err"; show_log "$TMP/1.cli.err"; }
else
  fail "1. nc -l on xstack listening"
  show_log "$TMP/1.err"
fi

# ------------------------------------------------ 2. xstack server sends
echo "# 2. nc -l -N on $IP_X:5001 sends 1 MiB to kernel nc in b"
bg_io a "$TMP/data" /dev/null "$TMP/2.err" 60 nc -v -n -N -l "$IP_X" 5001
srv=$BG_PID
if wait_log "$TMP/2.err" '^Listening on' 30; then
  warm_arp
  crc=0
  in_b 60 nc -n -d "$IP_X" 5001 >"$TMP/2.out" 2>"$TMP/2.cli.err" || crc=$?
  wait_rc "$srv"
  check "2. kernel client received 1 MiB from the xstack server, sha256 matches (got $(fsize "$TMP/2.out") bytes; client rc=$crc, server rc=$RC)" \
    same_file "$TMP/data" "$TMP/2.out"
  [[ $RC -eq 0 && $crc -eq 0 ]] || { show_log "$TMP/2.err"; show_log "$TMP/2.cli.err"; }
else
  fail "2. nc -l -N on xstack listening"
  show_log "$TMP/2.err"
fi

# ------------------------------------------------ 3. xstack client sends
echo "# 3. nc on xstack sends 1 MiB to kernel nc -l on $IP_B:5002"
bg_io b /dev/null "$TMP/3.out" "$TMP/3.err" 60 nc -v -n -l "$IP_B" 5002
srv=$BG_PID
if wait_log "$TMP/3.err" '^Listening on' 30; then
  crc=0
  xs_a 60 nc -n -N "$IP_B" 5002 <"$TMP/data" 2>"$TMP/3.cli.err" || crc=$?
  wait_rc "$srv"
  check "3. kernel server received 1 MiB from the xstack client, sha256 matches (got $(fsize "$TMP/3.out") bytes; client rc=$crc, server rc=$RC)" \
    same_file "$TMP/data" "$TMP/3.out"
  [[ $crc -eq 0 ]] || show_log "$TMP/3.cli.err"
  # the kernel saw the connection come from xstack's address
  check "3. connection came from $IP_X ($(grep -o 'received on [0-9.]*' "$TMP/3.err" || echo none))" \
    grep -q "received on $IP_X " "$TMP/3.err"
else
  fail "3. kernel nc -l listening"
  show_log "$TMP/3.err"
fi

# ------------------------------------------------ 4. xstack client receives
echo "# 4. nc on xstack receives 1 MiB from kernel nc -l -N on $IP_B:5003"
bg_io b "$TMP/data" /dev/null "$TMP/4.err" 60 nc -v -n -N -l "$IP_B" 5003
srv=$BG_PID
if wait_log "$TMP/4.err" '^Listening on' 30; then
  crc=0
  xs_a 60 nc -n -d "$IP_B" 5003 >"$TMP/4.out" 2>"$TMP/4.cli.err" || crc=$?
  wait_rc "$srv"
  check "4. xstack client received 1 MiB from the kernel server, sha256 matches (got $(fsize "$TMP/4.out") bytes; client rc=$crc, server rc=$RC)" \
    same_file "$TMP/data" "$TMP/4.out"
  [[ $crc -eq 0 ]] || show_log "$TMP/4.cli.err"
else
  fail "4. kernel nc -l -N listening"
  show_log "$TMP/4.err"
fi

apps_finish
