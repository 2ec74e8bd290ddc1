#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The agent stops (the thin client shuts down) while its peer is slow to
read: the connection is full and the agent still holds bytes it read from
the port. Everything the agent took from the port reaches the peer when
the peer reads again within the agent's linger time; only what the agent
never read stays in the port. Failure guarded against: a port's last
bytes (a scale's final reading, a PLC's reply) lost at a shutdown over a
slow link, if the stop closed the sockets at once instead of waiting for
the graceful close of each session (its writes, then its shutdown). The
peer is a plain TCP server with a small receive window and the port is
raw, so the test is about the agent alone."""
import os
import signal
import socket
import time

import relay_guest as rg
import serial_harness as sh
from serial_harness import harness

SIZE = 16 << 20  # more than the sockets and the agent can hold
RESUME_S = 0.05  # the peer reads again this long after SIGTERM (the linger: 0.5)
RCVBUF = 4096  # the peer's window: the agent's own queue is what fills


def read_until_quiet(fd, quiet_s=1.0, timeout=30):
    got = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = rg.read_for(fd, quiet_s)
        if not chunk:
            break
        got += chunk
    return bytes(got)


def fill(phys, payload, quiet_s=0.5):
    """Write until the pty takes nothing for quiet_s: the agent stopped
    reading it because its connection is full. Returns the bytes written."""
    off, last = 0, time.monotonic()
    while off < len(payload) and time.monotonic() - last < quiet_s:
        try:
            n = os.write(phys.master, payload[off:off + 65536])
        except BlockingIOError:
            time.sleep(0.01)
            continue
        off += n
        last = time.monotonic()
    assert off < len(payload), "the agent never stopped reading the port"
    return off


def left_in(phys):
    """Bytes the agent never read (it has exited): read from the slave
    until it stays empty. FIONREAD would not do: it sees the line
    discipline's 4 KiB, not the pty's flip buffer behind it."""
    os.set_blocking(phys.slave, False)
    return len(read_until_quiet(phys.slave, quiet_s=0.5))


def test(td):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)  # inherited
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    phys = sh.Pty(td.file("phys"))
    agent = sh.SerialAgent(td).start(sh.port_section(
        "com1", phys.link, connect=srv.getsockname()[1], mode="raw"))
    srv.settimeout(10)
    peer, _ = srv.accept()
    agent.wait_log(r"client \S+ connected")

    payload = sh.random_payload(SIZE, 11)
    written = fill(phys, payload)  # the peer reads nothing yet
    os.kill(agent.proc.pid, signal.SIGTERM)
    time.sleep(RESUME_S)
    peer.setblocking(False)
    got = read_until_quiet(peer.fileno())
    assert agent.proc.wait(timeout=10) == 0
    taken = written - left_in(phys)
    assert len(got) == taken and got == payload[:taken], (
        f"the peer got {len(got)} bytes, the agent took {taken} "
        f"(of {written} written to the port)")
    print(f"all {taken} bytes the agent took reached its peer; {written - taken}"
          f" more waited in the port and the peer resumed reading "
          f"{RESUME_S * 1000:.0f} ms after SIGTERM")
    peer.close()
    srv.close()


harness.main(test)
