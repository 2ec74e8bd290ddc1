# SPDX-License-Identifier: MIT
"""Attacks on access=ro / access=wo, played by a hostile usbredir peer against
the real agent and the emulated cheap disk (usbemu "cheapdisk").

Used by test_mask_bypass_ro.py and test_mask_bypass_wo.py.  Each check is
one attack; it runs in its own usbredir session:

  * under rw (no mask) it must reach the device: the image changes, the
    medium's bytes come back, or the fixture logs the event.  If it does
    not, the check proves nothing and is reported INVALID.
  * under ro / wo it must not: the image is byte-identical (ro), no byte of
    the medium comes back in any packet (wo), the fixture logs no medium
    write (ro) or read (wo) and none of the check's own evidence; the guest
    gets an answer to every request within the time bound (no hang), that
    answer is a refusal (CSW status 1 or 2, or a stall / error status)
    rather than a success, the session stays up, the agent keeps running,
    and after Bulk-Only reset recovery the disk still works (ro: READ(10)
    returns the right bytes; wo: WRITE(10) lands).

Environment: REDIR_MASK_CHECKS=name,name,... runs only those checks;
REDIR_MASK_REPORT=FILE writes the result table (JSON) there.
"""

import json
import os
import re
import struct
import time

import harness
from harness import Agent, Fixture, diskimage, free_port
import usbredirpeer as ur
from usbredirpeer import BulkOnly, PeerClosed, PeerTimeout, read10, write10

BLOCK = 512
IMAGE_MIB = 1
WAIT = 3.0            # seconds any single reply may take (a hang otherwise)
SWEEP_OPCODES = range(0xC0, 0x100)

EP_OUT, EP_IN = 0x02, 0x81          # Bulk-Only, configuration 1
EP2_OUT, EP2_IN = 0x03, 0x84        # Bulk-Only, configuration 2
EP_INTR_OUT, EP_INTR_IN = 0x04, 0x85
REQ_VENDOR_MEDIUM = 0xA5

# LBAs: attacks aim at 100 + n, recovery reads 3 and writes 9.
RECOVERY_READ_LBA = 3
RECOVERY_WRITE_LBA = 9


def payload(tag, n=BLOCK):
    """Data a test writes: recognisable, never part of the image."""
    unit = f"<MASKTEST {tag}>".encode()
    return (unit * (n // len(unit) + 1))[:n]


# --------------------------------------------------------------------------
# The medium: pristine content, restore, comparison, leak detection
# --------------------------------------------------------------------------

class Medium:
    """The disk image: a pattern where every sector is recognisable
    (diskimage: "RDA-LBA:%010d" + pseudo-random bytes)."""

    CHUNK = 16

    def __init__(self, path):
        self.path = path
        diskimage.make_disk_image(path, IMAGE_MIB)
        with open(path, "rb") as f:
            self.pristine = f.read()
        self._index = None

    def restore(self):
        # In place: usbemu keeps the file open.
        with open(self.path, "r+b") as f:
            f.write(self.pristine)
            f.flush()
            os.fsync(f.fileno())

    def read(self):
        with open(self.path, "rb") as f:
            return f.read()

    def changed_lbas(self, now=None):
        now = self.read() if now is None else now
        return [i // BLOCK for i in range(0, len(self.pristine), BLOCK)
                if now[i:i + BLOCK] != self.pristine[i:i + BLOCK]]

    def sector(self, lba):
        return self.pristine[lba * BLOCK:(lba + 1) * BLOCK]

    def index(self):
        """16-byte chunks of the image at every 8-byte step (low-entropy
        chunks left out): any copy of 23+ medium bytes contains one."""
        if self._index is None:
            idx = {}
            for off in range(0, len(self.pristine) - self.CHUNK + 1, 8):
                c = self.pristine[off:off + self.CHUNK]
                if len(set(c)) >= 6:
                    idx.setdefault(c, off)
            self._index = idx
        return self._index

    def find_leak(self, data):
        """(offset in data, offset in image) of medium bytes in data."""
        data = bytes(data)
        m = data.find(b"RDA-LBA:")
        if m >= 0:
            return m, self.pristine.find(data[m:m + 18])
        idx = self.index()
        for i in range(0, len(data) - self.CHUNK + 1):
            off = idx.get(data[i:i + self.CHUNK])
            if off is not None:
                return i, off
        return None


# --------------------------------------------------------------------------
# One session, and what an attack reports
# --------------------------------------------------------------------------

class Outcome:
    """What the guest was told.  refused: some answer said no (a failed or
    phase-error CSW, a stall, an error status); told_ok: every answer said
    yes.  Attacks record each answer with answer()."""

    def __init__(self):
        self.answers = []         # (what, "ok" | "refused: ...")
        self.notes = []

    def answer(self, what, ok, detail=""):
        self.answers.append((what, "ok" if ok else f"refused {detail}".strip()))
        return ok

    def result(self, what, r):
        """Records a BulkOnly Result."""
        ok = not r.refused()
        return self.answer(what, ok, repr(r))

    def status(self, what, st):
        return self.answer(what, st == ur.SUCCESS, ur.status_name(st))

    @property
    def refused(self):
        return any(a != "ok" for _, a in self.answers)

    def summary(self):
        return "; ".join(f"{w}: {a}" for w, a in self.answers)


class Session:
    def __init__(self, peer, access, fixture, agent):
        self.peer = peer
        self.access = access
        self.disk = BulkOnly(peer, EP_OUT, EP_IN)
        self.fixture = fixture
        self.agent = agent
        self.fx_off = os.path.getsize(fixture.log_path)
        self.agent_off = agent.log_offset()

    def fixture_events(self):
        with open(self.fixture.log_path, "rb") as f:
            f.seek(self.fx_off)
            text = f.read().decode("utf-8", "replace")
        return [ln.split(": ", 2)[-1] for ln in text.splitlines()
                if ln.startswith("usbemu: dev ")]

    def agent_lines(self):
        return self.agent.log_text(self.agent_off).splitlines()


# --------------------------------------------------------------------------
# CDBs
# --------------------------------------------------------------------------

def ata16(command, lba, count, write, dma=False):
    """ATA PASS-THROUGH(16), SAT-3 layout (EXTEND for the EXT commands)."""
    ext = command in (0x24, 0x25, 0x34, 0x35)
    proto = 6 if dma else (5 if write else 4)
    flags = (0 if write else 0x08) | 0x04 | 0x02   # T_DIR, BYT_BLOK, count
    return bytes([0x85, proto << 1 | ext, flags,
                  0, 0,                              # features
                  (count >> 8) & 0xFF if ext else 0, count & 0xFF,
                  (lba >> 24) & 0xFF if ext else 0, lba & 0xFF,
                  (lba >> 32) & 0xFF if ext else 0, (lba >> 8) & 0xFF,
                  (lba >> 40) & 0xFF if ext else 0, (lba >> 16) & 0xFF,
                  0x40 | (0 if ext else (lba >> 24) & 0x0F),
                  command, 0])


def ata12(command, lba, count, write, dma=False):
    proto = 6 if dma else (5 if write else 4)
    flags = (0 if write else 0x08) | 0x04 | 0x02
    return bytes([0xA1, proto << 1, flags, 0, count & 0xFF, lba & 0xFF,
                  (lba >> 8) & 0xFF, (lba >> 16) & 0xFF,
                  0x40 | ((lba >> 24) & 0x0F), command, 0, 0])


def rw32(lba, write):
    """READ(32)/WRITE(32): variable-length CDB, cut to the 16 bytes a CBW
    holds; the cheap disk takes the LBA from bytes 12-15."""
    return bytes([0x7F, 0, 0, 0, 0, 0, 0, 0x18, 0x00,
                  0x0B if write else 0x09, 0, 0]) + struct.pack(">I", lba)


def vendor10(op, lba, count):
    return struct.pack(">BBIBHB", op, 0, lba, 0, count, 0)


def le64(v):
    return struct.pack("<Q", v)


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------

CHECKS = []


def check(name, modes, kind, evidence=None, target=None):
    """kind: "write" (ro must stop it), "read" (wo must stop it), "state"
    (a device-state change that must not happen under the mask).
    evidence: regex on the fixture's events proving the device was reached
    (default: medium write/erase for "write", medium read for "read").
    target: LBA the attack writes or reads, if it aims at one."""
    def deco(fn):
        CHECKS.append(dict(name=name, modes=modes, kind=kind, fn=fn,
                           evidence=evidence, target=target,
                           doc=(fn.__doc__ or "").strip()))
        return fn
    return deco


# ---- positive controls ------------------------------------------------

@check("control_read10", ("ro",), "control", target=3)
def control_read10(s, o):
    """Positive control: under ro a normal READ(10) works and returns the
    medium's bytes."""
    r = s.disk.read10(RECOVERY_READ_LBA, 2)
    o.result("READ(10)", r)
    want = s.medium.sector(3) + s.medium.sector(4)
    if r.data != want or r.csw_status != 0:
        raise AssertionError(f"READ(10) under {s.access}: {r}, data "
                             f"{'right' if r.data == want else 'wrong'}")


@check("control_write10", ("ro", "wo"), "control", target=100)
def control_write10(s, o):
    """Positive control: WRITE(10).  ro: refused with CSW failed and
    REQUEST SENSE 07/27/00 (DATA PROTECT, WRITE PROTECTED), image intact.
    wo (and rw): it lands."""
    r = s.disk.write10(100, payload("write10"))
    o.result("WRITE(10)", r)
    if s.access == "ro":
        sense = s.disk.request_sense()
        o.notes.append(f"sense {sense}")
        if r.csw_status != 1 or sense != (7, 0x27, 0):
            raise AssertionError(f"ro WRITE(10): {r}, sense {sense}; want CSW "
                                 f"status 1 and sense 07/27/00")
    elif r.csw_status != 0:
        raise AssertionError(f"{s.access} WRITE(10) did not land: {r}")


@check("control_read10_wo", ("wo",), "control", target=101)
def control_read10_wo(s, o):
    """Positive control: under wo READ(10) is refused with CSW failed and
    REQUEST SENSE 07/20/02 (DATA PROTECT, ACCESS DENIED); no medium byte
    comes back.  (rw: it returns the sector.)"""
    r = s.disk.read10(101, 1)
    o.result("READ(10)", r)
    if s.access == "wo":
        sense = s.disk.request_sense()
        o.notes.append(f"sense {sense}")
        if r.csw_status != 1 or sense != (7, 0x20, 2):
            raise AssertionError(f"wo READ(10): {r}, sense {sense}; want CSW "
                                 f"status 1 and sense 07/20/02")


# ---- malformed CBWs (issue 11: bCBWCBLength 0/17/0x20 is forwarded) ----

def _cb_len_check(cb_len, lba):
    def write_fn(s, o):
        o.result(f"WRITE(10) bCBWCBLength {cb_len}", s.disk.command(
            write10(lba, 1), data_out=payload(f"cblen{cb_len}"), cb_len=cb_len))

    def read_fn(s, o):
        o.result(f"READ(10) bCBWCBLength {cb_len}", s.disk.command(
            read10(lba + 50, 1), data_in=BLOCK, cb_len=cb_len))
    write_fn.__doc__ = (f"A WRITE(10) CBW with bCBWCBLength {cb_len:#x}: "
                        f"the CBW check fails, the mask forwards it "
                        f"unchanged, and a cheap stick ignores the field.")
    read_fn.__doc__ = (f"A READ(10) CBW with bCBWCBLength {cb_len:#x}: "
                       f"forwarded unchanged, the medium comes back.")
    check(f"cb_len_{cb_len}_write", ("ro",), "write", target=lba)(write_fn)
    check(f"cb_len_{cb_len}_read", ("wo",), "read", target=lba + 50)(read_fn)


_cb_len_check(0, 110)
_cb_len_check(17, 111)
_cb_len_check(0x20, 112)


def _oversized_check(size, lba):
    def write_fn(s, o):
        o.result(f"WRITE(10) CBW in a {size}-byte transfer", s.disk.command(
            write10(lba, 1), data_out=payload(f"cbw{size}"), pad_to=size))

    def read_fn(s, o):
        o.result(f"READ(10) CBW in a {size}-byte transfer", s.disk.command(
            read10(lba + 50, 1), data_in=BLOCK, pad_to=size))
    write_fn.__doc__ = (f"A valid WRITE(10) CBW padded to a {size}-byte bulk "
                        f"transfer: not 31 bytes, so the mask does not look "
                        f"at it; firmware that only checks the signature "
                        f"runs it.")
    read_fn.__doc__ = (f"A READ(10) CBW padded to a {size}-byte transfer: "
                       f"not inspected, the medium comes back.")
    check(f"cbw_{size}_bytes_write", ("ro",), "write", target=lba)(write_fn)
    check(f"cbw_{size}_bytes_read", ("wo",), "read", target=lba + 50)(read_fn)


_oversized_check(32, 113)
_oversized_check(512, 114)


# ---- opcodes the denylists miss --------------------------------------

def _cdb_check(name, write_cdb, read_cdb, lba, doc_w, doc_r, data_len=None):
    def write_fn(s, o):
        o.result(name + " write", s.disk.command(
            write_cdb(lba), data_out=payload(name)))

    def read_fn(s, o):
        o.result(name + " read", s.disk.command(
            read_cdb(lba + 50), data_in=BLOCK))
    write_fn.__doc__ = doc_w
    read_fn.__doc__ = doc_r
    check(f"{name}_write", ("ro",), "write", target=lba)(write_fn)
    check(f"{name}_read", ("wo",), "read", target=lba + 50)(read_fn)


_cdb_check("ata16_pio", lambda l: ata16(0x30, l, 1, True),
           lambda l: ata16(0x20, l, 1, False), 120,
           "ATA PASS-THROUGH(16) (0x85) WRITE SECTORS: USB-SATA bridges "
           "write sectors through it; not on the write list.",
           "ATA PASS-THROUGH(16) READ SECTORS: reads sectors; not on the "
           "read list.")
_cdb_check("ata16_dma_ext", lambda l: ata16(0x35, l, 1, True, dma=True),
           lambda l: ata16(0x25, l, 1, False, dma=True), 121,
           "ATA PASS-THROUGH(16) WRITE DMA EXT (48-bit).",
           "ATA PASS-THROUGH(16) READ DMA EXT (48-bit).")
_cdb_check("ata12", lambda l: ata12(0xCA, l, 1, True, dma=True),
           lambda l: ata12(0xC8, l, 1, False, dma=True), 122,
           "ATA PASS-THROUGH(12) (0xa1) WRITE DMA.",
           "ATA PASS-THROUGH(12) READ DMA.")
_cdb_check("rw32", lambda l: rw32(l, True), lambda l: rw32(l, False), 123,
           "WRITE(32) (0x7f, service action 0x000b): not on the write list.",
           "READ(32) (0x7f, service action 0x0009): not on the read list.")
_cdb_check("vendor_cdb", lambda l: vendor10(0xC1, l, 1),
           lambda l: vendor10(0xC2, l, 1), 124,
           "Vendor opcode 0xc1 that writes the medium (0xc0-0xff all pass "
           "under ro).",
           "Vendor opcode 0xc2 that reads the medium.")


@check("sanitize", ("ro",), "write")
def sanitize(s, o):
    """SANITIZE (0x48) BLOCK ERASE: the whole medium goes; not on the write
    list."""
    o.result("SANITIZE", s.disk.command(bytes([0x48, 0x02, 0, 0, 0, 0, 0, 0,
                                               0, 0])))


@check("format_unit", ("ro",), "write")
def format_unit(s, o):
    """FORMAT UNIT (0x04): on today's write list; a regression guard for the
    allowlist."""
    o.result("FORMAT UNIT", s.disk.command(bytes([0x04, 0, 0, 0, 0, 0])))


@check("security_protocol_out", ("ro",), "write",
       evidence=r"SECURITY PROTOCOL OUT")
def security_protocol_out(s, o):
    """SECURITY PROTOCOL OUT (0xb5): TCG Opal / ATA security can lock or
    erase a drive with it; not on the write list."""
    cdb = bytes([0xB5, 0x01, 0x00, 0x01, 0, 0]) + struct.pack(">I", BLOCK) + \
        b"\0\0"
    o.result("SECURITY PROTOCOL OUT",
             s.disk.command(cdb, data_out=payload("secout")))


def _sweep(s, o):
    reached = []
    for op in SWEEP_OPCODES:
        r = s.disk.command(bytes([op]) + bytes(9))
        if not r.refused():
            reached.append(op)
        if r.stalled:
            s.disk.reset_recovery()
    # "ok" (told success) if any opcode was accepted
    o.answer(f"vendor opcodes {SWEEP_OPCODES[0]:#x}-{SWEEP_OPCODES[-1]:#x}",
             bool(reached), "all")
    if reached:
        o.notes.append(f"accepted: {' '.join(f'{op:02x}' for op in reached)}")


check("vendor_opcode_sweep", ("ro", "wo"), "state",
      evidence=r"scsi (c[0-9a-f]|d[0-9a-f]|e[0-9a-f]|f[0-9a-f]) ")(_sweep)
_sweep.__doc__ = """Every vendor opcode 0xc0-0xff, without data: a mask
with an allowlist lets none of them reach the device (what they do is up to
the vendor: write, erase, flash)."""


# ---- EP0: vendor requests --------------------------------------------

def _vendor_ctrl(recip, lba):
    def write_fn(s, o):
        st, _ = s.peer.control(0x40 | recip, REQ_VENDOR_MEDIUM, lba, 0,
                               data=payload(f"ctrl{recip}"), timeout=WAIT)
        o.status(f"vendor request {0x40 | recip:#04x} OUT", st)

    def read_fn(s, o):
        st, data = s.peer.control(0xC0 | recip, REQ_VENDOR_MEDIUM, lba + 50,
                                  0, length=BLOCK, timeout=WAIT)
        o.status(f"vendor request {0xC0 | recip:#04x} IN", st)
    write_fn.__doc__ = (f"A vendor control-OUT request (bmRequestType "
                        f"{0x40 | recip:#04x}) that writes the medium: "
                        f"control requests are not looked at.")
    read_fn.__doc__ = (f"A vendor control-IN request (bmRequestType "
                       f"{0xC0 | recip:#04x}) that reads the medium.")
    tag = "device" if recip == 0 else "interface"
    check(f"vendor_request_{tag}_write", ("ro",), "write",
          target=lba)(write_fn)
    check(f"vendor_request_{tag}_read", ("wo",), "read",
          target=lba + 50)(read_fn)


_vendor_ctrl(0, 130)
_vendor_ctrl(1, 131)


# ---- configurations and alternate settings ---------------------------

@check("set_configuration_write", ("ro",), "write", target=140)
def set_configuration_write(s, o):
    """usbredir set_configuration(2), then WRITE(10) on configuration 2's
    Bulk-Only endpoints (0x03/0x84): only the active configuration was
    analysed, so the mask does not know them."""
    try:
        st, cfg = s.peer.set_configuration_sync(2, timeout=WAIT)
        o.status(f"set_configuration 2 (now {cfg})", st)
        d2 = BulkOnly(s.peer, EP2_OUT, EP2_IN)
        o.result("WRITE(10) on 0x03", d2.write10(140, payload("config2")))
    finally:
        s.peer.set_configuration_sync(1, timeout=WAIT)


@check("set_configuration_read", ("wo",), "read", target=190)
def set_configuration_read(s, o):
    """usbredir set_configuration(2), then READ(10) on 0x84."""
    try:
        st, cfg = s.peer.set_configuration_sync(2, timeout=WAIT)
        o.status(f"set_configuration 2 (now {cfg})", st)
        d2 = BulkOnly(s.peer, EP2_OUT, EP2_IN)
        o.result("READ(10) on 0x84", d2.read10(190, 1))
    finally:
        s.peer.set_configuration_sync(1, timeout=WAIT)


def _alt_write(s, o, lba):
    st, _, _ = s.peer.bulk(EP_OUT, le64(lba * BLOCK) + payload("alt1"),
                           timeout=WAIT)
    o.status("raw bulk OUT on 0x02", st)


def _alt_read(s, o, lba):
    st, _, _ = s.peer.bulk(EP_OUT, le64(lba * BLOCK), timeout=WAIT)
    o.status("raw pointer OUT on 0x02", st)
    st, data, _ = s.peer.bulk(EP_IN, length=BLOCK, timeout=WAIT)
    o.status("raw bulk IN on 0x81", st)


@check("set_alt_setting_write", ("ro",), "write", target=141)
def set_alt_setting_write(s, o):
    """usbredir set_alt_setting(0, 1): the vendor raw mode on the same
    endpoints 0x02/0x81; a bulk OUT that is not 31 bytes is forwarded."""
    try:
        st, alt = s.peer.set_alt_setting_sync(0, 1, timeout=WAIT)
        o.status(f"set_alt_setting 0/1 (now {alt})", st)
        _alt_write(s, o, 141)
    finally:
        s.peer.set_alt_setting_sync(0, 0, timeout=WAIT)


@check("set_alt_setting_read", ("wo",), "read", target=191)
def set_alt_setting_read(s, o):
    """usbredir set_alt_setting(0, 1), then raw bulk IN on 0x81."""
    try:
        st, alt = s.peer.set_alt_setting_sync(0, 1, timeout=WAIT)
        o.status(f"set_alt_setting 0/1 (now {alt})", st)
        _alt_read(s, o, 191)
    finally:
        s.peer.set_alt_setting_sync(0, 0, timeout=WAIT)


def _raw_set_interface(s, o, alt):
    st, _ = s.peer.control(0x01, ur.REQ_SET_INTERFACE, alt, 0, timeout=WAIT)
    return st


@check("control_set_interface_write", ("ro",), "write", target=142)
def control_set_interface_write(s, o):
    """SET_INTERFACE(0, 1) as a raw control request (QEMU turns the guest's
    into set_alt_setting, a hostile peer need not): usbredirhost forwards
    it, its own view stays at alternate setting 0, then raw bulk OUT."""
    try:
        o.status("control SET_INTERFACE 0/1", _raw_set_interface(s, o, 1))
        _alt_write(s, o, 142)
    finally:
        _raw_set_interface(s, o, 0)


@check("control_set_interface_read", ("wo",), "read", target=192)
def control_set_interface_read(s, o):
    """Raw control SET_INTERFACE(0, 1), then raw bulk IN on 0x81."""
    try:
        o.status("control SET_INTERFACE 0/1", _raw_set_interface(s, o, 1))
        _alt_read(s, o, 192)
    finally:
        _raw_set_interface(s, o, 0)


@check("control_set_configuration", ("ro", "wo"), "state",
       evidence=r"reset; configuration 2")
def control_set_configuration(s, o):
    """SET_CONFIGURATION(2) as a raw control request: usbredirhost forwards
    it without updating its own view (it still thinks configuration 1 and
    will not restore 1 on release), so the device and the mask's analysis
    part ways.  Under the mask the configuration must stay locked."""
    try:
        st, _ = s.peer.control(0x00, ur.REQ_SET_CONFIGURATION, 2, 0,
                               timeout=WAIT)
        o.status("control SET_CONFIGURATION 2", st)
        st, data = s.peer.control(0x80, ur.REQ_GET_CONFIGURATION, 0, 0,
                                  length=1, timeout=WAIT)
        o.notes.append(f"GET_CONFIGURATION -> {ur.status_name(st)} "
                       f"{data.hex()}")
    finally:
        s.peer.control(0x00, ur.REQ_SET_CONFIGURATION, 1, 0, timeout=WAIT)


# ---- interrupt, bulk receiving, bulk streams, endpoint aliases -------

@check("interrupt_out_write", ("ro",), "write", target=150)
def interrupt_out_write(s, o):
    """Interrupt OUT on the vendor interface (0x04) that writes the medium:
    only bulk packets are inspected."""
    pid = s.peer.interrupt_packet(EP_INTR_OUT, le64(150 * BLOCK) +
                                  payload("intr", 56))
    p = s.peer.wait_reply(pid, ur.INTERRUPT_PACKET, WAIT)
    o.status("interrupt OUT on 0x04", p.status)


@check("interrupt_receiving_read", ("wo",), "read", target=1)
def interrupt_receiving_read(s, o):
    """start_interrupt_receiving on 0x85: medium bytes come back as
    interrupt packets (from LBA 1)."""
    pid = s.peer.start_interrupt_receiving(EP_INTR_IN)
    st = s.peer.wait_reply(pid, ur.INTERRUPT_RECEIVING_STATUS, WAIT).status
    o.status("start_interrupt_receiving 0x85", st)
    if st == ur.SUCCESS:
        try:
            p = s.peer.wait(lambda p: p.type == ur.INTERRUPT_PACKET and
                            p.endpoint == EP_INTR_IN, 2.0,
                            "an interrupt packet")
            o.answer("interrupt IN data", p.status == ur.SUCCESS and
                     p.data != b"", ur.status_name(p.status))
        except PeerTimeout:
            o.answer("interrupt IN data", False, "none came")
        s.peer.stop_interrupt_receiving(EP_INTR_IN)
        s.peer.wait_type(ur.INTERRUPT_RECEIVING_STATUS, WAIT)


@check("bulk_receiving_read", ("wo",), "read", target=196)
def bulk_receiving_read(s, o):
    """start_bulk_receiving on the Bulk-Only IN endpoint 0x81, then a READ
    (10) CBW: data and CSW come back as buffered_bulk_packets, which the
    mask does not inspect (whatever a command it let through returns goes
    straight to the guest), and the answers it gives for refused commands
    only go to bulk_packet IN requests, so the guest never gets a CSW.  It
    must get a refusal: the stream refused, or a failed CSW."""
    pid = s.peer.start_bulk_receiving(EP_IN, BLOCK, 2)
    st = s.peer.wait_reply(pid, ur.BULK_RECEIVING_STATUS, WAIT).status
    o.status("start_bulk_receiving 0x81", st)
    if st != ur.SUCCESS:
        return
    try:
        st = s.disk.send_cbw(s.disk.next_tag(), read10(196, 1), BLOCK, True,
                             timeout=WAIT)
        o.status("READ(10) CBW", st)
        got = b""
        deadline = time.monotonic() + WAIT
        csw = None
        while csw is None:
            p = s.peer.wait(lambda p: p.type == ur.BUFFERED_BULK_PACKET,
                            max(0.1, deadline - time.monotonic()),
                            "buffered bulk data / CSW")
            got += p.data
            if len(p.data) == ur.CSW_LEN and p.data[:4] == b"USBS":
                csw = ur.Csw(p.data)
        o.notes.append(f"{len(got)} buffered bytes")
        o.answer("CSW", csw.status == 0, repr(csw))
    except PeerTimeout as e:
        o.notes.append(f"no CSW: {e}")
        raise
    finally:
        s.peer.stop_bulk_receiving(EP_IN)
        try:
            s.peer.wait_type(ur.BULK_RECEIVING_STATUS, WAIT)
        except PeerTimeout:
            pass


def _stream_cmd(s, o, write):
    pid = s.peer.alloc_bulk_streams((1 << 2) | (1 << 17), 4)
    st = s.peer.wait_reply(pid, ur.BULK_STREAMS_STATUS, WAIT).status
    o.notes.append(f"alloc_bulk_streams: {ur.status_name(st)}")
    if write:
        r = s.disk.command(write10(160, 1), data_out=payload("stream"),
                           stream_id=1)
    else:
        r = s.disk.command(read10(197, 1), data_in=BLOCK, stream_id=1)
    o.result(("WRITE" if write else "READ") + "(10) on stream 1", r)


@check("bulk_stream_write", ("ro",), "write", target=160)
def bulk_stream_write(s, o):
    """WRITE(10) sent as bulk-stream packets (stream_id 1): the mask must
    inspect them as any other.  (Today it ignores the stream id and still
    refuses: a regression guard.)"""
    _stream_cmd(s, o, True)


@check("bulk_stream_read", ("wo",), "read", target=197)
def bulk_stream_read(s, o):
    """READ(10) sent as bulk-stream packets (stream_id 1)."""
    _stream_cmd(s, o, False)


@check("endpoint_alias_write", ("ro",), "write", target=161)
def endpoint_alias_write(s, o):
    """WRITE(10) CBW and data on endpoint 0x12: bits 4-6 of the address are
    ignored by usbredirhost, libusb and the kernel (it is endpoint 2), but
    the mask compares the whole byte.  (Today the fallback rule stalls it.)"""
    o.result("WRITE(10) via 0x12", s.disk.command(
        write10(161, 1), data_out=payload("alias"), ep_out=0x12))


@check("endpoint_alias_read", ("wo",), "read", target=198)
def endpoint_alias_read(s, o):
    """READ(10) CBW on endpoint 0x12 (= endpoint 2 OUT), data on 0x81: the
    CBW is not recognised as one, and the IN request is then forwarded."""
    o.result("READ(10) CBW via 0x12", s.disk.command(
        read10(198, 1), data_in=BLOCK, ep_out=0x12))


# --------------------------------------------------------------------------
# Running the checks
# --------------------------------------------------------------------------

WRITE_EVENTS = re.compile(r"medium (write|erased)|SECURITY PROTOCOL OUT")
READ_EVENTS = re.compile(r"medium read")


class Rig:
    """One fixture with a cheap disk; agents (one per access mode) dial a
    listening peer; each check gets its own session."""

    def __init__(self, td):
        self.td = td
        self.medium = Medium(td.file("cheap.img"))
        self.fx = Fixture(td, name="usbemu").start()
        self.fx.add("cheapdisk", self.medium.path)
        self.agent = None
        self.listener = None
        self.access = None

    def start_agent(self, access):
        self.stop_agent()
        port = free_port()
        self.listener = ur.Listener(port)
        self.access = access
        self.agent = Agent(self.td, self.fx, name=f"agent-{access}")
        self.agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\n"
                         f"reconnect_min_ms = 100\nreconnect_max_ms = 300\n"
                         f"usbredir_debug = 3\n"
                         f"rule = allow class=08 access={access}\n")
        self.agent.wait_log(r'"Emulated Cheap Disk" at 1-1: redirect '
                            + access)

    def open_session(self):
        peer = self.listener.accept(timeout=15)
        peer.timeout = WAIT
        peer.handshake(timeout=10)
        s = Session(peer, self.access, self.fx, self.agent)
        s.medium = self.medium
        return s

    def stop_agent(self):
        """Stops the agent with its next session up (an agent stopped while
        a connection waits for its hello leaks it; see the report)."""
        if self.agent is None:
            return
        if self.agent.alive():
            try:
                s = self.open_session()
                self.agent.stop(timeout=10)
                s.peer.close()
            except (PeerTimeout, PeerClosed, harness.ProcessFailed,
                    TimeoutError):
                self.agent.stop(timeout=10, expect_rc=None)
        self.listener.close()
        self.agent = None

    # -- one check --------------------------------------------------------

    def run_check(self, c):
        access = self.access
        res = dict(check=c["name"], access=access, verdict="PASS",
                   problems=[], answers="", notes=[], events=[],
                   agent_lines=[])
        if not self.agent.alive():
            res["notes"].append("agent was dead: restarted")
            self.start_agent(access)
        try:
            s = self.open_session()
        except (PeerTimeout, PeerClosed) as e:
            res["verdict"] = "ERROR"
            res["problems"].append(f"no session: {e}")
            return res
        self.medium.restore()
        o = Outcome()
        hang = dropped = None
        try:
            c["fn"](s, o)
        except PeerTimeout as e:
            hang = str(e)
        except PeerClosed as e:
            dropped = str(e)
        except AssertionError as e:
            res["problems"].append(str(e))
        # what the attack did, before any recovery touches the medium
        after = self.medium.read()
        changed = self.medium.changed_lbas(after)
        attack_packets = len(s.peer.received)
        recovery = None
        if not (hang or dropped):
            recovery = self.recover(s)
        leak = None
        for p, data in s.peer.data_received():
            hit = self.medium.find_leak(data)
            if hit:
                leak = (p, hit)
                break
        attack_leak = leak is not None and \
            s.peer.received.index(leak[0]) < attack_packets
        time.sleep(0.1)
        events = s.fixture_events()
        s.peer.close()
        res.update(answers=o.summary(), notes=o.notes + res["notes"],
                   events=[e for e in events if not e.startswith("reset")
                           or "configuration 2" in e][:12],
                   agent_lines=[ln for ln in s.agent_lines()
                                if re.search(r"usbredir|mask|malformed|"
                                             r"warn|error|refus", ln)][:8])
        ev = re.compile(c["evidence"]) if c["evidence"] else None
        ev_hit = [e for e in events if ev and ev.search(e)]
        probs = res["problems"]
        if access == "rw":
            self.judge_rw(c, res, changed, attack_leak, ev_hit, hang,
                          dropped, recovery, leak)
            return res
        # -- restricted: the mask must hold ------------------------------
        if access == "ro":
            if changed:
                probs.append(f"BYPASS: the image changed (LBAs "
                             f"{changed[:6]}{'...' if len(changed) > 6 else ''})")
            w = [e for e in events if WRITE_EVENTS.search(e)]
            if w and not changed:
                probs.append(f"BYPASS: reached the device: {w[0]}")
        if access == "wo" and leak:
            p, (i, off) = leak
            probs.append(f"LEAK: medium bytes (image offset {off}, LBA "
                         f"{off // BLOCK}) came back in {p.name} "
                         f"{'' if p.endpoint is None else hex(p.endpoint)}")
        if access == "wo":
            rd = [e for e in events if READ_EVENTS.search(e)]
            if rd and not leak:
                probs.append(f"device read the medium: {rd[0]}")
        if ev_hit and not any(ev_hit[0] in p for p in probs):
            probs.append(f"REACHED the device: {ev_hit[0]}")
        if hang:
            probs.append(f"HANG: {hang}")
        if dropped:
            probs.append(f"SESSION DROPPED: {dropped}")
        if not (hang or dropped) and c["kind"] != "control" and \
                not o.refused:
            probs.append("guest told success (no refusal)")
        if recovery:
            probs.append(f"RECOVERY FAILED: {recovery}")
        if not self.agent.alive():
            probs.append(f"AGENT DIED (rc={self.agent.returncode()})")
        if probs:
            res["verdict"] = "FAIL"
        return res

    def judge_rw(self, c, res, changed, attack_leak, ev_hit, hang, dropped,
                 recovery, leak):
        """Under rw the attack must reach the device, or the check proves
        nothing."""
        probs = res["problems"]
        kind = c["kind"]
        if kind == "write":
            reached = bool(changed) or bool(ev_hit)
            if c["target"] is not None and changed and \
                    c["target"] not in changed:
                probs.append(f"changed LBAs {changed[:4]}, not {c['target']}")
        elif kind == "read":
            reached = attack_leak
        elif kind == "state":
            reached = bool(ev_hit)
        else:
            reached = True
        if c["evidence"] and not ev_hit:
            reached = False
        res["reached"] = reached
        if not reached:
            probs.append("INVALID: does not reach the device even under rw")
        if hang:
            probs.append(f"hang under rw: {hang}")
        if dropped:
            probs.append(f"session dropped under rw: {dropped}")
        if recovery:
            probs.append(f"recovery failed under rw: {recovery}")
        if probs:
            res["verdict"] = "INVALID"

    def recover(self, s):
        """Bulk-Only reset recovery, then the disk must still work.  Returns
        None or what went wrong."""
        d = s.disk
        try:
            st = d.reset_recovery()
            if any(x != ur.SUCCESS for x in st):
                return f"reset recovery statuses {st}"
            if s.access in ("ro", "rw"):
                # what is on the medium now (an erase may have been let
                # through: that is reported on its own)
                at = RECOVERY_READ_LBA * BLOCK
                want = self.medium.read()[at:at + BLOCK]
                r = d.read10(RECOVERY_READ_LBA, 1)
                if r.csw_status != 0 or r.data != want:
                    return (f"READ(10) after recovery: {r}, data "
                            f"{'right' if r.data == want else 'wrong'}")
            if s.access in ("wo", "rw"):
                data = payload("recovery")
                r = d.write10(RECOVERY_WRITE_LBA, data)
                now = self.medium.read()
                at = RECOVERY_WRITE_LBA * BLOCK
                if r.csw_status != 0 or now[at:at + BLOCK] != data:
                    return f"WRITE(10) after recovery did not land: {r}"
        except (PeerTimeout, PeerClosed) as e:
            return str(e)
        return None


def selected(checks, access):
    only = os.environ.get("REDIR_MASK_CHECKS")
    names = set(only.split(",")) if only else None
    return [c for c in checks if access in c["modes"] and
            (names is None or c["name"] in names)]


def format_table(results):
    lines = [f"{'check':34} {'mode':4} {'verdict':8} details"]
    for r in results:
        det = "; ".join(r["problems"]) or r["answers"]
        lines.append(f"{r['check']:34} {r['access']:4} {r['verdict']:8} "
                     f"{det}")
    return "\n".join(lines)


def run(td, access):
    """All checks for `access` (ro or wo): first under rw (reachability),
    then under `access`.  Raises AssertionError with the table if any
    check fails."""
    rig = Rig(td)
    checks = selected(CHECKS, access)
    results = []
    try:
        for mode in ("rw", access):
            rig.start_agent(mode)
            for c in checks:
                results.append(rig.run_check(c))
            rig.stop_agent()
    finally:
        report = os.environ.get("REDIR_MASK_REPORT")
        if report:
            with open(report, "w") as f:
                json.dump(dict(checks={c["name"]: c["doc"] for c in checks},
                               results=results), f, indent=1)
        print(format_table(results))
    bad = [r for r in results if r["verdict"] != "PASS"]
    rig.fx.stop()
    if bad:
        raise AssertionError(f"{len(bad)} of {len(results)} checks failed:\n"
                             + format_table(bad))
