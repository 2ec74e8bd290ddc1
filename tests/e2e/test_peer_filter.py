#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A device QEMU's own usb-redir filter rejects (filter_filter) is handed
back and not offered again in a loop: logged once, kept until replugged."""
import time

import harness
from harness import Agent, Fixture, Qemu, free_port


def test(td):
    fx = Fixture(td).start()
    port = free_port()
    # QEMU refuses the loopback (1209:100b), accepts the rest.
    qemu = Qemu(td, slots=[("server", port)], paused=False,
                usbredir_filter="-1:0x1209:0x100b:-1:0|-1:-1:-1:-1:1")
    qemu.start()
    qemu.wait_listening(port)
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\nreconnect_max_ms = 200\n")
    dev_id, busport = fx.add("loopback")
    agent.wait_log(rf'1209:100b "Emulated Loopback" at {busport}: peer '
                   r"127\.0\.0\.1:\d+ refused the device \(its filter\); not "
                   r"offering it again until it is replugged")
    time.sleep(3)  # many backoff periods: a loop would show here
    log = agent.log_text()
    assert log.count("refused the device") == 1, log
    assert log.count("redirected rw to") == 1, log
    qemu.wait_usb_devices(0)

    # Replugged: offered again (and refused again, once).
    at = agent.log_offset()
    fx.remove(dev_id)
    agent.wait_log(r"Emulated Loopback.*: unplugged", start_offset=at)
    fx.add("loopback")
    agent.wait_log(r"refused the device", start_offset=at)
    agent.stop()


harness.main(test)
