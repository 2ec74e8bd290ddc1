# SPDX-License-Identifier: MIT
"""`redir-agent COMMAND` against a running agent (as root or as another
user) and its events stream read on a thread: shared by the control tests
(tests/control) and e2e_control."""
import json
import os
import subprocess
import threading

import harness


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
