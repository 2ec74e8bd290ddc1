#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Linux-guest end-to-end rig: boot a tiny Linux in QEMU that runs a test
script against the USB devices redirected into it, and collect its results.

    guest = LinuxGuest(td, SCRIPT, slots=[("server", port)], files={...})
    guest.start()                      # QEMU runs; the agent may connect later
    res = guest.wait_done(timeout=150) # GuestResult: rc, results, timings
    res.require_ok()                   # raise (with the serial log) if rc != 0

The guest
  * kernel: Debian's linux-image-*-amd64 package (the one linux-image-amd64
    depends on in the apt archive), fetched with `apt-get download` and
    unpacked with `dpkg-deb -x` into a cache shared by the build trees
    (fetch_kernel(); never installed on the machine), booted as the
    uncompressed vmlinux (PVH entry) extracted from vmlinuz at unpack time
    (REDIR_GUEST_VMLINUZ=1 boots the bzImage instead);
  * initramfs: busybox-static + the modules for xHCI, usb-storage and sd, in
    dependency order from modules.dep (built-in ones skipped, .ko.xz/.gz/.zst
    decompressed at build time), /dev/console, /init and /rig.sh.  Written
    in cpio "newc" format by this module and cached, keyed by kernel version,
    module list and a hash of the init scripts and busybox.  The per-test
    part (/test.sh, extra files) is a second small cpio archive appended to
    the cached one (the kernel unpacks concatenated archives), so a new test
    script never rebuilds the base.
  * /init mounts proc/sys/devtmpfs/tmpfs, loads the modules, prints
    ``GUEST-START``, runs ``( . /rig.sh; . /test.sh )`` and prints the
    script's ``RESULT: key=value`` lines as they come, then
    ``RESULT: rig.*`` statistics and ``GUEST-DONE rc=N``, and powers off
    (``poweroff -f``).  On rc != 0 (or dmesg=True) the kernel log is dumped
    between ``GUEST-DMESG-BEGIN`` / ``GUEST-DMESG-END``.
  * helpers in /rig.sh for test scripts (busybox ash): ``result KEY VALUE``,
    ``note TEXT``, ``fail TEXT``, ``now`` (uptime, seconds, 0.01 s
    resolution), ``elapsed T0 [T1]``, ``mib_per_s BYTES SECONDS``,
    ``wait_disk [TIMEOUT_S]`` (prints e.g. ``sda`` once /sys/block/sd* has a
    non-zero size), ``disk_bytes DEV``, ``dmesg_count REGEX``.

QEMU: the harness's Qemu (q35, qemu-xhci, usb-redir slots, monitor, serial
file) with -kernel/-initrd/-append, -no-reboot, 256 MiB and
harness.qemu_accel_args(linux_guest=True): KVM when usable, otherwise (no
/dev/kvm, or the software kvm_pvm on which the Debian kernel crashes)
``-accel tcg,thread=multi -cpu max``.

Environment knobs:
  REDIR_GUEST_CACHE    cache directory (default: $XDG_CACHE_HOME or
                       ~/.cache, /redir-agent-guest); ctest sets it to the
                       build tree
  REDIR_KERNEL_CACHE   unpacked kernel packages (default: $XDG_CACHE_HOME or
                       ~/.cache, /redir-agent-kernel)
  REDIR_GUEST_KERNEL   kernel package: VER (e.g. 6.1.0-57-amd64) for
                       linux-image-VER, or the path of a linux-image-*.deb
  REDIR_GUEST_VMLINUZ  if set, boot the compressed bzImage
  REDIR_GUEST_SMP      vCPUs (default 1)

Command line:
    linuxguest.py            rig self-check (boots; no USB device, no agent)
    linuxguest.py --build    only build/refresh the cached artifacts
    linuxguest.py --kernel   only fetch/unpack the kernel; print its tree

Standard library only.
"""

import glob
import gzip
import hashlib
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "e2e")
if E2E not in sys.path:
    sys.path.insert(0, E2E)
import harness  # noqa: E402

# Bump when the initramfs layout changes (part of the cache key).
RIG_FORMAT = 1

# What the guest needs; their dependencies come from modules.dep.
TARGET_MODULES = ("sd_mod", "xhci_pci", "usb_storage")

DEFAULT_CMDLINE = (
    "console=ttyS0", "quiet", "panic=-1", "rdinit=/init",
    # usb-storage waits delay_use (1 s) before scanning a new device
    # (passed to insmod by /init).
    "usb_storage.delay_use=0",
    "8250.nr_uarts=1", "i8042.noaux", "i8042.nokbd", "i8042.nopnp",
    "mitigations=off", "random.trust_cpu=on",
)

START_MARK = "GUEST-START"
DONE_RE = re.compile(r"GUEST-DONE rc=(-?\d+)")
RESULT_RE = re.compile(r"RESULT: ([A-Za-z0-9_.:-]+)=(.*)$")


class GuestError(AssertionError):
    """The guest failed: crashed, timed out, or its script returned != 0."""


# --------------------------------------------------------------------------
# Guest-side scripts
# --------------------------------------------------------------------------

INIT_SCRIPT = r"""#!/bin/sh
# redir-agent Linux-guest rig: /init
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=80% tmpfs /tmp
# No modprobe in here: make the kernel's request_module() fail at once.
echo > /proc/sys/kernel/modprobe
echo "GUEST-INIT uptime=$(cut -d' ' -f1 /proc/uptime)"
# Like modprobe: MODULE.PARAM=VALUE words of the kernel command line become
# insmod parameters (the kernel applies them to built-in code only).
cmdline=$(cat /proc/cmdline)
for m in $(cat /etc/rig/modules); do
    args=""
    for w in $cmdline; do
        case "$w" in "$m".*) args="$args ${w#"$m".}" ;; esac
    done
    insmod "/lib/modules/rig/$m.ko" $args || echo "GUEST-ERROR: insmod $m failed"
done
echo "GUEST-START uptime=$(cut -d' ' -f1 /proc/uptime)"
( . /rig.sh; . /test.sh ) </dev/null
rc=$?
if [ "$rc" != 0 ] || [ -e /etc/rig/dmesg ]; then
    echo "GUEST-DMESG-BEGIN"
    dmesg | tail -n 150
    echo "GUEST-DMESG-END"
fi
echo "RESULT: rig.usb_resets=$(dmesg | grep -c 'reset .*USB device')"
echo "RESULT: rig.io_errors=$(dmesg | grep -c -i 'I/O error')"
echo "RESULT: rig.end_uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
echo "GUEST-DONE rc=$rc"
poweroff -f
sleep 10
echo o > /proc/sysrq-trigger
"""

RIG_SH = r"""# redir-agent Linux-guest rig: helpers sourced before /test.sh
result() { k=$1; shift; echo "RESULT: $k=$*"; }
note() { echo "GUEST: $*"; }
fail() { echo "GUEST-FAIL: $*"; exit 1; }
now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.2f", b - a }'; }
mib_per_s() {
    awk -v n="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 0.01; printf "%.1f", n / 1048576 / s }'
}
disk_bytes() { echo $(( $(cat /sys/block/$1/size) * 512 )); }
dmesg_count() { dmesg | grep -c -E "$1"; }
# wait_disk [TIMEOUT_S]: print the first sd* block device with a size.
wait_disk() {
    _t=$(( ${1:-60} * 10 ))
    while [ $_t -gt 0 ]; do
        for _d in /sys/block/sd*; do
            [ -e "$_d/size" ] || continue
            if [ "$(cat $_d/size)" != 0 ] && [ -b "/dev/${_d##*/}" ]; then
                echo "${_d##*/}"
                return 0
            fi
        done
        usleep 100000
        _t=$(( _t - 1 ))
    done
    return 1
}
"""


# --------------------------------------------------------------------------
# cpio "newc"
# --------------------------------------------------------------------------

class Cpio:
    """Writer of a cpio newc archive (what the kernel's initramfs takes)."""

    def __init__(self):
        self.parts = []
        self.ino = 1
        self.names = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        name = name.lstrip("/")
        if name in self.names:
            raise ValueError(f"duplicate cpio entry {name!r}")
        self.names.add(name)
        nb = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(nb), 0)
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.parts.append(hdr + nb + b"\0" * (-(len(hdr) + len(nb)) % 4))
        self.parts.append(data + b"\0" * (-len(data) % 4))

    def dir(self, name, mode=0o755):
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def file(self, name, data, mode=0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor, mode=0o600):
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def dirs_for(self, path):
        """Create the missing parent directories of `path`."""
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.names:
                self.dir(d)

    def finish(self):
        self._entry("TRAILER!!!", 0)
        data = b"".join(self.parts)
        return data + b"\0" * (-len(data) % 512)


# --------------------------------------------------------------------------
# Kernel and modules
# --------------------------------------------------------------------------

def cache_dir():
    d = os.environ.get("REDIR_GUEST_CACHE")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "redir-agent-guest")
    os.makedirs(d, exist_ok=True)
    return d


# The guest kernel is Debian's linux-image-*-amd64 as a *package file*:
# fetched with `apt-get download` (no root needed) and unpacked with
# `dpkg-deb -x` into a cache, never installed (the test machine must not get
# a new boot kernel).  Both rigs (this one and tests/thinclient) use it.

KERNEL_META_PACKAGE = "linux-image-amd64"


class KernelTree:
    """An unpacked kernel package: version (uname -r), vmlinuz, vmlinux (the
    uncompressed ELF, or None), modules dir (with modules.dep), package and
    package version, the tree's root."""

    def __init__(self, root):
        self.root = root
        with open(os.path.join(root, "rig-kernel")) as f:
            info = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        self.package = info["package"]
        self.package_version = info["version"]
        self.version = info["release"]
        self.vmlinuz = os.path.join(root, "boot", f"vmlinuz-{self.version}")
        v = os.path.join(root, "boot", f"vmlinux-{self.version}")
        self.vmlinux = v if os.path.exists(v) else None
        self.moddir = os.path.join(root, "lib", "modules", self.version)

    def __repr__(self):
        return f"KernelTree({self.package} {self.package_version}: {self.root})"


def kernel_cache_dir():
    """Where unpacked kernel packages live: $REDIR_KERNEL_CACHE, else
    $XDG_CACHE_HOME or ~/.cache, /redir-agent-kernel.  Shared by every build
    tree (one tree is ~400 MiB), keyed by package name and version."""
    d = os.environ.get("REDIR_KERNEL_CACHE")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "redir-agent-kernel")
    os.makedirs(d, exist_ok=True)
    return d


def _apt(args):
    env = dict(os.environ, LC_ALL="C", LANG="C")
    env.pop("LD_PRELOAD", None)
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (rc={r.returncode}): "
                           f"{r.stderr.strip()[-500:]}")
    return r.stdout


def _apt_show(pkg):
    """{field: value} of the candidate version of `pkg` in the archive."""
    out = _apt(["apt-cache", "show", "--no-all-versions", pkg])
    fields = {}
    for line in out.splitlines():
        m = re.match(r"([A-Za-z-]+):\s*(.*)$", line)
        if m:
            fields.setdefault(m.group(1), m.group(2))
    if "Version" not in fields:
        raise RuntimeError(f"the archive has no {pkg} (apt-get update?)")
    return fields


def _apt_lists_stamp():
    """Changes whenever apt-get update brings new package lists."""
    st = [os.stat(p).st_mtime_ns for p in
          ["/var/lib/apt/lists"] + glob.glob("/etc/apt/sources.list*")]
    return f"{max(st)}:{os.environ.get('REDIR_GUEST_KERNEL', '')}"


def apt_kernel_package():
    """(package, version) the archive offers: the linux-image-*-amd64 that
    linux-image-amd64 depends on, or linux-image-$REDIR_GUEST_KERNEL.

    apt-cache takes ~2 s here (no pkgcache.bin), so the answer is kept
    in the kernel cache until the package lists change."""
    memo = os.path.join(kernel_cache_dir(), "apt-answer")
    stamp = _apt_lists_stamp()
    try:
        with open(memo) as f:
            old_stamp, pkg, ver = f.read().split()
        if old_stamp == stamp:
            return pkg, ver
    except (OSError, ValueError):
        pass
    want = os.environ.get("REDIR_GUEST_KERNEL", "")
    if want:
        pkg = want if want.startswith("linux-image-") else f"linux-image-{want}"
        ver = _apt_show(pkg)["Version"]
    else:
        # "Depends: linux-image-6.1.0-57-amd64 (= 6.1.192-3)"
        dep = _apt_show(KERNEL_META_PACKAGE).get("Depends", "")
        m = re.search(r"(linux-image-\d\S*-amd64) \(= ([^)\s]+)\)", dep)
        if not m:
            raise RuntimeError(f"{KERNEL_META_PACKAGE} depends on no "
                               f"linux-image-*-amd64 of an exact version: {dep!r}")
        pkg, ver = m.group(1), m.group(2)
    _write_atomic(memo, f"{stamp} {pkg} {ver}\n".encode())
    return pkg, ver


def _deb_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", deb, field], check=True, text=True,
                          stdout=subprocess.PIPE).stdout.strip()


def _tree_name(pkg, ver):
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", f"{pkg}_{ver}")


def _unpack_kernel(deb, pkg, ver, final, verbose):
    """dpkg-deb -x, depmod -b, vmlinux extraction; atomically to `final`."""
    t0 = time.monotonic()
    tmp = f"{final}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    subprocess.run(["dpkg-deb", "-x", deb, tmp], check=True)
    releases = sorted(os.listdir(os.path.join(tmp, "lib", "modules")))
    if len(releases) != 1:
        raise RuntimeError(f"{deb}: expected one lib/modules/VER, got {releases}")
    release = releases[0]
    depmod = shutil.which("depmod") or "/sbin/depmod"
    if not os.path.exists(depmod):
        raise FileNotFoundError("depmod not found: apt-get install kmod")
    subprocess.run([depmod, "-b", tmp, release], check=True)
    vmlinuz = os.path.join(tmp, "boot", f"vmlinuz-{release}")
    elf = extract_vmlinux(vmlinuz)
    if elf is not None:
        _write_atomic(os.path.join(tmp, "boot", f"vmlinux-{release}"), elf)
    with open(os.path.join(tmp, "rig-kernel"), "w") as f:
        f.write(f"package={pkg}\nversion={ver}\nrelease={release}\n")
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    if verbose:
        print(f"  unpacked {pkg} {ver} ({release}) into {final} in "
              f"{time.monotonic() - t0:.1f}s", flush=True)


def fetch_kernel(verbose=False):
    """The guest kernel as a KernelTree, fetched and unpacked on first use.

    The package is the linux-image-*-amd64 that linux-image-amd64 depends on
    in the apt archive (REDIR_GUEST_KERNEL=VER or =linux-image-VER picks
    another; =/path/to/linux-image-*.deb uses that file).  `apt-get
    download` needs no root and installs nothing.  The tree is cached under
    kernel_cache_dir() as PACKAGE_VERSION/ (boot/vmlinuz, boot/vmlinux,
    lib/modules/VER with modules.dep from `depmod -b`).  Concurrent callers
    are serialized by a lock file.  Without apt (no package lists, offline)
    the newest cached tree is used."""
    import fcntl
    cache = kernel_cache_dir()
    want = os.environ.get("REDIR_GUEST_KERNEL", "")
    deb = None
    if want.endswith(".deb"):
        deb = os.path.abspath(want)
        pkg, ver = _deb_field(deb, "Package"), _deb_field(deb, "Version")
    else:
        try:
            pkg, ver = apt_kernel_package()
        except (RuntimeError, OSError) as e:
            trees = [d for d in glob.glob(os.path.join(cache, "linux-image-*"))
                     if os.path.exists(os.path.join(d, "rig-kernel"))]
            if not trees or want:
                raise FileNotFoundError(
                    f"no guest kernel: {e}; the rig fetches Debian's kernel "
                    f"package with apt-get download (needs apt package lists: "
                    f"apt-get update), or set REDIR_GUEST_KERNEL=/path/to/"
                    f"linux-image-*.deb") from None
            tree = KernelTree(max(trees, key=os.path.getmtime))
            if verbose:
                print(f"  apt not usable ({e}); using cached {tree}", flush=True)
            return tree
    final = os.path.join(cache, _tree_name(pkg, ver))
    stamp = os.path.join(final, "rig-kernel")
    if not os.path.exists(stamp):
        with open(os.path.join(cache, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.path.exists(stamp):
                dl = os.path.join(cache, f"download.{os.getpid()}")
                os.makedirs(dl, exist_ok=True)
                try:
                    if deb is None:
                        t0 = time.monotonic()
                        env = dict(os.environ, LC_ALL="C")
                        env.pop("LD_PRELOAD", None)
                        args = ["apt-get", "download", "-q"]
                        if os.getuid() == 0:
                            # root: download in place instead of as _apt
                            args += ["-o", "APT::Sandbox::User=root"]
                        r = subprocess.run(args + [f"{pkg}={ver}"], cwd=dl,
                                           env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True)
                        debs = glob.glob(os.path.join(dl, "*.deb"))
                        if r.returncode != 0 or len(debs) != 1:
                            raise RuntimeError(f"apt-get download {pkg}={ver} "
                                               f"failed:\n{r.stdout[-1500:]}")
                        deb = debs[0]
                        if verbose:
                            print(f"  downloaded {os.path.basename(deb)} "
                                  f"({os.path.getsize(deb) >> 20} MiB) in "
                                  f"{time.monotonic() - t0:.1f}s", flush=True)
                    _unpack_kernel(deb, pkg, ver, final, verbose)
                finally:
                    shutil.rmtree(dl, ignore_errors=True)
    os.utime(stamp)            # last use, for pruning
    _prune_kernels(cache, final)
    return KernelTree(final)


def _prune_kernels(cache, keep, max_idle_s=3 * 86400):
    """Remove other packages' trees unused for max_idle_s (a new kernel
    package every few weeks would otherwise add ~400 MiB each time)."""
    now = time.time()
    for d in glob.glob(os.path.join(cache, "linux-image-*")):
        if d == keep or ".tmp" in os.path.basename(d):
            continue
        st = os.path.join(d, "rig-kernel")
        try:
            if now - os.path.getmtime(st) > max_idle_s:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def find_kernel():
    """(version, vmlinuz path, modules dir) of the guest kernel."""
    k = fetch_kernel()
    return k.version, k.vmlinuz, k.moddir


def _modname(s):
    return os.path.basename(s).split(".ko")[0].replace("-", "_")


def resolve_modules(moddir, targets=TARGET_MODULES):
    """[(name, path)] to insmod in order for `targets`, dependencies first;
    built-in modules are left out.  Raises if one is neither."""
    deps, paths = {}, {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            if ":" not in line:
                continue
            mod, rest = line.split(":", 1)
            n = _modname(mod)
            paths[n] = os.path.join(moddir, mod)
            deps[n] = [_modname(d) for d in rest.split()]
    builtin = set()
    try:
        with open(os.path.join(moddir, "modules.builtin")) as f:
            builtin = {_modname(line.strip()) for line in f if line.strip()}
    except OSError:
        pass
    softpre = {}
    try:
        with open(os.path.join(moddir, "modules.softdep")) as f:
            for line in f:
                m = re.match(r"softdep (\S+) pre: (.*?)(?: post:.*)?$", line.strip())
                if m:
                    softpre[_modname(m.group(1))] = [
                        _modname(x) for x in m.group(2).split()]
    except OSError:
        pass
    order, seen = [], set()

    def visit(n, chain):
        if n in seen:
            return
        if n in chain:
            raise RuntimeError(f"module dependency loop: {chain + [n]}")
        if n not in paths:
            if n in builtin:
                seen.add(n)
                return
            raise FileNotFoundError(f"kernel module {n} is neither in {moddir} "
                                    f"nor built in")
        # Soft pre-dependencies that are plain module names (not aliases).
        for d in softpre.get(n, []) + deps[n]:
            if d in paths or d in builtin or d in deps.get(n, []):
                visit(d, chain + [n])
        seen.add(n)
        order.append((n, paths[n]))
    for t in targets:
        visit(_modname(t), [])
    return order


def _module_bytes(path):
    if path.endswith(".xz"):
        return lzma.decompress(_read(path))
    if path.endswith(".gz"):
        return gzip.decompress(_read(path))
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dcq", path], check=True,
                              stdout=subprocess.PIPE).stdout
    return _read(path)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write_atomic(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def extract_vmlinux(vmlinuz):
    """The uncompressed ELF vmlinux inside a bzImage (xz, gzip or zstd
    payload; like the kernel's scripts/extract-vmlinux), or None."""
    data = _read(vmlinuz)
    tries = [
        (b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(b)),
        (b"\x1f\x8b\x08", lambda b: zlib.decompressobj(31).decompress(b)),
        (b"\x28\xb5\x2f\xfd", lambda b: subprocess.run(
            ["zstd", "-dcq"], input=b, stdout=subprocess.PIPE).stdout),
    ]
    for magic, fn in tries:
        pos = data.find(magic)
        while pos >= 0:
            try:
                out = fn(data[pos:])
            except Exception:
                out = b""
            if out[:4] == b"\x7fELF":
                return out
            pos = data.find(magic, pos + 1)
    return None


def kernel_image(verbose=False):
    """(version, path to boot, modules dir): the uncompressed vmlinux that
    fetch_kernel() extracted (or the bzImage with REDIR_GUEST_VMLINUZ=1, or
    if no ELF payload was found)."""
    k = fetch_kernel(verbose)
    if os.environ.get("REDIR_GUEST_VMLINUZ") or k.vmlinux is None:
        return k.version, k.vmlinuz, k.moddir
    return k.version, k.vmlinux, k.moddir


def busybox_path():
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.isfile(p):
            return p
    raise FileNotFoundError("busybox not found: apt-get install busybox-static")


def base_initramfs(verbose=False, extra_modules=()):
    """(kernel version, boot image path, cached base initramfs path).

    extra_modules: more modules to load (e.g. "sg"), dependencies resolved."""
    ver, kimage, moddir = kernel_image(verbose)
    mods = resolve_modules(moddir, tuple(TARGET_MODULES) + tuple(extra_modules))
    bb = busybox_path()
    bst = os.stat(bb)
    h = hashlib.sha256()
    for part in (str(RIG_FORMAT), ver, INIT_SCRIPT, RIG_SH, bb,
                 str(bst.st_size), str(bst.st_mtime_ns),
                 " ".join(f"{n}={p}" for n, p in mods)):
        h.update(part.encode() + b"\0")
    out = os.path.join(cache_dir(), f"initramfs-{ver}-{h.hexdigest()[:16]}.cpio")
    if os.path.exists(out):
        return ver, kimage, out
    t0 = time.monotonic()
    bbdata = _read(bb)
    if not _is_static(bbdata):
        raise RuntimeError(f"{bb} is not statically linked: install busybox-static")
    c = Cpio()
    for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc",
              "sys", "tmp", "etc", "etc/rig", "lib", "lib/modules",
              "lib/modules/rig", "mnt", "root", "run"):
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
    c.file("init", INIT_SCRIPT.encode(), 0o755)
    c.file("rig.sh", RIG_SH.encode(), 0o644)
    for n, p in mods:
        c.file(f"lib/modules/rig/{n}.ko", _module_bytes(p))
    c.file("etc/rig/modules", ("\n".join(n for n, _ in mods) + "\n").encode())
    c.file("etc/rig/kernel", (ver + "\n").encode())
    data = c.finish()
    _write_atomic(out, data)
    if verbose:
        print(f"  built {out} ({len(data) >> 10} KiB, {len(mods)} modules: "
              f"{' '.join(n for n, _ in mods)}) in {time.monotonic() - t0:.2f}s",
              flush=True)
    return ver, kimage, out


def _is_static(data):
    """True if the ELF64 image `data` has no PT_INTERP (program loader)."""
    if data[:5] != b"\x7fELF\x02":
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3
               for i in range(phnum))


def test_archive(script, files=None, dmesg=False):
    """The per-test cpio appended to the base: /test.sh and `files`
    ({guest path: bytes | str | (bytes, mode)})."""
    c = Cpio()
    c.file("test.sh", script.encode(), 0o755)
    for path, data in sorted((files or {}).items()):
        mode = 0o644
        if isinstance(data, tuple):
            data, mode = data
        if isinstance(data, str):
            data = data.encode()
        c.dirs_for(path)
        c.file(path, data, mode)
    if dmesg:
        c.file("etc/rig/dmesg", b"")
    return c.finish()


# --------------------------------------------------------------------------
# Running a guest
# --------------------------------------------------------------------------

class GuestResult:
    """What a guest run produced.

    rc            exit status of the test script
    results       {key: value} from ``RESULT: key=value`` (last one wins)
    result_list   [(key, value)] in order
    lines         the serial console, line by line
    boot_s        host seconds from QEMU start to GUEST-START
    total_s       host seconds from QEMU start to GUEST-DONE
    guest_start   guest uptime at GUEST-START (seconds)
    """

    def __init__(self, text, boot_s, total_s):
        self.lines = [l.rstrip("\r") for l in text.splitlines()]
        self.text = "\n".join(self.lines)
        self.results, self.result_list = {}, []
        self.rc = None
        self.guest_start = None
        for line in self.lines:
            m = RESULT_RE.search(line)
            if m:
                self.results[m.group(1)] = m.group(2).strip()
                self.result_list.append((m.group(1), m.group(2).strip()))
            m = DONE_RE.search(line)
            if m:
                self.rc = int(m.group(1))
            m = re.search(START_MARK + r" uptime=([\d.]+)", line)
            if m:
                self.guest_start = float(m.group(1))
        self.boot_s = boot_s
        self.total_s = total_s

    def __getitem__(self, key):
        if key not in self.results:
            raise GuestError(f"guest printed no RESULT {key!r}; serial tail:\n"
                             f"{self.tail()}")
        return self.results[key]

    def get(self, key, default=None):
        return self.results.get(key, default)

    def float(self, key):
        return float(self[key])

    def dmesg(self):
        """Lines of the dumped kernel log ([] if not dumped)."""
        try:
            a = self.lines.index("GUEST-DMESG-BEGIN")
            b = self.lines.index("GUEST-DMESG-END", a)
        except ValueError:
            return []
        return self.lines[a + 1:b]

    def console(self):
        """The console lines outside the dumped kernel log."""
        d = self.dmesg()
        if not d:
            return list(self.lines)
        a = self.lines.index("GUEST-DMESG-BEGIN")
        return self.lines[:a] + self.lines[a + len(d) + 2:]

    def tail(self, n=40, dmesg_lines=30):
        """Last n console lines, then the end of the dumped kernel log."""
        out = self.console()[-n:]
        d = self.dmesg()
        if d:
            out += ["----- guest kernel log (end) -----"] + d[-dmesg_lines:]
        return "\n".join(out)

    def require_ok(self):
        if self.rc != 0:
            raise GuestError(f"guest script failed (rc={self.rc}); serial tail:\n"
                             f"{self.tail()}")
        return self


class GuestQemu(harness.Qemu):
    """harness.Qemu for -kernel boots; also shows the serial console on
    failure."""

    def command_line(self):
        # -kernel's option ROM takes bootindex 0: the usb-redir slots must
        # not claim boot indexes (QEMU: "The bootindex 0 has already been
        # used"); SeaBIOS need not boot from them anyway.
        return [re.sub(r",bootindex=\d+", "", a) if a.startswith("usb-redir,") else a
                for a in super().command_line()]

    def log_files(self):
        return super().log_files() + [(f"qemu {self.name} serial", self.serial_log)]


class LinuxGuest:
    """A Linux guest running `script` (busybox sh, sourced after /rig.sh).

    slots, memory, extra_args, debug: as harness.Qemu (extra_args are added
    after the rig's own); files: {guest path: bytes | str | (bytes, mode)}
    added to the initramfs (e.g. (data, 0o755) for a static helper
    program); modules: more kernel modules to load, e.g. ("sg",);
    cmdline: extra kernel parameters (MODULE.PARAM=V reach insmod);
    dmesg: always dump the kernel log; smp: vCPUs (default
    $REDIR_GUEST_SMP or 1).
    """

    def __init__(self, testdir, script, slots=(), name="guest", memory=256,
                 files=None, cmdline=(), extra_args=(), dmesg=False, smp=None,
                 accel_args=None, debug=3, verbose=True, modules=()):
        self.testdir = testdir
        self.script = script
        self.slots = list(slots)
        self.name = name
        self.memory = memory
        self.files = files or {}
        self.modules = tuple(modules)
        self.cmdline = list(cmdline)
        self.extra_args = list(extra_args)
        self.dmesg = dmesg
        self.smp = int(smp or os.environ.get("REDIR_GUEST_SMP", "1"))
        self.accel_args = (accel_args if accel_args is not None
                           else harness.qemu_accel_args(linux_guest=True))
        self.debug = debug
        self.verbose = verbose
        self.qemu = None
        self.build_s = None
        self.kernel_version = None
        self.result = None

    def _log(self, msg):
        if self.verbose:
            print(f"[{self.name}] {msg}", flush=True)

    def prepare(self):
        """Build (or reuse) the artifacts; write this test's initrd."""
        t0 = time.monotonic()
        ver, kimage, base = base_initramfs(self.verbose, self.modules)
        self.kernel_version = ver
        initrd = self.testdir.file(f"{self.name}-initrd.cpio")
        with open(initrd, "wb") as out, open(base, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
            out.write(test_archive(self.script, self.files, self.dmesg))
        if not harness._qemu_safe(kimage):
            k2 = self.testdir.file(f"{self.name}-kernel")
            shutil.copyfile(kimage, k2)
            kimage = k2
        self.kernel_path, self.initrd_path = kimage, initrd
        self.build_s = time.monotonic() - t0
        self._log(f"kernel {ver} ({os.path.basename(kimage)}), initrd ready in "
                  f"{self.build_s:.2f}s")
        return self

    def command_args(self):
        append = " ".join(list(DEFAULT_CMDLINE) + self.cmdline)
        return ["-kernel", self.kernel_path, "-initrd", self.initrd_path,
                "-append", append, "-no-reboot", "-smp", str(self.smp),
                *self.extra_args]

    def start(self):
        if not hasattr(self, "initrd_path"):
            self.prepare()
        self.qemu = GuestQemu(self.testdir, slots=self.slots, paused=False,
                              name=self.name, memory=self.memory,
                              accel_args=self.accel_args, debug=self.debug,
                              extra_args=self.command_args())
        self.qemu.start()
        self._log("QEMU started: " + " ".join(self.accel_args))
        return self

    def serial_text(self):
        return self.qemu.serial_text().replace("\r", "")

    def _elapsed(self):
        return time.monotonic() - self.qemu.started_at

    def _failure(self, what):
        msg = [f"{what}; serial console tail:", harness.tail(self.qemu.serial_log, 40)]
        err = self.qemu.stderr_text()
        kvm = [l for l in err.splitlines() if "KVM internal error" in l
               or "emulation failure" in l]
        if kvm:
            msg += kvm[:2] + ["(on the software kvm_pvm the Debian kernel cannot "
                              "run: use TCG, see harness.qemu_accel_args)"]
        msg += ["QEMU stderr tail:", harness.tail(self.qemu.stderr_log, 15)]
        return GuestError("\n".join(msg))

    def _check_alive(self, what):
        """Raise at once if QEMU died or KVM stopped the guest (QEMU then
        stays alive with the VM paused)."""
        if not self.qemu.alive():
            raise self._failure(f"QEMU exited (rc={self.qemu.returncode()}) "
                                f"{what}")
        if "KVM internal error" in self.qemu.stderr_text():
            raise self._failure(f"KVM stopped the guest {what}")

    def wait_serial(self, regex, timeout=60):
        """Wait for `regex` on the serial console; return the match."""
        rx = re.compile(regex, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.serial_text())
            if m:
                return m
            if not self.qemu.alive():
                m = rx.search(self.serial_text())
                if m:
                    return m
            self._check_alive(f"before /{regex}/ on the console")
            if time.monotonic() >= deadline:
                raise self._failure(f"timed out after {timeout}s waiting for "
                                    f"/{regex}/ on the guest console")
            time.sleep(0.05)

    def wait_started(self, timeout=60):
        """Wait for GUEST-START (modules loaded); return host boot seconds."""
        self.wait_serial(START_MARK, timeout)
        self.boot_s = self._elapsed()
        return self.boot_s

    def wait_done(self, timeout=150):
        """Wait for GUEST-DONE and QEMU's exit; return a GuestResult.

        Raises GuestError if QEMU exits without GUEST-DONE (panic, crash) or
        on timeout, with the console tail.  The script's rc is not checked:
        call require_ok()."""
        deadline = time.monotonic() + timeout
        boot_s = getattr(self, "boot_s", None)
        while True:
            text = self.serial_text()
            if boot_s is None and START_MARK in text:
                boot_s = self._elapsed()
            if DONE_RE.search(text):
                total = self._elapsed()
                break
            self._check_alive("without GUEST-DONE")
            if time.monotonic() >= deadline:
                raise self._failure(f"timed out after {timeout}s waiting for "
                                    f"GUEST-DONE")
            time.sleep(0.05)
        # poweroff -f: QEMU exits by itself in a moment.
        try:
            self.qemu.proc.wait(15)
        except Exception:
            self.qemu.stop(5)
        self.result = GuestResult(self.serial_text(), boot_s, total)
        self._log(f"GUEST-DONE rc={self.result.rc}: boot {boot_s or 0:.1f}s, "
                  f"total {total:.1f}s")
        return self.result

    def run(self, timeout=150):
        """start() + wait_done()."""
        self.start()
        return self.wait_done(timeout)

    def stop(self):
        if self.qemu:
            self.qemu.stop(5)


def proc_cpu_seconds(pid):
    """utime + stime of a process (and its waited-for children), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / tck


# --------------------------------------------------------------------------
# Self-check
# --------------------------------------------------------------------------

SELFTEST_SCRIPT = r"""
result hello world
result modules "$(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
result file "$(cat /data/hello.txt)"
[ -e /dev/console ] || fail "no /dev/console"
t0=$(now)
dd if=/dev/zero of=/tmp/z bs=1M count=32 2>/dev/null
result sha_s "$(elapsed $t0)"
result kernel "$(uname -r)"
"""


def selftest(td):
    t0 = time.monotonic()
    base_initramfs(verbose=True)
    print(f"  artifacts ready in {time.monotonic() - t0:.2f}s (cached from now on)")
    g = LinuxGuest(td, SELFTEST_SCRIPT, files={"/data/hello.txt": "hi there"})
    res = g.run(timeout=120).require_ok()
    assert res["hello"] == "world", res.results
    assert res["file"] == "hi there", res.results
    for m in ("xhci_pci", "usb_storage", "sd_mod"):
        assert m in res["modules"].split(), res["modules"]
    print(f"  boot to GUEST-START {res.boot_s:.2f}s (guest uptime "
          f"{res.guest_start}s), done {res.total_s:.2f}s; results {res.results}")


if __name__ == "__main__":
    if "--kernel" in sys.argv:
        t = time.monotonic()
        k = fetch_kernel(verbose=True)
        print(k.root, k.version, f"{time.monotonic() - t:.2f}s")
        sys.exit(0)
    if "--build" in sys.argv:
        t = time.monotonic()
        print(base_initramfs(verbose=True), f"{time.monotonic() - t:.2f}s")
        sys.exit(0)
    harness.main(selftest, name="guest_selftest")
