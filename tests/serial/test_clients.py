#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Clients: one at a time; a new one replaces a stale one (default) or is
turned away (replace_client = no); a client dropping mid-stream leaves the
port working for the next; idle clients are closed (idle_timeout); a
client that half-closes gets everything it sent delivered first."""
import socket
import struct
import time

import serial_harness as sh
from serial_harness import harness


def check_mid_stream_drop(agent, pty, port):
    s = sh.connect(port)
    agent.wait_log(r"\[serial.a\] .*client 127.0.0.1:\d+ connected")
    pty.write_all(b"x" * 3000)               # unread by the client
    s.sendall(sh.random_payload(150000, 5))  # more than the device takes
    time.sleep(0.3)
    # abort (RST) while the agent, backpressured, reads nothing from it and
    # has nothing to write to it: it must notice all the same
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    agent.wait_log(r"\[serial.a\] .*disconnected \(connection reset by "
                   r"peer\)", timeout=5)
    pty.read_for(0.5)                        # whatever made it through
    s = sh.connect(port)
    time.sleep(0.1)
    to_dev, to_net = sh.random_payload(100000, 6), sh.random_payload(100000, 7)
    got_dev, got_net = sh.pump(s, pty, to_dev, to_net)
    assert got_dev == to_dev and got_net == to_net
    s.close()


def check_replace(agent, pty, port):
    a = sh.connect(port)
    off = agent.log_offset()
    b = sh.connect(port)
    agent.wait_log(r"\[serial.a\] .*client (\S+) disconnected \(replaced by "
                   r"127.0.0.1:\d+\)", start_offset=off)
    assert sh.wait_closed(a) == b""
    b.sendall(b"from b")
    assert pty.read_exact(6) == b"from b"
    pty.write_all(b"to b")
    assert sh.recv_exact(b, 4) == b"to b"
    b.close()


def check_no_replace(agent, pty, port):
    a = sh.connect(port)
    agent.wait_log(r"\[serial.b\] .*client 127.0.0.1:\d+ connected")
    b = sh.connect(port)
    assert sh.wait_closed(b) == b""
    agent.wait_log(r"\[serial.b\] .*client 127.0.0.1:\d+ refused: "
                   r"127.0.0.1:\d+ is connected \(replace_client = no\)")
    a.sendall(b"still a")
    assert pty.read_exact(7) == b"still a"
    a.close()


def check_idle(agent, pty, port):
    busy = sh.connect(port)
    for _ in range(8):                       # 2 s of traffic: not idle
        busy.sendall(b".")
        time.sleep(0.25)
    assert pty.read_exact(8) == b"." * 8
    busy.close()          # with the agent's offers unread: a reset
    agent.wait_log(r"\[serial.c\] .*disconnected \((closed|connection "
                   r"reset) by peer\)")
    quiet = sh.connect(port)
    t0 = time.monotonic()
    offers = sh.wait_closed(quiet, timeout=10)
    assert offers.startswith(b"\xff\xfb\x00"), offers  # IAC WILL BINARY
    assert 0.8 < time.monotonic() - t0 < 5
    agent.wait_log(r"\[serial.c\] .*disconnected \(idle for 1 s\)")


def check_half_close(agent, pty, port):
    # the device is not read for a while: the agent holds what it got
    s = sh.connect(port)
    job = sh.random_payload(300000, 8)
    s.sendall(job)
    s.shutdown(socket.SHUT_WR)
    time.sleep(0.3)
    assert pty.read_exact(len(job), timeout=20) == job
    assert sh.wait_closed(s) == b""


def test(td):
    ptys = {n: sh.Pty(td.file(f"dev-{n}")) for n in "abc"}
    ports = {n: harness.free_port() for n in "abc"}
    agent = sh.SerialAgent(td).start(
        sh.port_section("a", ptys["a"].link, listen=ports["a"],
                        replace_client="yes") +
        sh.port_section("b", ptys["b"].link, listen=ports["b"],
                        replace_client="no") +
        sh.port_section("c", ptys["c"].link, listen=ports["c"],
                        idle_timeout=1, mode="telnet"))
    agent.wait_log(r"\[serial.c\] .*opened")
    check_mid_stream_drop(agent, ptys["a"], ports["a"])
    check_replace(agent, ptys["a"], ports["a"])
    check_half_close(agent, ptys["a"], ports["a"])
    check_no_replace(agent, ptys["b"], ports["b"])
    check_idle(agent, ptys["c"], ports["c"])
    agent.stop()


harness.main(test)
