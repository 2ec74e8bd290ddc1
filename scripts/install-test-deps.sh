#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs everything the test suite (test.sh) needs: the build and demo
# packages (scripts/install-deps.sh), the test-only tools below, and the
# cross toolchains of the packaging tests.
set -eu
cd "$(dirname "$0")/.."

# clang-format: the style test. clang + libclang-rt: the libFuzzer targets.
# usbredirect: upstream's redirector, the benchmarks' baseline, and the
# cable that plugs the emulated webcam into the thin-client VM
# (tests/thinclient/test_webcam.py).
# python3-serial, ser2net: the serial bridge's RFC 2217 client and baseline.
# busybox-static, cpio, kmod (depmod), udev (udevadm = systemd-udevd): the
# initramfs of the Linux-guest and thin-client VM rigs. Their kernel is
# fetched with apt-get download, never installed (tests/guest/README.md).
# openssl: the test certificates (tests/tls/make_certs.py).
# haproxy: the TCP load balancer in front of a relay pool (relay_e2e_haproxy);
# iproute2: network namespaces and tbf for bench/link's link profiles.
# prometheus: promtool checks the metrics endpoint, and a real server
# scrapes it once (e2e_metrics).
# systemd, util-linux (unshare): a systemd user manager keeps the relay's
# ptys across restarts (relay_e2e_fdstore); nothing is started on the host.
TEST_PACKAGES="clang-format clang libclang-rt-14-dev
usbredirect python3-serial ser2net
busybox-static cpio kmod udev
openssl haproxy iproute2 prometheus systemd util-linux"

# shellcheck disable=SC2086
scripts/install-deps.sh $TEST_PACKAGES
packaging/install-cross-deps.sh
