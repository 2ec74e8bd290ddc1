#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Backpressure both ways: a device that does not take data stops the
agent reading the socket, a client that does not read stops the agent
reading the device; the agent's memory stays flat and nothing is lost."""
import os
import select
import socket
import threading
import time

import serial_harness as sh
from serial_harness import harness

OFFER = 64 << 20       # far more than every buffer on the way together
BOUND = 24 << 20       # kernel socket buffers (autotuned) + pty + agent


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fill(write, fd_for_select, limit, stall=1.0):
    """Writes until nothing is taken for `stall` seconds; returns bytes."""
    sent, chunk = 0, b"\x5a" * 65536
    last = time.monotonic()
    while sent < limit and time.monotonic() - last < stall:
        select.select([], [fd_for_select], [], 0.05)
        try:
            n = write(chunk)
        except (BlockingIOError, InterruptedError):
            continue
        if n:
            sent += n
            last = time.monotonic()
    return sent


def drain(read, fd_for_select, n, timeout=60):
    got = 0
    deadline = time.monotonic() + timeout
    while got < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"drained {got} of {n}")
        select.select([fd_for_select], [], [], 0.1)
        try:
            data = read(1 << 20)
        except BlockingIOError:
            continue
        assert data.count(b"\x5a") == len(data), "corrupted"
        got += len(data)
    return got


def check_slow_peers(port, pty):
    """A client that reads slowly through a small window, then a device
    that reads slowly: the agent's buffer fills and drains many times, and
    every stall must end when the other side drains."""
    size = 6 << 20
    payload = sh.random_payload(size, 12)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    s.connect(("127.0.0.1", port))
    time.sleep(0.2)
    writer = threading.Thread(target=pty.write_all, args=(payload, 60))
    writer.start()
    got = bytearray()
    s.settimeout(10)
    while len(got) < size:
        got += s.recv(16 * 1024)
        time.sleep(0.002)
    writer.join()
    assert got == payload, "device -> slow client corrupted"

    sender = threading.Thread(target=s.sendall, args=(payload,))
    sender.start()
    got = bytearray()
    deadline = time.monotonic() + 60
    while len(got) < size:
        assert time.monotonic() < deadline, f"stalled at {len(got)}"
        select.select([pty.master], [], [], 1)
        try:
            got += os.read(pty.master, 64 * 1024)
        except BlockingIOError:
            pass
        time.sleep(0.001)
    sender.join()
    assert got == payload, "client -> slow device corrupted"
    s.close()


def test(td):
    pty = sh.Pty(td.file("dev"))
    port = harness.free_port()
    agent = sh.SerialAgent(td).start(
        sh.port_section("bp", pty.link, listen=port))
    agent.wait_log(r"opened")
    s = sh.connect(port)
    agent.wait_log(r"client 127.0.0.1:\d+ connected")
    time.sleep(0.2)
    rss0 = rss_kib(agent.pid)

    # the device takes nothing: the client's sending must stall
    s.setblocking(False)
    sent = fill(s.send, s, OFFER)
    assert sent < BOUND, f"{sent} bytes accepted while the device was stuck"
    grown = rss_kib(agent.pid) - rss0
    assert grown < 8192, f"agent grew by {grown} KiB"
    got = drain(lambda n: os.read(pty.master, n), pty.master, sent)
    assert got == sent

    # the client reads nothing: the device side must stall
    sent = fill(lambda b: os.write(pty.master, b), pty.master, OFFER)
    assert sent < BOUND, f"{sent} bytes taken while the client did not read"
    grown = rss_kib(agent.pid) - rss0
    assert grown < 8192, f"agent grew by {grown} KiB"
    got = drain(s.recv, s, sent)
    assert got == sent
    s.setblocking(True)
    s.shutdown(socket.SHUT_RDWR)
    s.close()
    check_slow_peers(port, pty)
    agent.stop()


harness.main(test)
