#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig, test 4: a USB printer used by the serial bridge stays
local without any rule.

A printer gadget gives /dev/usb/lp0 (usblp); the agent serves it as
[serial.lp] and has [usb] pointed at a live usbredir peer (SeaBIOS-only
QEMU), with the default policy and no rule for the printer.  Devices used
by the serial bridge must never be redirected (DESIGN.md): the printer must
stay local (usblp bound, decision "local") and bytes sent to the bridge
must reach the gadget.

agent/serial/serial_owner.c finds the USB device behind any character
device node through /sys/dev/char/MAJ:MIN (/dev/usb/lp0 is usbmisc, below
the printer's interface); before, it followed ttys only, the default
policy redirected the printer, usblp was detached, lp0 vanished and the
bridge turned clients away ("refused: /dev/usb/lp0 is missing").
"""
import hashlib
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thinclient import ThinClient, harness, printer_gadget  # noqa: E402

LP_PORT = 7001


def test(td):
    t_start = time.monotonic()
    tc = ThinClient(td, hostfwd=(LP_PORT,)).start()
    lp = tc.add_gadget(printer_gadget())
    tc.wait_drivers(lp, {"1.0": "usblp"})
    tc.sh("wait_until 10 test -c /dev/usb/lp0")
    port = harness.free_port()
    peer = harness.Qemu(td, slots=[("server", port)], paused=False, name="peer")
    peer.start()
    agent = tc.start_agent(
        f"[agent]\nlog_level = debug\n[usb]\nconnect = 10.0.2.2:{port}\n"
        f"[serial.lp]\ndevice = /dev/usb/lp0\nkind = printer\n"
        f"listen = 0.0.0.0:{LP_PORT}\nallow = 10.0.2.2/32\n")
    m = agent.wait_log(r'1209:7e47 "Rig Printer" at \S+: (stays local|redirect).*')
    assert "used by the serial bridge [serial.lp]" in m.group(0), m.group(0)
    time.sleep(2)              # a redirect would need the peer's hello
    devs = agent.devices()
    assert devs["1209:7e47"]["decision"] == "local", \
        f"the bridge's printer is not kept local: {devs['1209:7e47']}"
    assert tc.if_drivers(lp) == {"1.0": "usblp"}, tc.if_drivers(lp)
    job = b"%!PS-Adobe-3.0\n" + os.urandom(16384)
    tc.sh(f"bg /tmp/prn.log sh -c 'exec cat {lp.nodes['lp0']} > /tmp/prn.out' "
          f">/dev/null; wait_until 5 test -e /tmp/prn.out")
    with socket.create_connection(("127.0.0.1", tc.fwd[LP_PORT]), 10) as s:
        s.sendall(job)
        s.shutdown(socket.SHUT_WR)
        tc.sh(f"wait_until 20 eval '[ \"$(stat -c %s /tmp/prn.out)\" -ge "
              f"{len(job)} ]'", timeout=30)
    got = tc.sh("sha256sum /tmp/prn.out | cut -d' ' -f1").strip()
    assert got == hashlib.sha256(job).hexdigest(), "printer got other bytes"
    agent.stop()
    peer.stop()
    tc.stop()
    print(f"printer stayed local; {len(job)} bytes; total "
          f"{time.monotonic() - t_start:.1f}s")


harness.main(test)
