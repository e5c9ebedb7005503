#!/usr/bin/env bash
# README command 1: install what is missing, build Poplar, and run it on a demo spool.
# Everything stays under $POPLAR_DEMO_DIR (default /tmp/poplar-demo); nothing touches /var/mail.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo=${POPLAR_DEMO_DIR:-/tmp/poplar-demo}
build=${POPLAR_BUILD:-$root/build}

bash deploy/install-deps.sh
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"

mkdir -p "$demo/spool"
python3 tools/poplar-genmbox --messages 12 --user demo "$demo/spool/demo"
echo
echo "== demo spool: $demo/spool/demo"
echo "== poplar-mbox --check: the index Poplar builds, and every message round-tripped through"
echo "== the POP3 transform (CRLF, dot-stuffing) byte for byte"
"$build/tools/poplar-mbox" --check "$demo/spool/demo"
