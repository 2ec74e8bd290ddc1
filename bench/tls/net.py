#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark: what TLS costs the connection module alone (common/net), with
no USB and no relay: one process writes TOTAL MiB through a net_conn to a
guarded net_listener over loopback, in writes of 64 B (usbredir headers),
1 KiB and 16 KiB, plain and with TLS 1.3 (AES-128-GCM, ChaCha20-Poly1305).
Prints CPU seconds per GiB (both ends together) and the ratio against
plain, with `openssl speed` of the same ciphers beside it (the floor: what
the cipher alone costs for one side).

Usage: bench/tls/net.py [--mib N] [--rounds N]"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "tls"))
import make_certs  # noqa: E402

SUITES = {"aes-gcm": ("TLS_AES_128_GCM_SHA256", "aes-128-gcm"),
          "chacha20": ("TLS_CHACHA20_POLY1305_SHA256", "chacha20-poly1305")}
COMMON = ["net/net_conn.c", "net/net_conn_dial.c", "net/net_conn_tls.c",
          "net/net_conn_write.c", "net/net_listener.c", "net/net_tls.c",
          "net/net_tcp.c", "log.c", "endpoint.c", "hostport.c", "cidr.c",
          "glob_list.c", "net_admit.c", "log_limit.c", "secure_file.c"]


def build(work):
    common = os.path.join(ROOT, "common")
    gen = os.path.join(work, "generated")
    os.makedirs(gen, exist_ok=True)
    with open(os.path.join(gen, "version.h"), "w") as f:
        f.write('#define REDIR_VERSION "bench"\n')
    exe = os.path.join(work, "net_bench")
    subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall",
                    "-Wextra", "-Werror", "-I", common, "-I",
                    os.path.join(common, "net"), "-I", gen,
                    os.path.join(HERE, "net_bench.c"),
                    *[os.path.join(common, f) for f in COMMON],
                    "-luv", "-lssl", "-lcrypto", "-o", exe], check=True)
    return exe


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(exe, chunk, mib, certs, variant):
    args = [exe, str(free_port()), str(chunk), str(mib)]
    if variant != "plain":
        args += [certs, SUITES[variant][0]]
    out = subprocess.run(args, check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[1])


def openssl_speed(cipher):
    """Single-core s/GiB of one cipher direction, 16 KiB blocks."""
    out = subprocess.run(["openssl", "speed", "-elapsed", "-seconds", "1",
                          "-evp", cipher], capture_output=True,
                         text=True).stdout
    line = [x for x in out.splitlines() if x.lower().startswith(
        cipher.split("-")[0])][-1]
    kbs = float(re.findall(r"([\d.]+)k", line)[-1])
    return (1 << 30) / (kbs * 1000)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-tls-net-")
    exe = build(work)
    certs = os.path.join(work, "certs")
    make_certs.make_all(certs)
    variants = ["plain", "aes-gcm", "chacha20"]
    res = {}
    for _ in range(args.rounds):  # interleaved
        for chunk in (64, 1024, 16384):
            for v in variants:
                res.setdefault((chunk, v), []).append(
                    run(exe, chunk, args.mib, certs, v))
    print(f"{args.mib} MiB per run, {args.rounds} runs each, interleaved; "
          "CPU s/GiB of both ends (median; ratio against plain)")
    print("| write size | plain | TLS AES-128-GCM | TLS ChaCha20-Poly1305 |")
    print("|---|---|---|---|")
    for chunk in (64, 1024, 16384):
        base = statistics.median(res[(chunk, "plain")])
        cells = [f"{base:.2f}"]
        for v in variants[1:]:
            m = statistics.median(res[(chunk, v)])
            cells.append(f"{m:.2f} ({m / base:.2f}x, +{m - base:.2f})")
        print(f"| {chunk} B | " + " | ".join(cells) + " |")
    for v in variants[1:]:
        print(f"openssl speed {SUITES[v][1]}, 16 KiB: "
              f"{openssl_speed(SUITES[v][1]):.2f} s/GiB one way")


if __name__ == "__main__":
    main()
