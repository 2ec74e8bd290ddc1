#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Reload applies the [usb] changes that move devices, each by SIGHUP with
an emulated disk redirected: a changed listen port (the old port closes,
the disk waits on the new one and a peer there gets it), listen ->
connect (the agent dials the new peer), connect raw -> a redir-relay
target with transport = lz4 (the disk comes back through the relay,
compressed); a broken file is refused with FILE:LINE and the disk stays
where it is. No step needs a replug."""
import os
import signal
import socket
import sys

import controlharness  # noqa: F401 - puts tests/e2e on the path
from controlharness import harness
from harness import Agent, Fixture, diskimage, free_port

sys.path.insert(0, os.path.join(os.path.dirname(controlharness.HERE),
                                "relay"))
import relayharness  # noqa: E402
import usbredirpeer as ur  # noqa: E402

REDIRECTED = r'"Emulated Disk" at 1-1: redirected rw to '


def reload(agent, text):
    at = agent.log_offset()
    with open(agent.config_path, "w") as f:
        f.write(text + f"[agent]\ncontrol_socket = {agent.control_socket}\n")
    os.kill(agent.pid, signal.SIGHUP)
    return at


def refuses_connections(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 4)
    fx = Fixture(td).start()
    l1, l2, c1 = free_port(), free_port(), free_port()
    agent = Agent(td, fx)
    agent.start(f"[usb]\nlisten = 127.0.0.1:{l1}\nreconnect_max_ms = 300\n")
    agent.wait_log(rf"slot 1: listening on 127\.0\.0\.1:{l1}")
    fx.add("disk", img)
    peer = ur.Peer.connect("127.0.0.1", l1).handshake()
    agent.wait_log(REDIRECTED)

    # listen port changed: the old one closes, a peer on the new one gets
    # the disk
    at = reload(agent, f"[usb]\nlisten = 127.0.0.1:{l2}\n"
                "reconnect_max_ms = 300\n")
    agent.wait_log(r"SIGHUP: configuration reloaded", start_offset=at)
    agent.wait_log(rf"slot 1: listening on 127\.0\.0\.1:{l2}", start_offset=at)
    harness.wait_for(lambda: refuses_connections(l1), 10,
                     f"port {l1} to close")
    peer.close()
    peer = ur.Peer.connect("127.0.0.1", l2).handshake()
    agent.wait_log(REDIRECTED, start_offset=at)
    print("listen port moved")

    # listen -> connect: the agent dials the new peer
    lis = ur.Listener(c1)
    at = reload(agent, f"[usb]\nconnect = 127.0.0.1:{c1}\n"
                "reconnect_max_ms = 300\n")
    dialed = lis.accept(15).handshake()
    agent.wait_log(REDIRECTED + rf"127\.0\.0\.1:{c1}", start_offset=at)
    harness.wait_for(lambda: refuses_connections(l2), 10,
                     f"port {l2} to close")
    peer.close()
    print("listen -> connect")

    # raw QEMU peer -> redir-relay target with lz4: through the relay
    qlis = ur.Listener(free_port())
    relay = relayharness.Relay(td)
    relay.start(relay.config({"vm1": f"127.0.0.1:{qlis.port}"}))
    relay.wait_ready()
    at = reload(agent, f"[usb]\nconnect = 127.0.0.1:{relay.port}/vm1\n"
                f"transport = lz4\nrelay_secret_file = {relay.secret_path}\n"
                "agent_id = desk-1\nreconnect_max_ms = 300\n")
    vm = qlis.accept(15).handshake()
    agent.wait_log(r'"Emulated Disk" at 1-1: relay 127\.0\.0\.1:\d+ accepted '
                   r'us \(lz4\)', start_offset=at)
    agent.wait_log(REDIRECTED + rf"127\.0\.0\.1:{relay.port}",
                   start_offset=at)
    relay.wait_log(r"agent 'desk-1' .* attached to target 'vm1' .*lz4")
    dialed.close()
    print("raw -> relay lz4")

    # a broken file: refused with FILE:LINE, nothing moves
    at = agent.log_offset()
    with open(agent.config_path, "a") as f:
        f.write("[usb]\nconnect = not a host\n")
    os.kill(agent.pid, signal.SIGHUP)
    m = agent.wait_log(rf"{agent.config_path}:\d+: .*connect",
                       start_offset=at)
    print(f"refused: {m.group(0)}")
    assert vm.poll(1.0), "the disk's session through the relay ended"
    log = agent.log_text(at)
    assert "reloaded" not in log and "redirected" not in log and \
        "handing the device back" not in log, log
    vm.close()
    agent.stop()
    relay.stop()


harness.main(test)
