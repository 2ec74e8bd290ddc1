#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""TLS 1.3 between the agent and QEMU's own TLS chardevs (tls-creds-x509,
verify-peer=on), both dial directions: SeaBIOS boots from the redirected
disk over TLS. Then the attacks: an agent whose certificate QEMU's CA did
not sign gets no device into the VM, and QEMU presenting a certificate for
another name is refused by the agent."""
import tlsharness
import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port


def agent_usb(mode, port, keys):
    return (f"[usb]\n{mode} = 127.0.0.1:{port}\nreconnect_max_ms = 300\n"
            f"{keys}")


def boot(td, fx, certs, mode):
    """mode connect: QEMU's chardev is the TLS server, the agent dials it;
    listen: QEMU dials the agent, which is the TLS server."""
    port = free_port()
    qemu_role = "server" if mode == "connect" else "client"
    qemu = Qemu(td, name=f"qemu-{mode}", slots=[(qemu_role, port)],
                paused=False, usb_attach_wait_ms=4000,
                tls={qemu_role: certs.path(f"qemu-{qemu_role}")})
    agent = Agent(td, fx, name=f"agent-{mode}")
    if mode == "listen":
        agent.start(agent_usb("listen", port, certs.tls_keys("desk-17")))
        agent.wait_log(r"slot 1: listening on 127\.0\.0\.1:\d+ \(TLS")
        qemu.start()
    else:
        qemu.start()
        qemu.wait_listening(port)
        agent.start(agent_usb("connect", port, certs.tls_keys("desk-17")))
    agent.wait_log(r'"Emulated Disk" at 1-1: redirected rw to 127\.0\.0\.1:'
                   r"\d+ \(slot 1\) over TLS \(certificate 'qemu\.example'\)")
    qemu.wait_usb_devices(1)
    qemu.wait_boot(timeout=90)
    agent.stop()
    qemu.stop()


def test(td):
    certs = tlsharness.certs(td)
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 4)
    fx = Fixture(td).start()
    fx.add("disk", img)

    boot(td, fx, certs, "connect")
    boot(td, fx, certs, "listen")

    # Attack: a thin client whose certificate another CA signed. QEMU
    # refuses it (TLS 1.3 checks the client's certificate after the
    # handshake, and QEMU just hangs up); the agent logs it and retries;
    # the VM never sees a device.
    port = free_port()
    qemu = Qemu(td, name="qemu-strict", slots=[("server", port)],
                paused=False, tls={"server": certs.path("qemu-server")})
    qemu.start()
    qemu.wait_listening(port)
    rogue = Agent(td, fx, name="agent-rogue")
    rogue.start(agent_usb("connect", port,
                          certs.tls_keys("rogue-desk", ca="ca")))
    rogue.wait_log(r'"Emulated Disk" at 1-1: peer 127\.0\.0\.1:\d+ closed the '
                   r"connection before its hello: end of file \(over TLS: it "
                   r"may have refused this thin client's certificate\)")
    assert qemu.info_usb() == [], "QEMU got a device from an untrusted agent"
    rogue.stop()

    # Attack: the chardev answers with a certificate for another name (a
    # machine that took over the address): the agent hands nothing over.
    careful = Agent(td, fx, name="agent-careful")
    careful.start(agent_usb("connect", port, certs.tls_keys(
        "desk-17", peer_name="vm-host-2.example")))
    careful.wait_log(r'"Emulated Disk" at 1-1: cannot connect to 127\.0\.0\.1:'
                     r"\d+: .*certificate: [Hh]ostname mismatch")
    assert qemu.info_usb() == [], "a device reached the wrong QEMU"
    careful.stop()
    qemu.stop()


harness.main(test)
