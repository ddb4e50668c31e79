/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cgroup.h"
#include "config.h"
#include "fileio.h"
#include "macro.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "state.h"

/* A state file this large is not ours: refuse it before json-c multiplies it in memory. */
#define STATE_FILE_MAX (64U * 1024U * 1024U)

#define COMM_SIZE sizeof(((Protection *) NULL)->comm)

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

/*
 * The persisted fields of Protection and ProtectionMember, one table each:
 * serializing and parsing walk the same table, so a field cannot be written
 * and then forgotten on load (or the other way round). "members" is handled
 * apart, it is an array of structs.
 */
typedef enum FieldType {
        FIELD_PID,    /* pid_t, 1..PID_MAX_LIMIT */
        FIELD_UID,    /* uid_t, 0..UINT32_MAX */
        FIELD_ADJ,    /* int, OOM_SCORE_ADJ_MIN..MAX */
        FIELD_U64,    /* uint64_t, the whole range (written unsigned, never negative) */
        FIELD_BOOL,   /* bool */
        FIELD_STRING, /* char *, NULL as JSON null */
        FIELD_COMM,   /* char[16], truncated to 15 bytes on load */
        FIELD_KIND,   /* ProtectionKind, by name */
        FIELD_STATE,  /* ProtectionState, by name */
        FIELD_XATTR,  /* XattrValue: false when absent, its bytes in hex when present, no key when not recorded */
} FieldType;

typedef struct Field {
        const char *key;
        FieldType type;
        size_t offset;
        bool required;
} Field;

static const Field protection_fields[] = {
        { "pid", FIELD_PID, offsetof(Protection, pid), true },
        { "starttime", FIELD_U64, offsetof(Protection, starttime), true },
        { "comm", FIELD_COMM, offsetof(Protection, comm), false },
        { "uid", FIELD_UID, offsetof(Protection, uid), false },
        { "original_cgroup", FIELD_STRING, offsetof(Protection, original_cgroup), false },
        { "scope_cgroup", FIELD_STRING, offsetof(Protection, scope_cgroup), false },
        { "original_unit", FIELD_STRING, offsetof(Protection, original_unit), false },
        { "kind", FIELD_KIND, offsetof(Protection, kind), false },     /* version 1: moved */
        { "state", FIELD_STATE, offsetof(Protection, state), false },  /* version 1: active */
        { "original_adj", FIELD_ADJ, offsetof(Protection, original_adj), false },
        { "applied_adj", FIELD_ADJ, offsetof(Protection, applied_adj), false },
        { "memory_min", FIELD_U64, offsetof(Protection, memory_min), false },
        { "memory_low", FIELD_U64, offsetof(Protection, memory_low), false },
        { "oom_group", FIELD_BOOL, offsetof(Protection, oom_group), false },
        { "descendants", FIELD_BOOL, offsetof(Protection, descendants), false },
        { "since_usec", FIELD_U64, offsetof(Protection, since_usec), false },
        { "source", FIELD_STRING, offsetof(Protection, source), false },
        { "tag", FIELD_STRING, offsetof(Protection, tag), false },
};

static const Field member_fields[] = {
        { "pid", FIELD_PID, offsetof(ProtectionMember, pid), true },
        { "starttime", FIELD_U64, offsetof(ProtectionMember, starttime), true },
        { "original_cgroup", FIELD_STRING, offsetof(ProtectionMember, original_cgroup), false },
        { "original_adj", FIELD_ADJ, offsetof(ProtectionMember, original_adj), false },
};

/* ---- serializing ---- */

/* Takes ownership of v (NULL is JSON null); keys are the tables' string literals. */
static const Field hold_fields[] = {
        { "cgroup", FIELD_STRING, offsetof(CgroupHold, cgroup), true },
        { "unit", FIELD_STRING, offsetof(CgroupHold, unit), false },
        { "original_min", FIELD_U64, offsetof(CgroupHold, original_min), true },
        { "original_low", FIELD_U64, offsetof(CgroupHold, original_low), true },
        /* -1 unknown, else a ManagedOOMPreference: none 0, avoid 1, omit 2 */
        { "original_oomd_preference", FIELD_ADJ, offsetof(CgroupHold, original_preference), false },
        /* facebook oomd's trusted.oomd_avoid before our mark */
        { "original_oomd_avoid", FIELD_XATTR, offsetof(CgroupHold, original_avoid), false },
};

static int json_add(json_object *o, const char *key, json_object *v) {
        if (json_object_object_add_ex(o, key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static json_object *xattr_to_json(const XattrValue *x) {
        static const char digits[] = "0123456789abcdef";
        _cleanup_free_ char *hex = NULL;

        if (x->state == 0)
                return json_object_new_boolean(false);
        hex = malloc(x->size * 2 + 1);
        if (!hex)
                return NULL;
        for (size_t i = 0; i < x->size; i++) {
                hex[2 * i] = digits[(uint8_t) x->value[i] >> 4];
                hex[2 * i + 1] = digits[(uint8_t) x->value[i] & 0xf];
        }
        hex[x->size * 2] = '\0';
        return json_object_new_string(hex);
}

/* 1 (and *ret untouched) for a field that is not written: an XattrValue not recorded. */
static int field_to_json(const Field *f, const void *base, json_object **ret) {
        const void *p = (const uint8_t *) base + f->offset;
        json_object *v;

        switch (f->type) {
        case FIELD_PID:
                v = json_object_new_int64(*(const pid_t *) p);
                break;
        case FIELD_UID:
                v = json_object_new_int64(*(const uid_t *) p);
                break;
        case FIELD_ADJ:
                v = json_object_new_int64(*(const int *) p);
                break;
        case FIELD_U64:
                v = json_object_new_uint64(*(const uint64_t *) p);
                break;
        case FIELD_BOOL:
                v = json_object_new_boolean(*(const bool *) p);
                break;
        case FIELD_STRING:
                if (!*(char *const *) p) {
                        *ret = NULL;
                        return 0;
                }
                v = json_object_new_string(*(char *const *) p);
                break;
        case FIELD_COMM:
                /* Do not trust the NUL: at most the array's size. */
                v = json_object_new_string_len(p, (int) strnlen(p, COMM_SIZE));
                break;
        case FIELD_KIND:
                v = json_object_new_string(strna(protection_kind_to_string(*(const ProtectionKind *) p)));
                break;
        case FIELD_STATE:
                v = json_object_new_string(strna(protection_state_to_string(*(const ProtectionState *) p)));
                break;
        case FIELD_XATTR:
                if (((const XattrValue *) p)->state < 0)
                        return 1;
                v = xattr_to_json(p);
                break;
        default:
                return -EINVAL;
        }
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 0;
}

static int fields_to_json(const Field *fields, size_t n, const void *base, json_object *o) {
        int r;

        for (size_t i = 0; i < n; i++) {
                json_object *v;

                r = field_to_json(&fields[i], base, &v);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                r = json_add(o, fields[i].key, v);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int protection_to_json(const Protection *p, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL, *members = NULL;
        int r;

        o = json_object_new_object();
        members = json_object_new_array_ext((int) MIN(p->n_members, (size_t) INT_MAX));
        if (!o || !members)
                return -ENOMEM;
        r = fields_to_json(protection_fields, ELEMENTSOF(protection_fields), p, o);
        if (r < 0)
                return r;

        for (size_t i = 0; i < p->n_members; i++) {
                _cleanup_(json_object_putp) json_object *m = json_object_new_object();

                if (!m)
                        return -ENOMEM;
                r = fields_to_json(member_fields, ELEMENTSOF(member_fields), &p->members[i], m);
                if (r < 0)
                        return r;
                if (json_object_array_add(members, m) < 0)
                        return -ENOMEM;
                TAKE_PTR(m);
        }
        r = json_add(o, "members", TAKE_PTR(members));
        if (r < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

static int holds_to_json(const HoldTable *holds, json_object *top) {
        _cleanup_(json_object_putp) json_object *array = json_object_new_array();
        int r;

        if (!array)
                return -ENOMEM;
        for (size_t i = 0; holds && i < holds->n; i++) {
                if (holds->items[i].released)
                        continue; /* its original is back: nothing to put back after a crash */
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();

                if (!o)
                        return -ENOMEM;
                r = fields_to_json(hold_fields, ELEMENTSOF(hold_fields), &holds->items[i], o);
                if (r < 0)
                        return r;
                if (json_object_array_add(array, o) < 0)
                        return -ENOMEM;
                TAKE_PTR(o);
        }
        return json_add(top, "holds", TAKE_PTR(array));
}

int state_serialize(Protection *const *records, size_t n, char **ret) {
        return state_serialize_full(records, n, NULL, ret);
}

int state_serialize_full(Protection *const *records, size_t n, const HoldTable *holds, char **ret) {
        _cleanup_(json_object_putp) json_object *top = NULL, *array = NULL;
        const char *text;
        size_t len;
        char *buf;
        int r;

        top = json_object_new_object();
        array = json_object_new_array_ext((int) MIN(n, (size_t) INT_MAX));
        if (!top || !array)
                return -ENOMEM;
        r = json_add(top, "version", json_object_new_int(STATE_FORMAT_VERSION));
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                json_object *o;

                r = protection_to_json(records[i], &o);
                if (r < 0)
                        return r;
                if (json_object_array_add(array, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        r = json_add(top, "protections", TAKE_PTR(array));
        if (r < 0)
                return r;
        r = holds_to_json(holds, top);
        if (r < 0)
                return r;

        /* Pretty: people read this file when something went wrong. Paths are written without "\/". */
        text = json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        len = strlen(text);
        buf = malloc(len + 2);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, text, len);
        buf[len] = '\n';
        buf[len + 1] = '\0';
        *ret = buf;
        return 0;
}

/* ---- parsing ---- */

static int json_get_int64(json_object *v, int64_t min, int64_t max, int64_t *ret) {
        int64_t i;

        /* json_type_int only: 1.0, "1", true and null are not integers. */
        if (!json_object_is_type(v, json_type_int))
                return -EBADMSG;
        i = json_object_get_int64(v); /* clamps beyond the int64 range, which then fails the range check */
        if (i < min || i > max)
                return -EBADMSG;
        *ret = i;
        return 0;
}

static int json_get_uint64(json_object *v, uint64_t *ret) {
        if (!json_object_is_type(v, json_type_int))
                return -EBADMSG;
        if (json_object_get_int64(v) < 0)
                return -EBADMSG;
        *ret = json_object_get_uint64(v);
        return 0;
}

/* A string without embedded NUL: a path cut short at a "\u0000" would point somewhere else. */
static int json_get_string(json_object *v, const char **ret) {
        const char *s;

        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        s = json_object_get_string(v);
        if (strlen(s) != (size_t) json_object_get_string_len(v))
                return -EBADMSG;
        *ret = s;
        return 0;
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

static int xattr_from_json(json_object *v, XattrValue *ret) {
        const char *s;
        size_t len;
        char *value;

        if (json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v)) {
                xattr_value_done(ret);
                *ret = (XattrValue) { .state = 0 };
                return 0;
        }
        if (json_get_string(v, &s) < 0)
                return -EBADMSG;
        len = strlen(s);
        if (len % 2 != 0 || len / 2 > XATTR_VALUE_MAX)
                return -EBADMSG;
        value = malloc(len / 2 + 1);
        if (!value)
                return -ENOMEM;
        for (size_t i = 0; i < len / 2; i++) {
                int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
                if (hi < 0 || lo < 0) {
                        free(value);
                        return -EBADMSG;
                }
                value[i] = (char) (hi << 4 | lo);
        }
        value[len / 2] = '\0';
        xattr_value_done(ret);
        *ret = (XattrValue) { .state = 1, .value = value, .size = len / 2 };
        return 0;
}

static int field_from_json(const Field *f, json_object *v, void *base) {
        void *p = (uint8_t *) base + f->offset;
        const char *s;
        int64_t i;
        int r;

        switch (f->type) {
        case FIELD_PID:
                r = json_get_int64(v, 1, OOMPROTECT_PID_MAX_LIMIT, &i);
                if (r >= 0)
                        *(pid_t *) p = (pid_t) i;
                return r;
        case FIELD_UID:
                r = json_get_int64(v, 0, UINT32_MAX, &i);
                if (r >= 0)
                        *(uid_t *) p = (uid_t) i;
                return r;
        case FIELD_ADJ:
                r = json_get_int64(v, OOMPROTECT_OOM_SCORE_ADJ_MIN, OOMPROTECT_OOM_SCORE_ADJ_MAX, &i);
                if (r >= 0)
                        *(int *) p = (int) i;
                return r;
        case FIELD_U64:
                return json_get_uint64(v, p);
        case FIELD_BOOL:
                if (!json_object_is_type(v, json_type_boolean))
                        return -EBADMSG;
                *(bool *) p = json_object_get_boolean(v);
                return 0;
        case FIELD_STRING:
                if (!v) /* JSON null */
                        return 0;
                r = json_get_string(v, &s);
                if (r < 0)
                        return r;
                free(*(char **) p);
                *(char **) p = strdup(s);
                return *(char **) p ? 0 : -ENOMEM;
        case FIELD_COMM: {
                char *comm = p;
                size_t len;

                r = json_get_string(v, &s);
                if (r < 0)
                        return r;
                len = MIN(strlen(s), COMM_SIZE - 1);
                memcpy(comm, s, len);
                comm[len] = '\0';
                return 0;
        }
        case FIELD_KIND: {
                ProtectionKind k;

                r = json_get_string(v, &s);
                if (r < 0)
                        return r;
                k = protection_kind_from_string(s);
                if (k == _PROTECTION_KIND_MAX)
                        return -EBADMSG;
                *(ProtectionKind *) p = k;
                return 0;
        }
        case FIELD_STATE: {
                ProtectionState st;

                r = json_get_string(v, &s);
                if (r < 0)
                        return r;
                st = protection_state_from_string(s);
                if (st == _PROTECTION_STATE_MAX)
                        return -EBADMSG;
                *(ProtectionState *) p = st;
                return 0;
        }
        case FIELD_XATTR:
                return xattr_from_json(v, p);
        default:
                return -EINVAL;
        }
}

/* -EBADMSG for a missing required key or a known key of the wrong type or range; unknown keys are ignored. */
static int fields_from_json(const Field *fields, size_t n, json_object *o, void *base) {
        int r;

        for (size_t i = 0; i < n; i++) {
                json_object *v;

                if (!json_object_object_get_ex(o, fields[i].key, &v)) {
                        if (fields[i].required)
                                return -EBADMSG;
                        continue;
                }
                r = field_from_json(&fields[i], v, base);
                if (r < 0)
                        return r;
        }
        return 0;
}

/*
 * All or nothing: a record whose members cannot all be read is dropped whole
 * (and counted), rather than loaded with members that would then never be
 * restored.
 */
static int members_from_json(json_object *o, Protection *p) {
        json_object *array;
        size_t n;
        int r;

        if (!json_object_object_get_ex(o, "members", &array))
                return 0;
        if (!json_object_is_type(array, json_type_array))
                return -EBADMSG;
        n = json_object_array_length(array);
        if (n == 0)
                return 0;

        p->members = calloc(n, sizeof(ProtectionMember));
        if (!p->members)
                return -ENOMEM;
        p->n_members = n; /* zeroed: protection_free() copes with a half-filled array */

        for (size_t i = 0; i < n; i++) {
                json_object *m = json_object_array_get_idx(array, i);

                if (!json_object_is_type(m, json_type_object))
                        return -EBADMSG;
                r = fields_from_json(member_fields, ELEMENTSOF(member_fields), m, &p->members[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* -EBADMSG: skip this record; -ENOMEM: give up. */
static int protection_from_json(json_object *o, Protection **ret) {
        _cleanup_(protection_freep) Protection *p = NULL;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        p = protection_new();
        if (!p)
                return -ENOMEM;
        r = fields_from_json(protection_fields, ELEMENTSOF(protection_fields), o, p);
        if (r < 0)
                return r;
        r = members_from_json(o, p);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(p);
        return 0;
}

static int bad_message(const char **ret_reason, const char *reason) {
        if (ret_reason)
                *ret_reason = reason;
        return -EBADMSG;
}

/* After a syntax error: was there a complete JSON value, followed by something else? */
static bool json_has_trailing_data(const char *text, size_t len) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;

        tok = json_tokener_new();
        if (!tok)
                return false;
        /* Not strict and without the NUL: the tokener stops after the first complete value. */
        o = json_tokener_parse_ex(tok, text, (int) len);
        return json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) < len;
}

/* The whole text must be one JSON value: trailing bytes after it are corruption too. */
static int json_parse_text(const char *text, json_object **ret, const char **ret_reason) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        enum json_tokener_error err;
        size_t len = strlen(text);

        if (text[strspn(text, " \t\r\n")] == '\0')
                return bad_message(ret_reason, "empty");
        if (len >= INT_MAX)
                return bad_message(ret_reason, "too large");

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        /* Including the terminating NUL, so that the tokener knows the input ends there. */
        o = json_tokener_parse_ex(tok, text, (int) len + 1);
        err = json_tokener_get_error(tok);
        if (err == json_tokener_continue || err == json_tokener_error_parse_eof)
                return bad_message(ret_reason, "truncated JSON");
        if (err != json_tokener_success)
                return bad_message(ret_reason, json_has_trailing_data(text, len) ? "trailing data after the JSON value"
                                                                                 : "not valid JSON");
        if (json_tokener_get_parse_end(tok) < len)
                return bad_message(ret_reason, "trailing data after the JSON value");

        *ret = TAKE_PTR(o); /* NULL for the JSON text "null" */
        return 0;
}

/* -EBADMSG with a reason for a file that is not a state file we can read. */
static int state_parse_top(json_object *top, json_object **ret_protections, const char **ret_reason) {
        json_object *v, *protections = NULL;
        int64_t version;

        if (!json_object_is_type(top, json_type_object))
                return bad_message(ret_reason, "not a JSON object");
        if (!json_object_object_get_ex(top, "version", &v) || !json_object_is_type(v, json_type_int))
                return bad_message(ret_reason, "no integer \"version\"");
        version = json_object_get_int64(v);
        if (version > STATE_FORMAT_VERSION)
                return bad_message(ret_reason, "written by a newer oomprotectd");
        if (version < 1)
                return bad_message(ret_reason, "unsupported version");
        if (json_object_object_get_ex(top, "protections", &protections) &&
            !json_object_is_type(protections, json_type_array))
                return bad_message(ret_reason, "\"protections\" is not an array");

        *ret_protections = protections; /* NULL when absent: no records */
        return 0;
}

typedef struct ProtectionArray {
        Protection **items;
        size_t n;
} ProtectionArray;

static void protection_array_done(ProtectionArray *a) {
        protection_array_free(a->items, a->n);
}

/* Pids seen so far, one bit each: duplicates are found in O(1) whatever the file holds. */
static bool pid_seen_test_and_set(uint64_t *seen, pid_t pid) {
        uint64_t bit = UINT64_C(1) << ((unsigned) pid % 64);
        bool was = seen[(unsigned) pid / 64] & bit;

        seen[(unsigned) pid / 64] |= bit;
        return was;
}

static int protections_from_json(json_object *array, ProtectionArray *out, size_t *skipped) {
        _cleanup_free_ uint64_t *seen = NULL;
        size_t n = json_object_array_length(array);

        if (n == 0)
                return 0;
        out->items = calloc(n, sizeof(Protection *));
        seen = calloc(OOMPROTECT_PID_MAX_LIMIT / 64 + 1, sizeof(uint64_t));
        if (!out->items || !seen)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                Protection *p;
                int r;

                r = protection_from_json(json_object_array_get_idx(array, i), &p);
                if (r == -EBADMSG) {
                        (*skipped)++;
                        continue;
                }
                if (r < 0)
                        return r;
                if (pid_seen_test_and_set(seen, p->pid)) { /* the first one wins */
                        protection_free(p);
                        (*skipped)++;
                        continue;
                }
                out->items[out->n++] = p;
        }
        return 0;
}

/* A bad hold is skipped and counted: the cgroup keeps its raised value, which is safe, never too little. */
static int holds_from_json(json_object *top, HoldTable *ret, size_t *skipped) {
        json_object *array;

        if (!json_object_object_get_ex(top, "holds", &array) || !json_object_is_type(array, json_type_array))
                return 0;
        for (size_t i = 0; i < json_object_array_length(array); i++) {
                json_object *o = json_object_array_get_idx(array, i);
                CgroupHold h = { .original_preference = -1, .original_avoid = { .state = -1 } };
                int r;

                r = json_object_is_type(o, json_type_object)
                            ? fields_from_json(hold_fields, ELEMENTSOF(hold_fields), o, &h)
                            : -EBADMSG;
                if (r >= 0 && !cgroup_path_is_clean(h.cgroup))
                        r = -EBADMSG;
                if (r >= 0 && (h.original_preference < -1 || h.original_preference >= _MANAGED_OOM_PREFERENCE_MAX))
                        r = -EBADMSG;
                if (r >= 0)
                        r = hold_table_add(ret, h.cgroup, h.unit, h.original_min, h.original_low);
                if (r >= 0) {
                        ret->items[ret->n - 1].original_preference = h.original_preference;
                        ret->items[ret->n - 1].original_avoid = h.original_avoid;
                        h.original_avoid = (XattrValue) { .state = -1 };
                }
                free(h.cgroup);
                free(h.unit);
                xattr_value_done(&h.original_avoid);
                if (r == -EBADMSG || r == -EEXIST) {
                        (*skipped)++;
                        continue;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int state_parse(const char *text, Protection ***ret, size_t *ret_n, size_t *ret_skipped, const char **ret_reason) {
        return state_parse_full(text, ret, ret_n, NULL, ret_skipped, ret_reason);
}

int state_parse_full(const char *text, Protection ***ret, size_t *ret_n, HoldTable *ret_holds, size_t *ret_skipped,
                     const char **ret_reason) {
        _cleanup_(hold_table_done) HoldTable holds = {};
        _cleanup_(json_object_putp) json_object *top = NULL;
        _cleanup_(protection_array_done) ProtectionArray a = {};
        json_object *protections = NULL;
        size_t skipped = 0;
        int r;

        r = json_parse_text(text, &top, ret_reason);
        if (r < 0)
                return r;
        r = state_parse_top(top, &protections, ret_reason);
        if (r < 0)
                return r;
        if (protections) {
                r = protections_from_json(protections, &a, &skipped);
                if (r < 0)
                        return r;
        }
        if (ret_holds) {
                r = holds_from_json(top, &holds, &skipped);
                if (r < 0)
                        return r;
        }

        if (a.n == 0) {
                free(a.items);
                a.items = NULL;
        }
        *ret_n = a.n;
        *ret = TAKE_PTR(a.items);
        a.n = 0;
        if (ret_skipped)
                *ret_skipped = skipped;
        if (ret_holds) {
                *ret_holds = holds;
                holds = (HoldTable) {};
        }
        return 0;
}

/* ---- the file ---- */

int state_save(int dirfd, Protection *const *records, size_t n) {
        return state_save_full(dirfd, records, n, NULL);
}

int state_save_full(int dirfd, Protection *const *records, size_t n, const HoldTable *holds) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = state_serialize_full(records, n, holds, &text);
        if (r < 0)
                return r;
        return write_file_atomic_at(dirfd, OOMPROTECT_STATE_FILE, text, strlen(text), 0600);
}

/* Like renameat(), but an existing target is an error (-EEXIST), never replaced. */
static int rename_noreplace_at(int dirfd, const char *from, const char *to) {
        if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) >= 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                return negative_errno();

        /* The filesystem cannot do RENAME_NOREPLACE; a hard link refuses an existing name just the same. */
        if (linkat(dirfd, from, dirfd, to, 0) < 0)
                return negative_errno();
        if (unlinkat(dirfd, from, 0) < 0)
                return negative_errno(); /* the bytes are safe under both names */
        return 0;
}

/* Renames state.json to state.json.corrupt-<usec>: kept for a person to look at, never overwritten. */
static int state_move_aside(int dirfd, char **ret) {
        struct timespec ts;
        uint64_t usec;
        int r;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return negative_errno();
        usec = (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000;

        /* Another file of the same microsecond (a clock set back): take the next free one. */
        for (unsigned attempt = 0; attempt < 64; attempt++) {
                _cleanup_free_ char *name = NULL;

                if (asprintf(&name, OOMPROTECT_STATE_FILE ".corrupt-%" PRIu64, usec + attempt) < 0)
                        return -ENOMEM;
                r = rename_noreplace_at(dirfd, OOMPROTECT_STATE_FILE, name);
                if (r == -EEXIST)
                        continue;
                if (r < 0)
                        return r;
                (void) fsync(dirfd);
                *ret = TAKE_PTR(name);
                return 0;
        }
        return -EEXIST;
}

/* Reads and parses state.json; a corrupt file is reported through *ret_reason, not as an error. */
static int state_read(int dirfd, Protection ***ret, size_t *ret_n, HoldTable *ret_holds, size_t *ret_skipped,
                      const char **ret_reason) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        r = read_regular_file_at(dirfd, OOMPROTECT_STATE_FILE, STATE_FILE_MAX, &text, &len);
        if (r == -ELOOP || r == -EBADFD) {
                /* Planted, not written by us: never followed, never read (a FIFO would block the start). */
                *ret_reason = r == -ELOOP ? "a symbolic link" : "not a regular file";
                return 0;
        }
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_n = *ret_skipped = 0;
                *ret_reason = NULL;
                return 0;
        }
        if (r == -EFBIG) {
                *ret_reason = "larger than 64 MiB";
                return 0;
        }
        if (r < 0)
                return r;
        if (memchr(text, '\0', len)) {
                *ret_reason = "contains a NUL byte";
                return 0;
        }

        r = state_parse_full(text, ret, ret_n, ret_holds, ret_skipped, ret_reason);
        if (r == -EBADMSG)
                return 0;
        if (r < 0)
                return r;
        *ret_reason = NULL;
        return 0;
}

int state_load(int dirfd, Protection ***ret, size_t *ret_n, size_t *ret_skipped, char **ret_moved_to,
               const char **ret_reason) {
        return state_load_full(dirfd, ret, ret_n, NULL, ret_skipped, ret_moved_to, ret_reason);
}

int state_load_full(int dirfd, Protection ***ret, size_t *ret_n, HoldTable *ret_holds, size_t *ret_skipped,
                    char **ret_moved_to, const char **ret_reason) {
        _cleanup_free_ char *moved_to = NULL;
        Protection **records = NULL;
        const char *reason = NULL;
        size_t n = 0, skipped = 0;
        int r;

        r = state_read(dirfd, &records, &n, ret_holds, &skipped, &reason);
        if (r < 0)
                return r;
        if (reason) {
                /* Corrupt: nothing was loaded. Keep the bytes; the caller logs where they went. */
                r = state_move_aside(dirfd, &moved_to);
                if (r < 0)
                        return r;
        }

        *ret = records;
        *ret_n = n;
        if (ret_skipped)
                *ret_skipped = skipped;
        if (ret_moved_to)
                *ret_moved_to = TAKE_PTR(moved_to);
        if (ret_reason)
                *ret_reason = reason;
        return 0;
}
