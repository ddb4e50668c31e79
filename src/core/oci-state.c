/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "macro.h"
#include "oci-state.h"
#include "parse.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

/* After a syntax error in strict mode: was there a complete JSON value, followed by something else? */
static bool has_trailing_data(const char *text, size_t len) {
        _cleanup_(json_tokener_freep) json_tokener *tok = json_tokener_new();
        _cleanup_(json_object_putp) json_object *o = NULL;

        if (!tok)
                return false;
        o = json_tokener_parse_ex(tok, text, (int) len); /* without the NUL: it stops after the first value */
        return json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) < len;
}

/* what: "the OCI state", "config.json". The whole text is one JSON object, white space around it allowed. */
static int parse_object(const char *text, const char *what, json_object **ret, OpError *err) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        enum json_tokener_error e;
        size_t len = strlen(text), end;

        if (text[strspn(text, " \t\r\n")] == '\0')
                return op_error_set(err, -EBADMSG, NULL, "%s is empty.", what);
        if (len >= INT_MAX)
                return op_error_set(err, -EBADMSG, NULL, "%s is too large.", what);
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        /* Including the terminating NUL, so that the tokener knows the input ends there. */
        o = json_tokener_parse_ex(tok, text, (int) len + 1);
        e = json_tokener_get_error(tok);
        if (e == json_tokener_continue || e == json_tokener_error_parse_eof)
                return op_error_set(err, -EBADMSG, NULL, "%s is truncated JSON.", what);
        end = json_tokener_get_parse_end(tok);
        if (e != json_tokener_success && has_trailing_data(text, len))
                return op_error_set(err, -EBADMSG, NULL, "%s has trailing data after the JSON value.", what);
        if (e != json_tokener_success)
                return op_error_set(err, -EBADMSG, NULL, "%s is not valid JSON: %s at byte %zu.", what,
                                    json_tokener_error_desc(e), json_tokener_get_parse_end(tok));
        if (text[end + strspn(text + end, " \t\r\n")] != '\0')
                return op_error_set(err, -EBADMSG, NULL, "%s has trailing data after the JSON value at byte %zu.",
                                    what, end);
        if (!json_object_is_type(o, json_type_object))
                return op_error_set(err, -EBADMSG, NULL, "%s is not a JSON object.", what);
        *ret = TAKE_PTR(o);
        return 0;
}

/* A string member: -ENOENT when absent (or null), -EBADMSG when of another type. */
static int get_string(json_object *o, const char *key, const char *what, char **ret, OpError *err) {
        json_object *v;
        char *s;

        if (!json_object_object_get_ex(o, key, &v) || !v)
                return -ENOENT;
        if (!json_object_is_type(v, json_type_string))
                return op_error_set(err, -EBADMSG, NULL, "%s: \"%s\" is not a string.", what, key);
        if (strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v))
                return op_error_set(err, -EBADMSG, NULL, "%s: \"%s\" contains a NUL byte.", what, key);
        s = strdup(json_object_get_string(v));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int get_required_string(json_object *o, const char *key, char **ret, OpError *err) {
        int r = get_string(o, key, "the OCI state", ret, err);
        if (r == -ENOENT)
                return op_error_set(err, -EBADMSG, NULL, "the OCI state has no \"%s\".", key);
        if (r < 0)
                return r;
        if (isempty(*ret)) {
                free(*ret);
                *ret = NULL;
                return op_error_set(err, -EBADMSG, NULL, "the OCI state has an empty \"%s\".", key);
        }
        return 0;
}

static int get_pid(json_object *o, pid_t *ret, OpError *err) {
        json_object *v;
        int64_t pid;

        if (!json_object_object_get_ex(o, "pid", &v) || !v) {
                *ret = 0;
                return 0;
        }
        if (!json_object_is_type(v, json_type_int))
                return op_error_set(err, -EBADMSG, NULL, "the OCI state: \"pid\" is not an integer.");
        pid = json_object_get_int64(v);
        if (pid == INT64_MAX && json_object_get_uint64(v) > INT64_MAX)
                pid = -1;
        if (pid < 0 || pid > OOMPROTECT_PID_MAX_LIMIT)
                return op_error_set(err, -EBADMSG, NULL, "the OCI state: pid %s is out of range (1 to %d).",
                                    json_object_get_string(v), OOMPROTECT_PID_MAX_LIMIT);
        *ret = (pid_t) pid;
        return 0;
}

void oci_annotations_done(OciAnnotations *a) {
        for (size_t i = 0; i < a->n; i++) {
                free(a->items[i].key);
                free(a->items[i].value);
        }
        free(a->items);
        *a = (OciAnnotations) {};
}

const char *oci_annotations_get(const OciAnnotations *a, const char *key) {
        for (size_t i = 0; i < a->n; i++)
                if (streq(a->items[i].key, key))
                        return a->items[i].value;
        return NULL;
}

static int annotations_add(OciAnnotations *a, const char *key, const char *value) {
        OciAnnotation *items = realloc(a->items, (a->n + 1) * sizeof(OciAnnotation));
        char *k, *v;

        if (!items)
                return -ENOMEM;
        a->items = items;
        k = strdup(key);
        v = strdup(value);
        if (!k || !v) {
                free(k);
                free(v);
                return -ENOMEM;
        }
        a->items[a->n++] = (OciAnnotation) { .key = k, .value = v };
        return 0;
}

/* o's "annotations" member, if any: an object of strings; only ours are kept. */
static int parse_annotations(json_object *o, const char *what, OciAnnotations *ret, OpError *err) {
        OciAnnotations a = {};
        json_object *v;
        int r = 0;

        if (!json_object_object_get_ex(o, "annotations", &v) || !v) {
                *ret = a;
                return 0;
        }
        if (!json_object_is_type(v, json_type_object))
                return op_error_set(err, -EBADMSG, NULL, "%s: \"annotations\" is not an object.", what);
        json_object_object_foreach(v, key, value) {
                if (!value || !json_object_is_type(value, json_type_string)) {
                        r = op_error_set(err, -EBADMSG, NULL, "%s: annotation \"%s\" is not a string.", what, key);
                        break;
                }
                if (!strneq(key, OCI_ANNOTATION_PREFIX, strlen(OCI_ANNOTATION_PREFIX)))
                        continue;
                if (strlen(json_object_get_string(value)) != (size_t) json_object_get_string_len(value)) {
                        r = op_error_set(err, -EBADMSG, NULL, "%s: annotation %s contains a NUL byte.", what, key);
                        break;
                }
                r = annotations_add(&a, key, json_object_get_string(value));
                if (r < 0)
                        break;
        }
        if (r < 0) {
                oci_annotations_done(&a);
                return r;
        }
        *ret = a;
        return 0;
}

static int check_id(const char *id, OpError *err) {
        if (strlen(id) > OCI_ID_MAX)
                return op_error_set(err, -EBADMSG, NULL, "the OCI state: the container id is longer than %d bytes.",
                                    OCI_ID_MAX);
        for (const char *c = id; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        return op_error_set(err, -EBADMSG, NULL,
                                            "the OCI state: the container id contains a control character.");
        return 0;
}

void oci_state_done(OciState *s) {
        free(s->oci_version);
        free(s->id);
        free(s->status);
        free(s->bundle);
        oci_annotations_done(&s->annotations);
        *s = (OciState) {};
}

static int parse_state_fields(json_object *o, OciState *s, OpError *err) {
        int r;

        r = get_required_string(o, "ociVersion", &s->oci_version, err);
        if (r < 0)
                return r;
        r = get_required_string(o, "id", &s->id, err);
        if (r < 0)
                return r;
        r = check_id(s->id, err);
        if (r < 0)
                return r;
        r = get_required_string(o, "status", &s->status, err);
        if (r < 0)
                return r;
        r = get_pid(o, &s->pid, err);
        if (r < 0)
                return r;
        r = get_string(o, "bundle", "the OCI state", &s->bundle, err);
        if (r < 0 && r != -ENOENT)
                return r;
        if (s->bundle && s->bundle[0] != '/')
                return op_error_set(err, -EBADMSG, NULL, "the OCI state: bundle \"%s\" is not an absolute path.",
                                    s->bundle);
        return parse_annotations(o, "the OCI state", &s->annotations, err);
}

int oci_state_parse(const char *text, OciState *ret, OpError *err) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        OciState s = {};
        int r;

        r = parse_object(text, "the OCI state", &o, err);
        if (r < 0)
                return r;
        r = parse_state_fields(o, &s, err);
        if (r < 0) {
                oci_state_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

int oci_config_parse_annotations(const char *text, OciAnnotations *ret, OpError *err) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        int r;

        r = parse_object(text, "config.json", &o, err);
        if (r < 0)
                return r;
        return parse_annotations(o, "config.json", ret, err);
}

int oci_annotations_merge(OciAnnotations *into, const OciAnnotations *from) {
        for (size_t i = 0; i < from->n; i++) {
                if (oci_annotations_get(into, from->items[i].key))
                        continue;
                int r = annotations_add(into, from->items[i].key, from->items[i].value);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int settings_apply(OciSettings *s, const OciAnnotation *a, uint64_t total_ram, OpError *err) {
        int r;

        if (streq(a->key, OCI_ANNOTATION_PROTECT))
                return 0;
        if (streq(a->key, OCI_ANNOTATION_MEMORY_MIN)) {
                r = parse_size(a->value, total_ram, &s->memory_min);
                if (r < 0)
                        return op_error_set(err, -EINVAL, NULL,
                                            "annotation %s=\"%s\" is not a size (like 256M, 1G or 5%%).", a->key,
                                            a->value);
                s->has_memory_min = true;
                return 0;
        }
        if (streq(a->key, OCI_ANNOTATION_OOM_SCORE_ADJ)) {
                r = parse_int_range(a->value, -1000, 1000, &s->adj);
                if (r < 0)
                        return op_error_set(err, -EINVAL, NULL,
                                            "annotation %s=\"%s\" is not an integer from -1000 to 1000.", a->key,
                                            a->value);
                s->has_adj = true;
                return 0;
        }
        return op_error_set(err, -EINVAL, NULL,
                            "unknown annotation %s: only " OCI_ANNOTATION_PROTECT ", " OCI_ANNOTATION_MEMORY_MIN
                            " and " OCI_ANNOTATION_OOM_SCORE_ADJ " are known.",
                            a->key);
}

int oci_settings_from_annotations(const OciAnnotations *a, uint64_t total_ram, OciSettings *ret, OpError *err) {
        const char *protect = oci_annotations_get(a, OCI_ANNOTATION_PROTECT);
        OciSettings s = {};
        int r;

        if (protect) {
                r = parse_boolean(protect);
                if (r < 0)
                        return op_error_set(err, -EINVAL, NULL,
                                            "annotation " OCI_ANNOTATION_PROTECT "=\"%s\" is not true or false.",
                                            protect);
                s.protect = r;
        }
        for (size_t i = 0; s.protect && i < a->n; i++) {
                r = settings_apply(&s, &a->items[i], total_ram, err);
                if (r < 0)
                        return r;
        }
        if (!s.protect)
                s = (OciSettings) {};
        *ret = s;
        return 0;
}
