#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A reload applies what changed and leaves the rest running: while a
usbredir peer reads the redirected disk in a loop (slot 1) and a serial
client streams bytes through [serial.a] without a pause, SIGHUP changes
slot 2's address, [serial.b]'s line settings and adds [serial.c]. Every
disk read before, during and after the reload returns the image's bytes,
with no error or reconnect; serial.a's client keeps its connection and
every byte it sent reaches the device in order; serial.b runs with the
new line, serial.c exists."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

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


PATTERN_SECTORS = 72  # the reader's LBAs 0..63, 8 sectors each


class Reader(threading.Thread):
    """READ(10) in a loop through the usbredir peer until stopped, each
    read checked against the image's bytes."""

    def __init__(self, peer, image):
        super().__init__(daemon=True)
        self.disk = ur.BulkOnly(peer, 0x02, 0x81)
        self.image = image
        self.reads, self.error, self.stop = 0, None, False

    def run(self):
        try:
            while not self.stop:
                lba = self.reads % 64
                r = self.disk.read10(lba, 8, timeout=10)
                assert r.csw and r.csw.status == 0, r
                want = self.image[lba * 512:(lba + 8) * 512]
                assert r.data == want, f"read {self.reads} (LBA {lba}) differs"
                self.reads += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


class Streamer(threading.Thread):
    """Sends a known byte sequence to a serial client socket in small
    pieces, without a pause, until stopped; .sent is what went out."""

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock, self.sent, self.stop, self.error = sock, bytearray(), \
            False, None

    def run(self):
        n = 0
        try:
            while not self.stop:
                piece = b"".join(b"%08d\n" % (n + i) for i in range(32))
                self.sock.sendall(piece)
                self.sent += piece
                n += 32
                time.sleep(0.005)
        except OSError as e:
            self.error = e


class Drain(threading.Thread):
    """Reads everything the device side of a pty gets."""

    def __init__(self, pty):
        super().__init__(daemon=True)
        self.pty, self.got, self.stop = pty, bytearray(), False

    def run(self):
        while not self.stop:
            try:
                self.got += self.pty.read_exact(1, timeout=0.2)
                self.got += os.read(self.pty.master, 65536)
            except (TimeoutError, BlockingIOError):
                pass


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 4)
    with open(img, "r+b") as f:  # every sector the reader reads differs
        f.write(os.urandom(PATTERN_SECTORS * 512))
    with open(img, "rb") as f:
        image = f.read(PATTERN_SECTORS * 512)
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
    reader = Reader(peer, image)
    reader.start()
    wait_for(lambda: reader.reads >= 20 or reader.error, 20, "disk reads")
    client = sh.connect(ports["a"])
    agent.wait_log(r"\[serial.a\] .*client 127.0.0.1:\d+ connected")
    drain = Drain(ptys["a"])
    drain.start()
    streamer = Streamer(client)
    streamer.start()
    wait_for(lambda: len(drain.got) >= 4096, 20, "serial bytes flowing")

    at, reads_before = agent.log_offset(), reader.reads
    with open(agent.config_path, "w") as f:
        f.write(config(p1, p3, ptys, ports, "19200 8N1") +
                sh.port_section("c", ptys["c"].link, listen=ports["c"]) +
                f"[agent]\ncontrol_socket = {agent.control_socket}\n")
    serial_before = len(drain.got)
    os.kill(agent.pid, signal.SIGHUP)
    agent.wait_log(r"SIGHUP: configuration reloaded from", start_offset=at)
    wait_for(lambda: reader.reads >= reads_before + 20 or reader.error, 20,
             "disk reads after the reload")
    assert reader.error is None, f"disk reads failed: {reader.error!r}"
    wait_for(lambda: len(drain.got) >= serial_before + 8192, 20,
             "serial bytes after the reload")
    streamer.stop = True
    streamer.join(10)
    assert streamer.error is None, f"serial client: {streamer.error!r}"
    wait_for(lambda: len(drain.got) >= len(streamer.sent), 20,
             "the last serial bytes")
    drain.stop = True
    drain.join(5)
    assert bytes(drain.got) == bytes(streamer.sent), \
        (f"serial.a: {len(drain.got)} bytes arrived of "
         f"{len(streamer.sent)} sent, or not in order")
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
    assert serial["a"]["client"] and \
        serial["a"]["bytes_from_client"] == len(streamer.sent), serial["a"]
    assert serial["b"]["line"].startswith("19200 8N1"), serial["b"]
    assert "c" in serial, serial
    slots = [x["endpoint"] for x in s["usb"]["slots"]]
    assert slots == [f"127.0.0.1:{p1}", f"127.0.0.1:{p3}"], slots
    reader.stop = True
    reader.join(15)
    print(f"{reader.reads} disk reads checked, {reads_before} before the "
          f"reload; serial.a kept its client and passed "
          f"{len(streamer.sent)} bytes intact, {serial_before} before the "
          "reload")
    client.close()
    agent.stop()
    peer.close()


harness.main(test)
