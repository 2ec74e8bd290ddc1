/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the early usbredir hello check, fed whole and byte by byte.
 */
#include <stdint.h>
#include <stdlib.h>

#include "usbredir_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    enum usbredir_hello_result whole = usbredir_hello_check(data, size, &why);

    if (whole == USBREDIR_HELLO_BAD && !why)
        abort();
    /* Growing prefixes must never flip from BAD back to acceptable. */
    int seen_bad = 0;
    for (size_t n = 0; n <= size && n <= 16; n++) {
        enum usbredir_hello_result r = usbredir_hello_check(data, n, &why);
        if (seen_bad && r != USBREDIR_HELLO_BAD)
            abort();
        seen_bad |= r == USBREDIR_HELLO_BAD;
    }
    return 0;
}
