#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the .debs for ARCH with packaging/build-deb.sh and checks what is in them (files, the agent's udev rule, conffiles, dependencies, binary architecture).
# Usage: test_deb.sh SOURCE_DIR ARCH OUTDIR
set -eu

SRC=$1
ARCH=$2
OUTDIR=$3

fail() {
    echo "test_deb: $ARCH: $*" >&2
    exit 1
}

start=$(date +%s)
"$SRC/packaging/build-deb.sh" "$ARCH" "$OUTDIR" >/dev/null
echo "test_deb: $ARCH: built in $(($(date +%s) - start))s"

case $ARCH in
amd64) machine="X86-64" ;;
arm64) machine="AArch64" ;;
armhf) machine="ARM" ;;
*) fail "unknown architecture" ;;
esac

packages=redir-agent
[ -f "$SRC/relay/CMakeLists.txt" ] && packages="$packages redir-relay"
for p in $packages; do
    deb=$(ls "$OUTDIR/$ARCH/${p}_"*"_$ARCH.deb") || fail "no $p .deb"
    [ "$(dpkg-deb -f "$deb" Architecture)" = "$ARCH" ] ||
        fail "$deb: Architecture is not $ARCH"
    depends=$(dpkg-deb -f "$deb" Depends)
    echo "test_deb: $p $ARCH Depends: $depends"
    case $p in
    redir-agent) libs="libc6 libusb-1.0-0 libusbredirhost1 libuv1 libinih1" ;;
    redir-relay) libs="libc6 libuv1 libinih1" ;;
    esac
    for lib in $libs; do
        echo "$depends" | grep -q "\\b$lib\\b" || fail "$p does not depend on $lib"
    done
    contents=$(dpkg-deb -c "$deb")
    for f in "./usr/sbin/$p" "./etc/$p.ini" "./etc/init.d/$p" \
        "./lib/systemd/system/$p.service" \
        "./usr/share/doc/$p/examples/$p.ini" "./usr/share/man/man8/$p.8.gz"; do
        echo "$contents" | grep -q " $f\$" || fail "$p: no $f in $deb"
    done
    case $p in
    redir-agent)
        echo "$contents" | grep -q " ./lib/udev/rules.d/60-redir-agent.rules\$" ||
            fail "$p: no udev rule in $deb"
        ;;
    esac
    echo "$depends" | grep -q "\\badduser\\b" || fail "$p does not depend on adduser"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$tmp" ./conffiles
    grep -qx "/etc/$p.ini" "$tmp/conffiles" || fail "/etc/$p.ini is not a conffile"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "./usr/sbin/$p"
    readelf -h "$tmp/usr/sbin/$p" | grep -q "Machine:.*$machine" ||
        fail "$p: not an $machine binary: $(readelf -h "$tmp/usr/sbin/$p" | grep Machine)"
    size=$(stat -c %s "$tmp/usr/sbin/$p")
    echo "test_deb: $p $ARCH: /usr/sbin/$p $size bytes (stripped)"
    rm -rf "$tmp"
    trap - EXIT
done
echo "test_deb: $ARCH: OK"
