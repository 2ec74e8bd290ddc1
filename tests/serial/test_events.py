#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The events stream and status for serial ports: a client connecting and
leaving is an event (with its bytes and why it left); status lists the port
with its device, mode, client, line settings and bytes."""
import json
import subprocess
import threading

import serial_harness as sh
from serial_harness import harness


def command(agent, *args):
    r = subprocess.run([agent.path, *args, "--socket", agent.control_socket],
                       capture_output=True, text=True, timeout=20,
                       env=harness.clean_env())
    assert r.returncode == 0, r
    return r.stdout


def test(td):
    pty = sh.Pty(td.file("dev-a"))
    port = harness.free_port()
    agent = sh.SerialAgent(td).start(
        sh.port_section("a", pty.link, listen=port, mode="telnet",
                        line="19200 8N1"))
    agent.wait_log(r"\[serial.a\] .*opened")
    events = []
    sub = subprocess.Popen([agent.path, "events", "--socket",
                            agent.control_socket], stdout=subprocess.PIPE,
                           text=True, env=harness.clean_env())

    def read():
        for line in sub.stdout:
            events.append(json.loads(line))
    threading.Thread(target=read, daemon=True).start()
    harness.wait_for(lambda: events, 10, "the subscription")

    s = sh.connect(port)
    got = harness.wait_for(
        lambda: [e for e in events if e["event"] == "serial-client-connected"],
        10, "serial-client-connected")
    assert got[0]["serial"] == "a" and got[0]["client"].startswith(
        "127.0.0.1:"), got
    s.sendall(b"hello")
    assert pty.read_exact(5) == b"hello"
    pty.write_all(b"abc")
    sh.recv_exact(s, 3)

    st = json.loads(command(agent, "status", "--json"))
    p = st["serial"][0]
    assert p["name"] == "a" and p["device"] == pty.link, p
    assert p["mode"] == "telnet" and p["line"].startswith("19200 8N1"), p
    assert p["client"] == got[0]["client"], p
    assert p["bytes_from_client"] == 5 and p["bytes_to_client"] == 3, p
    table = command(agent, "status")
    row = next(line for line in table.splitlines() if line.startswith("a "))
    assert "telnet" in row and "19200 8N1" in row and "5B/3B" in row, table

    s.close()
    left = harness.wait_for(
        lambda: [e for e in events if e["event"] == "serial-client-left"],
        10, "serial-client-left")[0]
    assert left["serial"] == "a" and left["bytes_from_client"] == 5 and \
        left["bytes_to_client"] == 3 and left["detail"], left
    agent.stop()
    sub.wait(timeout=10)


harness.main(test)
