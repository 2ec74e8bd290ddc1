#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The command line as an admin meets it: --help, --version, --check-config,
and bad configs refused with FILE:LINE: what is wrong, exit status 1; a
control socket whose directory is missing names the directory."""
import os
import subprocess

import harness

AGENT = harness.find_program("REDIR_AGENT", "redir-agent", "agent")
SAMPLE = os.path.join(harness.SOURCE_ROOT, "conf", "redir-agent.ini")


def run(*args):
    return subprocess.run([AGENT, *args], capture_output=True, text=True,
                          timeout=10, env=harness.preload_env())


def test(td):
    r = run("--help")
    assert r.returncode == 0 and "Usage: redir-agent [-c FILE] [-f]" in r.stdout, r
    assert "--check-config" in r.stdout
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("redir-agent "), r
    r = run("--bogus")
    assert r.returncode == 2 and "Usage:" in r.stderr, r
    r = run("-c", SAMPLE, "--check-config")
    assert r.returncode == 0 and "configuration OK" in r.stdout, r

    cases = [
        ("[usb]\nconnect = 127.0.0.1:4000\nlisten = 0.0.0.0:4000\n", 3,
         "[usb] listen: 'connect' and 'listen' are exclusive"),
        ("[usb]\nconnect = 127.0.0.1:70000\n", 2, "port must be a number"),
        ("[serial]\n", 1, "unknown section [serial]"),
        ("[usb]\nconect = 1.2.3.4:5\n", 2, "unknown key 'conect'"),
        ("[usb]\nfilter = 0x03,-1\n", 2, "not a valid usbredirfilter"),
        ("[agent]\nlog_level = chatty\n", 2, "'chatty' is not one of"),
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
    assert r.returncode == 1 and "missing.ini: cannot open: No such file" in r.stderr

    # a control socket in a directory that does not exist (a manual run
    # without the service's RuntimeDirectory): the directory is named,
    # not libuv's "permission denied"
    sock = td.file("nodir/control.sock")
    r = run("-f", "-c", td.write("nodir.ini", f"[agent]\ncontrol_socket = "
                                 f"{sock}\n"))
    assert r.returncode == 1, r
    assert f"directory {td.file('nodir')} does not exist" in r.stderr, r.stderr


harness.main(test)
