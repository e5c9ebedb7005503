#!/usr/bin/env bash
# Runs inside the fresh Debian 12 root (tests/package/deb_install_test.sh). $1: the .deb.
set -uo pipefail
deb=$1
failed=0
check() {  # check NAME COMMAND...
  local name=$1; shift
  if "$@" >/tmp/check.out 2>&1; then echo "ok    $name"; else
    echo "FAIL  $name"; sed 's/^/      /' /tmp/check.out | head -20; failed=$((failed + 1)); fi
}
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$deb" curl openssl iproute2 procps >/tmp/apt.log 2>&1 \
  || { tail -30 /tmp/apt.log; exit 1; }

echo "== 1. installed"
check "programs in /usr/sbin and /usr/bin" test -x /usr/sbin/poplar-indexer -a -x /usr/sbin/poplar-popd -a -x /usr/bin/poplarctl
check "user poplar in group mail" sh -c 'id -gn poplar | grep -qx mail'
check "/var/lib/poplar belongs to poplar" sh -c '[ "$(stat -c %U:%G /var/lib/poplar)" = poplar:mail ]'
check "conffiles registered" sh -c 'grep -q /etc/poplar/indexer.conf /var/lib/dpkg/info/poplar.conffiles && grep -q /etc/pam.d/poplar /var/lib/dpkg/info/poplar.conffiles'
check "man pages" sh -c 'for p in man8/poplar-indexer.8 man8/poplar-popd.8 man8/poplarctl.8 man5/poplar-indexer.conf.5 man5/poplar-popd.conf.5; do test -f /usr/share/man/$p.gz || exit 1; done'
check "systemd units, Type=notify" sh -c 'grep -q Type=notify /lib/systemd/system/poplar-indexer.service && grep -q Type=notify /lib/systemd/system/poplar-popd.service'
check "nothing enabled" sh -c '! ls /etc/systemd/system/*.wants/poplar-* 2>/dev/null'
check "nothing running" sh -c '! pgrep -x poplar-indexer && ! pgrep -x poplar-popd'
check "installed configs are valid" sh -c '/usr/sbin/poplar-indexer --check-config && /usr/sbin/poplar-popd --print-config | grep -q "max_connections: 10000"'

echo "== 2. running under the installed configuration"
useradd -m alice && echo 'alice:alice-Passw0rd' | chpasswd
printf 'From bob@example.org  Thu Nov 27 10:00:00 2026\nFrom: bob@example.org\nSubject: hello\n\nfirst message body\n\n' > /var/mail/alice
chown alice:mail /var/mail/alice; chmod 0660 /var/mail/alice
mkdir -p /etc/poplar/tls
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -keyout /etc/poplar/tls/privkey.pem -out /etc/poplar/tls/fullchain.pem 2>/dev/null
echo 'metrics { listen_address: "127.0.0.1:9110" }' >> /etc/poplar/indexer.conf
echo 'pam { service: "poplar" }' >> /etc/poplar/indexer.conf
echo 'metrics { listen_address: "127.0.0.1:9111" }' >> /etc/poplar/popd.conf
check "edited configs are valid" sh -c '/usr/sbin/poplar-indexer --check-config && /usr/sbin/poplar-popd --check-config'
cat > /tmp/run.sh <<'RUN'
set -u
ip link set lo up
install -d -o poplar -g mail -m 0750 /run/poplar
# As the unit runs it: user poplar, group mail, plus shadow for PAM's pam_unix.
setpriv --reuid=poplar --regid=mail --groups=mail,shadow --inh-caps=-all \
  /usr/sbin/poplar-indexer >/tmp/indexer.log 2>&1 &
indexer=$!
for i in $(seq 100); do [ -S /run/poplar/indexer.sock ] && break; sleep 0.1; done
/usr/sbin/poplar-popd >/tmp/popd.log 2>&1 &
popd=$!
for i in $(seq 100); do grep -q "listening on pop3 " /tmp/popd.log && break; sleep 0.1; done
curl -s --max-time 20 pop3://alice:alice-Passw0rd@127.0.0.1:110/1 > /tmp/retr.txt
curl -s --max-time 20 -k pop3s://alice:alice-Passw0rd@127.0.0.1:995/ > /tmp/list.txt
curl -s --max-time 10 http://127.0.0.1:9110/metrics > /tmp/ix.metrics
curl -s --max-time 10 http://127.0.0.1:9111/metrics > /tmp/pd.metrics
poplarctl accounts add carol --password-stdin <<< 'carol-Passw0rd' > /tmp/ctl.txt 2>&1
kill -TERM "$popd"; wait "$popd"; kill -TERM "$indexer"; wait "$indexer"
RUN
unshare -n bash /tmp/run.sh
check "curl pop3 RETR 1 read the message" grep -q "first message body" /tmp/retr.txt
check "curl pop3s LIST" grep -q "^1 " /tmp/list.txt
check "indexer metrics answered" grep -q "poplar_indexer_mailboxes 1" /tmp/ix.metrics
check "popd metrics: curl's two logins (SASL PLAIN)" grep -q 'poplar_popd_logins_total{mechanism="PLAIN"} 2' /tmp/pd.metrics
check "popd session log line" grep -q "session user=alice client=127.0.0.1 tls=none mech=PLAIN retrieved=1" /tmp/popd.log
check "poplarctl added an account" sh -c 'grep -aq carol /var/lib/poplar/index.sqlite*'
cat /tmp/indexer.log /tmp/popd.log | sed 's/^/      log: /' | head -20

echo "== 3. upgrade"
echo "# changed by the administrator" >> /etc/poplar/indexer.conf
dpkg -i "$deb" >/tmp/upgrade.log 2>&1
check "upgrade ran" grep -q "Unpacking poplar" /tmp/upgrade.log
check "the changed conffile kept" grep -q "changed by the administrator" /etc/poplar/indexer.conf
check "the index (accounts) kept" sh -c 'grep -aq carol /var/lib/poplar/index.sqlite*'

echo "== 4. purge"
apt-get purge -y -qq poplar >/tmp/purge.log 2>&1
check "programs removed" sh -c '! test -e /usr/sbin/poplar-indexer && ! test -e /usr/bin/poplarctl'
check "/etc/poplar removed" sh -c '! test -e /etc/poplar/indexer.conf && ! test -e /etc/pam.d/poplar'
echo "$failed failed"
exit $((failed > 0))
