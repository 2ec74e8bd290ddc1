#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Deterministic raw disk images for redir-agent end-to-end tests.

LBA 0 is a tiny x86 real-mode boot sector that prints a message to QEMU's
isa-debugcon (I/O port 0x402) and to COM1 (0x3F8), then halts.  SeaBIOS
boots it from the redirected USB mass-storage device, which proves the
whole path (agent -> usbredir -> QEMU -> SeaBIOS READ(10)) end to end.

Every other sector holds a deterministic pattern, so a test can check any
block it reads back:

    bytes 0..17   b"RDA-LBA:%010d" % lba
    bytes 18..511 a slice of a fixed pseudo-random block (SHAKE-128 output),
                  starting at an offset derived from the LBA.

Standard library only.  Also usable from the command line:

    diskimage.py IMAGE [--size-mib N] [--message TEXT]
"""

import argparse
import hashlib
import os
import sys

SECTOR = 512
DEFAULT_MESSAGE = "REDIR-AGENT-DEMO: booted from the redirected USB disk"

_HEADER_FMT = b"RDA-LBA:%010d"
_HEADER_LEN = len(_HEADER_FMT % 0)          # 18
_FILL_LEN = SECTOR - _HEADER_LEN            # 494
_BASE_LEN = 1 << 20                         # 1 MiB of pseudo-random bytes
_base_block = None

LOAD_ADDR = 0x7C00                          # where the BIOS loads LBA 0
DEBUGCON_PORT = 0x402
COM1_PORT = 0x3F8


# --------------------------------------------------------------------------
# Boot sector (hand-assembled 16-bit real-mode code)
# --------------------------------------------------------------------------

def _u16(v):
    return bytes((v & 0xFF, (v >> 8) & 0xFF))


def boot_sector(message=DEFAULT_MESSAGE):
    """Return the 512-byte boot sector printing `message` + "\\n"."""
    text = message.encode("ascii") + b"\n\0"
    if b"\0" in text[:-1]:
        raise ValueError("message must not contain NUL")

    # Program: labels (str) and instructions (bytes, fixup, comment).
    # fixup: None, ("rel8", label) for a short jump whose displacement is
    # the last byte, or ("abs16", label) for a 16-bit address in bytes 1..2.
    # Everything runs with CS:IP = 0:7C00 or 07C0:0000 -- only relative
    # jumps and DS-based data (DS = 0) are used, so either works.
    prog = [
        (b"\x31\xC0", None, "xor ax, ax"),
        (b"\x8E\xD8", None, "mov ds, ax          ; DS = 0"),
        (b"\xFC", None, "cld                 ; lodsb increments SI"),
        (b"\xBE\0\0", ("abs16", "msg"), "mov si, msg"),
        "next",
        (b"\xAC", None, "lodsb               ; AL = [DS:SI++]"),
        (b"\x84\xC0", None, "test al, al"),
        (b"\x74\0", ("rel8", "halt"), "jz halt             ; NUL ends the text"),
        (b"\xBA" + _u16(DEBUGCON_PORT), None, "mov dx, 0x402       ; isa-debugcon"),
        (b"\xEE", None, "out dx, al"),
        (b"\xBA" + _u16(COM1_PORT), None, "mov dx, 0x3F8       ; COM1 THR"),
        (b"\xEE", None, "out dx, al"),
        (b"\xEB\0", ("rel8", "next"), "jmp short next"),
        "halt",
        (b"\xFA", None, "cli"),
        (b"\xF4", None, "hlt"),
        (b"\xEB\0", ("rel8", "halt"), "jmp short halt      ; in case of NMI"),
        "msg",
    ]
    labels, pos = {}, 0
    for item in prog:                       # pass 1: addresses
        if isinstance(item, str):
            labels[item] = pos
        else:
            pos += len(item[0])
    out, pos = bytearray(), 0
    for item in prog:                       # pass 2: encode with fixups
        if isinstance(item, str):
            continue
        b, fix, _comment = item
        b = bytearray(b)
        pos += len(b)
        if fix and fix[0] == "rel8":
            d = labels[fix[1]] - pos
            assert -128 <= d <= 127, d
            b[-1] = d & 0xFF
        elif fix and fix[0] == "abs16":
            b[1:3] = _u16(LOAD_ADDR + labels[fix[1]])
        out += b
    sector = bytes(out) + text
    if len(sector) > 510:
        raise ValueError("message too long for the boot sector")
    return sector + b"\0" * (510 - len(sector)) + b"\x55\xAA"


# --------------------------------------------------------------------------
# Data pattern
# --------------------------------------------------------------------------

def _base():
    global _base_block
    if _base_block is None:
        _base_block = hashlib.shake_128(b"redir-agent test pattern v1").digest(
            _BASE_LEN + SECTOR)
    return _base_block


def _fill_offset(lba):
    # Cheap multiplicative hash of the LBA -> offset into the base block.
    return ((lba * 0x9E3779B1) >> 7) % _BASE_LEN


def pattern_sector(lba):
    """The 512 bytes expected at `lba` (lba >= 1) of an image."""
    if lba < 1:
        raise ValueError("LBA 0 is the boot sector; use boot_sector()")
    off = _fill_offset(lba)
    return (_HEADER_FMT % lba) + _base()[off:off + _FILL_LEN]


def expected_sector(lba, message=DEFAULT_MESSAGE):
    """The 512 bytes expected at `lba`, including LBA 0."""
    return boot_sector(message) if lba == 0 else pattern_sector(lba)


def make_disk_image(path, size_mib=16, message=DEFAULT_MESSAGE):
    """Write the image; return its SHA-256 (hex)."""
    if size_mib < 1:
        raise ValueError("size_mib must be >= 1")
    total = size_mib * 2048
    base = _base()
    hdr = _HEADER_FMT
    h = hashlib.sha256()
    per_chunk = 2048                          # 1 MiB per write
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        for first in range(0, total, per_chunk):
            parts = []
            for lba in range(first, first + per_chunk):
                if lba == 0:
                    parts.append(boot_sector(message))
                    continue
                off = _fill_offset(lba)
                parts.append(hdr % lba)
                parts.append(base[off:off + _FILL_LEN])
            chunk = b"".join(parts)
            h.update(chunk)
            f.write(chunk)
    os.replace(tmp, path)
    return h.hexdigest()


def expected_sha256(path, offset=0, length=None):
    """SHA-256 (hex) of `path`, or of `length` bytes from `offset`."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left is None or left > 0:
            n = 1 << 20 if left is None else min(1 << 20, left)
            b = f.read(n)
            if not b:
                break
            h.update(b)
            if left is not None:
                left -= len(b)
    return h.hexdigest()


def verify_image(path, message=DEFAULT_MESSAGE):
    """Return the first LBA whose contents differ from the pattern, or None."""
    with open(path, "rb") as f:
        lba = 0
        while True:
            s = f.read(SECTOR)
            if not s:
                return None
            if s != expected_sector(lba, message):
                return lba
            lba += 1


def _main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image")
    ap.add_argument("--size-mib", type=int, default=16)
    ap.add_argument("--message", default=DEFAULT_MESSAGE)
    a = ap.parse_args(argv)
    print(make_disk_image(a.image, a.size_mib, a.message))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
