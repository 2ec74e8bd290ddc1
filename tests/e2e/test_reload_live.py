#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A reload applies what changed and leaves the rest running: while a
usbredir peer reads the redirected disk in a loop (slot 1) and a serial
client streams through [serial.a], `redir-agent reload` changes slot 2's
address, [serial.b]'s line settings and adds [serial.c]. The disk's reads
go on without an error or a reconnect, serial.a's client keeps its
connection and its bytes, serial.b runs with the new line, serial.c
exists."""
import json
import os
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "serial"))
import harness  # noqa: E402
from harness import Agent, Fixture, diskimage, free_port, wait_for  # noqa: E402
import serial_harness as sh  # noqa: E402
import usbredirpeer as ur  # noqa: E402


def config(p1, p2, ptys, ports, line_b):
    return (f"[usb]\nconnect = 127.0.0.1:{p1}, 127.0.0.1:{p2}\n"
            "reconnect_max_ms = 300\n" +
            sh.port_section("a", ptys["a"].link, listen=ports["a"]) +
            sh.port_section("b", ptys["b"].link, listen=ports["b"],
                            line=line_b))


class Reader(threading.Thread):
    """READ(10) in a loop through the usbredir peer until stopped."""

    def __init__(self, peer):
        super().__init__(daemon=True)
        self.disk = ur.BulkOnly(peer, 0x02, 0x81)
        self.reads, self.error, self.stop = 0, None, False

    def run(self):
        try:
            while not self.stop:
                r = self.disk.read10(self.reads % 64, 8, timeout=10)
                assert r.csw and r.csw.status == 0, r
                self.reads += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 4)
    fx = Fixture(td).start()
    fx.add("disk", img)
    p1, p2, p3 = free_port(), free_port(), free_port()
    lis = ur.Listener(p1)
    ptys = {n: sh.Pty(td.file(f"dev-{n}")) for n in "abc"}
    ports = {n: free_port() for n in "abc"}
    agent = Agent(td, fx)
    agent.start(config(p1, p2, ptys, ports, "9600 8N1"))
    peer = lis.accept(15)
    peer.handshake(timeout=10)
    reader = Reader(peer)
    reader.start()
    wait_for(lambda: reader.reads >= 20 or reader.error, 20, "disk reads")
    client = sh.connect(ports["a"])
    agent.wait_log(r"\[serial.a\] .*client 127.0.0.1:\d+ connected")
    client.sendall(b"before")
    assert ptys["a"].read_exact(6) == b"before"

    at, reads_before = agent.log_offset(), reader.reads
    with open(agent.config_path, "w") as f:
        f.write(config(p1, p3, ptys, ports, "19200 8N1") +
                sh.port_section("c", ptys["c"].link, listen=ports["c"]) +
                f"[agent]\ncontrol_socket = {agent.control_socket}\n")
    r = subprocess.run([agent.path, "reload", "--socket",
                        agent.control_socket], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0 and "reloaded" in r.stdout, r
    wait_for(lambda: reader.reads >= reads_before + 20 or reader.error, 20,
             "disk reads after the reload")
    assert reader.error is None, f"disk reads failed: {reader.error!r}"
    client.sendall(b"after")
    assert ptys["a"].read_exact(5) == b"after"
    # (device -> client is not checked here: under the umockdev preload
    # the agent's reads of a pty stall now and then; tests/serial covers
    # that direction without the preload)
    log = agent.log_text(at)
    assert "[serial.a]" not in log or "disconnected" not in log, log
    assert "redirected" not in log, f"the disk was redirected again:\n{log}"
    assert "handing the device back" not in log, log
    st = subprocess.run([agent.path, "status", "--json", "--socket",
                         agent.control_socket], capture_output=True,
                        text=True, timeout=20)
    s = json.loads(st.stdout)
    serial = {p["name"]: p for p in s["serial"]}
    assert serial["a"]["client"] and serial["a"]["bytes_from_client"] == 11, \
        serial["a"]
    assert serial["b"]["line"].startswith("19200 8N1"), serial["b"]
    assert "c" in serial, serial
    slots = [x["endpoint"] for x in s["usb"]["slots"]]
    assert slots == [f"127.0.0.1:{p1}", f"127.0.0.1:{p3}"], slots
    reader.stop = True
    reader.join(15)
    print(f"{reader.reads} disk reads, {reads_before} before the reload; "
          "serial.a kept its client")
    client.close()
    agent.stop()
    peer.close()


harness.main(test)
