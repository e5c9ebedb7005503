#!/usr/bin/env bash
# Installs every Debian 12 package that Poplar's build, tests, fuzzers, benchmarks and demo need.
# Idempotent: packages already present are skipped, so a second run costs one dpkg query.
# Runs as root (or through sudo when it is available).
set -euo pipefail

PACKAGES=(
  # toolchain and build
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang libclang-rt-14-dev llvm clang-format
  # libraries (Debian 12: gRPC 1.51, Protobuf 3.21, abseil 20220623, SQLite 3.40, OpenSSL 3.0)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto libabsl-dev
  libsqlite3-dev sqlite3 libssl-dev openssl libxxhash-dev libpam0g-dev libcrypt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # test drivers and real POP3 clients / MDAs used by end-to-end and fault-injection tests
  python3 curl fetchmail mpop getmail6 procmail liblockfile-bin procps iproute2
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
