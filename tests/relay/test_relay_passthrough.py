#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Bytes go through the relay intact both ways, raw and lz4, for every kind
of target: TCP and unix chardevs, the relay connecting to QEMU or QEMU
dialing in. QEMU speaks first (like usb-redir's hello)."""
import os
import socket
import threading

import relayharness
import relayproto
from relayharness import harness

GREETING = b"\x00\x00\x00\x00usb-redir hello from QEMU"


class DialingQemu:
    """A QEMU chardev with reconnect=N: dials the relay's target address
    until it gets through, greets, echoes."""

    def __init__(self, address):
        self.address = address
        self.received = bytearray()
        self.connected = threading.Event()
        self.sock = None
        threading.Thread(target=self._run, daemon=True).start()

    def _dial(self):
        if self.address.startswith("unix:"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.address[5:])
        else:
            host, port = self.address.rsplit(":", 1)
            s = socket.create_connection((host, int(port)))
        return s

    def _run(self):
        while True:
            try:
                self.sock = self._dial()
                break
            except OSError:
                threading.Event().wait(0.05)
        self.connected.set()
        self.sock.sendall(GREETING)
        relayharness.FakeQemu.echo(self.sock, self.received)


def check_session(relay, target, lz4, qemu_received, name):
    agent = relayproto.connect_agent(relay.port, relay.secret, f"agent-{name}",
                                     target, want_lz4=lz4)
    decoder = relayproto.Decoder() if lz4 else None
    got = b""
    wire = 0
    agent.settimeout(10)
    while len(got) < len(GREETING):
        chunk = agent.recv(4096)
        assert chunk, f"{name}: closed before the greeting"
        wire += len(chunk)
        got += decoder.feed(chunk) if decoder else chunk
    assert got == GREETING, (name, got)

    text = relayproto.text_data(3 << 20, seed=len(name))
    rnd = relayproto.random_data(1 << 20)
    small = b"".join(bytes([i]) * (i + 1) for i in range(200))
    for what, payload in (("text", text), ("random", rnd), ("small", small)):
        back = relayharness.exchange(agent, payload, decoder)
        assert back == payload, f"{name}: {what} came back different"
    total = len(text) + len(rnd) + len(small)
    assert bytes(qemu_received()[:total]) == text + rnd + small, \
        f"{name}: QEMU got different bytes"
    if lz4:
        assert decoder.frames[relayproto.LZ4] > 0, f"{name}: nothing compressed"
    agent.close()
    relay.wait_log(rf"agent 'agent-{name}' .* left target '{target}' after "
                   rf"[\d.]+ s: agent connection closed; agent->QEMU {total} "
                   rf"bytes")
    return decoder


def test(td):
    sock_dir = td.file("s")
    os.mkdir(sock_dir)
    tcp_q = relayharness.FakeQemu(greeting=GREETING)
    unix_q = relayharness.FakeQemu(unix_path=os.path.join(sock_dir, "q"),
                                   greeting=GREETING)
    listen_tcp = f"127.0.0.1:{harness.free_port()}"
    listen_unix = "unix:" + os.path.join(sock_dir, "l")
    relay = relayharness.Relay(td)
    relay.start(relay.config({
        "tcp": tcp_q.address,
        "unix": unix_q.address,
        "ltcp": ("listen", listen_tcp),
        "lunix": ("listen", listen_unix),
    }))
    relay.wait_ready()
    relay.wait_log(r"target lunix: waiting for QEMU on unix:")

    for lz4 in (False, True):
        kind = "lz4" if lz4 else "raw"
        n = tcp_q.accepted
        check_session(relay, "tcp", lz4, lambda: tcp_q.received[n],
                      f"tcp-{kind}")
        n = unix_q.accepted
        check_session(relay, "unix", lz4, lambda: unix_q.received[n],
                      f"unix-{kind}")
        for target, addr in (("ltcp", listen_tcp), ("lunix", listen_unix)):
            q = DialingQemu(addr)
            q.connected.wait(10)
            relay.wait_log(rf"target {target}: QEMU connected")
            check_session(relay, target, lz4, lambda: q.received,
                          f"{target}-{kind}")
    relay.wait_log(r"attached to target 'tcp' \(QEMU 127\.0\.0\.1:\d+, lz4\)")
    relay.wait_log(r"attached to target 'unix' \(QEMU unix:.*, raw\)")

    # An agent that arrives before QEMU dials in waits for it.
    agent = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
    result = []
    t = threading.Thread(target=lambda: result.append(relayproto.handshake(
        agent, relay.secret, "early", "ltcp", True)))
    t.start()
    threading.Event().wait(0.5)
    assert not result, "accepted before QEMU was there"
    q = DialingQemu(listen_tcp)
    t.join(10)
    assert result and result[0][0] == 0, result
    got = b""
    dec = relayproto.Decoder()
    while len(got) < len(GREETING):
        got += dec.feed(agent.recv(4096))
    assert got == GREETING

    # QEMU hanging up ends the session: the agent sees the end.
    q.sock.shutdown(socket.SHUT_RDWR)
    assert agent.recv(100) == b""
    relay.wait_log(r"agent 'early' .* left target 'ltcp' .*: QEMU closed the "
                   r"chardev connection")
    agent.close()
    assert relay.stop() == 0
    relay.wait_log(r"SIGTERM: closing 0 sessions and exiting")


harness.main(test)
