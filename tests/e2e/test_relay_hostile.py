#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A hostile relay: it completes the handshake (agreeing to lz4) and then
sends corrupt frames: an oversized length, an lz4 block that does not
decode, an unknown frame kind. Each closes that session with a clear log
line; the agent keeps running, allocates nothing unbounded, and reconnects."""
import os
import socket
import struct
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "relay"))
import relayproto  # noqa: E402
import harness  # noqa: E402
from harness import Agent, Fixture, free_port  # noqa: E402

CORRUPT = [
    ("oversized", bytes([relayproto.LZ4]) + b"\xff\xff\xff" + b"\x10\x00\x00"),
    ("undecodable", bytes([relayproto.LZ4]) + struct.pack("<I", 64)[:3] +
     struct.pack("<I", 4096)[:3] + os.urandom(64)),
    ("unknown kind", b"\x42\x10\x00\x00" + os.urandom(16)),
]


SECRET = b"0123456789abcdef0123456789abcdef"


def serve(listener, done):
    for _, frame in CORRUPT:
        conn, _ = listener.accept()
        with conn:
            hello = struct.pack(">BBIB", 1, 2, relayproto.CAP_LZ4, 32) + \
                os.urandom(32)
            hello_raw = relayproto.message(b"H", hello)
            conn.sendall(hello_raw)
            _, _, auth_raw = relayproto.recv_message(conn)  # accepted unseen
            # a hostile relay that knows the secret: it proves it, then
            # sends garbage
            conn.sendall(relayproto.accept_message(
                SECRET, hello_raw, auth_raw, relayproto.CAP_LZ4))
            conn.sendall(frame)
            conn.settimeout(10)
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass
    done.set()


def test(td):
    fx = Fixture(td).start()
    fx.add("loopback")
    port = free_port()
    listener = socket.socket()
    listener.bind(("127.0.0.1", port))
    listener.listen(4)
    done = threading.Event()
    threading.Thread(target=serve, args=(listener, done), daemon=True).start()
    secret = td.file("relay.secret")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, SECRET + b"\n")
    os.close(fd)
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}/vm1\ntransport = lz4\n"
                f"relay_secret_file = {secret}\nreconnect_max_ms = 200\n")
    harness.wait_for(done.is_set, 30, "three corrupt-frame sessions")
    log = agent.log_text()
    assert log.count("corrupt lz4 frame from relay") == 3, log
    assert agent.alive()
    listener.close()
    agent.stop()


harness.main(test)
