#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Who may control the agent, with [agent] control_group = users: the
socket is mode 0660 and group users; a user whose supplementary groups
include users (as SO_PEERGROUPS tells the agent) reads and changes state
(target, target --clear); a user in the group through its primary gid
too; a user outside it cannot connect, and the client says why; a user
who reaches the socket through a group other than control_group (gid 0,
file mode notwithstanding) reads but may not change state, and the
refusal names the group. Root may do all."""
import grp
import json
import os
import stat

import controlharness as ch
from controlharness import harness
from harness import Agent, Fixture, free_port

NOBODY, NOGROUP = 65534, 65534


def test(td):
    users = grp.getgrnam("users").gr_gid
    fx = Fixture(td).start()
    os.chmod(td.path, 0o755)  # other users reach the socket
    agent = Agent(td, fx)
    agent.start(f"[agent]\ncontrol_socket = {td.file('agent.sock')}\n"
                "control_group = users\n[usb]\nreconnect_max_ms = 500\n")
    agent.control_socket = td.file("agent.sock")
    agent.wait_log(r"USB redirection is off")
    st = os.stat(agent.control_socket)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == users, \
        (oct(st.st_mode), st.st_gid, st.st_uid)
    assert st.st_uid == os.geteuid(), st.st_uid

    member = dict(uid=NOBODY, gid=NOGROUP, groups=[users])
    port = free_port()
    out = ch.ok(agent, fx, "target", f"127.0.0.1:{port}", **member)
    assert f"targets: 127.0.0.1:{port}" in out, out
    agent.wait_log(rf"control socket: USB targets set: 127\.0\.0\.1:{port}")
    shown = json.loads(ch.ok(agent, fx, "target", "--json", **member))
    assert shown["source"] == "control", shown
    ch.ok(agent, fx, "target", "--clear", **member)
    by_primary = dict(uid=NOBODY, gid=users, groups=[])
    assert "targets: none (cleared at run time)" in \
        ch.ok(agent, fx, "target", **by_primary)
    ch.ok(agent, fx, "target", "--reset", **by_primary)

    # outside the group: the socket's mode keeps them out, the client
    # says so and where to look
    r = ch.run(agent, fx, "status", uid=NOBODY, gid=NOGROUP, groups=[])
    assert r.returncode != 0 and "Permission denied" in r.stderr and \
        "control_group" in r.stderr, r

    # through another group (here the owner's, gid 0): reads only
    other = dict(uid=NOBODY, gid=0, groups=[])
    os.chown(agent.control_socket, -1, 0)
    try:
        assert ch.run(agent, fx, "status", "--json", **other).returncode == 0
        ch.refused(agent, fx, "target", f"127.0.0.1:{port}",
                   why="target set changes the agent's state: only root and "
                       "members of group 'users' may (you are uid 65534)",
                   **other)
        agent.wait_log(r"control socket: refused target set from uid 65534")
    finally:
        os.chown(agent.control_socket, -1, users)
    assert "targets: none (none in the config file)" in \
        ch.ok(agent, fx, "target"), "a refused request changed the targets"
    agent.stop()


harness.main(test)
