/* redir-agent --list-devices: every USB device and what the config would
 * decide, touching none. */
#ifndef REDIR_LIST_DEVICES_H
#define REDIR_LIST_DEVICES_H

struct agent_config;

/* Prints the dry run to stdout; returns the exit code. */
int list_devices(const struct agent_config *cfg);

#endif
