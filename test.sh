#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the whole test suite: installs dependencies, builds with
# AddressSanitizer + UBSan, checks formatting, runs unit and end-to-end tests.
set -eu
cd "$(dirname "$0")"

scripts/install-test-deps.sh   # build + demo + test-only packages, cross toolchains
BUILD=${BUILD_DIR:-build-test}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DREDIR_SANITIZE=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
cd "$BUILD"
# Two e2e tests at a time: each runs QEMU, and the machine may have 2 cores.
exec ctest --output-on-failure --timeout 300 -j 2 "$@"
