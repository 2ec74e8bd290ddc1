/* SPDX-License-Identifier: MIT */
/* The tls_* keys a config section may carry ([usb], [serial.NAME], [relay],
 * [target.NAME]): whether the stream speaks TLS 1.3, with which
 * certificates, and whom it accepts. */
#include "tls_config.h"

#include <stdlib.h>
#include <string.h>

#include "config_util.h"

static int set_path(struct config_parse *p, const char *section,
                    const char *key, const char *value, char **out)
{
    if (value[0] != '/' && strncmp(value, "credential:", 11) != 0) {
        config_error(p,
                     "[%s] %s: '%s' is not an absolute path (or "
                     "credential:NAME)",
                     section, key, value);
        return 0;
    }
    free(*out);
    *out = strdup(value);
    return *out != NULL;
}

static int set_text(char **out, const char *value)
{
    free(*out);
    *out = strdup(value);
    return *out != NULL;
}

int tls_config_key(struct tls_config *t, struct config_parse *p,
                   const char *section, const char *key, const char *value)
{
    if (strcmp(key, "tls") == 0) {
        if (config_parse_bool(value, &t->enabled) < 0) {
            config_error(p, "[%s] tls: '%s' is not yes or no", section, value);
            return 0;
        }
        t->line = p->line;
        return 1;
    }
    if (strcmp(key, "tls_ca") == 0)
        return set_path(p, section, key, value, &t->ca);
    if (strcmp(key, "tls_cert") == 0)
        return set_path(p, section, key, value, &t->cert);
    if (strcmp(key, "tls_key") == 0)
        return set_path(p, section, key, value, &t->key);
    if (strcmp(key, "tls_crl") == 0)
        return set_path(p, section, key, value, &t->crl);
    if (strcmp(key, "tls_peer_name") == 0) {
        if (strlen(value) >= TLS_NAME_MAX) {
            config_error(p, "[%s] tls_peer_name: longer than %d characters",
                         section, TLS_NAME_MAX - 1);
            return 0;
        }
        return set_text(&t->peer_name, value);
    }
    if (strcmp(key, "tls_ciphersuites") == 0)
        return set_text(&t->ciphersuites, value);
    return -1;
}

int tls_config_finish(const struct tls_config *t, struct config_parse *p,
                      const char *section, int section_line)
{
    const char *missing = !t->ca     ? "tls_ca"
                          : !t->cert ? "tls_cert"
                          : !t->key  ? "tls_key"
                                     : NULL;

    if (!t->enabled)
        return 0;
    if (missing) {
        config_error_at(p, t->line ? t->line : section_line,
                        "[%s] tls = yes needs %s (both ends show a "
                        "certificate)",
                        section, missing);
        return -1;
    }
    return 0;
}

void tls_config_free(struct tls_config *t)
{
    free(t->ca);
    free(t->cert);
    free(t->key);
    free(t->crl);
    free(t->peer_name);
    free(t->ciphersuites);
    memset(t, 0, sizeof(*t));
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool tls_config_equal(const struct tls_config *a, const struct tls_config *b)
{
    return a->enabled == b->enabled && same(a->ca, b->ca) &&
           same(a->cert, b->cert) && same(a->key, b->key) &&
           same(a->crl, b->crl) && same(a->peer_name, b->peer_name) &&
           same(a->ciphersuites, b->ciphersuites);
}
