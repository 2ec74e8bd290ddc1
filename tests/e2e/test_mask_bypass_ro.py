#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""access=ro cannot be bypassed (issue 11): every way a hostile usbredir
peer (any program in the VM with raw USB access) has to write to a cheap
USB stick or USB-SATA bridge is shown to reach the emulated device under
rw, and to be stopped under ro, with a clean answer to the guest and a
disk that still works.  The checks are in maskbypass.py."""
import harness
import maskbypass


def test(td):
    maskbypass.run(td, "ro")


harness.main(test)
