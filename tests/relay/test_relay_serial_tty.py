#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A serial target's tty on this machine: tty = auto picks CUSE when
/dev/cuse opens and a pty otherwise, saying so once for all targets (and
once per pty target what a pty cannot carry); tty = pty is a pty whatever
the machine; tty = cuse where /dev/cuse does not open stops the relay at
start with the reason. (The CUSE tty itself is exercised where cuse.ko
is: thinclient_cuse.)"""
import os
import re

import relayharness
from relayharness import harness


def cuse_opens():
    try:
        os.close(os.open("/dev/cuse", os.O_RDWR))
        return True
    except OSError:
        return False


def test(td):
    links = {n: td.file(n) for n in ("com1", "com2", "com3")}
    relay = relayharness.Relay(td)
    relay.start(relay.config({}) +
                f"[target.com1]\nkind = serial\npath = {links['com1']}\n"
                f"[target.com2]\nkind = serial\npath = {links['com2']}\n"
                f"[target.com3]\nkind = serial\npath = {links['com3']}\n"
                f"tty = pty\n")
    relay.wait_ready()
    log = open(relay.log_path).read()
    forced = os.readlink(links["com3"])
    assert forced.startswith("/dev/pts/"), forced
    if cuse_opens():
        for n in ("com1", "com2"):
            assert os.readlink(links[n]) == f"/dev/redir-relay/{n}", n
        print("auto: CUSE (/dev/cuse opens here)")
    else:
        for n in ("com1", "com2"):
            assert os.readlink(links[n]).startswith("/dev/pts/"), n
        said = re.findall(r"/dev/cuse does not open", log)
        assert len(said) == 1, log
        assert len(re.findall(r"is a pty: .*data bits, parity, modem lines "
                              r"\(DTR/RTS\) and BREAK do not", log)) == 3, log
        print("auto: ptys (no /dev/cuse here), said once")
    relay.stop()
    for n in links.values():
        assert not os.path.lexists(n), f"{n} left behind"

    if not cuse_opens():
        bad = relayharness.Relay(td, name="relay-cuse")
        bad.start(bad.config({}) +
                  f"[target.com1]\nkind = serial\npath = {links['com1']}\n"
                  f"tty = cuse\n")
        rc = bad.wait_exit(20)
        text = open(bad.log_path).read()
        assert rc == 1, (rc, text)
        assert re.search(r"target com1: cannot create the CUSE tty "
                         r"/dev/redir-relay/com1 through /dev/cuse: .*"
                         r"tty = auto falls back to a pty", text), text
        assert "start-up failed: exiting" in text, text
        print("tty = cuse without /dev/cuse: exit 1, " +
              re.search(r"cannot create the CUSE tty.*", text).group(0))


harness.main(test)
