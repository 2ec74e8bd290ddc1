#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Refused handshakes from one peer, in the log an admin reads: each
distinct reason (wrong secret, garbage, unknown target, a target another
agent holds) is logged when it first occurs and when it changes back;
its repeats are not lines of their own but summarised when the reason
changes ("handshakes refused 2 more times in 0 s: REASON"). Refusals for
a full relay are logged once for a burst, and all are counted in the
metrics."""
import os
import re
import socket
import urllib.request

import relayharness
import relayproto
from relayharness import harness

AUTH = (r"agent 'desk' \(127\.0\.0\.1:\d+\) refused for target vm1: not "
        r"authenticated: ")
GARBAGE = (r"agent 127\.0\.0\.1:\d+ refused: malformed handshake: no RDRL "
           r"magic")
UNKNOWN = r"agent 'desk' .* refused for target vm9: unknown target: "
BUSY = (r"agent 'desk' .* refused for target vm1: busy: target 'vm1' is in "
        r"use by agent 'holder'")
FULL = r"agent 127\.0\.0\.1:\d+ refused: busy: relay at its limit of 2 sessions"


def closing(n, reason):
    times = "time" if n == 1 else "times"
    return rf"handshakes refused {n} more {times} in \d+ s: {reason}$"


def bad_secret(relay):
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=15)
    got = relayproto.handshake(s, b"not-the-secret-at-all", "desk", "vm1")
    assert got[0] == 1, got
    s.close()


def garbage(relay):
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=15)
    assert relayproto.recv_message(s)[0] == b"H"
    s.sendall(os.urandom(64).replace(b"R", b"r"))
    assert relayproto.parse_result(relayproto.recv_message(s)[1])[0] == 4
    s.close()


def unknown_target(relay):
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=15)
    assert relayproto.handshake(s, relay.secret, "desk", "vm9")[0] == 2
    s.close()


def target_busy(relay):
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=15)
    assert relayproto.handshake(s, relay.secret, "desk", "vm1")[0] == 5
    s.close()


def relay_full(relay):
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=15)
    mtype, body, _ = relayproto.recv_message(s)
    assert mtype == b"R" and relayproto.parse_result(body)[0] == 5, mtype
    s.close()


def test(td):
    qemu = relayharness.FakeQemu()
    relay = relayharness.Relay(td)
    mport = harness.free_port()
    relay.start(relay.config({"vm1": qemu.address},
                             relay_extra=f"metrics_listen = 127.0.0.1:{mport}\n"
                             "max_sessions = 2\n"))
    relay.wait_ready()
    holder = relayproto.connect_agent(relay.port, relay.secret, "holder",
                                      "vm1")
    at = relay.log_offset()

    # Each step ends with a line that only it writes, so the log is read
    # once it is all there.
    steps = [(bad_secret, 3, AUTH), (garbage, 1, GARBAGE),
             (unknown_target, 2, UNKNOWN), (target_busy, 2, BUSY),
             (bad_secret, 1, AUTH)]
    for step, times, line in steps:
        for _ in range(times):
            step(relay)
        relay.wait_log(line, start_offset=at)
        at = relay.log_offset()
    log = relay.log_text()
    lines = [ln for ln in log.splitlines()
             if "refused" in ln and "metrics" not in ln]
    want = [AUTH, closing(2, "not authenticated from 127.0.0.1 for target vm1"),
            GARBAGE, UNKNOWN,
            closing(1, "unknown target from 127.0.0.1 for target vm9"), BUSY,
            closing(1, "busy from 127.0.0.1 for target vm1"), AUTH]
    assert len(lines) == len(want), "\n".join(lines)
    for ln, w in zip(lines, want):
        assert re.search(w, ln), (w, ln)
    print("relay log:\n  " + "\n  ".join(lines))

    # A full relay (holder + one silent handshake = max_sessions 2):
    # three refusals, one line.
    silent = socket.create_connection(("127.0.0.1", relay.port), timeout=15)
    relayproto.recv_message(silent)
    at = relay.log_offset()
    for _ in range(3):
        relay_full(relay)
    relay.wait_log(FULL, start_offset=at)
    silent.close()
    assert len(re.findall(FULL, relay.log_text(at))) == 1, relay.log_text(at)

    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics",
                                timeout=10) as r:
        text = r.read().decode()
    counts = dict(re.findall(
        r'^redir_relay_handshakes_refused_total\{reason="(\w+)"\} (\d+)$',
        text, re.M))
    assert counts == {"auth": "4", "target": "2", "version": "0",
                      "malformed": "1", "busy": "5", "unavailable": "0"}, \
        counts
    holder.close()
    relay.stop()


harness.main(test)
