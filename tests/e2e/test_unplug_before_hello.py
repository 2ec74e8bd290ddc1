#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A session whose peer is connected but has not said hello yet, ended by an
unplug or by SIGTERM.  The agent must close that connection: today
session_end() frees the session without closing it (states HELLO and
RELAY), so the connection leaks (LeakSanitizer at exit) and, if the peer
then sends anything, on_peer_data() runs on the freed session (heap
use-after-free, found with a hostile peer that delays its hello)."""
import time

import harness
from harness import Agent, Fixture, diskimage, free_port
import usbredirpeer as ur


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 1)
    fx = Fixture(td).start()
    dev, _ = fx.add("disk", img)
    port = free_port()
    lis = ur.Listener(port)
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\n")

    # 1. unplug while the agent waits for our hello, then say hello anyway
    peer = lis.accept(10)
    agent.wait_log(r"waiting for its usbredir hello")
    fx.remove(dev)
    agent.wait_log(r'"Emulated Disk" at 1-1: unplugged')
    harness.wait_for(lambda: not peer.poll(0.1), 5,
                     "the agent to close the connection of the unplugged "
                     "device")
    try:
        peer.send_hello()
    except ur.PeerClosed:
        pass
    time.sleep(0.5)
    assert agent.alive(), "the agent died"
    peer.close()

    # 2. SIGTERM while a connection waits for its hello: exits cleanly,
    # nothing leaked (main() checks the log for sanitizer reports)
    at = agent.log_offset()  # before the plug: the line may come at once
    dev, _ = fx.add("disk", img)
    peer = lis.accept(10)
    agent.wait_log(r"waiting for its usbredir hello", start_offset=at)
    agent.stop()
    harness.wait_for(lambda: not peer.poll(0.1), 5,
                     "the agent to close the connection at exit")
    peer.close()
    fx.stop()


harness.main(test)
