#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The relay's Prometheus endpoint ([relay] metrics_listen) under a real
Prometheus server: with one agent session pumping 1 MiB each way and
handshakes refused for a wrong secret, an unknown target, garbage, a held
target and a target whose QEMU is down, `promtool check metrics` accepts
the page, and Prometheus, started by the test and scraping every second,
reports up == 1 and the series with the values the test caused (the
QEMU that is not there counted as a connect failure); a QEMU that stops
reading shows as backpressure pauses on the agent side. Other paths are
404."""
import os
import socket
import threading

import relayharness
import relayproto
from relayharness import harness

import prom  # noqa: E402 - relayharness puts tests/e2e on the path

MIB = 1 << 20


def refuse(relay, agent_id, target, secret=None):
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=15)
    status, _, text = relayproto.handshake(s, secret or relay.secret,
                                           agent_id, target)
    s.close()
    return status, text


def garbage(relay):
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=15)
    assert relayproto.recv_message(s)[0] == b"H"
    s.sendall(os.urandom(64).replace(b"R", b"r"))
    mtype, body, _ = relayproto.recv_message(s)
    s.close()
    return relayproto.parse_result(body)[0]


class StalledQemu:
    """A fake QEMU that reads nothing until go is set, then everything."""

    def __init__(self):
        self.go = threading.Event()

    def __call__(self, conn, received):
        self.go.wait(60)
        while conn.recv(1 << 18):
            pass


def test(td):
    qemu = relayharness.FakeQemu()
    relay = relayharness.Relay(td)
    mport = harness.free_port()
    down = f"127.0.0.1:{harness.free_port()}"  # nothing listens there
    stalled = StalledQemu()
    slow = relayharness.FakeQemu(handler=stalled)
    relay.start(relay.config({"vm1": qemu.address, "vm2": down,
                              "slow": slow.address},
                             relay_extra=f"metrics_listen = 127.0.0.1:{mport}\n"))
    relay.wait_ready()
    relay.wait_log(rf"metrics: Prometheus endpoint on "
                   rf"http://127\.0\.0\.1:{mport}/metrics")

    # What the series are to show: one session pumping, 1 MiB each way,
    # and one refusal of each of four reasons.
    agent = relayproto.connect_agent(relay.port, relay.secret, "desk-1", "vm1")
    payload = relayproto.random_data(MIB)
    assert relayharness.exchange(agent, payload) == payload
    assert refuse(relay, "desk-2", "vm1", b"not-the-secret-at-all")[0] == 1
    assert refuse(relay, "desk-3", "vm9")[0] == 2
    assert garbage(relay) == 4
    status, text = refuse(relay, "desk-4", "vm1")
    assert status == 5 and "in use by agent 'desk-1'" in text, (status, text)
    status, text = refuse(relay, "desk-5", "vm2")
    assert status == 6 and down in text, (status, text)

    def settled():
        s = prom.samples(prom.get(mport)[2])
        ok = (s['redir_relay_sessions{state="handshake"}'] == 0 and
              s['redir_relay_bytes_total{side="qemu",direction="out"}']
              == MIB)
        return s if ok else None
    s = harness.wait_for(settled, 20, "the refused sessions to end")
    prom.checked_samples(mport)
    assert prom.get(mport, "/")[0] == 404
    print(f"relay metrics: {len(s)} samples, promtool OK")

    server = prom.Prometheus(td, "relay", f"127.0.0.1:{mport}")
    try:
        server.wait('up{job="relay"}', {(): 1}, "up == 1")
        server.wait("redir_relay_sessions",
                  {(("state", "handshake"),): 0, (("state", "attaching"),): 0,
                   (("state", "pumping"),): 1}, "one session pumping")
        refused = server.query("redir_relay_handshakes_refused_total")
        want = {"auth": 1, "target": 1, "malformed": 1, "busy": 1,
                "version": 0, "unavailable": 1}
        assert refused == {(("reason", k),): v for k, v in want.items()}, \
            refused
        assert server.query("redir_relay_handshakes_accepted_total") == \
            {(): 1}
        got = server.query("redir_relay_bytes_total")
        assert got == {(("direction", d), ("side", side)): MIB
                       for side in ("agent", "qemu")
                       for d in ("in", "out")}, got
        assert server.query("redir_relay_compression_ratio") == {(): 1}
        assert server.query("redir_relay_qemu_connect_failures_total") == \
            {(): 1}
        print(f"Prometheus scraped the relay: refused {refused}")

        # a QEMU that stops reading: the relay stops reading its agent
        key = (("paused", "agent"),)
        before = prom.samples(prom.get(mport)[2])[
            'redir_relay_backpressure_pauses_total{paused="agent"}']
        agent2 = relayproto.connect_agent(relay.port, relay.secret, "desk-9",
                                          "slow")
        sender = threading.Thread(target=agent2.sendall,
                                  args=(bytes(16 * MIB),), daemon=True)
        sender.start()
        agent2.settimeout(60)
        server.wait('redir_relay_backpressure_pauses_total{paused="agent"}',
                  lambda got: got[key] > before,
                  "a backpressure pause")
        stalled.go.set()
        sender.join(30)
        assert not sender.is_alive(), "the relay did not read again"
        agent2.close()
        print(f"backpressure pauses (agent side): {before:g} before the "
              f"stalled QEMU, {server.query('redir_relay_backpressure_pauses_total')}")
    finally:
        server.stop()
    agent.close()
    relay.stop()


harness.main(test)
