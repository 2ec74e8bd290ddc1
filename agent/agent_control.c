/* SPDX-License-Identifier: MIT */
/* What the agent answers on its control socket: status, target, detach,
 * attach, reload, events; who may change state; the events stream. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "control.h"
#include "control_proto.h"
#include "log.h"
#include "serial_bridge.h"
#include "status.h"
#include "strbuf.h"
#include "usb_redirector.h"

#define CONTROL_SOCKET_MODE 0660 /* root, the agent, the socket's group */
#define TARGETS_TEXT_MAX 4096    /* 64 slots of host:port/target */
#define EVENT_LINE_MAX 8192 /* names, reasons, errors: a few hundred bytes */

/* ---- replies ---- */

static void reply_result(struct strbuf *reply, bool json, bool ok,
                         const char *msg)
{
    if (!json) {
        strbuf_printf(reply, "%s%s\n", ok ? "" : "error: ", msg);
        return;
    }
    strbuf_printf(reply, "{\"ok\":%s,\"%s\":", ok ? "true" : "false",
                  ok ? "message" : "error");
    strbuf_json_string(reply, msg);
    strbuf_printf(reply, "}\n");
}

static void agent_status(struct agent *a, bool json, struct strbuf *reply)
{
    struct serial_port_status serial[SERIAL_CONFIG_MAX_PORTS];
    struct agent_status st = {
        .config_path = a->cfg->path,
        .uptime_ms = uv_now(a->loop) - a->started_ms,
        .usb_running = a->usb != NULL,
        .serial = serial,
    };

    if (a->usb)
        usb_redirector_status(a->usb, &st.usb);
    if (a->serial)
        st.n_serial =
            serial_bridge_status(a->serial, serial, SERIAL_CONFIG_MAX_PORTS);
    status_render(&st, json, reply);
    usb_status_free(&st.usb);
}

/* ---- target ---- */

static void target_show(struct agent *a, bool json, struct strbuf *reply)
{
    char list[TARGETS_TEXT_MAX];
    struct usb_config eff;
    const char *source = a->targets.set ? "control" : "config";

    usb_targets_apply(&a->targets, &a->cfg->usb, &eff);
    usb_targets_str(&eff, list, sizeof(list));
    if (json) {
        strbuf_printf(reply, "{\"mode\":\"%s\",\"source\":\"%s\",\"targets\":[",
                      eff.mode == USB_PEER_LISTEN    ? "listen"
                      : eff.mode == USB_PEER_CONNECT ? "connect"
                                                     : "off",
                      source);
        for (size_t i = 0; i < eff.nslots; i++) {
            char one[HOSTPORT_HOST_MAX + USB_TARGET_MAX + 16];
            struct usb_config single = {.nslots = 1};
            single.slots[0] = eff.slots[i];
            strbuf_printf(reply, i ? "," : "");
            strbuf_json_string(reply,
                               usb_targets_str(&single, one, sizeof(one)));
        }
        strbuf_printf(reply, "]}\n");
        return;
    }
    if (eff.mode == USB_PEER_LISTEN)
        strbuf_printf(reply, "listening on: %s (from %s)\n", list,
                      a->cfg->path);
    else if (!eff.nslots)
        strbuf_printf(reply, "targets: none (%s)\n",
                      a->targets.set ? "cleared at run time"
                                     : "none in the config file");
    else
        strbuf_printf(reply, "targets: %s (%s)\n", list,
                      a->targets.set ? "set at run time" : a->cfg->path);
}

/* Moves the redirector to the file's [usb] with the targets over it. */
void agent_usb_apply(struct agent *a)
{
    usb_targets_apply(&a->targets, &a->cfg->usb, &a->usb_eff);
    if (!a->usb) {
        if (a->usb_eff.mode != USB_PEER_NONE && agent_usb_start(a) < 0)
            log_err("USB redirection could not start (see above)");
        return;
    }
    usb_redirector_reconfigure(a->usb, &a->usb_eff);
    if (a->usb_eff.mode == USB_PEER_NONE)
        agent_usb_stop(a);
}

static void target_change(struct agent *a, const struct control_request *req,
                          struct strbuf *reply)
{
    char why[CONTROL_WHY_MAX + 256], list[TARGETS_TEXT_MAX];
    struct usb_targets next = a->targets;
    int rc = 0;

    if (req->cmd == CONTROL_TARGET_SET)
        rc = usb_targets_parse(&next, &a->cfg->usb, req->arg, why, sizeof(why));
    else if (req->cmd == CONTROL_TARGET_CLEAR)
        rc = usb_targets_clear(&next, &a->cfg->usb, why, sizeof(why));
    else
        next.set = false;
    if (rc < 0) {
        reply_result(reply, req->json, false, why);
        return;
    }
    a->targets = next;
    agent_usb_apply(a);
    usb_targets_str(&a->usb_eff, list, sizeof(list));
    log_notice("control socket: USB targets %s: %s",
               req->cmd == CONTROL_TARGET_RESET ? "back to the config file's"
                                                : "set",
               list[0] ? list : "none");
    snprintf(why, sizeof(why), "targets: %.*s", (int)sizeof(why) - 32,
             list[0] ? list : "none (devices stay with the host)");
    reply_result(reply, req->json, true, why);
}

/* ---- detach / attach / reload ---- */

static void device_command(struct agent *a, const struct control_request *req,
                           struct strbuf *reply)
{
    char msg[CONTROL_WHY_MAX + 512];
    int rc;

    if (!a->usb) {
        reply_result(reply, req->json, false,
                     "USB redirection is off (no [usb] connect or listen, "
                     "and no target set)");
        return;
    }
    if (req->cmd == CONTROL_DETACH)
        rc = usb_redirector_detach(a->usb, req->arg, msg, sizeof(msg));
    else
        rc = usb_redirector_attach(a->usb, req->arg, req->force,
                                   a->cfg->allow_force, msg, sizeof(msg));
    reply_result(reply, req->json, rc >= 0, msg);
}

static void reload_command(struct agent *a, bool json, struct strbuf *reply)
{
    char msg[CONFIG_ERR_MAX + 64];
    int rc = agent_reload(a, "reload request", msg, sizeof(msg));

    reply_result(reply, json, rc == 0, msg);
}

/* ---- the request ---- */

static struct control_access agent_access(const struct agent *a)
{
    return (struct control_access){
        .agent_uid = geteuid(),
        .has_group = a->cfg->control_group != NULL,
        .group = a->cfg->control_gid,
        .group_name = a->cfg->control_group,
    };
}

static enum control_outcome
agent_control_request(void *ctx, const char *line,
                      const struct control_peer *peer, struct strbuf *reply)
{
    struct agent *a = ctx;
    struct control_request req;
    struct control_access acc = agent_access(a);
    char why[CONTROL_WHY_MAX];

    if (control_parse(line, &req, why, sizeof(why)) < 0) {
        reply_result(reply, strstr(line, "json") != NULL, false, why);
        return CONTROL_DONE;
    }
    if (!control_allowed(&acc, peer, req.cmd, why, sizeof(why))) {
        log_notice("control socket: refused %s from uid %u: %s",
                   control_cmd_name(req.cmd), (unsigned)peer->uid, why);
        reply_result(reply, req.json, false, why);
        return CONTROL_DONE;
    }
    switch (req.cmd) {
    case CONTROL_STATUS: agent_status(a, req.json, reply); break;
    case CONTROL_TARGET_SHOW: target_show(a, req.json, reply); break;
    case CONTROL_TARGET_SET:
    case CONTROL_TARGET_CLEAR:
    case CONTROL_TARGET_RESET: target_change(a, &req, reply); break;
    case CONTROL_DETACH:
    case CONTROL_ATTACH: device_command(a, &req, reply); break;
    case CONTROL_RELOAD: reload_command(a, req.json, reply); break;
    case CONTROL_EVENTS:
        strbuf_printf(reply, "{\"event\":\"subscribed\"}\n");
        return CONTROL_SUBSCRIBE;
    }
    return CONTROL_DONE;
}

int agent_control_start(struct agent *a)
{
    struct control_socket_opts opts = {
        .mode = CONTROL_SOCKET_MODE,
        .group = a->cfg->control_group ? a->cfg->control_gid : (gid_t)-1,
    };

    a->control = control_start(a->loop, a->cfg->control_socket, &opts,
                               agent_control_request, a);
    return a->control ? 0 : -1;
}

/* ---- events ---- */

static void event_field(struct strbuf *sb, const char *name, const char *v)
{
    if (!v)
        return;
    strbuf_printf(sb, ",\"%s\":", name);
    strbuf_json_string(sb, v);
}

/* '{"time":T,"event":"NAME"' ; false if nobody listens. */
static bool event_start(struct agent *a, struct strbuf *sb, const char *name)
{
    struct timespec ts;

    if (!a->control || control_subscribers(a->control) == 0)
        return false;
    clock_gettime(CLOCK_REALTIME, &ts);
    strbuf_printf(sb, "{\"time\":%lld.%03ld,\"event\":\"%s\"",
                  (long long)ts.tv_sec, ts.tv_nsec / 1000000, name);
    return true;
}

static void event_send(struct agent *a, struct strbuf *sb)
{
    strbuf_printf(sb, "}\n");
    if (!sb->failed && sb->len < EVENT_LINE_MAX)
        control_broadcast(a->control, sb->data, sb->len);
    strbuf_free(sb);
}

void agent_serial_event(void *ctx, const char *port, const char *client,
                        bool connected, const char *why, uint64_t bytes_in,
                        uint64_t bytes_out)
{
    struct agent *a = ctx;
    struct strbuf sb = {0};

    if (!event_start(a, &sb,
                     connected ? "serial-client-connected"
                               : "serial-client-left"))
        return;
    event_field(&sb, "serial", port);
    event_field(&sb, "client", client);
    if (!connected) {
        event_field(&sb, "detail", why);
        strbuf_printf(
            &sb, ",\"bytes_from_client\":%llu,\"bytes_to_client\":%llu",
            (unsigned long long)bytes_in, (unsigned long long)bytes_out);
    }
    event_send(a, &sb);
}

void agent_usb_event(void *ctx, const struct usb_event *ev)
{
    struct agent *a = ctx;
    struct strbuf sb = {0};

    if (!event_start(a, &sb, usb_event_kind_name(ev->kind)))
        return;
    event_field(&sb, "port", ev->port);
    if (ev->port)
        strbuf_printf(&sb, ",\"vid\":\"%04x\",\"pid\":\"%04x\"", ev->vid,
                      ev->pid);
    event_field(&sb, "product", ev->product);
    if (ev->kind == USB_EVENT_DECISION)
        strbuf_printf(&sb, ",\"redirect\":%s", ev->redirect ? "true" : "false");
    event_field(&sb, "access", ev->access);
    event_field(&sb, ev->kind == USB_EVENT_DECISION ? "reason" : "detail",
                ev->detail);
    event_field(&sb, "peer", ev->peer);
    if (ev->slot)
        strbuf_printf(&sb, ",\"slot\":%u", ev->slot);
    if (ev->kind == USB_EVENT_REDIRECTED)
        strbuf_printf(&sb, ",\"reconnect\":%s",
                      ev->reconnect ? "true" : "false");
    event_send(a, &sb);
}
