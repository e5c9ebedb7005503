#!/usr/bin/env bash
# The whole test suite, as CI runs it (README command 2):
#   1. installs any missing Debian package (deploy/install-deps.sh),
#   2. checks that every tracked *.cc/*.h is formatted as .clang-format says (clang-format 14),
#   3. builds the whole tree with gcc (Release: -O3, where GCC finds the most warnings; warnings
#      as errors) and runs every ctest test (unit, component, gRPC, end-to-end, oracle),
#   4. builds the whole tree with clang + ASan + UBSan + libFuzzer, warnings (-Wthread-safety
#      included) as errors, and runs every ctest test under the sanitizers: unit, component,
#      gRPC, end-to-end with the real daemons, and every fuzz target for 20 s,
#   5. builds the concurrent tests of the indexer and popd and both daemons with clang +
#      ThreadSanitizer and runs them (Sessions demux and table, leases, PAM pool, spool watcher,
#      abuse guard, polling, the gRPC servers, three end-to-end tests).
# A sanitizer report anywhere (also from a daemon an e2e test started) fails its stage: reports
# go to <build>/sanitizer-logs/ and are printed at the end of the stage.
# Build trees: build/, build-san/, build-tsan/ (override with POPLAR_BUILD, POPLAR_SAN_BUILD,
# POPLAR_TSAN_BUILD). POPLAR_JOBS sets build and test parallelism (default: number of cores).
# POPLAR_STAGES (default "format main san tsan") runs a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${POPLAR_JOBS:-$(nproc)}
build=${POPLAR_BUILD:-$root/build}
san=${POPLAR_SAN_BUILD:-$root/build-san}
tsan=${POPLAR_TSAN_BUILD:-$root/build-tsan}
stages=" ${POPLAR_STAGES:-format main san tsan} "

bash deploy/install-deps.sh

summary=()
total_pass=0
total_fail=0
suite_start=$SECONDS
stage_start=$SECONDS
stage_time() { echo "$((SECONDS - stage_start)) s"; }

run_ctest() {  # label dir [ctest args...]
  local label=$1 dir=$2 log
  shift 2
  log=$(mktemp)
  set +e
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900 "$@") 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  local line
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1 || true)
  rm -f "$log"
  if [[ $line =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
    local failed=${BASH_REMATCH[1]} all=${BASH_REMATCH[2]}
    total_fail=$((total_fail + failed))
    total_pass=$((total_pass + all - failed))
    summary+=("$label: $((all - failed)) passed, $failed failed ($(stage_time))")
  else
    total_fail=$((total_fail + 1))
    summary+=("$label: ctest did not run (exit $rc)")
  fi
  return 0
}

# A build failure counts as one failed test of its stage; the suite goes on with the next stage.
build_or_fail() {  # label dir [targets...]
  local label=$1 dir=$2
  shift 2
  if nice cmake --build "$dir" -j "$jobs" ${1:+--target "$@"}; then
    return 0
  fi
  total_fail=$((total_fail + 1))
  summary+=("$label: build failed")
  return 1
}

# Sanitizer reports of processes the tests started (daemons, tools) that no test looked at.
check_sanitizer_logs() {  # label logdir
  local label=$1 logdir=$2 f n=0
  for f in "$logdir"/*; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    echo "== sanitizer report $f"
    # Written unsymbolized (symbolize=0): symbolizing in the process took longer than the e2e
    # harness waits for a daemon to stop, and the SIGKILL cut the report after its first line.
    if command -v asan_symbolize-14 >/dev/null; then
      asan_symbolize-14 <"$f" || cat "$f"
    else
      cat "$f"
    fi
    [ -s "$f" ] || echo "(empty: a report was begun and its process killed before writing it)"
  done
  if [ "$n" -gt 0 ]; then
    total_fail=$((total_fail + n))
    summary+=("$label: $n sanitizer report(s) in $logdir")
  fi
}

fresh_logdir() {  # dir: empty, writable by the users the privilege tests switch to
  rm -rf "$1"
  mkdir -p "$1"
  chmod 1777 "$1"
}

if [[ $stages == *" format "* ]]; then
  echo "== format check (clang-format 14, .clang-format)"
  stage_start=$SECONDS
  if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t sources < <(git -C "$root" ls-files '*.cc' '*.h')
  else
    mapfile -t sources < <(find common indexer popd tools tests proto -name '*.cc' -o -name '*.h')
  fi
  if clang-format-14 --dry-run --Werror "${sources[@]}"; then
    total_pass=$((total_pass + 1))
    summary+=("format: ${#sources[@]} files formatted ($(stage_time))")
  else
    total_fail=$((total_fail + 1))
    summary+=("format: files differ from .clang-format (clang-format-14 -i FILE fixes them)")
  fi
fi

if [[ $stages == *" main "* ]]; then
  # Release rather than the default RelWithDebInfo: -O3's inlining is where GCC finds the most
  # (and its own false) warnings, and without -g the build is a fifth quicker. Debug info is
  # in the sanitizer stages, where a failure wants a stack.
  echo "== build (gcc, Release, -Werror) in $build"
  stage_start=$SECONDS
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOPLAR_WERROR=ON >/dev/null
  if build_or_fail "main" "$build"; then
    run_ctest "main" "$build"
  fi
fi

if [[ $stages == *" san "* ]]; then
  # One clang build for -Wthread-safety, ASan+UBSan and the fuzz targets. -O1: the daemons of
  # the end-to-end tests and the fuzzers run several times faster than at -O0.
  echo "== build (clang, ASan+UBSan+libFuzzer, -Wthread-safety -Werror, whole tree) in $san"
  stage_start=$SECONDS
  CC=clang CXX=clang++ cmake -S "$root" -B "$san" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    "-DCMAKE_C_FLAGS_DEBUG=-g -O1" "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1" \
    -DPOPLAR_SANITIZE=ON -DPOPLAR_FUZZ=ON -DPOPLAR_WERROR=ON -DPOPLAR_BENCH=OFF >/dev/null
  # Every test, the end-to-end ones too (the daemons as processes under ASan+UBSan).
  # POPLAR_SAN_E2E=0 leaves the end-to-end tests out of this stage (a quicker local run).
  san_args=()
  if [ "${POPLAR_SAN_E2E:-1}" = 0 ]; then san_args=(-LE e2e); fi
  if build_or_fail "asan+ubsan" "$san"; then
    fresh_logdir "$san/sanitizer-logs"
    # One log_path for both runtimes (the later-parsed UBSAN_OPTIONS wins); LSan must not write
    # its "Suppressions used" table there when nothing leaked.
    POPLAR_SANITIZED=1 LSAN_OPTIONS=print_suppressions=0 \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=0:log_path=$san/sanitizer-logs/asan \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:symbolize=0:log_path=$san/sanitizer-logs/san \
      run_ctest "asan+ubsan" "$san" "${san_args[@]}"
    check_sanitizer_logs "asan+ubsan" "$san/sanitizer-logs"
  fi
fi

if [[ $stages == *" tsan "* ]]; then
  # The concurrent code: the Sessions stream's demux and per-tag table, leases, the PAM thread
  # pool (also behind the Indexer), the spool watcher, the abuse guard, the polling indexer, and
  # the real Daemon's gRPC callback servers with gRPC clients (indexer_service_test: the
  # Maildrop Sessions streams, leases and lease waits, Admin). Debian's gRPC, Protobuf and
  # abseil are not instrumented: libpoplar_absl_tsan.so (LD_PRELOAD, tests/tsan/absl_sync_tsan.cc)
  # shows TSan absl::Mutex, which Poplar and gRPC lock; tests/tsan/grpc_ignorelist.txt leaves
  # gRPC's header-inlined code uninstrumented like its library; ignore_noninstrumented_modules
  # drops the memcpy/free/... those libraries call themselves; tests/tsan.supp says what else is
  # suppressed and why.
  echo "== build (clang, ThreadSanitizer, concurrent parts and both daemons) in $tsan"
  stage_start=$SECONDS
  tsan_tests=(session_demux_test session_table_test lease_manager_test pam_authenticator_test
              spool_watcher_test abuse_guard_test indexer_service_test)
  CC=clang CXX=clang++ cmake -S "$root" -B "$tsan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    "-DCMAKE_C_FLAGS_DEBUG=-g -O1" "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1" \
    -DPOPLAR_TSAN=ON -DPOPLAR_BENCH=OFF >/dev/null
  # Both daemons as processes under TSan, driven by three end-to-end tests (real clients,
  # reconnects to a restarted indexer). POPLAR_TSAN_E2E=0 leaves them out of a local run.
  tsan_e2e=()
  if [ "${POPLAR_TSAN_E2E:-1}" = 1 ]; then
    tsan_tests+=(poplar-popd poplar-indexer poplarctl poplar-mbox)
    tsan_e2e=(popd_e2e_test popd_clients_test popd_reconnect_test)
  fi
  if build_or_fail "tsan" "$tsan" poplar_absl_tsan "${tsan_tests[@]}"; then
    fresh_logdir "$tsan/sanitizer-logs"
    # The gtest suites of those executables.
    tests_re='^(SessionDemuxTest|SessionTableTest|LeaseManager|PamAuthenticator|IndexerPamTest|SpoolWatcher|AbuseGuard|IndexerPollingTest|IndexerServiceTest|SessionsStreamTest|LeaseWaitTest)\.'
    for t in "${tsan_e2e[@]}"; do tests_re="$tests_re|^$t\$"; done
    POPLAR_SANITIZED=1 LD_PRELOAD=$tsan/tests/tsan/libpoplar_absl_tsan.so \
    TSAN_OPTIONS="halt_on_error=1:ignore_noninstrumented_modules=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp:log_path=$tsan/sanitizer-logs/tsan" \
      run_ctest "tsan" "$tsan" -R "$tests_re"
    check_sanitizer_logs "tsan" "$tsan/sanitizer-logs"
  fi
fi

echo "== summary"
printf '%s\n' "${summary[@]}"
echo "total time: $((SECONDS - suite_start)) s"
echo "all: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
