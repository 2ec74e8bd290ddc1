# SPDX-License-Identifier: MIT
"""Link profiles between a thin client and the hypervisor side, for the
benchmarks in bench/link: two network namespaces joined by a veth pair,
each end's egress shaped with tbf (rate), and a delaying TCP forwarder
(delayproxy.c) on the hypervisor side adding half the round trip each way
(this machine's kernel has tbf but no sch_netem).

    thin-client ns (agent, usbredirect)                 hypervisor ns
      10.77.N.2 ──veth, tbf RATE──> 10.77.N.1 delayproxy ──RTT/2 each way──>
                <──veth, tbf RATE──                     127.0.0.1: QEMU chardevs, relay

Processes are put into a namespace by a wrapper script (`nsenter --net`,
which execs: the pid stays the program's). Needs root (CAP_NET_ADMIN).
"loopback" is the unshaped reference: everything on the host's loopback,
no proxy."""
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# rate for tbf, round trip in ms (added by the proxy, half each way)
PROFILES = {
    "loopback": None,
    "1gbe": {"rate": "1gbit", "rtt_ms": 0.2, "mbit": 1000},
    "100mbit": {"rate": "100mbit", "rtt_ms": 1.0, "mbit": 100},
    "wan": {"rate": "20mbit", "rtt_ms": 30.0, "mbit": 20},
}


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def build_proxy(work):
    exe = os.path.join(work, "delayproxy")
    if not os.path.exists(exe):
        subprocess.run(["cc", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror",
                        os.path.join(HERE, "delayproxy.c"), "-o", exe],
                       check=True)
    return exe


class Link:
    """One profile's namespaces, veth, qdiscs, wrappers and proxies."""

    def __init__(self, profile, work=None):
        self.profile = profile
        self.spec = PROFILES[profile]
        self.work = work or tempfile.mkdtemp(prefix=f"link-{profile}-")
        self.proxies = []
        tag = f"{os.getpid() % 10000}"
        if self.spec is None:
            self.tc_ns = self.hv_ns = None
            self.hv_ip = self.tc_ip = "127.0.0.1"
            return
        net = os.getpid() % 200 + 20
        self.tc_ns, self.hv_ns = f"rdb-tc-{tag}", f"rdb-hv-{tag}"
        self.hv_ip, self.tc_ip = f"10.77.{net}.1", f"10.77.{net}.2"
        va, vb = f"rdbh{tag}", f"rdbt{tag}"
        sh("ip", "netns", "add", self.tc_ns)
        sh("ip", "netns", "add", self.hv_ns)
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        sh("ip", "link", "set", va, "netns", self.hv_ns)
        sh("ip", "link", "set", vb, "netns", self.tc_ns)
        rate = self.spec["rate"]
        # burst: ~1 ms at the rate (at least 16 KiB); queue: 50 ms
        burst = max(16384, int(self.spec["mbit"] * 1e6 / 8 / 1000))
        for ns, dev, ip in ((self.hv_ns, va, self.hv_ip),
                            (self.tc_ns, vb, self.tc_ip)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev,
               "root", "tbf", "rate", rate, "burst", str(burst),
               "latency", "50ms")

    @property
    def rtt_us(self):
        return 0 if self.spec is None else int(self.spec["rtt_ms"] * 1000)

    @property
    def link_mb_s(self):
        """The shaped rate in MB/s (10^6 bytes), None for loopback."""
        return None if self.spec is None else self.spec["mbit"] / 8

    def describe(self):
        if self.spec is None:
            return "loopback (no shaping, no proxy)"
        return (f"{self.profile}: tbf {self.spec['rate']} each way, "
                f"{self.spec['rtt_ms']:g} ms RTT added by delayproxy")

    def wrapper(self, side, program, name=None):
        """A script running program in the side's namespace ("tc" or
        "hv"); program itself on loopback."""
        ns = self.tc_ns if side == "tc" else self.hv_ns
        if ns is None:
            return program
        path = os.path.join(self.work, name or
                            f"{side}-{os.path.basename(program)}")
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nexec nsenter --net=/run/netns/{ns} -- "
                    f"{shutil.which(program) or program} \"$@\"\n")
        os.chmod(path, 0o755)
        return path

    def tc_prefix(self):
        """argv prefix running a command in the thin client's namespace."""
        return [] if self.tc_ns is None else \
            ["nsenter", f"--net=/run/netns/{self.tc_ns}", "--"]

    def expose(self, ports):
        """Makes hypervisor-side ports (127.0.0.1:P in its namespace)
        reachable from the thin client through the delaying proxy; returns
        {port: (host, port) the thin client dials}."""
        if self.spec is None:
            return {p: ("127.0.0.1", p) for p in ports}
        exe = build_proxy(self.work)
        out, maps = {}, []
        for i, p in enumerate(ports):
            lp = 20000 + len(self.proxies) * 100 + i
            maps.append(f"{lp}:{p}")
            out[p] = (self.hv_ip, lp)
        proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.hv_ns}", "--", exe,
             str(self.rtt_us // 2), self.hv_ip, "127.0.0.1", *maps],
            stdout=subprocess.PIPE, text=True)
        if proc.stdout.readline().strip() != "READY":
            raise RuntimeError("delayproxy did not start")
        self.proxies.append(proc)
        return out

    def stop_proxies(self):
        for p in self.proxies:
            p.terminate()
            p.wait(5)
        self.proxies = []

    def close(self):
        self.stop_proxies()
        for ns in (self.tc_ns, self.hv_ns):
            if ns:
                sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.work, ignore_errors=True)
