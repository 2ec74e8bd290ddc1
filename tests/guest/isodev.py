# SPDX-License-Identifier: MIT
"""Shared parts of the isochronous (webcam, headset) Linux-guest tests:
the guest tools, the guest script helpers, and a rate-limiting TCP relay
that plays a slow or cut network link between the agent and QEMU.

    relay = LinkShaper(qemu_port).start()      # the agent dials relay.port
    relay.set_rate(600_000)                     # bytes/s toward QEMU
    relay.cut(True) ... relay.cut(False)        # nothing moves either way
    relay.set_rate(None)                        # unlimited again

Standard library only.
"""
import os
import socket
import threading
import time

from linuxguest import harness

WEBCAM = "1209:7c4a"
HEADSET = "1209:7aa2"
# The camera streams 320x240 YUYV at 15 fps: 153600-byte frames, plus a
# 2-byte header per 1022 bytes: 2.33 MB/s of usbredir payload.
QVGA_BYTES_S = 15 * 320 * 240 * 2 * 1024 // 1022
GUEST_MODULES = ("uvcvideo", "snd_usb_audio")

# Guest helpers.  The guest has no other V4L2 or sound device: uvcvideo's
# capture node is /dev/video0 (video1 is its metadata node) and the
# headset is sound card 0.
GUEST_LIB = r"""
wait_for() {
    _t=$(( $1 * 10 )); shift
    while [ $_t -gt 0 ]; do
        "$@" && return 0
        usleep 100000
        _t=$(( _t - 1 ))
    done
    return 1
}
usb_errors() { dmesg | grep -c -E 'reset .*USB device|uvcvideo.*(error|fail)|cannot submit urb|usb_set_interface failed|device descriptor read|not accepting address'; }
"""


def guest_tools():
    """{guest path: (bytes, mode)} of the static checkers built by CMake
    ($REDIR_GUEST_UVC_CAPTURE, $REDIR_GUEST_PCM_IO, else the newest build)."""
    files = {}
    for env, name in (("REDIR_GUEST_UVC_CAPTURE", "uvc_capture"),
                      ("REDIR_GUEST_PCM_IO", "pcm_io")):
        path = harness.find_program(env, "guest_" + name, "tests/guest")
        with open(path, "rb") as f:
            files["/bin/" + name] = (f.read(), 0o755)
    return files


class LinkShaper:
    """A TCP relay on 127.0.0.1 in front of a QEMU usb-redir chardev: the
    agent dials .port, the relay dials QEMU.  Toward QEMU it forwards at
    most `rate` bytes/s (a token bucket, 10 ms ticks); cut() stops both
    directions.  Small socket buffers on the relay's agent side, so the
    backlog stays in the agent (where usbredirhost sees it), as behind a
    slow link, rather than in the relay."""

    TICK = 0.01
    RCVBUF = 64 * 1024

    def __init__(self, target_port, host="127.0.0.1"):
        self.target = (host, target_port)
        self.rate = None
        self.cut_now = False
        self.lock = threading.Lock()
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RCVBUF)
        self.lsock.bind(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.stopped = False
        self.bytes_up = 0
        self.sessions = 0
        self.socks = []

    def start(self):
        self.lsock.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def set_rate(self, rate):
        with self.lock:
            self.rate = rate

    def cut(self, on):
        with self.lock:
            self.cut_now = on

    def drop(self):
        """Closes the current sessions (both ends), as a dead link would."""
        socks, self.socks = self.socks, []
        self._close(*socks)

    def stop(self):
        self.stopped = True
        self.lsock.close()
        self.drop()

    def _accept(self):
        while not self.stopped:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            try:
                q = socket.create_connection(self.target, timeout=5)
            except OSError:
                a.close()
                continue
            self.sessions += 1
            self.socks += [a, q]
            for s in (a, q):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(None)
            threading.Thread(target=self._up, args=(a, q), daemon=True).start()
            threading.Thread(target=self._down, args=(q, a), daemon=True).start()

    def _allowance(self, budget, last):
        now = time.monotonic()
        with self.lock:
            rate, cut = self.rate, self.cut_now
        if cut:
            return 0, 0.0, now
        if rate is None:
            return 1 << 20, 0.0, now
        budget = min(budget + rate * (now - last), rate * 0.05)
        return int(budget), budget, now

    def _up(self, src, dst):
        """Agent -> QEMU, shaped."""
        budget, last = 0.0, time.monotonic()
        try:
            while not self.stopped:
                n, budget, last = self._allowance(budget, last)
                if n <= 0:
                    time.sleep(self.TICK)
                    continue
                data = src.recv(min(n, 65536))
                if not data:
                    break
                with self.lock:
                    limited = self.rate is not None
                if limited:
                    budget -= len(data)
                dst.sendall(data)
                self.bytes_up += len(data)
        except OSError:
            pass
        self._close(src, dst)

    def _down(self, src, dst):
        """QEMU -> agent: unshaped, but stopped while the link is cut."""
        try:
            while not self.stopped:
                with self.lock:
                    cut = self.cut_now
                if cut:
                    time.sleep(self.TICK)
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        self._close(src, dst)

    @staticmethod
    def _close(*socks):
        """shutdown() first: a close() alone does not end a recv() blocked
        in the other thread, and the peer would never see the end."""
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
