#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Guest -> port through a relay's CUSE tty, against the direct bridge and
the relay's pty (issue 15): what a guest's UART can push down each path
when QEMU itself writes the bytes.

This machine's kernel has no /dev/cuse; the thin-client VM rig's kernel
has cuse.ko. So everything runs in one thin-client boot (QEMU TCG, one
vCPU), and "the VM" is a second QEMU started inside it:

  inner QEMU (-machine pc, TCG) 16550 at 0x3f8
    direct: -chardev socket -> redir-agent [serial] listen, mode = raw
    cuse:   -chardev serial,path=/run/com1 -> redir-relay (tty = cuse)
            -> redir-agent connect = RELAY/com1 (RFC 2217, shared secret)
    pty:    -chardev serial,path=/run/com2 -> redir-relay (tty = pty)
            -> redir-agent connect = RELAY/com2
  -> /dev/ttyACM0 (a CDC ACM gadget on dummy_hcd: the thin client's
     adapter) -> /dev/ttyGS0, read by vm_port (vm_port.c), which times
     the bytes from the first to the last and checks every one.

The inner guest is no operating system: its firmware (-bios, 64 KiB, made
by uart_tx_bios() below) sets the UART to 115200 8N1 with its FIFO on, as
a guest's driver does (QEMU passes that to a tty chardev with tcsetattr),
then sends a counting pattern, 16 bytes per THRE (a FIFO's worth, as
Linux's 8250 driver does per interrupt), and halts. QEMU's 16550 hands
each byte to its chardev with one write() as the guest writes THR, which
is the cost the paths differ in: a socket send (direct), a FUSE request
the relay answers (cuse), or a pty write (pty). Nested TCG makes the
guest's own instructions slow (microseconds each), so a path's extra cost
per byte shows diluted: on KVM it would weigh more.

    bench/serial_relay/vm_tx.py [--kib N] [--rounds R] [--writer program]

--writer program: no inner QEMU; vm_writer (vm_writer.c) does what its
16550 does to the chardev, one write() per byte, to the tty (set 115200
8N1 raw) or to the agent's socket. One TCG level instead of two: what
each path costs per byte with QEMU's own emulation out of the way (the
relay's CUSE answers, the pty, the socket), closer to a hypervisor's
proportions.

Rounds alternate the paths' order. Prints kB/s per path and round, the
ratios cuse/direct, pty/direct, cuse/pty, and each process's CPU per KiB.
Builds the release agent and relay (build-bench) like bench.py;
$REDIR_AGENT / $REDIR_RELAY override them.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "thinclient"))
from thinclient import ThinClient, acm_gadget, harness, program_files  # noqa: E402
import bench  # noqa: E402  (bench/serial_relay/bench.py: the builds)

RELAY_PORT = 7100
DIRECT_PORT = 7200
QEMU = "/usr/bin/qemu-system-x86_64"
QEMU_DATA = "/usr/share/qemu-rig"
BIOS = f"{QEMU_DATA}/uart-tx.bin"
IDLE_BIOS = f"{QEMU_DATA}/uart-idle.bin"
PORT_PROG = "/usr/bin/vm_port"
WRITER_PROG = "/usr/bin/vm_writer"
PATHS = ("direct", "cuse", "pty")
SILENCE_S = 60   # vm_port gives up after this long without a byte

RELAY_INI = f"""[relay]
listen = 127.0.0.1:{RELAY_PORT}
secret_file = /tmp/relay.secret
log_level = info
[target.com1]
kind = serial
path = /run/com1
tty = cuse
[target.com2]
kind = serial
path = /run/com2
tty = pty
"""


def agent_ini(path):
    """The agent's config for one path: the same port each time."""
    head = "[agent]\nlog_level = info\n[serial.port]\ndevice = /dev/ttyACM0\n"
    if path == "direct":
        return head + f"listen = 127.0.0.1:{DIRECT_PORT}\nmode = raw\n"
    target = "com1" if path == "cuse" else "com2"
    return head + (f"connect = 127.0.0.1:{RELAY_PORT}/{target}\n"
                   "relay_secret_file = /tmp/relay.secret\n")


def chardev(path):
    if path == "direct":
        return f"socket,id=c,host=127.0.0.1,port={DIRECT_PORT}"
    return f"serial,id=c,path=/run/{'com1' if path == 'cuse' else 'com2'}"


def uart_setup(divisor, port2, value2):
    """16-bit real-mode code: the 16550 at 0x3f8 to 115200 / divisor 8N1,
    then value2 out to port2 (FCR to turn the FIFO on, or IER)."""
    return bytes([
        0xBA, 0xFB, 0x03, 0xB0, 0x83, 0xEE,   # LCR = DLAB | 8N1
        0xBA, 0xF8, 0x03, 0xB0, divisor, 0xEE,  # DLL
        0x42, 0xB0, 0x00, 0xEE,               # DLM = 0
        0xBA, 0xFB, 0x03, 0xB0, 0x03, 0xEE,   # LCR = 8N1
        0xBA, port2 & 0xff, port2 >> 8, 0xB0, value2, 0xEE,
    ])


def firmware(code):
    """A 64 KiB firmware image: code at F000:0000, where the reset vector
    (F000:FFF0) jumps. Interrupts stay off from reset, so no IDT or stack
    is needed."""
    image = bytearray(b"\xf4" * 65536)
    image[:len(code)] = code
    image[0xFFF0:0xFFF5] = bytes([0xEA, 0x00, 0x00, 0x00, 0xF0])  # jmp far
    return bytes(image)


def uart_tx_bios(blocks, baud=115200):
    """Firmware that sets the UART to baud 8N1 with its FIFO on and sends
    blocks * 64 KiB of the pattern 0, 1, ..., 255, 0, ..., then halts."""
    assert 1 <= blocks <= 0xffff and 115200 % baud == 0
    divisor = 115200 // baud
    assert divisor < 256
    return firmware(uart_setup(divisor, 0x3FA, 0x07) + bytes([  # FCR
        # offsets from 0x1C, where this part starts
        0xBE, blocks & 0xff, blocks >> 8,     # mov si, blocks
        0x31, 0xDB,                           # xor bx, bx: bl = next byte
        # 0x21 outer: 4096 times 16 bytes
        0xB9, 0x00, 0x10,                     # mov cx, 4096
        # 0x24 inner: wait for THRE (LSR bit 5)
        0xBA, 0xFD, 0x03,                     # mov dx, 0x3fd
        0xEC, 0xA8, 0x20, 0x74, 0xFB,         # in al, dx; test; jz -5
        0xBA, 0xF8, 0x03,                     # mov dx, 0x3f8
        0xB7, 0x10,                           # mov bh, 16
        # 0x31 burst
        0x88, 0xD8, 0xEE,                     # mov al, bl; out dx, al
        0xFE, 0xC3, 0xFE, 0xCF, 0x75, 0xF7,   # inc bl; dec bh; jnz burst
        0xE2, 0xE8,                           # loop inner
        0x4E, 0x75, 0xE2,                     # dec si; jnz outer
        0xF4, 0xEB, 0xFD,                     # hlt; jmp hlt
    ]))


def uart_idle_bios():
    """Firmware for --idle: the UART at 115200 8N1 with the modem-status
    interrupt enabled (IER bit 3), as a guest's driver has it while the
    port is open without CLOCAL or with RTS/CTS, then a halt forever."""
    return firmware(uart_setup(1, 0x3F9, 0x08) +
                    bytes([0xF4, 0xEB, 0xFD]))   # hlt; jmp hlt


def static_program(work, name):
    """bench/serial_relay/NAME.c built static for the VM: its path."""
    out = os.path.join(work, name)
    subprocess.run(["cc", "-O2", "-static", "-Wall", "-Wextra", "-Werror",
                    os.path.join(HERE, name + ".c"), "-o", out], check=True)
    return out


def vm_files(work, blocks, baud):
    qemu = shutil.which(os.environ.get("REDIR_QEMU", "qemu-system-x86_64"))
    assert qemu, "qemu-system-x86_64 not found: scripts/install-deps.sh"
    sink = static_program(work, "vm_port")
    files = program_files({"/usr/sbin/redir-relay": bench.RELAY, QEMU: qemu})
    # Debian's QEMU loads TCG as a module from its compiled-in directory
    tcg = "/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so"
    files[tcg] = (open(tcg, "rb").read(), 0o644)
    files[BIOS] = uart_tx_bios(blocks, baud)
    files[IDLE_BIOS] = uart_idle_bios()
    files[PORT_PROG] = (open(sink, "rb").read(), 0o755)
    files[WRITER_PROG] = (open(static_program(work, "vm_writer"), "rb").read(),
                          0o755)
    return files


def cpu_s(tc, pid):
    return tc.cpu_seconds(pid) if pid else 0.0


def start_agent(tc, relay, path, seq):
    """The agent for one path, its port open and (through the relay)
    attached to the path's target."""
    off = relay.log_offset()
    agent = tc.start_agent(agent_ini(path), name=f"agent-{seq}")
    agent.wait_log(r"\[serial.port\] .*opened")
    if path != "direct":
        relay.wait_log(rf"attached to target 'com{1 if path == 'cuse' else 2}'",
                       start_offset=off)
    return agent


def start_qemu(tc, path, bios, seq, settle_s):
    """The inner QEMU with firmware bios on the path's chardev: its pid."""
    tc.sh(f"bg /tmp/qemu-{seq}.log {QEMU} -machine pc -accel tcg -nodefaults "
          f"-display none -m 16 -L {QEMU_DATA} -bios {bios} -chardev "
          f"{chardev(path)} -device isa-serial,chardev=c >/dev/null\n"
          f"sleep {settle_s}; pidof qemu-system-x86_64 > /tmp/qemu.pid")
    return int(tc.sh("cat /tmp/qemu.pid").split()[0])


def stop(tc, qpid, agent):
    tc.sh(f"kill {qpid}; wait_until 10 eval '! kill -0 {qpid} 2>/dev/null'")
    agent.stop()


def start_writer(tc, path, n, seq):
    """vm_writer on the path's chardev end: its pid (it may be done by the
    time its CPU is read: then its own count, from /proc while it ran, is
    not there, and the writer's CPU shows as 0)."""
    target = str(DIRECT_PORT) if path == "direct" else \
        f"/run/com{1 if path == 'cuse' else 2}"
    out = tc.sh(f"bg /tmp/writer-{seq}.log {WRITER_PROG} {target} {n} "
                f">/dev/null\necho $!")
    return int(out.split()[-1])


def run_path(tc, relay, path, n, seq, writer="qemu"):
    """One transfer down one path; {kB/s, CPU s per process}."""
    agent = start_agent(tc, relay, path, seq)
    ready = f"/tmp/port-{seq}.ready"
    tc.sh(f"rm -f {ready}\nbg /tmp/port-{seq}.out {PORT_PROG} /dev/ttyGS0 "
          f"{n} {ready} {SILENCE_S} >/dev/null\nwait_until 5 test -e {ready}")
    before = {"relay": cpu_s(tc, relay.pid), "agent": cpu_s(tc, agent.pid)}
    if writer == "qemu":
        qpid = start_qemu(tc, path, BIOS, seq, 0.2)
    else:
        qpid = start_writer(tc, path, n, seq)
    t0 = time.monotonic()
    harness.wait_for(lambda: "OK" in tc.sh(f"cat /tmp/port-{seq}.out") or
                     "FAIL" in tc.sh(f"cat /tmp/port-{seq}.out"),
                     SILENCE_S + n / 500 + 60, f"{path}: {n} bytes at ttyGS0",
                     interval=1.0)
    out = tc.sh(f"cat /tmp/port-{seq}.out")
    cost = {"relay": cpu_s(tc, relay.pid) - before["relay"],
            "agent": cpu_s(tc, agent.pid) - before["agent"],
            "qemu": cpu_s(tc, qpid) if writer == "qemu" else 0.0}
    if writer == "qemu":
        stop(tc, qpid, agent)
    else:
        agent.stop()
    m = re.search(r"OK bytes (\d+) span_us (\d+) kB/s ([\d.]+)", out)
    assert m, f"{path}: {out}\n{writer}: " + tc.sh(
        f"cat /tmp/{'qemu' if writer == 'qemu' else 'writer'}-{seq}.log")
    print(f"  {path:6} {float(m.group(3)):8.2f} kB/s ({n} bytes in "
          f"{int(m.group(2)) / 1e6:.1f} s, {time.monotonic() - t0:.0f} s "
          f"with QEMU's start)", flush=True)
    kib = n / 1024
    return {"rate": float(m.group(3)),
            "ms_per_kib": {k: v / kib * 1e3 for k, v in cost.items()}}


RATIOS = (("cuse", "direct"), ("pty", "direct"), ("cuse", "pty"))


def report(results, paths, baud, smp, writer="qemu"):
    ratios = [(a, b) for a, b in RATIOS if a in paths and b in paths]
    if writer == "qemu":
        print(f"\n== guest -> port, one QEMU 16550 at {baud} 8N1 (firmware "
              "sending 16 bytes per THRE), kB/s, inside the thin-client VM "
              f"(TCG, {smp} vCPU; the inner QEMU TCG too)")
    else:
        print("\n== guest -> port, vm_writer doing what QEMU's 16550 does to "
              "the chardev (one write() per byte; tty at 115200 8N1), kB/s, "
              f"inside the thin-client VM (TCG, {smp} vCPU, no inner QEMU; "
              "a 115200 line carries 11.52 kB/s)")
    print(f"  {'round':6} " + " ".join(f"{p:>8}" for p in paths) + " " +
          " ".join(f"{a + '/' + b:>12}" for a, b in ratios))
    for i, r in enumerate(results):
        print(f"  {i + 1:<6} " +
              " ".join(f"{r[p]['rate']:8.2f}" for p in paths) + " " +
              " ".join(f"{r[a]['rate'] / r[b]['rate']:11.2f}x"
                       for a, b in ratios))
    for a, b in ratios:
        x = [r[a]["rate"] / r[b]["rate"] for r in results]
        print(f"  {a}/{b} over {len(results)} rounds: {min(x):.2f}-"
              f"{max(x):.2f}x")
    print("  CPU ms per KiB (mean of the rounds): " + "; ".join(
        f"{p}: " + ", ".join(
            f"{k} {sum(r[p]['ms_per_kib'][k] for r in results) / len(results):.2f}"
            for k in (("qemu",) if writer == "qemu" else ()) +
            ("relay", "agent") if p != "direct" or k != "relay")
        for p in paths))


def io_calls(tc, pid):
    io = dict(line.split(": ") for line in
              tc.sh(f"cat /proc/{pid}/io").splitlines() if ": " in line)
    return int(io["syscr"]) + int(io["syscw"])


def run_idle(tc, relay, path, seconds, seq):
    """A guest with the port open and idle: what the relay and the agent
    do meanwhile. QEMU asks a tty chardev for its modem lines every 10 ms
    while the guest has the modem-status interrupt on (hw/char/serial.c);
    on a CUSE tty each ask is a request the relay answers."""
    agent = start_agent(tc, relay, path, seq)
    qpid = start_qemu(tc, path, IDLE_BIOS, seq, 2)
    pids = {"relay": relay.pid, "agent": agent.pid}
    before = {k: (cpu_s(tc, p), io_calls(tc, p)) for k, p in pids.items()}
    time.sleep(seconds)
    after = {k: (cpu_s(tc, p), io_calls(tc, p)) for k, p in pids.items()}
    stop(tc, qpid, agent)
    row = {k: ((after[k][1] - before[k][1]) / seconds,
               (after[k][0] - before[k][0]) / seconds * 100) for k in pids}
    print(f"  {path:6} relay {row['relay'][0]:6.1f} calls/s "
          f"{row['relay'][1]:5.2f} % CPU; agent {row['agent'][0]:6.1f} "
          f"calls/s {row['agent'][1]:5.2f} % CPU (TCG)", flush=True)


def measure(td, a):
    blocks = max(1, a.kib // 64)
    n = blocks * 65536
    tc = ThinClient(td, agent=bench.AGENT, modules=("cuse",),
                    files=vm_files(td.path, blocks, a.baud),
                    memory=1024, smp=a.smp).start()
    try:
        tc.sh("mkdir -p /dev/pts && mount -t devpts -o ptmxmode=0666 devpts "
              "/dev/pts && ln -sf pts/ptmx /dev/ptmx\n"
              "head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \\n' > "
              "/tmp/relay.secret && chmod 600 /tmp/relay.secret\n"
              f"cat > /tmp/relay.ini <<'EOF'\n{RELAY_INI}EOF")
        acm = tc.add_gadget(acm_gadget())
        tc.wait_drivers(acm, {"1.0": "cdc_acm", "1.1": "cdc_acm"})
        tc.sh("wait_until 10 test -c /dev/ttyACM0")
        relay = tc.start_agent(None, name="relay", argv=[
            "/usr/sbin/redir-relay", "-f", "-c", "/tmp/relay.ini"])
        relay.wait_log(r"target com1: serial tty /dev/redir-relay/com1 \(CUSE")
        tc.sh("wait_until 5 test -e /run/com1 && wait_until 5 test -e /run/com2")
        if a.idle:
            print(f"== a guest idle with its port open (modem-status "
                  f"interrupt on), {a.idle} s each: read+write calls and CPU")
            for seq, path in enumerate(a.paths):
                run_idle(tc, relay, path, a.idle, seq + 1)
            relay.stop()
            return
        results, seq = [], 0
        for r in range(a.rounds):
            print(f"round {r + 1}:", flush=True)
            order = a.paths if r % 2 == 0 else a.paths[::-1]
            res = {}
            for path in order:
                seq += 1
                res[path] = run_path(tc, relay, path, n, seq, a.writer)
            results.append(res)
        relay.stop()
        report(results, a.paths, a.baud, a.smp, a.writer)
        print(f"host load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        tc.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kib", type=int, default=64,
                    help="KiB per path and round (a multiple of 64)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--smp", type=int, default=1,
                    help="the thin-client VM's vCPUs (2: the relay and the "
                    "inner QEMU on different CPUs, as on a hypervisor)")
    ap.add_argument("--baud", type=int, default=115200,
                    help="the speed the guest sets (115200 / N): the relay "
                    "and the agent batch a stream the guest sends faster "
                    "than that")
    ap.add_argument("--idle", type=int, metavar="S",
                    help="instead: each path with a guest idle for S "
                    "seconds, the relay's and the agent's calls and CPU")
    ap.add_argument("--writer", choices=("qemu", "program"), default="qemu",
                    help="who writes the guest's bytes: an inner QEMU's "
                    "16550 (default) or vm_writer (no nested TCG)")
    ap.add_argument("--paths", default=",".join(PATHS),
                    help="which paths, comma-separated (default: all)")
    a = ap.parse_args()
    a.paths = tuple(a.paths.split(","))
    if not a.paths or set(a.paths) - set(PATHS):
        ap.error(f"--paths: some of {','.join(PATHS)}")
    if a.kib < 64 or a.kib % 64 or a.rounds < 1:
        ap.error("--kib: a multiple of 64; --rounds: at least 1")
    if not 450 <= a.baud <= 115200 or 115200 % a.baud:
        ap.error("--baud: 115200 / N for N 1-255 (9600, 19200, 57600...)")
    if not os.environ.get("REDIR_AGENT") or not os.environ.get("REDIR_RELAY"):
        bench.build()
    harness.main(lambda td: measure(td, a), name="bench_serial_vm_tx")


if __name__ == "__main__":
    main()
