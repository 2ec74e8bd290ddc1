#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""redir-relay's command line as an admin meets it: --help, --version,
--check-config, config and secret-file errors as FILE:LINE: what is wrong,
a port already in use, SIGTERM and SIGINT exiting 0 at once."""
import os
import signal
import socket
import subprocess
import time

import relayharness
from relayharness import harness

RELAY = harness.find_program("REDIR_RELAY", "redir-relay", "relay")


def run(*args):
    return subprocess.run([RELAY, *args], capture_output=True, text=True,
                          timeout=10, env=relayharness.relay_env())


def test(td):
    r = run("--help")
    assert r.returncode == 0 and "Usage: redir-relay [-c FILE] [-f]" in r.stdout, r
    assert "--check-config" in r.stdout and "/etc/redir-relay.ini" in r.stdout
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("redir-relay "), r
    r = run("--bogus")
    assert r.returncode == 2 and "Usage:" in r.stderr, r
    r = run("extra")
    assert r.returncode == 2 and "unexpected argument 'extra'" in r.stderr, r

    relay = relayharness.Relay(td)
    good = td.write("good.ini", relay.config({"vm1": "127.0.0.1:4000"}))
    r = run("-c", good, "--check-config")
    assert r.returncode == 0 and "configuration OK (1 target)" in r.stdout, r

    open_secret = td.file("open.secret")
    with open(open_secret, "w") as f:
        f.write("0123456789abcdef0123\n")
    os.chmod(open_secret, 0o644)
    short_secret = td.file("short.secret")
    with open(short_secret, "w") as f:
        f.write("tooshort\n")
    os.chmod(short_secret, 0o600)
    head = f"[relay]\nlisten = 127.0.0.1:{relay.port}\n"
    cases = [
        (head + f"secret_file = {open_secret}\n[target.a]\nqemu = h:1\n", 3,
         f"[relay] secret_file: {open_secret}: readable or writable by "
         f"others (mode 0644); a secret or key must not be: chmod 600"),
        (head + f"secret_file = {short_secret}\n[target.a]\nqemu = h:1\n", 3,
         "the secret must be 16 to 1024 bytes long"),
        (head + f"secret_file = {relay.secret_path}\n", 1,
         "no [target.NAME] section"),
        (head + f"secret_file = {relay.secret_path}\n[target.a]\n"
         f"qemu = h:1\nmode = sideways\n", 6,
         "[target.a] mode: 'sideways' is not connect or listen"),
        ("[relay]\nlisten = 127.0.0.1\n", 2,
         "[relay] listen: '127.0.0.1': expected HOST:PORT"),
        ("[agent]\n", 1, "unknown section [agent]"),
        ("just garbage\n", 1, "syntax error"),
    ]
    for text, line, what in cases:
        path = td.write("bad.ini", text)
        for args in (["-c", path, "--check-config"], ["-f", "-c", path]):
            r = run(*args)
            first = r.stderr.splitlines()[0] if r.stderr else ""
            assert r.returncode == 1, (args, text, r)
            assert first.startswith(f"{path}:{line}: "), (text, first)
            assert what in first, (text, first)
    r = run("-c", td.file("missing.ini"), "-f")
    assert r.returncode == 1 and "missing.ini: cannot open: No such file" \
        in r.stderr, r

    # The agents' port taken: a clear error, exit 1.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", relay.port))
        busy.listen(1)
        relay.start(relay.config({"vm1": "127.0.0.1:4000"}))
        assert relay.wait_exit(10) == 1
        relay.wait_log(rf"cannot listen on 127\.0\.0\.1:{relay.port}: address "
                       rf"already in use")

    # SIGTERM and SIGINT: exit 0 at once, logged.
    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        off = relay.log_offset()
        relay.start(relay.config({"vm1": "127.0.0.1:4000"}))
        relay.wait_log(r"listening for agents", start_offset=off)
        t0 = time.monotonic()
        relay.signal(sig)
        assert relay.wait_exit(5) == 0
        assert time.monotonic() - t0 < 2
        relay.wait_log(rf"{name}: closing 0 sessions and exiting",
                       start_offset=off)


harness.main(test)
