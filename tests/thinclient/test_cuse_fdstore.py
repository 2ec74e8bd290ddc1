#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig: a CUSE serial target kept in systemd's fd store, so
that a relay restart, upgrade or crash no longer cuts every VM's CUSE COM
port for good (QEMU's serial chardev opens its path once, never again).

In one thin-client boot (cuse.ko loaded; this host's kernel has none):

  systemd --user (a real user manager, in a cgroup of its own)
    redir-relay.service: Type=notify, Restart=always, RestartSec=300ms,
      FileDescriptorStoreMax=16; [target.com1] kind = serial, tty = cuse,
      path = /run/com1: the /dev/cuse fd (cuse.com1) and a state memfd
      (cuse-state.com1) in the store
  redir-agent ([serial.com1] connect = 127.0.0.1:PORT/com1) on ttyACM0
      (a CDC ACM gadget; ttyGS0 its far end), under the ioctl recorder
  cuse_guest qemu: ONE QEMU 7.2 (-chardev serial,path=/run/com1,
      isa-serial) whose 16550 is driven through qtest; it holds its
      chardev's fd from start to end

(a) `systemctl --user restart` (an upgrade) and (b) SIGKILL of MainPID
(a crash; Restart=always): the restarted relay logs the device kept
across the restart, the store holds 2 fds again, the agent's port (reset
to 115200 8N1 meanwhile) gets the guest's last settings (9600 7E2) back
from the relay, and QEMU's same open fd carries settings, modem lines and
256 bytes each way again. After the upgrade, a byte sent to the QEMU
idle since before it wakes QEMU (the poll notification reaches the old
poller); during the crash, what QEMU writes while no relay runs waits in
the kernel and arrives. (c) `systemctl --user stop`: the store is
released, /dev/redir-relay/com1 goes, QEMU's fd reports an error or a
hang-up, and QEMU still quits on SIGTERM. Timings are printed: how long
QEMU's fd had no relay, how long until the settings were back.

REDIR_FDSTORE_TTY=pty runs the same scaffolding on the pty backend (data
and the store only: a pty carries neither parity nor modem lines), to
tell a rig problem from a CUSE one.
"""
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from thinclient import (DEFAULT_ASAN_OPTIONS, TcAgent, ThinClient,  # noqa: E402
                        acm_gadget, harness)
from cuse_rig import (AGENT_INI, GUEST, IOCTL_LOG, QEMU,  # noqa: E402
                      QEMU_DATA, RECORDER, cuse_files, relay_ini)

TTY = os.environ.get("REDIR_FDSTORE_TTY", "cuse")
assert TTY in ("cuse", "pty"), f"REDIR_FDSTORE_TTY={TTY}: cuse or pty"
SYSTEMD = "/usr/lib/systemd/systemd"
SYSTEMCTL = "/bin/systemctl"
UNIT = "redir-relay.service"
ETC = "/etc/redir-test"    # the test's configuration files
# systemd --user's environment in the VM (root's manager, as on the host
# test: the VM is disposable, so no namespace)
XDG_RUNTIME = "/run/user/0"
XDG_CONFIG = "/root/.config"
UNIT_DIR = f"{XDG_CONFIG}/systemd/user"
CGROUP = "/sys/fs/cgroup/rig-user"
SYSTEMCTL_USER = f"XDG_RUNTIME_DIR={XDG_RUNTIME} {SYSTEMCTL} --user"
# a CUSE target stores its /dev/cuse fd and the state memfd; a pty target
# its master and slave
STORED = 2
FOLLOW_MS = 1000.0          # test_cuse.py's goal for a setting to follow
# the restarted relay's line for a tty taken back from the store
KEPT = {"cuse": r"serial tty /dev/redir-relay/com1 \(CUSE, kept across the "
                r"restart\)",
        "pty": r"serial pty \S+ \(kept across the restart"}[TTY]
# the target's line, whether its tty is kept or new
TARGET_UP = r"target com1: serial (tty|pty) "

RELAY_INI = relay_ini(TTY)
RELAY_UNIT = f"""[Unit]
Description=redir-relay under test (thinclient_cuse_fdstore)
# no basic.target in this VM: the default dependencies would need one
DefaultDependencies=no
[Service]
Type=notify
ExecStart=/usr/sbin/redir-relay -f -c {ETC}/relay.ini
ExecReload=/bin/kill -HUP $MAINPID
Restart=always
RestartSec=300ms
FileDescriptorStoreMax=16
# as packaging/redir-relay.service: max_sessions' fds, no warning
LimitNOFILE=65536
Environment=ASAN_OPTIONS={DEFAULT_ASAN_OPTIONS}
StandardOutput=append:/tmp/relay.log
StandardError=append:/tmp/relay.log
"""
# systemd --user gives up without a default target (no unit ships here)
DEFAULT_TARGET = "[Unit]\nDescription=rig user manager\n"
# run by TcAgent: the manager enters its own cgroup, then becomes systemd;
# its messages go to the VM's console (tc-console.log)
MANAGER_SH = f"""echo $$ > {CGROUP}/cgroup.procs
export HOME=/root XDG_RUNTIME_DIR={XDG_RUNTIME} XDG_CONFIG_HOME={XDG_CONFIG}
export SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_LEVEL=info
exec {SYSTEMD} --user
"""

# QEMU's rounds of steps, each ended by wait-FILE (QEMU then idles while
# the test acts; FILE says go on). Data goes at 115200 8N1; the last
# setting before each restart is 9600 7E2, which the restarted relay must
# give the agent's port back.
#  - idle-arm before the upgrade and recv-idle first after it: a byte sent
#    to the QEMU idle since then must wake it through the tty's poll
#    notification (the restarted relay must still serve the poll handles
#    QEMU registered with the old one), not through qtest's traffic.
#  - send-down while no relay runs (after the SIGKILL): QEMU's writes wait
#    in the kernel and arrive once the relay is back.
# DTR/RTS are left off before each restart (their state must survive it);
# QEMU passes MCR on only when it changes, so later rounds turn them on
# first (QEMU's reset MCR is OUT2 alone, so the first round may start off).
if TTY == "cuse":
    FIRST = ("modem-off", "modem-on", "115200-8N1")
    SETTINGS = ("115200-8N1", "modem-on", "modem-off", "modem-on")
    LAST = ("modem-off", "9600-7E2")
else:                       # a pty carries neither framing nor modem lines
    FIRST = SETTINGS = LAST = ()
DATA = ("send256", "recv256")
ROUNDS = ((FIRST + DATA + LAST + ("idle-arm",), "/tmp/go1"),
          (("recv-idle",) + SETTINGS + DATA + LAST, "/tmp/down"),
          (("send-down",), "/tmp/go2"),
          (SETTINGS + DATA, "/tmp/go3"))
IDLE_BYTE = 0x5a
DOWN_BYTES = b"\x00while-down\xff"     # cuse_guest's send-down
STORM_KILLS = 4                        # relay SIGKILLs under the storm


def rig_files():
    """The relay, systemd and systemctl with their libraries, QEMU (TCG
    module, SeaBIOS), cuse_guest and the ioctl recorder."""
    for prog in (SYSTEMD, SYSTEMCTL):
        assert os.path.exists(prog), f"{prog}: scripts/install-test-deps.sh"
    files = cuse_files({SYSTEMD: SYSTEMD, SYSTEMCTL: SYSTEMCTL})
    # not under /tmp or /run: /init mounts tmpfs over both
    files[f"{ETC}/relay.ini"] = RELAY_INI
    files[f"{ETC}/agent.ini"] = AGENT_INI
    files[f"{UNIT_DIR}/{UNIT}"] = RELAY_UNIT
    files[f"{UNIT_DIR}/default.target"] = DEFAULT_TARGET
    files[f"{ETC}/manager.sh"] = MANAGER_SH
    return files


def start_manager(tc):
    """systemd --user in the VM: cgroup2 (the rig's /init mounts none),
    /run/systemd/system (systemd runs only where it sees itself booted),
    XDG_RUNTIME_DIR, and a cgroup of its own."""
    tc.sh("grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || "
          "mount -t cgroup2 cgroup2 /sys/fs/cgroup\n"
          f"mkdir -p /run/systemd/system {XDG_RUNTIME} {CGROUP}\n"
          f"chmod 700 {XDG_RUNTIME}")
    sd = TcAgent(tc, "manager")
    tc.agents.append(sd)
    sd.start(argv=["sh", f"{ETC}/manager.sh"])
    tc.sh(f"wait_until 60 test -S {XDG_RUNTIME}/systemd/private", timeout=70)
    return sd


def systemctl(tc, *args, timeout=60):
    return tc.sh(f"{SYSTEMCTL_USER} {' '.join(args)}",
                 timeout=timeout).strip()


def storm_calls(storm):
    """The TIOCMGET calls `cuse_guest storm` has made so far."""
    n = re.findall(r"(?m)^alive (\d+)", storm.fetch_log())
    return int(n[-1]) if n else 0


def show(tc, prop):
    return systemctl(tc, "show", "-p", prop, "--value", UNIT)


def vm_clock(tc, then=""):
    """The VM's wall clock (epoch seconds, µs), read just before `then`
    runs in the same script: the relay and agent stamp their logs with it."""
    out = tc.sh("adjtimex | awk '/tv_sec/ {s = $2} /tv_usec/ {u = $2} "
                "END {printf \"%d.%06d\\n\", s, u}'\n" + then)
    return float(out.split()[0])


def relay_log(tc):
    """The unit's output (StandardOutput=append:), read like an agent's."""
    log = TcAgent(tc, "relay")
    tc.agents.append(log)
    return log


def start_gs(tc, acm, n):
    """ttyGS0 (the port's far end) for round n: 255..0 toward QEMU, then
    reads the 256 bytes QEMU sends."""
    gs = acm.nodes["gs0"]
    tc.sh(f"rm -f /tmp/from-qemu{n} /tmp/gs{n}.ready\n"
          f"bg /tmp/gs{n}.log sh -c 'exec 4<>{gs}; stty raw -echo <&4; "
          f"touch /tmp/gs{n}.ready; cat /tmp/to-qemu >&4; "
          f"head -c 256 <&4 > /tmp/from-qemu{n}' >/dev/null\n"
          f"wait_until 5 test -e /tmp/gs{n}.ready")


def go(tc, acm, n):
    """Round n's ttyGS0 side, after one byte toward the QEMU that has
    idled since idle-arm if the round starts with recv-idle (QEMU waits in
    poll() on its fd); then QEMU goes on."""
    gs = acm.nodes["gs0"]
    if "recv-idle" in ROUNDS[n][0]:
        tc.sh(f"printf '\\{IDLE_BYTE:03o}' > {gs}")
    if "send256" in ROUNDS[n][0]:
        start_gs(tc, acm, n)
    tc.sh(f"touch {ROUNDS[n - 1][1]}")


def check_round(tc, qemu, n, off):
    """QEMU finished round n and now waits for its file; its settings
    followed, 256 bytes went each way."""
    steps, wait = ROUNDS[n]
    qemu.wait_log(f"^WAIT {wait}$", timeout=120, start_offset=off)
    text = qemu.log_text(off)
    for step in steps:
        assert re.search(rf"(?m)^OK {step}\b", text), f"round {n}: {text}"
    lat = {m.group(1): float(m.group(2))
           for m in re.finditer(r"(?m)^OK (\S+) ([\d.]+) ms$", text)
           if not m.group(1).startswith("wait-")}
    for step, ms in lat.items():
        assert ms <= FOLLOW_MS, f"round {n}: QEMU {step} {ms} ms"
    notes = [line[3:] for line in text.splitlines()
             if line.startswith(("OK recv-idle", "OK send-down"))]
    if "recv-idle" in steps:
        assert f"OK recv-idle 0x{IDLE_BYTE:02x}," in text, text
    if "send256" in steps:
        tc.run(f"wait_until 10 eval '[ \"$(stat -c %s /tmp/from-qemu{n})\" "
               f"-ge 256 ]'", timeout=20)
        got = tc.ctl.run_bytes(f"cat /tmp/from-qemu{n}")[1]
        assert got == bytes(range(256)), f"round {n}: QEMU's THR: {got!r}"
        notes.append("256 bytes each way through its UART")
    if lat:
        notes.insert(0, "settings at the agent's port (ms): " +
                     ", ".join(f"{k} {v:.0f}" for k, v in lat.items()))
    print(f"round {n}: " + "; ".join(notes))


def line_at_port(tc):
    return tc.sh("stty -a -F /dev/ttyACM0")


def is_9600_7e2(s):
    return ("speed 9600 baud" in s and "cs7" in s and
            re.search(r"(?<!-)\bparenb", s) and
            re.search(r"(?<!-)\bcstopb", s))


def marks(tc, relay, agent, qemu):
    """Where each log stands (relay, agent, ioctl recorder, QEMU)."""
    return (relay.log_offset(), agent.log_offset(),
            int(tc.sh(f"stat -c %s {IOCTL_LOG}")), qemu.log_offset())


def modem_lines_back(tc, ioff, how):
    """DTR and RTS stay off at the agent's port, as the guest left them:
    the new session does not raise them while the relay's state is on its
    way (a device that resets on DTR would reset at every relay restart).
    At most a TIOCMBIC again (the state applied), never a TIOCMBIS."""
    ioctls = tc.sh(f"tail -c +{ioff + 1} {IOCTL_LOG}")
    assert not re.search(r"TIOCMBIS 0x[24]", ioctls), \
        f"{how}: the new session raised DTR or RTS:\n{ioctls}"
    every = tc.sh(f"cat {IOCTL_LOG}")   # the last change of each: off
    for bit, name in ((0x2, "DTR"), (0x4, "RTS")):
        last = re.findall(rf"(?m)^TIOCMBI([SC]) 0x{bit:x}$", every)
        assert last and last[-1] == "C", \
            f"{how}: {name} not left off at the port:\n{ioctls}"


def restarted(tc, relay, agent, old_pid, mark, t_down, how):
    """The relay is back on the kept device; the store holds it again and
    the agent's port has the guest's last settings: 9600 7E2, DTR and RTS
    off (not turned on by the new session). Returns timings."""
    roff, aoff, ioff, _ = mark
    harness.wait_for(lambda: show(tc, "MainPID") not in ("0", old_pid), 60,
                     f"the relay back after {how}")
    relay.wait_log(TARGET_UP, timeout=60, start_offset=roff)
    assert re.search(KEPT, relay.log_text(roff)), \
        f"{how}: the relay made a new tty instead of taking the kept one " \
        f"back (QEMU's fd is cut off):\n{relay.log_text(roff)}"
    relay.wait_log(r"attached to target 'com1'", timeout=60,
                   start_offset=roff)
    up = relay.log_stamp(KEPT, roff)
    n = show(tc, "NFileDescriptorStore")
    assert n == str(STORED), f"{how}: {n} fds in the store, want {STORED}"
    res = {"without a relay": up - t_down}
    if TTY == "cuse":
        harness.wait_for(lambda: is_9600_7e2(line_at_port(tc)), 10,
                         f"ttyACM0 back at 9600 7E2 after {how}")
        agent.wait_log(r"RFC 2217 request 1 value 9600$", start_offset=aoff)
        res["settings back"] = agent.log_stamp(
            r"RFC 2217 request 1 value 9600$", aoff) - t_down
        modem_lines_back(tc, ioff, how)
    print(f"{how}: relay back on the kept device; " +
          ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in res.items()) +
          " (from the restart or the kill on; TCG, ASan)")
    return res


class Rig:
    """The thin client with systemd --user, the relay unit, the agent and
    the one QEMU: what every phase acts on."""

    def __init__(self, td):
        self.tc = tc = ThinClient(td, modules=("cuse",), files=rig_files(),
                                  memory=1024).start()
        assert "cuse" in tc.sh("cat /proc/modules"), "cuse.ko not loaded"
        # the rig's /init mounts no devpts: the pty backend needs one
        tc.sh("mkdir -p /dev/pts && mount -t devpts -o ptmxmode=0666 devpts "
              "/dev/pts && ln -sf pts/ptmx /dev/ptmx\n"
              "head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \\n' "
              "> /tmp/relay.secret && chmod 600 /tmp/relay.secret")
        tc.put_file("/tmp/to-qemu", bytes(range(255, -1, -1)))
        self.acm = tc.add_gadget(acm_gadget())
        tc.wait_drivers(self.acm, {"1.0": "cdc_acm", "1.1": "cdc_acm"})
        tc.sh("wait_until 10 test -c /dev/ttyACM0")
        self.timings = {}

    def start_relay(self):
        """The manager, the relay unit (a new tty, 2 fds stored), the agent
        attached to it."""
        tc = self.tc
        t0 = time.monotonic()
        self.sd = start_manager(tc)
        self.relay = relay = relay_log(tc)
        systemctl(tc, "start", UNIT)
        print(f"systemd --user up and the relay started in "
              f"{time.monotonic() - t0:.1f}s")
        relay.wait_log(r"listening for agents")
        relay.wait_log(TARGET_UP)
        assert not re.search(KEPT, relay.log_text()), relay.log_text()
        tc.sh("wait_until 5 test -e /run/com1")
        n = show(tc, "NFileDescriptorStore")
        assert n == str(STORED), f"{n} fds in the store, want {STORED}"
        self.agent = TcAgent(tc, "agent")
        tc.agents.append(self.agent)
        self.agent.start(argv=[
            "env", f"LD_PRELOAD={RECORDER}", f"REDIR_IOCTL_LOG={IOCTL_LOG}",
            "/usr/sbin/redir-agent", "-f", "-c", f"{ETC}/agent.ini"])
        relay.wait_log(r"attached to target 'com1'")
        self.agent.wait_log(r"\[serial.com1\] .*opened")

    def start_qemu(self):
        """ONE QEMU for the whole test: its chardev's fd is opened once;
        its first round."""
        start_gs(self.tc, self.acm, 0)
        steps = []
        for rnd, wait in ROUNDS:
            steps += [*rnd, f"wait-{wait}"]
        self.qemu = TcAgent(self.tc, "qemu")
        self.tc.agents.append(self.qemu)
        self.qemu.start(argv=[
            GUEST, "qemu", IOCTL_LOG, *steps, "hangup", "--", QEMU,
            "-machine", "pc", "-accel", "tcg", "-S", "-nodefaults",
            "-display", "none", "-m", "32", "-L", QEMU_DATA,
            "-chardev", "serial,id=com1,path=/run/com1",
            "-device", "isa-serial,chardev=com1"])
        check_round(self.tc, self.qemu, 0, 0)

    def restart(self, how, then):
        """`then` (a shell script) takes the relay down; back, it must be
        on the kept device with the guest's settings."""
        old = show(self.tc, "MainPID")
        mark = marks(self.tc, self.relay, self.agent, self.qemu)
        t_down = vm_clock(self.tc, then)
        self.timings[how] = restarted(self.tc, self.relay, self.agent, old,
                                      mark, t_down, how)
        return mark[3]

    def upgrade(self):
        """(a) systemctl restart. ttyACM0 is reset to 115200 8N1 at once
        (the old relay is still stopping), so 9600 7E2 can only come back
        from the restarted relay's state."""
        qoff = self.restart("systemctl restart",
                            f"{SYSTEMCTL_USER} restart --no-block {UNIT}\n"
                            "stty -F /dev/ttyACM0 115200 cs8 -parenb -cstopb")
        go(self.tc, self.acm, 1)
        check_round(self.tc, self.qemu, 1, qoff)

    def crash(self):
        """(b) SIGKILL; Restart=always brings the relay back after
        RestartSec. The port is reset and QEMU writes while no relay runs:
        its bytes arrive."""
        tc = self.tc
        tc.sh(f"rm -f /tmp/down.got /tmp/down.ready\n"
              f"bg /tmp/down.log sh -c 'exec 4<>{self.acm.nodes['gs0']}; "
              f"stty raw -echo <&4; touch /tmp/down.ready; "
              f"head -c {len(DOWN_BYTES)} <&4 > /tmp/down.got' >/dev/null\n"
              "wait_until 5 test -e /tmp/down.ready")
        qoff = self.restart("SIGKILL (Restart=always)",
                            f"kill -9 {show(tc, 'MainPID')}\n"
                            "stty -F /dev/ttyACM0 115200 cs8 -parenb -cstopb\n"
                            f"touch {ROUNDS[1][1]}")
        check_round(tc, self.qemu, 2, qoff)
        tc.run(f"wait_until 10 eval '[ \"$(stat -c %s /tmp/down.got)\" -ge "
               f"{len(DOWN_BYTES)} ]'", timeout=20)
        got = tc.ctl.run_bytes("cat /tmp/down.got")[1]
        assert got == DOWN_BYTES, "what QEMU wrote while no relay ran did " \
            f"not reach the port whole: {got!r}"
        qoff = self.qemu.log_offset()
        go(tc, self.acm, 3)
        check_round(tc, self.qemu, 3, qoff)

    def kill_storm(self):
        """(b2) SIGKILL after SIGKILL while a program makes TIOCMGET calls
        without pause and another waits in a blocking read: a relay that
        dies leaves requests read and not answered (the held read, and the
        one being served or read when the kill lands), each a caller that
        would wait for ever (QEMU, holding its big lock: a frozen VM). The
        next run answers them: the reader ends (EINTR), the storm goes on
        after every kill. Before the fix it hung in fuse_do_ioctl."""
        tc = self.tc
        storm = TcAgent(tc, "storm")
        tc.agents.append(storm)
        storm.start(argv=[GUEST, "storm", "/run/com1", "120"])
        storm.wait_log(r"alive [1-9]")
        tc.sh("rm -f /tmp/blk.rc\nbg /tmp/blk.log sh -c 'head -c 1 "
              "/run/com1 > /dev/null; echo $? > /tmp/blk.rc' >/dev/null\n"
              "sleep 1; ! test -e /tmp/blk.rc")   # held by the relay now
        roff = self.relay.log_offset()
        for i in range(STORM_KILLS):
            old, off = show(tc, "MainPID"), self.relay.log_offset()
            before = storm_calls(storm)
            tc.sh(f"kill -9 {old}")
            harness.wait_for(lambda: show(tc, "MainPID") not in ("0", old),
                             60, f"the relay back after kill {i + 1}")
            self.relay.wait_log(KEPT, start_offset=off, timeout=60)
            harness.wait_for(lambda: storm_calls(storm) > before + 50, 30,
                             f"the storm going on after kill {i + 1}")
            if i == 0:
                tc.sh("wait_until 10 test -e /tmp/blk.rc")
        text = self.relay.log_text(roff)
        left = [int(n) for n in re.findall(
            r"the last run died with (\d+) requests? of the guest's side "
            r"unanswered", text)]
        assert left and left[0] >= 1, f"the held read was not answered:\n{text}"
        storm.kill()
        eintr = re.findall(r"eintr (\d+)", storm.fetch_log())[-1]
        print(f"{STORM_KILLS} SIGKILLs under a TIOCMGET storm and a blocking "
              f"read: {sum(left)} request(s) left by dead relays answered "
              f"({left}), the storm got {eintr} EINTR and never stopped, "
              f"the reader ended (rc {tc.sh('cat /tmp/blk.rc').strip()})")

    def stop_for_good(self):
        """(c) systemctl stop: the store is released, the device goes,
        QEMU's fd says so and QEMU still quits."""
        tc, qoff = self.tc, self.qemu.log_offset()
        t0 = time.monotonic()
        systemctl(tc, "stop", UNIT)
        assert show(tc, "NFileDescriptorStore") == "0", "the store was kept"
        node = "/dev/redir-relay/com1" if TTY == "cuse" else "/run/com1"
        tc.sh(f"wait_until 10 sh -c '! test -e {node}' && ! test -e /run/com1")
        gone_s = time.monotonic() - t0
        # QEMU polls a dead fd now: what that costs it (not ours to fix)
        qpid = int(tc.sh("pidof qemu-system-x86_64"))
        cpu0 = tc.cpu_seconds(qpid)
        time.sleep(2)
        busy = (tc.cpu_seconds(qpid) - cpu0) / 2
        tc.sh(f"touch {ROUNDS[3][1]}")
        assert self.qemu.wait_exit(60) == 0, self.qemu.log_text(qoff)
        text = self.qemu.log_text(qoff)
        assert re.search(r"(?m)^OK hangup: QEMU's fd \d+ ", text), text
        assert re.search(r"(?m)^OK qemu quit in \d+ ms$", text), text
        print("systemctl stop: the store released, the device gone in "
              f"{gone_s:.1f}s (host clock); QEMU used {busy:.0%} of a CPU "
              "meanwhile; " +
              " ".join(line for line in text.splitlines()
                       if line.startswith(("OK hangup", "OK qemu quit"))))

    def reload_renamed(self):
        """(d) the relay started again (a new device), then a reload that
        makes the target anew at another path: the old device, of which
        systemd holds a copy, must be gone before the new one of the same
        name registers (the kernel refuses a name still taken and ends the
        new device: BARRIER=1 after the store's removal); the new one
        works, and the store holds it instead of the old."""
        tc, relay = self.tc, self.relay
        off = relay.log_offset()
        systemctl(tc, "start", UNIT)
        relay.wait_log(r"linked at /run/com1$", start_offset=off)
        relay.wait_log(r"attached to target 'com1'", start_offset=off)
        off = relay.log_offset()
        tc.sh(f"sed -i 's|^path = /run/com1$|path = /run/com1b|' "
              f"{ETC}/relay.ini")
        systemctl(tc, "reload", UNIT)
        relay.wait_log(r"linked at /run/com1b$", start_offset=off)
        relay.wait_log(r"attached to target 'com1'", start_offset=off,
                       timeout=30)
        rc, out = tc.ctl.run_bytes(f"{GUEST} steps /run/com1b {IOCTL_LOG} "
                                   "9600-7E2 modem-off modem-on", timeout=60)
        text = relay.log_text(off)
        assert rc == 0 and "device ended" not in text, \
            f"{out.decode()}\n{text}"
        n = show(tc, "NFileDescriptorStore")
        assert n == str(STORED), f"after the reload: {n} fds in the store"
        print("reload to /run/com1b: the old device gone first, the new one "
              "answers: " + " ".join(re.findall(r"OK \S+ [\d.]+ ms",
                                                 out.decode())))

    def finish(self):
        self.agent.stop()
        systemctl(self.tc, "--force", "exit")  # no exit.target here: at once
        assert self.sd.wait_exit(30) == 0, self.sd.fetch_log()
        for proc in (self.relay, self.agent):
            proc.assert_clean_log()
        self.tc.stop()
        print("timings (ms, from the restart or the SIGKILL on; the fd "
              "without a relay: until the new relay's kept line): " +
              "; ".join(f"{how}: " + ", ".join(f"{k} {v * 1000:.0f}"
                                                for k, v in t.items())
                        for how, t in self.timings.items()) +
              " (TCG, ASan, shared 2-core host: not a performance figure)")


def test(td):
    t_start = time.monotonic()
    rig = Rig(td)
    rig.start_relay()
    rig.start_qemu()
    rig.upgrade()
    rig.crash()
    if TTY == "cuse":
        rig.kill_storm()
    rig.stop_for_good()
    if TTY == "cuse":
        rig.reload_renamed()
    rig.finish()
    print(f"thin client boot {rig.tc.boot_s:.2f}s; total "
          f"{time.monotonic() - t_start:.1f}s")


harness.main(test)
