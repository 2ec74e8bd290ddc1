/* SPDX-License-Identifier: MIT */
/* The relay's configuration: /etc/redir-relay.ini parsed into a new struct
 * (at start and on every reload). */
#include "relay_config.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_util.h"
#include "glob_list.h"
#include "log.h"
#include "relay_secret.h"

#define TARGET_PREFIX "target."
#define MAX_SESSIONS_DEFAULT 4096
#define MAX_SESSIONS_LIMIT 65536 /* two sockets each: fds run out first */
#define SESSION_BUFFER_DEFAULT (512u * 1024) /* 40 ms at 100 Mbit/s */
#define SESSION_BUFFER_MIN (64u * 1024)      /* one read must fit */
#define SESSION_BUFFER_MAX (64u * 1024 * 1024)
/* Connections that have not proved who they are yet. A real agent
 * finishes in a few round trips; 64 at once from a site's thin clients
 * redialling after a relay restart is plenty, and a flood cannot take
 * more (see net_admit.h for the random early drop above half). */
#define HANDSHAKES_MAX_DEFAULT 64
#define HANDSHAKES_PER_SOURCE_DEFAULT 8 /* one desk's devices and some */
#define HANDSHAKE_TIMEOUT_DEFAULT_S 5   /* a WAN round trip is 0.3 s */
#define HANDSHAKE_TIMEOUT_MAX_S 60
#define NAME_GLOBS_MAX 4096 /* agents = / deny_agents = */

enum relay_key {
    KEY_LISTEN,
    KEY_SECRET,
    KEY_LOG_LEVEL,
    KEY_MAX_SESSIONS,
    KEY_SESSION_BUFFER,
    KEY_ALLOW,
    KEY_DENY_AGENTS,
    KEY_HANDSHAKES_MAX,
    KEY_HANDSHAKES_PER_SOURCE,
    KEY_HANDSHAKE_TIMEOUT,
    KEY_METRICS_LISTEN,
    KEY_COUNT
};

struct parse {
    struct config_parse cp; /* where the reader is, the first error */
    struct relay_config *cfg;
    int relay_line;         /* [relay] header */
    int seen[KEY_COUNT];    /* [relay] keys: line first set on */
    int mode_line;          /* mode of the current target */
    int agents_line;        /* agents of the current target */
    size_t targets_alloced; /* room in cfg->targets */
};

struct key_def {
    const char *name;
    int (*parse)(struct parse *p, const char *value);
};

static int parse_listen(struct parse *p, const char *value)
{
    char why[300];

    if (hostport_parse(value, &p->cfg->listen, why, sizeof(why)) < 0) {
        config_error(&p->cp, "[relay] listen: %s", why);
        return 0;
    }
    return 1;
}

static int parse_metrics_listen(struct parse *p, const char *value)
{
    char why[300];

    if (hostport_parse_local(value, &p->cfg->metrics_addr, why, sizeof(why)) <
        0) {
        config_error(&p->cp, "[relay] metrics_listen: %s", why);
        return 0;
    }
    p->cfg->metrics = true;
    return 1;
}

static int parse_secret_file(struct parse *p, const char *value)
{
    if (value[0] != '/' && strncmp(value, "credential:", 11) != 0) {
        config_error(&p->cp,
                     "[relay] secret_file: '%s' is not an absolute path (or "
                     "credential:NAME)",
                     value);
        return 0;
    }
    p->cfg->secret_file = strdup(value);
    return p->cfg->secret_file != NULL;
}

static int parse_log_level(struct parse *p, const char *value)
{
    int level = log_level_from_name(value);
    if (level < 0) {
        config_error(&p->cp,
                     "[relay] log_level: '%s' is not one of error, warning, "
                     "notice, info, debug",
                     value);
        return 0;
    }
    p->cfg->log_level = level;
    return 1;
}

static int parse_max_sessions(struct parse *p, const char *value)
{
    if (config_parse_u32(value, 1, MAX_SESSIONS_LIMIT, &p->cfg->max_sessions) <
        0) {
        config_error(&p->cp,
                     "[relay] max_sessions: '%s' is not a number from 1 to %d",
                     value, MAX_SESSIONS_LIMIT);
        return 0;
    }
    return 1;
}

static int parse_session_buffer(struct parse *p, const char *value)
{
    if (config_parse_size(value, SESSION_BUFFER_MIN, SESSION_BUFFER_MAX,
                          &p->cfg->session_buffer) < 0) {
        config_error(&p->cp,
                     "[relay] session_buffer: '%s' is not a size from 64K to "
                     "64M (bytes, or with a K or M suffix)",
                     value);
        return 0;
    }
    return 1;
}

static int parse_allow(struct parse *p, const char *value)
{
    char why[160];

    if (cidr_allow_parse(value, &p->cfg->allow_any, &p->cfg->allow, why,
                         sizeof(why)) < 0) {
        config_error(&p->cp, "[relay] allow: %s", why);
        return 0;
    }
    return 1;
}

/* A list of certificate-name globs, for [relay] deny_agents and
 * [target.NAME] agents. */
static int parse_globs(struct parse *p, const char *where, const char *value,
                       char **out)
{
    char why[160];

    if (glob_list_check(value, RELAY_ID_MAX, why, sizeof(why)) < 0 ||
        strlen(value) > NAME_GLOBS_MAX) {
        config_error(&p->cp, "%s: %s", where,
                     strlen(value) > NAME_GLOBS_MAX ? "list too long" : why);
        return 0;
    }
    *out = strdup(value);
    return *out != NULL;
}

static int parse_deny_agents(struct parse *p, const char *value)
{
    return parse_globs(p, "[relay] deny_agents", value, &p->cfg->deny_agents);
}

static int parse_handshake_count(struct parse *p, const char *key,
                                 const char *value, unsigned *out)
{
    uint32_t n;

    if (config_parse_u32(value, 1, MAX_SESSIONS_LIMIT, &n) < 0) {
        config_error(&p->cp, "[relay] %s: '%s' is not a number from 1 to %d",
                     key, value, MAX_SESSIONS_LIMIT);
        return 0;
    }
    *out = n;
    return 1;
}

static int parse_handshakes_max(struct parse *p, const char *value)
{
    return parse_handshake_count(p, "handshakes_max", value,
                                 &p->cfg->handshakes.max_pending);
}

static int parse_handshakes_per_source(struct parse *p, const char *value)
{
    return parse_handshake_count(p, "handshakes_per_source", value,
                                 &p->cfg->handshakes.per_source);
}

static int parse_handshake_timeout(struct parse *p, const char *value)
{
    uint32_t s;

    if (config_parse_u32(value, 1, HANDSHAKE_TIMEOUT_MAX_S, &s) < 0) {
        config_error(&p->cp,
                     "[relay] handshake_timeout: '%s' is not a number of "
                     "seconds from 1 to %d",
                     value, HANDSHAKE_TIMEOUT_MAX_S);
        return 0;
    }
    p->cfg->handshake_timeout_ms = s * 1000;
    return 1;
}

static const struct key_def relay_keys[KEY_COUNT] = {
    [KEY_LISTEN] = {"listen", parse_listen},
    [KEY_SECRET] = {"secret_file", parse_secret_file},
    [KEY_LOG_LEVEL] = {"log_level", parse_log_level},
    [KEY_MAX_SESSIONS] = {"max_sessions", parse_max_sessions},
    [KEY_SESSION_BUFFER] = {"session_buffer", parse_session_buffer},
    [KEY_ALLOW] = {"allow", parse_allow},
    [KEY_DENY_AGENTS] = {"deny_agents", parse_deny_agents},
    [KEY_HANDSHAKES_MAX] = {"handshakes_max", parse_handshakes_max},
    [KEY_HANDSHAKES_PER_SOURCE] = {"handshakes_per_source",
                                   parse_handshakes_per_source},
    [KEY_HANDSHAKE_TIMEOUT] = {"handshake_timeout", parse_handshake_timeout},
    [KEY_METRICS_LISTEN] = {"metrics_listen", parse_metrics_listen},
};

static int handle_relay_key(struct parse *p, const char *name,
                            const char *value)
{
    int rc = tls_config_key(&p->cfg->tls, &p->cp, "relay", name, value);

    if (rc >= 0)
        return rc;
    for (int i = 0; i < KEY_COUNT; i++) {
        if (strcmp(relay_keys[i].name, name) != 0)
            continue;
        if (p->seen[i]) {
            config_error(&p->cp, "[relay] %s: set twice (first on line %d)",
                         name, p->seen[i]);
            return 0;
        }
        p->seen[i] = p->cp.line;
        return relay_keys[i].parse(p, value);
    }
    config_error(&p->cp, "[relay]: unknown key '%s'", name);
    return 0;
}

static int parse_chardev(struct parse *p, struct relay_target_config *t,
                         const char *value)
{
    char why[300];

    if (endpoint_parse(value, true, &t->chardev, why, sizeof(why)) < 0) {
        config_error(&p->cp, "[target.%s] qemu: %s", t->name, why);
        return 0;
    }
    return 1;
}

/* [target.NAME] kind = chardev | serial, and path (serial only). */
static int serial_target_key(struct parse *p, struct relay_target_config *t,
                             const char *name, const char *value)
{
    int *line = name[0] == 'k' ? &t->kind_line : &t->path_line;

    if (*line) {
        config_error(&p->cp, "[target.%s] %s: set twice (first on line %d)",
                     t->name, name, *line);
        return 0;
    }
    *line = p->cp.line;
    if (name[0] == 'k') {
        if (strcmp(value, "chardev") == 0 || strcmp(value, "serial") == 0) {
            t->kind =
                value[0] == 's' ? TARGET_KIND_SERIAL : TARGET_KIND_CHARDEV;
            if (t->kind == TARGET_KIND_SERIAL) /* the pty "dials in" */
                t->mode = TARGET_LISTEN;
            return 1;
        }
        config_error(&p->cp, "[target.%s] kind: '%s' is not chardev or serial",
                     t->name, value);
        return 0;
    }
    if (value[0] != '/' || strlen(value) >= ENDPOINT_STR_MAX - 8) {
        config_error(&p->cp,
                     "[target.%s] path: '%s' is not an absolute path (of at "
                     "most %d characters)",
                     t->name, value, ENDPOINT_STR_MAX - 9);
        return 0;
    }
    free(t->pty_path);
    t->pty_path = strdup(value);
    if (!t->pty_path) {
        config_error(&p->cp, "out of memory");
        return 0;
    }
    return 1;
}

/* [target.NAME] tty = auto | cuse | pty (serial only). */
static int serial_tty_key(struct parse *p, struct relay_target_config *t,
                          const char *value)
{
    static const char *const names[] = {
        [RELAY_SERIAL_TTY_AUTO] = "auto",
        [RELAY_SERIAL_TTY_CUSE] = "cuse",
        [RELAY_SERIAL_TTY_PTY] = "pty",
    };

    if (t->tty_line) {
        config_error(&p->cp, "[target.%s] tty: set twice (first on line %d)",
                     t->name, t->tty_line);
        return 0;
    }
    t->tty_line = p->cp.line;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(value, names[i]) == 0) {
            t->serial_tty = (enum relay_serial_tty)i;
            return 1;
        }
    config_error(&p->cp, "[target.%s] tty: '%s' is not auto, cuse or pty",
                 t->name, value);
    return 0;
}

static int handle_target_key(struct parse *p, const char *name,
                             const char *value)
{
    struct relay_target_config *t = &p->cfg->targets[p->cfg->n_targets - 1];
    char section[RELAY_TARGET_MAX + 16];
    int rc;

    snprintf(section, sizeof(section), "target.%s", t->name);
    rc = tls_config_key(&t->tls, &p->cp, section, name, value);
    if (rc >= 0)
        return rc;
    if (strcmp(name, "agents") == 0) {
        if (p->agents_line) {
            config_error(&p->cp,
                         "[target.%s] agents: set twice (first on line %d)",
                         t->name, p->agents_line);
            return 0;
        }
        p->agents_line = p->cp.line;
        return parse_globs(p, "agents", value, &t->agents);
    }
    if (strcmp(name, "qemu") == 0) {
        if (t->chardev_line) {
            config_error(&p->cp,
                         "[target.%s] qemu: set twice (first on line %d)",
                         t->name, t->chardev_line);
            return 0;
        }
        t->chardev_line = p->cp.line;
        return parse_chardev(p, t, value);
    }
    if (strcmp(name, "kind") == 0 || strcmp(name, "path") == 0)
        return serial_target_key(p, t, name, value);
    if (strcmp(name, "tty") == 0)
        return serial_tty_key(p, t, value);
    if (strcmp(name, "mode") == 0) {
        if (p->mode_line) {
            config_error(&p->cp,
                         "[target.%s] mode: set twice (first on line %d)",
                         t->name, p->mode_line);
            return 0;
        }
        p->mode_line = t->mode_line = p->cp.line;
        if (strcmp(value, "connect") == 0 || strcmp(value, "listen") == 0) {
            t->mode = value[0] == 'c' ? TARGET_CONNECT : TARGET_LISTEN;
            return 1;
        }
        config_error(&p->cp, "[target.%s] mode: '%s' is not connect or listen",
                     t->name, value);
        return 0;
    }
    config_error(&p->cp, "[target.%s]: unknown key '%s'", t->name, name);
    return 0;
}

static bool is_target_section(const char *section)
{
    return strncmp(section, TARGET_PREFIX, strlen(TARGET_PREFIX)) == 0;
}

static int handle_key(void *user, const char *section, const char *name,
                      const char *value)
{
    struct parse *p = user;

    if (p->cp.err_line)
        return 0;
    if (!*value) {
        config_error(&p->cp, "[%s] %s: empty value", section, name);
        return 0;
    }
    if (strcmp(section, "relay") == 0)
        return handle_relay_key(p, name, value);
    if (is_target_section(section) && p->cfg->n_targets > 0)
        return handle_target_key(p, name, value);
    if (!*section)
        config_error(&p->cp, "'%s' outside of a section", name);
    return 0; /* an unknown section was reported at its header */
}

static bool target_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > RELAY_TARGET_MAX)
        return false;
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("._-", *c))
            return false;
    return true;
}

static void add_target(struct parse *p, const char *name)
{
    struct relay_config *cfg = p->cfg;

    if (!target_name_ok(name)) {
        config_error(&p->cp,
                     "[target.%s]: a target name is 1 to %d characters of "
                     "A-Z a-z 0-9 . _ -",
                     name, RELAY_TARGET_MAX);
        return;
    }
    if (cfg->n_targets == RELAY_MAX_TARGETS) {
        config_error(&p->cp, "more than %d targets", RELAY_MAX_TARGETS);
        return;
    }
    if (cfg->n_targets == p->targets_alloced) {
        size_t n = p->targets_alloced ? p->targets_alloced * 2 : 16;
        void *grown = realloc(cfg->targets, n * sizeof(*cfg->targets));
        if (!grown) {
            config_error(&p->cp, "out of memory");
            return;
        }
        cfg->targets = grown;
        p->targets_alloced = n;
    }
    struct relay_target_config *t = &cfg->targets[cfg->n_targets++];
    memset(t, 0, sizeof(*t));
    strcpy(t->name, name);
    t->line = p->cp.line;
    t->mode = TARGET_CONNECT;
    p->mode_line = 0;
    p->agents_line = 0;
}

/* Called by the line reader for every [section] header. */
static void check_section(void *ctx, const char *name)
{
    struct parse *p = ctx;

    if (strcmp(name, "relay") == 0) {
        if (p->relay_line)
            config_error(&p->cp, "[relay] appears twice (first on line %d)",
                         p->relay_line);
        p->relay_line = p->cp.line;
    } else if (is_target_section(name)) {
        add_target(p, name + strlen(TARGET_PREFIX));
    } else {
        config_error(&p->cp,
                     "unknown section [%s] (expected [relay] or "
                     "[target.NAME])",
                     name);
    }
}

static int compare_targets(const void *a, const void *b)
{
    const struct relay_target_config *x = a, *y = b;
    return strcmp(x->name, y->name);
}

struct addr_entry {
    char text[ENDPOINT_STR_MAX];
    const struct relay_target_config *t;
};

/* The line naming where a target's QEMU side is: qemu, or a serial
 * target's path. */
static int where_line(const struct relay_target_config *t)
{
    return t->kind == TARGET_KIND_SERIAL ? t->path_line : t->chardev_line;
}

static int compare_addrs(const void *a, const void *b)
{
    const struct addr_entry *x = a, *y = b;
    int c = strcmp(x->text, y->text);
    return c ? c : where_line(x->t) - where_line(y->t);
}

/* Two targets on one chardev would steal it from each other. */
static int check_unique_chardevs(struct parse *p)
{
    struct relay_config *cfg = p->cfg;
    struct addr_entry *e = calloc(cfg->n_targets, sizeof(*e));
    char relay_addr[HOSTPORT_HOST_MAX + 8];
    int rc = 0;

    if (!e) {
        config_error(&p->cp, "out of memory");
        return -1;
    }
    hostport_str(&cfg->listen, relay_addr, sizeof(relay_addr));
    for (size_t i = 0; i < cfg->n_targets; i++) {
        e[i].t = &cfg->targets[i];
        if (e[i].t->kind == TARGET_KIND_SERIAL) { /* a path, not a chardev */
            snprintf(e[i].text, sizeof(e[i].text), "tty %s", e[i].t->pty_path);
            continue;
        }
        endpoint_str(&e[i].t->chardev, e[i].text, sizeof(e[i].text));
        if (e[i].t->mode == TARGET_LISTEN &&
            strcmp(e[i].text, relay_addr) == 0) {
            p->cp.line = e[i].t->chardev_line;
            config_error(&p->cp, "[target.%s] qemu: %s is where agents connect",
                         e[i].t->name, e[i].text);
            rc = -1;
        }
    }
    qsort(e, cfg->n_targets, sizeof(*e), compare_addrs);
    for (size_t i = 1; i < cfg->n_targets && rc == 0; i++) {
        if (strcmp(e[i].text, e[i - 1].text) == 0) {
            p->cp.line = where_line(e[i].t);
            config_error(&p->cp,
                         "[target.%s] %s: %s is also the chardev of "
                         "[target.%s] (line %d)",
                         e[i].t->name,
                         e[i].t->kind == TARGET_KIND_SERIAL ? "path" : "qemu",
                         e[i].text, e[i - 1].t->name, where_line(e[i - 1].t));
            rc = -1;
        }
    }
    free(e);
    return rc;
}

/* kind = serial: the relay makes the tty, so no chardev, mode or TLS leg. */
static int check_serial_target(struct parse *p,
                               const struct relay_target_config *t)
{
    int bad = t->chardev_line ? t->chardev_line
              : t->mode_line  ? t->mode_line
              : t->tls.line   ? t->tls.line
                              : 0;

    if (bad) {
        config_error_at(&p->cp, bad,
                        "[target.%s]: qemu, mode and tls are for kind = "
                        "chardev; a serial target is a tty at its path",
                        t->name);
        return -1;
    }
    if (t->name[0] == '.') {
        config_error_at(&p->cp, t->line,
                        "[target.%s]: a serial target's name names its "
                        "device (/dev/redir-relay/NAME): it must not start "
                        "with '.'",
                        t->name);
        return -1;
    }
    if (!t->path_line) {
        config_error_at(&p->cp, t->line,
                        "[target.%s]: kind = serial needs path = /PATH (where "
                        "QEMU's -chardev serial,path= opens the tty)",
                        t->name);
        return -1;
    }
    return 0;
}

static int check_target(struct parse *p, const struct relay_target_config *t)
{
    char section[RELAY_TARGET_MAX + 16];

    snprintf(section, sizeof(section), "target.%s", t->name);
    /* Either kind: an agents glob matches certificate names only. */
    if (t->agents && !p->cfg->tls.enabled) {
        config_error_at(&p->cp, t->line,
                        "[target.%s] agents: needs tls = yes in [relay] (only "
                        "a certificate proves which agent is calling)",
                        t->name);
        return -1;
    }
    if (t->kind == TARGET_KIND_SERIAL)
        return check_serial_target(p, t);
    if (t->path_line || t->tty_line) {
        config_error_at(&p->cp, t->path_line ? t->path_line : t->tty_line,
                        "[target.%s] %s: only for kind = serial", t->name,
                        t->path_line ? "path" : "tty");
        return -1;
    }
    if (!t->chardev_line) {
        config_error_at(&p->cp, t->line,
                        "[target.%s]: qemu = HOST:PORT | unix:/PATH is "
                        "missing",
                        t->name);
        return -1;
    }
    if (t->tls.enabled && t->chardev.is_unix) {
        config_error_at(&p->cp, t->tls.line,
                        "[target.%s] tls: the chardev is a unix socket, "
                        "which never leaves this host; TLS is for TCP",
                        t->name);
        return -1;
    }
    return tls_config_finish(&t->tls, &p->cp, section, t->line);
}

static int check_targets(struct parse *p)
{
    struct relay_config *cfg = p->cfg;

    if (cfg->n_targets == 0) {
        config_error(&p->cp, "no [target.NAME] section: nothing to relay to");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_targets; i++)
        if (check_target(p, &cfg->targets[i]) < 0)
            return -1;
    qsort(cfg->targets, cfg->n_targets, sizeof(*cfg->targets), compare_targets);
    for (size_t i = 1; i < cfg->n_targets; i++) {
        if (strcmp(cfg->targets[i].name, cfg->targets[i - 1].name) == 0) {
            const struct relay_target_config *a = &cfg->targets[i - 1],
                                             *b = &cfg->targets[i];
            p->cp.line = a->line > b->line ? a->line : b->line;
            config_error(&p->cp, "[target.%s] appears twice (first on line %d)",
                         a->name, a->line < b->line ? a->line : b->line);
            return -1;
        }
    }
    return check_unique_chardevs(p);
}

static int finish(struct parse *p)
{
    struct relay_config *cfg = p->cfg;
    char why[RELAY_ERR_MAX];

    p->cp.line = p->relay_line;
    if (!p->seen[KEY_LISTEN]) {
        config_error(&p->cp, "[relay] listen = HOST:PORT is missing");
        return -1;
    }
    if (tls_config_finish(&cfg->tls, &p->cp, "relay", p->relay_line) < 0)
        return -1;
    if (!p->seen[KEY_SECRET] && !cfg->tls.enabled) {
        config_error(&p->cp, "[relay] secret_file = PATH is missing (or "
                             "tls = yes with certificates)");
        return -1;
    }
    if (cfg->deny_agents && !cfg->tls.enabled) {
        config_error_at(&p->cp, p->seen[KEY_DENY_AGENTS],
                        "[relay] deny_agents: needs tls = yes (only a "
                        "certificate proves which agent is calling)");
        return -1;
    }
    if (check_targets(p) < 0)
        return -1;
    if (cfg->secret_file && relay_secret_load(cfg->secret_file, cfg->secret,
                                              &cfg->secret_len, why) < 0) {
        p->cp.line = p->seen[KEY_SECRET];
        config_error(&p->cp, "[relay] secret_file: %s", why);
        return -1;
    }
    return 0;
}

static void set_defaults(struct relay_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = LOG_INFO;
    cfg->max_sessions = MAX_SESSIONS_DEFAULT;
    cfg->session_buffer = SESSION_BUFFER_DEFAULT;
    cfg->allow_any = true;
    cfg->handshakes.max_pending = HANDSHAKES_MAX_DEFAULT;
    cfg->handshakes.per_source = HANDSHAKES_PER_SOURCE_DEFAULT;
    cfg->handshake_timeout_ms = HANDSHAKE_TIMEOUT_DEFAULT_S * 1000;
}

static const struct config_grammar relay_grammar = {
    .section = check_section,
    .key = handle_key,
};

int relay_config_load(const char *path, struct relay_config *cfg, char *err,
                      size_t err_len)
{
    struct parse p = {.cfg = cfg};

    set_defaults(cfg);
    cfg->path = strdup(path);
    if (config_load_file(path, &p.cp, &relay_grammar, &p) == 0)
        finish(&p);
    if (p.cp.err_line) {
        snprintf(err, err_len, "%s", p.cp.err);
        return -1;
    }
    return 0;
}

void relay_config_free(struct relay_config *cfg)
{
    sodium_memzero(cfg->secret, sizeof(cfg->secret));
    free(cfg->path);
    free(cfg->secret_file);
    free(cfg->deny_agents);
    tls_config_free(&cfg->tls);
    for (size_t i = 0; i < cfg->n_targets; i++) {
        free(cfg->targets[i].agents);
        free(cfg->targets[i].pty_path);
        tls_config_free(&cfg->targets[i].tls);
    }
    free(cfg->targets);
    memset(cfg, 0, sizeof(*cfg));
}

const struct relay_target_config *
relay_config_target(const struct relay_config *cfg, const char *name)
{
    struct relay_target_config key;

    if (strlen(name) > RELAY_TARGET_MAX)
        return NULL;
    strcpy(key.name, name);
    return bsearch(&key, cfg->targets, cfg->n_targets, sizeof(key),
                   compare_targets);
}
