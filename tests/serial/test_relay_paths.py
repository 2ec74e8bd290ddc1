#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the serial bridge does directly, through redir-relay (issue 15):
the agent's port dials a relay serial target (a pty at a path, opened as
QEMU opens it, and kept open by the "guest" throughout).

- Unplug survival, on_device_loss = close: the adapter vanishes, the
  relay session ends, the guest's tty stays usable; what the guest writes
  meanwhile is dropped (nobody to send it to, stale later); the adapter
  comes back, the agent dials again and the replugged port gets the
  guest's last settings (set while it was away). Failure answered: a
  replug that needs a QEMU restart, or replays old bytes to the device.
- Unplug survival, on_device_loss = keep: the relay session stays; what
  the guest writes meanwhile reaches the device when it is back, with the
  settings the guest chose meanwhile.
- Stale input: bytes an adapter held before the agent reopened it never
  reach the guest (the flush at open), with or without a session; bytes
  the port sends while the relay is down are dropped by the agent ("no
  client" through a relay = no relay session), not replayed to the guest
  when the relay is back.
- QEMU with the path closed is not "no client" (the relay holds the pty
  and the session): the port's bytes then wait in the pty and reach the
  next opener, intact (checked as the code does it, see the report).
- Printers: a printer port (a FIFO named lp0) behind a relay target gets
  the guest's job byte-exact; the guest's settings are answered, not
  applied; nothing comes back.
Every transfer is checked byte for byte, 0x00 and 0xff included."""
import os
import select
import termios

import relay_guest as rg
import serial_harness as sh
from serial_harness import harness
import relayharness  # noqa: E402  (path set by relay_guest)

SIZE = 64 * 1024
REDIAL = "reconnect_min_ms = 50\nreconnect_max_ms = 300\n"


def relay_text(relay, paths):
    text = (f"[relay]\nlisten = 127.0.0.1:{relay.port}\n"
            f"secret_file = {relay.secret_path}\nlog_level = debug\n")
    for name, path in paths.items():
        text += f"[target.{name}]\nkind = serial\ntty = pty\npath = {path}\n"
    return text


def port(name, phys, relay, **keys):
    return sh.port_section(name, phys.link, connect=f"{relay.port}/{name}",
                           relay_secret_file=relay.secret_path, **keys) + \
        REDIAL


def guest_alive(guest):
    """The guest's tty is still a working tty: no hang-up, writable."""
    r, w, x = select.select([guest], [guest], [guest], 0.5)
    assert guest in w and guest not in x, "the guest's tty hung up"
    termios.tcgetattr(guest)  # raises on a dead fd


def close_policy(relay, agent, guest, phys):
    """on_device_loss = close through the relay: session ends and comes
    back; the guest's tty is never closed or hung up."""
    rg.guest_set(guest, termios.B57600, termios.CS8)
    rg.wait_port(phys, 57600, False)
    rg.exchange(guest, phys, SIZE, 20, "close port before the unplug")

    r_off, a_off = relay.log_offset(), agent.log_offset()
    phys.unplug()
    agent.wait_log(r"\[serial.com1\] .*com1-dev vanished", start_offset=a_off)
    agent.wait_log(r"\[serial.com1\] .*disconnected \(device vanished\)",
                   start_offset=a_off)
    relay.wait_log(r"left target 'com1'", start_offset=r_off)
    guest_alive(guest)
    # the guest goes on: its output is dropped (no session), its new
    # settings are kept by the relay for the next session
    rg.write_all(guest, b"\x00LOST-WHILE-AWAY\xff")
    rg.guest_set(guest, termios.B19200, termios.CS8 | termios.CSTOPB)
    rg.read_for(guest, 0.3)  # the relay reads (and drops) the bytes

    # back, holding stale input: flushed at open, never seen by the guest
    r_off = relay.log_offset()
    phys.plug_with(b"STALE-IN-THE-ADAPTER")
    agent.wait_log(r"\[serial.com1\] .*com1-dev opened", start_offset=a_off)
    relay.wait_log(r"attached to target 'com1'", start_offset=r_off)
    rg.wait_port(phys, 19200, True)  # the guest's last settings
    phys.write_all(b"\xffFRESH\x00")
    rg.expect_only(guest, b"\xffFRESH\x00", "guest after the replug")
    rg.write_all(guest, b"\x00NEW\xff")
    assert phys.read_exact(5) == b"\x00NEW\xff"
    extra = phys.read_for(0.3)
    assert extra == b"", f"replayed to the device: {extra!r}"
    rg.exchange(guest, phys, SIZE, 22, "close port after the replug")
    print("close: session ended and came back; guest tty kept; guest's "
          "output while away dropped; stale adapter input flushed; 19200 2 "
          "stop bits re-applied")


def keep_policy(relay, agent, guest, phys):
    """on_device_loss = keep through the relay: the session stays."""
    rg.guest_set(guest, termios.B115200, termios.CS8)
    rg.wait_port(phys, 115200, False)
    rg.exchange(guest, phys, SIZE, 30, "keep port before the unplug")

    r_off, a_off = relay.log_offset(), agent.log_offset()
    phys.unplug()
    agent.wait_log(r"\[serial.com2\] .*client \S+ kept while \S+com2-dev is "
                   r"away", start_offset=a_off)
    queued = b"\x00queued while away\xff" * 50
    rg.write_all(guest, queued)
    rg.guest_set(guest, termios.B38400, termios.CS8 | termios.CSTOPB)
    rg.read_for(guest, 0.3)

    phys.plug_with(b"STALE-IN-THE-ADAPTER")
    agent.wait_log(r"\[serial.com2\] .*com2-dev opened \(38400 8N2\)",
                   start_offset=a_off)
    rg.wait_port(phys, 38400, True)
    got = phys.read_exact(len(queued))
    assert got == queued, f"what the guest sent meanwhile: {got[:80]!r}"
    phys.write_all(b"\xffFRESH\x00")
    rg.expect_only(guest, b"\xffFRESH\x00", "guest after the replug (keep)")
    assert "left target 'com2'" not in relay.log_text(r_off), \
        "the relay session ended although on_device_loss = keep"
    assert "disconnected" not in agent.log_text(a_off).replace(
        "[serial.com1]", "")  # only com2's lines matter here
    rg.exchange(guest, phys, SIZE, 32, "keep port after the replug")
    print("keep: session kept; the guest's bytes waited for the device; "
          "38400 2 stop bits applied at reopen; stale adapter input flushed")


def relay_down(relay, agent, paths, guest, phys):
    """No relay session: the port's bytes are read and dropped by the
    agent, and a new session starts with a flushed input queue."""
    a_off = agent.log_offset()
    relay.stop()
    os.close(guest)
    agent.wait_log(r"\[serial.com1\] .*disconnected", start_offset=a_off)
    phys.write_all(b"\x00WHILE-RELAY-DOWN\xff")
    agent.wait_log(r"\[serial.com1\] .*no client: \d+ bytes from \S+com1-dev "
                   r"dropped", start_offset=a_off)
    r_off = relay.log_offset()
    relay.start(relay_text(relay, paths))
    relay.wait_log(r"attached to target 'com1'", start_offset=r_off,
                   timeout=30)
    guest = rg.open_guest(paths["com1"])
    phys.write_all(b"\xffFRESH\x00")
    rg.expect_only(guest, b"\xffFRESH\x00", "guest after the relay restart")
    print("relay down: the port's bytes dropped by the agent, not replayed")
    return guest


def qemu_closed(guest, path, phys):
    """QEMU closed the path, the session is up: the port's bytes wait in
    the relay's pty (kept open by the relay) for the next opener."""
    os.close(guest)
    said = b"\x00WHILE-QEMU-CLOSED\xff"
    phys.write_all(said)
    rg.wait_taken(phys)
    guest = rg.open_guest(path)
    got = rg.read_exact(guest, len(said)) + rg.read_for(guest, 0.3)
    # held, not dropped as the agent drops them with no session: the
    # relay cannot tell QEMU's close on a pty (it holds the slave itself);
    # if it should drop them instead, this is the line to change
    assert got == b"\x00WHILE-QEMU-CLOSED\xff", got
    print(f"QEMU closed: the next opener read {got!r} (held by the pty)")
    return guest


def printer(relay, agent, guest, lp):
    """A printer behind a relay target: the guest's settings are answered
    and not applied (a printer has none: no ioctl, no warning), its job
    arrives byte-exact, and nothing comes back (write-only). Failure
    answered: a VM's legacy application printing to its COM port."""
    agent.wait_log(r"\[serial.lp\] .*lp0 opened \(printer, write-only\)")
    relay.wait_log(r"attached to target 'lp'")
    a_off = agent.log_offset()
    rg.guest_set(guest, termios.B9600, termios.CS7 | termios.CSTOPB)
    job = sh.random_payload(SIZE * 4, 50)
    rg.write_all(guest, job)
    harness.wait_for(lambda: len(lp.data) >= len(job), 30,
                     f"the job at the printer (have {len(lp.data)})")
    assert bytes(lp.data) == job, "the printer's job corrupted"
    assert rg.read_for(guest, 0.3) == b"", "a write-only printer answered"
    assert len(lp.data) == len(job), "extra bytes at the printer"
    said = [ln for ln in agent.log_text(a_off).splitlines()
            if "[serial.lp]" in ln and (" warning:" in ln or "refused" in ln)]
    assert not said, f"the guest's settings reached the printer: {said}"
    print(f"printer: a {len(job) // 1024} KiB job byte-exact, the guest's "
          "tcsetattr answered without touching it, nothing read back")


def test(td):
    paths = {n: td.file(n) for n in ("com1", "com2", "lp")}
    relay = relayharness.Relay(td)
    relay.start(relay_text(relay, paths))
    relay.wait_ready()
    guest1, guest2 = rg.open_guest(paths["com1"]), rg.open_guest(paths["com2"])
    guest_lp = rg.open_guest(paths["lp"])
    os.mkfifo(td.file("lp0"))
    lp = sh.FifoReader(td.file("lp0"))
    phys1 = rg.StalePty(td.file("com1-dev"))
    phys2 = rg.StalePty(td.file("com2-dev"))
    agent = sh.SerialAgent(td).start(
        port("com1", phys1, relay) +
        port("com2", phys2, relay, on_device_loss="keep") +
        sh.port_section("lp", td.file("lp0"), connect=f"{relay.port}/lp",
                        relay_secret_file=relay.secret_path))
    agent.wait_log(r"\[serial.com1\] .*client \S+ connected")
    agent.wait_log(r"\[serial.com2\] .*client \S+ connected")

    close_policy(relay, agent, guest1, phys1)
    keep_policy(relay, agent, guest2, phys2)
    printer(relay, agent, guest_lp, lp)
    guest1 = relay_down(relay, agent, paths, guest1, phys1)
    guest1 = qemu_closed(guest1, paths["com1"], phys1)

    # the relay first: its sessions end from its side (see the report on
    # a lingering connection at the agent's exit)
    relay.stop()
    agent.stop()
    lp.close()
    for fd in (guest1, guest2, guest_lp):
        os.close(fd)


harness.main(test)
