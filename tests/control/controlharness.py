# SPDX-License-Identifier: MIT
"""Helpers for the control tests: puts tests/e2e on the path (harness,
agentctl's run/ok/Events) and checks refusals in text and JSON."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "e2e")
if E2E not in sys.path:
    sys.path.insert(0, E2E)
import harness  # noqa: E402
from agentctl import Events, ok, run  # noqa: E402,F401 - re-exported


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
