#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""1000 concurrent sessions on one relay over loopback: synthetic agents
(bench/relay/relay_scale.c as a single shard, through common/relay_proto
and stream_codec, half lz4, half raw) against 1000 fake QEMU chardevs that greet and echo.
Every session attaches, echoes its bytes intact and leaves; the relay's
memory per session is printed. REDIR_RELAY_LOAD_SESSIONS overrides N."""
import os
import subprocess
import time

import relayharness
from relayharness import harness

SESSIONS = int(os.environ.get("REDIR_RELAY_LOAD_SESSIONS", "1000"))
BYTES = 64 * 1024  # per session, each way
LOAD = harness.find_program("REDIR_RELAY_LOAD", "relay_scale", "tests/relay")


def expect(load, word, timeout):
    """The load generator's next line, which must start with word."""
    deadline = time.monotonic() + timeout
    line = load.stdout.readline()
    if not line.startswith(word) or time.monotonic() > deadline:
        raise AssertionError(f"expected {word}, got {line!r}; "
                             f"{load.stdout.read() if not line else ''}")
    return line.split()


def test(td):
    sock_dir = td.file("q")
    os.mkdir(sock_dir)
    relay = relayharness.Relay(td)
    targets = {f"t{i}": f"unix:{sock_dir}/q{i}" for i in range(SESSIONS)}
    relay.start(relay.config(targets, f"max_sessions = {SESSIONS + 10}\n"
                             # one source, every session at once
                             f"handshakes_max = {SESSIONS + 10}\n"
                             f"handshakes_per_source = {SESSIONS + 10}\n",
                             log_level="info"))
    relay.wait_ready(60)
    base = relay.rss_kib()

    t0 = time.monotonic()
    load = subprocess.Popen(
        [LOAD, str(relay.port), relay.secret_path, sock_dir, "0",
         str(SESSIONS), str(BYTES)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=relayharness.relay_env())
    try:
        _, n, ms = expect(load, "ESTABLISHED", 120)
        established = relay.rss_kib()
        per_session = (established - base) / SESSIONS
        print(f"{n} sessions attached in {ms} ms; relay RSS {base} KiB idle, "
              f"{established} KiB with {n} sessions: "
              f"{per_session:.1f} KiB per session")
        load.stdin.write("go\n")
        load.stdin.flush()
        _, n, ms = expect(load, "ECHOED", 120)
        busy = relay.rss_kib()
        print(f"{n} sessions echoed {BYTES} bytes each way in {ms} ms; relay "
              f"RSS after the traffic {busy} KiB "
              f"({(busy - base) / SESSIONS:.1f} KiB per session)")
        load.stdin.write("close\n")
        load.stdin.flush()
        expect(load, "DONE", 60)
        assert load.wait(10) == 0
    finally:
        if load.poll() is None:
            load.kill()
    relay.wait_log(r"left target 't%d'" % (SESSIONS - 1), timeout=30)

    def all_left():
        return relay.log_text().count(" left target ") == SESSIONS
    harness.wait_for(all_left, 30, f"{SESSIONS} sessions to end")
    text = relay.log_text()
    assert text.count(" attached to target ") == SESSIONS
    assert text.count(", lz4)") == SESSIONS // 2 + SESSIONS % 2
    assert " refused" not in text
    print(f"total {time.monotonic() - t0:.1f} s")
    assert relay.stop(timeout=10) == 0


harness.main(test)
