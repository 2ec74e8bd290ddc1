#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig: the agent as an unprivileged user, on a real kernel USB stack.

The packages run redir-agent as the system user redir-agent with no
capability at all; usbfs nodes reach it through its group, which the
package's udev rule (packaging/60-redir-agent.rules, copied here as it is)
gives them.  One thin-client boot, udevd started with names resolved
(--resolve-names=early, as a full udev does), a user and group redir-agent
(uid/gid 101, as adduser --system makes them) and /run/redir-agent owned by
it (as RuntimeDirectory= / the init script make it).  Every program below
runs as that user through su: uid, gid, no capability in any set but the
bounding one.

 0. Without the rule the usbfs node is root:root 0600 (devtmpfs): as the
    user, opening it fails (EACCES), and the agent, once its peer (the VDI
    VM) answers, cannot open the device (LIBUSB_ERROR_ACCESS): usb-storage
    stays bound.  This is what the rule is for.
 1. The rule, put in force the way the package's postinst does it
    (udevadm control --reload-rules, then trigger --action=change on the
    usb subsystem): the node becomes root:redir-agent 0664.
 2. The ioctls themselves, as the user, by a small static helper compiled
    here: USBDEVFS_DISCONNECT_CLAIM takes the interface from usb-storage
    (driver now usbfs), USBDEVFS_RELEASEINTERFACE, then USBDEVFS_IOCTL /
    USBDEVFS_CONNECT gives it back (usb-storage bound again).  Neither
    needs a capability: write access to the node is all.
 3. The agent as the user redirects the disk to the VDI VM (usbfs holds
    the interface, /dev/sdX gone), the VDI guest reads it all (SHA-256 equal
    to the backing file's); its /proc status: uid/gid 101, CapEff, CapPrm,
    CapInh and CapAmb 0; its control socket /run/redir-agent/control.sock
    (the new default) is the user's, mode 0660, and answers
    `redir-agent status` run by root.
 4. Unplug and replug: the new node gets the group from the rule before the
    agent hears of it (udevd runs the rule, then tells libudev listeners);
    the agent, unprivileged, redirects it again.
 5. SIGTERM: the agent exits 0, usb-storage is bound again and /dev/sdX
    back (libusb reattaches the driver: USBDEVFS_CONNECT), the VDI guest
    loses the disk.
 6. SIGKILL while redirecting leaves the disk driverless; a restarted agent,
    as the user, with a policy that keeps the disk local gives it back to
    usb-storage (crash recovery: USBDEVFS_CONNECT again).
"""
import hashlib
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from thinclient import ThinClient, VdiGuest, disk_gadget, harness  # noqa: E402

SRC = os.path.dirname(os.path.dirname(HERE))
RULE = os.path.join(SRC, "packaging", "60-redir-agent.rules")
USER = "redir-agent"
UID = GID = 101
DISK = r'1209:7d15 "Rig Disk" at \S+: '
CONTROL_SOCKET = "/run/redir-agent/control.sock"
NO_CAPS = "0000000000000000"

# The helper of phase 2 (C, no library but libc, linked statically).
IOCTL_C = r"""
/* usbfs-ioctl NODE PORT IFNUM: takes interface IFNUM of the USB device at
 * NODE (sysfs name PORT) from its kernel driver with
 * USBDEVFS_DISCONNECT_CLAIM, releases it, and has the kernel bind a driver
 * again with USBDEVFS_CONNECT; prints the interface's driver after each
 * step and the caller's ids and effective capabilities first. */
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *driver(const char *port, unsigned ifnum)
{
    static char link[512];
    char path[256];
    snprintf(path, sizeof(path), "/sys/bus/usb/devices/%s:1.%u/driver", port,
             ifnum);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n < 0)
        return "-";
    link[n] = '\0';
    const char *s = strrchr(link, '/');
    return s ? s + 1 : link;
}

static void status(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4) ||
            !strncmp(line, "Cap", 3))
            fputs(line, stdout);
    if (f)
        fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    unsigned ifnum = (unsigned)strtoul(argv[3], NULL, 10);
    status();
    int fd = open(argv[1], O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        printf("open: %s\n", strerror(errno));
        return 1;
    }
    struct usbdevfs_disconnect_claim dc = {.interface = ifnum};
    if (ioctl(fd, USBDEVFS_DISCONNECT_CLAIM, &dc) < 0) {
        printf("disconnect-claim: %s\n", strerror(errno));
        return 1;
    }
    printf("disconnect-claim: ok, driver %s\n", driver(argv[2], ifnum));
    if (ioctl(fd, USBDEVFS_RELEASEINTERFACE, &ifnum) < 0) {
        printf("release: %s\n", strerror(errno));
        return 1;
    }
    struct usbdevfs_ioctl ctl = {.ifno = (int)ifnum,
                                 .ioctl_code = USBDEVFS_CONNECT};
    if (ioctl(fd, USBDEVFS_IOCTL, &ctl) < 0) {
        printf("connect: %s\n", strerror(errno));
        return 1;
    }
    printf("connect: ok, driver %s\n", driver(argv[2], ifnum));
    close(fd);
    return 0;
}
"""


def build_helper(td):
    src = td.write("usbfs-ioctl.c", IOCTL_C)
    out = td.file("usbfs-ioctl")
    subprocess.run(["cc", "-static", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-o", out, src], check=True)
    with open(out, "rb") as f:
        return f.read()


def as_user(cmd):
    """A shell command running cmd as USER (busybox su as root: no password;
    initgroups, setgid, setuid; the environment is kept)."""
    return f'su -s /bin/sh {USER} -c "exec {cmd}"'


def node_of(tc, disk):
    """/dev/bus/usb/BBB/DDD of the gadget's device."""
    port = tc.usb_dev(disk)
    bus, dev = tc.sh(f"cat /sys/bus/usb/devices/{port}/busnum "
                     f"/sys/bus/usb/devices/{port}/devnum").split()
    return port, f"/dev/bus/usb/{int(bus):03d}/{int(dev):03d}"


def perms(tc, path):
    return tc.sh(f"stat -c '%u:%g %a' {path}").strip()


def local_ok(tc, disk):
    return (tc.if_drivers(disk) == {"1.0": "usb-storage"} and
            bool(tc.block_devs(disk)))


def start_user_agent(tc, config, name):
    tc.put_file(f"/tmp/{name}.ini", config)
    agent = tc.start_agent(None, name=name, argv=[as_user(
        f"/usr/sbin/redir-agent -f -c /tmp/{name}.ini")])
    agent.control_socket = CONTROL_SOCKET
    return agent


def assert_unprivileged(tc, pid, what):
    st = tc.proc_status(pid)
    if st["Uid"].split() != [str(UID)] * 4 or st["Gid"].split() != [str(GID)] * 4:
        raise AssertionError(f"{what}: Uid {st['Uid']}, Gid {st['Gid']}")
    for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        if st[k] != NO_CAPS:
            raise AssertionError(f"{what}: {k} {st[k]}")
    return st


def test(td):
    t_start = time.monotonic()
    timings = {}
    with open(RULE) as f:
        rule = f.read()
    tc = ThinClient(td, udev=False, files={
        "/usr/bin/usbfs-ioctl": (build_helper(td), 0o755),
        "/etc/rig/60-redir-agent.rules": rule}).start()
    # The system user and group (adduser --system --group), udevd resolving
    # names, the runtime directory (RuntimeDirectory= / the init script).
    tc.sh(f"echo '{USER}:x:{UID}:{GID}:USB redirection agent:/nonexistent:"
          f"/usr/sbin/nologin' >> /etc/passwd\n"
          f"echo '{USER}:x:{GID}:' >> /etc/group\n"
          "mkdir -p /lib/udev/rules.d\n"
          "/lib/systemd/systemd-udevd --daemon --resolve-names=early "
          ">/tmp/udevd.log 2>&1\n"
          "wait_until 10 test -e /run/udev/control\n"
          f"mkdir -p /run/redir-agent && chown {USER}:{USER} /run/redir-agent")
    tc.udev = True
    disk = tc.add_gadget(disk_gadget(size_mib=8))
    tc.wait_drivers(disk, {"1.0": "usb-storage"})
    harness.wait_for(lambda: local_ok(tc, disk), 10, "/dev/sdX")
    port, node = node_of(tc, disk)
    # devtmpfs makes the node, but udevd (just started, replaying the
    # coldplug events) may still be re-creating it: under a loaded CI host
    # a stat right here once found nothing.
    harness.wait_for(lambda: tc.run(f"test -c {node}")[0] == 0, 15, node)
    img_sha = tc.sh("sha256sum /tmp/disk.img | cut -d' ' -f1").strip()

    # 0. without the rule
    p = perms(tc, node)
    assert p == "0:0 600", f"{node} without the rule: {p}"
    rc, out = tc.run(as_user(f"/usr/bin/usbfs-ioctl {node} {port} 0"))
    assert rc == 1 and "open: Permission denied" in out, out
    print(f"0. without the rule: {node} {p}; as {USER}: {out.splitlines()[-1]}")
    # The agent opens a device once its peer answers: the VDI VM first.
    port_vdi = harness.free_port()
    vdi = VdiGuest(td, slots=[("server", port_vdi)], name="vdi").start()
    cfg = (f"[agent]\nlog_level = debug\n[usb]\nconnect = 10.0.2.2:{port_vdi}\n"
           f"reconnect_min_ms = 100\nreconnect_max_ms = 500\n")
    agent0 = start_user_agent(tc, cfg, "agent-norule")
    agent0.wait_log(DISK + r"cannot open the device: LIBUSB_ERROR_ACCESS", 30)
    assert local_ok(tc, disk), tc.if_drivers(disk)
    agent0.stop()
    print("0. the agent as the user: cannot open the device "
          "(LIBUSB_ERROR_ACCESS), usb-storage keeps the disk")

    # 1. the rule, in force as the postinst puts it
    tc.sh("cp /etc/rig/60-redir-agent.rules /lib/udev/rules.d/\n"
          "udevadm control --reload-rules\n"
          "udevadm trigger --subsystem-match=usb --action=change\n"
          "udevadm settle -t 10")
    harness.wait_for(lambda: perms(tc, node) == f"0:{GID} 664", 10,
                     f"{node} root:{USER} 0664")
    print(f"1. with 60-redir-agent.rules: {node} {perms(tc, node)}")

    # 2. the ioctls, as the user
    rc, out = tc.run(as_user(f"/usr/bin/usbfs-ioctl {node} {port} 0"))
    assert rc == 0, out
    assert "disconnect-claim: ok, driver usbfs" in out, out
    assert "connect: ok, driver usb-storage" in out, out
    assert f"CapEff:\t{NO_CAPS}" in out and f"Uid:\t{UID}\t" in out, out
    harness.wait_for(lambda: local_ok(tc, disk), 10, "/dev/sdX back")
    print("2. as the user, no capability: " + "; ".join(
        line for line in out.splitlines()
        if line.startswith(("disconnect", "connect", "CapEff", "CapBnd"))))

    # 3. the agent as the user
    t0 = time.monotonic()
    agent = start_user_agent(tc, cfg, "agent")
    agent.wait_log(DISK + rf"redirected rw to 10\.0\.2\.2:{port_vdi}", 30)
    timings["redirected"] = time.monotonic() - t0
    tc.wait_drivers(disk, {"1.0": "usbfs"}, timeout=5)
    assert tc.block_devs(disk) == [], tc.block_devs(disk)
    dev = vdi.sh("wait_disk 30", timeout=40).strip()
    sha = vdi.sh(f"dd if=/dev/{dev} bs=1M iflag=direct 2>/dev/null | "
                 f"sha256sum | cut -d' ' -f1", timeout=120).strip()
    assert sha == img_sha, f"VDI read {sha}, backing file {img_sha}"
    st = assert_unprivileged(tc, agent.pid, "agent")
    sock = perms(tc, CONTROL_SOCKET)
    assert sock == f"{UID}:{GID} 660", f"{CONTROL_SOCKET}: {sock}"
    state = agent.devices()["1209:7d15"]
    assert state["session"] is not None, state
    print(f"3. redirected as uid {UID} in {timings['redirected']:.2f}s, VDI "
          f"read equal; CapEff {st['CapEff']} CapPrm {st['CapPrm']} CapBnd "
          f"{st['CapBnd']}; {CONTROL_SOCKET} {sock}, status answers")

    # 4. unplug, replug
    off = agent.log_offset()
    tc.unplug(disk)
    agent.wait_log(DISK + r"unplugged", 20, start_offset=off)
    vdi.sh("wait_until 20 eval '! ls -d /sys/block/sd* >/dev/null 2>&1'",
           timeout=30)
    t0 = time.monotonic()
    tc.plug(disk)
    agent.wait_log(DISK + r"redirected rw to", 30, start_offset=off)
    timings["replug -> redirected"] = time.monotonic() - t0
    port, node = node_of(tc, disk)
    assert perms(tc, node) == f"0:{GID} 664", perms(tc, node)
    vdi.sh("wait_disk 30", timeout=40)
    print(f"4. replugged: {node} {perms(tc, node)}, redirected again in "
          f"{timings['replug -> redirected']:.2f}s")

    # 5. SIGTERM
    t0 = time.monotonic()
    agent.stop(timeout=10)
    harness.wait_for(lambda: local_ok(tc, disk), 20,
                     "usb-storage and /dev/sdX back")
    timings["SIGTERM -> usb-storage back"] = time.monotonic() - t0
    agent.wait_log(DISK + r"handing the device back to the host")
    vdi.sh("wait_until 20 eval '! ls -d /sys/block/sd* >/dev/null 2>&1'",
           timeout=30)
    print(f"5. SIGTERM: exit 0, usb-storage back in "
          f"{timings['SIGTERM -> usb-storage back']:.2f}s")

    # 6. crash, then a restarted agent gives the disk back
    agent2 = start_user_agent(tc, cfg, "agent-killed")
    agent2.wait_log(DISK + r"redirected rw to", 30)
    vdi.sh("wait_disk 30", timeout=40)
    assert agent2.kill() == 137
    tc.wait_drivers(disk, {"1.0": None}, 10)
    t0 = time.monotonic()
    agent3 = start_user_agent(tc, cfg + "rule = deny class=08\n",
                              "agent-restarted")
    agent3.wait_log(DISK + r"interface 0 had no driver .*; given back to "
                    r"usb-storage", 20)
    harness.wait_for(lambda: local_ok(tc, disk), 10,
                     "usb-storage and /dev/sdX back")
    timings["restart -> usb-storage back"] = time.monotonic() - t0
    assert_unprivileged(tc, agent3.pid, "restarted agent")
    agent3.stop()
    print(f"6. after SIGKILL, a restarted agent as the user gave the disk "
          f"back in {timings['restart -> usb-storage back']:.2f}s")

    vdi.poweroff()
    tc.stop()
    print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    print(f"thin client boot {tc.boot_s:.2f}s; total "
          f"{time.monotonic() - t_start:.1f}s")


harness.main(test)
