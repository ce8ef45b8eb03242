#!/usr/bin/env bash
# Installs the Debian 12 packages xstack needs to build, test and run its
# demo, and only those that are missing: a second run changes nothing and does
# not touch the network. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config   # toolchain
  clang lld                                      # fuzz build (libFuzzer)
  libgtest-dev libgmock-dev libbenchmark-dev     # tests, benchmarks
  libboost-dev                                   # intrusive containers
  libxdp-dev libbpf-dev xdp-tools                # AF_XDP
  iproute2 ethtool tcpdump                       # veth lab (ip netns)
  iptables iputils-ping                          # veth lab (tools/xstack-lab, tests/veth)
  python3 curl                                   # tests (curl: veth example test; python fallback)
  # apps tests (tests/apps/, docs/apps.md): real programs over the shim
  nginx-light redis-server redis-tools memcached
  iperf3 sockperf wrk netcat-openbsd
  lighttpd apache2-utils dnsmasq-base dnsutils socat ncat haproxy  # tests/apps/test_more.sh
  apache2 wget openssl perl busybox rsync mosquitto mosquitto-clients openssh-server openssh-client  # tests/apps/test_extra.sh
  gnuplot-nox                                    # benchmark plots (tools/bench/xstack-bench)
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#PACKAGES[@]} packages installed"
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    SUDO=(sudo)
  else
    echo "deps: ERROR: missing packages and not root (no sudo): ${missing[*]}" >&2
    exit 1
  fi
fi
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
