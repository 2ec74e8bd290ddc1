#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""redir-relay with TLS: agents are who their certificates say, targets say
which agents may use them, and a revoked or denied thin client is cut off by
a reload without touching the others. Agents here are Python TLS clients
speaking the relay protocol (tests/relay/relayproto.py) to echoing fake
QEMU chardevs. Each block names the attack it answers."""
import os
import signal
import socket
import ssl

import tlsharness
import harness
import relayharness
import relayproto
from relayharness import FakeQemu


def relay_config(relay, certs, qemus, extra="", crl=None):
    text = (f"[relay]\nlisten = 127.0.0.1:{relay.port}\nlog_level = debug\n"
            f"{certs.tls_keys('relay', crl=crl)}{extra}\n")
    for name, (qemu, agents) in qemus.items():
        text += f"[target.{name}]\nqemu = {qemu.address}\n"
        if agents:
            text += f"agents = {agents}\n"
    return text


def reload(relay, text):
    with open(relay.config_path, "w") as f:
        f.write(text)
    at = relay.log_offset()
    os.kill(relay.pid, signal.SIGHUP)
    relay.wait_log(r"SIGHUP: configuration reloaded", start_offset=at)
    return at


def connect(relay, certs, cert, target, agent_id=None, ca="ca"):
    """An accepted agent connection showing certificate cert, without any
    secret (certificate mode); ProtocolError on refusal."""
    return relayproto.connect_agent(relay.port, None, agent_id or cert or "x",
                                    target,
                                    tls=certs.client_context(cert, ca=ca))


def refused(relay, certs, cert, target, agent_id=None, ca="ca"):
    try:
        s = connect(relay, certs, cert, target, agent_id, ca)
    except (relayproto.ProtocolError, ssl.SSLError, OSError) as e:
        return str(e)
    # TLS 1.3: a refused client certificate shows at the first read
    try:
        s.settimeout(2)
        if s.recv(1) == b"":
            return "closed"
    except socket.timeout:
        pass
    except (ssl.SSLError, OSError) as e:
        return str(e)
    raise AssertionError(f"{cert} on {target} was accepted")


def alive(s):
    """True if s still echoes."""
    try:
        return tlsharness.echo(s, b"ping", timeout=5) == b"ping"
    except (AssertionError, TimeoutError, OSError):
        return False


def test(td):
    certs = tlsharness.certs(td)
    q1, q2, q3 = FakeQemu(), FakeQemu(), FakeQemu()
    targets = {"vm1": (q1, "desk-17"), "vm2": (q2, "desk-1*, desk-99"),
               "vm3": (q3, None)}
    relay = relayharness.Relay(td)
    relay.start(relay_config(relay, certs, targets))
    relay.wait_log(r"listening for agents on .*TLS 1\.3, agents by "
                   r"certificate")

    a17 = connect(relay, certs, "desk-17", "vm1")
    assert alive(a17)
    relay.wait_log(r"agent 'desk-17' \(127\.0\.0\.1:\d+\) attached to target "
                   r"'vm1'")
    a99 = connect(relay, certs, "desk-99", "vm2")
    assert alive(a99)

    # Attack: a thin client without a certificate (anyone on the network).
    why = refused(relay, certs, None, "vm3")
    relay.wait_log(r"agents listener: connection from 127\.0\.0\.1:\d+ "
                   r"refused: TLS handshake failed: .*certificate")
    # Attack: a certificate from another CA that claims to be desk-17.
    refused(relay, certs, "rogue-desk", "vm3")
    relay.wait_log(r"refused: TLS handshake failed: certificate: unable to "
                   r"get local issuer certificate|refused: TLS handshake "
                   r"failed: .*unknown ca|certificate verify failed")
    # Attack: a genuine thin client asking for a target that is not its
    # own (another user's VM).
    why = refused(relay, certs, "desk-18", "vm1")
    assert "may not use target 'vm1'" in why, why
    relay.wait_log(r"'desk-18' may not use target 'vm1' \(agents = desk-17\)")
    # Attack: a stolen thin client (desk-18) that claims desk-17's agent
    # id to evict it: identity is the certificate, not the claimed id.
    b = connect(relay, certs, "desk-18", "vm3", agent_id="desk-17")
    assert alive(b) and alive(a17), "desk-17 was evicted by a claimed id"
    why = refused(relay, certs, "desk-17", "vm3")
    assert "in use by agent 'desk-18'" in why, why
    b.close()
    # Revocation: desk-99's thin client is stolen. The admin revokes its
    # certificate and reloads: its session is cut, desk-17 keeps running.
    reload(relay, relay_config(relay, certs, targets, crl="crl.pem"))
    relay.wait_log(r"agent 'desk-99' .* left target 'vm2' after [\d.]+ s: "
                   r"certificate: certificate revoked")
    relay.wait_log(r"SIGHUP: 1 agent session\(s\) cut off")
    assert alive(a17), "desk-17 lost its session on the reload"
    assert not alive(a99), "the revoked desk-99 still talks to its VM"
    refused(relay, certs, "desk-99", "vm2")
    relay.wait_log(r"TLS handshake failed: certificate: certificate revoked")

    # Deny list: cut off by name, without a CRL (e.g. a lost thin client
    # before the CA has been reached), again without touching desk-17.
    a18 = connect(relay, certs, "desk-18", "vm2")
    assert alive(a18)
    reload(relay, relay_config(relay, certs, targets, crl="crl.pem",
                               extra="deny_agents = desk-18, lab-*\n"))
    relay.wait_log(r"agent 'desk-18' .* left target 'vm2' after [\d.]+ s: "
                   r"certificate 'desk-18' is now denied")
    why = refused(relay, certs, "desk-18", "vm2")
    assert "is denied (deny_agents)" in why, why
    assert alive(a17), "desk-17 lost its session on the second reload"

    # A reload with a TLS file that does not load keeps the old config.
    bad = relay_config(relay, certs, targets).replace(
        certs.path("relay-key.pem"), certs.path("nothing-key.pem"))
    with open(relay.config_path, "w") as f:
        f.write(bad)
    at = relay.log_offset()
    os.kill(relay.pid, signal.SIGHUP)
    relay.wait_log(r"SIGHUP: keeping the current configuration",
                   start_offset=at)
    assert alive(a17)
    a17.close()
    relay.stop()
    assert q1.accepted == 1 and q3.accepted == 1, (q1.accepted, q3.accepted)


harness.main(test)
