# SPDX-License-Identifier: MIT
"""The relay protocol and the lz4 stream framing, written again from their
descriptions (common/relay_proto.h, common/stream_codec.h) so that the
tests check the C code against the spec and not against itself.

Standard library only; LZ4 blocks through ctypes and the system liblz4.
"""

import ctypes
import ctypes.util
import hashlib
import hmac
import os
import socket
import struct

MAGIC = b"RDRL"
VERSION = 1
CAP_LZ4 = 1
NONCE_LEN = 32
MAC_LEN = 32

STATUS = {0: "ok", 1: "wrong secret", 2: "unknown target",
          3: "version mismatch", 4: "malformed handshake", 5: "busy",
          6: "target unavailable"}

RAW, LZ4 = 0xB0, 0xB1
MAX_CHUNK = 64 * 1024

_lz4 = ctypes.CDLL(ctypes.util.find_library("lz4") or "liblz4.so.1")
_lz4.LZ4_compress_default.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                      ctypes.c_int, ctypes.c_int]
_lz4.LZ4_decompress_safe.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                     ctypes.c_int, ctypes.c_int]


class ProtocolError(Exception):
    pass


def message(mtype, body):
    return MAGIC + mtype + struct.pack(">H", len(body)) + body


def string(b):
    return bytes([len(b)]) + b


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ProtocolError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_message(sock):
    """(type, body, raw bytes) of the next handshake message."""
    head = recv_exact(sock, 7)
    if head[:4] != MAGIC:
        raise ProtocolError(f"bad magic {head[:4]!r}")
    body = recv_exact(sock, struct.unpack(">H", head[5:7])[0])
    return head[4:5], body, head + body


def parse_hello(body):
    minv, maxv, caps, nlen = struct.unpack(">BBIB", body[:7])
    nonce = body[7:7 + nlen]
    if nlen != NONCE_LEN or len(nonce) != NONCE_LEN:
        raise ProtocolError("bad nonce")
    return minv, maxv, caps, nonce


def parse_result(body):
    status, caps, tlen = struct.unpack(">BIB", body[:6])
    return status, caps, body[6:6 + tlen].decode("ascii", "replace")


def auth_message(hello_raw, secret, agent_id, target, caps, version=VERSION,
                 mac=None):
    """The AUTH answering hello_raw; mac=None computes the right one."""
    fields = (bytes([version]) + struct.pack(">I", caps) +
              string(agent_id.encode()) + string(target.encode()))
    body_len = len(fields) + 1 + MAC_LEN
    prefix = MAGIC + b"A" + struct.pack(">H", body_len) + fields
    if mac is None:
        mac = hmac.new(secret, hello_raw + prefix, hashlib.sha256).digest()
    return prefix + string(mac)


def handshake(sock, secret, agent_id, target, want_lz4=False, version=VERSION):
    """Runs the agent side; returns (status, caps, text)."""
    mtype, body, raw = recv_message(sock)
    if mtype == b"R":
        return parse_result(body)
    if mtype != b"H":
        raise ProtocolError(f"expected HELLO, got {mtype!r}")
    parse_hello(body)
    sock.sendall(auth_message(raw, secret, agent_id, target,
                              CAP_LZ4 if want_lz4 else 0, version))
    mtype, body, _ = recv_message(sock)
    if mtype != b"R":
        raise ProtocolError(f"expected RESULT, got {mtype!r}")
    return parse_result(body)


def connect_agent(port, secret, agent_id, target, want_lz4=False,
                  version=VERSION, timeout=10):
    """A connected, accepted agent socket, or ProtocolError on refusal."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    status, caps, text = handshake(s, secret, agent_id, target, want_lz4,
                                   version)
    if status != 0:
        s.close()
        raise ProtocolError(f"refused: {STATUS.get(status, status)}: {text}")
    if want_lz4 and not caps & CAP_LZ4:
        s.close()
        raise ProtocolError("lz4 not agreed")
    return s


# -- lz4 framing -------------------------------------------------------------

def lz4_block(data):
    dst = ctypes.create_string_buffer(len(data) + len(data) // 255 + 16)
    n = _lz4.LZ4_compress_default(data, dst, len(data), len(dst))
    return dst.raw[:n]


def encode(data, compress=True):
    """Frames like codec_encode (without its backoff)."""
    out = bytearray()
    for off in range(0, len(data), MAX_CHUNK):
        chunk = data[off:off + MAX_CHUNK]
        block = lz4_block(chunk) if compress and len(chunk) >= 256 else b""
        if block and len(block) + 3 < len(chunk):
            out += bytes([LZ4]) + len(block).to_bytes(3, "little") + \
                len(chunk).to_bytes(3, "little") + block
        else:
            out += bytes([RAW]) + len(chunk).to_bytes(3, "little") + chunk
    return bytes(out)


class Decoder:
    """Unframes a byte stream fed in any pieces."""

    def __init__(self):
        self.buf = bytearray()
        self.frames = {RAW: 0, LZ4: 0}

    def feed(self, data):
        self.buf += data
        out = bytearray()
        while self.buf:
            kind = self.buf[0]
            if kind not in (RAW, LZ4):
                raise ProtocolError(f"bad frame kind {kind:#x}")
            hlen = 4 if kind == RAW else 7
            if len(self.buf) < hlen:
                break
            plen = int.from_bytes(self.buf[1:4], "little")
            if len(self.buf) < hlen + plen:
                break
            payload = bytes(self.buf[hlen:hlen + plen])
            if kind == RAW:
                out += payload
            else:
                olen = int.from_bytes(self.buf[4:7], "little")
                dst = ctypes.create_string_buffer(olen)
                n = _lz4.LZ4_decompress_safe(payload, dst, plen, olen)
                if n != olen:
                    raise ProtocolError("corrupt lz4 frame")
                out += dst.raw
            self.frames[kind] += 1
            del self.buf[:hlen + plen]
        return bytes(out)


def text_data(n, seed=1):
    """Compressible, text-like bytes."""
    words = [b"usb", b"redir", b"bulk", b"packet", b"endpoint", b"interface",
             b"config", b"relay", b"agent", b"qemu", b"lz4", b"stream"]
    out = bytearray()
    x = seed
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out += words[x % len(words)] + (b"\n" if x % 7 == 0 else b" ")
    return bytes(out[:n])


def random_data(n):
    return os.urandom(n)
