#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Probe (not a ctest): can the thin-client VM's kernel give the agent a
real USB device with isochronous endpoints?  dummy_hcd has none (the UVC
gadget fails to bind: "uvc: Unable to allocate streaming EP"), so this
binds a UAC2 gadget (playback + capture) to usbip-vudc and attaches it over
loopback TCP to vhci-hcd in the same VM, then submits isochronous URBs to
both streaming endpoints through usbfs, as libusb does for the agent.

Observed with Debian's 6.1.0-57 (and the cause in the kernel source): the
device enumerates at high speed and snd-usb-audio binds, but every
isochronous URB completes with status -18 (EXDEV) on every packet, actual
length 0: vudc's transfer loop (drivers/usb/usbip/vudc_transfer.c) answers
isochronous URBs with "/* TODO: support */ urb->status = -EXDEV".  An iso
URB with more packets than its buffer holds at wMaxPacketSize is refused
with "CMD_SUBMIT: isoc invalid num packets N" and drops the usbip link.

    REDIR_USBIP_ISO_PROBE=build/tests/thinclient/usbip_iso_probe \\
        tests/thinclient/probe_vudc_iso.py
Prints the kernel log and the per-packet results; exits 0 if the URBs
moved data (the kernel path works), 1 if they all failed.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thinclient import ThinClient, harness  # noqa: E402

MODULES = ("usbip_vudc", "vhci_hcd", "usb_f_uac2", "snd_usb_audio")
VUDC = "/sys/devices/platform/usbip-vudc.0"
VHCI = "/sys/devices/platform/vhci_hcd.0"
GADGET = f"""G=/sys/kernel/config/usb_gadget/headset
mkdir $G && echo 0x1209 > $G/idVendor && echo 0x7a02 > $G/idProduct
mkdir $G/strings/0x409 $G/configs/c.1 $G/functions/uac2.h
echo 'Rig UAC2 Headset' > $G/strings/0x409/product
ln -s $G/functions/uac2.h $G/configs/c.1/
echo usbip-vudc.0 > $G/UDC
wait_until 10 test "$(cat {VUDC}/usbip_status)" = 1
"""


def test(td):
    probe = harness.find_program("REDIR_USBIP_ISO_PROBE", "usbip_iso_probe",
                                 "tests/thinclient")
    with open(probe, "rb") as f:
        tc = ThinClient(td, modules=MODULES,
                        files={"/usr/bin/usbip_iso_probe": (f.read(), 0o755)})
    tc.start()
    tc.sh(GADGET)
    tc.sh(f"usbip_iso_probe attach {VUDC} {VHCI} 0\n"
          "wait_until 20 usb_dev 1209 7a02 >/dev/null")
    dev = tc.sh("usb_dev 1209 7a02").strip()
    print("drivers:", tc.if_drivers("1209:7a02"))
    node = tc.sh(f"d=/sys/bus/usb/devices/{dev}; printf '/dev/bus/usb/%03d/%03d' "
                 f"$(cat $d/busnum) $(cat $d/devnum)")
    # UAC2 gadget: interface 1 = host playback (OUT 0x01), 2 = capture (IN)
    out = tc.sh(f"timeout 10 usbip_iso_probe iso {node} 1 1 0x01 8; "
                f"timeout 10 usbip_iso_probe iso {node} 2 1 0x83 8; "
                "dmesg | grep -i -E 'vhci|vudc|usbip|gadget|usb 9-|CMD_SUBMIT'",
                timeout=60)
    print(out)
    tc.stop()
    moved = [int(n) for n in re.findall(r" 0/(\d+)", out)]
    if not any(moved):
        raise AssertionError("no isochronous packet moved data: the "
                             "vudc/vhci kernel path cannot carry iso")


harness.main(test, name="probe_vudc_iso")
