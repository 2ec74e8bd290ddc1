# SPDX-License-Identifier: MIT
"""Shared helpers for redir-agent end-to-end tests.

Each e2e test is a standalone script (run by ctest with /usr/bin/python3)
that ends with ``harness.main(test_fn)``; ``test_fn(testdir)`` raises on
failure.  Standard library only.

Processes involved:
  * Fixture -- ``usbemu``, the umockdev-based emulated USB devices
  * Agent   -- ``redir-agent``, the daemon under test
  * Qemu    -- ``qemu-system-x86_64`` with usb-redir slots, the real peer

Environment knobs:
  REDIR_AGENT         path of redir-agent
  REDIR_USBEMU        path of usbemu
  REDIR_ASAN_RUNTIME  path of libasan.so (put first in the agent's LD_PRELOAD)
  REDIR_QEMU          QEMU binary (default qemu-system-x86_64)
  REDIR_QEMU_ACCEL    accelerators for SeaBIOS-only guests, comma separated
                      (default "kvm,tcg")
  REDIR_KEEP_TESTDIR  if set, keep the test directory even on success
"""

import atexit
import ctypes
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import queue

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import diskimage  # noqa: E402
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
UMOCKDEV_PRELOAD = "libumockdev-preload.so.0"
DEFAULT_ASAN_OPTIONS = "detect_leaks=1:abort_on_error=0:verify_asan_link_order=0"

# Every process object started in this interpreter, for cleanup in main().
_started = []




class ProcessFailed(AssertionError):
    """A helper process misbehaved (bad exit code, no reply, ...)."""


# --------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll `predicate()` until truthy; return its value.

    Raises TimeoutError("timed out after {timeout}s waiting for {what}").
    Exceptions from the predicate propagate.
    """
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def tail(path, lines=30):
    """Last `lines` lines of a text file ("" if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def _read_from(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None
_PR_SET_PDEATHSIG = 1


def _pdeathsig(sig):
    """preexec_fn: deliver `sig` to the child if the harness dies (e.g. a
    ctest timeout SIGKILLs it), so no process outlives its test."""
    def fn():
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    return fn


def _qemu_safe(path):
    return not any(c in path for c in ",=:")


def listening_ports():
    """Set of local TCP ports in LISTEN state (from /proc/net/tcp{,6})."""
    ports = set()
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def kvm_is_pvm():
    """True if /dev/kvm is the software 'kvm_pvm' (fine for SeaBIOS only)."""
    return os.path.isdir("/sys/module/kvm_pvm")


def find_program(env_var, name, subdir):
    """Path from $env_var, else the newest <source>/build*/<subdir>/<name>."""
    p = os.environ.get(env_var)
    if p:
        return p
    cands = [c for c in glob.glob(os.path.join(SOURCE_ROOT, "build*", subdir, name))
             if os.access(c, os.X_OK)]
    if cands:
        return max(cands, key=os.path.getmtime)
    raise FileNotFoundError(f"{name} not found: set {env_var} or build the project")


# --------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------

def clean_env():
    """os.environ without LD_PRELOAD / UMOCKDEV_DIR (for QEMU etc.)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("UMOCKDEV_DIR", None)
    return env


def preload_env(umockdev_dir=None, asan=True):
    """Environment for programs that must see the emulated devices.

    LD_PRELOAD = [$REDIR_ASAN_RUNTIME] libumockdev-preload.so.0; with the
    ASan runtime, ASAN_OPTIONS defaults to DEFAULT_ASAN_OPTIONS.  `asan=False`
    leaves the ASan runtime out (used for the fixture).
    """
    env = clean_env()
    pre = []
    asan_rt = os.environ.get("REDIR_ASAN_RUNTIME") if asan else None
    if asan_rt:
        pre.append(asan_rt)
        env.setdefault("ASAN_OPTIONS", DEFAULT_ASAN_OPTIONS)
    pre.append(UMOCKDEV_PRELOAD)
    env["LD_PRELOAD"] = " ".join(pre)
    if umockdev_dir:
        env["UMOCKDEV_DIR"] = umockdev_dir
    return env


# --------------------------------------------------------------------------
# Test directory
# --------------------------------------------------------------------------

class TestDir:
    """Per-test temporary directory: removed on success, kept on failure.

    The path never contains ',', '=' or ':' (QEMU options cannot take them).
    """

    def __init__(self, name="test"):
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40]
        base = os.environ.get("TMPDIR") or "/tmp"
        if not (_qemu_safe(base) and os.path.isdir(base)):
            base = "/tmp"
        self.path = tempfile.mkdtemp(prefix=f"rda-{safe}-", dir=base)
        if not _qemu_safe(self.path):            # cannot happen for /tmp
            raise RuntimeError(f"unusable test dir {self.path!r}")
        self.keep = bool(os.environ.get("REDIR_KEEP_TESTDIR"))

    def __str__(self):
        return self.path

    def __fspath__(self):
        return self.path

    def file(self, name):
        """Path of `name` inside the directory."""
        return os.path.join(self.path, name)

    def write(self, name, text):
        p = self.file(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def cleanup(self, success):
        if success and not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def _sock_path(testdir, name):
    """A unix socket path in testdir, or a short one in /tmp if too long."""
    p = testdir.file(name)
    if len(p.encode()) < 100:
        return p
    d = tempfile.mkdtemp(prefix="rda-sock-", dir="/tmp")
    atexit.register(shutil.rmtree, d, True)
    return os.path.join(d, name)


# --------------------------------------------------------------------------
# Process base
# --------------------------------------------------------------------------

class _Proc:
    kind = "process"
    log_path = None

    def __init__(self, testdir, name):
        self.testdir = testdir
        self.name = name
        self.proc = None
        _started.append(self)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def returncode(self):
        return self.proc.poll() if self.proc else None

    def _kill(self):
        if self.alive():
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def _cleanup(self):
        """Best effort, never raises: used by main()."""
        self._kill()

    def log_files(self):
        """[(title, path)] to show when a test fails."""
        return [(f"{self.kind} {self.name} log", self.log_path)] if self.log_path else []


# --------------------------------------------------------------------------
# Fixture: usbemu
# --------------------------------------------------------------------------

class Fixture(_Proc):
    """The emulated-device process (usbemu), driven over stdin/stdout."""

    kind = "fixture"

    def __init__(self, testdir, path=None, name="usbemu"):
        super().__init__(testdir, name)
        self.path = path or find_program("REDIR_USBEMU", "usbemu", "tests/fixture")
        self.log_path = testdir.file(f"{name}.log")
        self.umockdev_dir = None
        self.devices = {}          # id -> dict(kind, busport, devnode, image)
        self._lines = queue.Queue()
        self._reader = None

    def _read_stdout(self):
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)      # EOF

    def _reply(self, timeout, what):
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise ProcessFailed(f"usbemu: no reply within {timeout}s to {what!r}")
        if line is None:
            self._lines.put(None)
            rc = self.proc.poll()
            raise ProcessFailed(f"usbemu exited (rc={rc}) while waiting for "
                                f"reply to {what!r}")
        return line

    def start(self, timeout=20):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=log, env=preload_env(asan=False), text=True, bufsize=1,
                cwd=self.testdir.path, preexec_fn=_pdeathsig(signal.SIGTERM))
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        line = self._reply(timeout, "startup")
        m = re.match(r"READY (\S+)$", line)
        if not m:
            raise ProcessFailed(f"usbemu: expected 'READY <dir>', got {line!r}")
        self.umockdev_dir = m.group(1)
        return self

    def command(self, cmd, timeout=10):
        """Send one command line, return the reply line (ERROR raises)."""
        if not self.alive():
            raise ProcessFailed(f"usbemu not running (rc={self.returncode()})")
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        line = self._reply(timeout, cmd)
        if line.startswith("ERROR"):
            raise ProcessFailed(f"usbemu {cmd!r}: {line}")
        return line

    def add(self, kind, image=None, timeout=10):
        """Add a device ('disk' needs image); return (id, busport)."""
        cmd = f"add {kind}" + (f" {image}" if image else "")
        line = self.command(cmd, timeout)
        m = re.match(r"ADDED (\S+) (\S+) (\S+)", line)
        if not m:
            raise ProcessFailed(f"usbemu {cmd!r}: unexpected reply {line!r}")
        dev_id = int(m.group(1)) if m.group(1).isdigit() else m.group(1)
        self.devices[dev_id] = dict(kind=kind, busport=m.group(2),
                                    devnode=m.group(3), image=image)
        return dev_id, m.group(2)

    def remove(self, dev_id, timeout=10):
        line = self.command(f"remove {dev_id}", timeout)
        if line.split()[:2] != ["REMOVED", str(dev_id)]:
            raise ProcessFailed(f"usbemu remove {dev_id}: unexpected reply {line!r}")
        self.devices.pop(dev_id, None)

    def list(self):
        """The text after 'DEVICES' in the reply to 'list'."""
        line = self.command("list")
        if not line.startswith("DEVICES"):
            raise ProcessFailed(f"usbemu list: unexpected reply {line!r}")
        return line[len("DEVICES"):].strip()

    def list_devices(self):
        """[(id, kind, busport)] parsed from 'list' (DEVICES id:kind:bus-port ...)."""
        out = []
        for item in self.list().split():
            dev_id, kind, busport = item.split(":", 2)
            out.append((int(dev_id) if dev_id.isdigit() else dev_id, kind, busport))
        return out

    def stop(self, timeout=10):
        """quit; wait; SIGTERM then SIGKILL on timeout.  Raises if rc != 0."""
        if self.proc is None or self.proc.poll() is not None:
            return self.returncode()
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()           # usbemu finalizes the testbed
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self._kill()
            self._remove_testbed()
            raise ProcessFailed(f"usbemu did not exit within {timeout}s of quit")
        if rc != 0:
            raise ProcessFailed(f"usbemu exited with {rc} after quit")
        return rc

    def _remove_testbed(self):
        # A killed testbed leaves /tmp/umockdev.XXXXXX behind.
        d = self.umockdev_dir
        if d and os.path.basename(d).startswith("umockdev.") and os.path.isdir(d):
            shutil.rmtree(d, ignore_errors=True)

    def _cleanup(self):
        if self.alive():
            try:
                self.stop(5)
            except Exception:
                pass
        self._kill()
        if self.proc and self.proc.returncode not in (0, None):
            self._remove_testbed()


# --------------------------------------------------------------------------
# Agent: redir-agent under test
# --------------------------------------------------------------------------

SANITIZER_PATTERNS = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"SUMMARY: UndefinedBehaviorSanitizer|WARNING: ThreadSanitizer")


class Agent(_Proc):
    """redir-agent -f -c CONFIG, under the umockdev preload."""

    kind = "agent"

    def __init__(self, testdir, fixture=None, path=None, name="agent",
                 umockdev_dir=None, wrapper=()):
        super().__init__(testdir, name)
        # e.g. ["ip", "netns", "exec", NS]: run the agent inside it
        self.wrapper = list(wrapper)
        self.path = path or find_program("REDIR_AGENT", "redir-agent", "agent")
        self.fixture = fixture
        self._umockdev_dir = umockdev_dir
        self.config_path = testdir.file(f"{name}.conf")
        self.log_path = testdir.file(f"{name}.log")

    def start(self, config_text, extra_args=()):
        # Each agent gets its own control socket: tests run in parallel.
        self.control_socket = self.testdir.file(f"{self.name}.sock")
        if "control_socket" not in config_text:
            config_text += f"\n[agent]\ncontrol_socket = {self.control_socket}\n"
        with open(self.config_path, "w") as f:
            f.write(config_text)
        udir = self._umockdev_dir or (self.fixture.umockdev_dir if self.fixture else None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.wrapper, self.path, "-f", "-c", self.config_path,
                 *extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=preload_env(udir), cwd=self.testdir.path,
                preexec_fn=_pdeathsig(signal.SIGTERM))
        return self

    def log_offset(self):
        """Current size of the log: pass to wait_log(start_offset=...)."""
        return _file_size(self.log_path)

    def log_text(self, start_offset=0):
        return _read_from(self.log_path, start_offset)

    def wait_log(self, regex, timeout=20, start_offset=None):
        """Poll the log (from start_offset, default 0) until `regex` matches.

        Returns the re.Match (against the text from start_offset, MULTILINE).
        Fails early if the agent exits without having logged it.
        """
        rx = re.compile(regex, re.MULTILINE)
        off = start_offset or 0
        deadline = time.monotonic() + timeout
        while True:
            exited = not self.alive()
            m = rx.search(self.log_text(off))
            if m:
                return m
            if exited:
                raise ProcessFailed(
                    f"agent exited (rc={self.returncode()}) before logging "
                    f"/{regex}/; last log lines:\n{tail(self.log_path, 30)}")
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for /{regex}/ in the "
                    f"agent log; last log lines:\n{tail(self.log_path, 30)}")
            time.sleep(0.05)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Wait for the agent to exit; return its exit code."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"timed out after {timeout}s waiting for the "
                               f"agent to exit") from None

    def stop(self, timeout=5, expect_rc=0):
        """SIGTERM; wait `timeout` s; else SIGKILL and fail.

        Returns the exit code; raises if it differs from expect_rc
        (None: accept any).
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                raise ProcessFailed(f"agent did not exit within {timeout}s of "
                                    f"SIGTERM (killed)")
        rc = self.proc.returncode
        if expect_rc is not None and rc != expect_rc:
            raise ProcessFailed(f"agent exited with {rc}, expected {expect_rc}; "
                                f"last log lines:\n{tail(self.log_path, 30)}")
        return rc

    def sanitizer_reports(self):
        text = self.log_text()
        return [m.start() for m in SANITIZER_PATTERNS.finditer(text)]

    def assert_clean_log(self):
        """Raise if the log holds an ASan/LSan/UBSan report."""
        text = self.log_text()
        m = SANITIZER_PATTERNS.search(text)
        if m:
            start = text.rfind("\n", 0, max(0, m.start() - 2000)) + 1
            excerpt = text[start:m.start() + 6000]
            raise AssertionError(f"sanitizer report in {self.log_path}:\n{excerpt}")

    def _cleanup(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._kill()


# --------------------------------------------------------------------------
# QEMU: the usb-redir peer
# --------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[@-Z\\-_]")
_USB_LINE = re.compile(
    r"^\s*Device (\d+)\.(\d+), Port ([\d.]+), Speed ([\d.]+) Mb/s, "
    r"Product (.*?)(?:, ID: (\S+))?\s*$")
_QTREE_USB = re.compile(
    r"^\s*addr (\d+)\.(\d+), port ([\d.]+), speed ([\d.]+), name (.*?)"
    r"(, attached)?\s*$")


def qemu_accel_args(linux_guest=False):
    """-accel options.  SeaBIOS-only guests: $REDIR_QEMU_ACCEL or kvm,tcg
    (QEMU falls back to TCG if KVM cannot start).  Linux guests: TCG when
    /dev/kvm is missing or is the software kvm_pvm."""
    if linux_guest:
        if kvm_is_pvm() or not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return ["-accel", "tcg,thread=multi", "-cpu", "max"]
        return ["-accel", "kvm", "-cpu", "host"]
    accels = os.environ.get("REDIR_QEMU_ACCEL", "kvm,tcg").split(",")
    if "kvm" in accels and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        accels = [a for a in accels if a != "kvm"] or ["tcg"]
    out = []
    for a in accels:
        out += ["-accel", a]
    return out


class Qemu(_Proc):
    """qemu-system-x86_64 with an xHCI controller and usb-redir slots.

    slots: [("server", port) | ("client", port), ...]; slot N gets chardev
    urN and device redirN (bootindex N).  "server": QEMU listens
    (server=on,wait=off) and the agent connects; "client": QEMU connects to
    the agent (reconnect=1, retried every second).

    paused=True adds -S.  NB: QEMU's usb-redir neither reads nor writes its
    chardev unless the VM is running, so while paused the TCP connection
    is up but no usbredir hello is exchanged and nothing attaches; the
    handshake starts at cont() and races SeaBIOS's USB scan.
    usb_attach_wait_ms makes SeaBIOS wait that long for devices to show up
    on USB ports (fw_cfg etc/usb-time-sigatt, default 100 ms in SeaBIOS):
    use it for boot tests, it delays every boot by about that much.

    accel_args: default qemu_accel_args() (-accel kvm -accel tcg).
    tls: {"server": DIR, "client": DIR}: the chardevs of that mode speak
    TLS with QEMU's tls-creds-x509 from DIR (ca-cert.pem, server-cert.pem
    ... as tests/tls/make_certs.py writes them), verify-peer=on.
    """

    kind = "qemu"

    def __init__(self, testdir, slots=(), paused=True, name="qemu",
                 extra_args=(), memory=128, accel_args=None, debug=3,
                 usb_attach_wait_ms=None, usbredir_filter=None,
                 host="127.0.0.1", tls=None):
        super().__init__(testdir, name)
        self.tls = tls or {}
        self.host = host  # address the usb-redir chardevs use
        # QEMU's own usb-redir filter ("class:vid:pid:bcd:allow|..."),
        # which it sends to the agent as filter_filter.
        self.usbredir_filter = usbredir_filter
        self.binary = os.environ.get("REDIR_QEMU", "qemu-system-x86_64")
        self.slots = list(slots)
        self.paused = paused
        self.extra_args = list(extra_args)
        self.memory = memory
        self.accel_args = accel_args if accel_args is not None else qemu_accel_args()
        self.debug = debug
        self.usb_attach_wait_ms = usb_attach_wait_ms
        self.monitor_path = _sock_path(testdir, f"{name}-mon.sock")
        self.debugcon_log = testdir.file(f"{name}-debugcon.log")
        self.serial_log = testdir.file(f"{name}-serial.log")
        self.stderr_log = testdir.file(f"{name}-stderr.log")
        self.log_path = self.stderr_log
        self.started_at = None
        self.cont_at = None

    def command_line(self):
        args = [self.binary, "-nodefaults", "-display", "none",
                "-machine", "q35", *self.accel_args, "-m", str(self.memory),
                "-name", self.name,
                "-device", "qemu-xhci,id=xhci"]
        for role, tls_dir in self.tls.items():
            args += ["-object", f"tls-creds-x509,id=tls-{role},dir={tls_dir},"
                     f"endpoint={role},verify-peer=on"]
        for i, (mode, port) in enumerate(self.slots):
            if mode == "server":
                sock = "server=on,wait=off"
            elif mode == "client":
                sock = "reconnect=1"
            else:
                raise ValueError(f"slot mode must be server or client: {mode!r}")
            if mode in self.tls:
                sock += f",tls-creds=tls-{mode}"
            args += ["-chardev",
                     f"socket,id=ur{i},host={self.host},port={int(port)},{sock}",
                     "-device",
                     f"usb-redir,chardev=ur{i},id=redir{i},bus=xhci.0,"
                     f"debug={self.debug},bootindex={i}" +
                     (f",filter={self.usbredir_filter}"
                      if self.usbredir_filter else "")]
        for p in (self.monitor_path, self.debugcon_log, self.serial_log):
            if not _qemu_safe(p):
                raise ValueError(f"path unusable by QEMU: {p!r}")
        args += ["-chardev", f"socket,id=mon,path={self.monitor_path},server=on,wait=off",
                 "-mon", "chardev=mon,mode=readline",
                 "-chardev", f"file,id=dbg,path={self.debugcon_log}",
                 "-device", "isa-debugcon,iobase=0x402,chardev=dbg",
                 "-serial", f"file:{self.serial_log}",
                 "-boot", "strict=on"]
        if self.usb_attach_wait_ms is not None:
            f = self.testdir.file(f"{self.name}-usb-time-sigatt.bin")
            with open(f, "wb") as fh:
                fh.write(int(self.usb_attach_wait_ms).to_bytes(4, "little"))
            args += ["-fw_cfg", f"name=etc/usb-time-sigatt,file={f}"]
        if self.paused:
            args.append("-S")
        return args + self.extra_args

    def start(self, timeout=20):
        if shutil.which(self.binary) is None:
            raise FileNotFoundError(f"{self.binary} not installed: run scripts/install-deps.sh")
        args = self.command_line()
        with open(self.stderr_log, "ab") as log:
            log.write(("# " + " ".join(args) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=clean_env(),
                cwd=self.testdir.path, preexec_fn=_pdeathsig(signal.SIGKILL))
        self.started_at = time.monotonic()

        def ready():
            if not self.alive():
                raise ProcessFailed(f"QEMU exited at startup (rc={self.returncode()}):\n"
                                    f"{tail(self.stderr_log, 30)}")
            return os.path.exists(self.monitor_path)
        wait_for(ready, timeout, "the QEMU monitor socket")
        return self

    # -- monitor ----------------------------------------------------------

    def hmp(self, cmd, timeout=10):
        """Run one HMP command; return its output (echo and escapes removed)."""
        prompt = b"(qemu) "
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.monitor_path)

            def read_prompt(buf):
                while not buf.endswith(prompt):
                    s.settimeout(max(0.01, deadline - time.monotonic()))
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        raise TimeoutError(f"timed out after {timeout}s waiting "
                                           f"for HMP {cmd!r}") from None
                    if not chunk:        # e.g. after 'quit'
                        return buf, False
                    buf += chunk
                return buf, True

            read_prompt(b"")                 # banner
            s.sendall(cmd.encode() + b"\n")
            out, _ = read_prompt(b"")
        text = _ANSI.sub("", out.decode("utf-8", "replace")).replace("\r", "")
        if text.endswith("(qemu) "):
            text = text[:-len("(qemu) ")]
        # First line is the (re-drawn) echo of the command.
        _, _, rest = text.partition("\n")
        return rest

    def _qtree_usb(self):
        """{(bus, port): dict(attached, speed, addr)} from info qtree."""
        res = {}
        for line in self.hmp("info qtree").splitlines():
            m = _QTREE_USB.match(line)
            if m:
                res[(m.group(1), m.group(3))] = dict(
                    addr=int(m.group(2)), attached=bool(m.group(6)))
        return res

    def info_usb(self, include_detached=False):
        """Devices from `info usb` as dicts.

        QEMU lists every usb-redir slot, peer or not (as "Device 0.0, Speed
        1.5"), so by default only devices marked attached in `info qtree`
        are returned.  Keys: bus, addr, device ("0.1"), port, speed
        (Mb/s, float), product, id, attached.
        """
        devs = []
        for line in self.hmp("info usb").splitlines():
            m = _USB_LINE.match(line)
            if not m:
                continue
            devs.append(dict(bus=int(m.group(1)), addr=int(m.group(2)),
                             device=f"{m.group(1)}.{m.group(2)}",
                             port=m.group(3), speed=float(m.group(4)),
                             product=m.group(5), id=m.group(6)))
        qt = self._qtree_usb()
        for d in devs:
            d["attached"] = qt.get((str(d["bus"]), d["port"]), {}).get("attached", True)
        if not include_detached:
            devs = [d for d in devs if d["attached"]]
        return devs

    def wait_usb_devices(self, n, timeout=20, speed=480):
        """Wait until exactly n attached USB devices, each at `speed` Mb/s
        (None: any); return them.  Right after an attach QEMU may still list
        the placeholder 1.5 Mb/s for a moment."""
        last = []

        def check():
            if not self.alive():
                raise ProcessFailed(f"QEMU died (rc={self.returncode()})")
            last[:] = self.info_usb()
            return len(last) == n and (
                speed is None or all(d["speed"] == speed for d in last))
        try:
            wait_for(check, timeout, f"{n} attached USB device(s) in QEMU", 0.1)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; have {last}") from None
        return last

    def cont(self):
        """Resume the VM (starts SeaBIOS when started paused)."""
        self.hmp("cont")
        self.cont_at = time.monotonic()

    def status(self):
        """'running', 'paused (prelaunch)', ... from info status."""
        out = self.hmp("info status").strip()
        return out.split("VM status:", 1)[-1].strip()

    # -- logs -------------------------------------------------------------

    def debugcon_text(self):
        return _read_from(self.debugcon_log, 0)

    def serial_text(self):
        return _read_from(self.serial_log, 0)

    def stderr_text(self):
        return _read_from(self.stderr_log, 0)

    def stderr_offset(self):
        return _file_size(self.stderr_log)

    def wait_stderr(self, regex, timeout=20, start_offset=0):
        """Wait for `regex` in QEMU's stderr (usb-redir debug=3 output)."""
        rx = re.compile(regex, re.MULTILINE)

        def check():
            m = rx.search(_read_from(self.stderr_log, start_offset))
            if not m and not self.alive():
                raise ProcessFailed(f"QEMU died (rc={self.returncode()}) before "
                                    f"/{regex}/ on stderr")
            return m
        return wait_for(check, timeout, f"/{regex}/ on QEMU stderr")

    def wait_boot(self, message=None, timeout=60):
        """Wait until `message` (default: diskimage.DEFAULT_MESSAGE) appears
        on the debugcon; return seconds since cont() (or start())."""
        if message is None:
            message = diskimage.DEFAULT_MESSAGE

        def check():
            if message in self.debugcon_text():
                return True
            if not self.alive():
                raise ProcessFailed(f"QEMU died (rc={self.returncode()}) before "
                                    f"booting")
            return False
        try:
            wait_for(check, timeout, f"{message!r} on the QEMU debugcon", 0.05)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; debugcon tail:\n{tail(self.debugcon_log, 20)}") \
                from None
        return time.monotonic() - (self.cont_at or self.started_at)

    def wait_listening(self, port, timeout=10):
        """Wait until QEMU listens on `port`.  Polls /proc/net/tcp instead of
        connecting: with server=on,wait=off a probe would become the peer."""
        def check():
            if not self.alive():
                raise ProcessFailed(f"QEMU died (rc={self.returncode()})")
            return port in listening_ports()
        wait_for(check, timeout, f"QEMU to listen on port {port}")

    def log_files(self):
        return [(f"qemu {self.name} stderr", self.stderr_log),
                (f"qemu {self.name} debugcon", self.debugcon_log)]

    # -- stopping ---------------------------------------------------------

    def kill(self):
        """SIGKILL (simulates a crash)."""
        self._kill()

    def stop(self, timeout=10):
        """HMP quit; wait; SIGKILL on timeout.  Returns the exit code."""
        if self.alive():
            try:
                self.hmp("quit", timeout=5)
            except (OSError, TimeoutError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        return self.returncode()

    def _cleanup(self):
        try:
            self.stop(5)
        except Exception:
            pass
        self._kill()


# --------------------------------------------------------------------------
# Test entry point
# --------------------------------------------------------------------------

class _Terminated(BaseException):
    pass


def _on_signal(signum, frame):
    raise _Terminated(f"terminated by signal {signum}")


def _cleanup_all():
    # Agents first (they hold the devices and the connections), then QEMU,
    # then the fixture (so its testbed is finalized last).
    order = {"agent": 0, "qemu": 1, "fixture": 2}
    for p in sorted(_started, key=lambda p: order.get(p.kind, 3)):
        try:
            p._cleanup()
        except Exception:
            traceback.print_exc()


atexit.register(_cleanup_all)


def main(test_fn, name=None):
    """Run test_fn(testdir); print PASS/FAIL; exit 0/1.

    Every started Fixture/Agent/Qemu is stopped afterwards (SIGKILL if need
    be).  Agents' logs are checked for sanitizer reports even on success.
    """
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _on_signal)
    td = TestDir(name)
    ok, rc, err = False, 1, None
    t0 = time.monotonic()
    try:
        test_fn(td)
        ok, rc = True, 0
    except BaseException:
        err = traceback.format_exc()
    finally:
        _cleanup_all()
    if ok and rc == 0:
        for p in _started:
            if isinstance(p, Agent):
                try:
                    p.assert_clean_log()
                except AssertionError:
                    ok, rc, err = False, 1, traceback.format_exc()
    if ok:
        td.cleanup(True)
        if rc == 0:
            print(f"PASS {name} ({time.monotonic() - t0:.1f}s)")
        sys.stdout.flush()
        sys.exit(rc)
    print(f"FAIL {name}\n{err}", end="")
    for p in _started:
        rc_note = "" if p.proc is None else f", exit code {p.proc.returncode}"
        for title, path in p.log_files():
            if path and os.path.exists(path):
                print(f"----- {title} ({path}{rc_note}), last 40 lines -----")
                print(tail(path, 40))
    print(f"----- test dir kept: {td.path}")
    sys.stdout.flush()
    sys.exit(1)
