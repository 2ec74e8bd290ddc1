#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Emulated disk -> agent (transport lz4) -> redir-relay -> QEMU usb-redir:
the firmware boots from the disk through the relay; the relay restarts and
the device comes back without touching the agent. An agent with the
wrong secret is refused, logs the relay's reason, and the relay opens no
connection to QEMU for it. The relay's metrics endpoint passes `promtool
check metrics` and counts the refusal (auth), the accepted handshake, the
bytes both ways and the compression ratio."""
import json
import os
import subprocess
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "relay"))
import relayharness  # noqa: E402
import harness  # noqa: E402
from harness import Agent, Fixture, Qemu, diskimage, free_port  # noqa: E402


def agent_config(relay, secret_path, transport="lz4"):
    return (f"[usb]\nconnect = 127.0.0.1:{relay.port}/vm1\n"
            f"transport = {transport}\nrelay_secret_file = {secret_path}\n"
            "agent_id = desk-17\nreconnect_max_ms = 300\n")


def check_metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                timeout=10) as r:
        text = r.read().decode()
    check = subprocess.run(["promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, (check.stdout, check.stderr, text)
    s = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            s[name] = float(value)
    assert s['redir_relay_handshakes_refused_total{reason="auth"}'] == 1, s
    assert s["redir_relay_handshakes_accepted_total"] == 1, s
    assert s['redir_relay_sessions{state="pumping"}'] == 1, s
    assert s['redir_relay_bytes_total{side="qemu",direction="out"}'] > 0, s
    assert s['redir_relay_bytes_total{side="agent",direction="in"}'] > 0, s
    assert s["redir_relay_compression_ratio"] > 0, s
    print(f"relay metrics: promtool OK; compression ratio "
          f"{s['redir_relay_compression_ratio']:.2f}")


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    fx.add("disk", img)
    qport = free_port()
    qemu = Qemu(td, slots=[("server", qport)], paused=False,
                usb_attach_wait_ms=4000)
    qemu.start()
    qemu.wait_listening(qport)
    relay = relayharness.Relay(td)
    mport = free_port()
    relay.start(relay.config({"vm1": f"127.0.0.1:{qport}"},
                             relay_extra=f"metrics_listen = 127.0.0.1:{mport}\n"))
    relay.wait_ready()

    # A wrong secret first: refused with a reason, nothing reaches QEMU.
    bad_secret = td.file("bad.secret")
    fd = os.open(bad_secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not-the-relay-secret-at-all\n")
    os.close(fd)
    bad = Agent(td, fx, name="agent-bad")
    bad.start(agent_config(relay, bad_secret))
    bad.wait_log(r'"Emulated Disk" at 1-1: relay 127\.0\.0\.1:\d+ refused us: '
                 r'.*secret')
    relay.wait_log(r"desk-17.*(secret|authentication)")
    bad.stop()
    assert qemu.info_usb() == [], "QEMU got a device from a refused agent"

    agent = Agent(td, fx)
    agent.start(agent_config(relay, relay.secret_path))
    agent.wait_log(r'"Emulated Disk" at 1-1: relay 127\.0\.0\.1:\d+ accepted '
                   r'us \(lz4\)')
    agent.wait_log(r'"Emulated Disk" at 1-1: redirected rw to 127\.0\.0\.1:'
                   rf'{relay.port} \(slot 1\)')
    qemu.wait_usb_devices(1)
    qemu.wait_boot(timeout=60)
    st = json.loads(subprocess.run(
        [agent.path, "status", "--json", "-c", agent.config_path],
        capture_output=True, text=True, timeout=10).stdout)
    session = next(d["session"] for d in st["usb"]["devices"] if d["session"])
    assert session["transport"] == "relay-lz4", session
    assert 0 < session["wire_bytes_to_peer"], session
    check_metrics(mport)

    # The relay restarts: the agent reconnects by itself, the VM gets the
    # device back.
    at = agent.log_offset()
    relay.stop()
    qemu.wait_usb_devices(0)
    relay2 = relayharness.Relay(td, name="relay2", port=relay.port,
                                secret=relay.secret)
    relay2.start(relay2.config({"vm1": f"127.0.0.1:{qport}"}))
    relay2.wait_ready()
    agent.wait_log(r'"Emulated Disk" at 1-1: redirected rw to 127\.0\.0\.1:'
                   rf'{relay.port} \(slot 1\)', start_offset=at)
    qemu.wait_usb_devices(1)
    agent.stop()
    qemu.wait_usb_devices(0)
    relay2.stop()


harness.main(test)
