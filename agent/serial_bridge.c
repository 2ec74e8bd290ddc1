/* The serial and printer bridge: every [serial.NAME] port, tty <-> TCP, on the
 * agent's loop. */
#include "serial_bridge.h"

#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "serial_port.h"

struct serial_bridge {
    struct serial_port *ports;
    size_t nports;
    unsigned live; /* handles, clients and requests not finished */
    bool stopping;
    void (*on_stopped)(void *arg);
    void *arg;
};

void serial_bridge_hold(struct serial_bridge *b) { b->live++; }

/* Every close callback ends here; the last one after a stop finishes it. */
void serial_bridge_release(struct serial_bridge *b)
{
    if (--b->live > 0 || !b->stopping)
        return;
    void (*on_stopped)(void *) = b->on_stopped;
    void *arg = b->arg;
    free(b->ports);
    free(b);
    on_stopped(arg);
}

/* Every listening socket first: a taken port fails the start with nothing
 * else to undo. Fills fds (-1 for connect-mode ports). */
static int bind_all(struct serial_bridge *b, int *fds)
{
    for (size_t i = 0; i < b->nports; i++) {
        const struct serial_port_config *cfg = b->ports[i].cfg;
        fds[i] = -1;
        if (cfg->peer != SERIAL_PEER_LISTEN)
            continue;
        fds[i] = serial_net_bind(cfg, b->ports[i].label);
        if (fds[i] < 0) {
            while (i-- > 0)
                if (fds[i] >= 0)
                    close(fds[i]);
            return -1;
        }
    }
    return 0;
}

int serial_bridge_start(struct serial_bridge **out, uv_loop_t *loop,
                        const struct agent_config *cfg)
{
    struct serial_bridge *b;
    int *fds;

    *out = NULL;
    if (cfg->n_serial_ports == 0)
        return 0;
    b = calloc(1, sizeof(*b));
    fds = calloc(cfg->n_serial_ports, sizeof(*fds));
    if (b)
        b->ports = calloc(cfg->n_serial_ports, sizeof(*b->ports));
    if (!b || !fds || !b->ports) {
        log_err("serial bridge: out of memory");
        free(fds);
        free(b ? b->ports : NULL);
        free(b);
        return -1;
    }
    b->nports = cfg->n_serial_ports;
    for (size_t i = 0; i < b->nports; i++) {
        b->ports[i].cfg = &cfg->serial_ports[i];
        serial_port_label(&b->ports[i], &cfg->serial_ports[i]);
    }
    if (bind_all(b, fds) < 0) {
        free(fds);
        free(b->ports);
        free(b);
        return -1;
    }
    /* From here on nothing fails: listening sockets are bound. */
    for (size_t i = 0; i < b->nports; i++)
        serial_port_start(&b->ports[i], b, loop, &cfg->serial_ports[i], fds[i]);
    free(fds);
    *out = b;
    return 0;
}

void serial_bridge_stop(struct serial_bridge *bridge,
                        void (*on_stopped)(void *arg), void *arg)
{
    bridge->stopping = true;
    bridge->on_stopped = on_stopped;
    bridge->arg = arg;
    bridge->live++; /* no finish while ports are still being stopped */
    for (size_t i = 0; i < bridge->nports; i++)
        serial_port_stop(&bridge->ports[i]);
    serial_bridge_release(bridge);
}
