/* SPDX-License-Identifier: MIT */
/* The serial and printer bridge: every [serial.NAME] port, tty <-> TCP, on the
 * agent's loop. */
#include "serial_bridge.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct serial_bridge {
    uv_loop_t *loop;
    struct serial_port *ports[SERIAL_CONFIG_MAX_PORTS];
    size_t n;
    unsigned stopping_ports; /* stops not finished yet */
    bool stopping;
    void (*on_stopped)(void *arg);
    void *arg;
    const struct serial_event_sink *sink;
};

static void on_port_stopped(void *arg)
{
    struct serial_bridge *b = arg;

    if (--b->stopping_ports > 0 || !b->stopping)
        return;
    void (*on_stopped)(void *) = b->on_stopped;
    void *stopped_arg = b->arg;
    free(b);
    on_stopped(stopped_arg);
}

static void nothing(void *arg) { (void)arg; }

static void bridge_stop_port(struct serial_bridge *b, struct serial_port *p)
{
    b->stopping_ports++;
    serial_port_stop(p, on_port_stopped, b);
}

/* A new port, listening if it listens; NULL after logging why. */
static struct serial_port *bridge_new_port(struct serial_bridge *b,
                                           const struct serial_port_config *pc)
{
    struct serial_port *p = serial_port_new(b->loop, pc, b->sink);

    if (!p) {
        log_err("[serial.%s]: out of memory", pc->name);
        return NULL;
    }
    if (pc->peer == SERIAL_PEER_LISTEN && serial_port_listen(p) < 0) {
        bridge_stop_port(b, p);
        return NULL;
    }
    return p;
}

struct serial_bridge *serial_bridge_start(uv_loop_t *loop,
                                          const struct serial_config *sc,
                                          const struct serial_event_sink *sink)
{
    struct serial_bridge *b = calloc(1, sizeof(*b));

    if (!b) {
        log_err("serial bridge: out of memory");
        return NULL;
    }
    b->loop = loop;
    b->sink = sink;
    /* Every listening socket first: a taken port fails the start before
     * any device is touched. */
    for (size_t i = 0; i < sc->n_ports; i++) {
        b->ports[i] = bridge_new_port(b, &sc->ports[i]);
        if (!b->ports[i]) {
            while (i-- > 0)
                bridge_stop_port(b, b->ports[i]);
            b->stopping = true;
            b->on_stopped = nothing;
            if (b->stopping_ports == 0)
                free(b);
            return NULL;
        }
        b->n = i + 1;
    }
    for (size_t i = 0; i < b->n; i++)
        serial_port_start(b->ports[i]);
    return b;
}

static const struct serial_port_config *
find_config(const struct serial_config *sc, const char *name)
{
    for (size_t i = 0; i < sc->n_ports; i++)
        if (strcmp(sc->ports[i].name, name) == 0)
            return &sc->ports[i];
    return NULL;
}

void serial_bridge_reconfigure(struct serial_bridge *b,
                               const struct serial_config *sc)
{
    struct serial_port *kept[SERIAL_CONFIG_MAX_PORTS] = {NULL};
    size_t n = 0;

    /* Stopped ports let go of their device and address at once. */
    for (size_t i = 0; i < b->n; i++) {
        struct serial_port *p = b->ports[i];
        const struct serial_port_config *old = serial_port_config(p);
        const struct serial_port_config *next = find_config(sc, old->name);
        if (next && serial_port_config_equal(old, next)) {
            kept[next - sc->ports] = p;
            serial_port_rebind(p, next);
            continue;
        }
        log_info("reload: [serial.%s] %s", old->name,
                 next ? "changed: restarting it" : "removed: stopping it");
        bridge_stop_port(b, p);
    }
    for (size_t i = 0; i < sc->n_ports; i++) {
        struct serial_port *p = kept[i];
        if (!p && (p = bridge_new_port(b, &sc->ports[i])))
            serial_port_start(p);
        if (p)
            b->ports[n++] = p;
    }
    b->n = n;
}

void serial_bridge_stop(struct serial_bridge *b, void (*on_stopped)(void *arg),
                        void *arg)
{
    b->stopping = true;
    b->on_stopped = on_stopped;
    b->arg = arg;
    b->stopping_ports++; /* no finish while ports are being stopped */
    for (size_t i = 0; i < b->n; i++)
        bridge_stop_port(b, b->ports[i]);
    b->n = 0;
    on_port_stopped(b);
}

size_t serial_bridge_status(const struct serial_bridge *b,
                            struct serial_port_status *out, size_t max)
{
    for (size_t i = 0; i < b->n && i < max; i++)
        serial_port_status(b->ports[i], &out[i]);
    return b->n;
}
