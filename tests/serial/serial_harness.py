# SPDX-License-Identifier: MIT
"""Helpers for the serial bridge's end-to-end tests (standard library only).

  * Pty         -- a pseudo-terminal standing in for a serial device: the
                   test holds the master (the device's far end) and a raw
                   slave fd; the agent is given a symlink to the slave,
                   which the test can remove and re-point (unplug, replug).
  * SerialAgent -- redir-agent without the umockdev preload, optionally
                   under the LD_PRELOAD ioctl recorder.
  * TelnetClient, pump() -- TCP peers that check every byte.

Environment: REDIR_AGENT, REDIR_ASAN_RUNTIME (see tests/e2e/harness.py),
REDIR_IOCTL_RECORDER (path of the ioctl recorder library).
"""

import fcntl
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import harness  # noqa: E402

# <asm/termbits.h>
TCGETS2 = 0x802C542A
CBAUD = 0o010017
BOTHER = 0o010000
CSIZE, CS5, CS6, CS7, CS8 = 0o60, 0o0, 0o20, 0o40, 0o60
CSTOPB, PARENB, PARODD = 0o100, 0o400, 0o1000
CMSPAR, CRTSCTS = 0o10000000000, 0o20000000000
IXON, IXOFF = 0o2000, 0o10000
TIOCM_DTR, TIOCM_RTS = 0x002, 0x004

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240


def random_payload(n, seed):
    """n pseudo-random bytes with every byte value, plenty of 0xff and NUL."""
    import random
    rnd = random.Random(seed)
    data = bytearray(rnd.randbytes(n))
    for i in range(0, n, 97):
        data[i] = 0xff
    for i in range(13, n, 89):
        data[i] = 0
    return bytes(data)


class Pty:
    """A pty pair behind the symlink `link`."""

    def __init__(self, link):
        self.link = link
        self.master = self.slave = None
        self.plug()

    def plug(self):
        """A new pty, and the symlink pointed at it (a replugged adapter)."""
        m, s = os.openpty()
        tty.setraw(s)              # before the agent ever opens it
        os.set_blocking(m, False)
        self.master, self.slave = m, s
        self.name = os.ttyname(s)
        tmp = self.link + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(self.name, tmp)
        os.replace(tmp, self.link)

    def unplug(self):
        """Symlink gone, pty closed: the agent's reads fail with EIO."""
        if os.path.lexists(self.link):
            os.unlink(self.link)
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None

    def close(self):
        self.unplug()

    def termios2(self):
        """The slave's termios as the master sees it (TCGETS2)."""
        buf = bytearray(44)
        fcntl.ioctl(self.master, TCGETS2, buf)
        iflag, oflag, cflag, lflag = struct.unpack_from("4I", buf, 0)
        ispeed, ospeed = struct.unpack_from("2I", buf, 36)
        return dict(iflag=iflag, oflag=oflag, cflag=cflag, lflag=lflag,
                    ispeed=ispeed, ospeed=ospeed)

    def write_all(self, data, timeout=10):
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pty took only {len(data) - len(view)} of "
                                   f"{len(data)} bytes")
            select.select([], [self.master], [], 0.1)
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                continue
            view = view[n:]

    def read_exact(self, n, timeout=10):
        data = bytearray()
        deadline = time.monotonic() + timeout
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"pty gave {len(data)} of {n} bytes: "
                                   f"{bytes(data[:64])!r}")
            select.select([self.master], [], [], min(left, 0.1))
            try:
                data += os.read(self.master, n - len(data))
            except BlockingIOError:
                pass
        return bytes(data)

    def read_for(self, seconds):
        """Everything the device side gets within `seconds`."""
        data = bytearray()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            select.select([self.master], [], [], 0.05)
            try:
                data += os.read(self.master, 65536)
            except (BlockingIOError, OSError):
                pass
        return bytes(data)


class SerialAgent(harness.Agent):
    """redir-agent -f -c CONFIG with a plain environment (no umockdev):
    [REDIR_ASAN_RUNTIME] and, with record_ioctls, the ioctl recorder in
    LD_PRELOAD, logging to self.ioctl_log."""

    def __init__(self, testdir, name="agent", record_ioctls=False):
        super().__init__(testdir, name=name)
        self.ioctl_log = testdir.file(f"{name}-ioctl.log") if record_ioctls else None

    def start(self, config_text, extra_args=()):
        self.control_socket = self.testdir.file(f"{self.name}.sock")
        config_text = (f"[agent]\nlog_level = debug\n"
                       f"control_socket = {self.control_socket}\n" + config_text)
        with open(self.config_path, "w") as f:
            f.write(config_text)
        env = harness.clean_env()
        preload = []
        asan = os.environ.get("REDIR_ASAN_RUNTIME")
        if asan:
            preload.append(asan)
            env.setdefault("ASAN_OPTIONS", harness.DEFAULT_ASAN_OPTIONS)
        if self.ioctl_log:
            preload.append(os.environ["REDIR_IOCTL_RECORDER"])
            env["REDIR_IOCTL_LOG"] = self.ioctl_log
        if preload:
            env["LD_PRELOAD"] = " ".join(preload)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.path, "-f", "-c", self.config_path, *extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=self.testdir.path,
                preexec_fn=harness._pdeathsig(signal.SIGTERM))
        return self

    def ioctls(self):
        try:
            with open(self.ioctl_log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def wait_ioctl(self, regex, timeout=10, start=0):
        """Wait for a recorded ioctl line matching regex (from line start);
        return the re.Match."""
        rx = re.compile(regex)

        def find():
            for line in self.ioctls()[start:]:
                m = rx.search(line)
                if m:
                    return m
            return None
        try:
            return harness.wait_for(find, timeout, f"ioctl /{regex}/")
        except TimeoutError as e:
            raise TimeoutError(f"{e}; recorded: {self.ioctls()[start:]}") from None

    def wait_cflag(self, start, want, mask, ospeed=None):
        """A TCSETS2 recorded after line `start` with cflag & mask == want
        (and that output speed); returns its line."""
        def find():
            for line in self.ioctls()[start:]:
                if not line.startswith("TCSETS2 "):
                    continue
                f = dict(kv.split("=") for kv in line.split()[1:])
                if (int(f["cflag"], 8) & mask == want and
                        (ospeed is None or int(f["ospeed"]) == ospeed)):
                    return line
            return None
        try:
            return harness.wait_for(find, 10, f"TCSETS2 with cflag & {mask:o}"
                                              f" == {want:o}")
        except TimeoutError as e:
            raise TimeoutError(f"{e}; recorded {self.ioctls()[start:]}") from None


def port_section(name, device, listen=None, connect=None, **keys):
    """A [serial.NAME] section."""
    lines = [f"[serial.{name}]", f"device = {device}"]
    if listen is not None:
        lines.append(f"listen = 127.0.0.1:{listen}")
    if connect is not None:
        lines.append(f"connect = 127.0.0.1:{connect}")
    lines += [f"{k} = {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def connect(port, timeout=10):
    """A TCP connection to the agent's port, retried while it comes up."""
    def attempt():
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            return None
    s = harness.wait_for(attempt, timeout, f"port {port} to accept")
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(sock, n, timeout=10):
    data = bytearray()
    deadline = time.monotonic() + timeout
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"socket gave {len(data)} of {n} bytes")
        sock.settimeout(left)
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"socket closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def wait_closed(sock, timeout=10):
    """Read until EOF (or a reset); returns what came before it."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the agent did not close the connection")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


def telnet_escape(data):
    return data.replace(b"\xff", b"\xff\xff")


class TelnetDecoder:
    """Client-side telnet: data out, IAC IAC undone, negotiations answered
    (BINARY and SGA accepted, everything else refused), subnegotiations
    collected in self.subnegs."""

    def __init__(self, sock):
        self.sock = sock
        self.state = 0
        self.verb = None
        self.sb = None
        self.subnegs = []
        self.verbs = []

    def feed(self, chunk):
        out = bytearray()
        replies = bytearray()
        for b in chunk:
            if self.state == 0:
                if b == IAC:
                    self.state = 1
                elif self.sb is not None:
                    self.sb.append(b)
                else:
                    out.append(b)
            elif self.state == 1:
                self.state = 0
                if b == IAC:
                    (self.sb if self.sb is not None else out).append(IAC)
                elif b in (WILL, WONT, DO, DONT):
                    self.verb, self.state = b, 2
                elif b == SB:
                    self.sb = bytearray()
                elif b == SE and self.sb is not None:
                    self.subnegs.append(bytes(self.sb))
                    self.sb = None
            else:
                self.state = 0
                self.verbs.append((self.verb, b))
                ok = b in (0, 3)
                if self.verb == WILL:
                    replies += bytes([IAC, DO if ok else DONT, b])
                elif self.verb == DO:
                    replies += bytes([IAC, WILL if ok else WONT, b])
        if replies:
            self.sock.sendall(bytes(replies))
        return bytes(out)


class ComPortClient:
    """A minimal RFC 2217 client speaking raw telnet."""

    def __init__(self, port):
        self.sock = connect(port)
        self.telnet = TelnetDecoder(self.sock)
        self.data = bytearray()
        self.sock.sendall(bytes([IAC, WILL, 44]))

    def send_sb(self, payload):
        self.sock.sendall(bytes([IAC, SB, 44]) +
                          telnet_escape(bytes(payload)) +
                          bytes([IAC, SE]))

    def wait_sb(self, cmd, timeout=5):
        """The next subnegotiation with server command cmd."""
        deadline = time.monotonic() + timeout
        while True:
            for i, sb in enumerate(self.telnet.subnegs):
                if len(sb) >= 2 and sb[0] == 44 and sb[1] == cmd:
                    del self.telnet.subnegs[:i + 1]
                    return sb[2:]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer {cmd}; have {self.telnet.subnegs}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("closed")
            self.data += self.telnet.feed(chunk)

    def request(self, cmd, value=b""):
        self.send_sb(bytes([cmd]) + value)
        return self.wait_sb(cmd + 100)



def pump(sock, pty, to_device, to_net, timeout=60, telnet=None):
    """Sends to_device over sock and to_net from the pty's master at the
    same time; returns (what the pty got, what the socket got). With
    telnet (a TelnetDecoder on sock) the socket side is telnet-coded."""
    wire = telnet_escape(to_device) if telnet else to_device
    sent_wire = sent_tty = 0
    got_tty, got_net = bytearray(), bytearray()
    sock.setblocking(False)
    deadline = time.monotonic() + timeout
    try:
        while len(got_tty) < len(to_device) or len(got_net) < len(to_net):
            if time.monotonic() > deadline:
                raise TimeoutError(f"pump: device got {len(got_tty)}/"
                                   f"{len(to_device)}, socket got "
                                   f"{len(got_net)}/{len(to_net)}")
            rlist = [sock, pty.master]
            wlist = ([sock] if sent_wire < len(wire) else []) + \
                    ([pty.master] if sent_tty < len(to_net) else [])
            r, w, _ = select.select(rlist, wlist, [], 0.2)
            if sock in w:
                try:
                    sent_wire += sock.send(wire[sent_wire:sent_wire + 65536])
                except BlockingIOError:
                    pass
            if pty.master in w:
                try:
                    sent_tty += os.write(pty.master,
                                         to_net[sent_tty:sent_tty + 65536])
                except BlockingIOError:
                    pass
            if sock in r:
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    chunk = None
                if chunk == b"":
                    raise EOFError("pump: the agent closed the connection")
                if chunk:
                    got_net += telnet.feed(chunk) if telnet else chunk
            if pty.master in r:
                try:
                    got_tty += os.read(pty.master, 65536)
                except BlockingIOError:
                    pass
    finally:
        sock.setblocking(True)
    return bytes(got_tty), bytes(got_net)


class FifoReader:
    """A printer consuming jobs: reads the FIFO at path in a thread."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.data = bytearray()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            select.select([self.fd], [], [], 0.05)
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            if chunk:
                self.data += chunk
            else:
                time.sleep(0.02)     # no writer at the moment

    def wait_for(self, n, timeout=30):
        harness.wait_for(lambda: len(self.data) >= n, timeout,
                         f"{n} bytes at the printer (have {len(self.data)})")
        return bytes(self.data)

    def close(self):
        self.stopping = True
        self.thread.join()
        os.close(self.fd)
