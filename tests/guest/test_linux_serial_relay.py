#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A Linux guest's COM2 through redir-relay to the thin client's port (pty
path): QEMU's isa-serial on -chardev serial,path= the relay's serial
target; the guest runs `stty 9600 cs7 parenb -parodd cstopb`, then
`115200 cs8 -parenb -cstopb` on ttyS1, and the agent's port (a pty whose
termios the test reads) follows within a second in speed and stop bits.
Then bytes with 0x00 and 0xff both ways between the guest's ttyS1 and the
port."""
import os
import select
import sys
import time

import linuxguest
from linuxguest import harness

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "serial"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "relay"))
import relayharness  # noqa: E402
import serial_harness as sh  # noqa: E402

FOLLOW_S = 1.0
TO_PORT = b"\x00\xffguest\xff\x00"
TO_GUEST = b"\x00\xffok\xff\x00"

SCRIPT = r"""
[ -e /dev/ttyS1 ] || fail "no /dev/ttyS1"
stty -F /dev/ttyS1 9600 cs7 parenb -parodd cstopb raw -echo \
    || fail "stty 9600 7E2"
result set1 "$(stty -F /dev/ttyS1 speed)"
sleep 3
stty -F /dev/ttyS1 115200 cs8 -parenb -cstopb raw -echo \
    || fail "stty 115200 8N1"
result set2 "$(stty -F /dev/ttyS1 speed)"
sleep 2
( dd if=/dev/ttyS1 bs=1 count=%d 2>/dev/null > /tmp/rx ) &
sleep 1
printf '\000\377guest\377\000' > /dev/ttyS1
for i in 1 2 3 4 5 6 7 8 9 10; do
    [ "$(wc -c < /tmp/rx)" -ge %d ] && break
    sleep 1
done
result rx "$(od -An -tx1 /tmp/rx | tr -d ' \n')"
""" % (len(TO_GUEST), len(TO_GUEST))


def wait_port(phys, ospeed, stop2, since):
    while True:
        t = phys.termios2()
        if t["ospeed"] == ospeed and bool(t["cflag"] & sh.CSTOPB) == stop2:
            return time.monotonic() - since
        if time.monotonic() - since > FOLLOW_S:
            raise AssertionError(f"port not at {ospeed} stop2={stop2} "
                                 f"{FOLLOW_S} s after the guest's stty: {t}")
        time.sleep(0.01)


def read_port(phys, n, timeout=20):
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        if select.select([phys.master], [], [], 0.2)[0]:
            got += os.read(phys.master, 4096)
    return bytes(got)


def test(td):
    com = td.file("com2")
    relay = relayharness.Relay(td)
    relay.start(f"[relay]\nlisten = 127.0.0.1:{relay.port}\n"
                f"secret_file = {relay.secret_path}\nlog_level = debug\n"
                f"[target.com2]\nkind = serial\npath = {com}\n")
    relay.wait_ready()
    phys = sh.Pty(td.file("phys"))
    agent = sh.SerialAgent(td).start(sh.port_section(
        "com2", phys.link, connect=f"{relay.port}/com2",
        relay_secret_file=relay.secret_path))
    relay.wait_log(r"attached to target 'com2'")

    guest = linuxguest.LinuxGuest(
        td, SCRIPT, cmdline=["8250.nr_uarts=2"],
        extra_args=["-chardev", f"serial,id=com2,path={com}",
                                "-device", "isa-serial,chardev=com2"])
    guest.start()
    guest.wait_serial(r"RESULT: set1=", timeout=240)
    took1 = wait_port(phys, 9600, True, time.monotonic())
    guest.wait_serial(r"RESULT: set2=", timeout=60)
    took2 = wait_port(phys, 115200, False, time.monotonic())
    got = read_port(phys, len(TO_PORT))
    assert got == TO_PORT, f"guest -> port: {got!r}"
    time.sleep(0.5)
    os.write(phys.master, TO_GUEST)
    res = guest.wait_done(timeout=60)
    res.require_ok()
    assert res["rx"] == TO_GUEST.hex(), f"port -> guest: {res['rx']}"
    relay.wait_log(r"the guest set 9600 .*N2")
    print(f"guest stty 9600 7E2: port followed (<= {took1 * 1000:.0f} ms "
          f"after the console showed it); 115200 8N1: <= "
          f"{took2 * 1000:.0f} ms; 0x00/0xff intact both ways")
    agent.stop()
    relay.stop()


harness.main(test)
