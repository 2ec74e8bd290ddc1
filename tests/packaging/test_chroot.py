# SPDX-License-Identifier: MIT
"""Installs the .debs into a throwaway Debian root and drives the SysV init scripts there.

Usage: test_chroot.py DEB_DIR CACHE_DIR

The root comes from debroot.py (debootstrap once, cached as a tarball in
CACHE_DIR). Each run unpacks a fresh copy, mounts /proc, installs the
packages with dpkg and runs
/etc/init.d/redir-agent (and redir-relay when its package is there) under
chroot. No init system runs in the root: the SysV scripts are what runs. A
policy-rc.d that allows everything lets the maintainer scripts act as on a
real machine. The daemons log to a /dev/log socket this script owns.

Checked: install (conffiles, enabled in rc2.d, not started), start (pid
file, process, status, control socket), reload (the new config in force,
same process), a bad config refused by reload and restart with its
FILE:LINE on the console (old process kept), stop (process gone, pidfile
removed), stop and status when stopped, start with a bad config failing
with its FILE:LINE, reinstall (running daemon restarted, edited conffile
kept), purge (daemon stopped, config removed), and the systemd units with
systemd-analyze verify (on this machine, when it has systemd-analyze).

Runs as root (debootstrap, chroot, mount). Standard library only.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

from debroot import Root, debs_in, fail, free_port, log, tarball_for, \
    wait_for


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------

def pidfile_pid(root, name):
    try:
        text = root.read(f"/run/{name}.pid").strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def assert_running(root, name):
    pid = wait_for(lambda: pidfile_pid(root, name), 10, f"/run/{name}.pid")
    if not os.path.exists(f"/proc/{pid}"):
        fail(f"{name}: pidfile says {pid}, which is not running")
    if root.pids(f"/usr/sbin/{name}") != [pid]:
        fail(f"{name}: processes {root.pids(f'/usr/sbin/{name}')}, pidfile "
             f"{pid}")
    rc, out = root.run(f"/etc/init.d/{name}", "status", expect=None)
    if rc != 0 or "is running" not in out:
        fail(f"{name} status: exit {rc}: {out}")
    return pid


def assert_stopped(root, name):
    if root.pids(f"/usr/sbin/{name}"):
        fail(f"{name} still runs: {root.pids(f'/usr/sbin/{name}')}")
    if os.path.exists(root.file(f"/run/{name}.pid")):
        fail(f"/run/{name}.pid left behind")
    rc, out = root.run(f"/etc/init.d/{name}", "status", expect=None)
    if rc != 3:
        fail(f"{name} status when stopped: exit {rc} (LSB: 3): {out}")


def expect_config_error(out, conf, line):
    want = f"{conf}:{line}:"
    if want not in out:
        fail(f"no '{want} ...' message on the console:\n{out}")


def check_install(root, name, conf):
    rc, out = root.run("dpkg-query", "-W", "-f=${Conffiles}", name)
    for f in (conf, f"/etc/init.d/{name}"):
        if f not in out:
            fail(f"{name}: {f} is not a conffile:\n{out}")
    if not glob.glob(root.file(f"/etc/rc2.d/S*{name}")):
        fail(f"{name}: not enabled in /etc/rc2.d")
    if not glob.glob(root.file(f"/etc/rc0.d/K*{name}")):
        fail(f"{name}: no stop link in /etc/rc0.d")
    if root.pids(f"/usr/sbin/{name}") or os.path.exists(
            root.file(f"/run/{name}.pid")):
        fail(f"{name}: started by the first install")
    for page in {"redir-agent": ["man8/redir-agent.8.gz",
                                 "man5/redir-agent.ini.5.gz"],
                 "redir-relay": ["man8/redir-relay.8.gz"]}[name]:
        if not os.path.exists(root.file(f"/usr/share/man/{page}")):
            fail(f"{name}: no /usr/share/man/{page}")


def lifecycle(root, name, conf, good, reloaded, reload_log, bad, bad_line):
    """start/reload/restart/stop of one daemon; returns nothing, raises."""
    init = f"/etc/init.d/{name}"
    root.write(conf, good)

    log(f"{name}: start")
    mark = root.syslog.mark()
    t0 = time.monotonic()
    rc, out = root.run(init, "start")
    log(f"{name}: started in {time.monotonic() - t0:.2f}s: {out.strip()}")
    pid = assert_running(root, name)
    root.syslog.wait(rf"{name}\[{pid}\]", mark)
    rc, out = root.run(init, "start")
    if "already running" not in out or pidfile_pid(root, name) != pid:
        fail(f"second start: {out}")

    log(f"{name}: reload")
    root.write(conf, reloaded)
    mark = root.syslog.mark()
    root.run(init, "reload")
    root.syslog.wait(reload_log, mark)
    if assert_running(root, name) != pid:
        fail("reload replaced the process")
    mark = root.syslog.mark()
    root.run(init, "force-reload")
    root.syslog.wait(reload_log, mark)

    log(f"{name}: bad config: reload and restart refuse it, daemon stays")
    root.write(conf, bad)
    rc, out = root.run(init, "reload", expect=1)
    expect_config_error(out, conf, bad_line)
    rc, out = root.run(init, "restart", expect=1)
    expect_config_error(out, conf, bad_line)
    if assert_running(root, name) != pid:
        fail("a refused reload/restart replaced the process")

    log(f"{name}: restart")
    root.write(conf, reloaded)
    root.run(init, "restart")
    new_pid = assert_running(root, name)
    if new_pid == pid:
        fail("restart kept the old process")

    log(f"{name}: stop")
    t0 = time.monotonic()
    rc, out = root.run(init, "stop")
    log(f"{name}: stopped in {time.monotonic() - t0:.2f}s: {out.strip()}")
    assert_stopped(root, name)
    rc, out = root.run(init, "stop")
    if "not running" not in out:
        fail(f"stop when stopped: {out}")
    rc, out = root.run(init, "reload", expect=7)

    log(f"{name}: start with a bad config fails with FILE:LINE")
    root.write(conf, bad)
    rc, out = root.run(init, "start", expect=1)
    expect_config_error(out, conf, bad_line)
    log(f"{name}: console said: {out.strip()}")
    assert_stopped(root, name)
    root.write(conf, reloaded)


def check_start_failure(root):
    """A daemon that dies after forking (here: its control socket cannot be
    created) fails the start at once, not after the start timeout."""
    log("redir-agent: start fails when the daemon dies after forking")
    root.write(AGENT_CONF, "[agent]\ncontrol_socket = /nonexistent/x.sock\n")
    t0 = time.monotonic()
    rc, out = root.run("/etc/init.d/redir-agent", "start", expect=1)
    took = time.monotonic() - t0
    if "did not start" not in out or took > 5:
        fail(f"start took {took:.1f}s: {out}")
    log(f"redir-agent: failed in {took:.2f}s: {out.strip()}")
    assert_stopped(root, "redir-agent")


def check_reinstall_and_purge(root, name, conf, debs):
    log(f"{name}: reinstall while running restarts it, keeps the edited config")
    root.run(f"/etc/init.d/{name}", "start")
    pid = assert_running(root, name)
    edited = root.read(conf) + "; edited by the admin\n"
    root.write(conf, edited)
    root.run("dpkg", "-i", *debs)
    new_pid = assert_running(root, name)
    if new_pid == pid:
        fail("the upgrade did not restart the running daemon")
    if root.read(conf) != edited:
        fail(f"the upgrade changed {conf}")
    log(f"{name}: purge stops it and removes the config")
    root.run("dpkg", "--purge", name)
    if root.pids(f"/usr/sbin/{name}"):
        fail("purge left the daemon running")
    for f in (conf, f"/run/{name}.pid", f"/etc/init.d/{name}"):
        if os.path.exists(root.file(f)):
            fail(f"purge left {f}")


def check_units(root, names):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        log("SKIP systemd-analyze verify: no systemd-analyze here")
        return
    with tempfile.TemporaryDirectory() as tmp:
        units = []
        for name in names:
            text = root.read(f"/lib/systemd/system/{name}.service")
            # The unit's programs, found in the root.
            text = text.replace("/usr/sbin/", root.file("/usr/sbin") + "/")
            unit = os.path.join(tmp, f"{name}.service")
            with open(unit, "w") as f:
                f.write(text)
            units.append(unit)
        r = subprocess.run([analyze, "verify", "--man=no", *units],
                           capture_output=True, text=True)
        if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
            fail(f"systemd-analyze verify: exit {r.returncode}:\n"
                 f"{r.stdout}{r.stderr}")
        log(f"systemd-analyze verify: {', '.join(names)} OK")


AGENT_CONF = "/etc/redir-agent.ini"
AGENT_GOOD = """[agent]
log_level = info

[usb]
connect = 127.0.0.1:{port}
"""
AGENT_RELOADED = """[agent]
log_level = debug

[usb]
connect = 127.0.0.1:{port}
rule = deny vid=1234
rule = allow class=08 access=ro
"""
AGENT_BAD = """[agent]
log_level = info

[usb]
connect = 127.0.0.1:{port}
rule = allow sideways
"""

RELAY_CONF = "/etc/redir-relay.ini"
RELAY_GOOD = """[relay]
listen = 127.0.0.1:{port}
secret_file = /etc/redir-relay.secret

[target.vm1-usb0]
qemu = 127.0.0.1:{qport}
"""
RELAY_RELOADED = RELAY_GOOD + """
[target.vm1-usb1]
qemu = 127.0.0.1:{qport2}
"""
RELAY_BAD = """[relay]
listen = 127.0.0.1:{port}
secret_file = /etc/redir-relay.secret
max_sessions = many
"""


def main():
    deb_dir, cache = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        log("FAIL: needs root (debootstrap, chroot, mount)")
        sys.exit(1)
    debs, names = debs_in(deb_dir)
    if "redir-agent" not in names:
        fail(f"no redir-agent .deb in {deb_dir}")
    tarball = tarball_for(deb_dir, cache)

    t0 = time.monotonic()
    root = Root(tarball, cache, "sysv")
    ok = False
    try:
        log(f"fresh root unpacked in {time.monotonic() - t0:.1f}s")
        os.makedirs(root.file("/tmp/debs"), exist_ok=True)
        for d in debs:
            shutil.copy(d, root.file("/tmp/debs"))
        in_root = [f"/tmp/debs/{os.path.basename(d)}" for d in debs]
        root.run("dpkg", "-i", *in_root)
        for name in names:
            conf = {"redir-agent": AGENT_CONF, "redir-relay": RELAY_CONF}[name]
            check_install(root, name, conf)
        check_units(root, names)

        port = free_port()
        agent_fmt = {"port": port}
        lifecycle(root, "redir-agent", AGENT_CONF,
                  AGENT_GOOD.format(**agent_fmt),
                  AGENT_RELOADED.format(**agent_fmt),
                  r"SIGHUP: configuration reloaded from /etc/redir-agent\.ini "
                  r"\(2 rules\)",
                  AGENT_BAD.format(**agent_fmt), 6)
        check_start_failure(root)
        root.write(AGENT_CONF, AGENT_GOOD.format(**agent_fmt))

        if "redir-relay" in names:
            rc, help_text = root.run("redir-relay", "--help")
            secret = root.file("/etc/redir-relay.secret")
            if os.stat(secret).st_mode & 0o077:
                fail("/etc/redir-relay.secret is readable by others")
            if "--pidfile" not in help_text:
                log("SKIP redir-relay init script: this redir-relay has no "
                    "--pidfile yet")
            else:
                relay_fmt = {"port": free_port(), "qport": free_port(),
                             "qport2": free_port()}
                lifecycle(root, "redir-relay", RELAY_CONF,
                          RELAY_GOOD.format(**relay_fmt),
                          RELAY_RELOADED.format(**relay_fmt),
                          r"SIGHUP: configuration reloaded from "
                          r"/etc/redir-relay\.ini \(2 targets",
                          RELAY_BAD.format(**relay_fmt), 4)
                check_reinstall_and_purge(root, "redir-relay", RELAY_CONF,
                                          in_root)
                if os.path.exists(secret):
                    fail("purge left /etc/redir-relay.secret")

        check_reinstall_and_purge(root, "redir-agent", AGENT_CONF, in_root)
        ok = True
    finally:
        if not ok:
            log("daemon log:\n" + root.syslog.text())
        root.cleanup()
    log(f"OK ({time.monotonic() - t0:.1f}s in the root)")


if __name__ == "__main__":
    main()
