#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpus of fuzz_mask: one input per known bypass of the
read-only/write-only mask (issue 11), under ro and under wo.

    make_mask_seeds.py OUT_DIR

An input is: byte 0 access (even: ro, odd: wo), byte 1 chunk size - 1,
then the guest's usbredir stream (hello with 64-bit ids and 32-bit bulk
lengths, then the attack)."""
import os
import struct
import sys

HELLO, SET_CONFIGURATION, SET_ALT = 0, 6, 9
START_INTR, ALLOC_STREAMS, START_BULK_RECV = 15, 18, 25
CONTROL, BULK, INTERRUPT = 100, 101, 103
CAPS = 1 << 5 | 1 << 6  # 64-bit ids, 32-bit bulk lengths


class Stream:
    def __init__(self):
        self.b = bytearray()
        self.id = 0
        self.packet(HELLO, b"seed".ljust(64, b"\0") + struct.pack("<I", CAPS),
                    hello=True)

    def packet(self, ptype, payload, hello=False):
        self.id += 1
        head = struct.pack("<III", ptype, len(payload), self.id)
        if not hello:
            head += struct.pack("<I", 0)
        self.b += head + payload

    def bulk(self, ep, data=b"", length=None, stream=0):
        length = len(data) if length is None else length
        self.packet(BULK, struct.pack("<BBHIH", ep, 0, length & 0xffff,
                                      stream, length >> 16) + data)

    def control(self, rtype, req, value, index, data=b"", length=None):
        length = len(data) if length is None else length
        self.packet(CONTROL, struct.pack("<BBBBHHH", 0x80 if rtype & 0x80
                                         else 0, req, rtype, 0, value, index,
                                         length) + data)

    def cbw(self, cdb, data_len=512, data_in=False, cb_len=None, size=31,
            ep=0x02):
        cb_len = len(cdb) if cb_len is None else cb_len
        c = struct.pack("<IIIBBB", 0x43425355, 0x101, data_len,
                        0x80 if data_in else 0, 0, cb_len)
        c += bytes(cdb).ljust(16, b"\0")
        c = c.ljust(size, b"\0")[:size]
        self.bulk(ep, c)
        if not data_in and data_len:
            self.bulk(0x02, b"\xee" * data_len)
        self.bulk(0x81, length=13)


def write10(s, **kw):
    s.cbw([0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0], **kw)


def read10(s, **kw):
    s.cbw([0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0], data_in=True, **kw)


def attacks():
    ata16 = [0x85, 0x0b, 0x06, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0x40, 0x34, 0]
    yield "cb_len_0", lambda s, ro: (write10 if ro else read10)(s, cb_len=0)
    yield "cb_len_17", lambda s, ro: (write10 if ro else read10)(s, cb_len=17)
    yield "cb_len_32", lambda s, ro: (write10 if ro else read10)(s, cb_len=32)
    yield "cbw_512_bytes", lambda s, ro: (write10 if ro else read10)(
        s, size=512)
    yield "ata_pt16", lambda s, ro: s.cbw(ata16, data_in=not ro)
    yield "ata_pt12", lambda s, ro: s.cbw([0xa1, 0x0a, 0x06, 0, 1, 0, 0, 0,
                                           0, 0x34, 0, 0], data_in=not ro)
    yield "write32", lambda s, ro: s.cbw([0x7f, 0, 0, 0, 0, 0, 0, 0x18]
                                         + [0] * 8, data_in=not ro)
    yield "vendor_c1", lambda s, ro: s.cbw([0xc1] + [0] * 9, data_in=not ro)
    yield "sanitize", lambda s, ro: s.cbw([0x48, 1] + [0] * 8, data_len=0)
    yield "security_out", lambda s, ro: s.cbw([0xb5] + [0] * 11)
    yield "bulk_receiving", lambda s, ro: (
        read10(s), s.packet(START_BULK_RECV, struct.pack("<IIBB", 0, 512,
                                                         0x81, 4)))
    yield "interrupt", lambda s, ro: (
        s.packet(INTERRUPT, struct.pack("<BBH", 0x04, 0, 8) + b"\xaa" * 8),
        s.packet(START_INTR, b"\x85"))
    yield "set_configuration", lambda s, ro: (
        s.packet(SET_CONFIGURATION, b"\x02"), write10(s, ep=0x03))
    yield "set_alt_setting", lambda s, ro: (
        s.packet(SET_ALT, b"\x00\x01"), s.bulk(0x02, b"\xee" * 512))
    yield "control_set_config", lambda s, ro: s.control(0x00, 9, 2, 0)
    yield "control_set_interface", lambda s, ro: s.control(0x01, 11, 1, 0)
    yield "vendor_request", lambda s, ro: (
        s.control(0x40, 1, 0, 0, b"\xee" * 64),
        s.control(0xc0, 1, 0, 0, length=64))
    yield "bulk_stream", lambda s, ro: (
        s.packet(ALLOC_STREAMS, struct.pack("<II", 0x6, 4)),
        s.bulk(0x02, b"\x55" * 31, stream=1))
    yield "endpoint_alias", lambda s, ro: (write10 if ro else read10)(
        s, ep=0x12)


def main(out):
    os.makedirs(out, exist_ok=True)
    for name, attack in attacks():
        for ro in (True, False):
            s = Stream()
            attack(s, ro)
            for chunk in (64, 7):
                path = os.path.join(out, f"{name}_{'ro' if ro else 'wo'}_"
                                    f"{chunk}")
                with open(path, "wb") as f:
                    f.write(bytes([0 if ro else 1, chunk - 1]) + s.b)


if __name__ == "__main__":
    main(sys.argv[1])
