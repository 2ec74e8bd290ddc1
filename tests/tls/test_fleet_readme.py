#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The README's "Certificates for a fleet" commands, run as written: the CA
and certificates they make verify, the relay's carries its name, and the
revocation steps put desk-18 (and only desk-18) into the CRL."""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import harness  # noqa: E402

README = os.path.join(os.path.dirname(os.path.dirname(HERE)), "README.md")


def blocks():
    text = open(README).read()
    section = text.split("### Certificates for a fleet", 1)[1]
    section = section.split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def sh(script, cwd):
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{script}\n--- {r.stderr}"
    return r.stdout


def verify(cwd, name, crl=False):
    args = ["openssl", "verify", "-CAfile", "ca.pem"]
    if crl:
        args += ["-crl_check", "-CRLfile", "crl.pem"]
    return subprocess.run(args + [f"{name}.pem"], cwd=cwd,
                          capture_output=True, text=True).returncode == 0


def test(td):
    make, install, revoke = blocks()[:3]
    work = td.file("admin")
    os.makedirs(work)
    sh(make, work)
    ca = os.path.join(work, "fleet-ca")
    for name in ("relay.example", "desk-17", "desk-18"):
        assert verify(ca, name, crl=True), name
        mode = os.stat(os.path.join(ca, f"{name}-key.pem")).st_mode & 0o777
        assert mode & 0o077 == 0, f"{name}-key.pem is mode {mode:o}"
    san = sh("openssl x509 -in relay.example.pem -noout -ext "
             "subjectAltName", ca)
    assert "DNS:relay.example" in san, san
    # the revocation block, without the service reloads
    steps = [line for line in revoke.splitlines()
             if line.startswith("openssl ")]
    assert len(steps) == 2, steps
    sh("\n".join(steps), ca)
    assert not verify(ca, "desk-18", crl=True), "desk-18 still verifies"
    assert verify(ca, "desk-17", crl=True), "desk-17 was revoked too"
    assert "install" in install and "chmod" not in install


harness.main(test)
