#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The relay's view of its serial targets, on its Prometheus endpoint and
in its log (issue 15): a real relay with two serial targets (pty ttys)
and a chardev target, a real agent whose port is a pty the test owns, its
modem inputs (CTS, DSR, RI, CD) faked by the ioctl recorder's TIOCMGET
(a pty has none). A "guest" opens the target's path as QEMU does and sets
9600 baud with 2 stop bits by tcsetattr; every page is checked by
`promtool check metrics` and read over HTTP:
  * redir_relay_serial_agent_attached follows the agent (0, 1, 0 again);
  * redir_relay_serial_line_info shows 9600 and 2 stop bits (data bits
    and parity "unknown": a pty hides them, the relay must not guess);
  * redir_relay_serial_port_modem_line has no series before the agent
    reports its lines or after it leaves (unknown is not "off"), then
    follows DSR dropping and CD and RI rising, each change logged once;
  * a chardev target and an idle serial target get no made-up series;
  * the serial bytes are counted in redir_relay_bytes_total (side qemu);
  * attack: a hostile agent floods 20000 modem and line-state
    notifications; the log grows by a few lines (a burst, then one line
    that sums up the rest and says the final state), the metrics show the
    final state, and the relay stays up."""
import os
import re
import sys
import termios
import time

import relayharness
import relayproto
from relayharness import harness

import prom  # noqa: E402 - relayharness puts tests/e2e on the path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "serial"))
import relay_guest as rg  # noqa: E402
import serial_harness as sh  # noqa: E402

# <asm/termios.h> TIOCM_* (what the agent's TIOCMGET returns)
TIOCM_CAR, TIOCM_RNG, TIOCM_CTS, TIOCM_DSR = 0x040, 0x080, 0x020, 0x100
# RFC 2217 NOTIFY-MODEMSTATE / NOTIFY-LINESTATE as the agent sends them
NOTIFY_LINESTATE, NOTIFY_MODEMSTATE = 106, 107
MODEM_CTS, MODEM_DSR, MODEM_RI, MODEM_CD = 0x10, 0x20, 0x40, 0x80
LINE_OVERRUN = 0x02
LOG_BURST = 5       # relay/serial_target_port.c: lines per window...
LOG_WINDOW_S = 10   # ...and the window
FLOOD = 20000
COM = "vm1-com2"


def set_modem(path, bits):
    """What the agent's next TIOCMGET on its port returns."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(f"{bits:#x}\n")
    os.replace(tmp, path)


def modem_series(s, target=COM):
    """{line: value} of the target's modem series on a scrape."""
    out = {}
    for line in ("cts", "dsr", "ri", "cd"):
        key = (f'redir_relay_serial_port_modem_line{{target="{target}",'
               f'line="{line}"}}')
        if key in s:
            out[line] = s[key]
    return out


def line_series(s, target=COM):
    """The labels of the target's line_info series (there is one)."""
    found = [k for k in s if k.startswith(
        f'redir_relay_serial_line_info{{target="{target}",')]
    assert len(found) == 1 and s[found[0]] == 1, (found, s)
    return found[0]


def wait_metrics(mport, ok, what, timeout=10):
    def attempt():
        s = prom.checked_samples(mport)
        return s if ok(s) else None
    try:
        return harness.wait_for(attempt, timeout, what)
    except TimeoutError as e:
        raise TimeoutError(f"{e}; last page:\n{prom.get(mport)[2]}") from None


def lines_logged(relay, off, text):
    return [ln for ln in relay.log_text(off).splitlines() if text in ln]


def check_idle(relay, mport):
    """Before any agent: attached 0, a line, no modem series; nothing for
    the chardev target."""
    s = prom.checked_samples(mport)
    for t in (COM, "vm1-com3"):
        assert s[f'redir_relay_serial_agent_attached{{target="{t}"}}'] == 0
        line_series(s, t)
        assert modem_series(s, t) == {}, "modem lines made up before a report"
    assert not [k for k in s if 'target="vm1-usb"' in k], \
        "a chardev target has serial series"
    print("idle: attached 0, no modem series; chardev target has none")


def check_line(mport, guest):
    rg.guest_set(guest, termios.B9600, termios.CS7 | termios.PARENB |
              termios.CSTOPB)
    want = (f'redir_relay_serial_line_info{{target="{COM}",speed="9600",'
            f'data_bits="unknown",parity="unknown",stop_bits="2"}}')
    wait_metrics(mport, lambda s: s.get(want) == 1, "9600 2 stop bits")
    print(f"guest's line: {want}")


def check_modem(relay, mport, modem_file, off):
    want = {"cts": 1, "dsr": 1, "ri": 0, "cd": 0}
    wait_metrics(mport, lambda s: modem_series(s) == want, f"modem {want}")
    relay.wait_log(rf"target {COM}: port modem lines CTS on DSR on CD off "
                   r"RI off", start_offset=off)
    for bits, want, text in (
            (TIOCM_CTS, {"cts": 1, "dsr": 0, "ri": 0, "cd": 0},
             "CTS on DSR off CD off RI off"),
            (TIOCM_CTS | TIOCM_DSR | TIOCM_CAR | TIOCM_RNG,
             {"cts": 1, "dsr": 1, "ri": 1, "cd": 1},
             "CTS on DSR on CD on RI on")):
        set_modem(modem_file, bits)
        wait_metrics(mport, lambda s: modem_series(s) == want,
                     f"modem {want}")
        relay.wait_log(rf"port modem lines {text}", start_offset=off)
    time.sleep(1.0)  # four more polls of the agent: no repeats
    for text in ("CTS on DSR on CD off RI off", "CTS on DSR off CD off RI off",
                 "CTS on DSR on CD on RI on"):
        got = lines_logged(relay, off, f"port modem lines {text}")
        assert len(got) == 1, (text, got)
    print("modem lines follow the port (DSR drop, CD and RI rise), each "
          "change logged once")


def set_icount(path, frame, parity, overrun, brk):
    """What the agent's next TIOCGICOUNT on its port returns."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(f"{frame} {parity} {overrun} {brk}\n")
    os.replace(tmp, path)


def error_series(s, target=COM):
    return {k: s.get(f'redir_relay_serial_port_line_errors_total{{target='
                     f'"{target}",kind="{k}"}}')
            for k in ("break", "framing", "parity", "overrun")}


def check_errors(relay, mport, icount_file, off):
    """Line errors the agent's port counts (TIOCGICOUNT) show as counters:
    each new report once, not once per poll of the agent."""
    zero = {"break": 0, "framing": 0, "parity": 0, "overrun": 0}
    assert error_series(prom.checked_samples(mport)) == zero
    set_icount(icount_file, 1, 0, 0, 0)
    wait_metrics(mport, lambda s: error_series(s)["framing"] == 1,
                 "a framing error counted")
    relay.wait_log(r"reports line errors: framing", start_offset=off)
    # the agent polls every 250 ms: a poll without news clears the state,
    # so the next errors are a new report (within one poll they would be
    # one report: counted once)
    time.sleep(1.0)
    set_icount(icount_file, 3, 1, 0, 1)  # more framing, parity, a BREAK
    want = {"break": 1, "framing": 2, "parity": 1, "overrun": 0}
    wait_metrics(mport, lambda s: error_series(s) == want, f"errors {want}")
    time.sleep(1.0)  # more polls, counters unchanged: nothing new
    got = error_series(prom.checked_samples(mport))
    assert got == want, got
    print(f"line errors counted per report: {got}")


def check_bytes(mport, guest, phys):
    """The serial session's bytes are in redir_relay_bytes_total."""
    def qemu(s, d):
        return s[f'redir_relay_bytes_total{{side="qemu",direction="{d}"}}']
    before = prom.checked_samples(mport)
    to_port, to_guest = os.urandom(4096), os.urandom(4096)
    os.write(guest, to_port)
    assert phys.read_exact(len(to_port)) == to_port
    phys.write_all(to_guest)
    got = bytearray()
    deadline = time.monotonic() + 10
    while len(got) < len(to_guest) and time.monotonic() < deadline:
        try:
            got += os.read(guest, 65536)
        except BlockingIOError:
            time.sleep(0.02)
    assert bytes(got) == to_guest
    after = wait_metrics(mport, lambda s: qemu(s, "in") - qemu(before, "in")
                         >= 4096 and qemu(s, "out") - qemu(before, "out")
                         >= 4096, "4 KiB each way counted")
    print(f"bytes: qemu side in +{qemu(after, 'in') - qemu(before, 'in'):g},"
          f" out +{qemu(after, 'out') - qemu(before, 'out'):g} for 4 KiB "
          "each way (RFC 2217 framing included)")


def flood(relay, mport):
    """Attack: an agent that floods state notifications must not flood
    the log; the last state still shows."""
    off = relay.log_offset()
    lines_before = relay.log_text(0).count("\n")
    s = relayproto.connect_agent(relay.port, relay.secret, "hostile", COM)
    relay.wait_log(rf"attached to target '{COM}'", start_offset=off)
    burst = bytearray()
    # changes: every modem report (CTS on, off, ...), every other line
    # report (overrun: its clearing is no event), the final state
    changes = FLOOD // 2 + FLOOD // 4 + 1
    for i in range(FLOOD):
        if i % 2:
            v = MODEM_CTS if i % 4 == 1 else 0
            burst += bytes([255, 250, 44, NOTIFY_MODEMSTATE, v, 255, 240])
        else:
            v = LINE_OVERRUN if i % 4 == 0 else 0
            burst += bytes([255, 250, 44, NOTIFY_LINESTATE, v, 255, 240])
    final = MODEM_DSR | MODEM_CD
    burst += bytes([255, 250, 44, NOTIFY_MODEMSTATE, final, 255, 240])
    t0 = time.monotonic()
    s.sendall(bytes(burst))
    want = {"cts": 0, "dsr": 1, "ri": 0, "cd": 1}
    wait_metrics(mport, lambda p: modem_series(p) == want,
                 "the flood's final state")
    summary = re.compile(
        rf"target {COM}: the agent's port changed state (\d+) more times "
        rf"in {LOG_WINDOW_S} s \(not logged one by one\); port modem lines "
        r"now (.*)")

    def summed():
        """Each change logged or summed up (a window may have ended
        mid-flood: then two summaries)."""
        text = relay.log_text(off)
        held = [(int(m.group(1)), m.group(2)) for m in
                summary.finditer(text)]
        each = lines_logged(relay, off, f"target {COM}: port modem lines ")
        errors = lines_logged(relay, off, "reports line errors")
        if sum(h for h, _ in held) + len(each) + len(errors) < changes:
            return None
        return held, each, errors
    held, each, errors = harness.wait_for(summed, 2 * LOG_WINDOW_S + 5,
                                          "the flood summed up")
    took = time.monotonic() - t0
    assert held, f"{len(each) + len(errors)} lines for {changes} changes"
    assert held[-1][1] == "CTS off DSR on CD on RI off", held
    assert sum(h for h, _ in held) + len(each) + len(errors) == changes
    grown = relay.log_text(0).count("\n") - lines_before
    # the burst, the summaries, the session's own lines (connected,
    # attached, the guest's line sent)
    assert len(each) + len(errors) <= LOG_BURST * len(held), (each, errors)
    assert grown <= (LOG_BURST + 1) * len(held) + 3, relay.log_text(off)
    assert relay.alive()
    print(f"flood of {FLOOD + 1} notifications ({changes} changes): "
          f"{len(each)} modem and {len(errors)} line-error lines, then "
          f"{len(held)} summing up {[h for h, _ in held]} ({took:.1f} s); "
          f"the log grew by {grown} lines")
    s.close()
    wait_metrics(mport, lambda p: modem_series(p) == {} and p[
        f'redir_relay_serial_agent_attached{{target="{COM}"}}'] == 0,
        "the hostile agent's state forgotten")


def test(td):
    modem_file = td.file("modem-bits")
    set_modem(modem_file, TIOCM_CTS | TIOCM_DSR)
    os.environ["REDIR_IOCTL_MODEM"] = modem_file  # the agent's TIOCMGET
    icount_file = td.file("icount")
    set_icount(icount_file, 0, 0, 0, 0)
    os.environ["REDIR_IOCTL_ICOUNT"] = icount_file  # and TIOCGICOUNT
    com, com3 = td.file("com2"), td.file("com3")
    relay = relayharness.Relay(td)
    mport = harness.free_port()
    relay.start(f"[relay]\nlisten = 127.0.0.1:{relay.port}\n"
                f"secret_file = {relay.secret_path}\nlog_level = debug\n"
                f"metrics_listen = 127.0.0.1:{mport}\n"
                f"[target.{COM}]\nkind = serial\npath = {com}\ntty = pty\n"
                f"[target.vm1-com3]\nkind = serial\npath = {com3}\n"
                f"tty = pty\n"
                f"[target.vm1-usb]\nqemu = 127.0.0.1:{harness.free_port()}\n")
    relay.wait_ready()
    check_idle(relay, mport)

    guest = os.open(com, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    check_line(mport, guest)

    phys = sh.Pty(td.file("phys"))
    off = relay.log_offset()
    agent = sh.SerialAgent(td, record_ioctls=True).start(sh.port_section(
        "com2", phys.link, connect=f"{relay.port}/{COM}",
        relay_secret_file=relay.secret_path))
    relay.wait_log(rf"attached to target '{COM}'", start_offset=off)
    wait_metrics(mport, lambda s: s[
        f'redir_relay_serial_agent_attached{{target="{COM}"}}'] == 1,
        "attached 1")
    t = harness.wait_for(lambda: (lambda t: t if t["ospeed"] == 9600 and
                                  t["cflag"] & sh.CSTOPB else None)(
        phys.termios2()), 5, "the port at 9600 2 stop bits")
    print(f"agent attached; its port at {t['ospeed']} with 2 stop bits")
    check_modem(relay, mport, modem_file, off)
    check_errors(relay, mport, icount_file, off)
    check_bytes(mport, guest, phys)
    s = prom.checked_samples(mport)
    assert s['redir_relay_serial_agent_attached{target="vm1-com3"}'] == 0
    assert modem_series(s, "vm1-com3") == {}

    agent.stop()
    wait_metrics(mport, lambda s: modem_series(s) == {} and s[
        f'redir_relay_serial_agent_attached{{target="{COM}"}}'] == 0,
        "the agent's state forgotten")
    print("agent gone: attached 0, its modem lines unknown again")

    flood(relay, mport)
    os.close(guest)
    relay.stop()


harness.main(test)
