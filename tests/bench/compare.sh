#!/usr/bin/env bash
# Poplar side by side with Dovecot on this machine (README "Benchmarks"; design §9 targets).
#
#   bash tests/bench/compare.sh            # full run (~8 min once the corpus exists), REPS=3
#   QUICK=1 bash tests/bench/compare.sh    # ~2 minutes: small corpus, 1 rep, short runs
#
# Installs what is missing (build deps, dovecot-pop3d without starting the system's dovecot),
# builds Poplar and popload, generates the corpus with tools/poplar-genmbox (cached under
# $BENCH_DIR/corpus), copies a spool per server, starts Poplar (indexer + popd) and a
# standalone Dovecot on 127.0.0.1 with the same certificate and password hash, runs every
# scenario for both in the same run, REPS times, measures the loopback limits in the same run,
# and writes the table with the machine and the conditions to docs/bench/DATE.md (QUICK:
# DATE-quick.md; DOC=path overrides). Raw result lines: $BENCH_DIR/results/STAMP/raw.txt.
#
# Knobs (env): REPS (3), QUICK, BENCH_DIR (/tmp/poplar-bench), PORT_BASE (12100; uses +0..+5),
# SESS_CONNS (20), SESS_SECS (10), IDLE_CONNS (1000), USERS (1000), DL_MSGS (5000),
# BIG_MSGS (100000), MANY_CONNS (10000), SCENARIOS ("limit session download big idle many indexer"),
# POPLAR_BUILD (build),
# BENCH_PASS (benchpw), BENCH_UID (5000: owner of the spool files).
set -euo pipefail
cd "$(dirname "$0")/../.."
ulimit -n "$(ulimit -Hn)"  # thousands of connections: popload, the fresh popd
root=$(pwd)
QUICK=${QUICK:-}
if [ -n "$QUICK" ]; then
  REPS=${REPS:-1} SESS_SECS=${SESS_SECS:-3} IDLE_CONNS=${IDLE_CONNS:-200} USERS=${USERS:-200}
  DL_MSGS=${DL_MSGS:-1000} BIG_MSGS=${BIG_MSGS:-20000} MANY_CONNS=${MANY_CONNS:-2000}
fi
REPS=${REPS:-3} SESS_CONNS=${SESS_CONNS:-20} SESS_SECS=${SESS_SECS:-10} IDLE_CONNS=${IDLE_CONNS:-1000}
USERS=${USERS:-1000} DL_MSGS=${DL_MSGS:-5000} BIG_MSGS=${BIG_MSGS:-100000}
SCENARIOS=${SCENARIOS:-limit session download big idle many indexer} MANY_CONNS=${MANY_CONNS:-10000}
BENCH_DIR=${BENCH_DIR:-/tmp/poplar-bench} PORT_BASE=${PORT_BASE:-12100}
BENCH_PASS=${BENCH_PASS:-benchpw} BENCH_UID=${BENCH_UID:-5000}
build=${POPLAR_BUILD:-$root/build}
[ "$IDLE_CONNS" -le "$USERS" ] || { echo "IDLE_CONNS must be <= USERS (one mailbox per connection)" >&2; exit 2; }
export BENCH_PASS

log() { echo "[$(date -u +%T)] $*" >&2; }

# ---------------------------------------------------------------------------------- packages
if [ "$(id -u)" -eq 0 ]; then
  bash deploy/install-deps.sh
  if ! command -v dovecot > /dev/null || [ ! -x /usr/lib/dovecot/pop3 ]; then
    log "installing dovecot-pop3d (the system's dovecot is not started)"
    policy=/usr/sbin/policy-rc.d ours=""
    if [ ! -e $policy ]; then
      printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy && ours=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
      dovecot-pop3d || { [ -z "$ours" ] || rm -f $policy; exit 1; }
    [ -z "$ours" ] || rm -f $policy
  fi
else
  echo "compare.sh runs as root (packages, spool ownership, dovecot's privilege separation)" >&2
  exit 2
fi

# ---------------------------------------------------------------------------------- build
log "building in $build"
[ -f "$build/build.ninja" ] || cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
nice -n 10 cmake --build "$build" -j "$(nproc)" --target poplar-indexer poplar-popd poplarctl popload \
  poplar_indexer_bench poplar_expunge_bench > /dev/null
popload=$build/tools/popload/popload

# ---------------------------------------------------------------------------------- corpus
corpus=$BENCH_DIR/corpus
mkdir -p "$corpus"
gen=$root/tools/poplar-genmbox
gen_version=$(sha256sum "$gen" | cut -c1-16)
make_corpus() {  # name args...  (the file name carries the size, so QUICK and full runs keep both)
  local name=$1
  shift
  local stamp="$gen_version $*"
  if [ ! -f "$corpus/$name.mbox" ] || [ "$(cat "$corpus/$name.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "corpus: $name.mbox ($*)"
    nice -n 10 python3 "$gen" "$@" "$corpus/$name.mbox.tmp"
    mv "$corpus/$name.mbox.tmp" "$corpus/$name.mbox"
    echo "$stamp" > "$corpus/$name.stamp"
  fi
}
make_corpus small --messages 50 --seed 11 --body-median 4096 --user bench
make_corpus "dl-$DL_MSGS" --messages "$DL_MSGS" --seed 12 --body-median 4096 --attach-prob 0.01 --user dl
make_corpus "big-$BIG_MSGS" --messages "$BIG_MSGS" --seed 13 --body-median 4096 --attach-prob 0.005 --user big
dl_mbox=$corpus/dl-$DL_MSGS.mbox big_mbox=$corpus/big-$BIG_MSGS.mbox
python3 "$gen" --messages 1 --seed 14 --body-median 3000 --user big "$corpus/one.mbox"

# ---------------------------------------------------------------------------------- spools, cert
stamp=$(date -u +%Y%m%d-%H%M%S)
results=$BENCH_DIR/results/$stamp
mkdir -p "$results"
raw=$results/raw.txt
: > "$raw"
tls_dir=$BENCH_DIR/tls
mkdir -p "$tls_dir"
if [ ! -f "$tls_dir/cert.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=localhost -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" 2> /dev/null
fi
[ -f "$tls_dir/dh.pem" ] || cp /usr/share/dovecot/dh.pem "$tls_dir/dh.pem" 2> /dev/null ||
  openssl dhparam -out "$tls_dir/dh.pem" 2048 2> /dev/null
chmod 0644 "$tls_dir"/*.pem

users() { seq -f 'u%04g' 0 $((USERS - 1)); }
make_spool() {  # dir
  local dir=$1
  rm -rf "$dir"
  mkdir -p "$dir"
  for u in $(users); do cp "$corpus/small.mbox" "$dir/$u"; done
  cp "$dl_mbox" "$dir/dl"
  cp "$big_mbox" "$dir/big"
  chown -R "$BENCH_UID:$BENCH_UID" "$dir"
  chmod 0600 "$dir"/*
  chmod 0775 "$dir"
}
pport=$PORT_BASE ptls=$((PORT_BASE + 1)) dport=$((PORT_BASE + 2)) dtls=$((PORT_BASE + 3))
run_p=$BENCH_DIR/run/poplar run_d=$BENCH_DIR/run/dovecot
spool_p=$BENCH_DIR/spool-poplar spool_d=$BENCH_DIR/spool-dovecot
log "spools: $USERS users x 50 msgs, dl ($DL_MSGS msgs), big ($BIG_MSGS msgs), one copy per server"
make_spool "$spool_p"
make_spool "$spool_d"

# ---------------------------------------------------------------------------------- servers
pid_p="" pid_d=""
stop_servers() {
  [ -z "${fresh_pid:-}" ] || { kill "$fresh_pid" 2> /dev/null || true; }
  [ -z "$pid_p" ] || { kill "$pid_p" 2> /dev/null || true; }
  [ -z "$pid_d" ] || { kill "$pid_d" 2> /dev/null || true; }
  for _ in $(seq 100); do
    { [ -z "$pid_p" ] || ! kill -0 "$pid_p" 2> /dev/null; } && { [ -z "$pid_d" ] || ! kill -0 "$pid_d" 2> /dev/null; } && break
    sleep 0.1
  done
}
trap stop_servers EXIT

log "starting Poplar on $pport (TLS $ptls)"
rm -rf "$run_p"
POPLAR_BUILD=$build POPLAR_TLS_PORT=$ptls BENCH_CERT=$tls_dir/cert.pem BENCH_KEY=$tls_dir/key.pem \
  bash "$root/tests/bench/poplar_peer.sh" "$pport" "$spool_p" "$run_p" >&2
pid_p=$(cat "$run_p/pid")

log "starting Dovecot on $dport (TLS $dtls)"
rm -rf "$run_d"
mkdir -p "$run_d"/{base,state,index,mail,home}
chown "$BENCH_UID:$BENCH_UID" "$run_d"/{index,mail,home}
chmod 0755 "$run_d" "$BENCH_DIR" "$BENCH_DIR/run"
hash=$(openssl passwd -1 -salt poplarbn "$BENCH_PASS")
for u in $(users) dl big; do echo "$u:$hash:$BENCH_UID:$BENCH_UID::$run_d/home::"; done > "$run_d/users"
sed -e "s#@RUN@#$run_d#g" -e "s#@SPOOL@#$spool_d#g" -e "s#@PORT@#$dport#g" -e "s#@TLS_PORT@#$dtls#g" \
  -e "s#@CERT@#$tls_dir/cert.pem#g" -e "s#@KEY@#$tls_dir/key.pem#g" -e "s#@DH@#$tls_dir/dh.pem#g" \
  tests/bench/dovecot.conf.in > "$run_d/dovecot.conf"
(ulimit -n "$(ulimit -Hn)" && exec /usr/sbin/dovecot -F -c "$run_d/dovecot.conf" > "$run_d/stdout.log" 2>&1 < /dev/null) &
pid_d=$!
for _ in $(seq 100); do
  "$popload" login --port "$dport" --user u0000 --password "$BENCH_PASS" --timeout 2 > /dev/null 2>&1 && break
  sleep 0.2
done
"$popload" login --port "$dport" --user u0000 --password "$BENCH_PASS" --timeout 5 > /dev/null ||
  { cat "$run_d/dovecot.log" "$run_d/stdout.log" >&2; exit 1; }

# ---------------------------------------------------------------------------------- machine
machine() {
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"\
    "$(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "- software: Poplar $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- . 2> /dev/null || echo ' (modified)')"\
    "($(grep -m1 CMAKE_BUILD_TYPE:STRING "$build/CMakeCache.txt" | cut -d= -f2) build), $(dovecot --version | cut -d' ' -f1 | sed 's/^/Dovecot /'),"\
    "$(openssl version | cut -d' ' -f1-2)"
}
machine > "$results/machine.md"

# ---------------------------------------------------------------------------------- scenarios
load1() { cut -d' ' -f1 /proc/loadavg; }
record() {  # server scenario rep command...
  local server=$1 scenario=$2 rep=$3 out rc=0
  shift 3
  local load
  load=$(load1)
  out=$("$@" 2>> "$results/stderr.txt") || rc=$?
  [ -n "$out" ] || out="failed=1"
  echo "server=$server scenario=$scenario rep=$rep load1=$load rc=$rc $out" | tee -a "$raw" >&2
}
server_args() {  # server tls -> port/pid args
  local s=$1 t=$2
  if [ "$s" = poplar ]; then
    [ "$t" = implicit ] && echo "--port $ptls --server-pid $pid_p" || echo "--port $pport --server-pid $pid_p"
  else
    [ "$t" = implicit ] && echo "--port $dtls --server-pid $pid_d" || echo "--port $dport --server-pid $pid_d"
  fi
}
order() { [ $(($1 % 2)) -eq 1 ] && echo "poplar dovecot" || echo "dovecot poplar"; }
pl() { "$popload" "$@" --password "$BENCH_PASS"; }
replace_big() {  # server: a fresh copy of big (new inode) that the server has never seen
  local s=$1 spool
  [ "$s" = poplar ] && spool=$spool_p || spool=$spool_d
  cp "$big_mbox" "$spool/.big.new"
  chown "$BENCH_UID:$BENCH_UID" "$spool/.big.new"
  chmod 0600 "$spool/.big.new"
  [ "$s" = poplar ] || rm -rf "$run_d/index/big"
  mv -f "$spool/.big.new" "$spool/big"
}
append_big() {
  local s=$1 spool
  [ "$s" = poplar ] && spool=$spool_p || spool=$spool_d
  cat "$corpus/one.mbox" >> "$spool/big"
}

fresh_port=$((PORT_BASE + 4)) fresh_tls=$((PORT_BASE + 5)) fresh_pid=""
indexer_pid=$(pgrep -P "$pid_p" -x poplar-indexer)
sed -e "s/127.0.0.1:$pport/127.0.0.1:$fresh_port/" -e "s/127.0.0.1:$ptls/127.0.0.1:$fresh_tls/" \
  "$run_p/popd.conf" > "$run_p/popd-fresh.conf"
start_fresh_popd() {
  : > "$run_p/popd-fresh.out"
  "$build/popd/poplar-popd" --config "$run_p/popd-fresh.conf" > "$run_p/popd-fresh.out" 2>> "$run_p/popd-fresh.log" &
  fresh_pid=$!
  for _ in $(seq 200); do grep -q "listening on pop3 " "$run_p/popd-fresh.out" && break; sleep 0.05; done
}
stop_fresh_popd() {
  kill "$fresh_pid" 2> /dev/null || true
  wait "$fresh_pid" 2> /dev/null || true
  fresh_pid=""
}

indexer_figures() {  # poplar_indexer_bench + poplar_expunge_bench as one key=value line
  local ib eb
  ib=$(TMPDIR=$BENCH_DIR "$build/tests/bench/poplar_indexer_bench" "$big_mbox" --sessions 20 2> /dev/null) || return 1
  eb=$(TMPDIR=$BENCH_DIR "$build/tests/bench/poplar_expunge_bench" "$big_mbox" first 2> /dev/null) || return 1
  echo "mode=indexer" \
    "index_MBps=$(sed -n 's/^full index.*(\([0-9.]*\) MB\/s).*/\1/p' <<< "$ib")" \
    "delivery_ms=$(sed -n 's/^delivery visible after unlock, median *\([0-9.]*\) ms.*/\1/p' <<< "$ib")" \
    "delivery_max_ms=$(sed -n 's/^delivery visible after unlock.*(max \([0-9.]*\)).*/\1/p' <<< "$ib")" \
    "snapshot_ms=$(sed -n 's/^session snapshot, median *\([0-9.]*\) ms.*/\1/p' <<< "$ib")" \
    "expunge_copy_s=$(awk '$1 == "first" {print $3}' <<< "$eb")" \
    "expunge_s=$(awk '$1 == "first" {print $4}' <<< "$eb")" \
    "expunge_ratio=$(awk '$1 == "first" {print $5}' <<< "$eb")"
}

log "warm-up"
for s in poplar dovecot; do
  # shellcheck disable=SC2046
  pl session $(server_args $s off) --user 'u%04d' --users "$SESS_CONNS" --conns "$SESS_CONNS" --duration 2 > /dev/null 2>&1 || true
  # shellcheck disable=SC2046
  pl download $(server_args $s off) --user dl --mbox "$dl_mbox" --label verify > /dev/null 2>&1 || true
done

big_n=$(grep -c '^From ' "$big_mbox")
for rep in $(seq 1 "$REPS"); do
  for sc in $SCENARIOS; do
    log "rep $rep/$REPS: $sc"
    case $sc in
    limit)
      record limit stream_plain "$rep" "$popload" stream --mbox "$dl_mbox" --bytes 4e9
      record limit stream_tls "$rep" "$popload" stream --mbox "$dl_mbox" --bytes 2e9 --tls implicit \
        --cert "$tls_dir/cert.pem" --key "$tls_dir/key.pem" ;;
    session)
      for s in $(order "$rep"); do
        for t in off implicit; do
          # shellcheck disable=SC2046
          record $s session_$t "$rep" pl session $(server_args $s $t) --tls $t --user 'u%04d' --users "$SESS_CONNS" \
            --conns "$SESS_CONNS" --warmup 1 --duration "$SESS_SECS"
        done
      done ;;
    download)
      for s in $(order "$rep"); do
        if [ "$rep" -eq 1 ]; then  # correctness: every byte against the mbox (not timed for the table)
          # shellcheck disable=SC2046
          record $s download_verify "$rep" pl download $(server_args $s off) --user dl --mbox "$dl_mbox"
        fi
        for t in off implicit; do
          # shellcheck disable=SC2046
          record $s download_$t "$rep" pl download $(server_args $s $t) --tls $t --user dl --no-verify
          # The same client with RFC 2449 PIPELINING: 16 RETR in flight.
          # shellcheck disable=SC2046
          record $s download_${t}_w16 "$rep" pl download $(server_args $s $t) --tls $t --user dl --no-verify --window 16
        done
      done ;;
    big)
      for s in $(order "$rep"); do
        replace_big $s
        # shellcheck disable=SC2046
        record $s big_cold "$rep" pl login $(server_args $s off) --user big --expect "$big_n"
        # "Warm" is the steady state: let the kernel finish writing back the 1.4 GB copy first
        # (its flusher otherwise competes with the login for the CPU, for either server).
        sync
        # shellcheck disable=SC2046
        record $s big_warm "$rep" pl login $(server_args $s off) --user big --expect "$big_n"
        append_big $s
        # shellcheck disable=SC2046
        record $s big_append "$rep" pl login $(server_args $s off) --user big --expect $((big_n + 1))
      done ;;
    idle)
      for s in $(order "$rep"); do
        for t in off implicit; do
          if [ $s = poplar ]; then
            # A fresh popd (same indexer) for each idle run: a long-running one would put the
            # connections into heap it freed after earlier scenarios (a 100,000-message
            # snapshot), and the growth per connection would read low.
            start_fresh_popd
            record $s idle_$t "$rep" pl idle --port "$([ $t = implicit ] && echo "$fresh_tls" || echo "$fresh_port")" \
              --server-pid "$fresh_pid,$indexer_pid" --tls $t --user 'u%04d' --users "$USERS" --conns "$IDLE_CONNS" --duration 2
            stop_fresh_popd
          else
            # Dovecot forks fresh processes for every connection.
            # shellcheck disable=SC2046
            record $s idle_$t "$rep" pl idle $(server_args $s $t) --tls $t --user 'u%04d' --users "$USERS" \
              --conns "$IDLE_CONNS" --duration 2
          fi
          sleep 2
        done
      done ;;
    many)
      # design §9: 10,000 concurrent connections per popd. Held after the greeting (every
      # authenticated session needs its own mailbox: 10,000 accounts), on a fresh popd; CAPA
      # checks each. Poplar only: Dovecot forks a login process per connection
      # (process_limit 5000 here).
      start_fresh_popd
      record poplar many "$rep" pl idle --port "$fresh_port" --server-pid "$fresh_pid,$indexer_pid" --no-login \
        --conns "$MANY_CONNS" --concurrency 256 --duration 2
      stop_fresh_popd ;;
    indexer)
      # Poplar-only targets of design §9 from the existing benchmarks on the big mailbox: full
      # index, delivery visible in the index, expunge of the first message against a copy.
      record poplar indexer "$rep" indexer_figures ;;
    *) echo "unknown scenario $sc" >&2; exit 2 ;;
    esac
  done
done
stop_servers
trap - EXIT
cp "$run_d/dovecot.log" "$results/dovecot.log" 2> /dev/null || true
cp "$run_p/popd.log" "$results/popd.log" 2> /dev/null || true

# ---------------------------------------------------------------------------------- the table
day=$(date -u +%F)
doc=${DOC:-$root/docs/bench/$day${QUICK:+-quick}.md}
mkdir -p "$(dirname "$doc")"
conditions="REPS=$REPS, $SESS_CONNS session clients for ${SESS_SECS} s (after 1 s warm-up), $USERS users x 50 msgs"
mb() { echo "$(($(stat -c %s "$1") / 1000000)) MB"; }
conditions+=" ($(($(stat -c %s "$corpus/small.mbox") / 1000)) KB each), download mailbox $DL_MSGS msgs"
conditions+=" ($(mb "$dl_mbox")), big mailbox $big_n msgs ($(mb "$big_mbox")),"
conditions+=" $IDLE_CONNS idle connections, $MANY_CONNS held connections${QUICK:+, QUICK mode}"
python3 "$root/tests/bench/bench_table.py" --raw "$raw" --machine "$results/machine.md" \
  --conditions "$conditions" --title "Poplar vs Dovecot, $day${QUICK:+ (quick)}" > "$doc"
cat "$doc"
log "table: $doc; raw lines: $raw"
