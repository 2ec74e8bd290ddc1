# SPDX-License-Identifier: MIT
"""Boots the throwaway Debian root with systemd-nspawn and checks the packaged systemd units under a real systemd.

Usage: test_systemd.py DEB_DIR CACHE_DIR

The root comes from debroot.py (debootstrap minbase + systemd, cached in
CACHE_DIR). The .debs are installed with dpkg, test configs written, then
the root boots with systemd as PID 1 (systemd-nspawn -b, private network,
not registered with a host systemd). Commands run inside with nsenter.

Checked for redir-agent and redir-relay: enabled and started at boot
(Type=notify: "active" only after READY=1); least privilege and the sandbox
are in force (the main process runs as its system user, redir-agent or
redir-relay, with the agent in groups dialout and lp; every capability set
empty, bounding set included; no_new_privs, seccomp); the agent's control
socket, /run/redir-agent/control.sock (RuntimeDirectory=), answers
"redir-agent status"; "systemctl reload" puts the new config in force in
the same process; a bad config makes "systemctl reload" fail with its
FILE:LINE in the journal while the daemon keeps running; restart gives a
new process; stop ends it cleanly, and the runtime directory goes.

Secrets (check_secrets): the relay reads its secret as a credential
(LoadCredential=secret:/etc/redir-relay.secret, the file on disk root's,
mode 600) through /run/credentials/redir-relay.service/secret; the agent
reads its relay secret from /etc/credstore/redir-agent.relay-secret the
same way (and starts at boot without it: a missing credstore credential is
no error); the relay refuses a secret file of its own that is group
readable (mode 640), and one that is root's (mode 600) when read
directly, with the clear message in the journal, and the service fails. The owner and mode
systemd gives the credential files are printed.

Prints systemd-analyze security's exposure level of each unit.

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

# Every capability set of the main process: empty (CapabilityBoundingSet=
# empty, no AmbientCapabilities=, a non-root user).
CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
# Supplementary groups each service must have (SupplementaryGroups=).
EXTRA_GROUPS = {"redir-agent": ("dialout", "lp"), "redir-relay": ()}

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

    def proc_status(self, pid):
        status = {}
        for line in self.run("cat", f"/proc/{pid}/status")[1].splitlines():
            k, _, v = line.partition(":")
            status[k] = v.strip()
        return status

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
    check_privileges(c, name, pid)
    if name == "redir-agent":
        out = c.run("redir-agent", "status")[1]
        if f"pid {pid}" not in out:
            fail(f"redir-agent status: {out}")
        sock = c.run("stat", "-c", "%U:%G %a",
                     "/run/redir-agent/control.sock")[1].strip()
        if sock != "redir-agent:redir-agent 660":
            fail(f"/run/redir-agent/control.sock: {sock}")

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
    if c.run("test", "-e", f"/run/{name}", expect=None)[0] == 0:
        fail(f"/run/{name} left behind after stop")
    out = c.run("systemd-analyze", "security", unit, "--no-pager",
                expect=None)[1]
    m = re.search(r"Overall exposure level for \S+: (\S+ \S+)", out)
    log(f"{unit}: systemd-analyze security: {m.group(1) if m else out}")


def user_ids(c, name):
    """(uid, gid) of a user in the container."""
    fields = c.run("getent", "passwd", name)[1].strip().split(":")
    return int(fields[2]), int(fields[3])


def group_id(c, name):
    return int(c.run("getent", "group", name)[1].strip().split(":")[2])


def check_privileges(c, name, pid):
    """The main process: the service's own user and groups, no capability
    in any set, no_new_privs, a seccomp filter."""
    uid, gid = user_ids(c, name)
    status = c.proc_status(pid)
    uids = status["Uid"].split()
    gids = status["Gid"].split()
    if uids != [str(uid)] * 4 or gids != [str(gid)] * 4:
        fail(f"{name}: Uid {status['Uid']}, Gid {status['Gid']}; expected "
             f"{name} ({uid}:{gid})")
    groups = {int(g) for g in status["Groups"].split()}
    want = {group_id(c, g) for g in EXTRA_GROUPS[name]}
    if not want <= groups:
        fail(f"{name}: Groups {status['Groups']}, missing {want - groups}")
    caps = {k: int(status[k], 16) for k in CAP_SETS}
    if any(caps.values()):
        fail(f"{name}: capabilities {caps}")
    if status["NoNewPrivs"] != "1" or status["Seccomp"] != "2":
        fail(f"{name}: NoNewPrivs {status['NoNewPrivs']}, Seccomp "
             f"{status['Seccomp']}")
    log(f"{name}: uid {uid} ({name}), groups {status['Groups']}, "
        + ", ".join(f"{k} {status[k]}" for k in CAP_SETS))


def start_expect(c, unit, active, regex=None):
    """systemctl restart; the unit must end up active (True) or its start
    fail (False: the main process exits 1 with regex in the journal of this
    start)."""
    mark = len(c.journal(unit))
    rc, out = c.run("systemctl", "restart", unit, expect=None)
    state = c.show(unit, "ActiveState")
    if active and (rc != 0 or state != "active"):
        fail(f"{unit}: restart: exit {rc}, {state}:\n{out}\n"
             f"{c.journal(unit)[mark:]}")
    if not active:
        # Failed, or waiting to try again (Restart=on-failure).
        result = c.show(unit, "Result")
        if rc == 0 or state not in ("failed", "activating") or \
                result != "exit-code":
            fail(f"{unit}: exit {rc}, {state}, Result={result}; expected "
                 "a failed start")
        c.wait_journal(unit, regex, mark)
        c.run("systemctl", "stop", unit)
        c.run("systemctl", "reset-failed", unit, expect=None)
    return c.journal(unit)[mark:]


def check_secrets(c, names):
    """Credentials accepted, unsafe secret files refused."""
    if "redir-relay" not in names:
        return
    relay, agent = "redir-relay.service", "redir-agent.service"
    secret = "/etc/redir-relay.secret"
    conf = c.root.file("/etc/redir-relay.ini")
    own = c.run("stat", "-c", "%U:%G %a", secret)[1].strip()
    if own != "redir-relay:redir-relay 600":
        fail(f"{secret} after install: {own}, expected redir-relay's, 600")

    log("relay: a group-readable secret file is refused, the service fails")
    c.run("chmod", "640", secret)
    out = start_expect(c, relay, False,
                       re.escape(f"{secret}: readable or writable by others "
                                 "(mode 0640)"))
    log(f"relay: refused: {out.strip().splitlines()[-3:]}")
    c.run("chmod", "600", secret)

    log("relay: the secret as a credential, the file on disk root's")
    c.run("chown", "root:root", secret)
    start_expect(c, relay, False,
                 re.escape(f"{secret}: cannot open: Permission denied"))
    with open(conf, "w") as f:
        f.write(RELAY_CONF.replace(
            f"secret_file = {secret}",
            "secret_file = /run/credentials/redir-relay.service/secret"))
    start_expect(c, relay, True)
    cred = c.run("ls", "-ln", "/run/credentials/redir-relay.service/")[1]
    mounts = c.run("findmnt", "-n", "-o", "FSTYPE,OPTIONS",
                   "/run/credentials/redir-relay.service", expect=None)[1]
    log(f"relay: accepted; systemd's copy: {cred.strip().splitlines()[-1]}"
        f" on {mounts.strip()}")
    check_privileges(c, "redir-relay", int(c.show(relay, "MainPID")))

    log("agent: its relay secret from /etc/credstore as a credential")
    c.run("mkdir", "-m", "700", "-p", "/etc/credstore")
    c.run("cp", secret, "/etc/credstore/redir-agent.relay-secret")
    with open(c.root.file("/etc/redir-agent.ini"), "w") as f:
        f.write(AGENT_CONF.replace(
            "connect = 127.0.0.1:4000",
            "connect = 127.0.0.1:7300/vm1-usb0\nrelay_secret_file = "
            "/run/credentials/redir-agent.service/relay-secret"))
    start_expect(c, agent, True)
    cred = c.run("ls", "-ln", "/run/credentials/redir-agent.service/")[1]
    log(f"agent: accepted; systemd's copies:\n{cred.strip()}")
    check_privileges(c, "redir-agent", int(c.show(agent, "MainPID")))
    for unit in (agent, relay):
        c.run("systemctl", "stop", unit)


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
        check_secrets(container, names)
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
