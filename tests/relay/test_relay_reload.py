#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""SIGHUP reloads the relay's config: targets added, removed and changed
(their sessions closed), the others' sessions untouched, a rotated secret
applies to new handshakes, a bad file is refused and the old config stays.
As a daemon: detaches, --pidfile, systemd READY/RELOADING/STOPPING."""
import os
import signal
import socket
import subprocess

import relayharness
import relayproto
from relayharness import harness


def refused_status(relay, secret, agent_id, target):
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
    status, _, text = relayproto.handshake(s, secret, agent_id, target)
    s.close()
    return status, text


def test_reload(td):
    qa = relayharness.FakeQemu()
    qc = relayharness.FakeQemu()
    qd = relayharness.FakeQemu()
    b1, b2 = harness.free_port(), harness.free_port()
    relay = relayharness.Relay(td)
    relay.start(relay.config({"a": qa.address, "c": qc.address,
                              "b": ("listen", f"127.0.0.1:{b1}")}))
    relay.wait_ready()
    relay.wait_log(rf"target b: waiting for QEMU on 127\.0\.0\.1:{b1}")
    on_a = relayproto.connect_agent(relay.port, relay.secret, "tc-a", "a",
                                    want_lz4=True)
    dec = relayproto.Decoder()
    assert relayharness.exchange(on_a, b"x" * 999, dec) == b"x" * 999
    on_c = relayproto.connect_agent(relay.port, relay.secret, "tc-c", "c")

    # A bad file: refused, nothing changes.
    good_config = relay.config({"a": qa.address, "c": qc.address,
                                "b": ("listen", f"127.0.0.1:{b1}")})
    with open(relay.config_path, "w") as f:
        f.write(good_config + "[target.bad]\nmode = nope\n")
    off = relay.log_offset()
    relay.signal(signal.SIGHUP)
    relay.wait_log(rf"SIGHUP: {relay.config_path}:\d+: \[target.bad\] mode: "
                   rf"'nope' is not connect or listen; keeping the current "
                   rf"configuration", start_offset=off)
    assert relayharness.exchange(on_c, b"c" * 10) == b"c" * 10

    # c removed, b moved, d added, a kept; a new secret.
    old_secret = relay.secret
    relay.secret = os.urandom(20).hex().encode()
    with open(relay.secret_path, "wb") as f:
        f.write(relay.secret + b"\n")
    with open(relay.config_path, "w") as f:
        f.write(relay.config({"a": qa.address, "d": qd.address,
                              "b": ("listen", f"127.0.0.1:{b2}")},
                             log_level="info"))
    off = relay.log_offset()
    relay.signal(signal.SIGHUP)
    relay.wait_log(r"SIGHUP: configuration reloaded from .* \(3 targets: 1 "
                   r"kept, 2 closed, 2 opened\)", start_offset=off)
    relay.wait_log(r"agent 'tc-c' .* left target 'c' .*: its target was "
                   r"changed or removed by a reload", start_offset=off)
    on_c.settimeout(5)
    assert on_c.recv(10) == b""
    assert relayharness.exchange(on_a, b"y" * 999, dec) == b"y" * 999
    relay.wait_log(rf"target b: waiting for QEMU on 127\.0\.0\.1:{b2}",
                   start_offset=off)
    assert b2 in harness.listening_ports() and b1 not in \
        harness.listening_ports()

    assert refused_status(relay, old_secret, "tc-d", "d")[0] == 1
    assert refused_status(relay, relay.secret, "tc-c", "c")[0] == 2
    on_d = relayproto.connect_agent(relay.port, relay.secret, "tc-d", "d")
    assert relayharness.exchange(on_d, b"d" * 10) == b"d" * 10
    for s in (on_a, on_c, on_d):
        s.close()
    assert relay.stop() == 0


def test_daemon(td):
    relay = relayharness.Relay(td, name="daemon")
    notify_path = td.file("notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    pidfile = td.file("relay.pid")
    with open(relay.config_path, "w") as f:
        f.write(relay.config({"a": "127.0.0.1:4000"}))
    env = relayharness.relay_env()
    env["NOTIFY_SOCKET"] = notify_path
    r = subprocess.run([relay.path, "-c", relay.config_path, "--pidfile",
                        pidfile], env=env, timeout=10, capture_output=True,
                       text=True)
    assert r.returncode == 0, r  # the parent returns once detached
    assert notify.recv(256) == b"READY=1"
    pid = int(open(pidfile).read())
    assert os.path.exists(f"/proc/{pid}")
    os.kill(pid, signal.SIGHUP)
    assert notify.recv(256) == b"RELOADING=1"
    assert notify.recv(256) == b"READY=1"
    os.kill(pid, signal.SIGTERM)
    assert notify.recv(256) == b"STOPPING=1"
    harness.wait_for(lambda: not os.path.exists(pidfile), 5,
                     "the pidfile to go")


def test(td):
    test_reload(td)
    test_daemon(td)


harness.main(test)
