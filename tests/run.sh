#!/usr/bin/env bash
# The whole test suite, as CI runs it (README command 2):
#   1. installs any missing Debian package (deploy/install-deps.sh),
#   2. builds Poplar with gcc and runs every ctest test (unit, component, gRPC, end-to-end),
#   3. builds the pure core with clang + ASan + UBSan + libFuzzer and runs the unit tests under
#      the sanitizers plus a short run of every fuzz target.
# Build trees: build/ and build-san/ (override with POPLAR_BUILD / POPLAR_SAN_BUILD).
# POPLAR_JOBS sets build parallelism (default: number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${POPLAR_JOBS:-$(nproc)}
build=${POPLAR_BUILD:-$root/build}
san=${POPLAR_SAN_BUILD:-$root/build-san}

bash deploy/install-deps.sh

summary=()
total_pass=0
total_fail=0
run_ctest() {  # label dir
  local label=$1 dir=$2 log
  log=$(mktemp)
  set +e
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900) 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  local line
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1 || true)
  rm -f "$log"
  if [[ $line =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
    local failed=${BASH_REMATCH[1]} all=${BASH_REMATCH[2]}
    total_fail=$((total_fail + failed))
    total_pass=$((total_pass + all - failed))
    summary+=("$label: $((all - failed)) passed, $failed failed")
  else
    total_fail=$((total_fail + 1))
    summary+=("$label: ctest did not run (exit $rc)")
  fi
  return 0
}

echo "== build (gcc, RelWithDebInfo) in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs"
run_ctest "main" "$build"

echo "== build (clang, ASan+UBSan+libFuzzer, core only) in $san"
CC=clang CXX=clang++ cmake -S "$root" -B "$san" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DPOPLAR_SANITIZE=ON -DPOPLAR_FUZZ=ON -DPOPLAR_CORE_ONLY=ON -DPOPLAR_BENCH=OFF >/dev/null
cmake --build "$san" -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_ctest "sanitizers+fuzz" "$san"

echo "== summary"
printf '%s\n' "${summary[@]}"
echo "all: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
