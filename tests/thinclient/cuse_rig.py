# SPDX-License-Identifier: MIT
"""What the CUSE tests of the thin-client rig put into the VM (test_cuse.py,
test_cuse_fdstore.py): the relay, QEMU with its TCG module and SeaBIOS,
cuse_guest (what QEMU's tty chardev does) and the agent's ioctl recorder,
each where the tests look for it."""
import os
import shutil

from thinclient import program_files

GUEST = "/usr/bin/cuse_guest"
RECORDER = "/usr/lib/redir-test/libserial_ioctl_recorder.so"
QEMU = "/usr/bin/qemu-system-x86_64"
QEMU_DATA = "/usr/share/qemu-rig"      # -L: SeaBIOS for the pc machine
IOCTL_LOG = "/tmp/ioctl.log"            # the recorder's, in the VM
PORT = 7100                             # the relay's, in the VM
# the agent: the ACM gadget's tty, through the relay's target com1
AGENT_INI = f"""[agent]
log_level = debug
control_socket = /run/agent.sock
[serial.com1]
device = /dev/ttyACM0
connect = 127.0.0.1:{PORT}/com1
relay_secret_file = /tmp/relay.secret
on_device_loss = keep
"""
# Debian's QEMU loads TCG as a module from its compiled-in directory
QEMU_TCG = "/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so"


def relay_ini(tty="cuse"):
    """The relay: target com1 at /run/com1, its tty a CUSE device or a pty."""
    return (f"[relay]\nlisten = 127.0.0.1:{PORT}\n"
            "secret_file = /tmp/relay.secret\nlog_level = debug\n"
            "[target.com1]\nkind = serial\npath = /run/com1\n"
            f"tty = {tty}\n")


def host_program(env, name):
    """The built file $env names (set by ctest)."""
    path = os.environ.get(env)
    if not path or not os.path.exists(path):
        raise FileNotFoundError(f"${env} ({name}) is not set to a built file")
    return path


def cuse_files(programs=None):
    """{VM path: contents} for the rig: the relay, QEMU, cuse_guest, the
    recorder, and `programs` ({VM path: host path}) with their libraries."""
    qemu = shutil.which(os.environ.get("REDIR_QEMU", "qemu-system-x86_64"))
    assert qemu, "qemu-system-x86_64 not found: scripts/install-deps.sh"
    files = program_files({
        "/usr/sbin/redir-relay": host_program("REDIR_RELAY", "redir-relay"),
        QEMU: qemu, **(programs or {})})
    files[QEMU_TCG] = (open(QEMU_TCG, "rb").read(), 0o644)
    files[f"{QEMU_DATA}/bios-256k.bin"] = open(
        "/usr/share/seabios/bios-256k.bin", "rb").read()
    files[GUEST] = (open(host_program("REDIR_CUSE_GUEST", "cuse_guest"),
                         "rb").read(), 0o755)
    files[RECORDER] = (open(host_program("REDIR_IOCTL_RECORDER",
                                         "the ioctl recorder"), "rb").read(),
                       0o755)
    return files
