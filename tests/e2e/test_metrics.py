#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The agent's Prometheus endpoint ([agent] metrics_listen): with a disk
redirected to QEMU and a keyboard kept local, /metrics passes `promtool check
metrics` and says so (devices by decision, sessions by state, redirects,
bytes); other paths are 404, garbage is 400; a real Prometheus server
scrapes it once and has the samples."""
import socket

import harness
import prom
from harness import Agent, Fixture, Qemu, diskimage, free_port, wait_for


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    port, mport = free_port(), free_port()
    qemu = Qemu(td, slots=[("server", port)], paused=False)
    qemu.start()
    qemu.wait_listening(port)
    agent = Agent(td, fx)
    agent.start(f"[agent]\nmetrics_listen = 127.0.0.1:{mport}\n"
                f"[usb]\nconnect = 127.0.0.1:{port}\n")
    agent.wait_log(rf"metrics: Prometheus endpoint on "
                   rf"http://127\.0\.0\.1:{mport}/metrics")
    fx.add("keyboard")
    fx.add("disk", img)
    qemu.wait_usb_devices(1)

    status, ctype, text = prom.get(mport)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), \
        (status, ctype)
    prom.promtool_check(text)
    s = prom.samples(text)
    assert s['redir_agent_usb_devices{decision="redirect"}'] == 1, s
    assert s['redir_agent_usb_devices{decision="local"}'] >= 1, s
    assert s['redir_agent_usb_sessions{state="redirected"}'] == 1, s
    assert s["redir_agent_usb_redirects_total"] == 1, s
    assert s["redir_agent_usb_running"] == 1, s
    assert s['redir_agent_usb_bytes_total{direction="to_peer"}'] > 0, s
    print(f"metrics: {len(s)} samples, promtool OK")

    assert prom.get(mport, "/")[0] == 404
    with socket.create_connection(("127.0.0.1", mport), timeout=10) as c:
        c.sendall(b"\x16\x03\x01 not http\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.0 400")

    server = prom.Prometheus(td, "agent", f"127.0.0.1:{mport}")
    try:
        res = server.wait("redir_agent_usb_devices",
                          lambda r: r.get((("decision", "redirect"),)) == 1,
                          "the agent scraped: one device redirected")
    finally:
        server.stop()
    print(f"Prometheus scraped: {res}")
    agent.stop()


harness.main(test)
