#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The agent's Prometheus endpoint ([agent] metrics_listen): with a disk
redirected to QEMU and a keyboard kept local, /metrics passes `promtool check
metrics` and says so (devices by decision, sessions by state, redirects,
bytes); other paths are 404, garbage is 400; a real Prometheus server
scrapes it once and has the samples."""
import json
import os
import shutil
import socket
import subprocess
import urllib.request

import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port, wait_for


def scrape(port, path="/metrics"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, None, e.read().decode()


def samples(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def prometheus_scrape(td, port):
    """A real Prometheus server scrapes the agent; returns its query result
    for redir_agent_usb_devices."""
    web = free_port()
    conf = td.write("prometheus.yml",
                    "global:\n  scrape_interval: 1s\nscrape_configs:\n"
                    "  - job_name: agent\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{port}']\n")
    proc = subprocess.Popen(
        [shutil.which("prometheus"), f"--config.file={conf}",
         f"--storage.tsdb.path={td.file('tsdb')}",
         f"--web.listen-address=127.0.0.1:{web}"],
        stdout=open(td.file("prometheus.log"), "wb"), stderr=subprocess.STDOUT,
        env=harness.clean_env())
    try:
        def query():
            try:
                url = (f"http://127.0.0.1:{web}/api/v1/query?query="
                       "redir_agent_usb_devices")
                with urllib.request.urlopen(url, timeout=5) as r:
                    res = json.load(r)["data"]["result"]
                    return res or None
            except OSError:
                return None
        return wait_for(query, 60, "Prometheus to scrape the agent", 0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    port, mport = free_port(), free_port()
    qemu = Qemu(td, slots=[("server", port)], paused=False)
    qemu.start()
    qemu.wait_listening(port)
    agent = Agent(td, fx)
    agent.start(f"[agent]\nmetrics_listen = 127.0.0.1:{mport}\n"
                f"[usb]\nconnect = 127.0.0.1:{port}\n")
    agent.wait_log(rf"metrics: Prometheus endpoint on "
                   rf"http://127\.0\.0\.1:{mport}/metrics")
    fx.add("keyboard")
    fx.add("disk", img)
    qemu.wait_usb_devices(1)

    status, ctype, text = scrape(mport)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), \
        (status, ctype)
    check = subprocess.run(["promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, (check.stdout, check.stderr, text)
    s = samples(text)
    assert s['redir_agent_usb_devices{decision="redirect"}'] == 1, s
    assert s['redir_agent_usb_devices{decision="local"}'] >= 1, s
    assert s['redir_agent_usb_sessions{state="redirected"}'] == 1, s
    assert s["redir_agent_usb_redirects_total"] == 1, s
    assert s["redir_agent_usb_running"] == 1, s
    assert s['redir_agent_usb_bytes_total{direction="to_peer"}'] > 0, s
    print(f"metrics: {len(s)} samples, promtool OK")

    assert scrape(mport, "/")[0] == 404
    with socket.create_connection(("127.0.0.1", mport), timeout=10) as c:
        c.sendall(b"\x16\x03\x01 not http\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.0 400")

    res = prometheus_scrape(td, mport)
    got = {r["metric"]["decision"]: r["value"][1] for r in res}
    assert got.get("redirect") == "1", res
    print(f"Prometheus scraped: {res}")
    agent.stop()


harness.main(test)
