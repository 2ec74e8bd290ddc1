#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A USB device used by the serial bridge is never redirected: the
adapter named by a [serial.NAME] /dev/serial/by-id path (here before its tty
even exists) stays local, in the dry run and in the running agent."""
import subprocess

import harness
from harness import Agent, Fixture, free_port


def test(td):
    fx = Fixture(td).start()
    _, disk_port = fx.add("loopback")  # gets serial RDA100B0001
    port = free_port()
    serial = ("[serial.scale]\ndevice = /dev/serial/by-id/"
              "usb-redir_Emulated_Loopback_RDA100B0001-if00-port0\n"
              f"listen = 127.0.0.1:{port}\n")
    config = f"[usb]\nconnect = 127.0.0.1:{free_port()}\n{serial}"
    agent = Agent(td, fx)
    with open(agent.config_path, "w") as f:
        f.write(config)
    r = subprocess.run([agent.path, "--list-devices", "-c", agent.config_path],
                       capture_output=True, text=True, timeout=20,
                       env=harness.preload_env(fx.umockdev_dir))
    assert "=> stays local (used by the serial bridge [serial.scale])" in \
        r.stdout, r
    agent.start(config)
    agent.wait_log(rf'1209:100b "Emulated Loopback" at {disk_port}: stays '
                   r'local \(used by the serial bridge \[serial\.scale\]\)')
    agent.wait_log(r"\[serial\.scale\]")
    assert "redirected" not in agent.log_text()
    agent.stop()


harness.main(test)
