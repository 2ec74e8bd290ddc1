#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Soak: plug/unplug cycles of an emulated disk, the agent redirecting it to
a real QEMU usb-redir peer each time. Prints the agent's RSS and open fds at
the start, every --every cycles and at the end (flat is the goal), and the
failures (a cycle whose redirect or unplug did not happen within 20 s).

Usage: bench/soak/soak.py [--cycles 10000] [--every 1000] [--max-fd-growth N]
Exit 1 if any cycle failed, or (with --max-fd-growth) if the agent holds more
than N fds more at the end than after the first cycle. Run by ctest as
e2e_soak (500 cycles, the sanitizer build); the environment is the e2e
tests' (REDIR_AGENT, REDIR_USBEMU)."""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402
from harness import Agent, Fixture, Qemu, diskimage, free_port  # noqa: E402


def proc_figures(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f
                   if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Events:
    """redir-agent events: counts of redirected/left per port."""

    def __init__(self, agent, env):
        self.cond = threading.Condition()
        self.counts = {}
        self.proc = subprocess.Popen(
            [agent.path, "events", "--socket", agent.control_socket],
            stdout=subprocess.PIPE, text=True, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            e = json.loads(line)
            with self.cond:
                key = e["event"]
                self.counts[key] = self.counts.get(key, 0) + 1
                self.cond.notify_all()

    def wait_count(self, event, n, timeout=20):
        with self.cond:
            return self.cond.wait_for(
                lambda: self.counts.get(event, 0) >= n, timeout)


def run(td, args):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 4)
    fx = Fixture(td).start()
    port = free_port()
    qemu = Qemu(td, slots=[("server", port)], paused=False)
    qemu.start()
    qemu.wait_listening(port)
    agent = Agent(td, fx)
    agent.start(f"[agent]\nlog_level = notice\n[usb]\n"
                f"connect = 127.0.0.1:{port}\nreconnect_max_ms = 200\n")
    harness.wait_for(lambda: os.path.exists(agent.control_socket), 20,
                     "the control socket")
    ev = Events(agent, harness.preload_env(fx.umockdev_dir))
    harness.wait_for(lambda: ev.counts.get("subscribed"), 10, "events")
    figures = [("start", *proc_figures(agent.pid))]
    failures = 0
    t0 = time.monotonic()
    for i in range(1, args.cycles + 1):
        dev_id, _ = fx.add("disk", img)
        ok = ev.wait_count("redirected", i - failures)
        fx.remove(dev_id)
        left = ev.wait_count("left", i)
        if not (ok and left):
            failures += 1
            print(f"cycle {i}: {'no redirect' if not ok else 'no unplug'}",
                  flush=True)
        if i == 1:
            figures.append(("after 1", *proc_figures(agent.pid)))
        if i % args.every == 0 or i == args.cycles:
            figures.append((f"after {i}", *proc_figures(agent.pid)))
            rss, fds = figures[-1][1:]
            print(f"{i} cycles ({time.monotonic() - t0:.0f} s): RSS "
                  f"{rss / 1024:.1f} MiB, {fds} fds, {failures} failures",
                  flush=True)
    elapsed = time.monotonic() - t0
    print("\n| when | RSS (MiB) | open fds |\n|---|---|---|")
    for what, rss, fds in figures:
        print(f"| {what} | {rss / 1024:.1f} | {fds} |")
    print(f"\n{args.cycles} cycles in {elapsed:.0f} s "
          f"({elapsed / args.cycles * 1000:.0f} ms each), {failures} failed")
    assert agent.alive(), "the agent died"
    agent.stop(timeout=10)
    ev.proc.wait(timeout=10)
    growth = figures[-1][2] - figures[1][2]
    if failures:
        raise AssertionError(f"{failures} of {args.cycles} cycles failed")
    if args.max_fd_growth is not None and growth > args.max_fd_growth:
        raise AssertionError(f"the agent holds {growth} more fds than after "
                             f"the first cycle")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=10000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--max-fd-growth", type=int)
    args = ap.parse_args()
    sys.argv = sys.argv[:1]
    harness.main(lambda td: run(td, args))


if __name__ == "__main__":
    main()
