/* SPDX-License-Identifier: MIT */
/* The tls_* keys a config section may carry ([usb], [serial.NAME], [relay],
 * [target.NAME]): whether the stream speaks TLS 1.3, with which
 * certificates, and whom it accepts. */
#ifndef REDIR_TLS_CONFIG_H
#define REDIR_TLS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct config_parse;

#define TLS_NAME_MAX 256

struct tls_config {
    bool enabled;       /* tls = yes */
    char *ca;           /* tls_ca: the CA bundle that signs the peers */
    char *cert;         /* tls_cert: our certificate (chain) */
    char *key;          /* tls_key: its private key (mode 600, ours) */
    char *crl;          /* tls_crl: revoked certificates, or NULL */
    char *peer_name;    /* tls_peer_name: the name the peer's certificate must
                           carry when we dial; default: the host we dial */
    char *ciphersuites; /* tls_ciphersuites: TLS 1.3 suites, or NULL */
    int line;           /* where tls = yes was set, for errors */
};

/* One key of a section. Returns 1 if it was a tls_* key and is good, 0
 * after recording an error, -1 if the key is not one of ours. */
int tls_config_key(struct tls_config *t, struct config_parse *p,
                   const char *section, const char *key, const char *value);

/* After the section: with tls = yes, a CA, and a certificate and key
 * (both ends authenticate) are required. Returns 0 or -1. */
int tls_config_finish(const struct tls_config *t, struct config_parse *p,
                      const char *section, int section_line);

void tls_config_free(struct tls_config *t);

/* True if both configure TLS identically (a reload keeps the stream). */
bool tls_config_equal(const struct tls_config *a, const struct tls_config *b);

#endif
