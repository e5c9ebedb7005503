#!/usr/bin/env bash
# Builds the Debian 12 package of Poplar from this tree: build-deb/poplar_VERSION_ARCH.deb.
#   bash packaging/build-deb.sh            (BUILD_DIR=build-deb, JOBS=nproc)
# A Release build of the three programs, the man pages (from docs/man and the schema), then
# CPack's DEB generator (dependencies from dpkg-shlibdeps; maintainer scripts in
# packaging/debian/). Needs the build dependencies (deploy/install-deps.sh) and dpkg-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-deb}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOPLAR_BENCH=OFF \
      -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON ${CMAKE_EXTRA:-} >/dev/null
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target poplar-indexer poplar-popd poplarctl poplar-mbox poplar_man_pages
(cd "$build" && cpack -G DEB >/dev/null)
ls -1 "$build"/poplar_*.deb
