#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A pool of two relays behind HAProxy (Debian's package, TCP mode,
health checks that expect the relay's hello): one agent's four devices
(emulated loopbacks) go to four usb-redir slots of one QEMU through
HAProxy; the sessions spread over both relays; relay A is SIGKILLed and
its sessions come back through HAProxy on relay B within the agent's
reconnect backoff, all four devices attached in QEMU again. Both relays
carry the same [target.*] sections and secret: any relay in the pool can
serve any agent. ~20-40 s."""
import os
import re
import shutil
import signal
import subprocess
import time

import relayharness
from relayharness import harness
from harness import Agent, Fixture, Qemu, free_port

HAPROXY_CFG = """global
    log stdout format raw local0 info
    stats socket {sock} mode 600 level admin
    # two files per connection: size it to the site (ulimit -n)
    maxconn 4000
defaults
    mode tcp
    log global
    timeout connect 2s
    # idle USB sessions last for hours; the agent's keepalive (15 s) and
    # TCP_USER_TIMEOUT find dead paths
    timeout client 24h
    timeout server 24h
    # a relay that refuses the connection: another one, at once
    retries 2
    option redispatch
frontend usb
    bind 127.0.0.1:{port}
    default_backend relays
backend relays
    balance leastconn
    # healthy = accepts and greets with the relay protocol's magic
    option tcp-check
    tcp-check connect
    tcp-check expect binary 5244524c
    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions
    server a 127.0.0.1:{a} check
    server b 127.0.0.1:{b} check
"""


class Qemu4(Qemu):
    """4 slots; 8 ports so that QEMU's own hub takes none of the devices'."""

    def command_line(self):
        return [("qemu-xhci,id=xhci,p2=8,p3=8" if a == "qemu-xhci,id=xhci"
                 else a) for a in super().command_line()]


def server_status(sock_path, name):
    """The status HAProxy's health checks give server `name` (UP, DOWN,
    ...), from its stats socket."""
    import socket
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock_path)
        s.sendall(b"show stat\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode().splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == "relays" and f[1] == name:
            return f[17]
    return None


def attached(relay):
    return len(re.findall(r" attached to target ", relay.log_text()))


def test(td):
    haproxy_bin = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(haproxy_bin):
        raise AssertionError("haproxy not installed: "
                             "scripts/install-test-deps.sh")
    fx = Fixture(td).start()
    for _ in range(4):
        fx.add("loopback")
    qports = [free_port() for _ in range(4)]
    qemu = Qemu4(td, slots=[("server", p) for p in qports], paused=False)
    qemu.start()
    for p in qports:
        qemu.wait_listening(p)
    targets = {f"t{i}": f"127.0.0.1:{p}" for i, p in enumerate(qports)}
    ra = relayharness.Relay(td, name="relay-a")
    rb = relayharness.Relay(td, name="relay-b", secret=ra.secret)
    for r in (ra, rb):
        r.start(r.config(targets, log_level="info"))
        r.wait_ready()

    hport = free_port()
    cfg = td.file("haproxy.cfg")
    hsock = harness._sock_path(td, "haproxy.sock")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG.format(port=hport, a=ra.port, b=rb.port,
                                   sock=hsock))
    hlog = td.file("haproxy.log")
    hap = subprocess.Popen([haproxy_bin, "-db", "-f", cfg],
                           stdout=open(hlog, "w"), stderr=subprocess.STDOUT,
                           preexec_fn=harness._pdeathsig(signal.SIGTERM))
    try:
        harness.wait_for(lambda: hport in harness.listening_ports() and
                         os.path.exists(hsock), 10, "haproxy to listen")
        harness.wait_for(lambda: server_status(hsock, "a") == "UP" and
                         server_status(hsock, "b") == "UP", 10,
                         "both relays UP in HAProxy's health checks")
        agent = Agent(td, fx)
        agent.start("[usb]\nconnect = " +
                    ", ".join(f"127.0.0.1:{hport}/t{i}" for i in range(4)) +
                    f"\ntransport = lz4\nrelay_secret_file = {ra.secret_path}\n"
                    "agent_id = desk-17\nreconnect_max_ms = 1000\n")
        qemu.wait_usb_devices(4, timeout=40)
        harness.wait_for(lambda: attached(ra) + attached(rb) == 4, 10,
                         "4 sessions on the relays")
        na, nb = attached(ra), attached(rb)
        print(f"sessions spread over the pool: relay a {na}, relay b {nb}")
        assert na >= 1 and nb >= 1, (na, nb)

        # relay a dies: its sessions reconnect through HAProxy to b
        t0 = time.monotonic()
        ra.proc.send_signal(signal.SIGKILL)
        ra.proc.wait(10)
        harness.wait_for(lambda: attached(rb) == nb + na, 30,
                         f"relay b to take relay a's {na} session(s)")
        moved = time.monotonic() - t0
        qemu.wait_usb_devices(4, timeout=30)
        back = time.monotonic() - t0
        harness.wait_for(lambda: server_status(hsock, "a") == "DOWN", 10,
                         "HAProxy's health checks to mark relay a DOWN")
        print(f"relay a killed: its {na} session(s) on relay b after "
              f"{moved:.2f} s, all 4 devices attached in QEMU after "
              f"{back:.2f} s")
        assert moved < 15, moved
        # the agent saw its connections drop and came back by itself
        assert agent.alive()
        agent.stop()
    finally:
        hap.terminate()
        try:
            hap.wait(10)
        except subprocess.TimeoutExpired:
            hap.kill()
    rb.stop()
    qemu.stop()
    fx.stop()


harness.main(test)
