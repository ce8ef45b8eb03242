#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs the whole test
# suite in stages, then prints one line per stage and a final
# "N passed, N failed" line. Exits non-zero if any stage failed.
#
#   1. main build (RelWithDebInfo)        ctest -L unit|sim
#   2. ASan+UBSan build (unit+sim only)   ctest -L unit|sim
#   3. clang libFuzzer build              ctest -L fuzz (bounded seconds each)
#   4. main build                         ctest -L veth|apps (root, ip netns)
#
# Runs as root. With CI=true anything that cannot run is a failure, never a
# silent skip. Environment knobs: XS_BUILD_DIR (build), XS_JOBS (2),
# XS_TEST_TIMEOUT (seconds per test, 600), XS_FUZZ_SECONDS (20).
set -uo pipefail  # no -e: a failed stage is recorded and the others still run
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${XS_BUILD_DIR:-build}
ASAN_DIR=${BUILD_DIR}-asan
FUZZ_DIR=${BUILD_DIR}-fuzz
JOBS=${XS_JOBS:-2}
TEST_TIMEOUT=${XS_TEST_TIMEOUT:-600}
FUZZ_SECONDS=${XS_FUZZ_SECONDS:-20}
IN_CI=false
[[ "${CI:-}" == true ]] && IN_CI=true

LOG_DIR=$(mktemp -d /tmp/xs-test.XXXXXX)
trap 'rm -rf "$LOG_DIR"' EXIT

SUMMARY=()
TOTAL_PASSED=0
TOTAL_FAILED=0
ANY_FAILED=false

banner() { printf '\n==== %s ====\n' "$*"; }

# record STAGE STATUS PASSED FAILED SECONDS [NOTE]
record() {
  local line
  line=$(printf '%-16s %-5s %5s passed, %3s failed  %4ss  %s' "$1" "$2" "$3" "$4" "$5" "${6:-}")
  SUMMARY+=("$line")
  TOTAL_PASSED=$((TOTAL_PASSED + $3))
  TOTAL_FAILED=$((TOTAL_FAILED + $4))
  [[ "$2" == FAIL ]] && ANY_FAILED=true
  return 0
}

# A step that is not a ctest run (a build): one failure if it fails.
# run_step STAGE COMMAND...
run_step() {
  local stage=$1 start=$SECONDS
  shift
  banner "$stage: $*"
  if "$@"; then
    record "$stage" PASS 0 0 $((SECONDS - start))
    return 0
  fi
  record "$stage" FAIL 0 1 $((SECONDS - start)) "command failed: $*"
  return 1
}

# run_ctest STAGE BUILD_DIR LABEL_REGEX NO_TESTS(error|ignore) JOBS
# Prints ctest's own summary; counts from its "N tests failed out of M" line.
run_ctest() {
  local stage=$1 dir=$2 labels=$3 no_tests=$4 jobs=$5 start=$SECONDS
  local log="$LOG_DIR/$stage.log" rc passed=0 failed=0 skipped counts note=""
  banner "$stage: ctest -L '$labels' in $dir"
  ctest --test-dir "$dir" -L "$labels" --output-on-failure --timeout "$TEST_TIMEOUT" \
        --no-tests="$no_tests" -j "$jobs" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  counts=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' "$log" | tail -n 1)
  if [[ -n "$counts" ]]; then
    failed=${counts% *}
    passed=$((${counts#* } - failed))
  else
    note="no tests with these labels yet"
  fi
  # GTEST_SKIP shows as "(Skipped)"; in CI a test that did not run is a failure.
  skipped=$(grep -c '(Skipped)' "$log" || true)
  if ((skipped > 0)); then
    passed=$((passed - skipped))
    if $IN_CI; then
      failed=$((failed + skipped))
      rc=1
      note="$skipped skipped, counted as failed in CI"
    else
      note="$skipped skipped"
    fi
  fi
  if ((rc != 0)) && ((failed == 0)); then
    failed=1
    note="ctest exited with status $rc"
  fi
  if ((rc == 0)); then
    record "$stage" PASS "$passed" "$failed" $((SECONDS - start)) "$note"
  else
    record "$stage" FAIL "$passed" "$failed" $((SECONDS - start)) "$note"
  fi
}

# has_target BUILD_DIR TARGET: the Ninja build defines TARGET.
has_target() { grep -q "^build $2: phony" "$1/build.ninja" 2>/dev/null; }

print_summary() {
  banner "summary"
  printf '%s\n' "${SUMMARY[@]}"
  echo "${TOTAL_PASSED} passed, ${TOTAL_FAILED} failed"
}

banner "xstack test: CI=${CI:-} uid=$(id -u) cores=$(nproc) build=$BUILD_DIR"

# ---- preflight: root and network namespaces --------------------------------------
# veth/apps tests need root and `ip netns`; check before spending an hour.
NETNS_OK=true
NETNS_WHY=""
if [[ $(id -u) -ne 0 ]]; then
  NETNS_OK=false
  NETNS_WHY="not root"
fi

start=$SECONDS
banner "deps"
if ! bash scripts/deps.sh; then
  record deps FAIL 0 1 $((SECONDS - start)) "installing Debian packages failed"
  print_summary
  exit 1
fi
record deps PASS 0 0 $((SECONDS - start))

if $NETNS_OK; then
  probe="xs-preflight-$$"
  if ip netns add "$probe" && ip netns exec "$probe" ip link set lo up; then
    :
  else
    NETNS_OK=false
    NETNS_WHY="'ip netns' does not work here"
  fi
  ip netns del "$probe" 2>/dev/null
fi
if ! $NETNS_OK; then
  if $IN_CI; then
    echo "test: ERROR: CI=true but $NETNS_WHY: the veth/apps tests cannot run" >&2
    record preflight FAIL 0 1 0 "$NETNS_WHY"
    print_summary
    exit 1
  fi
  echo "test: WARNING: $NETNS_WHY: the veth/apps stage will be SKIPPED" >&2
fi

# ---- 1. main build, unit + sim ------------------------------------------------------
if run_step build env XS_BUILD_DIR="$BUILD_DIR" XS_JOBS="$JOBS" bash scripts/build.sh; then
  MAIN_OK=true
  run_ctest unit+sim "$BUILD_DIR" '^(unit|sim)$' error "$JOBS"
else
  MAIN_OK=false
  record unit+sim FAIL 0 1 0 "main build failed"
fi

# ---- 2. ASan + UBSan: only the unit and sim test binaries -------------------------------
asan_build() {
  cmake -S . -B "$ASAN_DIR" -G Ninja -DXS_SANITIZE=ON -DXS_BUILD_BENCH=OFF \
        -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g" "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" || return 1
  local targets=() t
  for t in xs_unit_tests xs_sim_tests; do
    has_target "$ASAN_DIR" "$t" && targets+=("$t")
  done
  cmake --build "$ASAN_DIR" -j "$JOBS" --target "${targets[@]}"
}
if run_step asan-build asan_build; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest asan-unit+sim "$ASAN_DIR" '^(unit|sim)$' error "$JOBS"
else
  record asan-unit+sim FAIL 0 1 0 "sanitizer build failed"
fi

# ---- 3. fuzz: clang, fuzz targets only, bounded time ---------------------------------------
fuzz_build() {
  cmake -S . -B "$FUZZ_DIR" -G Ninja -DXS_FUZZ=ON -DXS_BUILD_BENCH=OFF \
        -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXS_FUZZ_SECONDS="$FUZZ_SECONDS" || return 1
  local targets
  mapfile -t targets < <(sed -n 's/^build \(fuzz_[A-Za-z0-9_]*\): phony.*/\1/p' "$FUZZ_DIR/build.ninja")
  if ((${#targets[@]} == 0)); then
    echo "fuzz: no tests/fuzz/fuzz_*.cpp targets yet"
    return 0
  fi
  echo "fuzz: building ${targets[*]}"
  cmake --build "$FUZZ_DIR" -j "$JOBS" --target "${targets[@]}"
}
if run_step fuzz-build fuzz_build; then
  run_ctest fuzz "$FUZZ_DIR" '^fuzz$' ignore "$JOBS"
else
  record fuzz FAIL 0 1 0 "fuzz build failed"
fi

# ---- 4. veth + apps (root, network namespaces), one at a time -----------------------------
if ! $NETNS_OK; then
  record veth+apps SKIP 0 0 0 "$NETNS_WHY (allowed only outside CI)"
elif ! $MAIN_OK; then
  record veth+apps FAIL 0 1 0 "main build failed"
else
  run_ctest veth+apps "$BUILD_DIR" '^(veth|apps)$' ignore 1
fi

print_summary
$ANY_FAILED && exit 1
exit 0
