/* The serial and printer bridge: every [serial.NAME] port, tty <-> TCP, on the
 * agent's loop. */
#include "serial_bridge.h"

#include "config.h"

int serial_bridge_start(struct serial_bridge **out, uv_loop_t *loop,
                        const struct agent_config *cfg)
{
    (void)loop;
    (void)cfg;
    *out = NULL; /* config_serial.c refuses [serial.*] until it exists */
    return 0;
}

void serial_bridge_stop(struct serial_bridge *bridge,
                        void (*on_stopped)(void *arg), void *arg)
{
    (void)bridge;
    on_stopped(arg);
}
