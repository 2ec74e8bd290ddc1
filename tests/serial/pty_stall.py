#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Evidence, not a ctest: a bare pty pair, with no redir-agent in the
path, stops moving data under CPU load on the kernel of the machine this
was found on (6.18.44-fc, 2 shared cores). It is the cause of the one-off
serial_e2e_data stall (1,046,528 of 1,048,576 bytes after 60 s), whose
"device" is a pty.

A child writes SIZE bytes to the master as fast as select() allows; the
parent reads the raw slave, pausing now and then (as a reader whose
own output is backed up does). When the reader has seen nothing for
STALL_S, the script prints what each side sees: the slave's input queue
(FIONREAD) is empty and a read gives EAGAIN, while the writer has bytes
left. It also prints how often the writer's select() reported the master
writable and the write then failed with EAGAIN.

Seen on 2026-12-02 with the same loop (as /tmp scripts at the time):
under a release build on both cores and then with two busy shell loops
beside it, 11 stalls in 33 runs. Each time the slave's input queue
was 0, read() gave EAGAIN and the writer had megabytes left. In the same
period redir-relay's benchmark stalled twice in the same way on its pty
(port -> VM). This file's own runs, later, with two busy loops: no stall
in 8 runs, and one 20-s hang in 14 runs of a form without the reader's
pauses. So it is load- and timing-dependent, and it is rare:

    tests/serial/pty_stall.py       # repeat while the machine is busy

The agent cannot wake the pty from the reader's side without losing data
(TCIFLUSH restarts the kernel's worker but drops the input). The tests
keep their 1 MiB transfers, and serial_e2e_stress watches for a real
regression in the agent's pause and resume.
"""
import array
import fcntl
import os
import random
import select
import sys
import termios
import time
import tty

SIZE = 8 << 20
STALL_S = 5
PAUSE_CHANCE = 0.01  # per read, the reader stops for PAUSE_S: the slave's
PAUSE_S = 0.002      # 4 KiB input buffer fills and the pty must resume
CHUNK = 65536


def writer(m, report):
    data = os.urandom(CHUNK)
    sent = spins = 0
    last = time.monotonic()
    while sent < SIZE:
        w = select.select([], [m], [], 1)[1]
        try:
            sent += os.write(m, data[:min(CHUNK, SIZE - sent)])
            last = time.monotonic()
        except BlockingIOError:
            spins += bool(w)
        if time.monotonic() - last > STALL_S - 1:
            break
    os.write(report, f"writer: {sent} of {SIZE} sent, {spins} writes "
                     f"failed after select said writable\n".encode())


def main():
    m, s = os.openpty()
    tty.setraw(s)
    os.set_blocking(m, False)
    os.set_blocking(s, False)
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(s)
        writer(m, wr)
        os._exit(0)
    os.close(m)
    got, t0 = 0, time.monotonic()
    rnd = random.Random(1)
    while got < SIZE:
        if not select.select([s], [], [], STALL_S)[0]:
            q = array.array("i", [0])
            fcntl.ioctl(s, termios.FIONREAD, q)
            try:
                n = len(os.read(s, CHUNK))
            except BlockingIOError:
                n = "EAGAIN"
            print(f"STALL: reader got {got} of {SIZE}; slave input queue "
                  f"{q[0]}, read: {n}", flush=True)
            if select.select([rd], [], [], STALL_S + 1)[0]:
                print(os.read(rd, 200).decode().strip())
            else:
                print("writer: still writing (its writes succeed, or its "
                      "select never reports the master writable)")
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return 1
        try:
            got += len(os.read(s, CHUNK))
        except BlockingIOError:
            pass
        if rnd.random() < PAUSE_CHANCE:   # a reader with backpressure
            time.sleep(PAUSE_S)
    os.waitpid(pid, 0)
    print(f"ok: {SIZE} bytes in {time.monotonic() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
