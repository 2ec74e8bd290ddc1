#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A small usbredir peer (the QEMU side, "usb-guest") for tests.  Standard
library only.

It speaks usbredir 0.7 as in /usr/include/usbredirproto.h and the upstream
spec (usb-redirection-protocol.md): it can play a well-behaved QEMU or a
hostile one that sends whatever a test crafts.

    listener = Listener(port)                  # the agent's "connect =" dials it
    peer = listener.accept(timeout=10)         # or Peer.connect(host, port)
    peer.handshake()                           # hello both ways, device_connect
    st, data = peer.control(0x80, 6, 0x0100, 0, length=18)  # GET_DESCRIPTOR
    disk = BulkOnly(peer)                      # Bulk-Only mass storage helper
    r = disk.command(cdb=read10(1, 1), data_in=512)
    r.csw.status, r.data

Every wait is bounded (`timeout`, default Peer.timeout); a reply that does not
come raises PeerTimeout, a closed connection PeerClosed.  Every packet the
agent sends is kept in peer.received (Packet objects, in order), so a test can
check every byte that came back (e.g. for leaked medium data).

Ids: requests get increasing ids; replies are matched by id (and type), other
packets that arrive meanwhile wait in a backlog for whoever asks for them.
"""

import select
import socket
import struct
import time

# --------------------------------------------------------------------------
# Protocol constants (usbredirproto.h)
# --------------------------------------------------------------------------

# status codes
SUCCESS, CANCELLED, INVAL, IOERROR, STALL, TIMEOUT, BABBLE = range(7)
STATUS_NAMES = {SUCCESS: "success", CANCELLED: "cancelled", INVAL: "inval",
                IOERROR: "ioerror", STALL: "stall", TIMEOUT: "timeout",
                BABBLE: "babble"}

# endpoint / transfer types
TYPE_CONTROL, TYPE_ISO, TYPE_BULK, TYPE_INTERRUPT = 0, 1, 2, 3
TYPE_INVALID = 255

# packet types
HELLO = 0
DEVICE_CONNECT = 1
DEVICE_DISCONNECT = 2
RESET = 3
INTERFACE_INFO = 4
EP_INFO = 5
SET_CONFIGURATION = 6
GET_CONFIGURATION = 7
CONFIGURATION_STATUS = 8
SET_ALT_SETTING = 9
GET_ALT_SETTING = 10
ALT_SETTING_STATUS = 11
START_ISO_STREAM = 12
STOP_ISO_STREAM = 13
ISO_STREAM_STATUS = 14
START_INTERRUPT_RECEIVING = 15
STOP_INTERRUPT_RECEIVING = 16
INTERRUPT_RECEIVING_STATUS = 17
ALLOC_BULK_STREAMS = 18
FREE_BULK_STREAMS = 19
BULK_STREAMS_STATUS = 20
CANCEL_DATA_PACKET = 21
FILTER_REJECT = 22
FILTER_FILTER = 23
DEVICE_DISCONNECT_ACK = 24
START_BULK_RECEIVING = 25
STOP_BULK_RECEIVING = 26
BULK_RECEIVING_STATUS = 27
CONTROL_PACKET = 100
BULK_PACKET = 101
ISO_PACKET = 102
INTERRUPT_PACKET = 103
BUFFERED_BULK_PACKET = 104

TYPE_NAMES = {
    HELLO: "hello", DEVICE_CONNECT: "device_connect",
    DEVICE_DISCONNECT: "device_disconnect", RESET: "reset",
    INTERFACE_INFO: "interface_info", EP_INFO: "ep_info",
    SET_CONFIGURATION: "set_configuration",
    GET_CONFIGURATION: "get_configuration",
    CONFIGURATION_STATUS: "configuration_status",
    SET_ALT_SETTING: "set_alt_setting", GET_ALT_SETTING: "get_alt_setting",
    ALT_SETTING_STATUS: "alt_setting_status",
    START_ISO_STREAM: "start_iso_stream", STOP_ISO_STREAM: "stop_iso_stream",
    ISO_STREAM_STATUS: "iso_stream_status",
    START_INTERRUPT_RECEIVING: "start_interrupt_receiving",
    STOP_INTERRUPT_RECEIVING: "stop_interrupt_receiving",
    INTERRUPT_RECEIVING_STATUS: "interrupt_receiving_status",
    ALLOC_BULK_STREAMS: "alloc_bulk_streams",
    FREE_BULK_STREAMS: "free_bulk_streams",
    BULK_STREAMS_STATUS: "bulk_streams_status",
    CANCEL_DATA_PACKET: "cancel_data_packet", FILTER_REJECT: "filter_reject",
    FILTER_FILTER: "filter_filter",
    DEVICE_DISCONNECT_ACK: "device_disconnect_ack",
    START_BULK_RECEIVING: "start_bulk_receiving",
    STOP_BULK_RECEIVING: "stop_bulk_receiving",
    BULK_RECEIVING_STATUS: "bulk_receiving_status",
    CONTROL_PACKET: "control_packet", BULK_PACKET: "bulk_packet",
    ISO_PACKET: "iso_packet", INTERRUPT_PACKET: "interrupt_packet",
    BUFFERED_BULK_PACKET: "buffered_bulk_packet",
}

# capabilities (bit numbers)
CAP_BULK_STREAMS = 0
CAP_CONNECT_DEVICE_VERSION = 1
CAP_FILTER = 2
CAP_DEVICE_DISCONNECT_ACK = 3
CAP_EP_INFO_MAX_PACKET_SIZE = 4
CAP_64BITS_IDS = 5
CAP_32BITS_BULK_LENGTH = 6
CAP_BULK_RECEIVING = 7

# What QEMU 7.2's usb-redir announces (hw/usb/redirect.c), bulk streams
# included (it offers them when the controller can use them).
QEMU_CAPS = (CAP_BULK_STREAMS, CAP_CONNECT_DEVICE_VERSION, CAP_FILTER,
             CAP_DEVICE_DISCONNECT_ACK, CAP_EP_INFO_MAX_PACKET_SIZE,
             CAP_64BITS_IDS, CAP_32BITS_BULK_LENGTH, CAP_BULK_RECEIVING)

HEADER_32 = 12   # type, length, 32-bit id
HEADER_64 = 16   # type, length, 64-bit id
MAX_PACKET = 128 * 1024 * 1024  # sanity bound on a packet's length field

# Standard control requests, for readability in tests.
REQ_GET_STATUS = 0x00
REQ_CLEAR_FEATURE = 0x01
REQ_SET_FEATURE = 0x03
REQ_GET_DESCRIPTOR = 0x06
REQ_GET_CONFIGURATION = 0x08
REQ_SET_CONFIGURATION = 0x09
REQ_GET_INTERFACE = 0x0A
REQ_SET_INTERFACE = 0x0B
FEATURE_ENDPOINT_HALT = 0


class PeerError(Exception):
    pass


class PeerTimeout(PeerError):
    """An expected packet did not come in time (the agent "hangs")."""


class PeerClosed(PeerError):
    """The agent closed the connection."""


def caps_word(caps):
    w = 0
    for c in caps:
        w |= 1 << c
    return w


def status_name(st):
    return STATUS_NAMES.get(st, str(st))


# --------------------------------------------------------------------------
# Packets
# --------------------------------------------------------------------------

class Packet:
    """One usbredir packet: .type, .id, .fields (dict of the type header),
    .data (bytes after the type header), .raw (the whole packet)."""

    def __init__(self, ptype, pid, fields, data, raw=b""):
        self.type = ptype
        self.id = pid
        self.fields = fields
        self.data = data
        self.raw = raw

    @property
    def name(self):
        return TYPE_NAMES.get(self.type, f"type{self.type}")

    @property
    def status(self):
        return self.fields.get("status")

    @property
    def endpoint(self):
        return self.fields.get("endpoint")

    def __getitem__(self, key):
        return self.fields[key]

    def __repr__(self):
        f = ", ".join(f"{k}={v:#x}" if isinstance(v, int) and k in
                      ("endpoint", "requesttype", "request", "value", "index")
                      else f"{k}={v}" for k, v in self.fields.items()
                      if k not in ("interface", "interface_class",
                                   "interface_subclass", "interface_protocol",
                                   "type_", "interval", "ep_interface",
                                   "max_packet_size", "max_streams"))
        return f"<{self.name} id={self.id} {f} data={len(self.data)}B>"


class Peer:
    """One usbredir connection, seen from the guest (QEMU) side."""

    timeout = 5.0

    def __init__(self, sock, caps=QEMU_CAPS, version="usbredirpeer.py"):
        self.sock = sock
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.caps = tuple(caps)
        self.version = version
        self.buf = bytearray()
        self.peer_caps = None         # the agent's capability word
        self.peer_version = None
        self.hello_sent = False
        self.next_id = 1
        self.backlog = []             # received packets nobody asked for yet
        self.received = []            # every packet received, in order
        self.closed = False
        self.device = None            # device_connect fields
        self.interface_info = None
        self.ep_info = None
        self.disconnected = False     # device_disconnect seen

    # -- connection ------------------------------------------------------

    @classmethod
    def connect(cls, host, port, timeout=10, **kw):
        s = socket.create_connection((host, port), timeout=timeout)
        return cls(s, **kw)

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    # -- negotiated formats ---------------------------------------------

    def both_have(self, cap):
        return (self.peer_caps is not None and cap in self.caps and
                bool(self.peer_caps & (1 << cap)))

    @property
    def ids64(self):
        return self.both_have(CAP_64BITS_IDS)

    @property
    def bulk32(self):
        return self.both_have(CAP_32BITS_BULK_LENGTH)

    def header_len(self):
        return HEADER_64 if self.ids64 else HEADER_32

    # -- sending ----------------------------------------------------------

    def _new_id(self):
        i = self.next_id
        self.next_id += 1
        return i

    def send_raw(self, data):
        """Bytes as they are: for crafted streams."""
        if self.closed:
            raise PeerClosed("connection already closed")
        view = memoryview(bytes(data))
        deadline = time.monotonic() + self.timeout
        while view:
            try:
                n = self.sock.send(view)
                view = view[n:]
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerTimeout("agent does not read (send blocked)")
                # keep reading meanwhile, so that neither side deadlocks
                r, w, _ = select.select([self.sock], [self.sock], [], left)
                if r:
                    self._read_some()
            except (BrokenPipeError, ConnectionResetError) as e:
                self.closed = True
                raise PeerClosed(f"agent closed the connection: {e}")

    def send_packet(self, ptype, type_header=b"", data=b"", pid=None,
                    length=None):
        """Sends one packet; returns its id.  `length` overrides the length
        field (for malformed packets)."""
        if ptype != HELLO and self.peer_caps is None:
            raise PeerError("send only after the agent's hello "
                            "(header size depends on it)")
        if pid is None:
            pid = self._new_id()
        body = bytes(type_header) + bytes(data)
        ln = len(body) if length is None else length
        if self.header_len() == HEADER_64 and ptype != HELLO:
            hdr = struct.pack("<IIQ", ptype, ln, pid)
        else:
            hdr = struct.pack("<III", ptype, ln, pid & 0xFFFFFFFF)
        self.send_raw(hdr + body)
        return pid

    def send_hello(self):
        ver = self.version.encode()[:63].ljust(64, b"\0")
        self.send_packet(HELLO, ver, struct.pack("<I", caps_word(self.caps)),
                         pid=0)
        self.hello_sent = True

    # -- receiving ----------------------------------------------------------

    def _read_some(self):
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return True
        except (ConnectionResetError, OSError):
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def _type_header_len(self, ptype):
        """Length of the type header of a packet *from* the agent (usb-host),
        as usbredirparser computes it from both sides' capabilities."""
        fixed = {
            HELLO: 64, DEVICE_DISCONNECT: 0, INTERFACE_INFO: 132,
            CONFIGURATION_STATUS: 2, ALT_SETTING_STATUS: 3,
            ISO_STREAM_STATUS: 2, INTERRUPT_RECEIVING_STATUS: 2,
            BULK_STREAMS_STATUS: 9, FILTER_REJECT: 0, FILTER_FILTER: 0,
            BULK_RECEIVING_STATUS: 6, CONTROL_PACKET: 10, ISO_PACKET: 4,
            INTERRUPT_PACKET: 4, BUFFERED_BULK_PACKET: 10,
        }
        if ptype in fixed:
            return fixed[ptype]
        if ptype == DEVICE_CONNECT:
            return 10 if self.both_have(CAP_CONNECT_DEVICE_VERSION) else 8
        if ptype == EP_INFO:
            if self.both_have(CAP_BULK_STREAMS):
                return 288
            if self.both_have(CAP_EP_INFO_MAX_PACKET_SIZE):
                return 160
            return 96
        if ptype == BULK_PACKET:
            return 10 if self.bulk32 else 8
        raise PeerError(f"agent sent packet type {ptype}, which a usb-host "
                        f"never sends")

    def _parse_one(self):
        """One complete packet from self.buf, or None."""
        hl = HEADER_32 if self.peer_caps is None else self.header_len()
        if len(self.buf) < hl:
            return None
        if hl == HEADER_64:
            ptype, ln, pid = struct.unpack_from("<IIQ", self.buf)
        else:
            ptype, ln, pid = struct.unpack_from("<III", self.buf)
        if ln > MAX_PACKET:
            raise PeerError(f"packet length {ln} from the agent")
        if len(self.buf) < hl + ln:
            return None
        raw = bytes(self.buf[:hl + ln])
        del self.buf[:hl + ln]
        body = raw[hl:]
        thl = self._type_header_len(ptype)
        if ln < thl:
            raise PeerError(f"{TYPE_NAMES.get(ptype, ptype)} packet of {ln} "
                            f"bytes: shorter than its header ({thl})")
        p = Packet(ptype, pid, self._decode(ptype, body[:thl]), body[thl:],
                   raw)
        self._note(p)
        return p

    def _decode(self, t, h):
        if t == HELLO:
            return {"version": h.split(b"\0", 1)[0].decode("ascii", "replace")}
        if t == DEVICE_CONNECT:
            f = dict(zip(("speed", "device_class", "device_subclass",
                          "device_protocol", "vendor_id", "product_id"),
                         struct.unpack_from("<BBBBHH", h)))
            if len(h) >= 10:
                f["device_version_bcd"] = struct.unpack_from("<H", h, 8)[0]
            return f
        if t == INTERFACE_INFO:
            n = struct.unpack_from("<I", h)[0]
            return {"interface_count": n,
                    "interface": list(h[4:4 + n]),
                    "interface_class": list(h[36:36 + n]),
                    "interface_subclass": list(h[68:68 + n]),
                    "interface_protocol": list(h[100:100 + n])}
        if t == EP_INFO:
            f = {"type_": list(h[0:32]), "interval": list(h[32:64]),
                 "ep_interface": list(h[64:96])}
            if len(h) >= 160:
                f["max_packet_size"] = list(struct.unpack_from("<32H", h, 96))
            if len(h) >= 288:
                f["max_streams"] = list(struct.unpack_from("<32I", h, 160))
            return f
        if t == CONFIGURATION_STATUS:
            return dict(zip(("status", "configuration"), h))
        if t == ALT_SETTING_STATUS:
            return dict(zip(("status", "interface", "alt"), h))
        if t in (ISO_STREAM_STATUS, INTERRUPT_RECEIVING_STATUS):
            return dict(zip(("status", "endpoint"), h))
        if t == BULK_STREAMS_STATUS:
            e, n, s = struct.unpack_from("<IIB", h)
            return {"endpoints": e, "no_streams": n, "status": s}
        if t == BULK_RECEIVING_STATUS:
            sid, ep, st = struct.unpack_from("<IBB", h)
            return {"stream_id": sid, "endpoint": ep, "status": st}
        if t == CONTROL_PACKET:
            return dict(zip(("endpoint", "request", "requesttype", "status",
                             "value", "index", "length"),
                            struct.unpack_from("<BBBBHHH", h)))
        if t == BULK_PACKET:
            ep, st, ln, sid = struct.unpack_from("<BBHI", h)
            if len(h) >= 10:
                ln |= struct.unpack_from("<H", h, 8)[0] << 16
            return {"endpoint": ep, "status": st, "length": ln,
                    "stream_id": sid}
        if t in (ISO_PACKET, INTERRUPT_PACKET):
            return dict(zip(("endpoint", "status", "length"),
                            struct.unpack_from("<BBH", h)))
        if t == BUFFERED_BULK_PACKET:
            sid, ln, ep, st = struct.unpack_from("<IIBB", h)
            return {"stream_id": sid, "length": ln, "endpoint": ep,
                    "status": st}
        return {}

    def _note(self, p):
        """State kept from what the agent says, whoever waits for it."""
        self.received.append(p)
        if p.type == HELLO:
            self.peer_version = p.fields["version"]
            self.peer_caps = (struct.unpack_from("<I", p.data)[0]
                              if len(p.data) >= 4 else 0)
        elif p.type == DEVICE_CONNECT:
            self.device = p.fields
            self.disconnected = False
        elif p.type == INTERFACE_INFO:
            self.interface_info = p.fields
        elif p.type == EP_INFO:
            self.ep_info = p.fields
        elif p.type == DEVICE_DISCONNECT:
            self.disconnected = True
            if self.both_have(CAP_DEVICE_DISCONNECT_ACK):
                self.send_packet(DEVICE_DISCONNECT_ACK)

    def poll(self, timeout=0.0):
        """Reads what is there (waiting up to `timeout` for something);
        parsed packets go to the backlog.  Returns False once closed."""
        def parse_all():
            n = 0
            while True:
                p = self._parse_one()
                if p is None:
                    return n
                self.backlog.append(p)
                n += 1

        if parse_all() or self.closed:
            return not self.closed
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if r:
            self._read_some()
            # take what else is already there, without waiting
            for _ in range(64):
                if self.closed or \
                        not select.select([self.sock], [], [], 0)[0]:
                    break
                self._read_some()
        parse_all()
        return not self.closed

    def wait(self, match, timeout=None, what="a packet"):
        """First packet (backlog first) for which match(p) is true; it is
        taken out of the backlog.  Raises PeerTimeout / PeerClosed."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            for i, p in enumerate(self.backlog):
                if match(p):
                    return self.backlog.pop(i)
            left = deadline - time.monotonic()
            if self.closed:
                raise PeerClosed(f"agent closed the connection while we "
                                 f"waited for {what}")
            if left <= 0:
                raise PeerTimeout(f"no {what} within {timeout:g}s")
            self.poll(min(left, 0.2))

    def wait_reply(self, pid, ptype, timeout=None):
        return self.wait(lambda p: p.id == pid and p.type == ptype, timeout,
                         f"{TYPE_NAMES.get(ptype, ptype)} reply to id {pid}")

    def wait_type(self, ptype, timeout=None):
        return self.wait(lambda p: p.type == ptype, timeout,
                         TYPE_NAMES.get(ptype, str(ptype)))

    def drain(self, duration):
        """Collects packets for `duration` seconds; returns the new ones
        (they stay in the backlog too)."""
        n = len(self.backlog)
        end = time.monotonic() + duration
        while time.monotonic() < end and self.poll(end - time.monotonic()):
            pass
        return self.backlog[n:]

    # -- handshake ----------------------------------------------------------

    def handshake(self, timeout=10, wait_device=True):
        """hello both ways; then (by default) wait for device_connect, which
        usbredirhost sends right after interface_info and ep_info."""
        if not self.hello_sent:
            self.send_hello()
        self.wait_type(HELLO, timeout)
        if wait_device and self.device is None:
            self.wait_type(DEVICE_CONNECT, timeout)
        return self

    # -- requests (each returns the id; *_sync variants wait) ---------------

    def set_configuration(self, configuration):
        return self.send_packet(SET_CONFIGURATION, bytes([configuration]))

    def get_configuration(self):
        return self.send_packet(GET_CONFIGURATION)

    def set_alt_setting(self, interface, alt):
        return self.send_packet(SET_ALT_SETTING, bytes([interface, alt]))

    def get_alt_setting(self, interface):
        return self.send_packet(GET_ALT_SETTING, bytes([interface]))

    def reset(self):
        """usbredir reset (a USB port reset of the device); no reply."""
        return self.send_packet(RESET)

    def cancel(self, pid):
        return self.send_packet(CANCEL_DATA_PACKET, pid=pid)

    def start_interrupt_receiving(self, ep):
        return self.send_packet(START_INTERRUPT_RECEIVING, bytes([ep]))

    def stop_interrupt_receiving(self, ep):
        return self.send_packet(STOP_INTERRUPT_RECEIVING, bytes([ep]))

    def start_bulk_receiving(self, ep, bytes_per_transfer, no_transfers,
                             stream_id=0):
        return self.send_packet(START_BULK_RECEIVING, struct.pack(
            "<IIBB", stream_id, bytes_per_transfer, ep, no_transfers))

    def stop_bulk_receiving(self, ep, stream_id=0):
        return self.send_packet(STOP_BULK_RECEIVING,
                                struct.pack("<IB", stream_id, ep))

    def alloc_bulk_streams(self, endpoints_mask, no_streams):
        """endpoints_mask: bit ((ep & 0x80) >> 3 | (ep & 0x0f)) per endpoint."""
        return self.send_packet(ALLOC_BULK_STREAMS,
                                struct.pack("<II", endpoints_mask, no_streams))

    def free_bulk_streams(self, endpoints_mask):
        return self.send_packet(FREE_BULK_STREAMS,
                                struct.pack("<I", endpoints_mask))

    def control_packet(self, requesttype, request, value, index, data=b"",
                       length=None, endpoint=None):
        """An EP0 request.  OUT: `data` is the data stage; IN: `length` is
        wLength.  `endpoint` defaults to the direction of requesttype."""
        if endpoint is None:
            endpoint = requesttype & 0x80
        if length is None:
            length = len(data)
        hdr = struct.pack("<BBBBHHH", endpoint, request, requesttype, 0,
                          value, index, length)
        return self.send_packet(CONTROL_PACKET, hdr, data)

    def bulk_packet(self, ep, data=b"", length=None, stream_id=0):
        """OUT: data; IN (ep & 0x80): `length` bytes asked for."""
        if length is None:
            length = len(data)
        if self.bulk32:
            hdr = struct.pack("<BBHIH", ep, 0, length & 0xFFFF, stream_id,
                              length >> 16)
        else:
            hdr = struct.pack("<BBHI", ep, 0, length & 0xFFFF, stream_id)
        return self.send_packet(BULK_PACKET, hdr, data)

    def interrupt_packet(self, ep, data):
        return self.send_packet(INTERRUPT_PACKET,
                                struct.pack("<BBH", ep, 0, len(data)), data)

    # -- synchronous helpers --------------------------------------------

    def control(self, requesttype, request, value, index, data=b"",
                length=None, timeout=None):
        """Sends a control request and waits: (status, data)."""
        pid = self.control_packet(requesttype, request, value, index, data,
                                  length)
        p = self.wait_reply(pid, CONTROL_PACKET, timeout)
        return p.status, p.data

    def bulk(self, ep, data=b"", length=None, stream_id=0, timeout=None):
        """Sends a bulk packet and waits: (status, data, actual_length)."""
        pid = self.bulk_packet(ep, data, length, stream_id)
        p = self.wait_reply(pid, BULK_PACKET, timeout)
        return p.status, p.data, p["length"]

    def set_configuration_sync(self, configuration, timeout=None):
        pid = self.set_configuration(configuration)
        p = self.wait_reply(pid, CONFIGURATION_STATUS, timeout)
        return p.status, p["configuration"]

    def get_configuration_sync(self, timeout=None):
        pid = self.get_configuration()
        p = self.wait_reply(pid, CONFIGURATION_STATUS, timeout)
        return p.status, p["configuration"]

    def set_alt_setting_sync(self, interface, alt, timeout=None):
        pid = self.set_alt_setting(interface, alt)
        p = self.wait_reply(pid, ALT_SETTING_STATUS, timeout)
        return p.status, p["alt"]

    def clear_halt(self, ep, timeout=None):
        """CLEAR_FEATURE(ENDPOINT_HALT); usbredirhost turns it into a real
        clear-halt on the host side.  Returns the status."""
        st, _ = self.control(0x02, REQ_CLEAR_FEATURE, FEATURE_ENDPOINT_HALT,
                             ep, timeout=timeout)
        return st

    def data_received(self):
        """[(packet, payload)] of every received packet that carried data."""
        return [(p, p.data) for p in self.received if p.data and
                p.type not in (HELLO,)]


class Listener:
    """A TCP port the agent's "[usb] connect = 127.0.0.1:PORT" dials."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]

    def accept(self, timeout=10, **kw):
        self.sock.settimeout(timeout)
        try:
            conn, _ = self.sock.accept()
        except socket.timeout:
            raise PeerTimeout(f"agent did not connect within {timeout}s")
        return Peer(conn, **kw)

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------
# Bulk-Only Transport (USB Mass Storage Class, BOT 1.0) and SCSI helpers
# --------------------------------------------------------------------------

CBW_SIGNATURE = 0x43425355
CSW_SIGNATURE = 0x53425355
CBW_LEN = 31
CSW_LEN = 13
BOT_RESET = 0xFF
BOT_GET_MAX_LUN = 0xFE


def cbw(tag, data_len, cdb, data_in=False, lun=0, cb_len=None):
    """A Command Block Wrapper.  cb_len overrides bCBWCBLength (default: the
    CDB's length, which must be 1..16 to fit)."""
    cdb = bytes(cdb)
    if len(cdb) > 16:
        raise ValueError("a CBW holds 16 CDB bytes")
    return struct.pack("<IIIBBB", CBW_SIGNATURE, tag, data_len,
                       0x80 if data_in else 0, lun,
                       len(cdb) if cb_len is None else cb_len) + \
        cdb.ljust(16, b"\0")


class Csw:
    def __init__(self, raw):
        self.raw = bytes(raw)
        self.valid = (len(raw) == CSW_LEN and
                      struct.unpack_from("<I", raw)[0] == CSW_SIGNATURE)
        if len(raw) >= CSW_LEN:
            _, self.tag, self.residue, self.status = struct.unpack_from(
                "<IIIB", raw)
        else:
            self.tag = self.residue = self.status = None

    def __repr__(self):
        if not self.valid:
            return f"<bad CSW {self.raw.hex()}>"
        return f"<CSW tag={self.tag} residue={self.residue} status={self.status}>"


class Result:
    """What one Bulk-Only command got back, stage by stage.

    steps: [(stage, usbredir status)] e.g. ("cbw", 0), ("data-in", 4)
    data: data-in bytes; csw: Csw or None; stalled: some stage stalled.
    """

    def __init__(self):
        self.steps = []
        self.data = b""
        self.csw = None
        self.stalled = False

    @property
    def csw_status(self):
        return self.csw.status if self.csw is not None and self.csw.valid \
            else None

    def refused(self):
        """The device (or whoever answers for it) said no: a failed or
        phase-error CSW, or a stall / error status on some stage."""
        return (self.csw_status not in (None, 0) or self.stalled or
                any(st != SUCCESS for _, st in self.steps))

    def __repr__(self):
        steps = " ".join(f"{s}:{status_name(st)}" for s, st in self.steps)
        return f"<Result {steps} data={len(self.data)}B csw={self.csw}>"


class BulkOnly:
    """A Bulk-Only mass-storage device behind a Peer, used as Linux's
    usb-storage driver would (usb_stor_Bulk_transport): CBW, data stage,
    CSW (retried once after clearing a stall), and reset recovery."""

    def __init__(self, peer, ep_out=0x02, ep_in=0x81, interface=0):
        self.peer = peer
        self.ep_out = ep_out
        self.ep_in = ep_in
        self.interface = interface
        self.tag = 0x100

    def next_tag(self):
        self.tag += 1
        return self.tag

    def send_cbw(self, tag, cdb, data_len=0, data_in=False, lun=0,
                 cb_len=None, raw=None, pad_to=None, ep=None, stream_id=0,
                 timeout=None):
        """Sends a CBW as one bulk OUT packet; returns its usbredir status.
        raw: bytes to send instead; pad_to: make the transfer that long."""
        b = raw if raw is not None else cbw(tag, data_len, cdb, data_in, lun,
                                            cb_len)
        if pad_to is not None:
            b = b.ljust(pad_to, b"\0")
        st, _, _ = self.peer.bulk(self.ep_out if ep is None else ep, b,
                                  stream_id=stream_id, timeout=timeout)
        return st

    def read_csw(self, res, ep_in=None, stream_id=0, timeout=None):
        ep_in = self.ep_in if ep_in is None else ep_in
        for attempt in range(2):
            st, data, _ = self.peer.bulk(ep_in, length=CSW_LEN,
                                         stream_id=stream_id, timeout=timeout)
            res.steps.append(("csw", st))
            if st == SUCCESS:
                res.csw = Csw(data)
                return res
            if st != STALL or attempt:
                break
            res.stalled = True
            res.steps.append(("clear-halt-in", self.peer.clear_halt(ep_in)))
        res.stalled = True
        return res

    def command(self, cdb, data_in=0, data_out=b"", lun=0, cb_len=None,
                raw_cbw=None, pad_to=None, ep_out=None, ep_in=None,
                stream_id=0, data_len=None, timeout=None):
        """One command.  data_in: bytes to read; data_out: bytes to write;
        data_len overrides dCBWDataTransferLength.  The data stage is one
        bulk packet.  Returns a Result; PeerTimeout/PeerClosed propagate."""
        res = Result()
        tag = self.next_tag()
        n = data_in if data_in else len(data_out)
        dlen = n if data_len is None else data_len
        ep_out = self.ep_out if ep_out is None else ep_out
        ep_in = self.ep_in if ep_in is None else ep_in
        st = self.send_cbw(tag, cdb, dlen, bool(data_in), lun, cb_len,
                           raw_cbw, pad_to, ep_out, stream_id, timeout)
        res.steps.append(("cbw", st))
        if st != SUCCESS:
            res.stalled = res.stalled or st == STALL
            return res          # usb-storage would do reset recovery now
        if data_in:
            st, data, _ = self.peer.bulk(ep_in, length=data_in,
                                         stream_id=stream_id, timeout=timeout)
            res.steps.append(("data-in", st))
            res.data = data
            if st == STALL:
                res.stalled = True
                res.steps.append(("clear-halt-in",
                                  self.peer.clear_halt(ep_in)))
            elif st != SUCCESS:
                return res
        elif data_out:
            st, _, _ = self.peer.bulk(ep_out, data_out, stream_id=stream_id,
                                      timeout=timeout)
            res.steps.append(("data-out", st))
            if st == STALL:
                res.stalled = True
                res.steps.append(("clear-halt-out",
                                  self.peer.clear_halt(ep_out)))
            elif st != SUCCESS:
                return res
        return self.read_csw(res, ep_in, stream_id, timeout)

    def reset_recovery(self, timeout=None):
        """Bulk-Only Mass Storage Reset, then CLEAR_FEATURE(HALT) on both
        endpoints (BOT 5.3.4).  Returns the three statuses."""
        st, _ = self.peer.control(0x21, BOT_RESET, 0, self.interface,
                                  timeout=timeout)
        return (st, self.peer.clear_halt(self.ep_in, timeout),
                self.peer.clear_halt(self.ep_out, timeout))

    def get_max_lun(self, timeout=None):
        return self.peer.control(0xA1, BOT_GET_MAX_LUN, 0, self.interface,
                                 length=1, timeout=timeout)

    # -- SCSI conveniences ----------------------------------------------

    def request_sense(self):
        """(key, asc, ascq) from REQUEST SENSE (fixed format), or None."""
        r = self.command(bytes([0x03, 0, 0, 0, 18, 0]), data_in=18)
        if r.csw_status != 0 or len(r.data) < 14:
            return None
        return r.data[2] & 0x0F, r.data[12], r.data[13]

    def read10(self, lba, count=1, block=512, **kw):
        return self.command(read10(lba, count), data_in=count * block, **kw)

    def write10(self, lba, data, **kw):
        return self.command(write10(lba, len(data) // 512), data_out=data,
                            **kw)


def read10(lba, count):
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, count, 0)


def write10(lba, count):
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, count, 0)
