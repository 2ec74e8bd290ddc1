/* SPDX-License-Identifier: MIT */
/* Unit tests of serial_owner: a [serial.*] device node is matched to the
 * USB device it sits below through /sys/dev/char, here a tree of the
 * test's own in which /dev/null's number leads below a USB interface. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "check.h"
#include "serial_owner.h"

#define LP_DIR "devices/usb1/1-1/1-1:1.0/usbmisc/lp0"
#define BY_PATH "by-path/pci-usb-0:1:1.0"

static char root[64];

/* mkdir -p of root/rel */
static int mkdirs(const char *rel)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* root/dev/char/MAJ:MIN -> root/devices/usb1/1-1/1-1:1.0/usbmisc/lp0, as
 * the kernel links a USB printer; MAJ:MIN are /dev/null's, which the test
 * can open without being root. root/by-path/... links to /dev/null. */
static int make_tree(void)
{
    char path[PATH_MAX], target[PATH_MAX];
    struct stat st;

    snprintf(root, sizeof(root), "/tmp/serial-owner-XXXXXX");
    if (!mkdtemp(root) || stat("/dev/null", &st) < 0 ||
        mkdirs("dev/char") < 0 || mkdirs(LP_DIR) < 0 || mkdirs("by-path") < 0)
        return -1;
    snprintf(target, sizeof(target), "%s/" LP_DIR, root);
    snprintf(path, sizeof(path), "%s/dev/char/%u:%u", root, major(st.st_rdev),
             minor(st.st_rdev));
    if (symlink(target, path) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/" BY_PATH, root);
    return symlink("/dev/null", path);
}

static const char *owner(const char *device, const char *port,
                         const char *serial)
{
    struct serial_port_config port_cfg = {.name = "lp",
                                          .device = (char *)device};
    struct serial_config sc = {.ports = &port_cfg, .n_ports = 1};

    return serial_owner_find_in(&sc, root, port, serial);
}

static void test_node(void)
{
    char link[PATH_MAX];

    const char *o = owner("/dev/null", "1-1", "");
    CHECK(o && strcmp(o, "lp") == 0, "node below 1-1:1.0 not matched");
    CHECK(!owner("/dev/null", "1-2", ""), "other port matched");
    CHECK(!owner("/dev/null", "1", ""), "prefix of the port matched");
    snprintf(link, sizeof(link), "%s/" BY_PATH, root);
    o = owner(link, "1-1", "");
    CHECK(o && strcmp(o, "lp") == 0, "link to the node not followed");
    CHECK(!owner(root, "1-1", ""), "a directory is no device node");
    CHECK(!owner("/nonexistent/lp0", "1-1", ""), "absent node matched");
}

static void test_by_id(void)
{
    const char *by_id = "/dev/serial/by-id/usb-Rig_ACM_RIG7AC0-if00";

    /* absent: known by the serial number in its name */
    const char *o = owner(by_id, "3-4", "RIG7AC0");
    CHECK(o && strcmp(o, "lp") == 0, "by-id name with the serial");
    CHECK(!owner(by_id, "3-4", "RIG7AC"), "a shorter serial matched");
    CHECK(!owner(by_id, "3-4", ""), "no serial matched");
}

int main(void)
{
    if (make_tree() < 0) {
        perror("test tree");
        return 1;
    }
    test_node();
    test_by_id();
    char cmd[sizeof(root) + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return check_summary();
}
