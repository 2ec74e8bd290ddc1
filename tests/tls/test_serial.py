#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""TLS on the serial bridge, both ways: a listening port serves only
clients with a certificate from our CA (attack: anyone who reaches the
thin client takes the port, sends BREAK, raises DTR), and a dialing port
talks only to a server whose certificate carries the name it dials
(attack: a machine that took the server's address gets the device's
data). 8-bit data passes both ways through the TLS session."""
import os
import socket
import ssl
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "serial"))
import tlsharness  # noqa: E402
import serial_harness as sh  # noqa: E402
from serial_harness import harness  # noqa: E402


def tls_server(certs, name):
    """A TLS server on a free port taking one connection after another;
    returns (port, list of accepted ssl sockets)."""
    ctx = certs.server_context(name)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    got = []

    def serve():
        while True:
            c, _ = ls.accept()
            try:
                got.append(ctx.wrap_socket(c, server_side=True))
            except (ssl.SSLError, OSError):
                c.close()

    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1], got


def test(td):
    certs = tlsharness.certs(td)
    pty_l, pty_c = sh.Pty(td.file("dev-l")), sh.Pty(td.file("dev-c"))
    pty_r = sh.Pty(td.file("dev-r"))
    lport = harness.free_port()
    cport, accepted = tls_server(certs, "qemu")
    rogue_port, rogue_accepted = tls_server(certs, "wrong-name")
    agent = sh.SerialAgent(td).start(
        sh.port_section("l", pty_l.link, listen=lport) +
        certs.tls_keys("desk-17") +
        sh.port_section("c", pty_c.link, connect=cport) +
        certs.tls_keys("desk-17") +
        sh.port_section("r", pty_r.link, connect=rogue_port) +
        certs.tls_keys("desk-17"))

    # listen: a client with a certificate gets the port, bytes 0..255 pass
    s = certs.client_context("desk-18").wrap_socket(
        sh.connect(lport), server_hostname="127.0.0.1")
    data = bytes(range(256)) * 64
    s.sendall(data)
    assert pty_l.read_exact(len(data)) == data
    pty_l.write_all(data)
    got = b""
    while len(got) < len(data):
        got += s.recv(65536)
    assert got == data
    # a client without a certificate is refused, the first one keeps going
    bare = certs.client_context(None).wrap_socket(
        sh.connect(lport), server_hostname="127.0.0.1")
    try:
        bare.settimeout(5)
        assert bare.recv(1) == b"", "a client without a certificate was served"
    except (ssl.SSLError, OSError):
        pass
    agent.wait_log(r"\[serial\.l\] listener: connection from 127\.0\.0\.1:\d+ "
                   r"refused: TLS handshake failed")
    s.sendall(b"still")
    assert pty_l.read_exact(5) == b"still"
    s.close()

    # connect: the agent dials the TLS server that carries the right name
    harness.wait_for(lambda: accepted, 10, "the agent's TLS connection")
    srv = accepted[0]
    pty_c.write_all(b"\x00\xff\x11\x13 from the device")
    want = b"\x00\xff\x11\x13 from the device"
    got = b""
    srv.settimeout(10)
    while len(got) < len(want):
        got += srv.recv(100)
    assert got == want, got
    assert srv.getpeercert()["subject"][0][0][1] == "desk-17"

    # a server whose certificate is for another name gets nothing
    agent.wait_log(r"\[serial\.r\] .*cannot connect: certificate: IP "
                   r"address mismatch")
    assert not rogue_accepted or all(
        not c.recv(1) for c in rogue_accepted), "data went to the impostor"
    agent.stop()


harness.main(test)
