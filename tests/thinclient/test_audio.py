#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig: isochronous OUT on a real kernel USB stack.  Gadgets
cannot have isochronous endpoints here (README: "Isochronous devices"),
but QEMU's own usb-audio (a UAC1 stereo speaker, 48 kHz S16, isochronous
OUT at full speed) on an xHCI of the thin-client VM is a real USB device to
the thin client's kernel: snd-usb-audio binds it, and the agent takes it
through real usbfs.

Checks: the speaker (46f4:0002) is redirected rw (usbfs on the thin
client, snd-usb-audio gone); in the VDI guest snd-usb-audio binds it, the
playback volume is set to its maximum (QEMU scales samples by it: at the
maximum it passes them through), the guest plays a ramp (+5 per sample,
both channels) for 3 s; the samples QEMU wrote to its wav backend on the
host continue the ramp for at least 80 % of the played length (runs of at
least 10 ms counted); no USB reset in the VDI guest's log.  SIGTERM: the
agent exits 0 and snd-usb-audio is bound again on the thin client.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thinclient import ThinClient, VdiGuest, harness  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "guest"))
import isodev  # noqa: E402

SPEAKER = "46f4:0002"
SECONDS = 3
RATE = 48000
STEP = 5


def ramp_runs(data, channels=2):
    """Samples of the left channel in runs (>= 10 ms) that continue the
    guest's ramp (+STEP mod 2^16), and the longest run."""
    n = len(data) // (2 * channels)
    left = struct.unpack_from(f"<{n * channels}h", data)[::channels]
    total = longest = run = 0
    for a, b in zip(left, left[1:]):
        if (b - a) & 0xffff == STEP:
            run += 1
            continue
        if run >= RATE // 100:
            total += run + 1
        longest = max(longest, run + 1)
        run = 0
    if run >= RATE // 100:
        total += run + 1
    return total, max(longest, run + 1)


def test(td):
    wav = td.file("tc-speaker.wav")
    tc = ThinClient(td, modules=("xhci_pci", "snd_usb_audio"), extra_args=[
        "-audiodev", f"wav,id=spk,path={wav},out.frequency={RATE},"
        "out.channels=2,out.format=s16",
        "-device", "qemu-xhci,id=txhci",
        "-device", "usb-audio,audiodev=spk,bus=txhci.0"]).start()
    tc.wait_drivers(SPEAKER, lambda d: d and all(v == "snd-usb-audio"
                                                 for v in d.values()), 30)
    port = harness.free_port()
    vdi = VdiGuest(td, slots=[("server", port)], modules=("snd_usb_audio",),
                   files={"/rig/iso.sh": isodev.GUEST_LIB,
                          **isodev.guest_tools()}).start()
    vdi.sh("cat /rig/iso.sh >> /rig/vdi.sh")
    agent = tc.start_agent(f"[usb]\nconnect = 10.0.2.2:{port}\n")
    agent.wait_log(r'46f4:0002 "[^"]*" at \S+: redirected rw to', 60)
    tc.wait_drivers(SPEAKER, lambda d: d and all(v == "usbfs" for v in d.values()),
                    30)
    vdi.sh("wait_for 60 test -c /dev/snd/pcmC0D0p", timeout=90)
    print(vdi.sh("cat /proc/asound/cards; pcm_io maxvol /dev/snd/controlC0"))
    before = os.path.getsize(wav)
    out = vdi.sh(f"pcm_io play /dev/snd/pcmC0D0p {SECONDS} 2", timeout=60)
    print(out)
    resets = int(vdi.sh("dmesg | grep -c 'reset .*USB device' || true"))
    with open(wav, "rb") as f:
        f.seek(before)
        data = f.read()
    total, longest = ramp_runs(data)
    want = SECONDS * RATE
    print(f"wav: {len(data) // 4} stereo frames after the start of playback; "
          f"{total} samples continue the ramp ({100 * total / want:.0f} % of "
          f"{want}), longest run {longest} ({longest / RATE:.2f} s)")
    assert total >= 0.8 * want, \
        f"only {total} of {want} played samples reached QEMU's speaker in order"
    assert resets == 0, f"{resets} USB resets in the VDI guest"
    agent.stop()
    tc.wait_drivers(SPEAKER, lambda d: d and all(v == "snd-usb-audio"
                                                 for v in d.values()), 30)
    vdi.poweroff()
    tc.stop()


harness.main(test)
