#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs what the packaging tests need: debhelper, debootstrap, qemu-user, arm64/armhf cross toolchains and -dev libraries.
set -eu

# Build tools for the .debs, the throwaway Debian root of the init script
# and systemd unit tests (systemd-container: systemd-nspawn), shellcheck.
NATIVE="debhelper dpkg-dev fakeroot debootstrap systemd-container qemu-user
shellcheck"
CROSS_ARCHES="arm64 armhf"
# The target-architecture libraries redir-agent and redir-relay link with
# (the same -dev packages as scripts/install-deps.sh, per architecture).
# pkgconf:ARCH is the cross pkg-config (TRIPLET-pkg-config) debhelper and
# the toolchain files use.
CROSS_DEV="pkgconf libusb-1.0-0-dev libusbredirhost-dev libusbredirparser-dev
libuv1-dev liblz4-dev libinih-dev libsodium-dev libssl-dev libfuse3-dev"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

wanted() {
    echo "$NATIVE"
    for a in $CROSS_ARCHES; do
        echo "crossbuild-essential-$a"
        for p in $CROSS_DEV; do echo "$p:$a"; done
    done
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=
for p in $(wanted); do
    installed "$p" || missing="$missing $p"
done
[ -n "$missing" ] || exit 0

echo "install-cross-deps: installing:$missing"
for a in $CROSS_ARCHES; do
    dpkg --print-foreign-architectures | grep -qx "$a" ||
        $SUDO dpkg --add-architecture "$a"
done
# Foreign-architecture indexes are often incomplete on third-party sources
# (or inconsistent on a mirror during a sync): update's exit code says
# nothing about whether our packages can install, so check those instead.
$SUDO apt-get update -q || echo "install-cross-deps: apt-get update reported errors, continuing"
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o DPkg::Lock::Timeout=600 --no-install-recommends $missing ||
    echo "install-cross-deps: apt-get install reported errors, checking packages"

failed=
for p in $(wanted); do
    installed "$p" || failed="$failed $p"
done
if [ -n "$failed" ]; then
    echo "install-cross-deps: did not install:$failed" >&2
    exit 1
fi
