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
import json
import os
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request

import relayharness
import relayproto
from relayharness import harness

MIB = 1 << 20


def scrape(port, path="/metrics"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


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


class Prometheus:
    """A real Prometheus server scraping the relay every second."""

    def __init__(self, td, target):
        self.web = harness.free_port()
        conf = td.write("prometheus.yml",
                        "global:\n  scrape_interval: 1s\nscrape_configs:\n"
                        "  - job_name: relay\n    static_configs:\n"
                        f"      - targets: ['{target}']\n")
        self.proc = subprocess.Popen(
            [shutil.which("prometheus"), f"--config.file={conf}",
             f"--storage.tsdb.path={td.file('tsdb')}",
             f"--web.listen-address=127.0.0.1:{self.web}"],
            stdout=open(td.file("prometheus.log"), "wb"),
            stderr=subprocess.STDOUT, env=harness.clean_env())

    def query(self, expr):
        """{labels-as-tuple: value} for an instant query, or None if
        Prometheus is not answering yet."""
        url = (f"http://127.0.0.1:{self.web}/api/v1/query?query="
               + urllib.parse.quote(expr))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                res = json.load(r)["data"]["result"]
        except OSError:
            return None
        return {tuple(sorted((k, v) for k, v in r["metric"].items()
                             if k not in ("__name__", "job", "instance"))):
                float(r["value"][1]) for r in res}

    def wait(self, expr, want, what):
        """Waits until the query gives want ({labels: value}, or a
        predicate of it)."""
        last = [None]

        def check():
            last[0] = self.query(expr)
            if callable(want):
                return last[0] and want(last[0]) or None
            return last[0] == want or None
        try:
            return harness.wait_for(check, 60, f"Prometheus: {what}", 0.5)
        except TimeoutError:
            raise AssertionError(f"Prometheus: {what}: {expr} is {last[0]}; "
                                 f"targets: {self.targets()}")

    def targets(self):
        url = f"http://127.0.0.1:{self.web}/api/v1/targets"
        with urllib.request.urlopen(url, timeout=5) as r:
            return [(t["health"], t["lastError"])
                    for t in json.load(r)["data"]["activeTargets"]]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


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
        s = samples(scrape(mport)[1])
        ok = (s['redir_relay_sessions{state="handshake"}'] == 0 and
              s['redir_relay_bytes_total{side="qemu",direction="out"}']
              == MIB)
        return s if ok else None
    s = harness.wait_for(settled, 20, "the refused sessions to end")
    status, text = scrape(mport)
    assert status == 200
    check = subprocess.run(["promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, (check.stdout, check.stderr, text)
    assert scrape(mport, "/")[0] == 404
    print(f"relay metrics: {len(s)} samples, promtool OK")

    prom = Prometheus(td, f"127.0.0.1:{mport}")
    try:
        prom.wait('up{job="relay"}', {(): 1}, "up == 1")
        prom.wait("redir_relay_sessions",
                  {(("state", "handshake"),): 0, (("state", "attaching"),): 0,
                   (("state", "pumping"),): 1}, "one session pumping")
        refused = prom.query("redir_relay_handshakes_refused_total")
        want = {"auth": 1, "target": 1, "malformed": 1, "busy": 1,
                "version": 0, "unavailable": 1}
        assert refused == {(("reason", k),): v for k, v in want.items()}, \
            refused
        assert prom.query("redir_relay_handshakes_accepted_total") == \
            {(): 1}
        got = prom.query("redir_relay_bytes_total")
        assert got == {(("direction", d), ("side", side)): MIB
                       for side in ("agent", "qemu")
                       for d in ("in", "out")}, got
        assert prom.query("redir_relay_compression_ratio") == {(): 1}
        assert prom.query("redir_relay_qemu_connect_failures_total") == \
            {(): 1}
        print(f"Prometheus scraped the relay: refused {refused}")

        # a QEMU that stops reading: the relay stops reading its agent
        key = (("paused", "agent"),)
        before = samples(scrape(mport)[1])[
            'redir_relay_backpressure_pauses_total{paused="agent"}']
        agent2 = relayproto.connect_agent(relay.port, relay.secret, "desk-9",
                                          "slow")
        sender = threading.Thread(target=agent2.sendall,
                                  args=(bytes(16 * MIB),), daemon=True)
        sender.start()
        agent2.settimeout(60)
        prom.wait('redir_relay_backpressure_pauses_total{paused="agent"}',
                  lambda got: got[key] > before,
                  "a backpressure pause")
        stalled.go.set()
        sender.join(30)
        assert not sender.is_alive(), "the relay did not read again"
        agent2.close()
        print(f"backpressure pauses (agent side): {before:g} before the "
              f"stalled QEMU, {prom.query('redir_relay_backpressure_pauses_total')}")
    finally:
        prom.stop()
    agent.close()
    relay.stop()


harness.main(test)
