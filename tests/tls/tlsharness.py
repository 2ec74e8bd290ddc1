# SPDX-License-Identifier: MIT
"""What the TLS tests share: certificates made once per test directory
(make_certs.py), config snippets naming them, a recording TCP proxy (the
man in the middle) and Python TLS peers.

    import tlsharness
    certs = tlsharness.certs(td)             # tests/tls/make_certs.py
    certs.tls_keys("desk-17")                # "tls = yes\\ntls_ca = ..."
"""
import os
import socket
import ssl
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
for p in (HERE, os.path.join(TESTS, "e2e"), os.path.join(TESTS, "relay")):
    if p not in sys.path:
        sys.path.insert(0, p)
import make_certs  # noqa: E402


class Certs(make_certs.Certs):
    def tls_keys(self, name, ca="ca", crl=None, peer_name=None):
        """The tls_* lines of a section using certificate name."""
        text = (f"tls = yes\ntls_ca = {self.path(ca + '.pem')}\n"
                f"tls_cert = {self.path(name + '.pem')}\n"
                f"tls_key = {self.path(name + '-key.pem')}\n")
        if crl:
            text += f"tls_crl = {self.path(crl)}\n"
        if peer_name:
            text += f"tls_peer_name = {peer_name}\n"
        return text

    def client_context(self, name=None, ca="ca"):
        """An ssl client context trusting ca, showing certificate name
        (None: none)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(self.path(ca + ".pem"))
        if name:
            ctx.load_cert_chain(self.path(name + ".pem"),
                                self.path(name + "-key.pem"))
        return ctx

    def server_context(self, name, ca="ca", require_client=True):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(self.path(name + ".pem"),
                            self.path(name + "-key.pem"))
        ctx.load_verify_locations(self.path(ca + ".pem"))
        ctx.verify_mode = (ssl.CERT_REQUIRED if require_client
                           else ssl.CERT_NONE)
        return ctx


def echo(sock, payload, timeout=10):
    """Sends payload and reads as many bytes back (an echoing chardev).
    One thread: an ssl socket must not be read and written at once."""
    sock.settimeout(timeout)
    sock.sendall(payload)
    got = bytearray()
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {len(got)} bytes")
        got += chunk
    return bytes(got)


def certs(td):
    """The test certificates in td/certs, made on first use."""
    d = td.file("certs")
    if not os.path.exists(os.path.join(d, "crl.pem")):
        make_certs.make_all(d)
    return Certs(d)


class RecordingProxy:
    """A man in the middle: forwards one TCP connection at a time from its
    port to target, keeping every byte each way (.up: client to server,
    .down: server to client)."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.up = bytearray()
        self.down = bytearray()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                s = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            for a, b, buf in ((c, s, self.up), (s, c, self.down)):
                threading.Thread(target=self._pump, args=(a, b, buf),
                                 daemon=True).start()

    @staticmethod
    def _pump(a, b, buf):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                buf += data
                b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
