#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""transport = lz4 on a serial port through redir-relay (issue 15: "optional
LZ4 as USB"): the relay agrees, the guest's settings follow, 1 MiB of
text-like data (0x00 and 0xff in it) and 256 KiB of random bytes pass
each way byte-exact, and the relay counts fewer bytes on the wire than it
delivered (the frames were compressed both ways). Then a relay written
from the protocol's description (tests/relay/relayproto.py) sends what a
real one would not: a frame that decodes to a whole 64 KiB (the most the
agent's buffer holds), a raw frame cut in pieces, and a corrupt frame
(failure answered: a broken or hostile relay crashes the agent or corrupts
the device's data); the agent ends that session with a clear reason and
dials again; so do an oversized frame, an lz4 block that does not decode
and one that claims too much. What the agent still holds when its
adapter goes (output suspended by the relay) leaves framed at the close.
lz4 without a relay target is a config error."""
import os
import re
import socket
import struct
import subprocess
import termios
import threading
import time

import relay_guest as rg
import serial_harness as sh
from serial_harness import harness
import relayharness  # noqa: E402  (paths set by relay_guest)
import relayproto  # noqa: E402

TEXT = 1 << 20
RANDOM = 256 * 1024
REDIAL = "reconnect_min_ms = 50\nreconnect_max_ms = 300\n"


def text_payload(n, seed):
    """Compressible bytes with 0x00 and 0xff among them."""
    data = bytearray(relayproto.text_data(n, seed))
    for i in range(0, n, 1000):
        data[i] = 0xff
    for i in range(500, n, 1000):
        data[i] = 0
    return bytes(data)


def exchange(guest, phys, to_port, to_guest, what):
    got_guest, got_port = rg.pump_fds(guest, phys.master, to_port, to_guest)
    assert got_port == to_port, f"{what}: guest -> port corrupted"
    assert got_guest == to_guest, f"{what}: port -> guest corrupted"


def kept_while_away(agent, guest, phys):
    """on_device_loss = keep with lz4: frames that arrive while the
    adapter is away wait undecoded (the agent stops reading the relay),
    then reach the replugged port in order."""
    agent.wait_log(r"\[serial.com2\] .*the relay agreed to lz4")
    off = agent.log_offset()
    phys.unplug()
    agent.wait_log(r"\[serial.com2\] .*kept while", start_offset=off)
    held = text_payload(192 * 1024, 7) + sh.random_payload(64 * 1024, 8)
    rg.write_all(guest, held, timeout=20)
    time.sleep(0.3)
    phys.plug()
    got = phys.read_exact(len(held), timeout=20)
    assert got == held, "what waited for the adapter was corrupted"
    assert phys.read_for(0.3) == b"", "extra bytes after what waited"
    print(f"keep: {len(held) // 1024} KiB sent while the adapter was away "
          "reached it byte-exact")


def real_relay(td):
    relay = relayharness.Relay(td)
    path = td.file("com1")
    relay.start(f"[relay]\nlisten = 127.0.0.1:{relay.port}\n"
                f"secret_file = {relay.secret_path}\nlog_level = debug\n"
                f"[target.com1]\nkind = serial\ntty = pty\npath = {path}\n"
                f"[target.com2]\nkind = serial\ntty = pty\npath = {path}-2\n")
    relay.wait_ready()
    guest = rg.open_guest(path)
    phys = sh.Pty(td.file("com1-dev"))
    guest2, phys2 = rg.open_guest(path + "-2"), sh.Pty(td.file("com2-dev"))
    agent = sh.SerialAgent(td).start(sh.port_section(
        "com1", phys.link, connect=f"{relay.port}/com1",
        relay_secret_file=relay.secret_path, transport="lz4") + REDIAL +
        sh.port_section("com2", phys2.link, connect=f"{relay.port}/com2",
                        relay_secret_file=relay.secret_path, transport="lz4",
                        on_device_loss="keep"))
    agent.wait_log(r"\[serial.com1\] .*the relay agreed to lz4")
    relay.wait_log(r"attached to target 'com1' \(.*, lz4\)")
    rg.guest_set(guest, termios.B9600, termios.CS8 | termios.CSTOPB)
    rg.wait_port(phys, 9600, True)
    rg.guest_set(guest, termios.B115200, termios.CS8)
    rg.wait_port(phys, 115200, False)
    exchange(guest, phys, text_payload(TEXT, 3), text_payload(TEXT, 4),
             "text over lz4")
    exchange(guest, phys, sh.random_payload(RANDOM, 5),
             sh.random_payload(RANDOM, 6), "random over lz4")
    kept_while_away(agent, guest2, phys2)

    # the adapter goes: the agent ends the session and the relay counts
    off = relay.log_offset()
    phys.unplug()
    m = relay.wait_log(r"left target 'com1' .*agent->QEMU (\d+) bytes "
                       r"\((\d+) on the wire\), QEMU->agent (\d+) bytes "
                       r"\((\d+) on the wire\)", start_offset=off)
    raw_in, wire_in, raw_out, wire_out = map(int, m.groups())
    assert "bad lz4 stream" not in relay.log_text(off), \
        relay.log_text(off)[-600:]
    sent = TEXT + RANDOM
    assert raw_in >= sent and raw_out >= sent, m.group(0)
    print(f"wire/raw: agent->relay {wire_in / raw_in:.2f}, relay->agent "
          f"{wire_out / raw_out:.2f} (1 MiB text + 256 KiB random each way)")
    assert wire_in < 0.75 * raw_in and wire_out < 0.75 * raw_out, \
        "the frames were not compressed"
    relay.stop()  # first: see test_relay_paths.py
    agent.stop()
    os.close(guest)
    os.close(guest2)


class FakeRelay:
    """One relay session at a time, from relayproto: HELLO offering lz4,
    the agent's AUTH checked, an accepting RESULT with its PROOF, then
    script(sock) sends the frames."""

    def __init__(self, secret, script):
        self.secret, self.script = secret, script
        self.sock = socket.socket()
        # a small window: an agent that is not read backs up soon
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.sessions = 0
        self.conn, self.done = None, False
        self.received = []
        self.error = None
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                self.session(c)
            except Exception as e:  # reported by the test
                self.error = e
            finally:
                c.close()

    def session(self, c):
        c.settimeout(20)
        hello = relayproto.message(
            b"H", struct.pack(">BBIB", 1, relayproto.VERSION,
                              relayproto.CAP_LZ4, relayproto.NONCE_LEN) +
            os.urandom(relayproto.NONCE_LEN))
        c.sendall(hello)
        mtype, body, auth = relayproto.recv_message(c)
        assert mtype == b"A", mtype
        assert struct.unpack(">I", body[1:5])[0] & relayproto.CAP_LZ4, \
            "the agent did not ask for lz4"
        c.sendall(relayproto.accept_message(self.secret, hello, auth,
                                            relayproto.CAP_LZ4))
        self.sessions += 1
        self.conn = c
        self.done = False
        dec = relayproto.Decoder()
        got = bytearray()
        self.received.append(got)
        self.stream = bytearray()  # the agent's bytes, unframed
        self.script(c, self.sessions)
        while True:  # the agent's frames, until it closes
            chunk = c.recv(65536)
            if not chunk:
                self.done = True
                return
            got += dec.feed(chunk)
            self.stream = got


def fake_relay(td):
    zeros = bytes(relayproto.MAX_CHUNK)         # one frame, 64 KiB decoded
    tail = b"\x00raw frame in pieces\xff\xff"   # 0xff doubled: telnet IAC
    raw = relayproto.encode(tail, compress=False)

    # sessions 2-4: a frame longer than any chunk, an lz4 block that
    # does not decode, an lz4 frame claiming more than a chunk
    bad = {2: bytes([relayproto.RAW]) + (relayproto.MAX_CHUNK + 1).to_bytes(
               3, "little"),
           3: bytes([relayproto.LZ4]) + (16).to_bytes(3, "little") +
               (1000).to_bytes(3, "little") + b"\xff" * 16,
           4: bytes([relayproto.LZ4]) + (16).to_bytes(3, "little") +
               (relayproto.MAX_CHUNK + 1).to_bytes(3, "little") + bytes(16)}

    def script(c, n):
        if n in bad:
            c.sendall(bad[n])
        if n > 1:
            return
        c.sendall(relayproto.encode(zeros))
        c.sendall(raw[:3])
        time.sleep(0.1)
        c.sendall(raw[3:10])
        time.sleep(0.1)
        c.sendall(raw[10:])
        time.sleep(0.5)
        c.sendall(b"\x42corrupt")                # no such frame kind

    secret = os.urandom(24).hex().encode()
    secret_path = td.file("fake.secret")
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, secret + b"\n")
    os.close(fd)
    relay = FakeRelay(secret, script)
    phys = sh.Pty(td.file("fake-dev"))
    agent = sh.SerialAgent(td, name="agent-fake").start(sh.port_section(
        "fake", phys.link, connect=f"{relay.port}/com9",
        relay_secret_file=secret_path, transport="lz4") + REDIAL)
    agent.wait_log(r"\[serial.fake\] .*the relay agreed to lz4")
    got = phys.read_exact(len(zeros) + len(tail) - 1, timeout=20)
    assert got == zeros + b"\x00raw frame in pieces\xff", got[-40:]
    print("a 64 KiB frame and a raw frame in pieces reached the port intact")
    m = harness.wait_for(lambda: re.findall(
        r"\[serial.fake\] .*disconnected \((bad lz4 stream from the relay: "
        r"[^)]+)\)", agent.log_text()) if relay.sessions >= 5 else None, 60,
        "four corrupt streams and a fifth session")
    assert len(m) == 4, m
    print("\n".join(f"  {why}" for why in m))
    assert relay.error is None, relay.error
    # what the agent sent (its telnet offers) came in valid frames
    assert relay.received[0].startswith(b"\xff"), relay.received[0][:16]
    print("each corrupt frame ended its session with a reason; the agent "
          "dialed again")
    # the fake relay goes first (an agent stopped with a session open may
    # leak its lingering connection under LSan: see the report)
    off = agent.log_offset()
    relay.sock.close()
    relay.conn.shutdown(socket.SHUT_RDWR)
    agent.wait_log(r"\[serial.fake\] .*disconnected", start_offset=off)
    agent.stop()
    return secret_path


class NullSock:
    def sendall(self, data):
        pass


def last_words(td, secret_path, secret):
    """The relay suspends the agent's output (RFC 2217 FLOWCONTROL-SUSPEND)
    and asks for a speed; the port says its last words; the adapter goes.
    The answer and the words then go out as the session closes, framed
    like the rest (failure answered: a raw tail in a framed stream, which
    a relay takes for corruption), byte-exact."""
    go = threading.Event()

    def script(c, n):
        c.sendall(relayproto.encode(bytes([255, 251, 44]) +      # WILL
                                    bytes([255, 250, 44, 8, 255, 240])))
        go.wait(30)

    relay = FakeRelay(secret, script)
    phys = sh.Pty(td.file("tail-dev"))
    agent = sh.SerialAgent(td, name="agent-tail").start(sh.port_section(
        "tail", phys.link, connect=f"{relay.port}/com8",
        relay_secret_file=secret_path, transport="lz4"))
    agent.wait_log(r"\[serial.tail\] .*RFC 2217 request 8")
    words = b"\x00last words\xff"
    phys.write_all(words)
    relay.conn.sendall(relayproto.encode(
        bytes([255, 250, 44, 1, 0, 1, 0xc2, 0, 255, 240])))  # 115200
    agent.wait_log(r"\[serial.tail\] .*RFC 2217 request 1 value 115200")
    rg.wait_taken(phys)  # the agent holds the words now
    phys.unplug()
    agent.wait_log(r"\[serial.tail\] .*disconnected \(device vanished\)")
    go.set()
    harness.wait_for(lambda: relay.done or relay.error is not None, 20,
                     "the agent's stream to end")
    assert relay.error is None, f"the agent's stream: {relay.error!r}"
    telnet = sh.TelnetDecoder(NullSock())
    data = telnet.feed(bytes(relay.stream))
    assert data == words, f"the port's last words: {data!r}"
    answer = bytes([44, 101, 0, 1, 0xc2, 0])
    assert answer in telnet.subnegs, telnet.subnegs
    print("last words and an answer held by FLOWCONTROL-SUSPEND went out "
          "framed at the close, byte-exact")
    agent.stop()
    relay.sock.close()


def config_error(td):
    conf = td.write("lz4-plain.conf", sh.port_section(
        "plain", td.file("plain-dev"), connect="7000", transport="lz4"))
    agent = harness.find_program("REDIR_AGENT", "redir-agent", "agent")
    r = subprocess.run([agent, "-c", conf, "--check-config"],
                       capture_output=True, text=True, timeout=30,
                       env=harness.clean_env())
    out = r.stdout + r.stderr
    assert r.returncode != 0 and re.search(
        r"transport: lz4 only with connect = HOST:PORT/TARGET", out), out
    print("lz4 without a relay target: a config error")


def test(td):
    real_relay(td)
    secret_path = fake_relay(td)
    last_words(td, secret_path, open(secret_path, "rb").read().strip())
    config_error(td)


harness.main(test)
