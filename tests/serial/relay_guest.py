# SPDX-License-Identifier: MIT
"""The guest's side of a relay serial target, for the tests that go
through redir-relay: the target's path opened as QEMU's -chardev
serial,path= opens it, its settings set as QEMU's 16550 model does, and
byte-exact exchanges between it and the port's pty.

    import relay_guest as rg
    guest = rg.open_guest(path)
    rg.guest_set(guest, termios.B9600, termios.CS8 | termios.CSTOPB)
    rg.wait_port(phys, 9600, True)                 # phys: serial_harness.Pty
    got_guest, got_port = rg.pump_fds(guest, phys.master, to_port, to_guest)
"""
import fcntl
import os
import select
import struct
import sys
import termios
import time
import tty

import serial_harness as sh

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
for _p in (os.path.join(TESTS, "relay"), os.path.join(TESTS, "tls")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# Settings follow within milliseconds (serial_e2e_relay measures it); this
# is only how long a loaded ASan run may take before it counts as lost.
FOLLOW_S = 10.0


def open_guest(path):
    """What QEMU does at start-up: the path, read-write, no controlling tty."""
    return os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)


def guest_set(fd, speed, cflags):
    """What QEMU does for the guest's UART: one tcsetattr."""
    iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.PARODD |
               termios.CSTOPB)
    cflag |= cflags
    termios.tcsetattr(fd, termios.TCSANOW,
                      [iflag, oflag, cflag, lflag, speed, speed, cc])


def wait_port(phys, ospeed, stop2, timeout=FOLLOW_S):
    """The port's pty shows speed ospeed and stop2 (two stop bits) within
    timeout, as read with TCGETS2 on its master; returns when it did
    (time.monotonic())."""
    deadline = time.monotonic() + timeout
    while True:
        t = phys.termios2()
        if t["ospeed"] == ospeed and bool(t["cflag"] & sh.CSTOPB) == stop2:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"the port did not follow within {timeout} "
                                 f"s: {t}, want {ospeed} stop2={stop2}")
        time.sleep(0.01)


def write_all(fd, data, timeout=10):
    deadline = time.monotonic() + timeout
    view = memoryview(data)
    while view:
        if time.monotonic() > deadline:
            raise TimeoutError(f"wrote {len(data) - len(view)} of {len(data)}")
        select.select([], [fd], [], 0.1)
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            pass


def read_exact(fd, n, timeout=10):
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"got {len(got)} of {n} bytes: "
                               f"{bytes(got[:64])!r}")
        select.select([fd], [], [], min(left, 0.1))
        try:
            got += os.read(fd, n - len(got))
        except BlockingIOError:
            pass
    return bytes(got)


def wait_taken(pty, timeout=10, settle=0.3):
    """The agent has read everything the device side wrote: the slave's
    input queue, which the test can see through its own slave fd, stays
    empty for `settle` seconds. One empty reading is not enough: the pty
    moves the master's bytes into that queue from a kernel work item, so
    the queue is briefly empty while bytes still wait in the pty's flip
    buffer (an agent stopped at that moment never read them)."""
    buf = bytearray(4)
    deadline = time.monotonic() + timeout
    empty_since = None
    while True:
        fcntl.ioctl(pty.slave, termios.FIONREAD, buf)
        now = time.monotonic()
        if struct.unpack("i", buf)[0] != 0:
            empty_since = None
        elif empty_since is None:
            empty_since = now
        elif now - empty_since >= settle:
            return
        if now > deadline:
            raise TimeoutError("the agent did not read the device")
        time.sleep(0.01)


def read_for(fd, seconds):
    """Everything fd gives within seconds (nothing expected, usually)."""
    got = bytearray()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        select.select([fd], [], [], 0.05)
        try:
            got += os.read(fd, 65536)
        except (BlockingIOError, OSError):
            pass
    return bytes(got)


def expect_only(fd, want, what, quiet_s=0.3):
    """fd gives exactly want, then nothing for quiet_s: no stale bytes
    before it, nothing duplicated after it."""
    got = read_exact(fd, len(want))
    assert got == want, f"{what}: got {got[:80]!r}, want {want[:80]!r}"
    extra = read_for(fd, quiet_s)
    assert extra == b"", f"{what}: extra bytes after it: {extra[:80]!r}"


def pump_fds(a, b, to_b, to_a, timeout=60):
    """to_b written on fd a and read on fd b, to_a the other way, at the
    same time; returns (what a got, what b got)."""
    sa = sb = 0
    got_a, got_b = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    while len(got_a) < len(to_a) or len(got_b) < len(to_b):
        if time.monotonic() > deadline:
            raise TimeoutError(f"guest got {len(got_a)}/{len(to_a)}, port "
                               f"got {len(got_b)}/{len(to_b)}")
        w = ([a] if sa < len(to_b) else []) + ([b] if sb < len(to_a) else [])
        r, w, _ = select.select([a, b], w, [], 0.2)
        for fd, data, sent in ((a, to_b, sa), (b, to_a, sb)):
            if fd in w:
                try:
                    n = os.write(fd, data[sent:sent + 65536])
                except BlockingIOError:
                    n = 0
                if fd == a:
                    sa += n
                else:
                    sb += n
        for fd, got in ((a, got_a), (b, got_b)):
            if fd in r:
                try:
                    got += os.read(fd, 65536)
                except BlockingIOError:
                    pass
    return bytes(got_a), bytes(got_b)


def exchange(guest, phys, size, seed, what):
    """size random bytes (0x00 and 0xff plenty) each way at once, checked
    byte for byte."""
    to_port = sh.random_payload(size, seed)
    to_guest = sh.random_payload(size, seed + 1)
    got_guest, got_port = pump_fds(guest, phys.master, to_port, to_guest)
    assert got_port == to_port, f"{what}: guest -> port corrupted"
    assert got_guest == to_guest, f"{what}: port -> guest corrupted"
    return to_port, to_guest


class StalePty(sh.Pty):
    """A replugged adapter that already holds input before the agent can
    open it: the bytes are in the slave's queue before the link appears,
    so the check does not race the agent's 500 ms reopen timer."""

    def plug_with(self, stale):
        m, s = os.openpty()
        tty.setraw(s)
        os.set_blocking(m, False)
        write_all(m, stale)
        self.master, self.slave, self.name = m, s, os.ttyname(s)
        tmp = self.link + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(self.name, tmp)
        os.replace(tmp, self.link)


def attached_session(td):
    """A relay with one serial target com1 (its path opened as QEMU opens
    it), a port pty and an agent dialing the target, attached and
    connected. Returns (relay, guest fd, port Pty, agent, the agent's
    [serial.com1] section for starting another)."""
    import relayharness
    com = td.file("com1")
    relay = relayharness.Relay(td)
    relay.start(f"[relay]\nlisten = 127.0.0.1:{relay.port}\n"
                f"secret_file = {relay.secret_path}\nlog_level = debug\n"
                f"[target.com1]\nkind = serial\npath = {com}\n").wait_ready()
    guest = open_guest(com)
    phys = sh.Pty(td.file("phys"))
    section = sh.port_section("com1", phys.link, connect=f"{relay.port}/com1",
                              relay_secret_file=relay.secret_path)
    agent = sh.SerialAgent(td).start(section)
    relay.wait_log(r"attached to target 'com1'")
    agent.wait_log(r"client \S+ connected")
    return relay, guest, phys, agent, section
