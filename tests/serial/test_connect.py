#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""connect mode: the agent dials a peer that comes and goes: it closes the
connection (the agent redials), it stops listening (the agent keeps trying
with backoff, one log line), it comes back; with the device gone the agent
hangs up and dials again only once the device is back."""
import socket
import time

import serial_harness as sh
from serial_harness import harness


class Peer:
    """The far end: a listening socket on a fixed port."""

    def __init__(self, port):
        self.port = port
        self.listener = None

    def listen(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(4)

    def accept(self, timeout=10):
        self.listener.settimeout(timeout)
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        return conn

    def stop(self):
        self.listener.close()
        self.listener = None


def exchange(conn, pty, tag):
    conn.sendall(b"to device " + tag)
    assert pty.read_exact(10 + len(tag)) == b"to device " + tag
    pty.write_all(b"to peer " + tag)
    assert sh.recv_exact(conn, 8 + len(tag)) == b"to peer " + tag


def test(td):
    pty = sh.Pty(td.file("dev"))
    peer = Peer(harness.free_port())
    peer.listen()
    agent = sh.SerialAgent(td).start(
        sh.port_section("out", pty.link, connect=peer.port,
                        reconnect_min_ms=100, reconnect_max_ms=400))
    conn = peer.accept()
    agent.wait_log(r"\[serial.out\] .*client 127.0.0.1:\d+ connected")
    exchange(conn, pty, b"1")

    # the peer hangs up: the agent dials again
    off = agent.log_offset()
    conn.close()
    agent.wait_log(r"disconnected \(closed by peer\)", start_offset=off)
    conn = peer.accept(timeout=5)
    exchange(conn, pty, b"2")

    # the peer goes away altogether, then comes back
    off = agent.log_offset()
    conn.close()
    peer.stop()
    agent.wait_log(r"cannot connect: connection refused; retrying",
                   start_offset=off)
    time.sleep(1.5)                           # several attempts
    assert agent.log_text(off).count("cannot connect: connection refused; "
                                     "retrying") == 1, \
        "one line when the peer goes away, not one per attempt"
    peer.listen()
    conn = peer.accept(timeout=5)
    exchange(conn, pty, b"3")

    # the device vanishes: the peer is told, and called again later
    off = agent.log_offset()
    pty.unplug()
    assert sh.wait_closed(conn) == b""
    agent.wait_log(r"disconnected \(device vanished\)", start_offset=off)
    peer.listener.settimeout(1.5)
    try:
        peer.listener.accept()
        raise AssertionError("the agent dialed while its device was missing")
    except socket.timeout:
        pass
    pty.plug()
    conn = peer.accept(timeout=5)
    exchange(conn, pty, b"4")
    conn.close()
    agent.stop()


harness.main(test)
