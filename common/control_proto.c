/* SPDX-License-Identifier: MIT */
/* The agent's control requests: one line parsed into a command, and who may
 * send which (state-changing commands need root, the agent's own user or the
 * control group). Pure: no I/O. */
#include "control_proto.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define CONTROL_TOKENS_MAX 80 /* a 64-slot list, its commas spaced */

struct tokens {
    char buf[CONTROL_REQUEST_MAX + 1];
    char *v[CONTROL_TOKENS_MAX];
    size_t n;
};

static int tokenize(const char *line, struct tokens *t, char *why,
                    size_t why_len)
{
    size_t len = strlen(line);

    if (len > CONTROL_REQUEST_MAX) {
        snprintf(why, why_len, "request longer than %d bytes",
                 CONTROL_REQUEST_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e) {
            snprintf(why, why_len,
                     "request has a control or non-ASCII byte (0x%02x) "
                     "at offset %zu",
                     (unsigned char)line[i], i);
            return -1;
        }
    memcpy(t->buf, line, len + 1);
    t->n = 0;
    for (char *save = NULL, *tok = strtok_r(t->buf, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        if (t->n == CONTROL_TOKENS_MAX) {
            snprintf(why, why_len, "more than %d words in the request",
                     CONTROL_TOKENS_MAX);
            return -1;
        }
        t->v[t->n++] = tok;
    }
    if (t->n == 0) {
        snprintf(why, why_len, "empty request");
        return -1;
    }
    return 0;
}

static bool is_flag(const char *tok, const char *name)
{
    if (tok[0] == '-' && tok[1] == '-')
        tok += 2;
    return strcmp(tok, name) == 0;
}

/* Takes the flags out of t (from index first on) and joins the rest into
 * req->arg with single spaces. */
static int collect(struct tokens *t, size_t first, struct control_request *req,
                   char *why, size_t why_len)
{
    size_t used = 0;

    req->arg[0] = '\0';
    for (size_t i = first; i < t->n; i++) {
        if (is_flag(t->v[i], "json")) {
            req->json = true;
            continue;
        }
        if (is_flag(t->v[i], "force")) {
            req->force = true;
            continue;
        }
        if (t->v[i][0] == '-') {
            snprintf(why, why_len, "unknown option '%.64s'", t->v[i]);
            return -1;
        }
        size_t len = strlen(t->v[i]);
        if (used + len + 2 > sizeof(req->arg)) {
            snprintf(why, why_len, "argument too long");
            return -1;
        }
        if (used)
            req->arg[used++] = ' ';
        memcpy(req->arg + used, t->v[i], len + 1);
        used += len;
    }
    return 0;
}

static int want_arg(const struct control_request *req, bool want,
                    const char *usage, char *why, size_t why_len)
{
    if (want == (req->arg[0] != '\0'))
        return 0;
    snprintf(why, why_len, "usage: %s", usage);
    return -1;
}

/* "target" shows; "target [set] LIST" sets; "target clear|--clear" and
 * "target reset|--reset" take no list. */
static int parse_target(struct tokens *t, struct control_request *req,
                        char *why, size_t why_len)
{
    size_t first = 2;

    /* The CLI appends its flags after the words ("target --json --clear"
     * from `target --clear --json`): --clear and --reset count anywhere. */
    for (size_t i = 2; i < t->n; i++)
        if (strcmp(t->v[i], "--clear") == 0 ||
            strcmp(t->v[i], "--reset") == 0) {
            char *flag = t->v[i];
            memmove(&t->v[2], &t->v[1], (i - 1) * sizeof(t->v[0]));
            t->v[1] = flag;
            break;
        }
    const char *w = t->n > 1 ? t->v[1] : "";

    if (strcmp(w, "set") == 0)
        req->cmd = CONTROL_TARGET_SET;
    else if (is_flag(w, "clear"))
        req->cmd = CONTROL_TARGET_CLEAR;
    else if (is_flag(w, "reset"))
        req->cmd = CONTROL_TARGET_RESET;
    else {
        first = 1; /* the list (or nothing but flags) starts at once */
        req->cmd = CONTROL_TARGET_SHOW;
    }
    if (collect(t, first, req, why, why_len) < 0)
        return -1;
    if (req->cmd == CONTROL_TARGET_SHOW && req->arg[0])
        req->cmd = CONTROL_TARGET_SET;
    return want_arg(req, req->cmd == CONTROL_TARGET_SET,
                    req->cmd == CONTROL_TARGET_SET
                        ? "target HOST:PORT[/TARGET][, ...] [json]"
                        : "target [LIST | --clear | --reset] [json]",
                    why, why_len);
}

static int parse_line(const char *line, struct control_request *req, char *why,
                      size_t why_len)
{
    struct tokens t;
    const char *cmd;

    memset(req, 0, sizeof(*req));
    if (tokenize(line, &t, why, why_len) < 0)
        return -1;
    cmd = t.v[0];
    if (strcmp(cmd, "target") == 0)
        return parse_target(&t, req, why, why_len);
    if (collect(&t, 1, req, why, why_len) < 0)
        return -1;
    if (strcmp(cmd, "status") == 0) {
        req->cmd = CONTROL_STATUS;
        return want_arg(req, false, "status [json]", why, why_len);
    }
    if (strcmp(cmd, "events") == 0) {
        req->cmd = CONTROL_EVENTS;
        return want_arg(req, false, "events", why, why_len);
    }
    if (strcmp(cmd, "reload") == 0) {
        req->cmd = CONTROL_RELOAD;
        return want_arg(req, false, "reload [json]", why, why_len);
    }
    if (strcmp(cmd, "detach") == 0 || strcmp(cmd, "attach") == 0) {
        bool attach = cmd[0] == 'a';
        bool vidpid;
        unsigned short vid, pid;
        req->cmd = attach ? CONTROL_ATTACH : CONTROL_DETACH;
        if (want_arg(req, true,
                     attach ? "attach BUS-PORT|VID:PID [force] [json]"
                            : "detach BUS-PORT|VID:PID [json]",
                     why, why_len) < 0)
            return -1;
        if (control_parse_selector(req->arg, &vidpid, &vid, &pid) < 0) {
            snprintf(why, why_len,
                     "'%.64s' is neither a port (BUS-PORT, e.g. 1-1.2) nor "
                     "VID:PID (e.g. 0781:5567)",
                     req->arg);
            return -1;
        }
        return 0;
    }
    snprintf(why, why_len,
             "unknown request '%.32s' (try: status, target, detach, attach, "
             "events, reload)",
             cmd);
    return -1;
}

int control_parse(const char *line, struct control_request *req, char *why,
                  size_t why_len)
{
    if (parse_line(line, req, why, why_len) < 0)
        return -1;
    if (req->force && req->cmd != CONTROL_ATTACH) {
        snprintf(why, why_len, "force goes with attach");
        return -1;
    }
    return 0;
}

bool control_changes_state(enum control_cmd cmd)
{
    return cmd != CONTROL_STATUS && cmd != CONTROL_TARGET_SHOW &&
           cmd != CONTROL_EVENTS;
}

const char *control_cmd_name(enum control_cmd cmd)
{
    static const char *const names[] = {
        [CONTROL_STATUS] = "status",
        [CONTROL_TARGET_SHOW] = "target",
        [CONTROL_EVENTS] = "events",
        [CONTROL_TARGET_SET] = "target set",
        [CONTROL_TARGET_CLEAR] = "target clear",
        [CONTROL_TARGET_RESET] = "target reset",
        [CONTROL_DETACH] = "detach",
        [CONTROL_ATTACH] = "attach",
        [CONTROL_RELOAD] = "reload",
    };
    return (unsigned)cmd < sizeof(names) / sizeof(names[0]) ? names[cmd] : "?";
}

static bool in_group(const struct control_peer *peer, gid_t group)
{
    if (peer->gid == group)
        return true;
    for (size_t i = 0; i < peer->n_groups && i < CONTROL_PEER_GROUPS_MAX; i++)
        if (peer->groups[i] == group)
            return true;
    return false;
}

bool control_allowed(const struct control_access *acc,
                     const struct control_peer *peer, enum control_cmd cmd,
                     char *why, size_t why_len)
{
    if (!control_changes_state(cmd) || peer->uid == 0 ||
        peer->uid == acc->agent_uid ||
        (acc->has_group && in_group(peer, acc->group)))
        return true;
    if (acc->has_group)
        snprintf(why, why_len,
                 "%s changes the agent's state: only root and members of "
                 "group '%.64s' may (you are uid %u)",
                 control_cmd_name(cmd), acc->group_name ? acc->group_name : "?",
                 (unsigned)peer->uid);
    else
        snprintf(why, why_len,
                 "%s changes the agent's state: only root may (you are uid "
                 "%u; [agent] control_group names a group that may too)",
                 control_cmd_name(cmd), (unsigned)peer->uid);
    return false;
}

static bool hex4(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* "BUS-PORT[.PORT...]": digits, one '-', then digits and dots. */
static bool is_port_path(const char *s)
{
    size_t bus = strspn(s, "0123456789");

    if (bus == 0 || bus > 3 || s[bus] != '-')
        return false;
    s += bus + 1;
    if (!isdigit((unsigned char)*s) || strlen(s) > 32)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s) &&
            !(*s == '.' && isdigit((unsigned char)s[1])))
            return false;
    return true;
}

int control_parse_selector(const char *text, bool *is_vidpid,
                           unsigned short *vid, unsigned short *pid)
{
    unsigned v, p;

    *vid = *pid = 0;
    if (strlen(text) == 9 && text[4] == ':' && hex4(text) && hex4(text + 5) &&
        sscanf(text, "%4x:%4x", &v, &p) == 2) {
        *is_vidpid = true;
        *vid = (unsigned short)v;
        *pid = (unsigned short)p;
        return 0;
    }
    *is_vidpid = false;
    return is_port_path(text) ? 0 : -1;
}
