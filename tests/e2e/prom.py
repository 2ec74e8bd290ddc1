# SPDX-License-Identifier: MIT
"""Prometheus helpers shared by the metrics tests (agent and relay): fetch
an endpoint, check it with promtool, read its samples, and a real
Prometheus server scraping one target."""
import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import harness


def get(port, path="/metrics"):
    """(HTTP status, Content-Type, body) of http://127.0.0.1:PORT/PATH."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, None, e.read().decode()


def samples(text):
    """{'name{labels}': value} of an exposition text."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def promtool_check(text):
    check = subprocess.run(["promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, (check.stdout, check.stderr, text)


def checked_samples(port):
    """The endpoint's samples, after promtool accepted the page."""
    status, _, text = get(port)
    assert status == 200, (status, text)
    promtool_check(text)
    return samples(text)


class Prometheus:
    """A real Prometheus server scraping one target every second."""

    def __init__(self, td, job, target):
        self.job = job
        self.web = harness.free_port()
        conf = td.write("prometheus.yml",
                        "global:\n  scrape_interval: 1s\nscrape_configs:\n"
                        f"  - job_name: {job}\n    static_configs:\n"
                        f"      - targets: ['{target}']\n")
        self.proc = subprocess.Popen(
            [shutil.which("prometheus"), f"--config.file={conf}",
             f"--storage.tsdb.path={td.file('tsdb')}",
             f"--web.listen-address=127.0.0.1:{self.web}"],
            stdout=open(td.file("prometheus.log"), "wb"),
            stderr=subprocess.STDOUT, env=harness.clean_env())

    def query(self, expr):
        """{labels-as-tuple: value} for an instant query, or None if
        Prometheus is not answering yet."""
        url = (f"http://127.0.0.1:{self.web}/api/v1/query?query="
               + urllib.parse.quote(expr))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                res = json.load(r)["data"]["result"]
        except OSError:
            return None
        return {tuple(sorted((k, v) for k, v in r["metric"].items()
                             if k not in ("__name__", "job", "instance"))):
                float(r["value"][1]) for r in res}

    def wait(self, expr, want, what):
        """Waits until the query gives want ({labels: value}, or a
        predicate of it)."""
        last = [None]

        def check():
            last[0] = self.query(expr)
            if callable(want):
                return last[0] and want(last[0]) or None
            return last[0] == want or None
        try:
            return harness.wait_for(check, 60, f"Prometheus: {what}", 0.5)
        except TimeoutError:
            raise AssertionError(f"Prometheus: {what}: {expr} is {last[0]}; "
                                 f"targets: {self.targets()}")

    def targets(self):
        url = f"http://127.0.0.1:{self.web}/api/v1/targets"
        with urllib.request.urlopen(url, timeout=5) as r:
            return [(t["health"], t["lastError"])
                    for t in json.load(r)["data"]["activeTargets"]]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
