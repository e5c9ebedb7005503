#!/usr/bin/env bash
# README command 1: install what is missing, build Poplar, and run it on a demo spool.
# Everything lives under $POPLAR_DEMO_DIR (default /tmp/poplar-demo); nothing touches /var/mail,
# and the indexer listens only on a unix socket there. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo=${POPLAR_DEMO_DIR:-/tmp/poplar-demo}
build=${POPLAR_BUILD:-$root/build}

bash deploy/install-deps.sh
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"

# A previous demo still running? Stop it first.
if [ -f "$demo/indexer.pid" ] && kill -0 "$(cat "$demo/indexer.pid")" 2>/dev/null; then
  kill "$(cat "$demo/indexer.pid")" && sleep 1
fi
mkdir -p "$demo/spool"
python3 tools/poplar-genmbox --messages 12 --user demo "$demo/spool/demo"
cat > "$demo/indexer.conf" <<CONF
# poplar-indexer configuration (schema: proto/poplar/config.proto)
spools { directory: "$demo/spool" }
database_path: "$demo/index.sqlite"
listen { unix_socket: "$demo/indexer.sock" }
CONF

echo
echo "== poplar-mbox --check: the index Poplar builds for the demo mailbox, and every message"
echo "== round-tripped through the POP3 transform (CRLF, dot-stuffing) byte for byte"
"$build/tools/poplar-mbox" --check "$demo/spool/demo"

echo
echo "== starting poplar-indexer --config $demo/indexer.conf"
"$build/indexer/poplar-indexer" --config "$demo/indexer.conf" &
pid=$!
echo "$pid" > "$demo/indexer.pid"
trap 'kill $pid 2>/dev/null || true' INT TERM
for _ in $(seq 100); do [ -S "$demo/indexer.sock" ] && break; sleep 0.1; done
ctl=("$build/tools/poplarctl" --socket "$demo/indexer.sock")
printf 'demo-password\n' | "${ctl[@]}" accounts add demo --password-stdin ||
  printf 'demo-password\n' | "${ctl[@]}" accounts passwd demo --password-stdin
"${ctl[@]}" mailboxes list
"${ctl[@]}" mailboxes show demo --limit 5
"${ctl[@]}" status
cat <<MSG

poplar-indexer is running (pid $pid) on $demo/indexer.sock with the account demo / demo-password.
Try, in another shell:
  ${ctl[*]} accounts list
  tools/poplar-genmbox --messages 1 --seed 7 $demo/new && cat $demo/new >> $demo/spool/demo
  ${ctl[*]} mailboxes show demo
Ctrl-C stops it. (The POP3 front-end, poplar-popd, arrives with its own issue.)
MSG
wait "$pid"
