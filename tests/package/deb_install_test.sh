#!/usr/bin/env bash
# The .deb in a fresh Debian 12 root (issue 14), as root, with network (apt):
#   bash tests/package/deb_install_test.sh [PATH/TO/poplar_*.deb]
# Without an argument it builds the package first (packaging/build-deb.sh). Then, in a minimal
# Debian 12 root made by debootstrap (cached as $PKG_ROOT.pristine.tar, like
# ../shared/tools/fresh-debian-check) and its own network namespace (ports 110/9110 free):
#   1. apt-get install ./poplar_*.deb: dependencies resolve; the poplar user, conffiles, man
#      pages and units are there; nothing is enabled or running;
#   2. both daemons start under the installed configuration (the shipped files plus a TLS
#      certificate and a metrics block), a system account's mail is fetched with curl (pop3 and
#      pop3s), the metrics endpoint answers;
#   3. an upgrade (the same package again) keeps a changed conffile, the index and the account;
#   4. purge removes the programs and /etc/poplar.
# Not in ctest: it needs debootstrap, network and minutes.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
root=${PKG_ROOT:-/tmp/poplar-pkg-root}
deb=${1:-}
if [ -z "$deb" ]; then
  deb=$(bash "$src/packaging/build-deb.sh" | tail -1)
fi
deb=$(readlink -f "$deb")
echo "package: $deb"
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
if [ ! -f "$root.pristine.tar" ]; then
  echo "building a minimal Debian 12 root in $root (a few minutes, once)"
  rm -rf "$root"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
  cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null && rm -f "$root/etc/apt/sources.list" || true
  tar -C "$root" -cf "$root.pristine.tar" .
fi
rm -rf "$root"; mkdir -p "$root"; tar -C "$root" -xf "$root.pristine.tar"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cleanup() {
  for d in /proc/[0-9]*; do
    [ "$(readlink "$d/root" 2>/dev/null)" = "$root" ] && kill "${d#/proc/}" 2>/dev/null
  done
  sleep 1
  for m in dev/pts dev sys proc; do umount "$root/$m" 2>/dev/null || umount -l "$root/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
for m in proc sys dev dev/pts; do mkdir -p "$root/$m"; mount --bind "/$m" "$root/$m"; done
cp "$deb" "$root/tmp/"
cp "$src/tests/package/in_root.sh" "$root/tmp/in_root.sh"
# apt inside the root needs the network; the daemons get a private one (unshare -n in in_root.sh).
chroot "$root" /bin/bash /tmp/in_root.sh "/tmp/$(basename "$deb")"
