# SPDX-License-Identifier: MIT
"""A control channel from a test to a Linux VM of the rigs: a virtio-serial
port named "ctl" whose host end is a unix socket (QEMU chardev, server).

VM side: ``CTL_SH`` (busybox ash), sourced by the VM's init, serves
``ctl_serve LIB``: it reads one request per line, ``ID BASE64(script)``,
runs the script in a subshell after sourcing LIB (stdin /dev/null, stdout
and stderr to a file), and answers with the script's output, then
``\\n@@CTL-DONE ID RC NBYTES\\n``.  NBYTES lets the host cut the output out
exactly, so it is binary-safe.  Request ``quit`` ends ctl_serve.
A port with no host connected reads as EOF: the loop reopens it.

Host side: ``VmControl(sock_path).run(script, timeout) -> (rc, text)``.
One request at a time (a lock).  A script that starts something lasting
must redirect its output and background it (see ``bg`` in the libraries):
the loop waits for the subshell only.

QEMU arguments: ``qemu_args(sock_path)``.
"""

import base64
import os
import re
import socket
import threading
import time

CTL_SH = r"""# redir-agent rigs: the control channel's VM side
ctl_port() {
    for _p in /sys/class/virtio-ports/*; do
        [ "$(cat "$_p/name" 2>/dev/null)" = ctl ] && { echo "/dev/${_p##*/}"; return 0; }
    done
    return 1
}
# ctl_serve LIB: serve requests until "quit"; each script runs after LIB
ctl_serve() {
    _lib=$1
    _n=0
    while ! _port=$(ctl_port) || [ ! -e "$_port" ]; do
        usleep 20000
        _n=$((_n + 1))
        [ $_n -gt 1500 ] && { echo "CTL-ERROR: no virtio port named ctl"; return 1; }
    done
    mkdir -p /tmp/ctl
    echo "CTL-READY $_port uptime=$(cut -d' ' -f1 /proc/uptime)"
    while true; do
        exec 3<>"$_port"
        while read -r _id _b64 <&3; do
            [ -n "$_id" ] || continue
            if [ "$_id" = quit ]; then exec 3>&-; return 0; fi
            echo "$_b64" | base64 -d > /tmp/ctl/cmd
            ( cd /; . "$_lib"; . /tmp/ctl/cmd ) </dev/null >/tmp/ctl/out 2>&1
            _rc=$?
            cat /tmp/ctl/out >&3
            printf '\n@@CTL-DONE %s %s %s\n' "$_id" "$_rc" "$(wc -c < /tmp/ctl/out)" >&3
        done
        exec 3>&-
        usleep 100000       # no host connected: EOF; wait and reopen
    done
}
"""

# Helpers every rig library has (sourced before each script).
COMMON_LIB = r"""
now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.2f", b - a }'; }
# wait_until TIMEOUT_S CMD...: run CMD every 50 ms until it succeeds
wait_until() {
    _t=$(( $1 * 20 )); shift
    while ! "$@"; do
        _t=$((_t - 1))
        [ $_t -le 0 ] && return 1
        usleep 50000
    done
    return 0
}
# bg LOG CMD...: start CMD in its own session, output to LOG; prints its pid
bg() {
    _log=$1; shift
    setsid "$@" </dev/null >"$_log" 2>&1 &
    echo $!
}
"""

DONE_RE = re.compile(rb"\n@@CTL-DONE (\S+) (-?\d+) (\d+)\n")


class ControlError(AssertionError):
    """The VM did not answer, or a script failed where it had to work."""


def qemu_args(sock_path, name="ctl"):
    """QEMU options for the channel (the port is named `name`)."""
    return ["-device", "virtio-serial-pci,id=vser0",
            "-chardev", f"socket,id=ctlchr,path={sock_path},server=on,wait=off",
            "-device", f"virtserialport,bus=vser0.0,chardev=ctlchr,name={name}"]


class VmControl:
    """Host end of the channel.  `on_error()` (optional) returns text to add
    to errors (e.g. the console tail); `alive()` (optional) says whether the
    VM still runs, so a dead VM fails fast."""

    def __init__(self, sock_path, name="vm", on_error=None, alive=None):
        self.sock_path = sock_path
        self.name = name
        self.on_error = on_error or (lambda: "")
        self.alive = alive or (lambda: True)
        self.sock = None
        self.buf = b""
        self.seq = 0
        self.lock = threading.Lock()
        self.cond = threading.Condition()
        self.reader = None
        self.closed = False
        self.requests = 0
        self.busy_s = 0.0

    def _connect(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.sock_path)
                self.sock = s
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline or not self.alive():
                    raise ControlError(f"{self.name}: cannot connect to the "
                                       f"control socket {self.sock_path}")
                time.sleep(0.05)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.closed = True
                    self.cond.notify_all()
                    return
                self.buf += data
                self.cond.notify_all()

    def _error(self, msg):
        extra = self.on_error()
        return ControlError(f"{self.name}: {msg}" + (f"\n{extra}" if extra else ""))

    def run(self, script, timeout=30):
        """Run `script` (sh) in the VM; return (rc, output text)."""
        rc, out = self.run_bytes(script, timeout)
        return rc, out.decode("utf-8", "replace")

    def run_bytes(self, script, timeout=30):
        with self.lock:
            if self.sock is None:
                self._connect(timeout)
            self.seq += 1
            rid = f"r{self.seq}"
            line = f"{rid} {base64.b64encode(script.encode()).decode()}\n"
            t0 = time.monotonic()
            try:
                self.sock.sendall(line.encode())
            except OSError as e:
                raise self._error(f"control channel broken ({e})") from None
            deadline = t0 + timeout
            with self.cond:
                while True:
                    for m in DONE_RE.finditer(self.buf):
                        if m.group(1).decode() == rid:
                            n = int(m.group(3))
                            out = self.buf[max(0, m.start() - n):m.start()]
                            self.buf = self.buf[m.end():]
                            self.requests += 1
                            self.busy_s += time.monotonic() - t0
                            return int(m.group(2)), out
                    if self.closed:
                        raise self._error(f"control channel closed while "
                                          f"running: {script[:200]!r}")
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise self._error(f"no answer within {timeout}s to "
                                          f"{script[:300]!r}")
                    if not self.alive():
                        raise self._error(f"VM exited while running "
                                          f"{script[:200]!r}")
                    self.cond.wait(min(left, 0.25))

    def sh(self, script, timeout=30):
        """Like run(), but raise unless rc == 0; return the output."""
        rc, out = self.run(script, timeout)
        if rc != 0:
            raise self._error(f"rc={rc} from {script.strip()[:400]!r}:\n"
                              f"{out[-3000:]}")
        return out

    def quit(self):
        """End ctl_serve in the VM (its init then goes on, e.g. powers off)."""
        with self.lock:
            if self.sock is not None:
                try:
                    self.sock.sendall(b"quit x\n")
                except OSError:
                    pass

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
