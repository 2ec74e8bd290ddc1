#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""RFC 2217: pyserial's rfc2217:// client opens without special flags and
sets the line (speeds incl. a non-standard one, stop bits, flow control:
checked on the pty's termios), DTR/RTS/BREAK/parity/data size (checked on
the ioctls the agent issues); then a hand-rolled client for the requests
pyserial does not send: SIGNATURE, masks, NOTIFY-*, FLOWCONTROL-SUSPEND/
RESUME, queries, PURGE-DATA."""
import time

import serial

import serial_harness as sh
from serial_harness import harness

B9600, B115200 = 0o15, 0o10002


def check_pyserial(td, agent, pty, port):
    s = serial.serial_for_url(f"rfc2217://127.0.0.1:{port}", timeout=5)
    assert s.is_open
    agent.wait_log(r"client 127.0.0.1:\d+ connected")
    t = pty.termios2()
    assert t["ospeed"] == 9600 and t["cflag"] & sh.CBAUD == B9600, t

    s.baudrate = 115200
    t = pty.termios2()
    assert t["ospeed"] == 115200 and t["cflag"] & sh.CBAUD == B115200, t
    s.baudrate = 250000                       # not a Bnnn speed
    t = pty.termios2()
    assert t["ospeed"] == 250000 and t["cflag"] & sh.CBAUD == sh.BOTHER, t
    s.stopbits = serial.STOPBITS_TWO
    assert pty.termios2()["cflag"] & sh.CSTOPB
    s.stopbits = serial.STOPBITS_ONE
    assert not pty.termios2()["cflag"] & sh.CSTOPB
    s.rtscts = True
    assert pty.termios2()["cflag"] & sh.CRTSCTS
    s.rtscts = False
    s.xonxoff = True
    t = pty.termios2()
    assert not t["cflag"] & sh.CRTSCTS, t
    assert t["iflag"] & (sh.IXON | sh.IXOFF) == sh.IXON | sh.IXOFF, t
    s.xonxoff = False
    assert not pty.termios2()["iflag"] & (sh.IXON | sh.IXOFF)

    # what a pty cannot show: the ioctls the agent makes
    parity_bits = sh.PARENB | sh.PARODD | sh.CMSPAR
    n = len(agent.ioctls())
    s.bytesize = serial.SEVENBITS
    s.parity = serial.PARITY_EVEN
    agent.wait_cflag(n, sh.CS7 | sh.PARENB, sh.CSIZE | parity_bits)
    for parity, bits in ((serial.PARITY_ODD, sh.PARENB | sh.PARODD),
                         (serial.PARITY_MARK, parity_bits),
                         (serial.PARITY_SPACE, sh.PARENB | sh.CMSPAR)):
        n = len(agent.ioctls())
        s.parity = parity
        agent.wait_cflag(n, sh.CS7 | bits, sh.CSIZE | parity_bits)
    s.parity = serial.PARITY_NONE
    s.bytesize = serial.EIGHTBITS

    n = len(agent.ioctls())
    s.dtr = False
    agent.wait_ioctl(r"^TIOCMBIC 0x2$", start=n)
    s.rts = False
    agent.wait_ioctl(r"^TIOCMBIC 0x4$", start=n)
    s.dtr = True
    agent.wait_ioctl(r"^TIOCMBIS 0x2$", start=n)
    s.rts = True
    agent.wait_ioctl(r"^TIOCMBIS 0x4$", start=n)
    s.break_condition = True
    agent.wait_ioctl(r"^TIOCSBRK$", start=n)
    s.break_condition = False
    agent.wait_ioctl(r"^TIOCCBRK$", start=n)
    assert s.cts is False and s.cd is False   # a pty has no modem lines

    # data both ways, 8-bit clean through the telnet framing
    payload = bytes(range(256)) * 4
    s.write(payload)
    assert pty.read_exact(len(payload)) == payload
    pty.write_all(payload[::-1])
    got = s.read(len(payload))
    assert got == payload[::-1], (len(got), got[:32])
    s.reset_input_buffer()                    # PURGE-DATA, answered
    s.reset_output_buffer()
    s.close()
    agent.wait_log(r"disconnected \(closed by peer\)")


def check_raw_requests(agent, pty, port):
    c = sh.ComPortClient(port)
    assert c.wait_sb(107) is not None        # first NOTIFY-MODEMSTATE
    sig = c.request(0)
    assert sig.startswith(b"redir-agent ") and sig.endswith(b"serial.com"), sig
    c.send_sb(b"\x00pytest client")          # its signature: logged only
    agent.wait_log(r'client 127.0.0.1:\d+ is "pytest client"')
    assert c.request(1, b"\x00\x00\x00\x00") == b"\x00\x00\x25\x80"  # query
    assert c.request(1, b"\x00\x01\xc2\x00") == b"\x00\x01\xc2\x00"  # 115200
    assert pty.termios2()["ospeed"] == 115200
    assert c.request(1, b"\x00\x00\x00\x01") == b"\x00\x01\xc2\x00"  # too slow
    assert c.request(2, b"\x09") == b"\x08"  # 9 data bits: refused, 8 stays
    assert c.request(3, b"\x00") == b"\x01"  # parity query: NONE
    assert c.request(4, b"\x00") == b"\x01"  # stop size query: 1
    assert c.request(5, b"\x07") == b"\x08"  # DTR query: on
    assert c.request(5, b"\x0d") == b"\x0e"  # inbound flow query: none
    assert c.request(5, b"\x11") == b"\x01"  # DCD flow: unsupported, none
    assert c.request(5, b"\x2a") == b"\x01"  # unknown: what is in effect
    assert c.request(10, b"\xff") == b"\xff"  # SET-LINESTATE-MASK
    assert c.request(11, b"\x00") == b"\x00"  # SET-MODEMSTATE-MASK
    state = c.request(6)                      # NOTIFY-LINESTATE poll
    assert state == b"\x60", state            # transmitter empty (a pty)
    assert c.request(7) == b"\x00"            # modem state (masked)
    assert c.request(12, b"\x03") == b"\x03"  # PURGE-DATA both

    # a flood of requests in one go: every one is answered, although the
    # answers need several times the room the agent keeps for them
    c.sock.sendall(bytes([sh.IAC, sh.SB, 44, 6, sh.IAC, sh.SE]) * 3000)
    for _ in range(3000):
        c.wait_sb(106)

    # telnet commands: BRK is a 250 ms break, AYT gets an answer
    n = len(agent.ioctls())
    c.sock.sendall(bytes([sh.IAC, 243, sh.IAC, 246]))
    agent.wait_ioctl(r"^TIOCSBRK$", start=n)
    agent.wait_ioctl(r"^TIOCCBRK$", start=n)
    c.sock.settimeout(5)
    while b"yes]" not in c.data:
        c.data += c.telnet.feed(c.sock.recv(100))
    assert bytes(c.data) == b"\r\n[redir-agent: yes]\r\n", c.data
    del c.data[:]

    # FLOWCONTROL-SUSPEND: the agent sends nothing until RESUME
    c.send_sb(b"\x08")
    time.sleep(0.3)
    pty.write_all(b"held back")
    c.sock.settimeout(0.5)
    try:
        early = c.sock.recv(100)
    except TimeoutError:
        early = b""
    assert early == b"", early
    c.send_sb(b"\x09")
    c.sock.settimeout(5)
    while len(c.data) < 9:
        c.data += c.telnet.feed(c.sock.recv(100))
    assert bytes(c.data) == b"held back", c.data
    c.sock.close()
    agent.wait_log(r"disconnected \(closed by peer\)", start_offset=0)


def test(td):
    pty = sh.Pty(td.file("dev"))
    port = harness.free_port()
    agent = sh.SerialAgent(td, record_ioctls=True).start(
        sh.port_section("com", pty.link, listen=port, mode="rfc2217"))
    agent.wait_log(r"opened \(9600 8N1\)")
    check_pyserial(td, agent, pty, port)
    # the next client starts from the configured line again
    off = agent.log_offset()
    check_raw_requests(agent, pty, port)
    assert "line 9600 8N1" in agent.log_text(off)
    agent.stop()


harness.main(test)
