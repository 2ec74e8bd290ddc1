#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Printers: write-only, raw. A FIFO named lp0 (detected as a printer by
its name; epoll works on it) and a regular file with kind = printer (epoll
refuses it: timer-driven writes) receive exactly the bytes sent, the tail
of a job included; a printer whose reader goes away is reopened when one
is back."""
import os
import time

import serial_harness as sh
from serial_harness import harness

JOB = 1 << 20


def check_fifo(agent, path, port):
    reader = sh.FifoReader(path)
    agent.wait_log(r"\[serial.lp\] .*lp0 opened \(printer, write-only\)")
    s = sh.connect(port)
    job = sh.random_payload(JOB, 9)
    s.sendall(job)
    s.shutdown(2 - 1)                         # SHUT_WR: end of the job
    assert sh.wait_closed(s, timeout=30) == b""
    assert reader.wait_for(JOB) == job
    time.sleep(0.2)
    assert len(reader.data) == JOB, "extra bytes at the printer"

    # the printer goes away (no reader): lost, then back
    off = agent.log_offset()
    reader.close()
    s = sh.connect(port)
    s.sendall(b"lost job")
    agent.wait_log(r"\[serial.lp\] .*lp0 vanished", start_offset=off)
    sh.wait_closed(s)
    reader = sh.FifoReader(path)
    agent.wait_log(r"\[serial.lp\] .*lp0 opened", start_offset=off)
    s = sh.connect(port)
    s.sendall(b"second job")
    assert reader.wait_for(10) == b"second job"
    s.close()
    reader.close()


def check_file(agent, path, port):
    agent.wait_log(r"\[serial.spool\] .*spool.bin opened \(printer")
    s = sh.connect(port)
    job = sh.random_payload(256 * 1024, 10)
    s.sendall(job)
    s.close()
    agent.wait_log(r"\[serial.spool\] .*disconnected \(closed by peer\)")

    def written():
        with open(path, "rb") as f:
            return f.read() == job
    harness.wait_for(written, 10, "the job in the spool file")


def test(td):
    fifo = td.file("lp0")
    os.mkfifo(fifo)
    spool = td.file("spool.bin")
    open(spool, "wb").close()
    lp_port, spool_port = harness.free_port(), harness.free_port()
    agent = sh.SerialAgent(td).start(
        sh.port_section("lp", fifo, listen=lp_port) +
        sh.port_section("spool", spool, listen=spool_port, kind="printer"))
    # no reader yet: open() fails with ENXIO, which is "not there yet"
    agent.wait_log(r"\[serial.lp\] .*cannot open .*lp0: No such device or "
                   r"address; retrying")
    check_fifo(agent, fifo, lp_port)
    check_file(agent, spool, spool_port)
    agent.stop()


harness.main(test)
