/* The serial and printer bridge: every [serial.NAME] port, tty <-> TCP, on the
 * agent's loop. */
#ifndef REDIR_SERIAL_BRIDGE_H
#define REDIR_SERIAL_BRIDGE_H

#include <uv.h>

struct agent_config;
struct serial_bridge;

/* Starts every configured port (a missing device is not an error).
 * Returns 0 and the bridge in *out (NULL when no port is configured), or
 * -1 after logging why. */
int serial_bridge_start(struct serial_bridge **out, uv_loop_t *loop,
                        const struct agent_config *cfg);

/* Closes every client, device and listener; on_stopped(arg) runs once all
 * handles are closed. */
void serial_bridge_stop(struct serial_bridge *bridge,
                        void (*on_stopped)(void *arg), void *arg);

#endif
