#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Data integrity: 1 MiB of random bytes (every value, plenty of 0xff and
NUL) each way at once, through a raw port and a telnet port; the telnet
port offers BINARY and escapes IAC both ways."""
import serial_harness as sh
from serial_harness import harness

SIZE = 1 << 20


def test(td):
    raw_pty = sh.Pty(td.file("raw-dev"))
    tel_pty = sh.Pty(td.file("tel-dev"))
    raw_port, tel_port = harness.free_port(), harness.free_port()
    agent = sh.SerialAgent(td).start(
        sh.port_section("raw", raw_pty.link, listen=raw_port, mode="raw") +
        sh.port_section("tel", tel_pty.link, listen=tel_port, mode="telnet"))
    agent.wait_log(r"\[serial.tel\] .*opened \(9600 8N1\)")

    # raw: every byte as it is, both ways at once
    to_dev, to_net = sh.random_payload(SIZE, 1), sh.random_payload(SIZE, 2)
    s = sh.connect(raw_port)
    agent.wait_log(r"\[serial.raw\] .*: client 127.0.0.1:\d+ connected")
    got_dev, got_net = sh.pump(s, raw_pty, to_dev, to_net)
    assert got_dev == to_dev, "raw: device side corrupted"
    assert got_net == to_net, "raw: network side corrupted"
    s.close()
    agent.wait_log(r"\[serial.raw\] .*disconnected \(closed by peer\).*"
                   rf"{SIZE} bytes from it, {SIZE} to it")

    # telnet: the agent opens with WILL/DO BINARY and SGA
    s = sh.connect(tel_port)
    t = sh.TelnetDecoder(s)
    s.settimeout(5)
    first = s.recv(64)
    assert t.feed(first) == b"", first
    assert (sh.WILL, 0) in t.verbs and (sh.DO, 0) in t.verbs, t.verbs
    to_dev, to_net = sh.random_payload(SIZE, 3), sh.random_payload(SIZE, 4)
    got_dev, got_net = sh.pump(s, tel_pty, to_dev, to_net, telnet=t)
    assert got_dev == to_dev, "telnet: device side corrupted"
    assert got_net == to_net, "telnet: network side corrupted"
    # telnet commands inside the data stream never reach the device
    s.sendall(b"A\xff\xf1B\xff\xfb\x05C\xff\xfa\x18\x01\xff\xf0D")
    assert tel_pty.read_exact(4) == b"ABCD"
    s.close()
    agent.stop()


harness.main(test)
