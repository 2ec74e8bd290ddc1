#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds one libFuzzer target with clang (ASan + UBSan) against every pure
# source (common/, the agent's core/ folders and config parser, the relay's
# stash and CUSE tty; none needs an event loop or libusb) and runs it for a bounded time from its seed corpus:
#   run-fuzzer.sh TARGET.c SECONDS OUTDIR [CORPUS_DIR]
set -eu
target=$1 seconds=$2 out=$3
src=$(cd "$(dirname "$0")/../.." && pwd)
name=$(basename "$target" .c)
corpus=${4:-$src/tests/fuzz/corpus/${name#fuzz_}}
mkdir -p "$out/corpus-$name"
# shellcheck disable=SC2046
pure="$src/common $src/agent/usb/core $src/agent/serial/core"
includes="-I$out/generated -I$src/agent -I$src/relay"
sources="$src/agent/config.c $src/relay/relay_stash.c $src/relay/cuse_tty.c"
for dir in $pure; do
    includes="$includes -I$dir"
    sources="$sources $(echo "$dir"/*.c)"
done
# shellcheck disable=SC2086
clang -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    $includes "$target" $sources \
    $(pkg-config --cflags --libs inih libusbredirparser-0.5 liblz4 libsodium) \
    -o "$out/$name"
exec "$out/$name" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 \
    -print_final_stats=1 "$out/corpus-$name" "$corpus"
