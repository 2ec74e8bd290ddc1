# SPDX-License-Identifier: MIT
"""A throwaway Debian root for the packaging tests: debootstrap once, cached as a tarball, unpacked fresh for each run.

Usage as a program: debroot.py DEB_DIR CACHE_DIR -- makes sure the cached
tarball for DEB_DIR's packages exists (run once, before the tests that
unpack it, so they do not race to build it).

The root is debootstrap's minbase from the Debian mirror apt uses on this
machine, plus the .debs' library dependencies, plus systemd (for the
systemd-nspawn test; the chroot test runs no init system, /run/systemd is
absent there so the SysV scripts are what runs) and a policy-rc.d that
lets maintainer scripts act as on a real machine. The tarball's name holds
a hash of the suite, mirror and package list: new dependencies make a new
root, an unchanged list reuses it (seconds instead of ~40 s).

Standard library only; runs as root.
"""

import glob
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

# The systemd test boots the root with systemd-nspawn.
ROOT_PACKAGES_ALWAYS = ["systemd", "systemd-sysv", "dbus"]


def log(msg):
    print(f"{os.path.basename(sys.argv[0])}: {msg}", flush=True)


def fail(msg):
    raise AssertionError(msg)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# The cached Debian root
# --------------------------------------------------------------------------

def host_mirror():
    """(suite, mirror URI) of the Debian main archive apt uses here."""
    suite = None
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                suite = line.split("=", 1)[1].strip().strip('"')
    out = subprocess.run(
        ["apt-get", "indextargets", "--format",
         "$(REPO_URI) $(RELEASE) $(COMPONENT)", "Identifier: Packages"],
        capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        uri, release, component = line.split()
        if release == suite and component == "main":
            return suite, uri
    fail(f"no '{suite} main' source in apt's configuration:\n{out}")


def deb_depends(deb):
    """Package names of a .deb's Depends (alternatives: the first)."""
    field = subprocess.run(["dpkg-deb", "-f", deb, "Depends"],
                           capture_output=True, text=True,
                           check=True).stdout.strip()
    names = []
    for dep in field.split(","):
        name = dep.split("|")[0].strip().split()[0]
        if name:
            names.append(name.split(":")[0])
    return names


def base_tarball(cache, packages):
    """Path of the cached root tarball holding `packages`; made if needed."""
    suite, mirror = host_mirror()
    key_text = f"{suite} {mirror} minbase {' '.join(sorted(packages))}"
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    tarball = os.path.join(cache, f"root-{suite}-{key}.tar")
    if os.path.exists(tarball):
        log(f"cached root: {tarball}")
        return tarball
    for old in glob.glob(os.path.join(cache, "root-*.tar")):
        os.unlink(old)
    build = os.path.join(cache, "debootstrap")
    shutil.rmtree(build, ignore_errors=True)
    log(f"debootstrap {suite} from {mirror} ({key_text})")
    t0 = time.monotonic()
    cmd = ["debootstrap", "--variant=minbase"]
    if packages:
        cmd.append("--include=" + ",".join(sorted(packages)))
    cmd += [suite, build, mirror]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"debootstrap failed ({r.returncode}):\n{r.stdout[-3000:]}"
             f"\n{r.stderr[-3000:]}")
    # Maintainer scripts may act (as on a real machine), but nothing starts
    # on its own in the root.
    policy = os.path.join(build, "usr/sbin/policy-rc.d")
    with open(policy, "w") as f:
        f.write("#!/bin/sh\n# test root: let maintainer scripts act\nexit 0\n")
    os.chmod(policy, 0o755)
    subprocess.run(["tar", "-C", build, "-cf", tarball + ".tmp", "."],
                   check=True)
    os.rename(tarball + ".tmp", tarball)
    shutil.rmtree(build)
    log(f"root cached in {time.monotonic() - t0:.0f}s: {tarball}")
    return tarball


def debs_in(deb_dir):
    """The .debs to install (no -dbgsym), and their package names."""
    debs = sorted(d for d in glob.glob(os.path.join(deb_dir, "*.deb"))
                  if "-dbgsym_" not in d)
    return debs, [os.path.basename(d).split("_")[0] for d in debs]


def tarball_for(deb_dir, cache):
    debs, _ = debs_in(deb_dir)
    if not debs:
        fail(f"no .deb in {deb_dir}")
    deps = sorted({p for d in debs for p in deb_depends(d)} |
                  set(ROOT_PACKAGES_ALWAYS))
    os.makedirs(cache, exist_ok=True)
    return base_tarball(cache, deps)


class Syslog:
    """A /dev/log datagram socket in the root, collecting what daemons log."""

    def __init__(self, root):
        self.path = os.path.join(root, "dev/log")
        if os.path.lexists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        # As a syslog daemon's: daemons that dropped root log here too.
        os.chmod(self.path, 0o666)
        self.lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self.lock:
                self.lines.append(data.decode(errors="replace"))

    def mark(self):
        with self.lock:
            return len(self.lines)

    def text(self, since=0):
        with self.lock:
            return "\n".join(self.lines[since:])

    def wait(self, regex, since, timeout=10):
        return wait_for(lambda: re.search(regex, self.text(since)), timeout,
                        f"/{regex}/ in the log; log so far:\n{self.text(since)}")

    def close(self):
        self.sock.close()


class Root:
    """A fresh copy of the cached root in WORKDIR/run-NAME. chroot=True
    mounts /proc and owns /dev/log (for running things with chroot);
    False leaves it as unpacked (for systemd-nspawn)."""

    def __init__(self, tarball, workdir, name, chroot=True):
        self.path = os.path.join(workdir, f"run-{name}")
        shutil.rmtree(self.path, ignore_errors=True)
        os.makedirs(self.path)
        subprocess.run(["tar", "-C", self.path, "-xf", tarball], check=True)
        self.proc = self.syslog = None
        if chroot:
            self.proc = os.path.join(self.path, "proc")
            subprocess.run(["mount", "-t", "proc", "proc", self.proc],
                           check=True)
            self.syslog = Syslog(self.path)

    def file(self, rel):
        return os.path.join(self.path, rel.lstrip("/"))

    def write(self, rel, text):
        with open(self.file(rel), "w") as f:
            f.write(text)

    def read(self, rel):
        with open(self.file(rel)) as f:
            return f.read()

    def run(self, *cmd, expect=0, timeout=60):
        """Runs cmd in the root; returns (rc, stdout+stderr)."""
        r = subprocess.run(["chroot", self.path, *cmd],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout,
                           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                "LANG": "C"})
        if expect is not None and r.returncode != expect:
            fail(f"{' '.join(cmd)}: exit {r.returncode}, expected {expect}:"
                 f"\n{r.stdout}")
        return r.returncode, r.stdout

    def pids(self, exe):
        """Pids of processes running `exe` (a path in the root) in it."""
        found = []
        host_exe = self.file(exe)
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                if (os.readlink(f"/proc/{p}/root") == self.path and
                        os.readlink(f"/proc/{p}/exe") == host_exe):
                    found.append(int(p))
            except OSError:
                pass
        return found

    def cleanup(self):
        # Whatever still runs in the root: kill it, then unmount.
        for p in os.listdir("/proc"):
            try:
                if p.isdigit() and os.readlink(f"/proc/{p}/root") == self.path:
                    os.kill(int(p), 9)
            except OSError:
                pass
        time.sleep(0.2)
        if self.syslog:
            self.syslog.close()
        if self.proc:
            subprocess.run(["umount", "-l", self.proc])
        shutil.rmtree(self.path, ignore_errors=True)


def main():
    if os.geteuid() != 0:
        log("FAIL: needs root (debootstrap); CI and ./test.sh run as root")
        sys.exit(1)
    tarball_for(sys.argv[1], sys.argv[2])


if __name__ == "__main__":
    main()
