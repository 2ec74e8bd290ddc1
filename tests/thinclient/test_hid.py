#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig, test 2: keyboard and mouse stay local, a FIDO key goes.

A composite HID boot keyboard + boot mouse gadget and a vendor-page
(FIDO, usage page 0xF1D0) HID gadget are plugged into the thin client; the
agent runs with the default policy.
  * keyboard + mouse: "stays local", usbhid stays bound to both interfaces,
    and while the agent runs a key press and a mouse move sent by the
    gadget arrive as input events (EV_KEY KEY_A, EV_REL REL_X) on the thin
    client's /dev/input/event*;
  * FIDO: redirected (usbfs holds it on the thin client), and appears in
    the VDI guest as hidraw (HID_ID 0003:00001209:00007F1D); a 64-byte
    output report written to that hidraw arrives at the gadget's
    /dev/hidgN, and an input report written there arrives at the hidraw.
"""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thinclient import (ThinClient, VdiGuest, fido_gadget,  # noqa: E402
                        harness, kbd_mouse_gadget)

EV_KEY, EV_REL, KEY_A, REL_X = 1, 2, 30, 0
OUT_REPORT = bytes((i * 7 + 1) & 0xff for i in range(64))
IN_REPORT = bytes((255 - i * 3) & 0xff for i in range(64))


def input_events(data):
    """[(type, code, value)] of struct input_event records (x86_64)."""
    return [struct.unpack_from("<HHi", data, off + 16)
            for off in range(0, len(data) - len(data) % 24, 24)]


def check_local_input(tc, kbd):
    """A key press and a mouse move from the gadget reach the thin client's
    evdev nodes."""
    nodes = tc.sh(f"input_of $(usb_dev 1209 {kbd.pid:04x})").split()
    assert len(nodes) == 2, f"expected 2 input event nodes, got {nodes}"
    script = [f"for e in {' '.join(nodes)}; do bg /tmp/$e.log sh -c "
              f"\"timeout 4 cat /dev/input/$e > /tmp/$e.bin\" >/dev/null; done",
              "usleep 300000",
              # key 'a' down, all up; mouse: no buttons, x += 5
              f"printf '\\000\\000\\004\\000\\000\\000\\000\\000' | timeout 3 "
              f"dd of={kbd.nodes['kbd']} bs=8 2>/dev/null",
              f"printf '\\000\\000\\000\\000\\000\\000\\000\\000' | timeout 3 "
              f"dd of={kbd.nodes['kbd']} bs=8 2>/dev/null",
              f"printf '\\000\\005\\000' | timeout 3 dd of={kbd.nodes['mouse']} "
              f"bs=3 2>/dev/null",
              "wait_until 6 eval '! pidof timeout >/dev/null'"]
    tc.sh("\n".join(script), timeout=30)
    events = {}
    for e in nodes:
        events[e] = input_events(tc.ctl.run_bytes(f"cat /tmp/{e}.bin")[1])
    keys = [e for e, ev in events.items() if (EV_KEY, KEY_A, 1) in ev]
    rels = [e for e, ev in events.items() if (EV_REL, REL_X, 5) in ev]
    assert keys and rels and keys != rels, f"input events: {events}"
    return {e: len(ev) for e, ev in events.items()}


def test(td):
    t_start = time.monotonic()
    tc = ThinClient(td).start()
    kbd = tc.add_gadget(kbd_mouse_gadget())
    fido = tc.add_gadget(fido_gadget())
    tc.wait_drivers(kbd, {"1.0": "usbhid", "1.1": "usbhid"})
    tc.wait_drivers(fido, {"1.0": "usbhid"})
    tc.put_file("/tmp/in64", IN_REPORT)
    before = check_local_input(tc, kbd)

    port = harness.free_port()
    vdi = VdiGuest(td, slots=[("server", port)], modules=("usbhid", "hid_generic"),
                   files={"/data/out64": b"\0" + OUT_REPORT}).start()
    agent = tc.start_agent(f"[agent]\nlog_level = debug\n[usb]\n"
                           f"connect = 10.0.2.2:{port}\n")
    agent.wait_log(r'1209:7f1d "Rig FIDO Key" at \S+: redirected rw to', 30)
    agent.wait_log(r'1209:7b42 "Rig Keyboard Mouse" at \S+: stays local '
                   r'\(default policy: HID boot keyboard\)')
    tc.wait_drivers(fido, {"1.0": "usbfs"}, timeout=5)
    st = agent.devices()
    assert st["1209:7b42"]["decision"] == "local", st["1209:7b42"]
    assert st["1209:7b42"]["session"] is None, st["1209:7b42"]
    assert st["1209:7f1d"]["decision"] == "redirect rw", st["1209:7f1d"]
    assert st["1209:7f1d"]["session"]["state"] == "redirected", st["1209:7f1d"]

    # keyboard + mouse: still usbhid, events still readable, while the
    # agent runs
    assert tc.if_drivers(kbd) == {"1.0": "usbhid", "1.1": "usbhid"}, tc.if_drivers(kbd)
    during = check_local_input(tc, kbd)

    # FIDO in the VDI guest
    h = vdi.sh("wait_until 30 eval 'test -n \"$(hidraw_of 1209 7F1D)\"' && "
               "hidraw_of 1209 7F1D", timeout=40).strip()
    assert h.startswith("hidraw"), h
    # VDI -> gadget: an output report
    tc.sh(f"bg /tmp/fido-out.log sh -c 'timeout 20 dd if={fido.nodes['fido']} "
          f"of=/tmp/fido.out bs=64 count=1' >/dev/null")
    vdi.sh(f"timeout 10 dd if=/data/out64 of=/dev/{h} bs=65 count=1 2>&1")
    tc.sh("wait_until 15 test -s /tmp/fido.out", timeout=25)
    got = tc.ctl.run_bytes("cat /tmp/fido.out")[1]
    assert got == OUT_REPORT, f"gadget got {got.hex()}"
    # gadget -> VDI: an input report
    vdi.sh(f"bg /tmp/fido-in.log sh -c 'timeout 20 dd if=/dev/{h} "
           f"of=/tmp/fido.in bs=64 count=1' >/dev/null")
    time.sleep(0.5)
    tc.sh(f"timeout 10 dd if=/tmp/in64 of={fido.nodes['fido']} bs=64 count=1 2>&1")
    vdi.sh("wait_until 15 test -s /tmp/fido.in", timeout=25)
    got = vdi.ctl.run_bytes("cat /tmp/fido.in")[1]
    assert got == IN_REPORT, f"VDI hidraw got {got.hex()}"

    agent.stop()
    tc.wait_drivers(fido, {"1.0": "usbhid"})
    assert tc.if_drivers(kbd) == {"1.0": "usbhid", "1.1": "usbhid"}
    assert "cannot be watched by epoll" not in agent.fetch_log()
    vdi.poweroff()
    tc.stop()
    print(f"input events before the agent {before}, while it runs {during}; "
          f"FIDO as /dev/{h} in the VDI guest, 64-byte reports both ways; "
          f"status: keyboard {st['1209:7b42']['reason']!r}")
    print(f"thin client boot {tc.boot_s:.2f}s, VDI boot {vdi.boot_s:.2f}s; "
          f"total {time.monotonic() - t_start:.1f}s")


harness.main(test)
