#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Hostile peers: one that sends random bytes, one that sends a valid hello
header followed by garbage, one that says nothing. The agent logs each,
hands the device back, keeps running, and redirects to a good peer (QEMU)
that takes over the port afterwards."""
import os
import re
import socket
import struct
import time
import threading

import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port


class BadPeer:
    """Accepts connections on port; behaviour(conn_index) -> bytes to send
    (None: send nothing and hold the connection)."""

    def __init__(self, port, behaviours):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4)
        self.behaviours = list(behaviours)
        self.conns = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        for payload in self.behaviours:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if payload is not None:
                try:
                    conn.sendall(payload)
                except OSError:
                    pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def valid_hello_then_garbage():
    # usb_redir_hello: type 0, length 64 + 4 (one caps word), id 0
    hello = struct.pack("<III", 0, 68, 0) + b"hostile".ljust(64, b"\0") + \
        struct.pack("<I", 0)
    # then a header with an unknown packet type
    return hello + struct.pack("<III", 0x7fffffff, 16, 1) + os.urandom(4096)


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    fx.add("disk", img)
    port = free_port()
    random_bytes = b"\x47" + os.urandom(65536)  # never a hello's type 0
    bad = BadPeer(port, [random_bytes, valid_hello_then_garbage(), None])
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\nreconnect_max_ms = 300\n")
    agent.wait_log(r'"Emulated Disk" at 1-1: peer 127\.0\.0\.1:\d+ is not a '
                   r'usbredir peer \(first packet is not a usbredir hello\)')
    agent.wait_log(r'"Emulated Disk" at 1-1: malformed usbredir data from '
                   r'peer 127\.0\.0\.1:\d+; disconnecting')
    agent.wait_log(r'"Emulated Disk" at 1-1: peer .* sent no usbredir hello '
                   r'within 10 s', timeout=30)
    bad.close()
    assert agent.alive()
    # each distinct failure is a warning of its own: the second, different
    # one is not hidden behind the first
    log = agent.log_text()
    for why in (r"is not a usbredir peer", r"sent no usbredir hello"):
        assert re.search(r"warning: .*Emulated Disk.*" + why, log), why
    # nobody listens now: the refusals repeat, logged once; when the reason
    # changes (random bytes again), what the old one did since its line is
    # said first, not swallowed by the change
    at = agent.log_offset()
    time.sleep(2)
    bad = BadPeer(port, [random_bytes])
    agent.wait_log(r'"Emulated Disk" at 1-1: failed \d+ more times? in \d+ s: '
                   r'.*refused', start_offset=at)
    agent.wait_log(r'"Emulated Disk" at 1-1: peer 127\.0\.0\.1:\d+ is not a '
                   r'usbredir peer', start_offset=at)
    bad.close()

    qemu = Qemu(td, slots=[("server", port)], paused=False,
                usb_attach_wait_ms=3000)
    qemu.start()
    at = agent.log_offset()
    agent.wait_log(r'"Emulated Disk" at 1-1: redirected rw to', start_offset=at)
    qemu.wait_usb_devices(1)
    qemu.wait_boot(timeout=60)
    agent.stop()


harness.main(test)
