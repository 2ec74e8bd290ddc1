#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A relay session ends (the thin client shuts down, its network goes)
while the guest has not read everything its port sent: the bytes the
relay already holds for the guest still reach it, in order, and a new
session's bytes follow them. The guest here reads nothing until the
session is over, so most of the 64 KiB wait in the relay, not in the
pty. Failure answered: the port's last bytes before a disconnect (a
scale's final reading, a PLC's reply) silently lost; the relay cleared
its buffer for the guest when the session ended."""
import relay_guest as rg
import serial_harness as sh
from serial_harness import harness

SIZE = 64 * 1024  # more than the pty holds, what the relay always takes


def test(td):
    relay, guest, phys, agent, section = rg.attached_session(td)

    last = sh.random_payload(SIZE, 7)
    phys.write_all(last)
    rg.wait_taken(phys)  # the agent has all of it; its close sends the rest
    off = len(relay.log_text(0))
    agent.stop()
    relay.wait_log(r"target com1: session ended", start_offset=off)
    assert rg.read_exact(guest, SIZE) == last, "the last bytes were lost"
    print(f"{SIZE} bytes sent before the session ended reached the guest")

    # a new session's bytes come after them, nothing in between
    agent = sh.SerialAgent(td, name="agent2").start(section)
    relay.wait_log(r"attached to target 'com1'", start_offset=off)
    agent.wait_log(r"client \S+ connected")
    phys.write_all(b"\x00next\xff")
    rg.expect_only(guest, b"\x00next\xff", "the next session")
    agent.stop()
    relay.stop()


harness.main(test)
