#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A relay restart that QEMU does not notice: redir-relay run by a real
systemd (a user manager, in a private mount namespace and a cgroup of
its own; no change to the host's running system) keeps each serial
target's pty in the service's file descriptor store. QEMU's open slave
(here the test's fd, opened once as -chardev serial,path= does) stays
valid through:

  * a crash (SIGKILL; Restart=always): what the guest wrote while no
    relay ran arrives at the port, the guest's last settings (9600, 2
    stop bits) are applied again, data flows both ways on the same fd;
  * `systemctl restart` (a package upgrade): the same;
  * a reload that removes the target: its fds leave the store;
  * `systemctl stop`: the store is released, the guest's fd hangs up
    (no pty is left behind for nobody).

Failure answered: before this, every relay restart cut the VM's COM port
for good (QEMU's serial chardev never reopens its path)."""
import errno
import os
import select
import shutil
import signal
import subprocess
import sys
import termios

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "serial"))
import relay_guest as rg  # noqa: E402
import serial_harness as sh  # noqa: E402
from serial_harness import harness  # noqa: E402
import relayharness  # noqa: E402

INNER = "--in-namespace"
SYSTEMD = "/usr/lib/systemd/systemd"
UNIT = "redir-relay-fdstore.service"


class UserManager:
    """systemd --user in this (private) mount namespace: /run is a fresh
    tmpfs with /run/systemd/system (what systemd checks to run at all),
    and the manager gets a cgroup of its own, removed at the end."""

    def __init__(self, td):
        self.td = td
        self.env = dict(os.environ, XDG_RUNTIME_DIR=td.file("xdg-run"),
                        XDG_CONFIG_HOME=td.file("xdg-config"))
        self.unit_dir = os.path.join(self.env["XDG_CONFIG_HOME"], "systemd",
                                     "user")
        os.makedirs(self.unit_dir)
        os.makedirs(self.env["XDG_RUNTIME_DIR"], mode=0o700)
        self.cgroups = []
        self.proc = None

    def _cgroup_roots(self):
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            return ["/sys/fs/cgroup"]  # unified only
        return [p for p in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd")
                if os.path.isdir(p)]

    def start(self):
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
        os.makedirs("/run/systemd/system")
        name = f"redir-fdstore-{os.getpid()}"
        for root in self._cgroup_roots():
            path = os.path.join(root, name)
            os.mkdir(path)
            self.cgroups.append((root, path))
        log = open(self.td.file("systemd.log"), "ab")

        def enter_cgroups():
            for _, path in self.cgroups:
                with open(os.path.join(path, "cgroup.procs"), "w") as f:
                    f.write("0")
        self.proc = subprocess.Popen(
            [SYSTEMD, "--user"], env=dict(self.env, SYSTEMD_LOG_TARGET="console"),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            preexec_fn=enter_cgroups)
        harness.wait_for(lambda: os.path.exists(os.path.join(
            self.env["XDG_RUNTIME_DIR"], "systemd", "private")), 30,
            "systemd --user to listen")
        return self

    def ctl(self, *args, check=True):
        r = subprocess.run(["systemctl", "--user", *args], env=self.env,
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode:
            raise AssertionError(f"systemctl {' '.join(args)}: "
                                 f"{r.stdout}{r.stderr}")
        return r.stdout.strip()

    def show(self, prop):
        return self.ctl("show", "-p", prop, "--value", UNIT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.ctl("exit", check=False)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for root, path in self.cgroups:  # deepest first; processes out
            for d, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids = f.read().split()
                for pid in pids:
                    try:
                        with open(os.path.join(root, "cgroup.procs"), "w") as f:
                            f.write(pid)
                    except OSError:
                        pass
                os.rmdir(d)


def relay_unit(relay, log_path):
    asan = relayharness.relay_env().get("ASAN_OPTIONS", "")
    return f"""[Service]
Type=notify
ExecStart={relay.path} -f -c {relay.config_path}
ExecReload=/bin/kill -HUP $MAINPID
Restart=always
RestartSec=300ms
FileDescriptorStoreMax=16
Environment=ASAN_OPTIONS={asan}
StandardOutput=append:{log_path}
StandardError=append:{log_path}
"""


def relay_config(relay, targets):
    text = (f"[relay]\nlisten = 127.0.0.1:{relay.port}\n"
            f"secret_file = {relay.secret_path}\nlog_level = debug\n")
    for name, path in targets.items():
        text += f"[target.{name}]\nkind = serial\ntty = pty\npath = {path}\n"
    return text


def wait_log(path, regex, after=0, timeout=30):
    import re

    def found():
        with open(path, errors="replace") as f:
            f.seek(after)
            return re.search(regex, f.read())
    harness.wait_for(found, timeout, f"/{regex}/ in {path}")


def restarted(sd, log, old_pid, how):
    harness.wait_for(lambda: sd.show("MainPID") not in ("0", old_pid), 30,
                     f"the relay back after {how}")
    n = sd.show("NFileDescriptorStore")
    assert n == "4", f"{n} fds in the store, want 2 per target"


def survive(sd, relay, log, guest, phys, how, kill):
    """The relay goes and comes back; the guest's fd never closes."""
    old = sd.show("MainPID")
    off = os.path.getsize(log)
    kill(old)
    os.write(guest, b"\x00while-down\xff")   # into the pty, no relay there
    restarted(sd, log, old, how)
    wait_log(log, r"serial pty \S+ \(kept across the restart", off)
    wait_log(log, r"attached to target 'com1'", off)
    rg.wait_port(phys, 9600, True, timeout=5.0)  # the guest's settings again
    assert rg.read_exact(phys.master, 12, timeout=20) == b"\x00while-down\xff"
    os.write(phys.master, b"\xffback\x00")
    assert rg.read_exact(guest, 6, timeout=20) == b"\xffback\x00"
    rg.guest_set(guest, termios.B115200, termios.CS8)
    rg.wait_port(phys, 115200, False, timeout=5.0)
    rg.guest_set(guest, termios.B9600, termios.CS8 | termios.CSTOPB)
    rg.wait_port(phys, 9600, True, timeout=5.0)
    print(f"{how}: the guest's fd went on; bytes written while no relay "
          "ran arrived; settings re-applied; data both ways")


def test(td):
    sd = UserManager(td).start()
    try:
        run(td, sd)
    finally:
        sd.stop()


def run(td, sd):
    relay = relayharness.Relay(td)
    com, spare = td.file("com1"), td.file("spare")
    with open(relay.config_path, "w") as f:
        f.write(relay_config(relay, {"com1": com, "spare": spare}))
    log = td.file("relay.log")
    open(log, "w").close()
    with open(os.path.join(sd.unit_dir, UNIT), "w") as f:
        f.write(relay_unit(relay, log))
    sd.ctl("start", UNIT)
    wait_log(log, r"listening for agents")
    assert sd.show("NFileDescriptorStore") == "4", "2 fds per serial target"

    guest = os.open(com, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    phys = sh.Pty(td.file("phys"))
    agent = sh.SerialAgent(td).start(sh.port_section(
        "com1", phys.link, connect=f"{relay.port}/com1",
        relay_secret_file=relay.secret_path, line="115200 8N1"))
    wait_log(log, r"attached to target 'com1'")
    rg.guest_set(guest, termios.B9600, termios.CS8 | termios.CSTOPB)
    rg.wait_port(phys, 9600, True, timeout=5.0)
    os.write(guest, b"\x00first\xff")
    assert rg.read_exact(phys.master, 7, timeout=20) == b"\x00first\xff"

    survive(sd, relay, log, guest, phys, "relay crash (SIGKILL)",
            lambda pid: os.kill(int(pid), signal.SIGKILL))
    survive(sd, relay, log, guest, phys, "systemctl restart",
            lambda pid: sd.ctl("restart", "--no-block", UNIT))

    # the spare target leaves the configuration: its pty leaves the store
    off = os.path.getsize(log)
    with open(relay.config_path, "w") as f:
        f.write(relay_config(relay, {"com1": com}))
    sd.ctl("reload", UNIT)
    wait_log(log, r"SIGHUP", off)
    harness.wait_for(lambda: sd.show("NFileDescriptorStore") == "2", 10,
                     "the removed target's fds to leave the store")
    assert not os.path.lexists(spare)
    print("reload without a target: its 2 fds left the store")

    # stopped for good: nothing is kept, the guest's tty hangs up
    sd.ctl("stop", UNIT)
    assert sd.show("NFileDescriptorStore") == "0"
    assert not os.path.lexists(com), "a stale link could name another pty"
    try:
        os.write(guest, b"x")
        hung_up = select.poll()
        hung_up.register(guest, select.POLLHUP)
        assert hung_up.poll(2000), "the guest's tty did not hang up"
    except OSError as e:
        assert e.errno == errno.EIO, e
    print("systemctl stop: the store is empty, the guest's tty hung up")
    os.close(guest)
    agent.stop()
    with open(log, errors="replace") as f:
        text = f.read()
    for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                "runtime error:"):
        assert bad not in text, f"relay log has '{bad}'"


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("FAIL: needs root (a cgroup for systemd --user and "
                         "a private mount namespace)")
    if INNER not in sys.argv:
        unshare = shutil.which("unshare")
        os.execv(unshare, [unshare, "--mount", "--propagation", "private",
                           sys.executable, os.path.abspath(__file__), INNER])
    harness.main(test, name="test_relay_fdstore")
