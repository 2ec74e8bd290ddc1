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

Checked: install (conffiles, enabled in rc2.d, not started; the system
users redir-agent and redir-relay, the agent in groups dialout and lp, its
udev rule; the relay's generated secret the relay user's, mode 600), start
(pidfile in /run/NAME/, a directory of the daemon's user; the process runs
as that user with no effective, permitted or ambient capability; status,
control socket), reload (the new config in force, same process), a bad
config refused by reload and restart with its FILE:LINE on the console (old
process kept), stop (process gone, pidfile removed), stop and status when
stopped, start with a bad config failing with its FILE:LINE, a relay
secret that is group readable or root's refused at start with the clear
message; the pidfile symlink attack (a symbolic link to /etc/shadow
planted at the pidfile path: the daemon, run as root and as its user,
refuses it and /etc/shadow is untouched); the upgrade from the version
that ran the daemons as root (pidfile /run/NAME.pid, the relay's secret
root's: dpkg -i stops that daemon, makes the user, hands it the secret and
starts the daemon as that user); reinstall (running daemon restarted,
edited conffile kept), purge (daemon stopped, config removed), and the
systemd units with systemd-analyze verify (on this machine, when it has
systemd-analyze).

Runs as root (debootstrap, chroot, mount). Standard library only.
"""

import glob
import hashlib
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

def pidfile(name):
    return f"/run/{name}/{name}.pid"


def pidfile_pid(root, name, path=None):
    try:
        text = root.read(path or pidfile(name)).strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def proc_status(pid):
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    return status


def alive(pid):
    """pid runs (a daemon that exited may stay a zombie: nothing here reaps
    what was reparented to the host's init)."""
    try:
        return not proc_status(pid)["State"].startswith("Z")
    except FileNotFoundError:
        return False


def user_ids(root, name):
    """(uid, gid) of a user of the root."""
    fields = root.run("getent", "passwd", name)[1].strip().split(":")
    return int(fields[2]), int(fields[3])


def assert_user(root, name, pid):
    """pid runs as the system user `name`, without effective, permitted or
    ambient capabilities (SysV: start-stop-daemon --chuid)."""
    uid, gid = user_ids(root, name)
    st = proc_status(pid)
    if st["Uid"].split() != [str(uid)] * 4 or st["Gid"].split() != [str(gid)] * 4:
        fail(f"{name}: Uid {st['Uid']}, Gid {st['Gid']}; expected {uid}:{gid}")
    for k in ("CapEff", "CapPrm", "CapAmb"):
        if int(st[k], 16):
            fail(f"{name}: {k} {st[k]}")
    return st


def assert_running(root, name):
    pid = wait_for(lambda: pidfile_pid(root, name), 10, pidfile(name))
    if not os.path.exists(f"/proc/{pid}"):
        fail(f"{name}: pidfile says {pid}, which is not running")
    assert_user(root, name, pid)
    rundir = os.stat(root.file(f"/run/{name}"))
    if (rundir.st_uid, rundir.st_gid) != user_ids(root, name):
        fail(f"/run/{name} is {rundir.st_uid}:{rundir.st_gid}, not {name}'s")
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
    if os.path.exists(root.file(pidfile(name))):
        fail(f"{pidfile(name)} left behind")
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
            root.file(pidfile(name))):
        fail(f"{name}: started by the first install")
    rc, out = root.run("getent", "passwd", name)
    fields = out.strip().split(":")
    if int(fields[2]) >= 1000 or fields[6] != "/usr/sbin/nologin":
        fail(f"{name}: not a system user without a shell: {out}")
    if name == "redir-agent":
        groups = root.run("id", "-nG", name)[1].split()
        if not {"redir-agent", "dialout", "lp"} <= set(groups):
            fail(f"redir-agent's groups: {groups}")
        rule = root.read("/lib/udev/rules.d/60-redir-agent.rules")
        if 'GROUP="redir-agent"' not in rule:
            fail(f"60-redir-agent.rules: {rule}")
    if name == "redir-relay":
        st = os.stat(root.file("/etc/redir-relay.secret"))
        if ((st.st_uid, st.st_gid) != user_ids(root, name) or
                st.st_mode & 0o777 != 0o600):
            fail(f"/etc/redir-relay.secret: {st.st_uid}:{st.st_gid} "
                 f"{st.st_mode & 0o777:o}, expected redir-relay's, 600")
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
    st = proc_status(pid)
    log(f"{name}: runs as uid {st['Uid'].split()[0]}, groups {st['Groups']}, "
        f"CapEff {st['CapEff']} CapPrm {st['CapPrm']} CapBnd {st['CapBnd']}")
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


def check_secret_refused(root):
    """The relay's secret group readable, or root's (mode 600: the relay,
    no longer root, cannot open it): start fails with the reason on the
    console."""
    secret = "/etc/redir-relay.secret"
    init = "/etc/init.d/redir-relay"
    log("redir-relay: a group-readable secret is refused at start")
    root.run("chmod", "640", secret)
    rc, out = root.run(init, "start", expect=1)
    if f"{secret}: readable or writable by others (mode 0640)" not in out:
        fail(f"no clear refusal of a mode 640 secret:\n{out}")
    root.run("chmod", "600", secret)
    log("redir-relay: a secret owned by root is refused at start")
    root.run("chown", "root:root", secret)
    rc, out = root.run(init, "start", expect=1)
    if f"{secret}: cannot open: Permission denied" not in out:
        fail(f"no clear refusal of a root-owned secret:\n{out}")
    root.run("chown", "redir-relay:redir-relay", secret)
    assert_stopped(root, "redir-relay")


def check_pidfile_attack(root, name, conf):
    """The pidfile symlink attack: whoever can write the pidfile's
    directory plants a symbolic link to /etc/shadow at the pidfile path,
    hoping the daemon, started as root, truncates and overwrites the
    target. The daemon opens its pidfile with O_NOFOLLOW: it refuses the
    link with a clear error and exits; /etc/shadow keeps its content.
    Tried as root (the dangerous case: a hand-started daemon) and as the
    service user (the init script's way)."""
    path = pidfile(name)
    shadow = root.file("/etc/shadow")
    with open(shadow, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    root.run("install", "-d", "-o", name, "-g", name, f"/run/{name}")
    os.symlink("/etc/shadow", root.file(path))
    as_user = ["start-stop-daemon", "--start", "--pidfile", "/dev/null",
               "--chuid", name, "--exec", f"/usr/sbin/{name}", "--"]
    # Root reads a secret of its own (the relay's is redir-relay's).
    root_conf = "/root/attack.ini"
    root.write(root_conf, root.read(conf).replace(
        "/etc/redir-relay.secret", "/root/attack.secret"))
    root.run("install", "-m", "600", "/etc/redir-relay.secret",
             "/root/attack.secret", expect=None)
    for who, prefix, cfg in (("root", [f"/usr/sbin/{name}"], root_conf),
                             (name, as_user, conf)):
        rc, out = root.run(*prefix, "-f", "-c", cfg, "--pidfile", path,
                           expect=1, timeout=30)
        if f"pidfile {path}: is a symbolic link; refused, not followed" \
                not in out:
            fail(f"{name} as {who}: no refusal of the planted link:\n{out}")
        with open(shadow, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != before:
                fail(f"{name} as {who} wrote through the link to /etc/shadow")
        if os.readlink(root.file(path)) != "/etc/shadow":
            fail(f"{name} as {who} replaced the planted link")
        log(f"{name}: pidfile symlink to /etc/shadow refused as {who}, "
            "/etc/shadow untouched")
    os.unlink(root.file(path))
    assert_stopped(root, name)


def check_upgrade_from_root(root, name, conf, debs):
    """The previous version ran the daemon as root, pidfile /run/NAME.pid,
    and its relay secret was root's: installing this one over it stops that
    daemon, makes the user, gives it the secret and starts the daemon as
    the user."""
    log(f"{name}: upgrade from the version that ran it as root")
    root.run(f"/etc/init.d/{name}", "stop")
    root.run("deluser", "--quiet", "--system", name)
    root.run("delgroup", "--quiet", "--system", name, expect=None)
    if root.run("getent", "passwd", name, expect=None)[0] == 0:
        fail(f"deluser left {name}")
    secret = "/etc/redir-relay.secret"
    if name == "redir-relay":
        root.run("chown", "root:root", secret)
    old_pidfile = f"/run/{name}.pid"
    root.run(f"/usr/sbin/{name}", "-c", conf, "--pidfile", old_pidfile)
    old = wait_for(lambda: pidfile_pid(root, name, old_pidfile), 10,
                   old_pidfile)
    if proc_status(old)["Uid"].split()[0] != "0":
        fail(f"the old-style {name} does not run as root")
    root.run("dpkg", "-i", *debs)
    if alive(old) or os.path.exists(root.file(old_pidfile)):
        fail(f"the upgrade left the root-run {name} ({old}) or its pidfile")
    new = assert_running(root, name)
    if name == "redir-relay":
        st = os.stat(root.file(secret))
        if (st.st_uid, st.st_gid) != user_ids(root, name):
            fail(f"{secret} still {st.st_uid}:{st.st_gid} after the upgrade")
    log(f"{name}: root-run pid {old} replaced by pid {new} as {name}")
    root.run(f"/etc/init.d/{name}", "stop")


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
    for f in (conf, pidfile(name), f"/etc/init.d/{name}"):
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
        check_pidfile_attack(root, "redir-agent", AGENT_CONF)

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
                check_secret_refused(root)
                check_pidfile_attack(root, "redir-relay", RELAY_CONF)
                check_upgrade_from_root(root, "redir-relay", RELAY_CONF,
                                        in_root)
                check_reinstall_and_purge(root, "redir-relay", RELAY_CONF,
                                          in_root)
                if os.path.exists(secret):
                    fail("purge left /etc/redir-relay.secret")

        check_upgrade_from_root(root, "redir-agent", AGENT_CONF, in_root)
        check_reinstall_and_purge(root, "redir-agent", AGENT_CONF, in_root)
        ok = True
    finally:
        if not ok:
            log("daemon log:\n" + root.syslog.text())
        root.cleanup()
    log(f"OK ({time.monotonic() - t0:.1f}s in the root)")


if __name__ == "__main__":
    main()
