#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The agent holds its tty exclusively, and gives that up when it closes
it. Run as an unprivileged user (as packaged; root ignores TIOCEXCL):

- while the agent has the port, another program of an ordinary user (a
  modem prober, a second agent left running, a terminal program) cannot
  open it (EBUSY) and so cannot eat the device's bytes;
- the agent closes and reopens the port (a reload that changes its
  section) while another program still holds the tty open: the reopen
  must work. The exclusive flag belongs to the tty, not to the fd, and
  outlived the agent's close (every reopen failed with EBUSY) until the
  agent cleared it (TIOCNXCL) before closing;
- after the reopen, bytes flow from the device to the client."""
import os
import signal
import subprocess

import serial_harness as sh
from serial_harness import harness

NOBODY = 65534


class UnprivilegedAgent(sh.SerialAgent):
    """The serial agent as uid/gid 65534 (nobody)."""

    def start(self, config_text, extra_args=()):
        orig = harness._pdeathsig

        def drop(sig):
            inner = orig(sig)

            def fn():
                inner()
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            return fn
        harness._pdeathsig = drop
        try:
            super().start(config_text, extra_args)
        finally:
            harness._pdeathsig = orig
        os.chmod(self.config_path, 0o644)
        return self


def open_as_nobody(path):
    """errno of an open() of path by an ordinary user, 0 if it opened."""
    r = subprocess.run(
        ["python3", "-c",
         "import os,sys\n"
         f"os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
         "try:\n"
         f"    os.close(os.open({path!r}, os.O_RDWR | os.O_NOCTTY))\n"
         "    print(0)\n"
         "except OSError as e:\n"
         "    print(e.errno)\n"],
        capture_output=True, text=True, timeout=20, check=True)
    return int(r.stdout)


def test(td):
    os.chmod(td.path, 0o755)
    phys = sh.Pty(td.file("phys"))
    os.chmod(phys.name, 0o666)  # the port is the agent's (dialout) and ours
    port = harness.free_port()
    section = sh.port_section("x", phys.link, listen=port, mode="raw")
    agent = UnprivilegedAgent(td)
    # its control socket and nothing else is written in the test's dir
    os.chmod(td.path, 0o777)
    agent.start(section)
    agent.wait_log(r"\[serial.x\] .*opened")
    assert open_as_nobody(phys.name) == 16, "EBUSY while the agent has it"
    print("another user's open of the agent's tty: EBUSY")

    # a reload that changes the section: the agent closes and reopens the
    # port while this test (another program) still holds the tty
    off = agent.log_offset()
    with open(agent.config_path) as f:
        text = f.read()
    with open(agent.config_path, "w") as f:
        f.write(text.replace("mode = raw", "mode = raw\nline = 19200 8N1"))
    agent.signal(signal.SIGHUP)
    agent.wait_log(r"\[serial.x\] .*opened \(19200", start_offset=off)
    assert "Device or resource busy" not in agent.log_text(off)
    print("closed and reopened while another program held the tty")

    off = agent.log_offset()
    client = sh.connect(port)
    agent.wait_log(r"client \S+ connected", start_offset=off)  # then flush
    phys.write_all(b"\x00after\xff")
    assert sh.recv_exact(client, 7) == b"\x00after\xff"
    client.close()
    agent.stop()


harness.main(test)
