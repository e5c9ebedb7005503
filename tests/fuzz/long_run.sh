#!/usr/bin/env bash
# A long run of one fuzz target (the 20-second ctest runs only catch shallow bugs):
#   tests/fuzz/long_run.sh TARGET SECONDS [BUILD]      (BUILD: default build-san, from tests/run.sh)
# Runs BUILD/tests/fuzz/TARGET at nice 19, one process, from the same starting corpus as the
# ctest (tests/testdata/*.mbox, tests/fuzz/seeds/, tests/fuzz/corpus/TARGET/,
# tests/fuzz/regressions/TARGET/), then keeps in tests/fuzz/corpus/TARGET/ only the inputs that
# add coverage to that corpus (libFuzzer -merge=1). Crash inputs land in
# BUILD/tests/fuzz/long/TARGET/; a fixed one goes to tests/fuzz/regressions/TARGET/ (not named
# crash-*, which git ignores). Prints the CPU seconds the fuzzer got.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
target=$1
seconds=$2
build=${3:-$root/build-san}
fuzzer=$build/tests/fuzz/$target
work=$build/tests/fuzz/long/$target
keep=$root/tests/fuzz/corpus/$target
[ -x "$fuzzer" ] || { echo "no $fuzzer: build with POPLAR_FUZZ=ON first" >&2; exit 2; }

rm -rf "$work/start" "$work/new"
mkdir -p "$work/start" "$work/new" "$keep"
n=0
for f in tests/testdata/*.mbox tests/fuzz/seeds/* "$keep"/* tests/fuzz/regressions/"$target"/*; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  cp "$f" "$work/start/$n-$(basename "$f")"
done

TIMEFORMAT="$target: %U s user + %S s system CPU in %R s"
time {
  set +e
  (cd "$work" && nice -n 19 "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -dict="$root/tests/fuzz/mbox.dict" \
    -artifact_prefix="$work/" "$work/new" "$work/start")
  rc=$?
  set -e
}
# Keep what adds coverage beyond the starting corpus: merge into a copy of it and take the
# files the merge added (libFuzzer names them by their SHA-1).
rm -rf "$work/merged"
cp -r "$work/start" "$work/merged"
ls "$work/merged" | sort >"$work/before"
nice -n 19 "$fuzzer" -merge=1 -rss_limit_mb=2048 -max_len=65536 "$work/merged" "$work/new" \
  2>"$work/merge.log"
added=0
for f in $(ls "$work/merged" | sort | comm -13 "$work/before" -); do
  cp "$work/merged/$f" "$keep/$f"
  added=$((added + 1))
done
echo "$target: fuzzer exit $rc; $added input(s) added to tests/fuzz/corpus/$target/"
exit "$rc"
