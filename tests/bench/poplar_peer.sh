#!/usr/bin/env bash
# Starts Poplar (poplar-indexer + poplar-popd) as a benchmark peer on an existing spool, the way
# ../shared/bench/peers/*/start.sh start theirs, so the reference harness can measure it:
#
#   tests/bench/poplar_peer.sh PORT SPOOL RUNDIR     (tests/bench/compare.sh uses it too)
#   EXTERNAL_PID=$(cat RUNDIR/pid) EXTERNAL_PORT=PORT ../shared/bench/run_bench.sh external:poplar
#
# Every regular file in SPOOL becomes an account (password $BENCH_PASS, default benchpw) with
# that file as its mailbox. The password is stored as an MD5-crypt hash ($1$, ~0.1 ms to check):
# the peers use DES crypt so that hashing does not dominate a session benchmark, and Poplar
# refuses DES as too weak; SCRAM-SHA-256 at 4096 iterations would cost ~2 ms per login.
# RUNDIR/pid is a supervisor whose children are the indexer and popd, so the harness's CPU
# and memory figures (PID and all descendants) cover both daemons. Stop: kill $(cat RUNDIR/pid).
set -euo pipefail
port=$1 spool=$(realpath "$2") rundir=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${POPLAR_BUILD:-$root/build}
pass=${BENCH_PASS:-benchpw}
mkdir -p "$rundir"
rundir=$(realpath "$rundir")
rm -f "$rundir/index.sqlite"* "$rundir/indexer.sock"
# The spool's mailboxes belong to one owner (root here, uid 5000 in ../shared/bench, which has no
# passwd entry): name it as the spool owner, or turn the owner check off when it has no name.
first=$(find "$spool" -maxdepth 1 -type f -print -quit)
owner_uid=$(stat -c %u "${first:-$spool}")
if owner_name=$(getent passwd "$owner_uid" | cut -d: -f1) && [ -n "$owner_name" ]; then
  check_owner="check_owner { spool_owner: \"$owner_name\" }"
else
  check_owner="check_owner { rule: OWNER_ANY }"
fi
cat > "$rundir/indexer.conf" <<CONF
spools { directory: "$spool" }
database_path: "$rundir/index.sqlite"
$check_owner
listen { unix_socket: "$rundir/indexer.sock" }
CONF
# TLS (optional): POPLAR_TLS_PORT adds implicit TLS there (and STLS on PORT) with the PEM files
# BENCH_CERT and BENCH_KEY.
listen="listen { address: \"127.0.0.1:$port\" }"
tls=""
if [ -n "${POPLAR_TLS_PORT:-}" ]; then
  listen="listen { address: \"127.0.0.1:$port\" implicit_tls_address: \"127.0.0.1:$POPLAR_TLS_PORT\" }"
  tls="tls { certificate_chain_file: \"$BENCH_CERT\" private_key_file: \"$BENCH_KEY\" }"
fi
cat > "$rundir/popd.conf" <<CONF
$listen
$tls
indexer { target: "unix:$rundir/indexer.sock" }
plaintext_auth_networks: "127.0.0.0/8"
# The benchmark opens up to thousands of connections from 127.0.0.1.
limits { max_connections: 100000 max_connections_per_ip: 100000 }
CONF
ulimit -n "$(ulimit -Hn)"
# The supervisor: starts both daemons, forwards TERM, exits when either ends.
setsid bash -c '
  trap "kill \$i \$p 2>/dev/null; wait" TERM INT
  "$1/indexer/poplar-indexer" --config "$2/indexer.conf" > "$2/indexer.log" 2>&1 &
  i=$!
  for _ in $(seq 200); do [ -S "$2/indexer.sock" ] && break; sleep 0.05; done
  "$1/popd/poplar-popd" --config "$2/popd.conf" > "$2/popd.out" 2> "$2/popd.log" &
  p=$!
  wait -n
  kill $i $p 2>/dev/null
  wait' _ "$build" "$rundir" < /dev/null > /dev/null 2>&1 &
echo $! > "$rundir/pid"
for _ in $(seq 200); do [ -S "$rundir/indexer.sock" ] && break; sleep 0.05; done
[ -S "$rundir/indexer.sock" ] || { echo "poplar-indexer did not start" >&2; cat "$rundir/indexer.log" >&2; exit 1; }
hash=$(python3 -W ignore -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], "$1$poplarbn"))' "$pass")
ctl=("$build/tools/poplarctl" --socket "$rundir/indexer.sock")
for f in "$spool"/*; do
  [ -f "$f" ] || continue
  u=$(basename "$f")
  case $u in *.lock | .*) continue ;; esac
  "${ctl[@]}" accounts add "$u" --crypt "$hash" --mailbox "$f" > /dev/null 2>&1 ||
    "${ctl[@]}" accounts passwd "$u" --crypt "$hash" > /dev/null
done
for _ in $(seq 200); do grep -q "listening on pop3" "$rundir/popd.out" 2>/dev/null && break; sleep 0.05; done
grep -q "listening on pop3" "$rundir/popd.out" || { echo "poplar-popd did not start" >&2; cat "$rundir/popd.log" >&2; exit 1; }
echo "poplar pid $(cat "$rundir/pid") on 127.0.0.1:$port spool $spool"
