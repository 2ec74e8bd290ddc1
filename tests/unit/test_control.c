/* SPDX-License-Identifier: MIT */
/* Unit tests of the control requests: parsing (good lines, bad lines and
 * their reasons) and who may send which. */
#include <string.h>

#include "check.h"
#include "control_proto.h"
#include "usb_targets.h"

static struct control_request req;
static char why[CONTROL_WHY_MAX];

static int parse(const char *line)
{
    why[0] = '\0';
    return control_parse(line, &req, why, sizeof(why));
}

static void expect_bad(const char *line, const char *reason)
{
    CHECK(parse(line) < 0, "'%s' accepted", line);
    CHECK(strstr(why, reason) != NULL, "'%s': '%s' lacks '%s'", line, why,
          reason);
}

static void test_parse_good(void)
{
    CHECK(parse("status") == 0 && req.cmd == CONTROL_STATUS && !req.json,
          "status: %s", why);
    CHECK(parse("status json") == 0 && req.json, "status json: %s", why);
    CHECK(parse("status --json") == 0 && req.json, "--json: %s", why);
    CHECK(parse("  status   json ") == 0 && req.json, "spaces: %s", why);
    CHECK(parse("target") == 0 && req.cmd == CONTROL_TARGET_SHOW, "%s", why);
    CHECK(parse("target --json") == 0 && req.cmd == CONTROL_TARGET_SHOW &&
              req.json,
          "%s", why);
    CHECK(parse("target 10.0.0.5:4000, 10.0.0.5:4001") == 0 &&
              req.cmd == CONTROL_TARGET_SET &&
              strcmp(req.arg, "10.0.0.5:4000, 10.0.0.5:4001") == 0,
          "target LIST: %s / %s", why, req.arg);
    CHECK(parse("target set relay:4000/vm7-usb0 json") == 0 &&
              req.cmd == CONTROL_TARGET_SET && req.json &&
              strcmp(req.arg, "relay:4000/vm7-usb0") == 0,
          "target set: %s", why);
    CHECK(parse("target --clear") == 0 && req.cmd == CONTROL_TARGET_CLEAR,
          "clear: %s", why);
    CHECK(parse("target clear") == 0 && req.cmd == CONTROL_TARGET_CLEAR,
          "clear: %s", why);
    CHECK(parse("target --json --clear") == 0 &&
              req.cmd == CONTROL_TARGET_CLEAR && req.json,
          "clear after json (as the CLI sends it): %s", why);
    CHECK(parse("target --json --reset") == 0 &&
              req.cmd == CONTROL_TARGET_RESET && req.json,
          "reset after json: %s", why);
    CHECK(parse("target reset --json") == 0 &&
              req.cmd == CONTROL_TARGET_RESET && req.json,
          "reset: %s", why);
    CHECK(parse("detach 1-1.2") == 0 && req.cmd == CONTROL_DETACH &&
              strcmp(req.arg, "1-1.2") == 0,
          "detach port: %s", why);
    CHECK(parse("detach 0781:5567 --json") == 0 && req.json, "%s", why);
    CHECK(parse("attach --force 1209:0D15") == 0 && req.cmd == CONTROL_ATTACH &&
              req.force,
          "attach force: %s", why);
    CHECK(parse("events") == 0 && req.cmd == CONTROL_EVENTS, "%s", why);
    CHECK(parse("reload") == 0 && req.cmd == CONTROL_RELOAD, "%s", why);
}

static void test_parse_bad(void)
{
    char longline[CONTROL_REQUEST_MAX + 10];

    expect_bad("", "empty request");
    expect_bad("   ", "empty request");
    expect_bad("stat", "unknown request 'stat'");
    expect_bad("status extra", "usage: status");
    expect_bad("status --verbose", "unknown option '--verbose'");
    expect_bad("target set", "usage: target HOST:PORT");
    expect_bad("target --clear 1.2.3.4:5", "usage: target [LIST");
    expect_bad("target 1.2.3.4:5 --clear", "usage: target [LIST");
    expect_bad("detach", "usage: detach");
    expect_bad("detach --force 1-1", "force goes with attach");
    expect_bad("detach sda", "neither a port");
    expect_bad("attach 1-", "neither a port");
    expect_bad("attach 1-1..2", "neither a port");
    expect_bad("attach 0781:55670", "neither a port");
    expect_bad("attach 078g:5567", "neither a port");
    expect_bad("events now", "usage: events");
    expect_bad("status\tjson", "control or non-ASCII byte (0x09)");
    expect_bad("status \xc3\xa9", "non-ASCII");
    memset(longline, 'a', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = '\0';
    expect_bad(longline, "longer than");
    char many[400] = "target";
    for (int i = 0; i < 90; i++)
        strcat(many, " a");
    expect_bad(many, "more than");
}

static void test_selector(void)
{
    bool vp;
    unsigned short vid, pid;

    CHECK(control_parse_selector("1-1", &vp, &vid, &pid) == 0 && !vp, "1-1");
    CHECK(control_parse_selector("12-3.4.1", &vp, &vid, &pid) == 0 && !vp,
          "12-3.4.1");
    CHECK(control_parse_selector("abcd:Ef01", &vp, &vid, &pid) == 0 && vp &&
              vid == 0xabcd && pid == 0xef01,
          "vid:pid");
    CHECK(control_parse_selector("1-1.", &vp, &vid, &pid) < 0, "1-1.");
    CHECK(control_parse_selector("-1", &vp, &vid, &pid) < 0, "-1");
    CHECK(control_parse_selector("1234-1", &vp, &vid, &pid) < 0, "bus 1234");
    CHECK(control_parse_selector(" 1-1", &vp, &vid, &pid) < 0, "space");
}

static void test_allowed(void)
{
    struct control_access none = {.agent_uid = 110};
    struct control_access grp = {
        .agent_uid = 110, .has_group = true, .group = 500, .group_name = "vdi"};
    struct control_peer root = {.uid = 0, .gid = 0};
    struct control_peer agent = {.uid = 110, .gid = 110};
    struct control_peer user = {.uid = 1000, .gid = 1000};
    struct control_peer member = {
        .uid = 1001, .gid = 1001, .n_groups = 2, .groups = {27, 500}};
    struct control_peer primary = {.uid = 1002, .gid = 500};
    struct control_peer unknown = {.uid = (uid_t)-1, .gid = (gid_t)-1};

    /* reading is for whoever can open the socket */
    CHECK(control_allowed(&none, &user, CONTROL_STATUS, why, sizeof(why)),
          "status");
    CHECK(control_allowed(&none, &unknown, CONTROL_EVENTS, why, sizeof(why)),
          "events");
    CHECK(control_allowed(&none, &user, CONTROL_TARGET_SHOW, why, sizeof(why)),
          "target show");
    /* changing is for root, the agent's user and the group */
    CHECK(control_allowed(&none, &root, CONTROL_DETACH, why, sizeof(why)),
          "root");
    CHECK(control_allowed(&none, &agent, CONTROL_TARGET_SET, why, sizeof(why)),
          "agent's own user");
    CHECK(!control_allowed(&none, &user, CONTROL_ATTACH, why, sizeof(why)),
          "user attached");
    CHECK(strstr(why, "attach changes the agent's state: only root may") &&
              strstr(why, "uid 1000") && strstr(why, "control_group"),
          "%s", why);
    CHECK(!control_allowed(&none, &member, CONTROL_RELOAD, why, sizeof(why)),
          "no group configured, member allowed");
    CHECK(
        control_allowed(&grp, &member, CONTROL_TARGET_CLEAR, why, sizeof(why)),
        "supplementary group");
    CHECK(
        control_allowed(&grp, &primary, CONTROL_TARGET_RESET, why, sizeof(why)),
        "primary group");
    CHECK(!control_allowed(&grp, &user, CONTROL_TARGET_SET, why, sizeof(why)),
          "outsider");
    CHECK(strstr(why, "members of group 'vdi'") != NULL, "%s", why);
    CHECK(!control_allowed(&grp, &unknown, CONTROL_DETACH, why, sizeof(why)),
          "unknown peer");
    for (int c = CONTROL_STATUS; c <= CONTROL_RELOAD; c++)
        CHECK(strcmp(control_cmd_name((enum control_cmd)c), "?") != 0, "%d", c);
}

static void test_targets(void)
{
    static struct usb_config file, eff;
    static struct usb_targets t;
    char buf[512];

    usb_config_init(&file);
    CHECK(usb_targets_parse(&t, &file, "10.0.0.1:4000, [::1]:4001,h.example:7",
                            why, sizeof(why)) == 0,
          "%s", why);
    usb_targets_apply(&t, &file, &eff);
    CHECK(eff.mode == USB_PEER_CONNECT && eff.nslots == 3, "%zu", eff.nslots);
    CHECK(strcmp(usb_targets_str(&eff, buf, sizeof(buf)),
                 "10.0.0.1:4000, [::1]:4001, h.example:7") == 0,
          "%s", buf);
    CHECK(usb_targets_parse(&t, &file, "10.0.0.1", why, sizeof(why)) < 0 &&
              strstr(why, "[usb] target:"),
          "no port: %s", why);
    CHECK(usb_targets_parse(&t, &file, "a:1,,b:2", why, sizeof(why)) < 0 &&
              strstr(why, "empty entry"),
          "%s", why);
    CHECK(usb_targets_parse(&t, &file, "a:1/vm1", why, sizeof(why)) < 0 &&
              strstr(why, "relay targets need [usb] relay_secret_file"),
          "%s", why);
    file.relay_secret_file = "/k";
    CHECK(usb_targets_parse(&t, &file, "a:1/vm1, b:2", why, sizeof(why)) < 0 &&
              strstr(why, "mix of relay targets"),
          "%s", why);
    CHECK(usb_targets_parse(&t, &file, "relay:7300/vm-42.usb_0", why,
                            sizeof(why)) == 0 &&
              strcmp(t.slots[0].target, "vm-42.usb_0") == 0,
          "%s", why);
    file.transport = USB_TRANSPORT_LZ4;
    CHECK(usb_targets_parse(&t, &file, "a:1", why, sizeof(why)) < 0 &&
              strstr(why, "lz4 needs redir-relay"),
          "%s", why);
    file.relay_secret_file = NULL;
    file.transport = USB_TRANSPORT_RAW;
    CHECK(usb_targets_clear(&t, &file, why, sizeof(why)) == 0 && t.set &&
              t.n == 0,
          "clear");
    usb_targets_apply(&t, &file, &eff);
    CHECK(eff.mode == USB_PEER_CONNECT && eff.nslots == 0, "cleared");
    t.set = false;
    usb_targets_apply(&t, &file, &eff);
    CHECK(eff.mode == USB_PEER_NONE, "reset to the file's (none)");
    file.mode = USB_PEER_LISTEN;
    CHECK(usb_targets_parse(&t, &file, "a:1", why, sizeof(why)) < 0 &&
              strstr(why, "this agent listens"),
          "%s", why);
    CHECK(usb_targets_clear(&t, &file, why, sizeof(why)) < 0, "listen clear");
}

int main(void)
{
    test_targets();
    test_parse_good();
    test_parse_bad();
    test_selector();
    test_allowed();
    return check_summary();
}
