# SPDX-License-Identifier: MIT
"""Helpers for the control tests: `redir-agent COMMAND` against a running
agent (as root or as another user), and the events stream read on a
thread. Imports tests/e2e/harness.py as harness."""
import json
import os
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "e2e")
if E2E not in sys.path:
    sys.path.insert(0, E2E)
import harness  # noqa: E402


def run(agent, fx, *args, uid=None, gid=0, groups=()):
    """redir-agent ARGS --socket ...; as uid/gid/groups if uid is given."""
    def drop():
        os.setgroups(list(groups))
        os.setgid(gid)
        os.setuid(uid)
    return subprocess.run([agent.path, *args, "--socket", agent.control_socket],
                          capture_output=True, text=True, timeout=20,
                          env=harness.preload_env(fx.umockdev_dir),
                          preexec_fn=drop if uid is not None else None)


def ok(agent, fx, *args, **kw):
    r = run(agent, fx, *args, **kw)
    assert r.returncode == 0, r
    return r.stdout


def refused(agent, fx, *args, why, rc=1, **kw):
    """Runs a command that must fail with exit rc, saying why; returns
    the JSON answer of the same command with --json."""
    r = run(agent, fx, *args, **kw)
    assert r.returncode == rc and why in r.stdout + r.stderr, (why, r)
    j = run(agent, fx, *args, "--json", **kw)
    assert j.returncode == rc, j
    answer = json.loads(j.stdout)
    assert answer["ok"] is False and why in answer["error"], (why, answer)
    return answer


class Events:
    """redir-agent events, read on a thread into .lines (dicts)."""

    def __init__(self, agent, fx):
        self.lines = []
        self.proc = subprocess.Popen(
            [agent.path, "events", "--socket", agent.control_socket],
            stdout=subprocess.PIPE, text=True,
            env=harness.preload_env(fx.umockdev_dir))
        threading.Thread(target=self._read, daemon=True).start()
        harness.wait_for(
            lambda: any(e["event"] == "subscribed" for e in self.lines), 10,
            "the events subscription")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def wait(self, event, since=0, timeout=20, **match):
        def find():
            for e in self.lines[since:]:
                if e["event"] == event and all(e.get(k) == v
                                               for k, v in match.items()):
                    return e
            return None
        return harness.wait_for(find, timeout, f"event {event} {match} "
                                f"(got {self.lines[since:]})")

    def mark(self):
        return len(self.lines)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
