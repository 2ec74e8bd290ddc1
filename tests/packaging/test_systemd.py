# SPDX-License-Identifier: MIT
"""Boots the throwaway Debian root with systemd-nspawn and checks the packaged systemd units under a real systemd.

Usage: test_systemd.py DEB_DIR CACHE_DIR

The root comes from debroot.py (debootstrap minbase + systemd, cached in
CACHE_DIR). The .debs are installed with dpkg, test configs written, then
the root boots with systemd as PID 1 (systemd-nspawn -b, private network,
not registered with a host systemd). Commands run inside with nsenter.

Checked for redir-agent and redir-relay: enabled and started at boot
(Type=notify: "active" only after READY=1); the sandbox is in force (the
main process's capability bounding set, no_new_privs, seccomp); the agent's
control socket answers (a writable /run under ProtectSystem=strict);
"systemctl reload" puts the new config in force in the same process; a bad
config makes "systemctl reload" fail with its FILE:LINE in the journal
while the daemon keeps running; restart gives a new process; stop ends it
cleanly. Prints systemd-analyze security's exposure level of each unit.

Fails (never skips) when not root or without systemd-nspawn (package
systemd-container, installed by packaging/install-cross-deps.sh).
"""

import os
import re
import shutil
import subprocess
import sys
import time

from debroot import Root, debs_in, fail, log, tarball_for, wait_for

# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_NET_BIND_SERVICE
EXPECTED_CAPS = (1 << 1) | (1 << 2) | (1 << 10)

AGENT_CONF = """[agent]
log_level = info

[usb]
connect = 127.0.0.1:4000
"""
RELAY_CONF = """[relay]
listen = 127.0.0.1:7300
secret_file = /etc/redir-relay.secret

[target.vm1-usb0]
qemu = 127.0.0.1:4000
"""
CHECKS = {
    # name: (config, reloaded config, its log line, bad config, bad line)
    "redir-agent": (
        AGENT_CONF, AGENT_CONF + "rule = deny vid=1234\n",
        r"SIGHUP: configuration reloaded from /etc/redir-agent\.ini "
        r"\(1 rules\)",
        AGENT_CONF + "rule = allow sideways\n", 6),
    "redir-relay": (
        RELAY_CONF, RELAY_CONF + "\n[target.vm1-usb1]\nqemu = 127.0.0.1:4001\n",
        r"SIGHUP: configuration reloaded from /etc/redir-relay\.ini "
        r"\(2 targets",
        RELAY_CONF.replace("[target.", "max_sessions = many\n[target."), 5),
}


class Container:
    def __init__(self, root):
        self.root = root
        self.log_path = root.path + ".console"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
             "--private-network", "--boot", "--console=pipe",
             f"--machine=redir-pkg-{os.getpid()}", "-D", self.root.path],
            stdin=subprocess.DEVNULL, stdout=open(self.log_path, "w"),
            stderr=subprocess.STDOUT)
        self.pid1 = None
        self.pid1 = wait_for(self._find_pid1, 30, "the container's systemd")

    def _find_pid1(self):
        if self.proc.poll() is not None:
            fail(f"systemd-nspawn exited ({self.proc.returncode}):\n"
                 f"{open(self.log_path).read()}")
        # The container's PID 1: a "systemd" descended from our nspawn.
        for p in os.listdir("/proc"):
            try:
                if (p.isdigit() and
                        open(f"/proc/{p}/comm").read().strip() == "systemd" and
                        self._descends(int(p))):
                    return int(p)
            except OSError:
                pass
        return None

    def _descends(self, pid):
        while pid > 1:
            with open(f"/proc/{pid}/status") as f:
                pid = int(re.search(r"^PPid:\s*(\d+)", f.read(), re.M).group(1))
            if pid == self.proc.pid:
                return True
        return False

    def run(self, *cmd, expect=0):
        r = subprocess.run(["nsenter", "-t", str(self.pid1), "-m", "-u", "-i",
                            "-n", "-p", "--", *cmd],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=60)
        if expect is not None and r.returncode != expect:
            fail(f"{' '.join(cmd)}: exit {r.returncode}, expected {expect}:"
                 f"\n{r.stdout}")
        return r.returncode, r.stdout

    def show(self, unit, prop):
        return self.run("systemctl", "show", unit, "-p", prop,
                        "--value")[1].strip()

    def journal(self, unit):
        return self.run("journalctl", "-u", unit, "--no-pager", "-o", "cat")[1]

    def wait_journal(self, unit, regex, since_len):
        return wait_for(lambda: re.search(regex, self.journal(unit)[since_len:]),
                        10, f"/{regex}/ in {unit}'s journal")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.pid1:
            self.run("systemctl", "poweroff", "--no-block", expect=None)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            # SIGKILL to the container's PID 1 ends everything in it.
            for pid in (self.pid1, self.proc.pid):
                try:
                    if pid:
                        os.kill(pid, 9)
                except OSError:
                    pass
            self.proc.wait(10)


def check_unit(c, name):
    unit = f"{name}.service"
    conf = f"/etc/{name}.ini"
    good, reloaded, reload_log, bad, bad_line = CHECKS[name]

    state = wait_for(lambda: c.show(unit, "ActiveState") in ("active",
                                                             "failed")
                     and c.show(unit, "ActiveState"), 30, f"{unit} started")
    if state != "active":
        fail(f"{unit} is {state}:\n{c.journal(unit)}")
    pid = int(c.show(unit, "MainPID"))
    log(f"{unit}: active at boot, main pid {pid}")
    status = {}
    for line in c.run("cat", f"/proc/{pid}/status")[1].splitlines():
        k, _, v = line.partition(":")
        status[k] = v.strip()
    if int(status["CapBnd"], 16) != EXPECTED_CAPS:
        fail(f"{unit}: CapBnd {status['CapBnd']}")
    if status["NoNewPrivs"] != "1" or status["Seccomp"] != "2":
        fail(f"{unit}: NoNewPrivs {status['NoNewPrivs']}, Seccomp "
             f"{status['Seccomp']}")
    if name == "redir-agent":
        out = c.run("redir-agent", "status")[1]
        if f"pid {pid}" not in out:
            fail(f"redir-agent status: {out}")

    log(f"{unit}: reload")
    with open(c.root.file(conf), "w") as f:
        f.write(reloaded)
    mark = len(c.journal(unit))
    c.run("systemctl", "reload", unit)
    c.wait_journal(unit, reload_log, mark)
    if int(c.show(unit, "MainPID")) != pid:
        fail(f"{unit}: reload replaced the process")

    log(f"{unit}: reload with a bad config fails, the daemon stays")
    with open(c.root.file(conf), "w") as f:
        f.write(bad)
    mark = len(c.journal(unit))
    c.run("systemctl", "reload", unit, expect=1)
    c.wait_journal(unit, re.escape(f"{conf}:{bad_line}:"), mark)
    if (c.show(unit, "ActiveState") != "active" or
            int(c.show(unit, "MainPID")) != pid):
        fail(f"{unit}: a refused reload disturbed the daemon")

    log(f"{unit}: restart, stop")
    with open(c.root.file(conf), "w") as f:
        f.write(reloaded)
    c.run("systemctl", "restart", unit)
    new_pid = int(c.show(unit, "MainPID"))
    if new_pid in (0, pid) or c.show(unit, "ActiveState") != "active":
        fail(f"{unit}: restart: main pid {new_pid}")
    mark = len(c.journal(unit))
    c.run("systemctl", "stop", unit)
    if c.show(unit, "ActiveState") != "inactive":
        fail(f"{unit}: {c.show(unit, 'ActiveState')} after stop")
    stopped = c.journal(unit)[mark:]
    if "exited cleanly" not in stopped and "stopped" not in stopped:
        fail(f"{unit}: no clean exit in the journal:\n{stopped}")
    if c.show(unit, "Result") != "success":
        fail(f"{unit}: Result={c.show(unit, 'Result')}")
    out = c.run("systemd-analyze", "security", unit, "--no-pager",
                expect=None)[1]
    m = re.search(r"Overall exposure level for \S+: (\S+ \S+)", out)
    log(f"{unit}: systemd-analyze security: {m.group(1) if m else out}")


def main():
    deb_dir, cache = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        log("FAIL: needs root (debootstrap, systemd-nspawn)")
        sys.exit(1)
    if not shutil.which("systemd-nspawn") or not shutil.which("nsenter"):
        log("FAIL: no systemd-nspawn: run scripts/install-deps.sh "
            "(package systemd-container)")
        sys.exit(1)
    debs, names = debs_in(deb_dir)
    tarball = tarball_for(deb_dir, cache)
    t0 = time.monotonic()
    root = Root(tarball, cache, "systemd", chroot=False)
    container = None
    ok = False
    try:
        os.makedirs(root.file("/tmp/debs"), exist_ok=True)
        for d in debs:
            shutil.copy(d, root.file("/tmp/debs"))
        r = subprocess.run(["chroot", root.path, "dpkg", "-i",
                            *[f"/tmp/debs/{os.path.basename(d)}"
                              for d in debs]],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode != 0:
            fail(f"dpkg -i: exit {r.returncode}:\n{r.stdout}")
        for name in names:
            with open(root.file(f"/etc/{name}.ini"), "w") as f:
                f.write(CHECKS[name][0])
        container = Container(root)
        container.start()
        # Until systemd has its private socket, systemctl cannot talk to it.
        wait_for(lambda: container.run("test", "-S", "/run/systemd/private",
                                       expect=None)[0] == 0,
                 30, "systemd's control socket in the container")
        rc, state = container.run("systemctl", "is-system-running", "--wait",
                                  expect=None)
        log(f"booted in {time.monotonic() - t0:.1f}s: {state.strip()}")
        for name in names:
            check_unit(container, name)
        ok = True
    finally:
        if container and container.proc:
            if not ok and container.pid1:
                for name in names:
                    log(f"{name} journal:\n" +
                        container.journal(f"{name}.service"))
            container.stop()
            if ok and os.path.exists(container.log_path):
                os.unlink(container.log_path)
        root.cleanup()
    log(f"OK ({time.monotonic() - t0:.1f}s)")


if __name__ == "__main__":
    main()
