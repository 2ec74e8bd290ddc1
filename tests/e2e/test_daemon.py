#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Daemon mode as an init system runs it: without -f the agent detaches,
writes --pidfile, tells systemd READY=1 ($NOTIFY_SOCKET), RELOADING=1 and
READY=1 around SIGHUP, STOPPING=1 on SIGTERM, then removes the pidfile."""
import os
import signal
import socket
import subprocess

import harness
from harness import wait_for


def test(td):
    agent = harness.find_program("REDIR_AGENT", "redir-agent", "agent")
    notify_path = td.file("notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    pidfile = td.file("agent.pid")
    config = td.write("agent.ini", f"[agent]\ncontrol_socket = "
                      f"{td.file('agent.sock')}\n")
    env = harness.preload_env()
    env["NOTIFY_SOCKET"] = notify_path
    r = subprocess.run([agent, "-c", config, "--pidfile", pidfile], env=env,
                       timeout=10, capture_output=True, text=True)
    assert r.returncode == 0, r  # the parent returns once detached
    assert notify.recv(256) == b"READY=1"
    pid = int(open(pidfile).read())
    assert os.path.exists(f"/proc/{pid}")

    st = subprocess.run([agent, "status", "--socket", td.file("agent.sock")],
                        env=env, timeout=10, capture_output=True, text=True)
    assert st.returncode == 0 and f"pid {pid}" in st.stdout, st

    os.kill(pid, signal.SIGHUP)
    assert notify.recv(256) == b"RELOADING=1"
    assert notify.recv(256) == b"READY=1"
    os.kill(pid, signal.SIGTERM)
    assert notify.recv(256) == b"STOPPING=1"
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
             open(f"/proc/{pid}/stat").read().split()[2] == "Z", 5,
             "the daemon to exit")
    wait_for(lambda: not os.path.exists(pidfile), 5, "the pidfile to go")


harness.main(test)
