#!/bin/sh
# Builds one libFuzzer target with clang (ASan + UBSan) and runs it for a
# bounded time from its seed corpus: run-fuzzer.sh NAME SECONDS OUTDIR
set -eu
name=$1 seconds=$2 out=$3
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out/corpus-$name"
# shellcheck disable=SC2046
clang -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$src/common" -I"$out/generated" \
    "$src/tests/fuzz/fuzz_$name.c" \
    "$src/common/config.c" "$src/common/hostport.c" "$src/common/log.c" \
    "$src/common/usbredir_hello.c" \
    $(pkg-config --cflags --libs inih libusbredirparser-0.5) \
    -o "$out/fuzz_$name"
exec "$out/fuzz_$name" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 \
    -print_final_stats=1 "$out/corpus-$name" "$src/tests/fuzz/corpus/$name"
