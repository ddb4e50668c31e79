/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "op-error.h"

/*
 * What an OCI runtime hands a hook (runtime-spec "State": ociVersion, id,
 * status, pid, bundle, annotations) and what oomprotect reads of the
 * bundle's config.json (its annotations). Pure: strings in, values out;
 * the hook does the reading. Every refusal is -EBADMSG (the input is not
 * what a runtime sends) or -EINVAL (an annotation has a bad value), with a
 * sentence in err; on failure the outputs are untouched.
 */

#define OCI_ANNOTATION_PREFIX "org.oomprotect."
#define OCI_ANNOTATION_PROTECT OCI_ANNOTATION_PREFIX "protect"
#define OCI_ANNOTATION_MEMORY_MIN OCI_ANNOTATION_PREFIX "memory-min"
#define OCI_ANNOTATION_OOM_SCORE_ADJ OCI_ANNOTATION_PREFIX "oom-score-adj"

/* A container id becomes the protection's tag: the engine's limit, checked here with a clearer message. */
#define OCI_ID_MAX 255

/* Only the annotations named OCI_ANNOTATION_PREFIX*: nobody else's matter here. */
typedef struct OciAnnotation {
        char *key, *value;
} OciAnnotation;

typedef struct OciAnnotations {
        OciAnnotation *items;
        size_t n;
} OciAnnotations;

typedef struct OciState {
        char *oci_version;
        char *id;
        char *status; /* "creating", "created", "running", "stopped", or a runtime's own */
        pid_t pid;    /* 0 when the state has none (poststop: the container is gone) */
        char *bundle; /* absolute path, NULL when absent */
        OciAnnotations annotations;
} OciState;

/* What the annotations ask for. */
typedef struct OciSettings {
        bool protect;
        bool has_memory_min, has_adj;
        uint64_t memory_min;
        int adj;
} OciSettings;

int oci_state_parse(const char *text, OciState *ret, OpError *err);
void oci_state_done(OciState *s);

/* The annotations of a bundle's config.json (none is fine: an empty set). */
int oci_config_parse_annotations(const char *text, OciAnnotations *ret, OpError *err);
void oci_annotations_done(OciAnnotations *a);
const char *oci_annotations_get(const OciAnnotations *a, const char *key);

/* Adds every annotation of from whose key into lacks (the state's own win over config.json's). */
int oci_annotations_merge(OciAnnotations *into, const OciAnnotations *from);

/*
 * The settings the annotations ask for. Without OCI_ANNOTATION_PROTECT (or
 * with it false) protect is false and the others are not looked at: the
 * container is none of our business. With it true, a bad size, an adj out
 * of -1000..1000 or an unknown org.oomprotect.* key is -EINVAL, naming it.
 * total_ram: for "N%" sizes.
 */
int oci_settings_from_annotations(const OciAnnotations *a, uint64_t total_ram, OciSettings *ret, OpError *err);
