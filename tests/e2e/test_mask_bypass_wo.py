#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""access=wo cannot be bypassed (issue 11): every way a hostile usbredir
peer has to read the medium of a cheap USB stick or USB-SATA bridge is
shown to return medium bytes under rw, and under wo not one byte of the
medium comes back in any packet, the guest gets a clean refusal, and writes
still land.  The checks are in maskbypass.py."""
import harness
import maskbypass


def test(td):
    maskbypass.run(td, "wo")


harness.main(test)
