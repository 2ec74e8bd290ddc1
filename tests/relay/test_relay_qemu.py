#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The relay in front of a real QEMU usb-redir chardev, both ways QEMU can
be reached: the relay dials a server=on chardev, or a reconnect=1 chardev
dials the relay. A synthetic agent, raw and lz4, gets QEMU's usbredir
hello through the relay and answers with a host hello; QEMU logs the peer
(its usb-redir debug output) and stays up. The full path with redir-agent
and a booting guest is the agent's e2e test."""
import struct

import relayharness
import relayproto
from relayharness import harness

USB_REDIR_HELLO = 0


def host_hello():
    """A usbredir hello as usbredirhost sends it: header, version, caps."""
    version = b"redir-relay test host".ljust(64, b"\0")
    caps = struct.pack("<I", 0)
    payload = version + caps
    return struct.pack("<III", USB_REDIR_HELLO, len(payload), 0) + payload


def read_qemu_hello(sock, decoder):
    """QEMU's hello through the relay: type 0, "qemu usb-redir guest"."""
    buf = b""
    sock.settimeout(20)
    while len(buf) < 12 or len(buf) < 12 + struct.unpack("<I", buf[4:8])[0]:
        data = sock.recv(4096)
        assert data, f"closed after {len(buf)} bytes"
        buf += decoder.feed(data) if decoder else data
    mtype, length, _ = struct.unpack("<III", buf[:12])
    assert mtype == USB_REDIR_HELLO, buf[:16]
    assert buf[12:12 + 64].startswith(b"qemu usb-redir guest"), buf[12:76]
    return buf


def check_agent(relay, target, lz4, qemu, name):
    agent = relayproto.connect_agent(relay.port, relay.secret, name, target,
                                     want_lz4=lz4)
    decoder = relayproto.Decoder() if lz4 else None
    read_qemu_hello(agent, decoder)
    hello = host_hello()
    off = qemu.stderr_offset()
    agent.sendall(relayproto.encode(hello) if lz4 else hello)
    qemu.wait_stderr(r"Peer version: redir-relay test host", timeout=20,
                     start_offset=off)
    agent.close()
    relay.wait_log(rf"agent '{name}' .* left target '{target}'")


def test(td):
    server_port = harness.free_port()
    client_port = harness.free_port()
    relay = relayharness.Relay(td)
    relay.start(relay.config({
        "dial": f"127.0.0.1:{server_port}",
        "wait": ("listen", f"127.0.0.1:{client_port}"),
    }))
    relay.wait_ready()
    qemu = harness.Qemu(td, slots=[("server", server_port),
                                   ("client", client_port)], paused=False)
    qemu.start()
    qemu.wait_listening(server_port)
    relay.wait_log(r"target wait: QEMU connected", timeout=20)
    for lz4 in (False, True):
        kind = "lz4" if lz4 else "raw"
        check_agent(relay, "dial", lz4, qemu, f"dial-{kind}")
        # QEMU redials (reconnect=1) after each session; an agent that
        # comes first waits for it.
        check_agent(relay, "wait", lz4, qemu, f"wait-{kind}")
    assert qemu.alive()
    qemu.stop()
    assert relay.stop() == 0


harness.main(test)
