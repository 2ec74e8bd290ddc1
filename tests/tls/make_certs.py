#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Test certificates, made with the openssl command (the same commands the
README's "Certificates for a fleet" section shows): a CA, the relay, thin
clients, QEMU's chardev certificates, a revoked thin client with its CRL,
and a second CA nobody trusts (the impostor's).

    make_certs.py DIR      writes DIR/*.pem (keys mode 600) and DIR/qemu-*/

Every name the tests use is an attribute of Certs."""
import os
import subprocess
import sys

DAYS = "3650"


def run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Certs:
    def __init__(self, d):
        self.dir = d

    def path(self, name):
        return os.path.join(self.dir, name)

    # CA ------------------------------------------------------------------
    def make_ca(self, name, cn):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-days", DAYS,
            "-subj", f"/CN={cn}", "-keyout", f"{name}-key.pem",
            "-out", f"{name}.pem",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        os.chmod(self.path(f"{name}-key.pem"), 0o600)
        # what `openssl ca` needs to keep track of what it signed and revoked
        open(self.path(f"{name}-index.txt"), "w").close()
        for f in ("crlnumber", "serial"):
            with open(self.path(f"{name}-{f}"), "w") as out:
                out.write("1000\n")
        os.makedirs(self.path(f"{name}-issued"), exist_ok=True)
        with open(self.path(f"{name}.cnf"), "w") as f:
            f.write(f"""[ca]
default_ca = this
[this]
database = {self.path(name + '-index.txt')}
serial = {self.path(name + '-serial')}
crlnumber = {self.path(name + '-crlnumber')}
new_certs_dir = {self.path(name + '-issued')}
certificate = {self.path(name + '.pem')}
private_key = {self.path(name + '-key.pem')}
default_md = sha256
default_days = {DAYS}
default_crl_days = {DAYS}
policy = any
unique_subject = no
[any]
commonName = supplied
""")

    def make_cert(self, ca, name, cn, usage, san=None):
        """A key and a certificate signed by ca; usage: serverAuth,
        clientAuth or both."""
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}-key.pem",
            "-out", f"{name}.csr", cwd=self.dir)
        os.chmod(self.path(f"{name}-key.pem"), 0o600)
        ext = self.path(f"{name}.ext")
        with open(ext, "w") as f:
            f.write(f"extendedKeyUsage={usage}\n")
            f.write("keyUsage=critical,digitalSignature\n")
            if san:
                f.write(f"subjectAltName={san}\n")
        # `openssl ca` records what it signs, so that it can revoke it
        run("ca", "-batch", "-config", f"{ca}.cnf", "-notext", "-in",
            f"{name}.csr", "-extfile", ext, "-out", f"{name}.pem",
            cwd=self.dir)

    def revoke(self, ca, name):
        run("ca", "-config", f"{ca}.cnf", "-revoke", f"{name}.pem",
            cwd=self.dir)

    def make_crl(self, ca, out):
        run("ca", "-config", f"{ca}.cnf", "-gencrl", "-out", out,
            cwd=self.dir)

    def qemu_dir(self, name, role, cert):
        """QEMU's tls-creds-x509 directory: ca-cert.pem and, for role
        server, server-cert.pem/server-key.pem, for client the client-
        ones."""
        d = self.path(name)
        os.makedirs(d, exist_ok=True)
        for src, dst in (("ca.pem", "ca-cert.pem"),
                         (f"{cert}.pem", f"{role}-cert.pem"),
                         (f"{cert}-key.pem", f"{role}-key.pem")):
            with open(self.path(src), "rb") as f, \
                    open(os.path.join(d, dst), "wb") as g:
                g.write(f.read())
        os.chmod(os.path.join(d, f"{role}-key.pem"), 0o600)
        return d


def make_all(d):
    """Everything the TLS tests use, into directory d; returns Certs."""
    os.makedirs(d, exist_ok=True)
    c = Certs(d)
    c.make_ca("ca", "redir-agent test CA")
    c.make_ca("rogue-ca", "somebody else's CA")
    local = "IP:127.0.0.1,DNS:localhost"
    # relay.example in the SAN too: with a SAN, names are checked against
    # it alone (the CN is not looked at), and the link bench dials the
    # relay at a namespace address, naming it tls_peer_name = relay.example
    relay = local + ",DNS:relay.example"
    c.make_cert("ca", "relay", "relay.example", "serverAuth,clientAuth",
                relay)
    c.make_cert("rogue-ca", "rogue-relay", "relay.example",
                "serverAuth,clientAuth", relay)
    c.make_cert("ca", "wrong-name", "elsewhere.example", "serverAuth",
                "DNS:elsewhere.example")
    for desk in ("desk-17", "desk-18", "desk-99"):
        c.make_cert("ca", desk, desk, "clientAuth,serverAuth", local)
    c.make_cert("rogue-ca", "rogue-desk", "desk-17", "clientAuth")
    c.make_cert("ca", "qemu", "qemu.example", "serverAuth,clientAuth", local)
    c.make_crl("ca", "crl-none.pem")
    c.revoke("ca", "desk-99")
    c.make_crl("ca", "crl.pem")
    c.qemu_dir("qemu-server", "server", "qemu")
    c.qemu_dir("qemu-client", "client", "qemu")
    return c


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_certs.py DIR")
    make_all(sys.argv[1])
