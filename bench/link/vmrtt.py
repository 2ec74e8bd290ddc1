#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Added latency per transfer on a real kernel USB device (issue 16): 64-byte
bulk OUT then 64-byte bulk IN round trips on a configfs Loopback gadget in
the thin-client VM rig (tests/thinclient), timed by bench/link/hostrtt.c
with CLOCK_MONOTONIC inside the VM, everything on the VM's own 127.0.0.1:

  device alone   hostrtt direct: libusb's synchronous bulk transfers on the
                 gadget's usbfs node (the kernel, dummy_hcd and the function
                 by themselves); run first and last
  usbredirect    upstream usbredirect --device VID:PID --to 127.0.0.1:PORT
                 (A1, A2, ...: the baseline, run before and after each agent
                 run)
  agent          redir-agent (release build) with `[usb] connect =
                 127.0.0.1:PORT` and a rule allowing the gadget

For the redirectors, `hostrtt peer` plays QEMU (libusbredirparser, QEMU's
capabilities, TCP_NODELAY) and times bulk_packet OUT -> reply, bulk_packet
IN -> reply. Prints min/p50/p90/p99 microseconds, what each redirector adds
over the device alone (min, p50, p99), ratios against usbredirect (mean of
its runs), the A/A spread (usbredirect runs among themselves, device alone
1 vs 2), and per round trip the redirector's CPU time and context switches
(/proc inside the VM, over the timed run).

This is the same measurement as bench/link/hostrtt.py without umockdev: the
device is real to the VM's kernel (a usbfs node the agent epolls, no
preload in any process), so the agent services it as on a thin client.

The device: a gadget (1209:710b, "Rig Loopback") with one Loopback
function of usb_f_ss_lb (Linux Documentation/usb/gadget-testing.rst,
"LOOPBACK function") on one of dummy_hcd's UDCs, enumerated by the same
kernel at high speed. The function queues `qlen` OUT requests of
`bulk_buflen` bytes; when one completes, the same buffer is queued on the
IN endpoint with the length received, and once the host has read it, it
goes back to the OUT endpoint. So a 64-byte OUT (a short packet at high
speed's 512-byte max packet) is returned by the next 64-byte IN, in order,
as hostrtt expects. qlen 32 and bulk_buflen 4096 are set explicitly (the
defaults). The UDC assigns the endpoint addresses (dummy_hcd: IN 0x81,
OUT 0x02); they are read from sysfs and passed to hostrtt
(HOSTRTT_DEVICE, HOSTRTT_ENDPOINTS). No host driver binds the vendor
interface.

Absolute microseconds are large: the thin client is a QEMU TCG VM with one
vCPU, in which the kernel (dummy_hcd moves transfers from a timer: an
hrtimer in this kernel), the redirector and hostrtt share one emulated CPU,
and the host's other load slows TCG down further. The ratios (agent over
usbredirect, both run in the same boot, alternating) are the result; the
A/A spread says how much of a ratio is noise.

Upstream usbredirect (0.13.0, Debian 12) spins: its main loop watches the
socket for G_IO_IN | G_IO_OUT all the time (tools/usbredirect.c,
g_io_add_watch), and a connected socket is always writable, so its main
thread uses a whole CPU even with no transfer (the idle% column: 101 %;
the agent: 0 %). On the thin client's single vCPU that spin competes with
the kernel and hostrtt for the CPU, which is part of what usbredirect's
round trips pay here; on a multi-core thin client it would burn a core
instead. --smp 2 on this 2-core host gave nothing usable (TCG threads
fighting the host's other load: usbredirect's p50 1.7-12.6 ms between runs,
A/A spread 146 %).

    bench/link/vmrtt.py [--count 2000] [--warmup 200] [--rounds 1] [--smp 1]
                        [--awake] [--strace N]

--awake runs a nice-19 busy loop in the VM during every run, so its vCPU
never halts (usbredirect's spin keeps it from halting in its own runs):
what is left of a difference then is not the cost of waking an idle
CPU. On a quiet host (2026-12-03, load 0.5-0.7, 3 rounds, 1500 round
trips): agent / usbredirect p50 1.04, 1.04 and 1.05 in three plain
boots, 0.83 and 1.01 with --awake; the minimum 1.04-1.09 in all five:
keeping the CPU awake explains a few percent at most, within the noise.

--strace N runs N more round trips after each redirector's timed run,
untimed, under strace -f in the VM (strace and coreutils' date are added
to the VM), and prints each redirector's system calls per round trip. One
boot (2026-12-03, 3 rounds): the agent 16.0, usbredirect 25.8 (0.62x).
Uses $REDIR_AGENT, else a release build in build-bench/ (built if needed).
Needs usbredirect (scripts/install-test-deps.sh) and the thin-client rig's
dependencies; one boot, 35 s (--rounds 1) to 100 s (--rounds 5) here.

Results: four boots, release agent, kernel 6.1.0-57-amd64, 1 vCPU, on the
2-core host while other helpers built and ran VMs (load average 2.7-3.9:
noisy, as the spreads say). Runs 1 and 2 with `--rounds 2` (order: device
alone 1, usbredirect A1, agent B1, A2, B2, A3, device alone 2), run 3 with
`--rounds 3`, 2000 round trips per run; run 4 with `--rounds 5 --count
1000`. Microseconds, TCG-inflated (the device alone takes 0.4-0.7 ms per
64-byte round trip at p50):

                        min              p50              p99
  run 1: load average 2.82 before, 2.90 after
  device alone 1, 2     424, 432         596, 570         5811, 6090
  usbredirect A1-A3     1001, 1042, 1146 2213, 1651, 1842 9058, 12156, 6703
  agent B1, B2          1033, 1054       1747, 1410       6743, 7274
    CPU per round trip: usbredirect 1685-2235 us, agent 775-1015 us;
    connected and idle: usbredirect 101-102 % of the vCPU, agent 0 %
    agent / usbredirect: min 0.98, p50 0.83, p99 0.75; added over the
    device p50 +995 / +1319 us = 0.75, p99 +1058 / +3355 us = 0.32
    A/A spread (usbredirect, 3 runs): p50 29.5 %, p99 58.6 %; agent
    (2 runs): p50 21.3 %, p99 7.6 %; device alone 1 vs 2: p50 4.5 %

  run 2: load average 3.67 before, 3.26 after
  device alone 1, 2     379, 397         421, 473         4137, 3328
  usbredirect A1-A3     964, 1142, 969   1171, 1692, 1486 5814, 28811, 6282
  agent B1, B2          936, 1065        1198, 1412       6440, 7465
    CPU per round trip: usbredirect 1180-3125 us, agent 590-820 us;
    connected and idle: usbredirect 101-102 %, agent 0 %
    agent / usbredirect: min 0.98, p50 0.90, p99 0.51; added over the
    device p50 +859 / +1003 us = 0.86, p99 +3220 / +9903 us = 0.33
    A/A spread (usbredirect, 3 runs): p50 36.0 %, p99 168.7 %; agent
    (2 runs): p50 16.4 %, p99 14.8 %; device alone 1 vs 2: p50 11.7 %

  run 3 (--rounds 3): load average 2.89 before, 2.74 after
  device alone 1, 2     416, 441         528, 679         5704, 3340
  usbredirect A1-A4     1136, 963,       1688, 1656,      6342, 6430,
                        1084, 948        1218, 1624       5311, 6462
  agent B1-B3           1045, 990, 1061  1733, 1174, 1660 9369, 7950, 5558
    CPU per round trip: usbredirect 1240-1575 us, agent 625-1000 us;
    connected and idle: usbredirect 100-101 %, agent 0 %
    agent / usbredirect: min 1.00, p50 0.98, p99 1.24; added over the
    device p50 +919 / +943 us = 0.97, p99 +3104 / +1614 us = 1.92
    A/A spread (usbredirect, 4 runs): p50 30.4 %, p99 18.7 %; agent
    (3 runs): p50 36.7 %, p99 50.0 %; device alone 1 vs 2: p50 25.1 %

  run 4 (--rounds 5 --count 1000): load average 2.98 before, 3.91 after
  device alone 1, 2     443, 429         572, 571         5030, 4233
  usbredirect A1-A6     1176, 1180,      2071, 1942,      7186, 7732,
                        1203, 1150,      2287, 1933,      39445, 8173,
                        1001, 1197       1581, 2125       6837, 15844
  agent B1-B5           1174, 1087,      1970, 1690,      9164, 15516,
                        1100, 1021, 1168 1732, 1170, 1910 4854, 3450, 4664
    CPU per round trip: usbredirect 1520-4560 us, agent 580-2520 us;
    connected and idle: usbredirect 101-102 %, agent 0 %
    agent / usbredirect: min 0.96, p50 0.85, p99 0.53; added over the
    device p50 +1123 / +1418 us = 0.79, p99 +2898 / +9572 us = 0.30
    A/A spread (usbredirect, 6 runs): p50 35.5 %, p99 229.6 %; agent
    (5 runs): p50 47.2 %, p99 160.2 %; device alone 1 vs 2: p50 0.1 %

  All four boots pooled (12 agent runs, 16 usbredirect runs, each run's
  p50): median 1675 vs 1690 us (0.99), mean 1567 vs 1761 us (0.89).

Reading: at the minimum (the path's cost without queueing behind other
work) both redirectors add the same, ~520-770 us per round trip under TCG
(agent / usbredirect 0.98, 0.98, 1.00, 0.96). At p50 the agent is 0.83,
0.90, 0.98 and 0.85 of usbredirect (added latency 0.75, 0.86, 0.97,
0.79): at or below 1.0 in every boot, but usbredirect's runs differ among
themselves by 30-36 % and the agent's by 16-47 %, and pooled the medians
are equal (0.99); so "the agent adds no more than usbredirect" is what
these runs show, within that noise; not "less". p99 ratios (0.51-1.24,
added 0.30-1.92) are inside the p99 spreads (19-230 %): the host's load,
not the redirectors. The agent's CPU per round trip is 0.36-0.58 of
usbredirect's (which includes its spin). Whether the agent adds under
100 us at p50 cannot be read from a TCG VM (the device alone is 0.4-0.7 ms
at p50 here, every redirector adds ~0.5 ms even at the minimum); that
needs KVM or hardware.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "thinclient"))
from thinclient import Gadget, ThinClient, harness, program_files  # noqa: E402
import hostrtt  # noqa: E402  (the same round trips on the host: shared parts)
from hostrtt import STATS, loadavg, parse_results  # noqa: E402

LOOP_PID = 0x710b         # the rig's pid.codes range (VID 1209)
LOOP_QLEN = 32            # OUT requests queued by the function (default)
LOOP_BUFLEN = 4096        # bytes per request (default); >= 64 is all we need
REPLY_S = 120             # startup, handshake, warm-up: a hang, not a slow VM
SLOWEST_RTT_S = 0.05      # mean round trip allowed under TCG on a loaded host
USER_HZ = 100
IDLE_S = 2                # connected, no transfers: the redirector's CPU


def build(work):
    """(agent path, hostrtt path): the release agent, hostrtt for the VM
    (dynamically linked: program_files() copies its libraries)."""
    agent = os.environ.get("REDIR_AGENT")
    if not agent:
        hostrtt.build_release("redir-agent")
        agent = os.path.join(hostrtt.BUILD, "agent", "redir-agent")
    return agent, hostrtt.build_hostrtt(work)


def loopback_gadget():
    return Gadget("loop", LOOP_PID, "Rig Loopback",
                  [dict(type="Loopback", inst="lb")])


def plug_loopback(tc):
    """Create, configure and plug the gadget; (gadget, "OUT:IN" in hex)."""
    g = tc.add_gadget(loopback_gadget(), plug=False)
    F = f"{g.path}/functions/Loopback.lb"
    # the function locks its attributes while linked into a configuration
    # (EBUSY), and the rig links it at creation: unlink, set, link again
    C = f"{g.path}/configs/c.1"
    tc.sh(f"rm {C}/Loopback.lb\necho {LOOP_QLEN} > {F}/qlen\n"
          f"echo {LOOP_BUFLEN} > {F}/bulk_buflen\nln -s {F} {C}/")
    tc.plug(g)
    out = tc.sh(f"d=$(usb_dev 1209 {LOOP_PID:04x})\n"
                "echo speed $(cat /sys/bus/usb/devices/$d/speed)\n"
                "for e in /sys/bus/usb/devices/$d:1.0/ep_*; do echo ep "
                "$(cat $e/bEndpointAddress) $(cat $e/type) $(cat $e/direction)"
                " $(cat $e/wMaxPacketSize); done")
    eps = [line.split()[1:] for line in out.splitlines()
           if line.startswith("ep ")]
    ep_out = [e for e in eps if e[1] == "Bulk" and e[2] == "out"]
    ep_in = [e for e in eps if e[1] == "Bulk" and e[2] == "in"]
    assert len(ep_out) == 1 and len(ep_in) == 1, out
    assert tc.if_drivers(g) == {"1.0": None}, tc.if_drivers(g)
    attrs = tc.sh(f"echo qlen $(cat {F}/qlen) bulk_buflen "
                  f"$(cat {F}/bulk_buflen)").strip()
    print(f"  gadget {g.vidpid} on {g.udc} ({attrs}): "
          f"{out.splitlines()[0]} Mb/s, bulk "
          f"OUT 0x{ep_out[0][0]} IN 0x{ep_in[0][0]} (max packet "
          f"{int(ep_in[0][3], 16)}), no host driver", flush=True)
    return g, f"{ep_out[0][0]}:{ep_in[0][0]}"


def run_direct(tc, g, eps, args):
    timeout = REPLY_S + (args.count + args.warmup) * SLOWEST_RTT_S
    with Awake(tc, args.awake):
        rc, out = tc.run(f"HOSTRTT_DEVICE={g.vidpid} HOSTRTT_ENDPOINTS={eps} "
                         f"/usr/bin/hostrtt direct {args.count} "
                         f"{args.warmup} 2>&1", timeout=timeout)
    if rc != 0:
        raise harness.ProcessFailed(f"hostrtt direct (rc {rc}): {out}")
    return parse_results(out.splitlines())


class Peer:
    """hostrtt peer in the VM (a TcAgent: its exit code is checked). Its
    stdin and stdout are FIFOs it holds open read-write (never blocking,
    never EOF): a script writes "go" to one and reads lines from the other
    with a blocking `read`, so nothing polls in the VM while round trips
    are timed, and no control request runs meanwhile."""

    def __init__(self, tc, n, eps, args):
        self.tc, self.args = tc, args
        self.fin, self.fout = f"/tmp/peer{n}.in", f"/tmp/peer{n}.out"
        tc.sh(f"rm -f {self.fin} {self.fout}; mkfifo {self.fin} {self.fout}")
        self.proc = tc.start_agent(None, name=f"peer{n}", argv=[
            f"HOSTRTT_ENDPOINTS={eps}", "/usr/bin/hostrtt", "peer",
            str(args.count), str(args.warmup), f"0<>{self.fin}",
            f"1<>{self.fout}"])
        out = tc.sh(f"exec 4<{self.fout}\n" + self._read_to("LISTENING", 10))
        self.port = int(out.split()[-1])

    def _read_to(self, word, timeout):
        """Shell (fd 4 = the peer's output): print its lines up to the one
        starting with word; exit 1 if it does not come within timeout."""
        return (f"ok=\nwhile read -t {timeout} -r l <&4; do echo \"$l\"; "
                f"case \"$l\" in {word}*) ok=1; break ;; esac; done\n"
                f"[ -n \"$ok\" ] || {{ echo \"peer: no {word}\"; "
                f"cat {self.proc.vm_log}; exit 1; }}\n")

    def timed_run(self, pid):
        """Wait READY, start the timed round trips, wait DONE: results, the
        redirector's CPU ticks and context switches over the run, and its
        CPU over IDLE_S seconds after it (connected, no transfers)."""
        a = self.args
        t = int(REPLY_S + a.count * SLOWEST_RTT_S)
        ctr = (f"echo CTR $(cut -d' ' -f14,15 /proc/{pid}/stat) "
               f"$(cat /proc/{pid}/task/*/status | awk -F: "
               "'/ctxt_switches/ {n += $2} END {print n}')\n")
        script = (f"exec 4<{self.fout}\n" + self._read_to("READY", REPLY_S) +
                  ctr + f"echo go > {self.fin}\n" +
                  self._read_to("DONE", t) + ctr +
                  f"sleep {IDLE_S}\n" + ctr)
        rc, out = self.tc.run(script, timeout=t + REPLY_S + 30)
        if rc != 0:
            raise harness.ProcessFailed(f"hostrtt peer: {out}")
        res = parse_results(out.splitlines())
        c = [list(map(int, line.split()[1:])) for line in out.splitlines()
             if line.startswith("CTR ")]
        res["cpu_us"] = ((c[1][0] + c[1][1]) - (c[0][0] + c[0][1])) \
            / USER_HZ * 1e6 / a.count
        res["csw"] = (c[1][2] - c[0][2]) / a.count
        res["idle_pct"] = ((c[2][0] + c[2][1]) - (c[1][0] + c[1][1])) \
            / USER_HZ / IDLE_S * 100
        return res

    def strace_count(self, pid, n):
        """System calls per round trip over n untimed round trips under
        strace -f, {name: calls}. Counted in the VM (awk): only calls made
        between "count" and "COUNTED" by the VM's clock, not the ones while
        strace attaches or stops (usbredirect spins meanwhile)."""
        t = int(REPLY_S + n * SLOWEST_RTT_S * 20)   # strace slows TCG more
        count = (
            "awk -v t0=$t0 -v t1=$t1 -v n=%d '{ i = 1; if ($1 ~ /^[0-9]+$/) "
            "i = 2; ts = $i + 0; c = $(i + 1); sub(/\\(.*/, \"\", c); "
            "if (c !~ /^[a-z_0-9]+$/ || ts < t0 || ts > t1) next; k[c]++; "
            "tot++ } END { for (c in k) printf \"SYS %%s %%.2f\\n\", c, "
            "k[c] / n; printf \"SYS total %%.2f\\n\", tot / n }' "
            "/tmp/strace.txt\n" % n)
        script = (f"exec 4<{self.fout}\nargs=\nfor t in /proc/{pid}/task/*; "
                  f"do args=\"$args -p ${{t##*/}}\"; done\n"
                  f"/usr/bin/strace -f -ttt -o /tmp/strace.txt $args "
                  f"2>/dev/null &\nst=$!\nsleep 1\n"
                  f"t0=$(/usr/bin/gdate +%s.%N)\n"
                  f"echo 'count {n}' > {self.fin}\n" +
                  self._read_to("COUNTED", t) +
                  "t1=$(/usr/bin/gdate +%s.%N)\nkill -INT $st; wait $st\n" +
                  count + "rm -f /tmp/strace.txt\n")
        rc, out = self.tc.run(script, timeout=t + 60)
        if rc != 0:
            raise harness.ProcessFailed(f"strace count: {out}")
        return {w[1]: float(w[2]) for w in
                (line.split() for line in out.splitlines())
                if len(w) == 3 and w[0] == "SYS"}

    def close(self):
        """A line that is not "count M" ends the peer: exit code 0."""
        if self.proc.alive():
            self.tc.sh(f"echo quit > {self.fin}")
        rc = self.proc.wait_exit(10)
        self.tc.sh(f"rm -f {self.fin} {self.fout}")
        if rc != 0:
            raise harness.ProcessFailed(f"hostrtt peer exited {rc}: "
                                        f"{self.proc.fetch_log()}")


def start_redirector(tc, g, kind, port, n):
    if kind == "usbredirect":
        return tc.start_agent(None, name=f"usbredirect-{n}", argv=[
            "/usr/bin/usbredirect", "--device", g.vidpid, "--to",
            f"127.0.0.1:{port}"])
    return tc.start_agent(f"[usb]\nconnect = 127.0.0.1:{port}\n"
                          f"rule = allow vid=1209 pid={LOOP_PID:04x}\n",
                          name=f"agent-{n}")


class Awake:
    """--awake: a nice-19 busy loop in the VM for a run, so its vCPU never
    halts (usbredirect's own spin does that for its runs): what is left
    of a difference then is not the cost of waking an idle CPU."""

    def __init__(self, tc, on):
        self.tc, self.on = tc, on

    def __enter__(self):
        self.proc = None
        if self.on:
            self.tc.put_file("/tmp/spin.sh", "while :; do :; done\n")
            self.proc = self.tc.start_agent(None, name="awake", argv=[
                "nice", "-n", "19", "sh", "/tmp/spin.sh"])
        return self

    def __exit__(self, *exc):
        if self.proc:
            self.proc.stop(expect_rc=None)


def run_redirector(tc, g, eps, kind, n, args):
    with Awake(tc, args.awake):
        return run_redirector_once(tc, g, eps, kind, n, args)


def run_redirector_once(tc, g, eps, kind, n, args):
    peer = Peer(tc, n, eps, args)
    red = start_redirector(tc, g, kind, peer.port, n)
    try:
        res = peer.timed_run(red.pid)
        if args.strace:
            res["sys"] = peer.strace_count(red.pid, args.strace)
    finally:
        # the redirector first: usbredirect exits by itself when its peer
        # goes (a race with the signal); the peer waits on its stdin
        red.stop(timeout=15, expect_rc=None if kind == "usbredirect" else 0)
        peer.close()
    tc.wait_drivers(g, {"1.0": None}, 20)   # usbfs claim released
    return res


def mean(runs, k):
    return sum(r[k] for r in runs) / len(runs)


def spread(runs, k):
    """(max - min) / mean of one statistic over runs, in %."""
    vals = [r[k] for r in runs]
    return (max(vals) - min(vals)) / (sum(vals) / len(vals)) * 100


def print_table(runs, order, args, load0, load1, tc):
    devs = [runs[lb] for lb, kind in order if kind == "direct"]
    bases = [runs[lb] for lb, kind in order if kind == "usbredirect"]
    agents = [runs[lb] for lb, kind in order if kind == "agent"]
    dev = {k: mean(devs, k) for k in STATS}
    base = {k: mean(bases, k) for k in STATS}
    print(f"\n== 64-byte bulk OUT + bulk IN round trips on a configfs "
          f"Loopback gadget (dummy_hcd), inside the thin-client VM, "
          f"{args.count} per run, microseconds\n"
          f"   QEMU TCG, {tc.smp} vCPU, kernel {tc.kernel_version}: absolute "
          f"times "
          f"are emulation-inflated; the ratios are the result\n"
          f"   host load average {load0} before, {load1} after "
          f"({os.cpu_count()} CPUs)")
    print(f"  {'run':15} {'min':>6} {'p50':>7} {'p90':>7} {'p99':>8} "
          f"{'add min':>7} {'add p50':>8} {'add p99':>8} {'p50 xA':>6} "
          f"{'p99 xA':>6} {'CPU/rt':>6} {'csw/rt':>6} {'idle%':>5}")
    for label, kind in order:
        r = runs[label]
        redir = kind != "direct"
        print(f"  {label:15} " + hostrtt.row(r, dev, base if redir else None) +
              (f"{r['cpu_us']:6.0f} {r['csw']:6.1f} {r['idle_pct']:5.0f}"
               if redir else ""))
    print(f"  A/A spread (usbredirect, {len(bases)} runs, (max-min)/mean): "
          f"p50 {spread(bases, 'rtt_p50'):.1f} %, p99 "
          f"{spread(bases, 'rtt_p99'):.1f} %; device alone 1 vs 2: p50 "
          f"{spread(devs, 'rtt_p50'):.1f} %, p99 "
          f"{spread(devs, 'rtt_p99'):.1f} %")
    if len(agents) > 1:
        print(f"  agent spread ({len(agents)} runs): p50 "
              f"{spread(agents, 'rtt_p50'):.1f} %, p99 "
              f"{spread(agents, 'rtt_p99'):.1f} %")
    ag = {k: mean(agents, k) for k in STATS}
    add = [ag[k] - dev[k] for k in ("rtt_p50", "rtt_p99")]
    badd = [base[k] - dev[k] for k in ("rtt_p50", "rtt_p99")]
    def ratio(a, b):   # an added time within the noise can be <= 0
        return f"{a / b:.2f}" if b > 0 else "n/a"

    print(f"  agent / usbredirect: round trip min "
          f"{ag['rtt_min'] / base['rtt_min']:.2f}, p50 "
          f"{ag['rtt_p50'] / base['rtt_p50']:.2f}, p99 "
          f"{ag['rtt_p99'] / base['rtt_p99']:.2f}; added over the device "
          f"p50 {add[0]:+.0f} / {badd[0]:+.0f} us = {ratio(*add[:1], badd[0])}"
          f", p99 {add[1]:+.0f} / {badd[1]:+.0f} us = "
          f"{ratio(add[1], badd[1])}")


def rig_programs(rtt_exe, args):
    """{VM path: host path} of the programs the VM needs beyond the rig's."""
    progs = {"/usr/bin/hostrtt": rtt_exe}
    if args.strace:   # busybox's date has no %N: coreutils' as gdate
        progs.update({"/usr/bin/strace": "/usr/bin/strace",
                      "/usr/bin/gdate": "/usr/bin/date"})
    return progs


def print_syscalls(runs, order, n):
    """Per round trip, each redirector's calls (mean over its runs), the
    names that make up at least one call per round trip."""
    print(f"\n  system calls per round trip (strace -f in the VM, {n} "
          f"untimed round trips per run, mean of the runs):")
    for kind in ("usbredirect", "agent"):
        rs = [runs[lb]["sys"] for lb, k in order if k == kind]
        names = sorted({c for r in rs for c in r},
                       key=lambda c: -sum(r.get(c, 0) for r in rs))
        avg = {c: sum(r.get(c, 0) for r in rs) / len(rs) for c in names}
        print(f"    {kind:12} " + ", ".join(
            f"{c} {avg[c]:.1f}" for c in names if avg[c] >= 0.95))


def bench(td, args):
    agent, rtt_exe = build(td.path)
    tc = ThinClient(td, agent=agent, usbredirect=True, smp=args.smp,
                    modules=("usb_f_ss_lb",),
                    files=program_files(rig_programs(rtt_exe, args))).start()
    g, eps = plug_loopback(tc)
    order = [("device alone 1", "direct"), ("usbredirect A1", "usbredirect")]
    for i in range(args.rounds):
        order += [(f"agent B{i + 1}" if args.rounds > 1 else "agent", "agent"),
                  (f"usbredirect A{i + 2}", "usbredirect")]
    order.append(("device alone 2", "direct"))
    load0 = loadavg()
    runs = {}
    for n, (label, kind) in enumerate(order):
        if kind == "direct":
            runs[label] = run_direct(tc, g, eps, args)
        else:
            runs[label] = run_redirector(tc, g, eps, kind, n, args)
        hostrtt.print_run(label, runs[label])
    load1 = loadavg()
    print_table(runs, order, args, load0, load1, tc)
    if args.strace:
        print_syscalls(runs, order, args.strace)
    tc.stop()


def main():
    ap = hostrtt.round_trip_args(__doc__)
    ap.add_argument("--rounds", type=int, default=1,
                    help="agent runs, each followed by a usbredirect run")
    ap.add_argument("--strace", type=int, default=0,
                    help="after each redirector's timed run, this many "
                    "untimed round trips under strace -f (0: none)")
    ap.add_argument("--awake", action="store_true",
                    help="a nice-19 busy loop in the VM during every run: "
                    "its vCPU never halts, as usbredirect's spin keeps it")
    ap.add_argument("--smp", type=int, default=1,
                    help="the thin client's vCPUs (the rig's default: 1)")
    args = ap.parse_args()
    harness.main(lambda td: bench(td, args), name="bench_link_vmrtt")


if __name__ == "__main__":
    main()
