#!/usr/bin/env bash
# The main job: installs what is missing, builds everything, runs the demo:
#   1. xstack over AF_XDP on a veth lab against the kernel, side by side:
#      TCP echo latency (64 B request/response; kernel, xstack busy-poll and
#      interrupt mode, the raw AF_XDP floor) and 256 MiB each way through an
#      xstack server vs a kernel server (tools/bench/xstack-bench-echo,
#      tools/demo/veth-demo.sh). Needs root and network namespaces.
#   2. The simulator demo (CUBIC vs NewReno over a lossy simulated link).
# Until the LD_PRELOAD shim exists the veth part runs xstack-peer (an engine
# driven from the command line), not an unmodified program.
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${XS_BUILD_DIR:-build}

bash scripts/deps.sh
bash scripts/build.sh

if [[ $(id -u) -eq 0 ]] && ip netns add xsdemoprobe 2>/dev/null; then
  ip netns del xsdemoprobe
  echo
  echo "==== unmodified programs (sockperf, nginx + wrk) on xstack-run vs the kernel ===="
  python3 tools/bench/xstack-bench-apps --build "$BUILD_DIR" --rounds 1 --seconds 3 \
    --workloads sockperf,nginx --sockperf-modes busy-poll
  echo
  echo "==== xstack on AF_XDP over a veth lab vs the Linux kernel (native engine) ===="
  bash tools/demo/veth-demo.sh --build "$BUILD_DIR"
else
  echo "demo: not root or no network namespaces: skipping the veth part" >&2
fi
echo
echo "==== the protocol core on the network simulator ===="
exec "$BUILD_DIR/tools/xstack-sim-demo"
