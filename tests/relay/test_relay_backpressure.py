#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Backpressure both ways: a QEMU that does not read makes the relay stop
reading the agent (even when lz4 frames expand 240 times), an agent that
does not read makes it stop reading QEMU; the relay's memory stays bounded,
and every byte arrives once the slow side reads again."""
import threading
import time

import relayharness
import relayproto
from relayharness import harness

MIB = 1 << 20
OFFERED = 1024 * MIB  # what the fast side pushes at the stalled one
RSS_GROWTH_MAX_KIB = 48 * 1024


class StalledQemu:
    """Fake QEMU handler: reads nothing until go is set, then counts."""

    def __init__(self, send=0):
        self.go = threading.Event()
        self.total = 0
        self.nonzero = 0
        self.send = send
        self.done = threading.Event()

    def __call__(self, conn, received):
        if self.send:
            block = relayproto.random_data(MIB)
            for _ in range(self.send // MIB):
                conn.sendall(block)
            self.done.set()
            conn.recv(1)
            return
        self.go.wait(60)
        while True:
            data = conn.recv(1 << 18)
            if not data:
                return
            self.total += len(data)
            if data.strip(b"\0"):
                self.nonzero += 1
            if self.total >= OFFERED:
                self.done.set()


def test(td):
    h1 = StalledQemu()
    q1 = relayharness.FakeQemu(handler=h1)
    h2 = StalledQemu(send=OFFERED // 8)
    q2 = relayharness.FakeQemu(handler=h2)
    relay = relayharness.Relay(td)
    relay.start(relay.config({"in": q1.address, "out": q2.address},
                             "session_buffer = 64K\n", log_level="info"))
    relay.wait_ready()
    base = relay.rss_kib()

    # Agent -> stalled QEMU, lz4 frames of zeros: 64 KiB decode from ~270
    # bytes, so the whole 1 GiB is ~4 MiB on the wire, which the kernel's
    # socket buffers may well hold: the relay's memory is what tells.
    agent = relayproto.connect_agent(relay.port, relay.secret, "fast", "in",
                                     want_lz4=True)
    frame = relayproto.encode(bytes(relayproto.MAX_CHUNK))
    assert len(frame) < 400, len(frame)
    count = OFFERED // relayproto.MAX_CHUNK
    sent = threading.Event()
    threading.Thread(target=lambda: (agent.sendall(frame * count), sent.set()),
                     daemon=True).start()
    time.sleep(2)
    grown = relay.rss_kib() - base
    assert grown < RSS_GROWTH_MAX_KIB, f"relay grew by {grown} KiB"
    h1.go.set()
    assert h1.done.wait(60), f"QEMU got {h1.total} of {OFFERED} bytes"
    assert h1.total == OFFERED and h1.nonzero == 0, (h1.total, h1.nonzero)
    assert sent.wait(10)
    print(f"agent->QEMU: {OFFERED // MIB} MiB offered to a stalled QEMU, "
          f"relay RSS grew {grown // 1024} MiB")

    # QEMU -> stalled agent: QEMU writes 128 MiB of random bytes nobody
    # reads: it must be left blocked.
    base = relay.rss_kib()
    agent2 = relayproto.connect_agent(relay.port, relay.secret, "slow", "out")
    time.sleep(2)
    grown = relay.rss_kib() - base
    assert not h2.done.is_set(), "the relay took everything from QEMU"
    assert grown < RSS_GROWTH_MAX_KIB, f"relay grew by {grown} KiB"
    total = 0
    agent2.settimeout(30)
    while total < OFFERED // 8:
        data = agent2.recv(1 << 18)
        assert data, f"closed after {total} bytes"
        total += len(data)
    assert total == OFFERED // 8 and h2.done.wait(10)
    print(f"QEMU->agent: {OFFERED // 8 // MIB} MiB offered to a stalled agent, "
          f"relay RSS grew {grown // 1024} MiB")
    agent.close()
    agent2.close()
    assert relay.stop() == 0


harness.main(test)
