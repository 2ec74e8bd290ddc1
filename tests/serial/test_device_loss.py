#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The device comes and goes: missing at start-up (not fatal, a client is
turned away), appearing later, removed under a connected client (closed:
the last bytes first; or kept: what it sends waits), returning with stale
input flushed and the client's line settings re-applied; the listener
stays throughout."""
import time

import serial_harness as sh
from serial_harness import harness


def check_close_policy(agent, link, port):
    # missing at start-up: logged, retried, clients turned away
    agent.wait_log(r"\[serial.close\] .*close-dev is missing; waiting")
    s = sh.connect(port)
    assert sh.wait_closed(s) == b""
    agent.wait_log(r"\[serial.close\] .*refused: .*close-dev is missing")

    pty = sh.Pty(link)
    agent.wait_log(r"\[serial.close\] .*close-dev opened \(9600 8N1\)")
    s = sh.connect(port)
    agent.wait_log(r"\[serial.close\] .*client 127.0.0.1:\d+ connected")
    s.sendall(b"ping")
    assert pty.read_exact(4) == b"ping"
    pty.write_all(b"last words")
    assert sh.recv_exact(s, 10) == b"last words"

    # unplugged under the client: it is told by the connection closing
    off = agent.log_offset()
    pty.unplug()
    assert sh.wait_closed(s) == b""
    agent.wait_log(r"\[serial.close\] .*close-dev vanished", start_offset=off)
    agent.wait_log(r"\[serial.close\] .*disconnected \(device vanished\)",
                   start_offset=off)
    s = sh.connect(port)                  # the listener stayed
    assert sh.wait_closed(s) == b""

    # back, with input that arrived before anyone listened: flushed
    off = agent.log_offset()
    pty.plug()
    pty.write_all(b"STALE")
    agent.wait_log(r"\[serial.close\] .*close-dev opened", start_offset=off)
    s = sh.connect(port)
    agent.wait_log(r"\[serial.close\] .*connected", start_offset=off)
    time.sleep(0.2)
    pty.write_all(b"FRESH")
    assert sh.recv_exact(s, 5) == b"FRESH"
    s.sendall(b"again")
    assert pty.read_exact(5) == b"again"
    s.close()
    pty.close()


def check_keep_policy(agent, link, port):
    pty = sh.Pty(link)
    agent.wait_log(r"\[serial.keep\] .*keep-dev opened \(9600 8N1\)")
    c = sh.ComPortClient(port)
    assert c.request(1, b"\x00\x01\xc2\x00") == b"\x00\x01\xc2\x00"  # 115200
    assert c.request(3, b"\x03") == b"\x03"                          # even
    assert pty.termios2()["ospeed"] == 115200

    off = agent.log_offset()
    ioctls = len(agent.ioctls())
    pty.unplug()
    agent.wait_log(r"\[serial.keep\] .*keep-dev vanished", start_offset=off)
    agent.wait_log(r"\[serial.keep\] .*client 127.0.0.1:\d+ kept while",
                   start_offset=off)
    # the session goes on: requests are answered, data waits
    assert c.request(1, b"\x00\x00\x00\x00") == b"\x00\x01\xc2\x00"
    c.sock.sendall(b"queued while away")
    time.sleep(0.3)

    pty.plug()
    agent.wait_log(r"\[serial.keep\] .*keep-dev opened \(115200 8E1\)",
                   start_offset=off)
    assert pty.termios2()["ospeed"] == 115200
    # a pty forces no parity: see what the agent asked for instead
    agent.wait_cflag(ioctls, sh.PARENB, sh.PARENB | sh.PARODD, ospeed=115200)
    assert pty.read_exact(17) == b"queued while away"
    pty.write_all(b"\xffback\x00")
    c.sock.settimeout(5)
    while len(c.data) < 6:
        c.data += c.telnet.feed(c.sock.recv(100))
    assert bytes(c.data) == b"\xffback\x00", c.data
    assert "disconnected" not in agent.log_text(off)
    c.sock.close()
    pty.close()


def test(td):
    close_port, keep_port = harness.free_port(), harness.free_port()
    agent = sh.SerialAgent(td, record_ioctls=True).start(
        sh.port_section("close", td.file("close-dev"), listen=close_port) +
        sh.port_section("keep", td.file("keep-dev"), listen=keep_port,
                        mode="rfc2217", on_device_loss="keep"))
    check_close_policy(agent, td.file("close-dev"), close_port)
    check_keep_policy(agent, td.file("keep-dev"), keep_port)
    agent.stop()


harness.main(test)
