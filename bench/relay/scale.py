#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Relay memory and CPU at scale: SESSIONS synthetic agents (half lz4, half
raw) through one redir-relay to as many fake QEMU chardevs (unix sockets
that greet and echo), driven by SHARDS relay_scale processes (two files per
session each, so 10,000 sessions fit under a 20,000 file limit).

Prints the relay's RSS (VmRSS and RssAnon) before any session, with every
session attached and idle, at its peak during each traffic round (every
agent sends BYTES, the chardev echoes them), right after the traffic and
after it settled, and once every session left; per session as
(RSS - RSS before any session) / SESSIONS. And the relay's CPU seconds per
GiB of usbredir payload it pumped (both directions counted).

    bench/relay/scale.py [--relay PATH] [--sessions 9984] [--shards 4]
                         [--bytes 65536] [--rounds 3] [--settle 5]
                         [--session-buffer 512K] [--repeat 1]

The relay needs 2 files per session plus a few: with a hard limit of
20,000 open files that is 9,990 sessions at most; the relay and the shards
raise their soft limit to the hard one, never beyond.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GIB = 1 << 30


def build_release():
    build = os.path.join(ROOT, "build-rel")
    if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", ROOT, "-B", build,
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                        "-DREDIR_SANITIZE=OFF"], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count()),
                    "--target", "redir-relay"], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(build, "relay", "redir-relay")


def build_shard(work):
    exe = os.path.join(work, "relay_scale")
    common = os.path.join(ROOT, "common")
    subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall",
                    "-Wextra", "-Werror", "-I", common,
                    os.path.join(HERE, "relay_scale.c"),
                    *[os.path.join(common, f) for f in
                      ("relay_proto.c", "relay_proto_client.c",
                       "relay_proto_server.c", "relay_secret.c",
                       "stream_codec.c", "secure_file.c")],
                    "-luv", "-llz4", "-lsodium", "-o", exe], check=True)
    return exe


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Shard:
    def __init__(self, exe, port, secret, sock_dir, first, n, nbytes):
        self.p = subprocess.Popen(
            [exe, str(port), secret, sock_dir, str(first), str(n),
             str(nbytes)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)

    def expect(self, word):
        line = self.p.stdout.readline()
        if not line.startswith(word):
            raise RuntimeError(f"shard: expected {word}, got {line!r}")
        f = line.split()
        return int(f[2]) if len(f) > 2 else 0

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()


class Sampler(threading.Thread):
    """Samples the relay's RSS every 20 ms until stopped: the peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.peak_anon = pid, 0, 0
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            s = status(self.pid)
            self.peak = max(self.peak, s["VmRSS"])
            self.peak_anon = max(self.peak_anon, s["RssAnon"])
            time.sleep(0.02)

    def stop(self):
        self.stop_ev.set()
        self.join()


def run_once(args, relay_path, shard_exe, work):
    sock_dir = os.path.join(work, "q")
    shutil.rmtree(sock_dir, ignore_errors=True)
    os.mkdir(sock_dir)
    secret = os.path.join(work, "relay.secret")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, os.urandom(24).hex().encode() + b"\n")
    os.close(fd)
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = os.path.join(work, "relay.ini")
    with open(conf, "w") as f:
        f.write(f"[relay]\nlisten = 127.0.0.1:{port}\nsecret_file = {secret}\n"
                f"log_level = warning\nmax_sessions = {args.sessions + 16}\n"
                f"session_buffer = {args.session_buffer}\n"
                # every shard dials from 127.0.0.1, up to 64 handshakes
                # in flight each (relay_scale.c MAX_CONNECTING)
                f"handshakes_max = 512\nhandshakes_per_source = 512\n")
        for i in range(args.sessions):
            f.write(f"[target.t{i}]\nqemu = unix:{sock_dir}/q{i}\n")
    log = open(os.path.join(work, "relay.log"), "w")
    relay = subprocess.Popen([relay_path, "-f", "-c", conf],
                             stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT)
    rows = []
    try:
        deadline = time.monotonic() + 30
        while True:
            with open(f"/proc/net/tcp") as f:
                if f":{port:04X} 00000000:0000 0A" in f.read():
                    break
            if relay.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("relay did not start: " +
                                   open(log.name).read()[-2000:])
            time.sleep(0.1)
        time.sleep(args.settle / 2)
        base = status(relay.pid)
        rows.append(("before any session", base))
        per = args.sessions // args.shards
        shards = []
        t0 = time.monotonic()
        for k in range(args.shards):
            n = per if k < args.shards - 1 else args.sessions - per * k
            shards.append(Shard(shard_exe, port, secret, sock_dir, per * k, n,
                                args.bytes))
        for s in shards:
            s.expect("ESTABLISHED")
        attach_s = time.monotonic() - t0
        time.sleep(args.settle)
        rows.append((f"{args.sessions} sessions attached, idle",
                     status(relay.pid)))
        cpu_total, gib_total, round_s = 0.0, 0.0, []
        for r in range(args.rounds):
            sampler = Sampler(relay.pid)
            sampler.start()
            c0, t1 = cpu_seconds(relay.pid), time.monotonic()
            for s in shards:
                s.send("go")
            for s in shards:
                s.expect("ECHOED")
            round_s.append(time.monotonic() - t1)
            cpu_total += cpu_seconds(relay.pid) - c0
            gib_total += 2 * args.sessions * args.bytes / GIB
            sampler.stop()
            rows.append((f"round {r + 1}: peak during traffic",
                         {"VmRSS": sampler.peak, "RssAnon": sampler.peak_anon}))
            rows.append((f"round {r + 1}: right after", status(relay.pid)))
        time.sleep(args.settle)
        rows.append((f"{args.settle:g} s after the traffic",
                     status(relay.pid)))
        for s in shards:
            s.send("close")
        for s in shards:
            s.expect("DONE")
            s.p.wait(30)
        time.sleep(args.settle)
        rows.append(("every session left", status(relay.pid)))
        hwm = status(relay.pid)["VmHWM"]
    finally:
        relay.terminate()
        relay.wait(30)
        log.close()
    return {"rows": rows, "base": base, "attach_s": attach_s,
            "cpu_per_gib": cpu_total / gib_total, "round_s": round_s,
            "hwm": hwm, "gib": gib_total}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--relay")
    ap.add_argument("--sessions", type=int, default=9984)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--bytes", type=int, default=65536)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--session-buffer", default="512K")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep")
    args = ap.parse_args()
    relay_path = args.relay or build_release()
    work = args.keep or tempfile.mkdtemp(prefix="relay-scale-")
    os.makedirs(work, exist_ok=True)
    try:
        exe = build_shard(work)
        print(f"relay {relay_path}; {args.sessions} sessions in "
              f"{args.shards} shards, {args.bytes} bytes echoed per session "
              f"per round, {args.rounds} rounds", flush=True)
        for rep in range(args.repeat):
            res = run_once(args, relay_path, exe, work)
            base = res["base"]
            print(f"\nrun {rep + 1}: attached in {res['attach_s']:.1f} s; "
                  f"rounds {', '.join(f'{s:.1f}' for s in res['round_s'])} s")
            print(f"  {'':40} {'VmRSS MiB':>10} {'KiB/session':>12} "
                  f"{'RssAnon MiB':>12} {'KiB/session':>12}")
            for what, st in res["rows"]:
                print(f"  {what:40} {st['VmRSS'] / 1024:10.1f} "
                      f"{(st['VmRSS'] - base['VmRSS']) / args.sessions:12.2f} "
                      f"{st['RssAnon'] / 1024:12.1f} "
                      f"{(st['RssAnon'] - base['RssAnon']) / args.sessions:12.2f}")
            print(f"  peak (VmHWM) {res['hwm'] / 1024:.1f} MiB; relay CPU "
                  f"{res['cpu_per_gib']:.2f} s per GiB pumped "
                  f"({res['gib']:.2f} GiB)", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
