#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The guest streams the way QEMU's 16550 writes its tty: one byte per
write(), far faster than the line. The relay reads such a stream in
batches (relay/serial_tty_pty.c: it rests between reads while the port
would still be sending; a timerfd ends each rest). Checked here: every
byte arrives in order (0x00 and 0xff included) across the rests; a line
change the guest makes in the middle of the stream reaches the port
while the relay is resting between reads; a lone byte after the stream
still arrives; the session stays up. Failures answered: bytes lost or
reordered at a rest's edge, a rest that never ends (the stream stalls),
the guest's new speed ignored until the stream stops."""
import termios

import relay_guest as rg
import serial_harness as sh
from serial_harness import harness

HALF = 8 * 1024


def write_bytewise(fd, data):
    for i in range(len(data)):
        rg.write_all(fd, data[i:i + 1])


def test(td):
    relay, guest, phys, agent, section = rg.attached_session(td)
    rg.guest_set(guest, termios.B115200, termios.CS8)
    rg.wait_port(phys, 115200, False)

    data = sh.random_payload(2 * HALF, 5) + bytes(range(256))
    write_bytewise(guest, data[:HALF])
    rg.guest_set(guest, termios.B9600, termios.CS8 | termios.CSTOPB)
    write_bytewise(guest, data[HALF:])
    rg.wait_port(phys, 9600, True)
    got = phys.read_exact(len(data), timeout=30)
    assert got == data, "the stream arrived changed"
    print(f"{len(data)} bytes written one per write() reached the port in "
          "order; the port followed 115200 8N1 -> 9600 8N2 mid-stream")

    rg.write_all(guest, b"\x00")
    rg.expect_only(phys.master, b"\x00", "a lone byte after the stream")
    assert relay.alive() and agent.alive()
    assert "left target" not in relay.log_text(0), "the session ended"
    agent.stop()
    relay.stop()


harness.main(test)
