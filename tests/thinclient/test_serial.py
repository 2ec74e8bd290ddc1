#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig, tests 3 and 4: the serial and printer bridge on real
kernel devices, next to USB redirection with a live usbredir peer.

 3. A CDC ACM gadget gives /dev/ttyACM0 (cdc_acm) on the thin client,
    against the gadget's /dev/ttyGS0.  The bridge serves it as RFC 2217
    (on_device_loss = keep) on a port forwarded to the host.  A pyserial
    rfc2217:// client on the host sets 9600, then 115200 baud: the
    ttyACM0 termios follow.  4 KiB with every byte value go both ways,
    8-bit clean, against ttyGS0.  The gadget is unplugged (UDC unbound)
    and replugged: the bridge logs the loss and reopens ttyACM0 with
    115200 re-applied, the same client connection goes on, data flows
    both ways again.  The ACM device is never redirected as USB: the
    agent's decision is "local", cdc_acm stays bound, also after the
    replug.
 4. A printer gadget gives /dev/usb/lp0 (usblp).  64 KiB sent to the
    bridge's raw port arrive on the gadget side (/dev/g_printer0),
    byte for byte.

The agent's [usb] section dials a SeaBIOS-only QEMU (a real usbredir
peer), with the default policy and no rule for either device, so a wrong
decision would actually take a device away: both stay local because the
bridge uses them (test_printer_owner.py checks the printer alone).
"""
import hashlib
import os
import random
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thinclient import (ThinClient, acm_gadget, harness,  # noqa: E402
                        printer_gadget)

import serial  # noqa: E402  (python3-serial)

ACM_PORT, LP_PORT = 7000, 7001


def payload(n, seed):
    rnd = random.Random(seed)
    data = bytearray(rnd.randbytes(n))
    data[:256] = bytes(range(256))          # every value, IAC and NUL too
    return bytes(data)


def tty_speed(tc, dev="/dev/ttyACM0"):
    out = tc.sh(f"stty -F {dev}")
    m = re.search(r"speed (\d+) baud", out)
    assert m, out
    return int(m.group(1))


def start_gadget_reader(tc, acm):
    """Hold ttyGS0 open in raw mode and collect what it receives."""
    gs = acm.nodes["gs0"]
    tc.sh(f"rm -f /tmp/gs.in; bg /tmp/gs.log sh -c 'exec 4<>{gs}; "
          f"stty raw -echo <&4; exec cat <&4 > /tmp/gs.in' >/dev/null\n"
          f"wait_until 5 test -e /tmp/gs.in")


def wait_file_size(tc, path, n, timeout=20):
    tc.sh(f"wait_until {timeout} eval '[ \"$(stat -c %s {path} 2>/dev/null)\" "
          f"-ge {n} ]'", timeout=timeout + 10)


def both_ways(tc, acm, ser, data, tag):
    """data host -> ttyGS0 and ttyGS0 -> host, byte-exact."""
    ser.reset_input_buffer()
    ser.write(data)
    ser.flush()
    wait_file_size(tc, "/tmp/gs.in", len(data))
    got = tc.ctl.run_bytes("cat /tmp/gs.in")[1]
    assert got == data, f"{tag}: ttyGS0 got {len(got)} bytes, first difference " \
        f"at {next((i for i in range(min(len(got), len(data))) if got[i] != data[i]), len(got))}"
    tc.sh("cat /dev/null > /tmp/gs.in")
    rev = data[::-1]
    tc.put_file("/tmp/to-host", rev)
    tc.sh(f"cat /tmp/to-host > {acm.nodes['gs0']}")
    got = b""
    deadline = time.monotonic() + 20
    while len(got) < len(rev) and time.monotonic() < deadline:
        got += ser.read(len(rev) - len(got))
    assert got == rev, f"{tag}: host got {len(got)} of {len(rev)} bytes"


def test(td):
    t_start = time.monotonic()
    tc = ThinClient(td, hostfwd=(ACM_PORT, LP_PORT)).start()
    acm = tc.add_gadget(acm_gadget())
    lp = tc.add_gadget(printer_gadget())
    tc.wait_drivers(acm, {"1.0": "cdc_acm", "1.1": "cdc_acm"})
    tc.wait_drivers(lp, {"1.0": "usblp"})
    tc.sh("wait_until 10 test -c /dev/ttyACM0 && wait_until 10 test -c /dev/usb/lp0")
    start_gadget_reader(tc, acm)

    # a real usbredir peer for [usb]: SeaBIOS-only QEMU
    port = harness.free_port()
    peer = harness.Qemu(td, slots=[("server", port)], paused=False, name="peer")
    peer.start()
    agent = tc.start_agent(
        f"[agent]\nlog_level = debug\n[usb]\nconnect = 10.0.2.2:{port}\n"
        f"[serial.acm]\ndevice = /dev/ttyACM0\nlisten = 0.0.0.0:{ACM_PORT}\nallow = 10.0.2.2/32\n"
        f"mode = rfc2217\non_device_loss = keep\n"
        f"[serial.lp]\ndevice = /dev/usb/lp0\nkind = printer\n"
        f"listen = 0.0.0.0:{LP_PORT}\nallow = 10.0.2.2/32\n")
    agent.wait_log(r"\[serial.acm\] .*opened")
    agent.wait_log(r'1209:7ac0 "Rig ACM Serial" at \S+: stays local '
                   r'\(used by the serial bridge \[serial.acm\]\)')
    agent.wait_log(r'1209:7e47 "Rig Printer" at \S+: stays local '
                   r'\(used by the serial bridge \[serial.lp\]\)')

    # 3. RFC 2217 from the host
    ser = serial.serial_for_url(f"rfc2217://127.0.0.1:{tc.fwd[ACM_PORT]}",
                                baudrate=9600, timeout=2)
    agent.wait_log(r"\[serial.acm\] .*client .* connected")
    harness.wait_for(lambda: tty_speed(tc) == 9600, 10, "ttyACM0 at 9600")
    ser.baudrate = 115200
    harness.wait_for(lambda: tty_speed(tc) == 115200, 10, "ttyACM0 at 115200")
    data = payload(4096, 1)
    both_ways(tc, acm, ser, data, "before unplug")

    off = agent.log_offset()
    tc.unplug(acm)
    agent.wait_log(r"\[serial.acm\] .*vanished", start_offset=off)
    tc.plug(acm)
    tc.wait_drivers(acm, {"1.0": "cdc_acm", "1.1": "cdc_acm"})
    agent.wait_log(r"\[serial.acm\] .*opened", start_offset=off)
    assert tty_speed(tc) == 115200, "line settings not re-applied"
    start_gadget_reader(tc, acm)
    both_ways(tc, acm, ser, payload(4096, 2), "after replug")
    assert "disconnected" not in agent.log_text(off), agent.log_text(off)
    ser.close()

    # never redirected as USB, before or after the replug
    devs = agent.devices()
    assert devs["1209:7ac0"]["decision"] == "local", devs["1209:7ac0"]
    assert "redirected" not in "".join(
        l for l in agent.fetch_log().splitlines() if "Rig ACM" in l), \
        "the ACM device was redirected"
    assert tc.if_drivers(acm) == {"1.0": "cdc_acm", "1.1": "cdc_acm"}

    # 4. printer
    job = b"%!PS-Adobe-3.0\n" + payload(65536, 3)
    tc.sh(f"bg /tmp/prn.log sh -c 'exec cat {lp.nodes['lp0']} > /tmp/prn.out' "
          f">/dev/null; wait_until 5 test -e /tmp/prn.out")
    with socket.create_connection(("127.0.0.1", tc.fwd[LP_PORT]), 10) as s:
        s.sendall(job)
        s.shutdown(socket.SHUT_WR)
        wait_file_size(tc, "/tmp/prn.out", len(job), timeout=30)
    got = tc.sh("sha256sum /tmp/prn.out | cut -d' ' -f1").strip()
    assert got == hashlib.sha256(job).hexdigest(), "printer got other bytes"
    devs = agent.devices()
    assert devs["1209:7e47"]["decision"] == "local", devs["1209:7e47"]
    assert tc.if_drivers(lp) == {"1.0": "usblp"}, tc.if_drivers(lp)

    agent.stop()
    assert "cannot be watched by epoll" not in agent.fetch_log()
    peer.stop()
    tc.stop()
    print(f"RFC 2217: 9600 and 115200 applied to ttyACM0; 4 KiB both ways "
          f"before and after an unplug/replug; printer: {len(job)} bytes")
    print(f"thin client boot {tc.boot_s:.2f}s; total {time.monotonic() - t_start:.1f}s")


harness.main(test)
