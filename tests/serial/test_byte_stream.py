#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A client streams the way QEMU's socket chardev sends a guest's serial
output: one byte per send() with TCP_NODELAY, far faster than the line.
The agent reads such a stream in batches at its port's pace
(common/net/net_pace.c: it rests between reads while the port would
still be sending; a timerfd ends each rest). Checked here, on a raw port
at 115200 and on a telnet port at 9600: every byte reaches the port in
order (0x00 and 0xff included, IAC doubled on the telnet port) across
the rests; a lone byte after the stream still arrives; the session stays
up. Failures answered: bytes lost or reordered at a rest's edge, a rest
that never ends (the stream stalls)."""
import socket

import serial_harness as sh
from serial_harness import harness

SIZE = 16 * 1024


def send_bytewise(s, data):
    for i in range(len(data)):
        s.sendall(data[i:i + 1])


def check(agent, name, pty, port, telnet):
    s = sh.connect(port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    agent.wait_log(rf"\[serial.{name}\] .*: client 127.0.0.1:\d+ connected")
    data = sh.random_payload(SIZE, 9) + bytes(range(256))
    send_bytewise(s, sh.telnet_escape(data) if telnet else data)
    got = pty.read_exact(len(data), timeout=30)
    assert got == data, f"{name}: the stream arrived changed"
    s.sendall(b"\x00")
    assert pty.read_exact(1) == b"\x00", f"{name}: the lone byte"
    assert agent.alive()
    s.shutdown(socket.SHUT_WR)
    agent.wait_log(rf"\[serial.{name}\] .*disconnected \(closed by peer\)")
    s.close()
    print(f"{name}: {len(data)} bytes sent one per send() reached the port "
          "in order, then a lone byte")


def test(td):
    raw_pty = sh.Pty(td.file("raw-dev"))
    tel_pty = sh.Pty(td.file("tel-dev"))
    raw_port, tel_port = harness.free_port(), harness.free_port()
    agent = sh.SerialAgent(td).start(
        sh.port_section("raw", raw_pty.link, listen=raw_port, mode="raw",
                        line="115200 8N1") +
        sh.port_section("tel", tel_pty.link, listen=tel_port, mode="telnet"))
    agent.wait_log(r"\[serial.tel\] .*opened \(9600 8N1\)")
    check(agent, "raw", raw_pty, raw_port, telnet=False)
    check(agent, "tel", tel_pty, tel_port, telnet=True)
    agent.stop()


harness.main(test)
