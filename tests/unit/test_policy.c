/* Unit tests of the USB policy: defaults and usbredirfilter compatibility. */
#include <errno.h>
#include <string.h>
#include <usbredirfilter.h>

#include "check.h"
#include "usb_policy.h"

static struct usb_device_info device(uint16_t vid, uint16_t pid, uint8_t cls,
                                     size_t n,
                                     const struct usb_interface_class *ifs)
{
    struct usb_device_info d = {.vid = vid,
                                .pid = pid,
                                .bcd_device = 0x0100,
                                .dev_class = cls,
                                .n_interfaces = n};
    if (n)
        memcpy(d.interfaces, ifs, n * sizeof(*ifs));
    return d;
}

static void expect(const struct usb_policy *p, const struct usb_device_info *d,
                   bool redirect, const char *reason)
{
    struct usb_decision out;
    usb_policy_decide(p, d, &out);
    CHECK(out.redirect == redirect, "%04x:%04x: redirect=%d (%s)", d->vid,
          d->pid, out.redirect, out.reason);
    CHECK(strcmp(out.reason, reason) == 0, "%04x:%04x: reason '%s', want '%s'",
          d->vid, d->pid, out.reason, reason);
}

static const struct usb_interface_class kbd[] = {{0x03, 0x01, 0x01}};
static const struct usb_interface_class mouse[] = {{0x03, 0x01, 0x02}};
static const struct usb_interface_class storage[] = {{0x08, 0x06, 0x50}};
static const struct usb_interface_class kbd_storage[] = {{0x08, 0x06, 0x50},
                                                         {0x03, 0x01, 0x01}};
static const struct usb_interface_class fido[] = {{0x03, 0x00, 0x00},
                                                  {0x0b, 0x00, 0x00}};
static const struct usb_interface_class hub[] = {{0x09, 0x00, 0x00}};

static void test_defaults(void)
{
    struct usb_policy p = {0};
    struct usb_device_info d;

    d = device(0x1209, 0x4b42, 0, 1, kbd);
    expect(&p, &d, false, "default policy: HID boot keyboard");
    d = device(0x046d, 0xc077, 0, 1, mouse);
    expect(&p, &d, false, "default policy: HID boot mouse");
    d = device(0x0781, 0x5567, 0, 1, storage);
    expect(&p, &d, true, "default policy");
    d = device(0x1234, 0x0001, 0, 2, kbd_storage);
    expect(&p, &d, false, "default policy: HID boot keyboard");
    d = device(0x1050, 0x0407, 0, 2, fido);
    expect(&p, &d, true, "default policy");
    d = device(0x1d6b, 0x0002, 0x09, 1, hub);
    expect(&p, &d, false, "hubs are never redirected");
}

static void test_filter(void)
{
    struct usbredirfilter_rule *rules;
    int count;
    struct usb_device_info d;

    CHECK(usbredirfilter_string_to_rules("0x03,-1,-1,-1,0|-1,-1,-1,-1,1", ",",
                                         "|", &rules, &count) == 0,
          "parse");
    struct usb_policy p = {.filter_rules = rules, .filter_count = count};
    d = device(0x1209, 0x4b42, 0, 1, kbd);
    expect(&p, &d, false, "filter: denied by a rule");
    d = device(0x0781, 0x5567, 0, 1, storage);
    expect(&p, &d, true, "filter: allowed");
    d = device(0x1d6b, 0x0002, 0x09, 1, hub);
    expect(&p, &d, false, "hubs are never redirected");
    usbredirfilter_free(rules);

    CHECK(usbredirfilter_string_to_rules("0x08,-1,-1,-1,1", ",", "|", &rules,
                                         &count) == 0,
          "parse");
    p = (struct usb_policy){.filter_rules = rules, .filter_count = count};
    d = device(0x1209, 0x100b, 0xff, 0, NULL);
    expect(&p, &d, false, "filter: no rule matched");
    usbredirfilter_free(rules);
}

int main(void)
{
    test_defaults();
    test_filter();
    return check_summary();
}
