#!/usr/bin/env bash
# Configures and builds the main build (RelWithDebInfo, Ninja): the library,
# every test binary, the tools and the demo. Build directory: $XS_BUILD_DIR,
# default build/. Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${XS_BUILD_DIR:-build}
JOBS=${XS_JOBS:-2}

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$BUILD_DIR" -j "$JOBS"
