# SPDX-License-Identifier: MIT
"""Helpers for redir-relay tests: the relay as a process, and a fake QEMU
chardev that records its connections.

    import relayharness
    from relayharness import harness     # tests/e2e/harness.py

    def test(td):
        qemu = relayharness.FakeQemu()               # TCP, or unix_path=...
        relay = relayharness.Relay(td)
        relay.start(relay.config({"vm1": f"127.0.0.1:{qemu.port}"}))
        relay.wait_log(r"listening for agents")
        ...
        relay.stop()                                 # SIGTERM, exit 0 expected

    harness.main(test)

Relay subclasses harness.Agent, so harness.main() stops it after the test
and fails the test on a sanitizer report in its log. A fresh secret is
written to <testdir>/relay.secret (mode 0600) for every Relay; its bytes
are relay.secret, its port relay.port.

Environment: REDIR_RELAY (path of redir-relay; default: the newest
build*/relay/redir-relay).
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "e2e")
for p in (HERE, E2E):
    if p not in sys.path:
        sys.path.insert(0, p)
import harness  # noqa: E402

ASAN_OPTIONS = "detect_leaks=1:abort_on_error=0"


def relay_env():
    env = harness.clean_env()
    env.setdefault("ASAN_OPTIONS", ASAN_OPTIONS)
    return env


class Relay(harness.Agent):
    """redir-relay -f -c CONFIG; logs to <testdir>/<name>.log."""

    kind = "relay"

    def __init__(self, testdir, name="relay", path=None, port=None,
                 secret=None):
        harness._Proc.__init__(self, testdir, name)
        self.path = path or harness.find_program("REDIR_RELAY", "redir-relay",
                                                 "relay")
        self.config_path = testdir.file(f"{name}.ini")
        self.log_path = testdir.file(f"{name}.log")
        self.port = port or harness.free_port()
        self.secret = secret or os.urandom(24).hex().encode()
        self.secret_path = testdir.file(f"{name}.secret")
        fd = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.secret + b"\n")

    def config(self, targets, relay_extra="", log_level="debug"):
        """Config text: [relay] on self.port with self.secret_path, and
        targets {name: "HOST:PORT" | "unix:/path" | ("listen", addr)}."""
        text = (f"[relay]\nlisten = 127.0.0.1:{self.port}\n"
                f"secret_file = {self.secret_path}\n"
                f"log_level = {log_level}\n{relay_extra}\n")
        for name, where in targets.items():
            mode = "connect"
            if isinstance(where, tuple):
                mode, where = where
            text += f"[target.{name}]\nqemu = {where}\nmode = {mode}\n"
        return text

    def start(self, config_text, extra_args=()):
        with open(self.config_path, "w") as f:
            f.write(config_text)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.path, "-f", "-c", self.config_path, *extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=relay_env(), cwd=self.testdir.path,
                preexec_fn=harness._pdeathsig(signal.SIGTERM))
        return self

    def wait_ready(self, timeout=20):
        self.wait_log(r"listening for agents", timeout)
        return self

    def rss_kib(self):
        """Resident memory of the relay, KiB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def log_files(self):
        return [(f"relay {self.name} log", self.log_path)]


class FakeQemu:
    """A chardev server (TCP on 127.0.0.1, or a unix socket) that accepts
    any number of connections. Each connection is answered by
    handler(conn) on its own thread (default: echo everything back); first
    sends `greeting` (like usb-redir's hello) if given. Connections are
    counted in .accepted and their received bytes kept in .received."""

    def __init__(self, unix_path=None, handler=None, greeting=b""):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            self.address = f"unix:{unix_path}"
            self.port = None
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            self.address = f"127.0.0.1:{self.port}"
        self.sock.listen(64)
        self.handler = handler or self.echo
        self.greeting = greeting
        self.accepted = 0
        self.received = []
        self.lock = threading.Lock()
        self.closing = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.received.append(bytearray())
                index = len(self.received) - 1
            threading.Thread(target=self._serve, args=(conn, index),
                             daemon=True).start()

    def _serve(self, conn, index):
        try:
            if self.greeting:
                conn.sendall(self.greeting)
            self.handler(conn, self.received[index])
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def echo(conn, received):
        while True:
            data = conn.recv(65536)
            if not data:
                return
            received += data
            conn.sendall(data)

    def wait_accepted(self, n, timeout=10):
        harness.wait_for(lambda: self.accepted >= n, timeout,
                         f"{n} connection(s) at the fake QEMU")

    def close(self):
        self.closing = True
        self.sock.close()


def exchange(sock, payload, decoder=None, compress=True, timeout=30):
    """Sends payload (framed if decoder is given, i.e. lz4 agreed) and
    reads until as many decoded bytes came back; returns them."""
    data = payload
    if decoder is not None:
        from relayproto import encode
        data = encode(payload, compress)
    got = bytearray()
    sock.settimeout(timeout)
    sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    sender.start()
    deadline = time.monotonic() + timeout
    while len(got) < len(payload):
        if time.monotonic() > deadline:
            raise TimeoutError(f"echo: {len(got)} of {len(payload)} bytes")
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {len(got)} bytes")
        got += decoder.feed(chunk) if decoder is not None else chunk
    sender.join(timeout)
    return bytes(got)
