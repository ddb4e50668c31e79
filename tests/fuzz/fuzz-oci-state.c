/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a runtime writes to the hook's stdin (and a bundle's config.json):
 * whatever parses keeps the parser's promises, and every refusal says why.
 */
#include <stdlib.h>
#include <string.h>

#include "oci-state.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size + 1);
        OciState s = {};
        OciAnnotations config = {};
        OciSettings settings;
        OpError err = {};

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        if (oci_state_parse(text, &s, &err) >= 0) {
                if (isempty(s.id) || strlen(s.id) > OCI_ID_MAX || isempty(s.oci_version) || isempty(s.status) ||
                    s.pid < 0 || s.pid > OOMPROTECT_PID_MAX_LIMIT || (s.bundle && s.bundle[0] != '/'))
                        abort();
                err = (OpError) {};
                if (oci_settings_from_annotations(&s.annotations, 1ULL << 30, &settings, &err) < 0 &&
                    isempty(err.message))
                        abort();
                oci_state_done(&s);
        } else if (isempty(err.message))
                abort();
        err = (OpError) {};
        if (oci_config_parse_annotations(text, &config, &err) >= 0) {
                for (size_t i = 0; i < config.n; i++)
                        if (!strneq(config.items[i].key, OCI_ANNOTATION_PREFIX, strlen(OCI_ANNOTATION_PREFIX)))
                                abort();
                oci_annotations_done(&config);
        } else if (isempty(err.message))
                abort();
        free(text);
        return 0;
}
