#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The agent's metrics for what tests/e2e/test_metrics.py does not cause:
a redirected disk whose usbredir peer goes away and comes back counts one
disconnect and one reconnect; a serial port with a network client counts
the client and its bytes. `promtool check metrics` accepts the page."""
import os
import sys

import controlharness  # noqa: F401 - puts tests/e2e on the path
from controlharness import harness
from harness import Agent, Fixture, diskimage, free_port, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(controlharness.HERE),
                                "serial"))
import serial_harness as sh  # noqa: E402
import usbredirpeer as ur  # noqa: E402
import prom  # noqa: E402


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 4)
    fx = Fixture(td).start()
    port, mport, sport = free_port(), free_port(), free_port()
    lis = ur.Listener(port)
    pty = sh.Pty(td.file("dev-a"))
    agent = Agent(td, fx)
    agent.start(f"[agent]\nmetrics_listen = 127.0.0.1:{mport}\n"
                f"control_socket = {td.file('agent.sock')}\n"
                f"[usb]\nconnect = 127.0.0.1:{port}\nreconnect_max_ms = 300\n"
                + sh.port_section("a", pty.link, listen=sport))
    fx.add("disk", img)
    peer = lis.accept(15)
    peer.handshake(timeout=10)
    agent.wait_log(r'"Emulated Disk" at 1-1: redirected rw to')

    # the peer goes away and comes back: one disconnect, one reconnect
    at = agent.log_offset()
    peer.close()
    peer = lis.accept(15)
    peer.handshake(timeout=10)
    agent.wait_log(r'"Emulated Disk" at 1-1: redirected rw to',
                   start_offset=at)

    client = sh.connect(sport)
    agent.wait_log(r"\[serial.a\] .*client 127.0.0.1:\d+ connected")
    payload = bytes(range(256)) * 16
    client.sendall(payload)
    assert pty.read_exact(len(payload)) == payload

    s = wait_for(lambda: (lambda m: m if m["redir_agent_usb_reconnects_total"]
                          == 1 else None)(prom.checked_samples(mport)), 10,
                 "the reconnect in the metrics")
    assert s["redir_agent_usb_redirects_total"] == 2, s
    assert s["redir_agent_usb_disconnects_total"] == 1, s
    assert s['redir_agent_usb_sessions{state="redirected"}'] == 1, s
    assert s["redir_agent_serial_ports"] == 1, s
    assert s["redir_agent_serial_devices_open"] == 1, s
    assert s["redir_agent_serial_clients"] == 1, s
    assert s['redir_agent_serial_client_bytes{port="a",'
             'direction="from_client"}'] == len(payload), s
    print("agent metrics: " + ", ".join(
        f"{k} {v:g}" for k, v in s.items()
        if "reconnect" in k or "disconnect" in k or "serial" in k))

    client.close()
    wait_for(lambda: prom.checked_samples(mport)[
        "redir_agent_serial_clients"] == 0 or None,
        10, "the client gone from the metrics")
    agent.stop()
    peer.close()


harness.main(test)
