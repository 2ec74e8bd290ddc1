#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the redir-agent and redir-relay .debs for ARCH (amd64, arm64, armhf) from a copy of the tree.
#
# Usage: packaging/build-deb.sh [ARCH [OUTDIR]]
# The copy and its build directory stay in OUTDIR/ARCH/src (default OUTDIR:
# build-deb/ in the tree), so a rebuild only recompiles what changed; the
# .debs land in OUTDIR/ARCH/ and their paths are printed last.
# Needs packaging/install-cross-deps.sh (debhelper; for other
# architectures crossbuild-essential-ARCH and the -dev:ARCH packages).
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD_ARCH=$(dpkg --print-architecture)
ARCH=${1:-$BUILD_ARCH}
OUTDIR=${2:-$SRC/build-deb}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$OUTDIR/$ARCH
COPY=$WORK/src

# The package version is the project's: a release needs a changelog entry.
project=$(sed -n 's/^project(redir-agent VERSION \([0-9.]*\).*/\1/p' \
    "$SRC/CMakeLists.txt")
changelog=$(dpkg-parsechangelog -l "$SRC/packaging/debian/changelog" \
    -S Version)
if [ "$project" != "$changelog" ]; then
    echo "build-deb: CMakeLists.txt says $project, packaging/debian/changelog" \
        "says $changelog: add a changelog entry" >&2
    exit 1
fi

# Refresh the copy but keep its obj-* build directory: tar keeps mtimes,
# so make rebuilds only what changed. debian/ is taken fresh each time
# (no stale debhelper stamps).
mkdir -p "$COPY"
find "$COPY" -mindepth 1 -maxdepth 1 ! -name 'obj-*' -exec rm -rf {} +
(cd "$SRC" && tar -c --exclude=./.git --exclude='./build*' \
    --exclude=./obj-\* .) | (cd "$COPY" && tar -x)
cp -r "$SRC/packaging/debian" "$COPY/debian"
# A tree without the relay (relay/ not there yet) makes redir-agent only.
if [ ! -f "$COPY/relay/CMakeLists.txt" ]; then
    echo "build-deb: no relay/ in the tree: building redir-agent only" >&2
    awk -v RS= -v ORS='\n\n' '!/^Package: redir-relay/' \
        "$SRC/packaging/debian/control" >"$COPY/debian/control"
    rm -f "$COPY"/debian/redir-relay.*
fi
rm -f "$WORK"/*.deb "$WORK"/*.buildinfo "$WORK"/*.changes

# -nc: no "debian/rules clean" first, which would delete obj-*.
set -- -b -us -uc -nc --jobs-try="$(nproc)"
if [ "$ARCH" != "$BUILD_ARCH" ]; then
    set -- "$@" -a "$ARCH" -Pcross,nocheck
fi
(cd "$COPY" && dpkg-buildpackage "$@") >"$WORK/build.log" 2>&1 || {
    tail -n 40 "$WORK/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed; full log: $WORK/build.log" >&2
    exit 1
}
ls "$WORK"/*.deb
