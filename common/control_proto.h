/* SPDX-License-Identifier: MIT */
/* The agent's control requests: one line parsed into a command, and who may
 * send which (state-changing commands need root, the agent's own user or the
 * control group). Pure: no I/O. */
#ifndef REDIR_CONTROL_PROTO_H
#define REDIR_CONTROL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Longest request line: "target " and a full [usb] connect list. */
#define CONTROL_REQUEST_MAX 1100
#define CONTROL_ARG_MAX 1024
#define CONTROL_WHY_MAX 256
#define CONTROL_PEER_GROUPS_MAX 64 /* more are not looked at */

enum control_cmd {
    CONTROL_STATUS,       /* read-only */
    CONTROL_TARGET_SHOW,  /* read-only */
    CONTROL_EVENTS,       /* read-only: the connection stays open */
    CONTROL_TARGET_SET,   /* arg: HOST:PORT[/TARGET][, ...] */
    CONTROL_TARGET_CLEAR, /* no peers: devices stay with the host */
    CONTROL_TARGET_RESET, /* back to the config file's */
    CONTROL_DETACH,       /* arg: BUS-PORT or VID:PID */
    CONTROL_ATTACH,       /* arg: same; force may override the policy */
    CONTROL_RELOAD,
};

struct control_request {
    enum control_cmd cmd;
    bool json;  /* answer as JSON */
    bool force; /* attach --force */
    char arg[CONTROL_ARG_MAX];
};

/* Parses one line (no newline): "status [json]", "target [json]",
 * "target [set] LIST [json]", "target clear", "target reset",
 * "detach SEL", "attach SEL [force]", "events", "reload"; flags (json,
 * force, clear, reset) may be written with or without "--" and come in any
 * order after the command's words. Returns 0, or -1 with why. */
int control_parse(const char *line, struct control_request *req, char *why,
                  size_t why_len);

/* A connected peer, from SO_PEERCRED (and SO_PEERGROUPS). */
struct control_peer {
    uid_t uid;
    gid_t gid;
    size_t n_groups;
    gid_t groups[CONTROL_PEER_GROUPS_MAX];
};

/* Who may change things: root, the agent's own user, and members of the
 * control group (has_group false: no such group). */
struct control_access {
    uid_t agent_uid;
    bool has_group;
    gid_t group;
    const char *group_name; /* for the refusal */
};

bool control_changes_state(enum control_cmd cmd);

/* True if peer may send cmd; otherwise why says who may. */
bool control_allowed(const struct control_access *acc,
                     const struct control_peer *peer, enum control_cmd cmd,
                     char *why, size_t why_len);

/* "status", "target", "detach", ... */
const char *control_cmd_name(enum control_cmd cmd);

/* A device selector: "BUS-PORT[.PORT...]" (e.g. "1-1.2") or "VID:PID"
 * (4 hex digits each). Returns 0, or -1 if it is neither. */
int control_parse_selector(const char *text, bool *is_vidpid,
                           unsigned short *vid, unsigned short *pid);

#endif
