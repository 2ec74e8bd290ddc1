#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A serial port through redir-relay with TLS 1.3 and certificates, no
shared secret (issue 15: "the same authentication (and TLS) as USB"). The
relay's serial target names the thin clients that may use it (agents =
desk-17, desk-99; desk-99's certificate is revoked); the guest side is
the target's pty, held open as QEMU holds it. Each block names the
attack it answers:
- a genuine thin client of another user (desk-18) is refused the target,
  and the guest's settings never reach its port;
- a certificate from another CA that claims to be desk-17 is refused in
  the TLS handshake, and so is a revoked one (desk-99, named in agents);
- a machine that took the relay's address, with a certificate from
  another CA, gets nothing from the agent: no session, its guest's
  settings never reach the port;
- a man in the middle between agent and relay sees only ciphertext;
then desk-17 itself: settings from the guest reach the port and 256 KiB
each way pass byte-exact (0x00/0xff), and the relay names it by its
certificate; the same on a second port with transport = lz4."""
import os
import termios

import relay_guest as rg
import serial_harness as sh
from serial_harness import harness
import relayharness  # noqa: E402  (paths set by relay_guest)
import tlsharness  # noqa: E402

SIZE = 256 * 1024
REDIAL = "reconnect_min_ms = 50\nreconnect_max_ms = 300\n"


def relay_text(relay, certs, cert, path, crl="crl.pem"):
    # desk-99 may use the target by name, but its certificate is revoked
    text = (f"[relay]\nlisten = 127.0.0.1:{relay.port}\nlog_level = debug\n"
            f"{certs.tls_keys(cert, crl=crl)}\n"
            f"[target.com1]\nkind = serial\ntty = pty\npath = {path}\n"
            f"agents = desk-17, desk-99\n"
            f"[target.com2]\nkind = serial\ntty = pty\npath = {path}-2\n"
            f"agents = desk-17\n")
    return text


def agent_port(name, phys, port, certs, cert, target="com1", **keys):
    return (sh.port_section(name, phys.link, connect=f"{port}/{target}",
                            **keys) + certs.tls_keys(cert) + REDIAL)


def untouched(phys, what):
    """The port's pty still at its own 9600, one stop bit: nothing of a
    guest's 1200 2 stop bits came through."""
    t = phys.termios2()
    assert t["ospeed"] == 9600 and not t["cflag"] & sh.CSTOPB, \
        f"{what}: the port was set from elsewhere: {t}"
    assert phys.read_for(0.2) == b"", f"{what}: bytes reached the port"


def intruders(td, relay, certs, guest):
    """Thin clients that must not get the target, tried while it is free."""
    rg.guest_set(guest, termios.B1200, termios.CS8 | termios.CSTOPB)
    p18, prog = sh.Pty(td.file("desk18-dev")), sh.Pty(td.file("rogue-dev"))
    p99 = sh.Pty(td.file("desk99-dev"))
    a18 = sh.SerialAgent(td, name="desk18").start(
        agent_port("com1", p18, relay.port, certs, "desk-18"))
    rogue = sh.SerialAgent(td, name="rogue").start(
        agent_port("com1", prog, relay.port, certs, "rogue-desk"))
    a99 = sh.SerialAgent(td, name="desk99").start(
        agent_port("com1", p99, relay.port, certs, "desk-99"))
    # Attack: another user's thin client asks for this VM's port.
    a18.wait_log(r"relay refused us: .*may not use target 'com1'")
    relay.wait_log(r"'desk-18' may not use target 'com1' "
                   r"\(agents = desk-17, desk-99\)")
    # Attack: a stolen thin client whose certificate was revoked.
    relay.wait_log(r"TLS handshake failed: certificate: certificate revoked")
    a99.wait_log(r"\[serial.com1\] .*cannot connect: .*certificate revoked")
    # Attack: a certificate from another CA claiming to be desk-17.
    relay.wait_log(r"refused: TLS handshake failed: .*(unknown ca|unable to "
                   r"get local issuer|certificate verify failed)")
    # ... and the rogue agent is told why (TLS 1.3: the relay's alert
    # comes after its own side of the handshake; it said "protocol
    # error" before)
    rogue.wait_log(r"\[serial.com1\] .*cannot connect: .*alert unknown ca")
    rg.write_all(guest, b"\x00for desk-17 only\xff")
    untouched(p18, "desk-18")
    untouched(prog, "rogue-desk")
    untouched(p99, "desk-99 (revoked)")
    assert "attached to target" not in relay.log_text(), \
        "an intruder was attached"
    for a in (a18, rogue, a99):
        a.stop()
    rg.read_for(guest, 0.2)
    print("desk-18 (not in agents), a rogue-CA desk-17 and the revoked "
          "desk-99 refused; their ports untouched")


def impostor_relay(td, certs):
    """A relay with another CA's certificate at an address the agent
    dials: started here, returns (relay, its guest fd)."""
    fake = relayharness.Relay(td, name="impostor")
    path = td.file("impostor-com1")
    fake.start(relay_text(fake, certs, "rogue-relay", path, crl=None).replace(
        certs.path("ca.pem"), certs.path("rogue-ca.pem")))
    fake.wait_ready()
    fguest = rg.open_guest(path)
    rg.guest_set(fguest, termios.B1200, termios.CS8 | termios.CSTOPB)
    return fake, fguest


def test(td):
    certs = tlsharness.certs(td)
    path = td.file("com1")
    relay = relayharness.Relay(td)
    relay.start(relay_text(relay, certs, "relay", path))
    relay.wait_log(r"listening for agents on .*TLS 1\.3, agents by "
                   r"certificate")
    guest, guest2 = rg.open_guest(path), rg.open_guest(path + "-2")
    intruders(td, relay, certs, guest)

    fake, fguest = impostor_relay(td, certs)
    tap = tlsharness.RecordingProxy(relay.port)
    phys, pfake = sh.Pty(td.file("com1-dev")), sh.Pty(td.file("fake-dev"))
    phys2 = sh.Pty(td.file("com2-dev"))
    agent = sh.SerialAgent(td).start(
        agent_port("com1", phys, tap.port, certs, "desk-17") +
        agent_port("evil", pfake, fake.port, certs, "desk-17") +
        agent_port("com2", phys2, relay.port, certs, "desk-17",
                   target="com2", transport="lz4"))

    # Attack: a machine with the relay's address but not its CA.
    agent.wait_log(r"\[serial.evil\] .*cannot connect: .*certificate")
    relay.wait_log(r"agent 'desk-17' \(127\.0\.0\.1:\d+\) attached to target "
                   r"'com1'")
    assert "attached to target" not in fake.log_text(), \
        "the agent attached to an impostor relay"
    untouched(pfake, "the impostor relay's port")
    print("an impostor relay (another CA) got no session")

    rg.wait_port(phys, 1200, True)  # the guest's settings, set earlier
    rg.guest_set(guest, termios.B115200, termios.CS8)
    rg.wait_port(phys, 115200, False)
    to_port, to_guest = rg.exchange(guest, phys, SIZE, 40, "desk-17 over TLS")
    print("desk-17: settings followed, 256 KiB each way intact")
    # TLS and lz4 together, as USB has them
    relay.wait_log(r"agent 'desk-17' \(127\.0\.0\.1:\d+\) attached to target "
                   r"'com2' \(.*, lz4\)")
    rg.guest_set(guest2, termios.B57600, termios.CS8 | termios.CSTOPB)
    rg.wait_port(phys2, 57600, True)
    rg.exchange(guest2, phys2, SIZE, 44, "desk-17 over TLS with lz4")
    print("desk-17 with lz4 over TLS: settings followed, 256 KiB each way "
          "intact")

    # Attack: a man in the middle reads the session.
    wire = bytes(tap.up) + bytes(tap.down)
    assert len(wire) > 2 * SIZE, "the check is void: the tap saw no session"
    for sample in (to_port[1000:1032], to_guest[5000:5032], b"RDRL",
                   b"desk-17"):
        assert sample not in wire, f"{sample!r} readable on the wire"
    print(f"the tap saw {len(wire)} bytes, none of them readable")

    # the relay first: see test_relay_paths.py
    relay.stop()
    fake.stop()
    agent.stop()
    for fd in (guest, guest2, fguest):
        os.close(fd)


harness.main(test)
