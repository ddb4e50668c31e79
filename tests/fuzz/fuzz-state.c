/* SPDX-License-Identifier: GPL-2.0-or-later */
/* state.json as the daemon reads it at start; what parses must serialize and parse back to the same count. */
#include <stdlib.h>
#include <string.h>

#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size + 1);
        Protection **records = NULL, **again = NULL;
        size_t n = 0, n_again = 0, skipped = 0;
        const char *reason = NULL;
        char *json = NULL;

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        if (state_parse(text, &records, &n, &skipped, &reason) >= 0) {
                if (state_serialize(records, n, &json) < 0 ||
                    state_parse(json, &again, &n_again, &skipped, &reason) < 0 || n_again != n)
                        abort();
                protection_array_free(again, n_again);
                protection_array_free(records, n);
                free(json);
        }
        free(text);
        return 0;
}
