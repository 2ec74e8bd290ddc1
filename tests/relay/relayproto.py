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
VERSION = 2
CAP_LZ4 = 1
NONCE_LEN = 32
MAC_LEN = 32
PROOF_LABEL = b"RDRL relay proof v2"

STATUS = {0: "ok", 1: "not authenticated", 2: "unknown target",
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


def result_proof(body):
    """(offset in the message of the PROOF field, proof bytes) of a v2
    RESULT body, or (None, None) for a v1 one."""
    tlen = body[5]
    at = 6 + tlen
    if at >= len(body):
        return None, None
    plen = body[at]
    return 7 + at, body[at + 1:at + 1 + plen]


def auth_message(hello_raw, secret, agent_id, target, caps, version=VERSION,
                 mac=None, nonce=None):
    """The AUTH answering hello_raw; mac=None computes the right one
    (secret None: no MAC, the TLS-certificate form of version 2)."""
    fields = (bytes([version]) + struct.pack(">I", caps) +
              string(agent_id.encode()) + string(target.encode()))
    if version >= 2:
        fields += string(nonce if nonce is not None else os.urandom(NONCE_LEN))
    mac_len = len(mac) if mac is not None else (
        MAC_LEN if secret is not None else 0)
    body_len = len(fields) + 1 + mac_len
    prefix = MAGIC + b"A" + struct.pack(">H", body_len) + fields
    if mac is None:
        mac = (hmac.new(secret, hello_raw + prefix, hashlib.sha256).digest()
               if secret is not None else b"")
    return prefix + string(mac)


def accept_message(secret, hello_raw, auth_raw, caps, text=b""):
    """A relay's accepting v2 RESULT, with the PROOF of secret (None: an
    empty PROOF, as over TLS with certificates)."""
    fields = bytes([0]) + struct.pack(">I", caps) + string(text)
    plen = MAC_LEN if secret is not None else 0
    prefix = MAGIC + b"R" + struct.pack(">H", len(fields) + 1 + plen) + fields
    proof = (hmac.new(secret, PROOF_LABEL + hello_raw + auth_raw + prefix,
                      hashlib.sha256).digest() if secret is not None else b"")
    return prefix + string(proof)


def proof_ok(secret, hello_raw, auth_raw, result_raw, body):
    """True if a v2 accepting RESULT proves the relay knows secret."""
    at, proof = result_proof(body)
    if at is None or len(proof) != MAC_LEN:
        return False
    want = hmac.new(secret, PROOF_LABEL + hello_raw + auth_raw +
                    result_raw[:at], hashlib.sha256).digest()
    return hmac.compare_digest(want, proof)


def handshake(sock, secret, agent_id, target, want_lz4=False, version=VERSION):
    """Runs the agent side; returns (status, caps, text). A v2 acceptance
    whose PROOF is wrong raises ProtocolError (secret None: not checked)."""
    mtype, body, raw = recv_message(sock)
    if mtype == b"R":
        return parse_result(body)
    if mtype != b"H":
        raise ProtocolError(f"expected HELLO, got {mtype!r}")
    parse_hello(body)
    auth = auth_message(raw, secret, agent_id, target,
                        CAP_LZ4 if want_lz4 else 0, version)
    sock.sendall(auth)
    mtype, rbody, rraw = recv_message(sock)
    if mtype != b"R":
        raise ProtocolError(f"expected RESULT, got {mtype!r}")
    result = parse_result(rbody)
    if (result[0] == 0 and version >= 2 and secret is not None and
            not proof_ok(secret, raw, auth, rraw, rbody)):
        raise ProtocolError("the relay's PROOF is wrong")
    return result


def connect_agent(port, secret, agent_id, target, want_lz4=False,
                  version=VERSION, timeout=10, tls=None):
    """A connected, accepted agent socket, or ProtocolError on refusal.
    tls: an ssl.SSLContext to wrap the socket in first."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls is not None:
        s = tls.wrap_socket(s, server_hostname="127.0.0.1")
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
