/* SPDX-License-Identifier: MIT */
/* A kernel uevent message (NETLINK_KOBJECT_UEVENT, group 1) parsed into the
 * few fields USB hotplug needs; pure and bounded, for any bytes. */
#include "uevent_msg.h"

#include <string.h>

static const char *const action_names[] = {
    [UEVENT_ACTION_OTHER] = "other",   [UEVENT_ACTION_ADD] = "add",
    [UEVENT_ACTION_REMOVE] = "remove", [UEVENT_ACTION_BIND] = "bind",
    [UEVENT_ACTION_UNBIND] = "unbind",
};

const char *uevent_action_name(enum uevent_action a)
{
    return (size_t)a < sizeof(action_names) / sizeof(action_names[0])
               ? action_names[a]
               : "other";
}

static enum uevent_action action_from(const char *v, size_t n)
{
    for (size_t a = UEVENT_ACTION_ADD;
         a < sizeof(action_names) / sizeof(action_names[0]); a++)
        if (strlen(action_names[a]) == n && memcmp(v, action_names[a], n) == 0)
            return (enum uevent_action)a;
    return UEVENT_ACTION_OTHER;
}

/* The value of field f (n bytes, "KEY=VALUE") if its key is key. */
static bool field_value(const char *f, size_t n, const char *key,
                        const char **v, size_t *vn)
{
    size_t kn = strlen(key);

    if (n < kn || memcmp(f, key, kn) != 0)
        return false;
    *v = f + kn;
    *vn = n - kn;
    return true;
}

/* -1 if the value does not fit: a truncated DEVPATH would name another
 * device. */
static int copy_value(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= cap || memchr(v, '\0', n))
        return -1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

/* BUSNUM and DEVNUM as the kernel prints them ("%03d"), 1..255; -1 for
 * anything else. */
static int parse_small(const char *v, size_t n)
{
    int val = 0;

    if (n == 0 || n > 3)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        val = val * 10 + (v[i] - '0');
    }
    return val >= 1 && val <= 255 ? val : -1;
}

/* At most 19 digits: no overflow. 0 for anything else. */
static uint64_t parse_seqnum(const char *v, size_t n)
{
    uint64_t val = 0;

    if (n == 0 || n > 19)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        val = val * 10 + (uint64_t)(v[i] - '0');
    }
    return val;
}

/* One KEY=VALUE field of n bytes. -1 if a kept value does not fit. */
static int parse_field(struct uevent_msg *m, const char *f, size_t n,
                       bool *have_action)
{
    const char *v;
    size_t vn;

    if (field_value(f, n, "ACTION=", &v, &vn)) {
        m->action = action_from(v, vn);
        *have_action = true;
    } else if (field_value(f, n, "DEVPATH=", &v, &vn)) {
        return copy_value(m->devpath, sizeof(m->devpath), v, vn);
    } else if (field_value(f, n, "SUBSYSTEM=", &v, &vn)) {
        return copy_value(m->subsystem, sizeof(m->subsystem), v, vn);
    } else if (field_value(f, n, "DEVTYPE=", &v, &vn)) {
        return copy_value(m->devtype, sizeof(m->devtype), v, vn);
    } else if (field_value(f, n, "BUSNUM=", &v, &vn)) {
        m->busnum = parse_small(v, vn);
    } else if (field_value(f, n, "DEVNUM=", &v, &vn)) {
        m->devnum = parse_small(v, vn);
    } else if (field_value(f, n, "SEQNUM=", &v, &vn)) {
        m->seqnum = parse_seqnum(v, vn);
    }
    return 0;
}

int uevent_msg_parse(const uint8_t *buf, size_t len, struct uevent_msg *m)
{
    const char *p = (const char *)buf, *end = p + len;
    const char *nul = memchr(p, '\0', len);
    bool have_action = false;

    memset(m, 0, sizeof(*m));
    m->busnum = m->devnum = -1;
    /* The kernel's header is "ACTION@DEVPATH"; udevd's messages start with
     * "libudev" and a binary header instead. */
    if (!nul || nul == p || !memchr(p, '@', (size_t)(nul - p)))
        return -1;
    /* Every string ends with a NUL; garbage may end without one. */
    for (p = nul + 1; p < end;) {
        const char *field_end = memchr(p, '\0', (size_t)(end - p));
        size_t n = field_end ? (size_t)(field_end - p) : (size_t)(end - p);
        if (parse_field(m, p, n, &have_action) < 0)
            return -1;
        if (!field_end)
            break;
        p = field_end + 1;
    }
    if (!have_action || m->devpath[0] != '/')
        return -1;
    return 0;
}

bool uevent_msg_is_usb_device(const struct uevent_msg *m)
{
    return strcmp(m->subsystem, "usb") == 0 &&
           strcmp(m->devtype, "usb_device") == 0;
}

const char *uevent_msg_sysname(const struct uevent_msg *m)
{
    const char *slash = strrchr(m->devpath, '/');
    return slash ? slash + 1 : m->devpath;
}
