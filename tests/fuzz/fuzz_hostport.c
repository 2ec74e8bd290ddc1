/* SPDX-License-Identifier: MIT */
/* libFuzzer target: HOST:PORT parsing and formatting round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hostport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[1024], why[512], again[HOSTPORT_HOST_MAX + 16];
    struct hostport hp, hp2;

    if (size >= sizeof(text))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (hostport_parse(text, &hp, why, sizeof(why)) < 0)
        return 0;
    /* What we print must parse back to the same endpoint. */
    hostport_str(&hp, again, sizeof(again));
    if (hostport_parse(again, &hp2, why, sizeof(why)) < 0 ||
        strcmp(hp.host, hp2.host) != 0 || hp.port != hp2.port)
        abort();
    return 0;
}
