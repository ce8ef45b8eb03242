#!/usr/bin/env bash
# The main job: installs what is missing, builds everything, runs the demo.
#   bash scripts/demo.sh [demo arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The demo to run, relative to the build directory. Until the AF_XDP demo
# exists this is the simulator demo (tools/demo/).
DEMO=tools/xstack-sim-demo
DEMO_ARGS=()

BUILD_DIR=${XS_BUILD_DIR:-build}

bash scripts/deps.sh
bash scripts/build.sh

if [[ ! -x "$BUILD_DIR/$DEMO" ]]; then
  echo "demo: ERROR: $BUILD_DIR/$DEMO was not built (no sources for it yet?)" >&2
  exit 1
fi
echo "demo: running $BUILD_DIR/$DEMO ${DEMO_ARGS[*]} $*"
exec "$BUILD_DIR/$DEMO" "${DEMO_ARGS[@]}" "$@"
