/* SPDX-License-Identifier: MIT */
/* Unit tests of the USB policy: real devices' descriptors, rules, defaults,
 * usbredirfilter compatibility. */
#include <errno.h>
#include <string.h>
#include <usbredirfilter.h>

#include "check.h"
#include "usb_policy.h"
#include "usb_rules.h"

/* Descriptor sets as `lsusb -v` shows them: device class triple and the
 * class triples of the active configuration's interfaces (altsetting 0). */
struct real_device {
    const char *what;
    struct usb_device_info info;
    struct usb_device_strings strings;
};

#define IFS(...)                                                               \
    .n_interfaces = sizeof((struct usb_interface_class[]){__VA_ARGS__}) /      \
                    sizeof(struct usb_interface_class),                        \
    .interfaces = {__VA_ARGS__}
#define DEV(v, p, bcd, c, s, pr, ...)                                          \
    {                                                                          \
        .vid = v, .pid = p, .bcd_device = bcd, .dev_class = c,                 \
        .dev_subclass = s, .dev_protocol = pr, IFS(__VA_ARGS__)                \
    }

static struct real_device devices[] = {
    {"keyboard (Dell KB216)",
     DEV(0x413c, 0x2113, 0x0108, 0, 0, 0, {3, 1, 1}, {3, 0, 0}),
     {"", "Dell KB216 Wired Keyboard", "1-1", NULL}},
    {"mouse (Logitech M100)",
     DEV(0x046d, 0xc077, 0x7200, 0, 0, 0, {3, 1, 2}),
     {"", "USB Optical Mouse", "1-2", NULL}},
    {"keyboard+touchpad combo (Lenovo TrackPoint keyboard)",
     DEV(0x17ef, 0x6047, 0x0300, 0, 0, 0, {3, 1, 1}, {3, 1, 2}),
     {"", "ThinkPad Compact USB Keyboard with TrackPoint", "1-3", NULL}},
    {"wireless receiver (Logitech Unifying)",
     DEV(0x046d, 0xc52b, 0x1211, 0, 0, 0, {3, 1, 1}, {3, 1, 2}, {3, 0, 0}),
     {"", "USB Receiver", "1-4", NULL}},
    {"security key, OTP+FIDO+CCID (YubiKey 5)",
     DEV(0x1050, 0x0407, 0x0526, 0, 0, 0, {3, 1, 1}, {3, 0, 0}, {0x0b, 0, 0}),
     {"", "YubiKey OTP+FIDO+CCID", "1-2", NULL}},
    {"security key, FIDO+CCID (YubiKey 5)",
     DEV(0x1050, 0x0406, 0x0526, 0, 0, 0, {3, 0, 0}, {0x0b, 0, 0}),
     {"", "YubiKey FIDO+CCID", "1-2", NULL}},
    {"webcam (Logitech C270)",
     DEV(0x046d, 0x0825, 0x0012, 0xef, 2, 1, {0x0e, 1, 0}, {0x0e, 2, 0},
         {1, 1, 0}, {1, 2, 0}),
     {"5A2B3C4D", "C270 HD WEBCAM", "1-5", NULL}},
    {"USB stick (SanDisk Cruzer Blade)",
     DEV(0x0781, 0x5567, 0x0100, 0, 0, 0, {8, 6, 0x50}),
     {"4C530001230512116343", "Cruzer Blade", "1-6", NULL}},
    {"UAS disk (ASMedia ASM1153E, UAS-only setting)",
     DEV(0x174c, 0x55aa, 0x0100, 0, 0, 0, {8, 6, 0x62}),
     {"123456789012", "ASM1153E", "2-1", NULL}},
    {"FTDI serial adapter (FT232R)",
     DEV(0x0403, 0x6001, 0x0600, 0, 0, 0, {0xff, 0xff, 0xff}),
     {"A50285BI", "FT232R USB UART", "1-1.4", NULL}},
    {"hub (Genesys Logic GL850G)",
     DEV(0x05e3, 0x0608, 0x8537, 9, 0, 1, {9, 0, 0}),
     {"", "USB2.0 Hub", "1-1", NULL}},
    {"printer (HP LaserJet P1102)",
     DEV(0x03f0, 0x002a, 0x0100, 0, 0, 0, {7, 1, 2}, {0xff, 1, 1}),
     {"000000000QN7K4YRPR1a", "HP LaserJet Professional P1102", "1-7", NULL}},
    {"smart-card reader (Alcor AU9540)",
     DEV(0x058f, 0x9540, 0x0120, 0, 0, 0, {0x0b, 0, 0}),
     {"", "EMV Smartcard Reader", "1-8", NULL}},
};
#define N_DEVICES (sizeof(devices) / sizeof(devices[0]))

struct expectation {
    const char *decision; /* "local" or "redirect rw|ro|wo" */
    const char *reason;
};

static void expect(const struct usb_policy *p, size_t i,
                   const struct expectation *want)
{
    struct usb_decision out;
    char got[32];

    usb_policy_decide(p, &devices[i].info, &devices[i].strings, &out);
    snprintf(got, sizeof(got), "%s%s%s", out.redirect ? "redirect" : "local",
             out.redirect ? " " : "",
             out.redirect ? usb_access_name(out.access) : "");
    CHECK(strcmp(got, want->decision) == 0, "%s: %s, want %s (%s)",
          devices[i].what, got, want->decision, out.reason);
    CHECK(strcmp(out.reason, want->reason) == 0, "%s: reason '%s', want '%s'",
          devices[i].what, out.reason, want->reason);
}

static void test_defaults(void)
{
    static const struct expectation want[N_DEVICES] = {
        {"local", "default policy: HID boot keyboard"},
        {"local", "default policy: HID boot mouse"},
        {"local", "default policy: HID boot keyboard"},
        {"local", "default policy: HID boot keyboard"},
        {"local", "default policy: HID boot keyboard"},
        {"redirect rw", "default policy"},
        {"redirect rw", "default policy"},
        {"redirect rw", "default policy"},
        {"redirect rw", "default policy"},
        {"redirect rw", "default policy"},
        {"local", "hubs are never redirected"},
        {"redirect rw", "default policy"},
        {"redirect rw", "default policy"},
    };
    struct usb_policy p = {0};
    for (size_t i = 0; i < N_DEVICES; i++)
        expect(&p, i, &want[i]);
}

/* The example rule set of the documentation. */
static const char *const example_rules[] = {
    "deny  interface=03:01:01", "deny  interface=03:01:02", "allow vid=1050",
    "allow class=08 access=ro", "deny  port=1-1.4",
};

static void test_example_rules(void)
{
    static const struct expectation want[N_DEVICES] = {
        {"local", "rule 1: interface=03:01:01"},
        {"local", "rule 2: interface=03:01:02"},
        {"local", "rule 1: interface=03:01:01"},
        {"local", "rule 1: interface=03:01:01"},
        {"local", "rule 1: interface=03:01:01"}, /* first match wins */
        {"redirect rw", "rule 3: vid=1050"},
        {"redirect rw", "default policy"},
        {"redirect ro", "rule 4: class=08"},
        {"local", "UAS storage cannot be made ro; rule 4: class=08"},
        {"local", "rule 5: port=1-1.4"},
        {"local", "hubs are never redirected"},
        {"redirect rw", "default policy"},
        {"redirect rw", "default policy"},
    };
    struct usb_rule rules[5];
    char why[256];

    for (size_t i = 0; i < 5; i++)
        CHECK(usb_rule_parse(example_rules[i], &rules[i], why, sizeof(why)) ==
                  0,
              "%s: %s", example_rules[i], why);
    struct usb_policy p = {.rules = rules, .n_rules = 5};
    for (size_t i = 0; i < N_DEVICES; i++)
        expect(&p, i, &want[i]);
}

static void test_matchers(void)
{
    static const struct {
        const char *rule;
        size_t device;
        bool matches;
    } cases[] = {
        {"allow vid=046d pid=0825", 6, true},
        {"allow vid=046d pid=0826", 6, false},
        {"allow vid=* pid=5567", 7, true},
        {"allow bcdDevice=0100 vid=0781", 7, true},
        {"allow device=ef:02:01", 6, true},
        {"allow device=ef:*:*", 6, true},
        {"allow device=00", 6, false},
        {"allow class=0e", 6, true},
        {"allow class=ef", 6, true},
        {"allow interface=01:02", 6, true},
        {"allow interface=01:03", 6, false},
        {"allow all-interfaces=03:*:*", 3, true},
        {"allow all-interfaces=03:01:*", 3, false},
        {"allow all-interfaces=0e", 6, false},
        {"allow serial=4C53*", 7, true},
        {"allow serial=4C54*", 7, false},
        {"allow product=\"Cruzer Blade\"", 7, true},
        {"allow product=*Cruzer*", 7, true},
        {"allow product=\"YubiKey FIDO*\"", 5, true},
        {"allow port=1-1.*", 9, true},
        {"allow port=1-1.*", 10, false},
        {"allow port=2-1", 8, true},
        {"deny", 0, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct usb_rule r;
        char why[256];
        const struct real_device *d = &devices[cases[i].device];
        CHECK(usb_rule_parse(cases[i].rule, &r, why, sizeof(why)) == 0,
              "%s: %s", cases[i].rule, why);
        CHECK(usb_rule_matches(&r, &d->info, &d->strings) == cases[i].matches,
              "'%s' on %s should %smatch", cases[i].rule, d->what,
              cases[i].matches ? "" : "not ");
    }
}

static void test_bad_rules(void)
{
    static const struct {
        const char *rule, *message;
    } cases[] = {
        {"", "'': a rule starts with allow or deny"},
        {"permit vid=1050", "'permit': a rule starts with allow or deny"},
        {"allow vid=10500", "'vid=10500': vid expects 4 hex digits or *"},
        {"allow vid=zz", "'vid=zz': vid expects 4 hex digits or *"},
        {"allow vendor=1050", "'vendor': unknown matcher"},
        {"allow vid", "'vid': expected KEY=VALUE"},
        {"allow interface=3:1:1", "'interface=3:1:1': interface expects CC"},
        {"allow interface=03:01:01:00", "'interface=03:01:01:00': interface"},
        {"allow class=08 access=rx",
         "'access=rx': access expects rw, ro or wo"},
        {"deny class=08 access=ro", "access= only makes sense on allow rules"},
        {"allow product=\"unterminated", "expected KEY=VALUE"},
        {"allow serial=", "'serial=': serial expects a string or glob"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct usb_rule r;
        char why[256] = "";
        CHECK(usb_rule_parse(cases[i].rule, &r, why, sizeof(why)) < 0,
              "'%s' accepted", cases[i].rule);
        CHECK(strstr(why, cases[i].message) != NULL, "'%s': '%s' lacks '%s'",
              cases[i].rule, why, cases[i].message);
    }
}

static void test_serial_bridge_device(void)
{
    struct real_device ftdi = devices[9];
    struct usb_decision out;
    struct usb_policy p = {0};

    ftdi.strings.serial_bridge_port = "scale";
    usb_policy_decide(&p, &ftdi.info, &ftdi.strings, &out);
    CHECK(!out.redirect, "serial bridge device redirected");
    CHECK(strcmp(out.reason, "used by the serial bridge [serial.scale]") == 0,
          "%s", out.reason);
}

/* filter = must decide exactly as usbredirfilter_check does. */
static void test_filter_compat(void)
{
    static const char *const filters[] = {
        "0x03,-1,-1,-1,0|-1,-1,-1,-1,1",
        "-1,0x1050,-1,-1,1|-1,-1,-1,-1,0",
        "0x08,-1,-1,-1,1",
        "0x0e,-1,-1,-1,0|-1,-1,-1,-1,1",
        "-1,0x0781,0x5567,0x0100,1",
        "-1,0x0781,0x5567,0x0200,1|0x08,-1,-1,-1,0",
        "0x03,-1,-1,-1,1|-1,-1,-1,-1,0",
        "0xff,0x0403,-1,-1,1|0x07,-1,-1,-1,1",
        "0x0b,-1,-1,-1,1|0x01,-1,-1,-1,0|-1,-1,-1,-1,1",
    };
    for (size_t f = 0; f < sizeof(filters) / sizeof(filters[0]); f++) {
        struct usbredirfilter_rule *rules;
        int count;
        CHECK(usbredirfilter_string_to_rules(filters[f], ",", "|", &rules,
                                             &count) == 0,
              "%s", filters[f]);
        struct usb_policy p = {.filter_rules = rules, .filter_count = count};
        for (size_t i = 0; i < N_DEVICES; i++) {
            const struct usb_device_info *d = &devices[i].info;
            uint8_t c[32], s[32], pr[32];
            struct usb_decision out;
            for (size_t k = 0; k < d->n_interfaces; k++) {
                c[k] = d->interfaces[k].cls;
                s[k] = d->interfaces[k].subclass;
                pr[k] = d->interfaces[k].protocol;
            }
            int lib = usbredirfilter_check(
                rules, count, d->dev_class, d->dev_subclass, d->dev_protocol, c,
                s, pr, (int)d->n_interfaces, d->vid, d->pid, d->bcd_device, 0);
            usb_policy_decide(&p, d, &devices[i].strings, &out);
            if (d->dev_class == 9)
                CHECK(!out.redirect, "hub redirected by filter %s", filters[f]);
            else
                CHECK(out.redirect == (lib == 0),
                      "filter %s on %s: ours %d, usbredirfilter_check %d",
                      filters[f], devices[i].what, out.redirect, lib);
        }
        usbredirfilter_free(rules);
    }
}

int main(void)
{
    devices[8].info.has_uas = true; /* its only setting is UAS (08:06:62) */
    test_defaults();
    test_example_rules();
    test_matchers();
    test_bad_rules();
    test_serial_bridge_device();
    test_filter_compat();
    return check_summary();
}
