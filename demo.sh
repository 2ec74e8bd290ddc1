#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the dependencies, builds redir-agent, and runs the built-in demo:
# an emulated USB disk redirected by the agent into a QEMU VM that boots it.
set -eu
cd "$(dirname "$0")"

scripts/install-deps.sh            # build + demo only (tests: install-test-deps.sh)
# The demo needs the agent and the emulated-device fixture (tests/fixture).
# Configuring the test tree also looks for tools of tests the demo does not
# run (clang-format, shellcheck, from install-test-deps.sh): when they are
# missing, point them at "false" (the style and packaging tests would fail
# in this build tree; test.sh builds its own).
tool() { command -v "$1" || echo /bin/false; }
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREDIR_SANITIZE=OFF \
    -DCLANG_FORMAT="$(tool clang-format)" -DSHELLCHECK="$(tool shellcheck)" \
    >/dev/null
cmake --build build -j "$(nproc)" --target redir-agent usbemu
REDIR_AGENT="$PWD/build/agent/redir-agent" \
REDIR_USBEMU="$PWD/build/tests/fixture/usbemu" \
    exec /usr/bin/python3 scripts/demo.py
