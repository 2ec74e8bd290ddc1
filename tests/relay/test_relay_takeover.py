#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Who holds a target: another agent asking for a target in use is refused
as busy; the same agent connecting again (back from a network cut) takes
over from its old connection; over max_sessions an agent is refused before
any hello."""
import socket

import relayharness
import relayproto
from relayharness import harness


def test(td):
    qemu = relayharness.FakeQemu()
    relay = relayharness.Relay(td)
    relay.start(relay.config({"vm1": qemu.address}, "max_sessions = 2\n"))
    relay.wait_ready()

    first = relayproto.connect_agent(relay.port, relay.secret, "tc-a", "vm1",
                                     want_lz4=True)
    dec = relayproto.Decoder()
    assert relayharness.exchange(first, b"a" * 1000, dec) == b"a" * 1000

    # Another agent: busy, and the first one keeps the target.
    try:
        relayproto.connect_agent(relay.port, relay.secret, "tc-b", "vm1")
        raise AssertionError("second agent accepted on a busy target")
    except relayproto.ProtocolError as e:
        assert "busy: target 'vm1' is in use by agent 'tc-a'" in str(e), e
    relay.wait_log(r"agent 'tc-b' .* refused for target vm1: busy: target "
                   r"'vm1' is in use by agent 'tc-a'")
    assert relayharness.exchange(first, b"b" * 1000, dec) == b"b" * 1000
    assert qemu.accepted == 1

    # The same agent again: its old connection is closed, the new one works
    # on a fresh QEMU connection.
    again = relayproto.connect_agent(relay.port, relay.secret, "tc-a", "vm1")
    first.settimeout(5)
    assert first.recv(100) == b"", "old connection still open"
    relay.wait_log(r"agent 'tc-a' \(127\.0\.0\.1:\d+\) left target 'vm1' after "
                   r"[\d.]+ s: replaced by its new connection from "
                   r"127\.0\.0\.1:\d+")
    qemu.wait_accepted(2)
    assert relayharness.exchange(again, b"c" * 5000) == b"c" * 5000

    # max_sessions = 2: one in use, one more may handshake, a third is
    # refused before any hello.
    pending = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    assert relayproto.recv_message(pending)[0] == b"H"
    over = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    status, _, text = relayproto.handshake(over, relay.secret, "tc-c", "vm1")
    assert status == 5 and text == "relay at its limit of 2 sessions", text
    relay.wait_log(r"agent 127\.0\.0\.1:\d+ refused: busy: relay at its limit "
                   r"of 2 sessions")
    over.close()
    pending.close()
    relay.wait_log(r"connection closed during the handshake after 0 bytes")

    # A relay restart drops the session (the agent reconnects by itself);
    # the new relay takes agents on the same port at once.
    assert relay.stop() == 0
    again.settimeout(5)
    assert again.recv(100) == b""
    relay.wait_log(r"SIGTERM: closing 1 session and exiting")
    relay.wait_log(r"left target 'vm1' .*: relay shutting down")
    relay2 = relayharness.Relay(td, name="relay2", port=relay.port,
                                secret=relay.secret)
    relay2.start(relay2.config({"vm1": qemu.address}))
    relay2.wait_ready()
    s = relayproto.connect_agent(relay2.port, relay2.secret, "tc-a", "vm1",
                                 want_lz4=True)
    assert relayharness.exchange(s, b"d" * 3000, relayproto.Decoder()) == \
        b"d" * 3000
    s.close()
    assert relay2.stop() == 0


harness.main(test)
