#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Stress: 1 MiB each way at once, REPS times, alternating a raw and a
telnet port, while two busy processes compete for the CPU. Each side's
reader pauses at random (so the agent's buffers fill and it must stop and
resume reading the tty and the socket) and every read and write has a
random size. Every transfer must complete intact: a lost wake-up in the
pause/resume paths shows as a timeout naming how far each side got."""
import os
import random
import select
import subprocess
import sys
import time

import serial_harness as sh
from serial_harness import harness

SIZE = 1 << 20
REPS = 20
TRANSFER_TIMEOUT_S = 30  # one transfer takes well under 2 s on a busy CI box
PAUSE_CHANCE = 0.02      # per loop turn, per reading side
PAUSE_MAX_S = 0.03
CHUNK_MAX = 65536


def pump_with_pauses(sock, pty, to_device, to_net, rnd, telnet=None):
    """sh.pump() with random read/write sizes and reader pauses."""
    wire = sh.telnet_escape(to_device) if telnet else to_device
    sent_wire = sent_tty = 0
    got_tty, got_net = bytearray(), bytearray()
    hold_net = hold_tty = 0.0
    deadline = time.monotonic() + TRANSFER_TIMEOUT_S
    sock.setblocking(False)
    try:
        while len(got_tty) < len(to_device) or len(got_net) < len(to_net):
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(
                    f"stalled: device got {len(got_tty)}/{len(to_device)} "
                    f"(test wrote {sent_wire}/{len(wire)} to the socket), "
                    f"socket got {len(got_net)}/{len(to_net)} (test wrote "
                    f"{sent_tty}/{len(to_net)} to the pty)")
            if rnd.random() < PAUSE_CHANCE:
                hold_net = now + rnd.random() * PAUSE_MAX_S
            if rnd.random() < PAUSE_CHANCE:
                hold_tty = now + rnd.random() * PAUSE_MAX_S
            rlist = ([sock] if now >= hold_net else []) + \
                ([pty.master] if now >= hold_tty else [])
            wlist = ([sock] if sent_wire < len(wire) else []) + \
                ([pty.master] if sent_tty < len(to_net) else [])
            r, w, _ = select.select(rlist, wlist, [], 0.01)
            if sock in w:
                end = sent_wire + rnd.randint(1, CHUNK_MAX)
                try:
                    sent_wire += sock.send(wire[sent_wire:end])
                except BlockingIOError:
                    pass
            if pty.master in w:
                end = sent_tty + rnd.randint(1, CHUNK_MAX)
                try:
                    sent_tty += os.write(pty.master, to_net[sent_tty:end])
                except BlockingIOError:
                    pass
            if sock in r:
                try:
                    chunk = sock.recv(rnd.randint(1, CHUNK_MAX))
                except BlockingIOError:
                    chunk = None
                if chunk == b"":
                    raise EOFError("the agent closed the connection")
                if chunk:
                    got_net += telnet.feed(chunk) if telnet else chunk
            if pty.master in r:
                try:
                    got_tty += os.read(pty.master, rnd.randint(1, CHUNK_MAX))
                except BlockingIOError:
                    pass
    finally:
        sock.setblocking(True)
    return bytes(got_tty), bytes(got_net)


def settle_telnet(sock, t):
    """Reads the agent's opening negotiation (answered by t) until it has
    been quiet briefly: data must not be pumped before BINARY is agreed."""
    sock.settimeout(0.3)
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                raise EOFError("closed during the negotiation")
            assert t.feed(chunk) == b"", "data before any was sent"
    except TimeoutError:
        pass
    sock.settimeout(None)
    assert (sh.WILL, 0) in t.verbs and (sh.DO, 0) in t.verbs, t.verbs


def one_transfer(agent, rep, pty, port, telnet, rnd):
    off = len(agent.log_text(0))
    s = sh.connect(port)
    agent.wait_log(r"client \S+ connected", start_offset=off)
    t = sh.TelnetDecoder(s) if telnet else None
    if t:
        settle_telnet(s, t)
    to_dev = sh.random_payload(SIZE, 2 * rep)
    to_net = sh.random_payload(SIZE, 2 * rep + 1)
    started = time.monotonic()
    got_dev, got_net = pump_with_pauses(s, pty, to_dev, to_net, rnd, t)
    took = time.monotonic() - started
    assert got_dev == to_dev, f"rep {rep}: device side corrupted"
    assert got_net == to_net, f"rep {rep}: network side corrupted"
    s.close()
    agent.wait_log(r"disconnected \(closed by peer\)", start_offset=off)
    return took


def test(td):
    seed = int(os.environ.get("REDIR_STRESS_SEED", time.time_ns() % 100000))
    print(f"seed {seed} (REDIR_STRESS_SEED reruns it)")
    rnd = random.Random(seed)
    ptys = {m: sh.Pty(td.file(f"{m}-dev")) for m in ("raw", "telnet")}
    ports = {m: harness.free_port() for m in ptys}
    agent = sh.SerialAgent(td).start(
        "".join(sh.port_section(m, ptys[m].link, listen=ports[m], mode=m)
                for m in ptys))
    agent.wait_log(r"\[serial.telnet\] .*opened")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(2)]
    try:
        times = []
        for rep in range(REPS):
            mode = ("raw", "telnet")[rep % 2]
            times.append(one_transfer(agent, rep, ptys[mode], ports[mode],
                                      mode == "telnet", rnd))
        print(f"{REPS} transfers of 1 MiB each way under load: "
              f"{min(times):.2f}-{max(times):.2f} s each")
    finally:
        for b in burners:
            b.kill()
            b.wait()
    agent.stop()


harness.main(test)
