#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Manual self-check of harness.py and diskimage.py (dev tool).

Exercises what works without redir-agent:
  * disk image generation and verification
  * SeaBIOS booting the image's boot sector from an IDE disk (timed)
  * Qemu with a server and a client usb-redir slot: HMP, info_usb,
    wait_listening, and attach detection with a minimal fake usbredir peer
  * the Agent class against a shell-script stand-in
  * Fixture add/remove with a disk image, if usbemu is built

    /usr/bin/python3 tests/e2e/selftest_harness.py [-v]
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diskimage  # noqa: E402
import harness  # noqa: E402
from harness import Qemu, Agent, Fixture, wait_for  # noqa: E402

VERBOSE = "-v" in sys.argv


def log(msg):
    print(f"  {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# --------------------------------------------------------------------------
# A minimal usbredir peer: just enough to make QEMU attach a device.
# Layouts from the usbredir protocol description (all little endian).
# --------------------------------------------------------------------------

HELLO, DEVICE_CONNECT, INTERFACE_INFO, EP_INFO = 0, 1, 4, 5
CAP_CONNECT_DEVICE_VERSION = 1
CAP_FILTER = 2
CAP_DEVICE_DISCONNECT_ACK = 3
CAP_EP_INFO_MAX_PACKET_SIZE = 4
CAP_64BITS_IDS = 5
CAP_32BITS_BULK_LENGTH = 6
SPEED_HIGH = 2
EP_CONTROL, EP_BULK, EP_INVALID = 0, 2, 255


class FakePeer:
    """Pretends to be a usbredir host with one high-speed mass-storage
    device.  Never answers data packets (tests keep the VM paused)."""

    CAPS = ((1 << CAP_CONNECT_DEVICE_VERSION) | (1 << CAP_FILTER) |
            (1 << CAP_DEVICE_DISCONNECT_ACK) | (1 << CAP_EP_INFO_MAX_PACKET_SIZE) |
            (1 << CAP_64BITS_IDS) | (1 << CAP_32BITS_BULK_LENGTH))

    def __init__(self, sock):
        self.sock = sock
        self.ids64 = False

    def _send(self, ptype, payload, pid=0):
        if self.ids64:
            hdr = struct.pack("<IIQ", ptype, len(payload), pid)
        else:
            hdr = struct.pack("<III", ptype, len(payload), pid)
        self.sock.sendall(hdr + payload)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("peer closed")
            buf += chunk
        return buf

    def handshake(self):
        self.sock.settimeout(10)
        self._send(HELLO, b"fake-peer selftest".ljust(64, b"\0") +
                   struct.pack("<I", self.CAPS))
        ptype, length, _ = struct.unpack("<III", self._recv_exact(12))
        check(ptype == HELLO, f"expected hello from QEMU, got type {ptype}")
        body = self._recv_exact(length)
        caps = struct.unpack("<I", body[64:68])[0] if length >= 68 else 0
        self.ids64 = bool(caps & (1 << CAP_64BITS_IDS))
        if VERBOSE:
            version = body[:64].split(b"\0")[0].decode()
            log(f"QEMU hello: {version!r} caps=0x{caps:x}")

        # ep_info: type[32] interval[32] interface[32] max_packet_size[32]
        # (endpoint index: OUT 0..15, IN 16..31)
        types = [EP_INVALID] * 32
        mps = [0] * 32
        types[0] = types[16] = EP_CONTROL
        mps[0] = mps[16] = 64
        types[2] = EP_BULK          # EP 2 OUT
        types[16 + 1] = EP_BULK     # EP 1 IN
        mps[2] = mps[17] = 512
        self._send(EP_INFO, bytes(types) + bytes(32) + bytes(32) +
                   struct.pack("<32H", *mps))
        # interface_info: count, interface[32] class[32] subclass[32] protocol[32]
        self._send(INTERFACE_INFO, struct.pack("<I", 1) + bytes(32) +
                   bytes([8] + [0] * 31) + bytes([6] + [0] * 31) +
                   bytes([0x50] + [0] * 31))
        # device_connect: speed class subclass protocol vid pid bcdDevice
        self._send(DEVICE_CONNECT, struct.pack("<BBBBHHH", SPEED_HIGH, 0, 0, 0,
                                               0x1d6b, 0x0104, 0x0100))

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------

def t_diskimage(td):
    img = td.file("disk16.img")
    t = time.monotonic()
    sha = diskimage.make_disk_image(img, 16)
    log(f"16 MiB image in {time.monotonic() - t:.2f}s")
    check(os.path.getsize(img) == 16 << 20, "image size")
    check(sha == diskimage.expected_sha256(img), "sha256 of file differs")
    check(diskimage.verify_image(img) is None, "image does not verify")
    with open(img, "rb") as f:
        s0 = f.read(512)
        f.seek(12345 * 512)
        s = f.read(512)
    check(s0[510:] == b"\x55\xaa", "boot signature")
    check(s == diskimage.pattern_sector(12345), "pattern_sector mismatch")
    check(s.startswith(b"RDA-LBA:0000012345"), "sector header")
    check(diskimage.pattern_sector(1)[18:] != diskimage.pattern_sector(2)[18:],
          "fill must vary with the LBA")
    big = td.file("disk64.img")
    t = time.monotonic()
    diskimage.make_disk_image(big, 64, message="other message")
    log(f"64 MiB image in {time.monotonic() - t:.2f}s")
    check(diskimage.verify_image(big, "other message") is None, "64 MiB verify")
    check(diskimage.verify_image(big) == 0, "message must change LBA 0")
    os.unlink(big)
    return img


def t_boot(td, img, accel):
    q = Qemu(td, name=f"boot-{accel}", paused=False, accel_args=["-accel", accel],
             memory=64,
             extra_args=["-drive", f"file={img},format=raw,if=none,id=d0",
                         "-device", "ide-hd,drive=d0,bus=ide.0,bootindex=10"])
    q.start()
    secs = q.wait_boot(timeout=60)
    check(diskimage.DEFAULT_MESSAGE + "\n" in q.serial_text(),
          "message missing on COM1")
    check(q.status() == "running", "status")
    q.stop()
    check(not q.alive(), "qemu still alive after stop")
    log(f"SeaBIOS boot to message with -accel {accel}: {secs:.2f}s")
    return secs


def t_qemu_slots(td):
    pa, pb = harness.free_port(), harness.free_port()
    while pb == pa:
        pb = harness.free_port()
    # Client slot: we listen first so QEMU connects at once (reconnect=1
    # would retry every second otherwise).
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", pb))
    lsock.listen(1)
    q = Qemu(td, slots=[("server", pa), ("client", pb)], name="slots")
    q.start()
    q.wait_listening(pa)
    out = q.hmp("info usb")
    if VERBOSE:
        log(f"info usb: {out!r}")
    check(out.count("USB Redirection Device") == 2, f"info usb: {out!r}")
    check(q.info_usb() == [], f"info_usb() with no peer: {q.info_usb()}")
    check(len(q.info_usb(include_detached=True)) == 2, "two detached slots")
    check(q.status() == "paused (prelaunch)", f"status {q.status()!r}")

    # Both TCP connections come up while paused ...
    a = FakePeer(socket.create_connection(("127.0.0.1", pa), timeout=5))
    lsock.settimeout(10)
    conn, _ = lsock.accept()
    b = FakePeer(conn)
    # ... but usb-redir does not talk until the VM runs.
    a.sock.settimeout(0.5)
    try:
        data = a.sock.recv(100)
        raise AssertionError(f"QEMU sent {data!r} while paused")
    except socket.timeout:
        pass
    check(q.info_usb() == [], "attached while paused?")

    t = time.monotonic()
    q.cont()
    a.handshake()
    b.handshake()
    devs = q.wait_usb_devices(2, timeout=10)
    log(f"fake peers attached {time.monotonic() - t:.2f}s after cont: "
        f"{[(d['id'], d['port'], d['speed']) for d in devs]}")
    check({d["id"] for d in devs} == {"redir0", "redir1"}, f"{devs}")
    check(all(d["speed"] == 480.0 for d in devs), f"{devs}")
    q.wait_stderr(r"usb-redir: attaching high speed device")

    # Disconnect the first peer: back to one.
    a.close()
    devs = q.wait_usb_devices(1, timeout=10)
    check(devs[0]["id"] == "redir1", f"{devs}")
    check(harness.listening_ports().__contains__(pa), "server slot listens again")
    b.close()
    lsock.close()
    q.wait_usb_devices(0, timeout=10)
    q.kill()
    check(not q.alive() and q.returncode() == -signal.SIGKILL, "kill")


def t_sigatt(td, img):
    """etc/usb-time-sigatt really makes SeaBIOS wait for USB devices."""
    q = Qemu(td, name="sigatt", slots=[("server", harness.free_port())],
             accel_args=["-accel", "tcg"], usb_attach_wait_ms=1500,
             extra_args=["-drive", f"file={img},format=raw,if=none,id=d0",
                         "-device", "ide-hd,drive=d0,bus=ide.0,bootindex=10"])
    q.start()
    q.cont()
    secs = q.wait_boot(timeout=60)
    q.stop()
    log(f"boot with usb_attach_wait_ms=1500 (tcg): {secs:.2f}s")
    check(secs >= 1.4, "usb-time-sigatt had no effect")


def t_misc(td):
    try:
        wait_for(lambda: False, 0.2, "nothing")
        raise AssertionError("wait_for did not time out")
    except TimeoutError as e:
        check(str(e) == "timed out after 0.2s waiting for nothing", str(e))
    check(wait_for(lambda: 42, 1, "x") == 42, "wait_for value")

    old = dict(os.environ)
    try:
        os.environ["LD_PRELOAD"] = "libfoo.so"
        os.environ["UMOCKDEV_DIR"] = "/x"
        os.environ.pop("ASAN_OPTIONS", None)
        os.environ["REDIR_ASAN_RUNTIME"] = "/usr/lib/libasan.so.8"
        e = harness.preload_env("/tmp/umockdev.X")
        check(e["LD_PRELOAD"] == "/usr/lib/libasan.so.8 libumockdev-preload.so.0",
              e["LD_PRELOAD"])
        check(e["UMOCKDEV_DIR"] == "/tmp/umockdev.X", "UMOCKDEV_DIR")
        check(e["ASAN_OPTIONS"] == harness.DEFAULT_ASAN_OPTIONS, "ASAN_OPTIONS")
        e = harness.preload_env(asan=False)
        check(e["LD_PRELOAD"] == "libumockdev-preload.so.0", e["LD_PRELOAD"])
        check("UMOCKDEV_DIR" not in e and "ASAN_OPTIONS" not in e, "asan=False env")
        os.environ["ASAN_OPTIONS"] = "detect_leaks=0"
        check(harness.preload_env()["ASAN_OPTIONS"] == "detect_leaks=0", "keep ASAN_OPTIONS")
        e = harness.clean_env()
        check("LD_PRELOAD" not in e and "UMOCKDEV_DIR" not in e, "clean_env")
    finally:
        os.environ.clear()
        os.environ.update(old)

    check(not any(c in td.path for c in ",=:"), "test dir path")


def t_agent_class(td):
    """Agent against a shell script stand-in."""
    fake = td.write("fake-agent.sh", """#!/bin/sh
echo "args: $*"
echo "preload: $LD_PRELOAD dir: ${UMOCKDEV_DIR:-none}"
trap 'echo "got HUP"' HUP
trap 'echo "got TERM"; exit 0' TERM
echo "ready"
while :; do sleep 0.05; done
""")
    os.chmod(fake, 0o755)
    a = Agent(td, path=fake, name="fake", umockdev_dir="/tmp/umockdev.none")
    a.start("[global]\nx = 1\n")
    m = a.wait_log(r"^args: -f -c (\S+)$", timeout=5)
    check(m.group(1) == a.config_path, m.group(0))
    with open(a.config_path) as f:
        check(f.read() == "[global]\nx = 1\n", "config text")
    a.wait_log(r"preload: .*libumockdev-preload\.so\.0 dir: /tmp/umockdev\.none")
    off = a.log_offset()
    a.wait_log(r"^ready$")
    try:
        a.wait_log(r"^ready$", timeout=0.3, start_offset=off)
        raise AssertionError("start_offset ignored")
    except TimeoutError as e:
        check("last log lines" in str(e), str(e))
    a.signal(signal.SIGHUP)
    a.wait_log(r"^got HUP$", start_offset=off)
    a.assert_clean_log()
    check(a.alive(), "alive")
    check(a.stop() == 0, "stop rc")
    check("got TERM" in a.log_text(), "TERM handled")

    # A stand-in that ignores SIGTERM: stop() must kill and fail.
    stub = td.write("stubborn.sh", "#!/bin/sh\ntrap '' TERM\necho 'runtime error: x'\n"
                    "while :; do sleep 0.05; done\n")
    os.chmod(stub, 0o755)
    b = Agent(td, path=stub, name="stubborn")
    b.start("")
    b.wait_log("runtime error")
    try:
        b.stop(timeout=0.5)
        raise AssertionError("stop() should fail")
    except harness.ProcessFailed:
        pass
    check(not b.alive(), "stubborn agent killed")
    try:
        b.assert_clean_log()
        raise AssertionError("sanitizer report not detected")
    except AssertionError as e:
        check("sanitizer report" in str(e), str(e))
    os.truncate(b.log_path, 0)        # main() re-checks every agent's log

    # wait_exit
    c = Agent(td, path="/bin/sh", name="exiter")
    c.start("")   # sh -f -c CONFIG: tries to run the (non-executable) file
    check(c.wait_exit(5) == 126, f"exit code {c.returncode()}")


def t_usbredirect_boot(td, fx, img):
    """Upstream usbredirect + usbemu disk + QEMU: SeaBIOS boots over USB.
    Uses -S + cont, i.e. the handshake races SeaBIOS's USB scan."""
    if not shutil.which("usbredirect"):
        log("usbredirect not installed: skipping the USB boot check")
        return
    for accel in ("tcg", "kvm"):
        port = harness.free_port()
        q = Qemu(td, name=f"usbboot-{accel}", slots=[("server", port)],
                 accel_args=["-accel", accel])
        q.start()
        q.wait_listening(port)
        ur = subprocess.Popen(
            ["usbredirect", "--device", "1209:0d15", "--to", f"127.0.0.1:{port}",
             "--verbose", "4"],
            env=harness.preload_env(fx.umockdev_dir, asan=False),
            stdout=open(td.file(f"usbredirect-{accel}.log"), "wb"),
            stderr=subprocess.STDOUT)
        try:
            # TCP connection up (QEMU does not talk while paused).
            wait_for(lambda: _established(port), 10, "usbredirect to connect")
            q.cont()
            secs = q.wait_boot(timeout=60)
            log(f"SeaBIOS booted the redirected usbemu disk ({accel}) "
                f"{secs:.2f}s after cont")
            check(q.info_usb()[0]["speed"] == 480.0, "speed")
        finally:
            ur.terminate()
            ur.wait(10)
            q.stop()


def _established(port):
    """True if a TCP connection to 127.0.0.1:port is ESTABLISHED."""
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(fn) as f:
            next(f)
            for line in f:
                fl = line.split()
                if fl[3] == "01" and int(fl[2].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def t_fixture(td, img):
    try:
        usbemu = harness.find_program("REDIR_USBEMU", "usbemu", "tests/fixture")
    except harness.Skip as e:
        log(f"fixture part skipped: {e}")
        return
    fx = Fixture(td, path=usbemu)
    fx.start()
    log(f"usbemu READY {fx.umockdev_dir}")
    dev_id, busport = fx.add("disk", img)
    log(f"added disk id={dev_id} at {busport}: {fx.devices[dev_id]}")
    k_id, k_bp = fx.add("keyboard")
    check(k_bp != busport, "distinct bus-port")
    lst = fx.list_devices()
    check(lst == [(dev_id, "disk", busport), (k_id, "keyboard", k_bp)], f"list: {lst!r}")
    t_usbredirect_boot(td, fx, img)
    fx.remove(dev_id)
    fx.remove(k_id)
    check(fx.list_devices() == [], "list after remove")
    try:
        fx.add("disk", td.file("missing.img"))
        log("note: usbemu accepted a missing image")
    except harness.ProcessFailed as e:
        log(f"missing image rejected: {e}")
    check(fx.stop() == 0, "usbemu quit rc")


def test(td):
    log(f"test dir {td.path}")
    t_misc(td)
    img = t_diskimage(td)
    times = {}
    for accel in ("tcg", "kvm"):
        if accel == "kvm" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
            log("no usable /dev/kvm")
            continue
        times[accel] = t_boot(td, img, accel)
    log(f"kvm_pvm: {harness.kvm_is_pvm()}; default accel args: "
        f"{harness.qemu_accel_args()}")
    t_qemu_slots(td)
    t_sigatt(td, img)
    t_agent_class(td)
    t_fixture(td, img)


if __name__ == "__main__":
    harness.main(test)
