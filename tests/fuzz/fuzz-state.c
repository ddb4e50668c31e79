/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * state.json as the daemon reads it at start: the document and the journal
 * after it. What parses must serialize and parse back to the same count
 * (records, holds and units), and a journal of one "del" per record appended
 * to that must parse back empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hold.h"
#include "state.h"
#include "unit-protection.h"

static char *with_dels(const char *doc, Protection **records, size_t n) {
        size_t len = strlen(doc), size = len + n * 24 + 1;
        char *text = malloc(size);

        if (!text)
                return NULL;
        memcpy(text, doc, len + 1);
        for (size_t i = 0; i < n; i++)
                len += (size_t) snprintf(text + len, size - len, "{\"del\":%d}\n", (int) records[i]->pid);
        return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size + 1), *json = NULL, *dels = NULL;
        Protection **records = NULL, **again = NULL;
        size_t n = 0, n_again = 0, skipped = 0;
        HoldTable holds = {};
        const char *reason = NULL;
        HoldTable holds_again = {};
        UnitTable units = {}, units_again = {};

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        if (state_parse_full(text, &records, &n, &holds, &units, &skipped, &reason) >= 0) {
                if (state_serialize_full(records, n, &holds, &units, &json) < 0 ||
                    state_parse_full(json, &again, &n_again, &holds_again, &units_again, &skipped, &reason) < 0 ||
                    n_again != n || holds_again.n != holds.n || units_again.n != units.n)
                        abort();
                protection_array_free(again, n_again);
                hold_table_done(&holds_again);
                unit_table_done(&units_again);
                again = NULL;
                dels = with_dels(json, records, n);
                if (!dels || state_parse(dels, &again, &n_again, &skipped, &reason) < 0 || n_again != 0)
                        abort();
                protection_array_free(again, n_again);
                protection_array_free(records, n);
                hold_table_done(&holds);
                unit_table_done(&units);
                free(json);
                free(dels);
        }
        free(text);
        return 0;
}
