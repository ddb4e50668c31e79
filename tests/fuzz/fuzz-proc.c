/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the engine reads from /proc (stat, status, cgroup) and the sanitizer every output goes through. */
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "escape.h"
#include "proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1), *cg = NULL, *escaped, masked[17];
        uid_t uids[4], uid;
        pid_t tgid;
        unsigned threads;
        ProcStat st;

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        (void) proc_parse_stat(s, &st);
        (void) proc_parse_status_uids(s, uids);
        (void) proc_parse_status_threads(s, &threads);
        (void) proc_parse_status_uid(s, &uid);
        if (proc_parse_status_tgid(s, &tgid) == 0 && tgid <= 0)
                abort();
        if (proc_parse_cgroup_v2(s, &cg) == 0) {
                (void) cgroup_path_is_clean(cg);
                free(cg);
        }
        escaped = text_escape(s);
        if (escaped && !text_is_safe(escaped))
                abort(); /* the escape of anything is safe */
        free(escaped);
        text_mask(s, 16, masked);
        if (!text_is_safe(masked) || strlen(masked) > 16)
                abort();
        free(s);
        return 0;
}
