#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""headset: an emulated USB Audio Class 1 headset (usbemu "headset",
isochronous OUT and IN at full speed) is redirected by the agent into a
Linux guest, where snd-usb-audio binds it.

Checks, with playback and capture running at the same time (a call):
capture: the guest reads the whole length of the microphone's ramp (+3
per sample) and the samples continue it, with at most MAX_BREAKS_S
discontinuities per second (a packet lost or late: isochronous data is
never retried, and a TCG guest on a busy host misses some); playback: the
guest plays a ramp (+5 per sample), the emulated headset receives at least
90 % of the samples and they continue the ramp within the same bound; no
USB reset or error in the guest log.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from linuxguest import LinuxGuest, harness  # noqa: E402
from harness import Agent, Fixture, free_port  # noqa: E402
import isodev  # noqa: E402

SECONDS = float(os.environ.get("REDIR_HEADSET_SECONDS", "3"))
MAX_BREAKS_S = 4

GUEST_SCRIPT = isodev.GUEST_LIB + r"""
wait_for 60 test -c /dev/snd/pcmC0D0c || fail "no capture PCM within 60 s"
wait_for 10 test -c /dev/snd/pcmC0D0p || fail "no playback PCM"
result card "$(cat /proc/asound/card0/id)"
pcm_io capture /dev/snd/pcmC0D0c @SECONDS@ > /tmp/cap.txt 2>&1 &
cap=$!
pcm_io play /dev/snd/pcmC0D0p @SECONDS@ || fail "playback failed"
wait $cap || { cat /tmp/cap.txt; fail "capture failed"; }
cat /tmp/cap.txt
result usb_errors "$(usb_errors)"
"""


def test(td):
    fx = Fixture(td).start()
    fx.add("headset")
    port = free_port()
    guest = LinuxGuest(td, GUEST_SCRIPT.replace("@SECONDS@", str(SECONDS)),
                       slots=[("server", port)], modules=isodev.GUEST_MODULES,
                       files=isodev.guest_tools())
    guest.start()
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\n")
    agent.wait_log(r'1209:7aa2 "Emulated Headset" at 1-\d+: redirected (rw )?to',
                   timeout=30)
    res = guest.wait_done(timeout=200).require_ok()
    want = int(SECONDS * 48000)
    # Capture: the whole length read, the ramp intact.
    assert int(res["cap_samples"]) >= want, res.results
    max_breaks = MAX_BREAKS_S * SECONDS + 2 * int(res["cap_xruns"])
    assert int(res["cap_breaks"]) <= max_breaks, \
        f"captured ramp broken {res['cap_breaks']} times:\n{res.tail()}"
    assert int(res["play_samples"]) >= want, res.results
    # Playback: what reached the headset.  Its report comes when the guest
    # closes the stream (alternate setting 0); snd-usb-audio's probe at
    # attach already switched the interface on and off once (0 samples).
    rx = re.compile(r"headset playback stopped: ([1-9]\d*) samples, (\d+) "
                    r"breaks, (\d+) silent")
    harness.wait_for(lambda: rx.search(open(fx.log_path).read()), 10,
                     "the headset's playback report")
    m = rx.findall(open(fx.log_path).read())[-1]
    got, breaks, silent = map(int, m)
    assert got >= 0.9 * want, f"headset received {got} of {want} samples"
    assert breaks <= MAX_BREAKS_S * SECONDS + 2 * int(res["play_xruns"]), \
        f"played ramp broken {breaks} times (xruns {res['play_xruns']})"
    assert res["usb_errors"] == "0", f"guest logged USB errors:\n{res.tail()}"
    assert res["rig.usb_resets"] == "0", f"guest saw USB resets:\n{res.tail()}"
    agent.stop()
    print(f"capture: {res['cap_samples']} samples, {res['cap_breaks']} breaks, "
          f"{res['cap_xruns']} xruns; playback: guest wrote "
          f"{res['play_samples']} ({res['play_xruns']} xruns), headset got "
          f"{got} in sequence with {breaks} breaks, {silent} silent samples")


harness.main(test)
