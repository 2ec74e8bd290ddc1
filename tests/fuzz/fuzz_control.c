/* SPDX-License-Identifier: MIT */
/* libFuzzer target: control request lines. Whatever parses must name a
 * command, carry a printable argument that fits, and (for detach/attach)
 * a selector that parses again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    if (req.force && req.cmd != CONTROL_ATTACH)
        abort();
    return 0;
}
