#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian packages redir-agent needs to build and to run its
# demo (demo.sh), plus any packages named on the command line
# (scripts/install-test-deps.sh adds what the test suite needs).
#
# Never a kernel image: the VM-based tests fetch Debian's kernel package
# with `apt-get download` and unpack it in a cache (tests/guest/README.md),
# so this machine does not get a new boot kernel.
set -eu

# Build: compiler, cmake, the libraries. Demo: the emulated-device fixture
# (umockdev, glib), QEMU with SeaBIOS, Python for scripts/demo.py.
PACKAGES="build-essential cmake pkg-config
libusb-1.0-0-dev libusbredirhost-dev libusbredirparser-dev libuv1-dev
liblz4-dev libinih-dev libsodium-dev libssl-dev libfuse3-dev
umockdev libumockdev-dev libglib2.0-dev
qemu-system-x86 seabios python3 $*"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=
for p in $PACKAGES; do
    installed "$p" || missing="$missing $p"
done
[ -n "$missing" ] || exit 0

echo "install-deps: installing:$missing"
# A foreign-architecture index can be inconsistent on some mirrors: do not let
# update's exit code decide, check that the packages actually installed.
$SUDO apt-get update -q || echo "install-deps: apt-get update reported errors, continuing"
# Another apt-get may hold the dpkg lock (e.g. a parallel checkout): wait.
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o DPkg::Lock::Timeout=600 --no-install-recommends $missing

for p in $PACKAGES; do
    installed "$p" || {
        echo "install-deps: package $p did not install" >&2
        exit 1
    }
done
