# SPDX-License-Identifier: MIT
"""Shared set-up of the ro/wo Linux-guest tests: an emulated disk redirected
with an access= rule into a Linux guest that runs a script."""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from linuxguest import LinuxGuest, harness  # noqa: E402
from harness import Agent, Fixture, diskimage, free_port  # noqa: E402

DISK_MIB = 32


def scsi_cmd_tool():
    path = os.environ.get("REDIR_GUEST_SCSI_CMD")
    if not path or not os.path.exists(path):
        raise FileNotFoundError("REDIR_GUEST_SCSI_CMD: build guest_scsi_cmd")
    with open(path, "rb") as f:
        return f.read()


def run(td, access, script, files=None):
    """Returns (guest result, image bytes before, image bytes after, agent log)."""
    img = td.file("disk.img")
    diskimage.make_disk_image(img, DISK_MIB)
    with open(img, "rb") as f:
        before = f.read()
    fx = Fixture(td).start()
    fx.add("disk", img)
    port = free_port()
    all_files = {"/bin/scsi_cmd": (scsi_cmd_tool(), 0o755)}
    all_files.update(files or {})
    guest = LinuxGuest(td, script, slots=[("server", port)], files=all_files,
                       dmesg=True)
    guest.start()
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\nreconnect_max_ms = 300\n"
                f"rule = allow class=08 access={access}\n")
    agent.wait_log(rf'"Emulated Disk" at 1-\d+: redirected {access} to',
                   timeout=30)
    res = guest.wait_done(timeout=150).require_ok()
    agent.stop()
    with open(img, "rb") as f:
        after = f.read()
    return res, before, after, agent.log_text()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sense(line):
    """'status=2 host=0 driver=8 key=7 asc=39 ascq=0 ms=3' -> dict of ints."""
    return {k: int(v) for k, v in (f.split("=") for f in line.split())}
