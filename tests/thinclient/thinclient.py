#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The thin-client VM rig: a real kernel USB stack for the agent under test.

A small VM booted from Debian's kernel (the same package the Linux-guest rig
fetches, see tests/guest/linuxguest.py: fetch_kernel) plays the thin client:

    host: test --control (virtio-serial)--> thin-client VM (QEMU TCG)
                                              dummy_hcd + configfs gadgets
                                              -> usb-storage, usbhid, cdc_acm,
                                                 usblp, usbfs, uevents
                                              redir-agent (real libusb)
                                                 | 10.0.2.2:PORT (user net)
          VDI VM (LinuxGuest: usb-redir on 127.0.0.1:PORT) <-----+

Gadgets built in configfs on the VM's dummy_hcd appear to the VM's own USB
host side as plugged-in devices: enumerated, kernel driver bound, /dev node,
netlink uevent.  Each gadget has its own UDC (dummy_hcd.num=N gives N
device/host controller pairs), so each can be unplugged (UDC unbound) and
replugged on its own.

    tc = ThinClient(td, hostfwd=(7000,)).start()     # boots, control ready
    disk = tc.add_gadget(disk_gadget("disk", size_mib=32))
    vdi = VdiGuest(td, slots=[("server", port)]).start()
    agent = tc.start_agent(f"[usb]\\nconnect = 10.0.2.2:{port}\\n")
    agent.wait_log(r"redirected rw to")
    tc.if_drivers(disk)   # {'1.0': 'usbfs'}
    vdi.sh("wait_disk 30")
    agent.stop()          # SIGTERM, rc 0, no sanitizer report

See README.md in this directory.  Standard library only.
"""

import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.join(os.path.dirname(HERE), "guest")
for _p in (HERE, GUEST):
    if _p not in sys.path:
        sys.path.insert(0, _p)
import linuxguest  # noqa: E402
from linuxguest import Cpio, LinuxGuest, harness  # noqa: E402
import vmctl  # noqa: E402
from vmctl import ControlError, VmControl  # noqa: E402

# Bump when the base initramfs layout changes (part of the cache key).
TC_FORMAT = 1

# The thin client's kernel modules; dependencies come from modules.dep.
TC_MODULES = (
    "dummy_hcd", "libcomposite", "usb_f_mass_storage", "usb_f_hid",
    "usb_f_acm", "usb_f_printer",                        # device side
    "usb_storage", "sd_mod", "usbhid", "hid_generic", "evdev", "cdc_acm",
    "usblp",                                             # host side drivers
    "virtio_pci", "virtio_net", "virtio_console",        # network, control
)
UDCS = 8                  # dummy_hcd.num: gadgets plugged at once

TC_CMDLINE = (
    "console=ttyS0", "quiet", "panic=-1", "rdinit=/init",
    "usb_storage.delay_use=0", "8250.nr_uarts=1", "i8042.noaux",
    "i8042.nokbd", "i8042.nopnp", "mitigations=off", "random.trust_cpu=on",
)

DEFAULT_ASAN_OPTIONS = "detect_leaks=1:abort_on_error=0:verify_asan_link_order=0"

TC_INIT = r"""#!/bin/sh
# redir-agent thin-client rig: /init
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=75% tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
echo > /proc/sys/kernel/modprobe
echo "TC-INIT uptime=$(cut -d' ' -f1 /proc/uptime)"
cmdline=$(cat /proc/cmdline)
for m in $(cat /etc/rig/modules); do
    args=""
    for w in $cmdline; do
        case "$w" in "$m".*) args="$args ${w#"$m".}" ;; esac
    done
    insmod "/lib/modules/rig/$m.ko" $args || echo "TC-ERROR: insmod $m failed"
done
mount -t configfs configfs /sys/kernel/config
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
    ip route add default via 10.0.2.2 || echo "TC-ERROR: network setup failed"
echo "TC-START uptime=$(cut -d' ' -f1 /proc/uptime)"
. /rig/ctl.sh
ctl_serve /rig/tc.sh
sync
echo "TC-DONE"
poweroff -f
sleep 10
echo o > /proc/sysrq-trigger
"""

TC_LIB = vmctl.COMMON_LIB + r"""
# usb_dev VID PID: sysfs name (e.g. 3-1) of the USB device with these ids
usb_dev() {
    for _d in /sys/bus/usb/devices/*; do
        [ -f "$_d/idVendor" ] || continue
        if [ "$(cat $_d/idVendor)" = "$1" ] && [ "$(cat $_d/idProduct)" = "$2" ]; then
            echo "${_d##*/}"; return 0
        fi
    done
    return 1
}
usb_absent() { ! usb_dev "$@" >/dev/null; }
# if_drivers DEV: "1.0=usb-storage 1.1=-" (interface: driver bound, - none)
if_drivers() {
    _o=""
    for _i in /sys/bus/usb/devices/$1:*; do
        [ -e "$_i" ] || continue
        _drv=$(readlink "$_i/driver" 2>/dev/null)
        _o="$_o ${_i##*:}=${_drv:+${_drv##*/}}"
        [ -n "$_drv" ] || _o="$_o-"
    done
    echo $_o
}
# block_of DEV: the sd* block devices of the USB device DEV
block_of() {
    for _b in /sys/block/sd*; do
        [ -e "$_b" ] || continue
        case "$(readlink -f $_b)" in */$1/*) echo "${_b##*/}" ;; esac
    done
}
# devname MAJ:MIN: the /dev name of a char device
devname() { sed -n 's/^DEVNAME=//p' "/sys/dev/char/$1/uevent"; }
# input_of DEV: the event* nodes of the USB device DEV
input_of() {
    for _e in /sys/class/input/event*; do
        [ -e "$_e" ] || continue
        case "$(readlink -f $_e)" in */$1/*) echo "${_e##*/}" ;; esac
    done
}
# tty_of DEV: ttyACM* of the device; lp_of DEV: usb/lp* of the device
tty_of() { ls /sys/bus/usb/devices/$1:*/tty 2>/dev/null | grep tty; }
lp_of() { ls /sys/bus/usb/devices/$1:*/usbmisc 2>/dev/null | grep lp; }
"""


def _read(path):
    with open(path, "rb") as f:
        return f.read()


# --------------------------------------------------------------------------
# Programs and their shared libraries
# --------------------------------------------------------------------------

def ldd(path):
    """Host paths of the shared libraries `path` loads (loader included)."""
    env = harness.clean_env()
    out = subprocess.run(["ldd", path], check=True, text=True, env=env,
                         stdout=subprocess.PIPE).stdout
    libs = []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line) or re.match(r"\s*(/\S+) \(", line)
        if m:
            libs.append(m.groups()[-1])
        elif "not found" in line:
            raise RuntimeError(f"ldd {path}: {line.strip()}")
    return libs


def program_files(programs):
    """{vm path: (bytes, mode)} for programs {vm path: host path} and every
    shared library they load, each put where the VM's loader looks
    (/lib/x86_64-linux-gnu/SONAME, /lib64/ld-linux-x86-64.so.2)."""
    files = {}
    for vm_path, host_path in programs.items():
        files[vm_path] = (_read(host_path), 0o755)
        for lib in ldd(host_path):
            name = os.path.basename(lib)
            dest = f"/lib64/{name}" if name.startswith("ld-linux") else \
                f"/lib/x86_64-linux-gnu/{name}"
            if dest not in files:
                files[dest] = (_read(os.path.realpath(lib)), 0o755)
    return files


def _add_files(cpio, files):
    for path, data in sorted(files.items()):
        mode = 0o644
        if isinstance(data, tuple):
            data, mode = data
        if isinstance(data, str):
            data = data.encode()
        cpio.dirs_for(path)
        cpio.file(path, data, mode)


def udevd_files():
    """systemd-udevd (a name of the multi-call udevadm in Debian 12) and its
    libraries; no rules: it only has to re-broadcast the kernel's uevents
    to libudev listeners, as on a thin client."""
    udevadm = shutil.which("udevadm") or "/bin/udevadm"
    if not os.path.exists(udevadm):
        raise FileNotFoundError("udevadm not found: apt-get install udev")
    files = program_files({"/bin/udevadm": udevadm})
    files["/etc/udev/udev.conf"] = "udev_log=info\n"
    return files


# --------------------------------------------------------------------------
# Initramfs
# --------------------------------------------------------------------------

def base_initramfs(verbose=False, modules=TC_MODULES):
    """(kernel version, boot image, cached base initramfs): busybox, modules,
    /init, the control loop, systemd-udevd."""
    ver, kimage, moddir = linuxguest.kernel_image(verbose)
    mods = linuxguest.resolve_modules(moddir, modules)
    bb = linuxguest.busybox_path()
    udev = udevd_files()
    h = hashlib.sha256()
    for part in (str(TC_FORMAT), ver, TC_INIT, TC_LIB, vmctl.CTL_SH, bb,
                 str(os.stat(bb).st_size), str(os.stat(bb).st_mtime_ns),
                 " ".join(f"{n}={p}" for n, p in mods),
                 hashlib.sha256(b"".join(
                     (d[0] if isinstance(d, tuple) else d.encode())
                     for _, d in sorted(udev.items()))).hexdigest()):
        h.update(part.encode() + b"\0")
    out = os.path.join(linuxguest.cache_dir(),
                       f"tc-initramfs-{ver}-{h.hexdigest()[:16]}.cpio")
    if os.path.exists(out):
        return ver, kimage, out
    t0 = time.monotonic()
    bbdata = _read(bb)
    if not linuxguest._is_static(bbdata):
        raise RuntimeError(f"{bb} is not statically linked: install busybox-static")
    c = Cpio()
    for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc",
              "sys", "tmp", "etc", "etc/rig", "lib", "lib/modules",
              "lib/modules/rig", "lib/x86_64-linux-gnu", "lib64", "lib/systemd",
              "mnt", "root", "run", "rig"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    c.file("bin/busybox", bbdata, 0o755)
    applets = subprocess.run([bb, "--list-full"], check=True, text=True,
                             stdout=subprocess.PIPE).stdout.split()
    for a in applets:
        if a != "bin/busybox" and a not in c.names:
            c.dirs_for(a)
            c.symlink(a, "/bin/busybox")
    c.file("init", TC_INIT.encode(), 0o755)
    c.file("rig/ctl.sh", vmctl.CTL_SH.encode())
    c.file("rig/tc.sh", TC_LIB.encode())
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    c.file("etc/group", b"root:x:0:\n")
    for n, p in mods:
        c.file(f"lib/modules/rig/{n}.ko", linuxguest._module_bytes(p))
    c.file("etc/rig/modules", ("\n".join(n for n, _ in mods) + "\n").encode())
    _add_files(c, udev)
    c.symlink("lib/systemd/systemd-udevd", "/bin/udevadm")
    data = c.finish()
    linuxguest._write_atomic(out, data)
    if verbose:
        print(f"  built {out} ({len(data) >> 10} KiB, {len(mods)} modules: "
              f"{' '.join(n for n, _ in mods)}) in {time.monotonic() - t0:.2f}s",
              flush=True)
    return ver, kimage, out


# --------------------------------------------------------------------------
# Gadgets
# --------------------------------------------------------------------------

# HID report descriptors
BOOT_KEYBOARD_DESC = bytes([
    0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7,
    0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01,
    0x75, 0x08, 0x81, 0x03, 0x95, 0x05, 0x75, 0x01, 0x05, 0x08, 0x19, 0x01,
    0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x03, 0x95, 0x06,
    0x75, 0x08, 0x15, 0x00, 0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65,
    0x81, 0x00, 0xc0])
BOOT_MOUSE_DESC = bytes([
    0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x09, 0x01, 0xa1, 0x00, 0x05, 0x09,
    0x19, 0x01, 0x29, 0x03, 0x15, 0x00, 0x25, 0x01, 0x95, 0x03, 0x75, 0x01,
    0x81, 0x02, 0x95, 0x01, 0x75, 0x05, 0x81, 0x03, 0x05, 0x01, 0x09, 0x30,
    0x09, 0x31, 0x15, 0x81, 0x25, 0x7f, 0x75, 0x08, 0x95, 0x02, 0x81, 0x06,
    0xc0, 0xc0])
# A CTAPHID (FIDO U2F/FIDO2) interface: vendor usage page 0xF1D0, 64-byte
# input and output reports.
FIDO_DESC = bytes([
    0x06, 0xd0, 0xf1, 0x09, 0x01, 0xa1, 0x01, 0x09, 0x20, 0x15, 0x00, 0x26,
    0xff, 0x00, 0x75, 0x08, 0x95, 0x40, 0x81, 0x02, 0x09, 0x21, 0x15, 0x00,
    0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x40, 0x91, 0x02, 0xc0])

VID = 0x1209              # pid.codes; the PIDs below are the rig's own


class Gadget:
    """A configfs gadget: ids, strings and functions (dicts, see the
    *_gadget() makers).  `udc` is set while it exists in the VM."""

    def __init__(self, name, pid, product, functions, vid=VID,
                 serial=None, bcd_device=0x0100):
        self.name = name
        self.vid, self.pid = vid, pid
        self.product = product
        self.functions = functions
        self.serial = serial or f"RIG{pid:04X}"
        self.bcd_device = bcd_device
        self.udc = None
        self.nodes = {}       # function instance -> gadget-side /dev node

    @property
    def vidpid(self):
        return f"{self.vid:04x}:{self.pid:04x}"

    @property
    def path(self):
        return f"/sys/kernel/config/usb_gadget/{self.name}"

    def __repr__(self):
        return f"Gadget({self.name} {self.vidpid} {self.product!r} on {self.udc})"


def _octal(data):
    return "".join(f"\\{b:03o}" for b in data)


def disk_gadget(name="disk", size_mib=32, file=None, ro=False, pid=0x7d15,
                product="Rig Disk", removable=False):
    """Mass storage on a file of the VM (made of random bytes, size_mib,
    unless `file` exists)."""
    return Gadget(name, pid, product, [dict(
        type="mass_storage", inst="disk", file=file or f"/tmp/{name}.img",
        size_mib=size_mib, ro=ro, removable=removable)])


def kbd_mouse_gadget(name="kbdmouse", pid=0x7b42, product="Rig Keyboard Mouse"):
    """A composite HID boot keyboard + boot mouse (stays local by default)."""
    return Gadget(name, pid, product, [
        dict(type="hid", inst="kbd", protocol=1, subclass=1, report_length=8,
             report_desc=BOOT_KEYBOARD_DESC),
        dict(type="hid", inst="mouse", protocol=2, subclass=1, report_length=3,
             report_desc=BOOT_MOUSE_DESC)])


def fido_gadget(name="fido", pid=0x7f1d, product="Rig FIDO Key"):
    """A vendor-page (FIDO) HID: not a boot device, redirected by default."""
    return Gadget(name, pid, product, [
        dict(type="hid", inst="fido", protocol=0, subclass=0, report_length=64,
             report_desc=FIDO_DESC)])


def acm_gadget(name="acm", pid=0x7ac0, product="Rig ACM Serial"):
    return Gadget(name, pid, product, [dict(type="acm", inst="gs0")])


def printer_gadget(name="printer", pid=0x7e47, product="Rig Printer"):
    return Gadget(name, pid, product, [dict(
        type="printer", inst="lp0", q_len=10,
        pnp_string="MFG:Redir;MDL:Rig Printer;CMD:PCL;CLS:PRINTER;")])


def _gadget_create_script(g):
    G = g.path
    lines = [f"G={G}", "mkdir $G",
             f"echo 0x{g.vid:04x} > $G/idVendor",
             f"echo 0x{g.pid:04x} > $G/idProduct",
             f"echo 0x{g.bcd_device:04x} > $G/bcdDevice",
             "echo 0x0200 > $G/bcdUSB",
             "mkdir $G/strings/0x409 $G/configs/c.1 $G/configs/c.1/strings/0x409",
             "echo 'Redir Rig' > $G/strings/0x409/manufacturer",
             f"echo '{g.product}' > $G/strings/0x409/product",
             f"echo '{g.serial}' > $G/strings/0x409/serialnumber",
             "echo rig > $G/configs/c.1/strings/0x409/configuration",
             "echo 250 > $G/configs/c.1/MaxPower"]
    for f in g.functions:
        F = f"$G/functions/{f['type']}.{f['inst']}"
        lines.append(f"mkdir {F}")
        if f["type"] == "mass_storage":
            img = f["file"]
            lines += [f"[ -e {img} ] || dd if=/dev/urandom of={img} bs=1M "
                      f"count={f['size_mib']} 2>/dev/null",
                      f"echo {1 if f['ro'] else 0} > {F}/lun.0/ro",
                      f"echo {1 if f['removable'] else 0} > {F}/lun.0/removable",
                      f"echo {img} > {F}/lun.0/file"]
        elif f["type"] == "hid":
            lines += [f"echo {f['protocol']} > {F}/protocol",
                      f"echo {f['subclass']} > {F}/subclass",
                      f"echo {f['report_length']} > {F}/report_length",
                      f"printf '{_octal(f['report_desc'])}' > {F}/report_desc"]
        elif f["type"] == "printer":
            lines += [f"echo '{f['pnp_string']}' > {F}/pnp_string",
                      f"echo {f['q_len']} > {F}/q_len"]
        lines.append(f"ln -s {F} $G/configs/c.1/")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# The thin-client VM
# --------------------------------------------------------------------------

def agent_path():
    return harness.find_program("REDIR_AGENT", "redir-agent", "agent")


class ThinClient(harness._Proc):
    """The thin-client VM.  hostfwd: VM TCP ports reachable from the host
    (self.fwd[vm_port] = host port on 127.0.0.1).  udev: start
    systemd-udevd at boot (libusb's hotplug needs it; False = a thin
    client without udev).  agent: host path of redir-agent (default
    $REDIR_AGENT or the newest build); usbredirect: also copy upstream's
    usbredirect.  files: {vm path: bytes | str | (bytes, mode)}.
    modules: kernel modules loaded after TC_MODULES (dependencies
    resolved; another base initramfs, cached under its own key).
    netdev_opts: appended to the -netdev user option string.
    extra_args: more QEMU arguments (e.g. an xHCI with QEMU's usb-audio)."""

    kind = "qemu"

    def __init__(self, testdir, name="tc", memory=512, smp=1, hostfwd=(),
                 udev=True, agent=None, usbredirect=False, files=None,
                 cmdline=(), udcs=UDCS, accel_args=None, verbose=True,
                 modules=(), netdev_opts="", extra_args=()):
        super().__init__(testdir, name)
        self.extra_args = list(extra_args)
        self.modules = TC_MODULES + tuple(m for m in modules if m not in TC_MODULES)
        self.netdev_opts = netdev_opts
        self.memory, self.smp = memory, smp
        self.udev = udev
        self.agent_host_path = agent or agent_path()
        self.usbredirect = usbredirect
        self.files = dict(files or {})
        self.cmdline = list(TC_CMDLINE) + [f"dummy_hcd.num={udcs}"] + list(cmdline)
        self.udcs = [f"dummy_udc.{i}" for i in range(udcs)]
        self.accel_args = (accel_args if accel_args is not None
                           else harness.qemu_accel_args(linux_guest=True))
        self.verbose = verbose
        self.fwd = {p: harness.free_port() for p in hostfwd}
        self.console_log = testdir.file(f"{name}-console.log")
        self.dmesg_log = testdir.file(f"{name}-dmesg.log")
        self.stderr_log = testdir.file(f"{name}-qemu.log")
        self.log_path = self.stderr_log
        self.ctl_sock = harness._sock_path(testdir, f"{name}-ctl.sock")
        self.ctl = VmControl(self.ctl_sock, name, on_error=self._error_context,
                             alive=self.alive)
        self.gadgets = {}
        self.agents = []
        self.boot_s = None
        self.kernel_version = None

    def _log(self, msg):
        if self.verbose:
            print(f"[{self.name}] {msg}", flush=True)

    # -- boot -------------------------------------------------------------

    def prepare(self):
        t0 = time.monotonic()
        ver, kimage, base = base_initramfs(self.verbose, self.modules)
        self.kernel_version = ver
        progs = {"/usr/sbin/redir-agent": self.agent_host_path}
        if self.usbredirect:
            ur = shutil.which("usbredirect")
            if not ur:
                raise FileNotFoundError("usbredirect not found: apt-get install "
                                        "usbredirect")
            progs["/usr/bin/usbredirect"] = ur
        files = program_files(progs)
        files.update(self.files)
        c = Cpio()
        _add_files(c, files)
        initrd = self.testdir.file(f"{self.name}-initrd.cpio")
        with open(initrd, "wb") as out, open(base, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
            out.write(c.finish())
        if not harness._qemu_safe(kimage):
            k2 = self.testdir.file(f"{self.name}-kernel")
            shutil.copyfile(kimage, k2)
            kimage = k2
        self.kernel_path, self.initrd_path = kimage, initrd
        self.build_s = time.monotonic() - t0
        self._log(f"kernel {ver}, initrd ({os.path.getsize(initrd) >> 20} MiB) "
                  f"ready in {self.build_s:.2f}s")

    def command_line(self):
        fwd = "".join(f",hostfwd=tcp:127.0.0.1:{h}-:{g}" for g, h in self.fwd.items())
        for p in (self.console_log, self.ctl_sock, self.initrd_path):
            if not harness._qemu_safe(p):
                raise ValueError(f"path unusable by QEMU: {p!r}")
        return [os.environ.get("REDIR_QEMU", "qemu-system-x86_64"),
                "-nodefaults", "-display", "none", "-machine", "q35",
                *self.accel_args, "-m", str(self.memory), "-smp", str(self.smp),
                "-name", self.name, "-no-reboot",
                "-kernel", self.kernel_path, "-initrd", self.initrd_path,
                "-append", " ".join(self.cmdline),
                "-serial", f"file:{self.console_log}",
                "-netdev", f"user,id=n0{fwd}{self.netdev_opts}",
                "-device", "virtio-net-pci,netdev=n0,romfile=",
                *vmctl.qemu_args(self.ctl_sock), *self.extra_args]

    def start(self, timeout=90):
        """Boot; return once the control channel answers (and udevd runs)."""
        if not hasattr(self, "initrd_path"):
            self.prepare()
        args = self.command_line()
        with open(self.stderr_log, "ab") as log:
            log.write(("# " + " ".join(args) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=harness.clean_env(),
                cwd=self.testdir.path,
                preexec_fn=harness._pdeathsig(signal.SIGKILL))
        self.started_at = time.monotonic()
        self.ctl.run("true", timeout=timeout)
        self.boot_s = time.monotonic() - self.started_at
        m = re.search(r"TC-START uptime=([\d.]+)", self.console_text())
        self.guest_start = float(m.group(1)) if m else None
        errs = re.findall(r"TC-ERROR: .*", self.console_text())
        if errs:
            raise ControlError(f"{self.name}: {errs}")
        if self.udev:
            self.start_udevd()
        self._log(f"booted in {self.boot_s:.2f}s (guest uptime {self.guest_start}s"
                  f" at TC-START); " + " ".join(self.accel_args))
        return self

    def console_text(self):
        return harness._read_from(self.console_log, 0).replace("\r", "")

    def _error_context(self):
        out = ["thin-client console tail:", harness.tail(self.console_log, 25)]
        if self.proc is not None and not self.alive():
            out += [f"QEMU exited (rc={self.returncode()}):",
                    harness.tail(self.stderr_log, 10)]
        return "\n".join(out)

    def log_files(self):
        files = [(f"thin client {self.name} console", self.console_log),
                 (f"thin client {self.name} qemu", self.stderr_log),
                 (f"thin client {self.name} kernel log", self.dmesg_log)]
        for a in self.agents:
            files.append((f"thin client {self.name} {a.name} log", a.host_log))
        return files

    def stop(self, timeout=20):
        """Power off (the control loop ends, /init runs poweroff -f)."""
        if self.alive():
            self.ctl.quit()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        self.ctl.close()
        return self.returncode()

    def _cleanup(self):
        if self.alive() and self.ctl.sock is not None:
            try:
                for a in self.agents:
                    a.fetch_log()
                out = self.ctl.run_bytes("dmesg", timeout=5)[1]
                with open(self.dmesg_log, "wb") as f:
                    f.write(out)
            except Exception:
                pass
        self._kill()
        self.ctl.close()

    # -- commands ---------------------------------------------------------

    def run(self, script, timeout=30):
        return self.ctl.run(script, timeout)

    def sh(self, script, timeout=30):
        return self.ctl.sh(script, timeout)

    def put_file(self, path, data, mode=0o644):
        import base64
        if isinstance(data, str):
            data = data.encode()
        b64 = base64.encodebytes(data).decode()
        self.sh(f"mkdir -p {os.path.dirname(path)}\n"
                f"base64 -d > {path} <<'RIG_EOF'\n{b64}RIG_EOF\n"
                f"chmod {mode:o} {path}\n", timeout=60)

    def start_udevd(self):
        self.sh("/lib/systemd/systemd-udevd --daemon --resolve-names=never "
                ">/tmp/udevd.log 2>&1\nwait_until 10 test -e /run/udev/control")
        self.udev = True

    def stop_udevd(self):
        self.sh("killall systemd-udevd 2>/dev/null; wait_until 10 sh -c "
                "'! pidof systemd-udevd >/dev/null'")
        self.udev = False

    # -- gadgets ----------------------------------------------------------

    def add_gadget(self, g, plug=True, timeout=20):
        """Create `g` in configfs on a free UDC; plug it in (and wait until
        the VM's host side has enumerated it) unless plug=False."""
        used = {x.udc for x in self.gadgets.values()}
        free = [u for u in self.udcs if u not in used]
        if not free:
            raise ControlError(f"no free UDC for {g}")
        self.sh(_gadget_create_script(g), timeout=60)
        g.udc = free[0]
        self.gadgets[g.name] = g
        if plug:
            self.plug(g, timeout)
        return g

    def _find_nodes(self, g):
        for f in g.functions:
            F = f"{g.path}/functions/{f['type']}.{f['inst']}"
            if f["type"] == "hid":
                g.nodes[f["inst"]] = "/dev/" + self.sh(f"devname $(cat {F}/dev)").strip()
            elif f["type"] == "acm":
                g.nodes[f["inst"]] = "/dev/ttyGS" + self.sh(f"cat {F}/port_num").strip()
            elif f["type"] == "mass_storage":
                g.nodes[f["inst"]] = f["file"]
            elif f["type"] == "printer":
                g.nodes[f["inst"]] = "/dev/" + self.sh(
                    f"basename $(ls -d /sys/devices/platform/dummy_udc.{g.udc.split('.')[1]}"
                    f"/gadget*/usb_printer_gadget/g_printer* 2>/dev/null || "
                    f"ls -d /sys/class/usb_printer_gadget/g_printer*)").strip()

    def plug(self, g, timeout=20):
        """Bind the gadget to its UDC: the VM's USB host side enumerates it.
        Returns the VM's wall clock (epoch seconds) just before the bind,
        to compare with the agent's log stamps."""
        # busybox date has no %N; adjtimex (read-only) gives microseconds
        out = self.sh("adjtimex | awk '/tv_sec/ {s = $2} /tv_usec/ {u = $2} "
                      "END {printf \"%d.%06d\\n\", s, u}'\n"
                      f"echo {g.udc} > {g.path}/UDC\n"
                      f"wait_until {timeout} usb_dev {g.vid:04x} {g.pid:04x} >/dev/null",
                      timeout=timeout + 10)
        self._find_nodes(g)     # hidg/g_printer nodes exist while bound
        return float(out.split()[0])

    def unplug(self, g, timeout=20):
        """Unbind the gadget from its UDC: a USB unplug."""
        self.sh(f"echo '' > {g.path}/UDC\n"
                f"wait_until {timeout} usb_absent {g.vid:04x} {g.pid:04x}",
                timeout=timeout + 10)

    def remove_gadget(self, g):
        if g.udc and self.usb_dev(g):
            self.unplug(g)
        G = g.path
        script = [f"G={G}"]
        for f in g.functions:
            script.append(f"rm -f $G/configs/c.1/{f['type']}.{f['inst']}")
        script += ["rmdir $G/configs/c.1/strings/0x409 $G/configs/c.1"]
        for f in g.functions:
            script.append(f"rmdir $G/functions/{f['type']}.{f['inst']}")
        script += ["rmdir $G/strings/0x409 $G"]
        self.sh("\n".join(script))
        self.gadgets.pop(g.name, None)
        g.udc = None

    # -- the VM's USB host side -------------------------------------------

    def _ids(self, g):
        if isinstance(g, Gadget):
            return f"{g.vid:04x} {g.pid:04x}"
        return g.replace(":", " ")

    def usb_dev(self, g):
        """sysfs name (e.g. '3-1') of the device, or None if not present."""
        rc, out = self.run(f"usb_dev {self._ids(g)}")
        return out.strip() if rc == 0 and out.strip() else None

    def if_drivers(self, g):
        """{interface ('1.0'): driver name or None} ({} if absent)."""
        out = self.sh(f"d=$(usb_dev {self._ids(g)}) && if_drivers $d || true")
        res = {}
        for item in out.split():
            k, v = item.split("=", 1)
            res[k] = None if v == "-" else v
        return res

    def wait_drivers(self, g, want, timeout=20):
        """Wait until if_drivers(g) satisfies `want` (a dict, or a callable
        taking the dict); return the dict."""
        check = want if callable(want) else (lambda d: d == want)
        deadline = time.monotonic() + timeout
        while True:
            d = self.if_drivers(g)
            if check(d):
                return d
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {g}: interface drivers {d}, "
                                   f"waited {timeout}s for {want}")
            time.sleep(0.1)

    def block_devs(self, g):
        out = self.sh(f"d=$(usb_dev {self._ids(g)}) && block_of $d || true")
        return out.split()

    def proc_status(self, pid):
        """{field: value} of /proc/PID/status; voluntary/nonvoluntary
        context switches summed over all the process's threads."""
        out = self.sh(f"cat /proc/{pid}/status; echo ==; "
                      f"cat /proc/{pid}/task/*/status | grep ctxt_switches")
        head, _, tasks = out.partition("==")
        res = {}
        for line in head.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                res[k.strip()] = v.strip()
        for k in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
            res["all_" + k] = sum(int(l.split(":")[1]) for l in tasks.splitlines()
                                  if l.startswith(k + ":"))
        res["threads"] = tasks.count("nonvoluntary_ctxt_switches")
        return res

    def cpu_seconds(self, pid):
        """utime + stime of a VM process (seconds, USER_HZ 100)."""
        out = self.sh(f"cat /proc/{pid}/stat")
        fields = out.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100.0

    # -- the agent --------------------------------------------------------

    def start_agent(self, config_text, name="agent", **kw):
        a = TcAgent(self, name)
        self.agents.append(a)
        return a.start(config_text, **kw)


class TcAgent:
    """redir-agent (or another program: `argv`) running in the thin client,
    its output in /tmp/NAME.log there (mirrored to the test dir)."""

    def __init__(self, tc, name):
        self.tc = tc
        self.name = name
        self.vm_log = f"/tmp/{name}.log"
        self.host_log = tc.testdir.file(f"{tc.name}-{name}.log")
        self.control_socket = f"/run/{name}.sock"
        self.log = ""
        self.pid = None
        self.rc = None

    def start(self, config_text=None, argv=None, asan_options=DEFAULT_ASAN_OPTIONS,
              extra_args=()):
        """Start redir-agent -f -c CONFIG (or argv); returns self."""
        n = self.name
        if argv is None:
            if "control_socket" not in config_text:
                config_text += f"\n[agent]\ncontrol_socket = {self.control_socket}\n"
            self.tc.put_file(f"/tmp/{n}.ini", config_text)
            argv = ["/usr/sbin/redir-agent", "-f", "-c", f"/tmp/{n}.ini",
                    *extra_args]
        cmd = " ".join(argv)
        self.log = ""
        self.rc = None
        out = self.tc.sh(
            f"rm -f /tmp/{n}.pid /tmp/{n}.rc\n"
            f"setsid sh -c 'ASAN_OPTIONS={asan_options} {cmd} & "
            f"echo $! > /tmp/{n}.pid; wait $!; echo $? > /tmp/{n}.rc' "
            f"</dev/null >{self.vm_log} 2>&1 &\n"
            f"wait_until 10 test -s /tmp/{n}.pid && cat /tmp/{n}.pid")
        self.pid = int(out.strip())
        return self

    def fetch_log(self):
        """The whole log so far (new bytes fetched from the VM)."""
        if self.tc.alive():
            rc, out = self.tc.ctl.run_bytes(
                f"tail -c +{len(self.log.encode()) + 1} {self.vm_log} 2>/dev/null")
            self.log += out.decode("utf-8", "replace")
            with open(self.host_log, "w") as f:
                f.write(self.log)
        return self.log

    def log_offset(self):
        return len(self.fetch_log())

    def log_stamp(self, regex, start_offset=0):
        """Epoch seconds of the first log line at or after start_offset
        matching regex: the agent stamps its lines with the VM's wall clock
        (local time, which is UTC there), in milliseconds."""
        m = re.compile(r"(?m)^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) .*" +
                       regex).search(self.fetch_log(), start_offset)
        assert m, f"no /{regex}/ in the {self.name} log"
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
        return t.replace(tzinfo=datetime.timezone.utc).timestamp()

    def log_text(self, start_offset=0):
        return self.fetch_log()[start_offset:]

    def exited(self):
        if self.rc is not None:
            return True
        rc, out = self.tc.run(f"cat /tmp/{self.name}.rc 2>/dev/null")
        if rc == 0 and out.strip():
            self.rc = int(out.strip())
            return True
        return False

    def alive(self):
        return not self.exited()

    def wait_log(self, regex, timeout=20, start_offset=0):
        rx = re.compile(regex, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.exited()
            m = rx.search(self.fetch_log(), start_offset or 0)
            if m:
                return m
            if exited:
                raise harness.ProcessFailed(
                    f"{self.name} exited (rc={self.rc}) before logging "
                    f"/{regex}/; log tail:\n{self._tail()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for "
                                   f"/{regex}/ in the {self.name} log; tail:\n"
                                   f"{self._tail()}")
            time.sleep(0.2)

    def _tail(self, n=30):
        return "\n".join(self.log.splitlines()[-n:])

    def signal(self, sig):
        self.tc.sh(f"kill -{int(sig)} {self.pid}")

    def wait_exit(self, timeout=10):
        rc, _ = self.tc.run(f"wait_until {timeout} test -e /tmp/{self.name}.rc",
                            timeout=timeout + 10)
        if not self.exited():
            raise TimeoutError(f"{self.name} did not exit within {timeout}s")
        self.fetch_log()
        return self.rc

    def stop(self, timeout=10, expect_rc=0, sig=None):
        """Signal (SIGTERM), wait, check rc and the log for sanitizer
        reports.  Returns the exit code."""
        sig = sig or signal.SIGTERM
        if not self.exited():
            self.signal(sig)
            try:
                self.wait_exit(timeout)
            except TimeoutError:
                self.signal(signal.SIGKILL)
                self.wait_exit(10)
                raise harness.ProcessFailed(f"{self.name} did not exit within "
                                            f"{timeout}s of signal {int(sig)}")
        if expect_rc is not None and self.rc != expect_rc:
            raise harness.ProcessFailed(f"{self.name} exited with {self.rc}, "
                                        f"expected {expect_rc}; log tail:\n"
                                        f"{self._tail()}")
        self.assert_clean_log()
        return self.rc

    def kill(self):
        """SIGKILL (a crash); returns the exit code (137)."""
        self.signal(signal.SIGKILL)
        return self.wait_exit(10)

    def assert_clean_log(self):
        text = self.fetch_log()
        m = harness.SANITIZER_PATTERNS.search(text)
        if m:
            raise AssertionError(f"sanitizer report in the {self.name} log:\n"
                                 f"{text[max(0, m.start() - 2000):m.start() + 6000]}")

    def status(self):
        """`redir-agent status --json` of this agent, parsed."""
        out = self.tc.sh(f"ASAN_OPTIONS=detect_leaks=0 /usr/sbin/redir-agent "
                         f"status --json --socket {self.control_socket}")
        return json.loads(out)

    def devices(self):
        """{"vid:pid": device dict} from status(): decision ("local",
        "redirect rw", ...), reason, session (None or dict with state)."""
        return {f"{d['vid']}:{d['pid']}": d
                for d in self.status()["usb"]["devices"]}


# --------------------------------------------------------------------------
# The VDI VM: the Linux-guest rig with a control channel
# --------------------------------------------------------------------------

VDI_LIB = linuxguest.RIG_SH + vmctl.COMMON_LIB + r"""
# hidraw_of VID PID: hidraw nodes of the device with these ids (upper case)
hidraw_of() {
    for _h in /sys/class/hidraw/hidraw*; do
        [ -e "$_h" ] || continue
        grep -q "HID_ID=.*:0000$1:0000$2" "$_h/device/uevent" && echo "${_h##*/}"
    done
}
"""


class VdiGuest(LinuxGuest):
    """The VDI VM: a LinuxGuest (usb-redir slots on 127.0.0.1) whose script
    serves the control channel, so a test can run commands in it at any
    time: vdi.sh("wait_disk 30").  poweroff() ends it cleanly; kill()
    SIGKILLs QEMU."""

    def __init__(self, testdir, slots=(), name="vdi", modules=(), files=None,
                 extra_args=(), **kw):
        self.ctl_sock = harness._sock_path(testdir, f"{name}-ctl.sock")
        all_files = {"/rig/ctl.sh": vmctl.CTL_SH, "/rig/vdi.sh": VDI_LIB}
        all_files.update(files or {})
        super().__init__(
            testdir, ". /rig/ctl.sh; ctl_serve /rig/vdi.sh", slots=slots,
            name=name, files=all_files,
            modules=("virtio_pci", "virtio_console") + tuple(modules),
            extra_args=vmctl.qemu_args(self.ctl_sock) + list(extra_args), **kw)
        self.ctl = VmControl(self.ctl_sock, name, on_error=self._ctx,
                             alive=lambda: self.qemu is not None and self.qemu.alive())

    def _ctx(self):
        if self.qemu is None:
            return ""
        return "VDI console tail:\n" + harness.tail(self.qemu.serial_log, 25)

    def start(self, timeout=90):
        super().start()
        self.ctl.run("true", timeout=timeout)
        self.boot_s = self._elapsed()
        self._log(f"control channel ready after {self.boot_s:.2f}s")
        return self

    def run(self, script, timeout=30):
        return self.ctl.run(script, timeout)

    def sh(self, script, timeout=30):
        return self.ctl.sh(script, timeout)

    def poweroff(self, timeout=30):
        self.ctl.quit()
        res = self.wait_done(timeout)
        self.ctl.close()
        return res

    def kill(self):
        self.qemu.kill()
        self.ctl.close()


# --------------------------------------------------------------------------
# Self-check: the rig alone
# --------------------------------------------------------------------------

def selftest(td):
    t0 = time.monotonic()
    base_initramfs(verbose=True)
    print(f"  artifacts ready in {time.monotonic() - t0:.2f}s")
    tc = ThinClient(td, hostfwd=(7000,)).start()
    out = tc.sh("uname -r; cut -d' ' -f1 /proc/modules | sort | tr '\\n' ' '; echo;"
                " ls /sys/class/udc; ip addr show eth0 | grep 'inet '")
    print(out)
    assert tc.kernel_version in out, out
    # every gadget kind binds its host driver
    disk = tc.add_gadget(disk_gadget())
    kbd = tc.add_gadget(kbd_mouse_gadget())
    acm = tc.add_gadget(acm_gadget())
    lp = tc.add_gadget(printer_gadget())
    fido = tc.add_gadget(fido_gadget())
    assert tc.wait_drivers(disk, {"1.0": "usb-storage"}), disk
    tc.sh("wait_until 10 test -n \"$(block_of $(usb_dev 1209 7d15))\"")
    print("drivers:", {g.name: tc.if_drivers(g) for g in (disk, kbd, acm, lp, fido)})
    print("nodes:", {g.name: g.nodes for g in (disk, kbd, acm, lp, fido)})
    print(tc.sh("ls /dev/sd* /dev/ttyACM* /dev/ttyGS* /dev/usb/ /dev/hidg* "
                "/dev/g_printer* /dev/input/ /dev/bus/usb/*"))
    tc.unplug(disk)
    assert tc.usb_dev(disk) is None
    tc.plug(disk)
    tc.wait_drivers(disk, {"1.0": "usb-storage"})
    # the host's loopback at 10.0.2.2
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = []

    def serve():
        c, _ = srv.accept()
        c.settimeout(10)
        got.append(c.recv(100))
        c.close()
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    tc.sh(f"echo hello-from-tc | timeout 10 nc 10.0.2.2 {srv.getsockname()[1]}")
    th.join(10)
    srv.close()
    assert got and got[0].startswith(b"hello-from-tc"), got
    # the agent starts, lists devices, stops
    lst = tc.sh("ASAN_OPTIONS=detect_leaks=0 redir-agent --list-devices -c /dev/null")
    print(lst)
    a = tc.start_agent("[agent]\nlog_level = debug\n[usb]\nconnect = 10.0.2.2:9\n")
    a.wait_log(r"Rig Disk.*redirect")
    a.wait_log(r"Rig Keyboard Mouse.*stays local")
    print(a.fetch_log())
    a.stop()
    t = time.monotonic()
    n = 20
    for _ in range(n):
        tc.run("true")
    print(f"control round trip {(time.monotonic() - t) / n * 1000:.0f} ms")
    tc.stop()
    print(f"boot {tc.boot_s:.2f}s; total {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    if "--build" in sys.argv:
        t = time.monotonic()
        print(base_initramfs(verbose=True), f"{time.monotonic() - t:.2f}s")
        sys.exit(0)
    harness.main(selftest, name="thinclient_selftest")
