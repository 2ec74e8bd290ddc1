#!/bin/sh
# SPDX-License-Identifier: MIT
# Cross-builds for ARCH (arm64, armhf) with packaging/toolchain-ARCH.cmake, runs the unit tests under qemu-user, then builds and checks the ARCH .debs.
# Usage: test_cross.sh SOURCE_DIR ARCH WORKDIR
set -eu

SRC=$1
ARCH=$2
WORK=$3
BUILD=$WORK/cross-$ARCH

case $ARCH in
arm64) emulator=qemu-aarch64 ;;
armhf) emulator=qemu-arm ;;
*)
    echo "test_cross: unknown architecture $ARCH" >&2
    exit 1
    ;;
esac

start=$(date +%s)
# Tests on (REDIR_UNIT_TESTS_ONLY follows CMAKE_CROSSCOMPILING), no
# sanitizers: the unit tests run under qemu-user.
cmake -S "$SRC" -B "$BUILD" \
    -DCMAKE_TOOLCHAIN_FILE="$SRC/packaging/toolchain-$ARCH.cmake" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREDIR_SANITIZE=OFF \
    -DREDIR_BUILD_TESTS=ON >"$WORK/cross-$ARCH.log"
cmake --build "$BUILD" -j "$(nproc)" >>"$WORK/cross-$ARCH.log" 2>&1 || {
    tail -n 40 "$WORK/cross-$ARCH.log" >&2
    exit 1
}
echo "test_cross: $ARCH: built in $(($(date +%s) - start))s"

# Every test goes through the emulator (add_test(NAME x COMMAND target)).
(cd "$BUILD" && ctest --output-on-failure --timeout 120)
(cd "$BUILD" && ctest --show-only=json-v1) | grep -q "/usr/bin/$emulator" || {
    echo "test_cross: $ARCH: the tests do not run under $emulator" >&2
    exit 1
}

# The daemon itself starts on the emulated CPU and reads the sample config.
"$emulator" "$BUILD/agent/redir-agent" --version
"$emulator" "$BUILD/agent/redir-agent" --check-config -c "$SRC/conf/redir-agent.ini"

"$(dirname "$0")/test_deb.sh" "$SRC" "$ARCH" "$WORK/deb"
