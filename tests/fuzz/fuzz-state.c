/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * state.json as the daemon reads it at start, records and in-place holds;
 * what parses must serialize and parse back to the same counts.
 */
#include <stdlib.h>
#include <string.h>

#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size + 1);
        Protection **records = NULL, **again = NULL;
        size_t n = 0, n_again = 0, skipped = 0;
        const char *reason = NULL;
        HoldTable holds = {}, holds_again = {};
        char *json = NULL;

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        if (state_parse_full(text, &records, &n, &holds, &skipped, &reason) >= 0) {
                if (state_serialize_full(records, n, &holds, &json) < 0 ||
                    state_parse_full(json, &again, &n_again, &holds_again, &skipped, &reason) < 0 ||
                    n_again != n || holds_again.n != holds.n)
                        abort();
                protection_array_free(again, n_again);
                hold_table_done(&holds_again);
                hold_table_done(&holds);
                protection_array_free(records, n);
                free(json);
        }
        free(text);
        return 0;
}
