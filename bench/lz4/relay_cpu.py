# SPDX-License-Identifier: MIT
"""CPU a running redir-relay spends per GiB it pumps, each way, raw and lz4:
a synthetic agent (tests/relay/relayproto.py) and a fake QEMU that only
count bytes; the relay's utime+stime from /proc. Used by run.py --relay."""
import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                "tests", "relay"))
import relayharness  # noqa: E402
import relayproto  # noqa: E402
from relayharness import harness  # noqa: E402

GIB = 1 << 30


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sink:
    """Fake QEMU: counts what arrives; or sends `send` bytes `times`."""

    def __init__(self, send=None, times=0):
        self.total = 0
        self.send, self.times = send, times
        self.done = threading.Event()

    def __call__(self, conn, received):
        if self.send:
            for _ in range(self.times):
                conn.sendall(self.send)
            conn.recv(1)
            return
        while True:
            data = conn.recv(1 << 20)
            if not data:
                return
            self.total += len(data)


def drain(sock, wanted, decoder):
    got = 0
    while got < wanted:
        data = sock.recv(1 << 20)
        if not data:
            raise AssertionError(f"closed after {got} bytes")
        got += len(decoder.feed(data)) if decoder else len(data)


def one_way(relay_path, work, data, lz4, to_qemu):
    times = max(1, GIB // len(data))
    sink = Sink() if to_qemu else Sink(send=data, times=times)
    qemu = relayharness.FakeQemu(handler=sink)
    td = harness.TestDir("lz4bench-relay")
    relay = relayharness.Relay(td, path=relay_path)
    relay.start(relay.config({"t": qemu.address}, log_level="warning"))
    harness.wait_for(lambda: relay.port in harness.listening_ports(), 10,
                     "the relay to listen")
    agent = relayproto.connect_agent(relay.port, relay.secret, "bench", "t",
                                     want_lz4=lz4)
    agent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    c0, t0 = cpu_seconds(relay.pid), time.monotonic()
    if to_qemu:
        wire = relayproto.encode(data) if lz4 else data
        for _ in range(times):
            agent.sendall(wire)
        harness.wait_for(lambda: sink.total >= times * len(data), 120,
                         "QEMU to get it all", 0.01)
    else:
        drain(agent, times * len(data), relayproto.Decoder() if lz4 else None)
    cpu = cpu_seconds(relay.pid) - c0
    wall = time.monotonic() - t0
    agent.close()
    relay.stop()
    qemu.close()
    td.cleanup(True)
    gib = times * len(data) / GIB
    return cpu / gib, gib / wall


def report(relay_path, name, path, work):
    with open(path, "rb") as f:
        data = f.read()
    cells = []
    for to_qemu in (True, False):
        for lz4 in (False, True):
            cpu, rate = one_way(relay_path, work, data, lz4, to_qemu)
            cells.append(f"{'agent->QEMU' if to_qemu else 'QEMU->agent'} "
                         f"{'lz4' if lz4 else 'raw'} {cpu:.2f}")
    print(f"  {name:10} " + ", ".join(cells))
