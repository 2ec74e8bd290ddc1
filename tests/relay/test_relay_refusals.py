#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Every bad handshake is refused with a reason the agent receives and the
relay logs, and QEMU never sees a connection: wrong secret, unknown target,
version mismatch, truncated handshake (closed early, or silent until the
timeout), garbage, a raw usbredir agent pointed at the relay."""
import os
import socket
import time

import relayharness
import relayproto
from relayharness import harness


def agent_socket(relay):
    return socket.create_connection(("127.0.0.1", relay.port), timeout=15)


def refused(relay, agent_id, target, status, secret=None, version=1):
    """Runs the handshake; returns the relay's text after checking the
    status, and that the relay then closed the connection."""
    s = agent_socket(relay)
    got, _, text = relayproto.handshake(s, secret or relay.secret, agent_id,
                                        target, True, version)
    assert got == status, (agent_id, relayproto.STATUS.get(got), text)
    assert s.recv(100) == b"", f"{agent_id}: relay did not close"
    s.close()
    return text


def result_after(s):
    """Reads the HELLO, then whatever RESULT the relay sends."""
    mtype, _, _ = relayproto.recv_message(s)
    assert mtype == b"H", mtype
    mtype, body, _ = relayproto.recv_message(s)
    assert mtype == b"R", mtype
    return relayproto.parse_result(body)


def test(td):
    qemu = relayharness.FakeQemu()
    relay = relayharness.Relay(td)
    relay.start(relay.config({"vm1": qemu.address}))
    relay.wait_ready()

    # Silent after connecting: refused when the handshake times out (5 s);
    # runs while the other cases go.
    silent = agent_socket(relay)
    relayproto.recv_message(silent)
    silent_start = time.monotonic()

    text = refused(relay, "tc-wrong", "vm1", 1, secret=b"not-the-secret-at-all")
    assert text == "authentication failed: not the relay's secret", text
    relay.wait_log(r"agent 'tc-wrong' \(127\.0\.0\.1:\d+\) refused for target "
                   r"vm1: not authenticated: authentication failed")

    text = refused(relay, "tc-lost", "vm9", 2)
    assert text == "no target 'vm9' on this relay", text
    relay.wait_log(r"agent 'tc-lost' .* refused for target vm9: unknown "
                   r"target: no target 'vm9' on this relay")

    # The target is only named after the secret was proven: a wrong secret
    # on an unknown target says "not authenticated", nothing about targets.
    refused(relay, "tc-probe", "vm9", 1, secret=b"not-the-secret-at-all")

    text = refused(relay, "tc-future", "vm1", 3, version=7)
    assert text == ("agent speaks protocol version 7, this relay versions 1 "
                    "to 2"), text
    relay.wait_log(r"agent 127\.0\.0\.1:\d+ refused: version mismatch: agent "
                   r"speaks protocol version 7")

    # Truncated: half an AUTH, then the agent hangs up.
    s = agent_socket(relay)
    _, _, hello = relayproto.recv_message(s)
    auth = relayproto.auth_message(hello, relay.secret, "tc-cut", "vm1", 1)
    s.sendall(auth[:len(auth) // 2])
    time.sleep(0.2)
    s.close()
    relay.wait_log(rf"agent 127\.0\.0\.1:\d+: connection closed during the "
                   rf"handshake after {len(auth) // 2} bytes \(truncated "
                   rf"handshake\)")

    # Garbage: refused as malformed at its first byte.
    s = agent_socket(relay)
    s.sendall(os.urandom(64).replace(b"R", b"r"))
    status, _, text = result_after(s)
    assert status == 4 and "no RDRL magic" in text, (status, text)
    s.close()

    # A raw usbredir agent (transport = raw) pointed at the relay.
    s = agent_socket(relay)
    s.sendall(b"\x00\x00\x00\x00\x44\x00\x00\x00\x00\x00\x00\x00" + b"x" * 68)
    status, _, text = result_after(s)
    assert status == 4, status
    s.close()
    relay.wait_log(r"refused: malformed handshake: no RDRL magic: the peer "
                   r"does not speak the relay protocol")

    # AUTH with a bad field: a target name with a slash.
    s = agent_socket(relay)
    _, _, hello = relayproto.recv_message(s)
    s.sendall(relayproto.auth_message(hello, relay.secret, "tc", "a/b", 1))
    status, _, text = relayproto.parse_result(relayproto.recv_message(s)[1])
    assert status == 4 and "target" in text, (status, text)
    s.close()

    # Data after the AUTH, before the answer.
    s = agent_socket(relay)
    _, _, hello = relayproto.recv_message(s)
    s.sendall(relayproto.auth_message(hello, relay.secret, "tc-eager", "vm1",
                                      1) + b"usbredir")
    status, _, text = relayproto.parse_result(relayproto.recv_message(s)[1])
    assert status == 4 and "data after AUTH" in text, (status, text)
    s.close()

    status, _, text = relayproto.parse_result(
        relayproto.recv_message(silent)[1])
    waited = time.monotonic() - silent_start
    assert status == 4 and "no AUTH within 5 s (0 bytes received)" in text, \
        (status, text)
    assert 4 < waited < 8, waited
    silent.close()

    assert qemu.accepted == 0, f"QEMU saw {qemu.accepted} connection(s)"
    # The relay is fine afterwards.
    s = relayproto.connect_agent(relay.port, relay.secret, "tc-good", "vm1")
    qemu.wait_accepted(1)
    assert relayharness.exchange(s, b"still works") == b"still works"
    s.close()
    assert relay.stop() == 0


harness.main(test)
