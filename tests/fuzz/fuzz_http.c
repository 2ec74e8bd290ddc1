/* SPDX-License-Identifier: MIT */
/* libFuzzer target: HTTP request heads (the metrics endpoint's parser). A
 * complete head gives an upper-case method and a printable absolute path
 * without a query string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_request req;
    int rc = http_request_parse((const char *)data, size, &req);

    if (rc < -1 || rc > 1)
        abort();
    if (rc == 1 && (req.path[0] != '/' || strchr(req.path, '?') ||
                    strlen(req.path) >= sizeof(req.path) || !req.method[0]))
        abort();
    return 0;
}
