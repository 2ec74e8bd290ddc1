#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs every Debian package redir-agent needs to build, test and run its demo.
set -eu

PACKAGES="build-essential cmake pkg-config clang-format clang libclang-rt-14-dev
libusb-1.0-0-dev libusbredirhost-dev libusbredirparser-dev libuv1-dev
liblz4-dev libinih-dev libsodium-dev
umockdev libumockdev-dev libglib2.0-dev
qemu-system-x86 seabios usbredirect python3
python3-serial ser2net
linux-image-amd64 busybox-static cpio kmod"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

"$(dirname "$0")/../packaging/install-cross-deps.sh" # packaging tests (tests/packaging)
missing=
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
[ -n "$missing" ] || exit 0

echo "install-deps: installing:$missing"
# A foreign-architecture index can be inconsistent on some mirrors: do not let
# update's exit code decide, check that the packages actually installed.
$SUDO apt-get update -q || echo "install-deps: apt-get update reported errors, continuing"
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing

for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || {
        echo "install-deps: package $p did not install" >&2
        exit 1
    }
done
