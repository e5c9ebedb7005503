#!/usr/bin/env bash
# README command 1: install what is missing, build Poplar, and run it on a demo spool.
# Everything lives under $POPLAR_DEMO_DIR (default /tmp/poplar-demo); nothing touches /var/mail.
# The indexer listens only on a unix socket there; poplar-popd serves POP3 on loopback, port
# $POPLAR_DEMO_PORT (default 11110; 0 picks a free one). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo=${POPLAR_DEMO_DIR:-/tmp/poplar-demo}
build=${POPLAR_BUILD:-$root/build}

bash deploy/install-deps.sh
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"

# A previous demo still running? Stop it first.
for p in popd indexer; do
  if [ -f "$demo/$p.pid" ] && kill -0 "$(cat "$demo/$p.pid")" 2>/dev/null; then
    kill "$(cat "$demo/$p.pid")" && sleep 1
  fi
done
port=${POPLAR_DEMO_PORT:-11110}
mkdir -p "$demo/spool"
python3 tools/poplar-genmbox --messages 12 --user demo "$demo/spool/demo"
cat > "$demo/indexer.conf" <<CONF
# poplar-indexer configuration (schema: proto/poplar/config.proto)
spools { directory: "$demo/spool" }
database_path: "$demo/index.sqlite"
# The demo's mailbox belongs to whoever runs this (there is no system user "demo").
check_owner { spool_owner: "$(id -un)" }
listen { unix_socket: "$demo/indexer.sock" }
CONF
cat > "$demo/popd.conf" <<CONF
# poplar-popd configuration (schema: proto/poplar/popd_config.proto)
listen { address: "127.0.0.1:$port" }
indexer { target: "unix:$demo/indexer.sock" }
# No TLS yet: USER/PASS in clear are allowed from loopback only.
plaintext_auth_networks: "127.0.0.0/8"
plaintext_auth_networks: "::1/128"
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

echo
echo "== starting poplar-popd --config $demo/popd.conf"
rm -f "$demo/popd.out"
"$build/popd/poplar-popd" --config "$demo/popd.conf" > "$demo/popd.out" &
popd_pid=$!
echo "$popd_pid" > "$demo/popd.pid"
trap 'kill $popd_pid $pid 2>/dev/null || true' INT TERM EXIT
for _ in $(seq 100); do grep -q "listening on pop3" "$demo/popd.out" 2>/dev/null && break; sleep 0.1; done
cat "$demo/popd.out"
port=$(sed -n 's/.*listening on pop3 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$demo/popd.out")
[ -n "$port" ] || { echo "poplar-popd did not start"; exit 1; }

echo
echo "== curl pop3://demo:demo-password@127.0.0.1:$port/   (the message list)"
curl -sS "pop3://demo:demo-password@127.0.0.1:$port/"
echo "== curl pop3://demo:demo-password@127.0.0.1:$port/1  (message 1, first lines)"
curl -sS "pop3://demo:demo-password@127.0.0.1:$port/1" | head -n 8
cat <<MSG

Poplar is running: poplar-indexer (pid $pid, $demo/indexer.sock) and poplar-popd (pid $popd_pid,
POP3 on 127.0.0.1:$port), with the account demo / demo-password. Try, in another shell:
  curl pop3://demo:demo-password@127.0.0.1:$port/            # list
  curl pop3://demo:demo-password@127.0.0.1:$port/1           # read message 1
  curl -X UIDL pop3://demo:demo-password@127.0.0.1:$port/    # unique ids
  python3 -c 'import poplib; p=poplib.POP3("127.0.0.1", $port); p.user("demo"); p.pass_("demo-password"); print(p.stat()); p.quit()'
  tools/poplar-genmbox --messages 1 --seed 7 $demo/new && cat $demo/new >> $demo/spool/demo   # new mail
  ${ctl[*]} sessions list
Ctrl-C stops both.
MSG
wait "$pid" "$popd_pid"
