/* SPDX-License-Identifier: MIT */
/* libFuzzer target: control request lines. Whatever parses must name a
 * command, carry a printable argument that fits, and (for detach/attach)
 * a selector that parses again; a target list goes on to the run-time
 * targets parser, whose slots must print and parse back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_proto.h"
#include "usb_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_targets(const char *list)
{
    static struct usb_config file, eff, again_cfg;
    static struct usb_targets t, again;
    static char text[USB_CONFIG_MAX_SLOTS * 300];
    char why[600];

    usb_config_init(&file);
    if (usb_targets_parse(&t, &file, list, why, sizeof(why)) < 0)
        return;
    usb_targets_apply(&t, &file, &eff);
    if (eff.mode != USB_PEER_CONNECT || eff.nslots != t.n || t.n == 0)
        abort();
    usb_targets_str(&eff, text, sizeof(text));
    if (strlen(text) >= CONTROL_ARG_MAX)
        return; /* printed with ", ": longer than any request may be */
    if (usb_targets_parse(&again, &file, text, why, sizeof(why)) < 0 ||
        again.n != t.n)
        abort();
    usb_targets_apply(&again, &file, &again_cfg);
    if (!usb_config_same_slots(&eff, &again_cfg))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char line[CONTROL_REQUEST_MAX + 64], why[CONTROL_WHY_MAX];
    struct control_request req;
    bool vp;
    unsigned short vid, pid;

    if (size >= sizeof(line))
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    why[0] = '\0';
    if (control_parse(line, &req, why, sizeof(why)) < 0) {
        if (!why[0] || strlen(why) >= sizeof(why))
            abort(); /* a refusal always says why */
        return 0;
    }
    if (strcmp(control_cmd_name(req.cmd), "?") == 0 ||
        strlen(req.arg) >= sizeof(req.arg))
        abort();
    for (const char *p = req.arg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            abort();
    if ((req.cmd == CONTROL_DETACH || req.cmd == CONTROL_ATTACH) &&
        control_parse_selector(req.arg, &vp, &vid, &pid) < 0)
        abort();
    if (req.cmd == CONTROL_TARGET_SET && !req.arg[0])
        abort();
    if (req.cmd == CONTROL_TARGET_SET)
        check_targets(req.arg);
    if (req.force && req.cmd != CONTROL_ATTACH)
        abort();
    return 0;
}
