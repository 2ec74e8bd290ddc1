#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The agent's side of transport security, tried as an attacker on the
network would:
- a man in the middle between agent and relay sees only ciphertext (not the
  relay handshake, not a disk sector) while the VM boots from the disk;
- a relay whose certificate our CA did not sign gets nothing;
- in shared-secret mode, a spoofed relay that cannot prove the secret gets
  no device;
- a USB listen slot takes connections only from its allow list, and a
  second peer does not take a device from the first (replace_peer = no);
- a listen address others can reach, with neither allow nor TLS, is a
  config error."""
import os
import socket
import subprocess
import threading

import tlsharness
import harness
import relayharness
import relayproto
from harness import Agent, Fixture, Qemu, diskimage, free_port


def relay_text(relay, certs, cert, target, qemu_addr):
    return (f"[relay]\nlisten = 127.0.0.1:{relay.port}\nlog_level = debug\n"
            f"{certs.tls_keys(cert)}\n"
            f"[target.{target}]\nqemu = {qemu_addr}\n")


def agent_relay(port, target, keys):
    return (f"[usb]\nconnect = 127.0.0.1:{port}/{target}\n"
            f"reconnect_max_ms = 500\n{keys}")


def mitm_sees_ciphertext(td, fx, certs):
    """Agent -TLS-> proxy 1 -> relay -> proxy 2 (plain) -> QEMU: what the
    disk sends shows on the plain leg, never on the TLS one."""
    qport = free_port()
    plain = tlsharness.RecordingProxy(qport)
    relay = relayharness.Relay(td)
    relay.start(relay_text(relay, certs, "relay", "vm1",
                           f"127.0.0.1:{plain.port}"))
    relay.wait_ready()
    tapped = tlsharness.RecordingProxy(relay.port)
    agent = Agent(td, fx)
    agent.start(agent_relay(tapped.port, "vm1", certs.tls_keys("desk-17")))
    # QEMU last: the agent is already retrying, so the device arrives
    # while SeaBIOS still waits for USB devices
    agent.wait_log(r"peer 127\.0\.0\.1:\d+ closed the connection before its "
                   r"hello: end of file; retrying")
    qemu = Qemu(td, slots=[("server", qport)], paused=False,
                usb_attach_wait_ms=4000)
    qemu.start()
    agent.wait_log(r'"Emulated Disk" at 1-1: redirected rw to 127\.0\.0\.1:'
                   r"\d+ \(slot 1\) over TLS \(certificate 'relay\.example'\)")
    qemu.wait_boot(timeout=90)
    seen = bytes(tapped.up) + bytes(tapped.down)
    clear = bytes(plain.up)
    boot_sector = diskimage.DEFAULT_MESSAGE.encode()
    assert boot_sector in clear and b"redir-agent" in clear, \
        "the check is void: the boot sector is not on the plain leg"
    for secret in (boot_sector, b"redir-agent", b"RDRL", b"desk-17"):
        assert secret not in seen, f"{secret!r} readable on the TLS leg"
    relay.wait_log(r"agent 'desk-17' \(127\.0\.0\.1:\d+\) attached to target "
                   r"'vm1'")
    agent.stop()
    relay.stop()
    qemu.stop()


def impostor_relay(td, fx, certs):
    """A relay with a certificate from another CA: the agent refuses it
    during the handshake, before any byte of the relay protocol."""
    fake_qemu = relayharness.FakeQemu()
    rogue = relayharness.Relay(td, name="rogue")
    rogue.start(relay_text(rogue, certs, "rogue-relay", "vm1",
                           fake_qemu.address).replace(
        certs.path("ca.pem"), certs.path("rogue-ca.pem")))
    rogue.wait_ready()
    agent = Agent(td, fx, name="agent-fooled")
    agent.start(agent_relay(rogue.port, "vm1", certs.tls_keys("desk-17")))
    agent.wait_log(r'"Emulated Disk" at 1-1: cannot connect to 127\.0\.0\.1:'
                   r"\d+: protocol error: certificate: (unable to get local "
                   r"issuer certificate|self-signed certificate in "
                   r"certificate chain)")
    rogue.wait_log(r"TLS handshake failed")
    assert fake_qemu.accepted == 0, "the impostor got a session"
    agent.stop()
    rogue.stop()


def spoofed_secret_relay(td, fx):
    """Shared-secret mode: a relay that answers "ok" without proving it
    knows the secret (version 2 makes it prove it) gets no usbredir."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    got = {"after": b"", "auths": 0}

    def serve():
        while True:
            c, _ = ls.accept()
            with c:
                hello = relayproto.message(
                    b"H", bytes([1, 2]) + (0).to_bytes(4, "big") +
                    relayproto.string(os.urandom(32)))
                c.sendall(hello)
                relayproto.recv_message(c)
                got["auths"] += 1
                c.sendall(relayproto.message(
                    b"R", bytes([0]) + (0).to_bytes(4, "big") +
                    relayproto.string(b"") + relayproto.string(b"")))
                c.settimeout(2)
                try:
                    got["after"] += c.recv(4096)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    secret = td.file("agent.secret")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"a-secret-the-impostor-does-not-know\n")
    os.close(fd)
    agent = Agent(td, fx, name="agent-hmac")
    agent.start(f"[usb]\nconnect = 127.0.0.1:{ls.getsockname()[1]}/vm1\n"
                f"relay_secret_file = {secret}\n")
    agent.wait_log(r"did not prove that it knows the secret")
    agent.stop()
    assert got["auths"] >= 1 and got["after"] == b"", got


def listen_guards(td, fx):
    """allow: only listed addresses; replace_peer = no: a second peer does
    not take the device from a live first one."""
    port = free_port()
    agent = Agent(td, fx, name="agent-listen")
    agent.start(f"[usb]\nlisten = 127.0.0.1:{port}\n"
                f"allow = 127.0.0.2/32, 10.0.0.0/8\n")
    agent.wait_log(r'"Emulated Disk" at 1-1: waiting for the peer')
    outsider = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert outsider.recv(64) == b"", "an address outside allow was served"
    agent.wait_log(r"usb listener: connection from 127\.0\.0\.1:\d+ refused: "
                   r"address not in allow")
    first = socket.create_connection(("127.0.0.1", port), timeout=5,
                                     source_address=("127.0.0.2", 0))
    agent.wait_log(r'"Emulated Disk" at 1-1: connected to 127\.0\.0\.2:\d+ '
                   r"\(slot 1\); waiting for its usbredir hello")
    second = socket.create_connection(("127.0.0.1", port), timeout=5,
                                      source_address=("127.0.0.2", 0))
    assert second.recv(64) == b"", "a second peer was served"
    agent.wait_log(r"refusing a second peer from 127\.0\.0\.2:\d+: the device "
                   r"is in use by 127\.0\.0\.2:\d+ \(replace_peer = no\)")
    first.close()
    second.close()
    agent.stop()


def open_listen_is_an_error(td, agent_path):
    cfg = td.file("open.ini")
    with open(cfg, "w") as f:
        f.write("[usb]\nlisten = 0.0.0.0:4000\n")
    r = subprocess.run([agent_path, "--check-config", "-c", cfg],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "0.0.0.0:4000 takes a connection from " \
        "anyone" in r.stderr and "allow =" in r.stderr, r.stderr


def test(td):
    certs = tlsharness.certs(td)
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 4)
    fx = Fixture(td).start()
    fx.add("disk", img)
    mitm_sees_ciphertext(td, fx, certs)
    impostor_relay(td, fx, certs)
    spoofed_secret_relay(td, fx)
    listen_guards(td, fx)
    open_listen_is_an_error(td, harness.find_program(
        "REDIR_AGENT", "redir-agent", "agent"))


harness.main(test)
