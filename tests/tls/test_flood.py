#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Attack: a hostile client floods the relay with connections (hundreds a
second) that never finish their handshake, some silent, some half an AUTH
(or half a TLS ClientHello), to keep real agents out. The relay limits
unauthenticated connections per source and in total, separately from its
sessions, and drops them after handshake_timeout. Checked, for the relay in
shared-secret mode and with TLS: a real agent already attached keeps its
device, a real agent connecting during the flood gets in (the time is
printed), and the refusals are summarised in the log, not one line each."""
import os
import resource
import socket
import threading
import time

import tlsharness
import harness
import relayharness
import relayproto
import usbredirpeer
from harness import Agent, Fixture, diskimage

FLOOD_RATE = 400      # connections a second
FLOOD_SECONDS = 8
FLOOD_SOURCE = "127.0.0.66"


def flood(port, stop, stats, tls):
    """Opens FLOOD_RATE connections a second from FLOOD_SOURCE and keeps
    them open, each silent or with half a handshake."""
    held = []
    hello = (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(32)
             if tls else relayproto.MAGIC + b"A\x00\x40\x02")
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        next_at += 1.0 / FLOOD_RATE
        try:
            s = socket.socket()
            s.setblocking(False)
            s.bind((FLOOD_SOURCE, 0))
            s.connect_ex(("127.0.0.1", port))
            held.append(s)
            n += 1
            if n % 2:
                try:
                    s.send(hello[:len(hello) // 2 + 1])
                except OSError:
                    pass
        except OSError:
            stats["errors"] += 1
        if len(held) > 1500:  # the oldest are long refused or timed out
            for old in held[:500]:
                old.close()
            del held[:500]
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    stats["opened"] = n
    for s in held:
        s.close()


def usbredir_vm(conn, received):
    """A chardev that says a usbredir hello (so the agent starts) and then
    takes whatever comes."""
    usbredirpeer.Peer(conn).send_hello()
    conn.setblocking(True)
    while conn.recv(65536):
        pass


def relay_config(relay, certs, qemus, tls):
    keys = certs.tls_keys("relay") if tls else \
        f"secret_file = {relay.secret_path}\n"
    text = (f"[relay]\nlisten = 127.0.0.1:{relay.port}\nlog_level = info\n"
            f"handshake_timeout = 3\n{keys}\n")
    for name, q in qemus.items():
        text += f"[target.{name}]\nqemu = {q.address}\n"
    return text


def attempt(relay, certs, tls):
    """A real agent's connection; the seconds until it was accepted, or
    None if refused."""
    t = time.monotonic()
    try:
        s = relayproto.connect_agent(
            relay.port, None if tls else relay.secret, "desk-18", "vm2",
            tls=certs.client_context("desk-18") if tls else None, timeout=10)
    except (relayproto.ProtocolError, OSError):
        return None
    took = time.monotonic() - t
    ok = tlsharness.echo(s, b"still here") == b"still here"
    s.close()
    return took if ok else None


def run(td, fx, certs, tls):
    mode = "tls" if tls else "secret"
    q1 = relayharness.FakeQemu(handler=usbredir_vm)
    q2 = relayharness.FakeQemu()
    relay = relayharness.Relay(td, name=f"relay-{mode}")
    relay.start(relay_config(relay, certs, {"vm1": q1, "vm2": q2}, tls))
    relay.wait_ready()
    agent = Agent(td, fx, name=f"agent-{mode}")
    keys = certs.tls_keys("desk-17") if tls else \
        f"relay_secret_file = {relay.secret_path}\n"
    agent.start(f"[usb]\nconnect = 127.0.0.1:{relay.port}/vm1\n"
                f"transport = raw\n{keys}")
    agent.wait_log(r'"Emulated Disk" at 1-1: redirected rw')
    at = relay.log_offset()

    stop, stats = threading.Event(), {"errors": 0, "opened": 0}
    flooder = threading.Thread(target=flood,
                               args=(relay.port, stop, stats, tls))
    flooder.start()
    t0 = time.monotonic()
    time.sleep(2)  # the flood in full swing
    times = []  # a real agent connects once a second, with retries
    while time.monotonic() - t0 < FLOOD_SECONDS:
        took, tries = None, 0
        while took is None and tries < 10:
            tries += 1
            took = attempt(relay, certs, tls)
            if took is None:
                time.sleep(0.2)  # the agent's backoff
        times.append((tries, took))
        time.sleep(1)
    stop.set()
    flooder.join()
    rate = stats["opened"] / (time.monotonic() - t0)
    lines = relay.log_text(at).count("\n")
    print(f"{mode}: {stats['opened']} hostile connections ({rate:.0f}/s); "
          f"a real agent connecting during the flood: (attempts, seconds) "
          f"{[(n, t if t is None else round(t, 3)) for n, t in times]}; "
          f"{lines} relay log lines", flush=True)
    assert all(t is not None for _, t in times), "a real agent was kept out"
    assert rate > FLOOD_RATE / 2, stats
    assert lines < 40, f"{lines} log lines: refusals are not summarised"
    assert "left target 'vm1'" not in relay.log_text(at), \
        "the attached agent lost its session during the flood"
    assert q1.accepted == 1, "the attached agent reconnected"
    agent.stop()
    relay.stop()


def test(td):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    certs = tlsharness.certs(td)
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 1)
    fx = Fixture(td).start()
    fx.add("disk", img)
    run(td, fx, certs, tls=False)
    run(td, fx, certs, tls=True)


harness.main(test)
