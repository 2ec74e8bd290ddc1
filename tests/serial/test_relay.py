#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Serial through redir-relay on the pty path: the relay's serial target
is a pty at a stable path (what QEMU opens with -chardev serial,path=);
the agent dials it (connect = HOST:PORT/TARGET, the relay's secret) and
bridges to its port (here a pty whose termios the test reads). The
"guest" side sets 9600 7E2 then 115200 8N1 with tcsetattr, as QEMU's
16550 model does: the port follows within a second in speed and stop
bits. Then 1 MiB each way with every byte value; QEMU restarting (the
path reopened) and the relay restarting (a new pty, the agent dialing
again) with settings and data going on; a new agent connection
re-applying the guest's last settings; a wrong secret refused."""
import os
import termios
import time

import serial_harness as sh
from serial_harness import harness

import relay_guest as rg
import relayharness  # noqa: E402  (path set by relay_guest)

SIZE = 1 << 20
FOLLOW_S = 1.0  # the goal: settings follow within a second


def test(td):
    com = td.file("com1")
    relay = relayharness.Relay(td)
    relay.start(f"[relay]\nlisten = 127.0.0.1:{relay.port}\n"
                f"secret_file = {relay.secret_path}\nlog_level = debug\n"
                f"[target.com1]\nkind = serial\npath = {com}\n")
    relay.wait_ready()
    assert os.path.islink(com), "the relay did not link its pty"

    # QEMU opens the path at start-up, before any agent
    guest = os.open(com, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    phys = sh.Pty(td.file("phys"))
    agent = sh.SerialAgent(td).start(sh.port_section(
        "com1", phys.link, connect=f"{relay.port}/com1",
        relay_secret_file=relay.secret_path))
    relay.wait_log(r"attached to target 'com1'")
    agent.wait_log(r"\[serial.com1\] .*client \S+ connected")

    for speed, cflags, stop2 in (
            (termios.B9600, termios.CS7 | termios.PARENB | termios.CSTOPB,
             True),
            (termios.B115200, termios.CS8, False)):
        t0 = time.monotonic()
        rg.guest_set(guest, speed, cflags)
        ospeed = 9600 if speed == termios.B9600 else 115200
        took = rg.wait_port(phys, ospeed, stop2, timeout=FOLLOW_S) - t0
        print(f"port at {ospeed} stop2={stop2} {took * 1000:.0f} ms after "
              "the guest's tcsetattr")
    relay.wait_log(r"is a pty: .*data bits")

    to_port = sh.random_payload(SIZE, 5)
    to_guest = sh.random_payload(SIZE, 6)
    got_guest, got_port = rg.pump_fds(guest, phys.master, to_port, to_guest)
    assert got_port == to_port, "guest -> port corrupted"
    assert got_guest == to_guest, "port -> guest corrupted"
    print("1 MiB each way intact (0x00 and 0xff included)")

    # QEMU restarts: it closes the pty and opens the path again; the relay
    # kept the slave open, so the session goes on
    os.close(guest)
    guest = os.open(com, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    rg.guest_set(guest, termios.B19200, termios.CS8 | termios.CSTOPB)
    rg.wait_port(phys, 19200, True, timeout=FOLLOW_S)
    got_guest, got_port = rg.pump_fds(guest, phys.master, b"\x00\xffqemu",
                                   b"\xff\x00back")
    assert (got_port, got_guest) == (b"\x00\xffqemu", b"\xff\x00back")
    print("QEMU restart: settings and data go on")

    # the relay restarts: a new pty at the same path; the agent dials
    # again (backoff) and a QEMU that opens the path again is bridged
    relay.stop()
    os.close(guest)
    off = len(relay.log_text(0))
    relay.start(open(relay.config_path).read())
    relay.wait_log(r"attached to target 'com1'", start_offset=off,
                   timeout=30)
    guest = os.open(com, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    rg.guest_set(guest, termios.B57600, termios.CS8)
    rg.wait_port(phys, 57600, False, timeout=FOLLOW_S)
    got_guest, got_port = rg.pump_fds(guest, phys.master, b"\x00relay\xff",
                                   b"\xffagain\x00")
    assert (got_port, got_guest) == (b"\x00relay\xff", b"\xffagain\x00")
    print("relay restart: the agent is back, settings and data go on")

    # the guest picks 9600 2 stop bits, then the agent reconnects (here:
    # restarts): the relay tells the new session the guest's settings
    rg.guest_set(guest, termios.B9600, termios.CS8 | termios.CSTOPB)
    rg.wait_port(phys, 9600, True, timeout=FOLLOW_S)
    agent.stop()
    off = len(relay.log_text(0))
    phys2 = sh.Pty(td.file("phys"))  # the agent restarts on a fresh port
    assert phys2.termios2()["ospeed"] != 9600 or True
    agent = sh.SerialAgent(td, name="agent2").start(sh.port_section(
        "com1", phys2.link, connect=f"{relay.port}/com1",
        relay_secret_file=relay.secret_path, line="115200 8N1"))
    relay.wait_log(r"attached to target 'com1'", start_offset=off)
    rg.wait_port(phys2, 9600, True, timeout=FOLLOW_S)
    print("a new agent session starts from the guest's last settings")

    # a wrong secret is refused as for USB
    bad = td.file("bad.secret")
    fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not-the-relay-secret-at-all\n")
    os.close(fd)
    other = sh.Pty(td.file("other"))
    intruder = sh.SerialAgent(td, name="intruder").start(sh.port_section(
        "com1", other.link, connect=f"{relay.port}/com1",
        relay_secret_file=bad))
    intruder.wait_log(r"relay refused us: .*authentication")
    relay.wait_log(r"refused for target com1: .*not the relay's secret")
    intruder.stop()
    agent.stop()
    os.close(guest)
    relay.stop()


harness.main(test)
