#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks the cmake --install layout of a build tree: binaries, man pages, init scripts and units naming the installed binaries and their users, the udev rule, and configs installed only when absent.
# Usage: test_install.sh BUILD_DIR WORKDIR
set -eu

BUILD=$1
DEST=$2/install-root

fail() {
    echo "test_install: $*" >&2
    exit 1
}

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
sbindir=$(sed -n 's/^CMAKE_INSTALL_SBINDIR:PATH=//p' "$BUILD/CMakeCache.txt")
case $sbindir in /*) ;; *) sbindir=$prefix/$sbindir ;; esac
daemons=redir-agent
[ -f "$BUILD/relay/Makefile" ] && daemons="$daemons redir-relay"

rm -rf "$DEST"
DESTDIR=$DEST cmake --install "$BUILD" >/dev/null
for d in $daemons; do
    for f in "$sbindir/$d" "/etc/$d.ini" "/etc/init.d/$d" \
        "$prefix/lib/systemd/system/$d.service" \
        "$prefix/share/doc/$d/examples/$d.ini" "$prefix/share/man/man8/$d.8"; do
        [ -e "$DEST$f" ] || fail "no $f"
    done
    [ -x "$DEST/etc/init.d/$d" ] || fail "/etc/init.d/$d is not executable"
    grep -qx "DAEMON=$sbindir/$d" "$DEST/etc/init.d/$d" ||
        fail "/etc/init.d/$d does not run $sbindir/$d"
    grep -qx "ExecStart=$sbindir/$d -f" "$DEST$prefix/lib/systemd/system/$d.service" ||
        fail "$d.service does not run $sbindir/$d"
    if grep -q "/usr/sbin/" "$DEST/etc/init.d/$d" && [ "$sbindir" != /usr/sbin ]; then
        fail "/etc/init.d/$d still names /usr/sbin"
    fi
done
[ -e "$DEST$prefix/share/man/man5/redir-agent.ini.5" ] || fail "no redir-agent.ini(5)"
# The agent runs as user redir-agent: usbfs nodes through its group.
grep -q '^SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", GROUP="redir-agent"' \
    "$DEST$prefix/lib/udev/rules.d/60-redir-agent.rules" ||
    fail "no udev rule giving group redir-agent the usbfs nodes"
for d in $daemons; do
    grep -qx "User=$d" "$DEST$prefix/lib/systemd/system/$d.service" ||
        fail "$d.service does not run as user $d"
    grep -qx "DAEMON_USER=$d" "$DEST/etc/init.d/$d" ||
        fail "/etc/init.d/$d does not run $d as user $d"
done
grep -q '^\.TH .*redir-agent [0-9]' "$DEST$prefix/share/man/man8/redir-agent.8" ||
    fail "redir-agent(8) has no version"

# An edited config survives a second install; the sample is refreshed.
echo "; edited" >>"$DEST/etc/redir-agent.ini"
DESTDIR=$DEST cmake --install "$BUILD" | grep -q "Kept: $DEST/etc/redir-agent.ini" ||
    fail "second install did not report keeping /etc/redir-agent.ini"
tail -n 1 "$DEST/etc/redir-agent.ini" | grep -qx "; edited" ||
    fail "second install overwrote /etc/redir-agent.ini"
rm -rf "$DEST"
echo "test_install: OK ($daemons, prefix $prefix)"
