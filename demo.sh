#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the dependencies, builds redir-agent, and runs the built-in demo:
# an emulated USB disk redirected by the agent into a QEMU VM that boots it.
set -eu
cd "$(dirname "$0")"

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREDIR_SANITIZE=OFF >/dev/null
cmake --build build -j "$(nproc)"
REDIR_AGENT="$PWD/build/agent/redir-agent" \
REDIR_USBEMU="$PWD/build/tests/fixture/usbemu" \
    exec /usr/bin/python3 scripts/demo.py
