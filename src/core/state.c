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
#include "fault.h"
#include "fileio.h"
#include "macro.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "state.h"

/* A state file this large is not ours: refuse it before json-c multiplies it in memory. */
#define STATE_FILE_MAX (64U * 1024U * 1024U)

/* Past this many bytes of journal (or the document's own size, if larger), the file is written whole again. */
#define STATE_JOURNAL_MIN (64U * 1024U)

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

/* ---- serializing: written here byte by byte, no json-c tree (its cost and its heap grew with N) ---- */

static const Field hold_fields[] = {
        { "cgroup", FIELD_STRING, offsetof(CgroupHold, cgroup), true },
        { "unit", FIELD_STRING, offsetof(CgroupHold, unit), false },
        { "original_min", FIELD_U64, offsetof(CgroupHold, original_min), true },
        { "original_low", FIELD_U64, offsetof(CgroupHold, original_low), true },
        /* -1 unknown, else a ManagedOOMPreference: none 0, avoid 1, omit 2 */
        { "original_oomd_preference", FIELD_ADJ, offsetof(CgroupHold, original_preference), false },
        /* facebook oomd's trusted.oomd_avoid before our mark */
        { "original_oomd_avoid", FIELD_XATTR, offsetof(CgroupHold, original_avoid), false },
        /* systemd's runtime drop-ins of the unit before our first SetUnitProperties: false, or their bytes in hex */
#define DROPIN_FIELD(key, dir, p) { key, FIELD_XATTR, offsetof(CgroupHold, original_dropins) + \
                                    ((dir) * _DROPIN_PROPERTY_MAX + (p)) * sizeof(XattrValue), false }
        DROPIN_FIELD("original_control_memory_min", 0, DROPIN_MEMORY_MIN),
        DROPIN_FIELD("original_control_memory_low", 0, DROPIN_MEMORY_LOW),
        DROPIN_FIELD("original_control_oomd_preference", 0, DROPIN_MANAGED_OOM_PREFERENCE),
        DROPIN_FIELD("original_transient_memory_min", 1, DROPIN_MEMORY_MIN),
        DROPIN_FIELD("original_transient_memory_low", 1, DROPIN_MEMORY_LOW),
        DROPIN_FIELD("original_transient_oomd_preference", 1, DROPIN_MANAGED_OOM_PREFERENCE),
#undef DROPIN_FIELD
};

/* Units protected by name (unit-protection.h), and the processes each changed. */
static const Field unit_fields[] = {
        { "unit", FIELD_STRING, offsetof(UnitProtection, unit), true },
        { "cgroup", FIELD_STRING, offsetof(UnitProtection, cgroup), true },
        { "state", FIELD_STATE, offsetof(UnitProtection, state), false },
        { "applied_adj", FIELD_ADJ, offsetof(UnitProtection, applied_adj), false },
        { "base_adj", FIELD_ADJ, offsetof(UnitProtection, base_adj), false },
        { "has_base_adj", FIELD_BOOL, offsetof(UnitProtection, has_base_adj), false },
        { "memory_min", FIELD_U64, offsetof(UnitProtection, memory_min), false },
        { "memory_low", FIELD_U64, offsetof(UnitProtection, memory_low), false },
        { "since_usec", FIELD_U64, offsetof(UnitProtection, since_usec), false },
        { "source", FIELD_STRING, offsetof(UnitProtection, source), false },
        { "tag", FIELD_STRING, offsetof(UnitProtection, tag), false },
};

static const Field unit_member_fields[] = {
        { "pid", FIELD_PID, offsetof(UnitMember, pid), true },
        { "starttime", FIELD_U64, offsetof(UnitMember, starttime), true },
        { "original_adj", FIELD_ADJ, offsetof(UnitMember, original_adj), false },
};

/* A growing text; after a failed allocation every append is a no-op and failed stays set. */
typedef struct TextBuf {
        char *data;
        size_t len, alloc;
        bool failed;
} TextBuf;

static void text_buf_done(TextBuf *b) {
        free(b->data);
        *b = (TextBuf) {};
}

static bool text_reserve(TextBuf *b, size_t more) {
        size_t want;
        char *d;

        if (b->failed)
                return false;
        if (b->len + more < b->alloc)
                return true;
        want = MAX(MAX(b->alloc * 2, b->len + more + 1), (size_t) 256);
        d = realloc(b->data, want);
        if (!d) {
                b->failed = true;
                return false;
        }
        b->data = d;
        b->alloc = want;
        return true;
}

static void text_add(TextBuf *b, const char *s, size_t n) {
        if (!text_reserve(b, n))
                return;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
}

static void text_adds(TextBuf *b, const char *s) {
        text_add(b, s, strlen(s));
}

static void text_add_u64(TextBuf *b, uint64_t v) {
        char t[20];
        size_t i = sizeof(t);

        do
                t[--i] = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        text_add(b, t + i, sizeof(t) - i);
}

static void text_add_i64(TextBuf *b, int64_t v) {
        if (v < 0) {
                text_add(b, "-", 1);
                text_add_u64(b, -(uint64_t) v);
        } else
                text_add_u64(b, (uint64_t) v);
}

static bool json_needs_escape(unsigned char c) {
        return c == '"' || c == '\\' || c < 0x20 || c == 0x7f;
}

/* A JSON string of n bytes: quotes, backslashes and control bytes escaped, "/" and bytes >= 0x80 as they are. */
static void text_add_string(TextBuf *b, const char *s, size_t n) {
        static const char hex[] = "0123456789abcdef";
        size_t i = 0;

        text_add(b, "\"", 1);
        while (i < n) {
                size_t run = i;
                unsigned char c;

                while (run < n && !json_needs_escape((unsigned char) s[run]))
                        run++;
                text_add(b, s + i, run - i);
                if (run == n)
                        break;
                c = (unsigned char) s[run];
                if (c == '"' || c == '\\')
                        text_add(b, (const char[]) { '\\', (char) c }, 2);
                else
                        text_add(b, (const char[]) { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] }, 6);
                i = run + 1;
        }
        text_add(b, "\"", 1);
}

/* An xattr's recorded value: false for absent, else its bytes in hex. */
static void text_add_xattr(TextBuf *b, const XattrValue *x) {
        static const char digits[] = "0123456789abcdef";

        if (x->state == 0) {
                text_adds(b, "false");
                return;
        }
        text_add(b, "\"", 1);
        for (size_t i = 0; i < x->size; i++)
                text_add(b, (const char[]) { digits[(uint8_t) x->value[i] >> 4], digits[(uint8_t) x->value[i] & 0xf] }, 2);
        text_add(b, "\"", 1);
}

static void field_write(TextBuf *b, const Field *f, const void *base) {
        const void *p = (const uint8_t *) base + f->offset;
        const char *s;

        text_add(b, "\"", 1);
        text_adds(b, f->key);
        text_add(b, "\":", 2);
        switch (f->type) {
        case FIELD_PID:
                text_add_i64(b, *(const pid_t *) p);
                break;
        case FIELD_UID:
                text_add_u64(b, *(const uid_t *) p);
                break;
        case FIELD_ADJ:
                text_add_i64(b, *(const int *) p);
                break;
        case FIELD_U64:
                text_add_u64(b, *(const uint64_t *) p);
                break;
        case FIELD_BOOL:
                text_adds(b, *(const bool *) p ? "true" : "false");
                break;
        case FIELD_STRING:
                s = *(char *const *) p;
                if (s)
                        text_add_string(b, s, strlen(s));
                else
                        text_adds(b, "null");
                break;
        case FIELD_COMM:
                /* Do not trust the NUL: at most the array's size. */
                text_add_string(b, p, strnlen(p, COMM_SIZE));
                break;
        case FIELD_KIND:
                s = strna(protection_kind_to_string(*(const ProtectionKind *) p));
                text_add_string(b, s, strlen(s));
                break;
        case FIELD_STATE:
                s = strna(protection_state_to_string(*(const ProtectionState *) p));
                text_add_string(b, s, strlen(s));
                break;
        case FIELD_XATTR:
                text_add_xattr(b, p);
                break;
        }
}

static void fields_write(TextBuf *b, const Field *fields, size_t n, const void *base) {
        text_add(b, "{", 1);
        for (size_t i = 0; i < n; i++) {
                /* An XattrValue not recorded is not written. */
                if (fields[i].type == FIELD_XATTR &&
                    ((const XattrValue *) ((const uint8_t *) base + fields[i].offset))->state < 0)
                        continue;
                if (b->len > 0 && b->data[b->len - 1] != '{')
                        text_add(b, ",", 1);
                field_write(b, &fields[i], base);
        }
}

/* An object of fields and, under "members", an array of n structs of the given size, each of item_fields. */
static void record_write(TextBuf *b, const Field *fields, size_t n_fields, const void *base, const Field *item_fields,
                         size_t n_item_fields, const void *items, size_t size, size_t n) {
        fields_write(b, fields, n_fields, base);
        text_adds(b, ",\"members\":[");
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        text_add(b, ",", 1);
                fields_write(b, item_fields, n_item_fields, (const uint8_t *) items + i * size);
                text_add(b, "}", 1);
        }
        text_add(b, "]}", 2);
}

/* One record as one line's worth of JSON (no newline). */
static void protection_write(TextBuf *b, const Protection *p) {
        record_write(b, protection_fields, ELEMENTSOF(protection_fields), p, member_fields, ELEMENTSOF(member_fields),
                     p->members, sizeof(ProtectionMember), p->n_members);
}

static void hold_write(TextBuf *b, const CgroupHold *h) {
        fields_write(b, hold_fields, ELEMENTSOF(hold_fields), h);
        text_add(b, "}", 1);
}

/* A unit protected by name, one line's worth like a record. */
static void unit_write(TextBuf *b, const UnitProtection *u) {
        record_write(b, unit_fields, ELEMENTSOF(unit_fields), u, unit_member_fields, ELEMENTSOF(unit_member_fields),
                     u->members, sizeof(UnitMember), u->n_members);
}

/* The document: one record per line, so that a person can read it and a diff shows what changed. */
static int state_serialize_buf(Protection *const *records, size_t n, const HoldTable *holds, const UnitTable *units,
                               TextBuf *b) {
        bool first = true;

        text_adds(b, "{\"version\":");
        text_add_i64(b, STATE_FORMAT_VERSION);
        text_adds(b, ",\"journal\":1,\"protections\":[");
        for (size_t i = 0; i < n; i++) {
                text_adds(b, i > 0 ? ",\n" : "\n");
                protection_write(b, records[i]);
        }
        text_adds(b, "\n],\"holds\":[");
        for (size_t i = 0; holds && i < holds->n; i++) {
                if (holds->items[i].released)
                        continue; /* its original is back: nothing to put back after a crash */
                text_adds(b, first ? "\n" : ",\n");
                first = false;
                hold_write(b, &holds->items[i]);
        }
        text_adds(b, "\n]");
        if (units && units->n > 0) { /* no key at all without units: what an older daemon reads the same */
                text_adds(b, ",\"units\":[");
                for (size_t i = 0; i < units->n; i++) {
                        text_adds(b, i > 0 ? ",\n" : "\n");
                        unit_write(b, units->items[i]);
                }
                text_adds(b, "\n]");
        }
        text_adds(b, "}\n");
        return b->failed ? -ENOMEM : 0;
}

int state_serialize(Protection *const *records, size_t n, char **ret) {
        return state_serialize_full(records, n, NULL, NULL, ret);
}

int state_serialize_full(Protection *const *records, size_t n, const HoldTable *holds, const UnitTable *units,
                         char **ret) {
        TextBuf b = {};
        int r;

        r = state_serialize_buf(records, n, holds, units, &b);
        if (r < 0) {
                text_buf_done(&b);
                return r;
        }
        *ret = b.data;
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

/*
 * The document must be one JSON object; what follows it is corruption, unless
 * the document says a journal follows ("journal": 1): then *ret_rest points
 * at the journal's lines.
 */
static int json_parse_document(const char *text, json_object **ret, const char **ret_rest, const char **ret_reason) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        enum json_tokener_error err;
        size_t len = strlen(text), end;

        if (text[strspn(text, " \t\r\n")] == '\0')
                return bad_message(ret_reason, "empty");
        if (len >= INT_MAX)
                return bad_message(ret_reason, "too large");

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        /* Stops after the first complete value (and the blanks after it); the rest is looked at below. */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
        o = json_tokener_parse_ex(tok, text, (int) len + 1);
        err = json_tokener_get_error(tok);
        if (err == json_tokener_continue || err == json_tokener_error_parse_eof)
                return bad_message(ret_reason, "truncated JSON");
        if (err != json_tokener_success)
                return bad_message(ret_reason, "not valid JSON");
        end = MIN(json_tokener_get_parse_end(tok), len);
        end += strspn(text + end, " \t\r\n");

        *ret_rest = text + end; /* "" when nothing follows */
        *ret = TAKE_PTR(o);     /* NULL for the JSON text "null" */
        return 0;
}

/* -EBADMSG with a reason for a file that is not a state file we can read. */
static int state_parse_top(json_object *top, const char *rest, json_object **ret_protections,
                           const char **ret_reason) {
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
        if (*rest && !(json_object_object_get_ex(top, "journal", &v) && json_object_is_type(v, json_type_int) &&
                       json_object_get_int64(v) == 1))
                return bad_message(ret_reason, "trailing data after the JSON value");
        if (json_object_object_get_ex(top, "protections", &protections) &&
            !json_object_is_type(protections, json_type_array))
                return bad_message(ret_reason, "\"protections\" is not an array");

        *ret_protections = protections; /* NULL when absent: no records */
        return 0;
}

/* What a load builds: the records by pid (a Registry keeps them sorted), the holds, what was skipped. */
typedef struct LoadState {
        Registry records;
        HoldTable holds;
        UnitTable units;
        bool want_holds, want_units;
        size_t skipped;
} LoadState;

static void load_state_done(LoadState *l) {
        registry_done(&l->records);
        hold_table_done(&l->holds);
        unit_table_done(&l->units);
}

/* A record of the document: the first one of a pid wins. Journal lines replace (put_replace). */
static int load_put(LoadState *l, json_object *o, bool replace) {
        Protection *p = NULL;
        int r;

        r = protection_from_json(o, &p);
        if (r == -EBADMSG) {
                l->skipped++;
                return 0;
        }
        if (r < 0)
                return r;
        if (replace)
                protection_free(registry_remove(&l->records, p->pid));
        r = registry_add(&l->records, p);
        if (r == -EEXIST) {
                protection_free(p);
                l->skipped++;
                return 0;
        }
        if (r < 0)
                protection_free(p);
        return r;
}

/* A bad hold is skipped and counted: the cgroup keeps its raised value, which is safe, never too little. */
static int load_hold(LoadState *l, json_object *o, bool replace) {
        CgroupHold h = { .original_preference = -1, .original_avoid = { .state = -1 } };
        CgroupHold *old, *added;
        int r;

        if (!l->want_holds)
                return 0;
        for (size_t i = 0; i < UNIT_DROPINS; i++)
                h.original_dropins[i] = (XattrValue) { .state = -1 };
        r = json_object_is_type(o, json_type_object) ? fields_from_json(hold_fields, ELEMENTSOF(hold_fields), o, &h)
                                                     : -EBADMSG;
        if (r >= 0 && !cgroup_path_is_clean(h.cgroup))
                r = -EBADMSG;
        if (r >= 0 && (h.original_preference < -1 || h.original_preference >= _MANAGED_OOM_PREFERENCE_MAX))
                r = -EBADMSG;
        if (r >= 0 && replace && (old = hold_table_get(&l->holds, h.cgroup)))
                hold_table_remove(&l->holds, (size_t) (old - l->holds.items));
        if (r >= 0)
                r = hold_table_add(&l->holds, h.cgroup, h.unit, h.original_min, h.original_low);
        if (r >= 0) {
                added = &l->holds.items[l->holds.n - 1];
                added->original_preference = h.original_preference;
                added->original_avoid = h.original_avoid;
                added->loaded = true;
                h.original_avoid = (XattrValue) { .state = -1 };
                for (size_t i = 0; i < UNIT_DROPINS; i++) {
                        added->original_dropins[i] = h.original_dropins[i];
                        h.original_dropins[i] = (XattrValue) { .state = -1 };
                }
        }
        free(h.cgroup);
        free(h.unit);
        xattr_value_done(&h.original_avoid);
        for (size_t i = 0; i < UNIT_DROPINS; i++)
                xattr_value_done(&h.original_dropins[i]);
        if (r == -EBADMSG || r == -EEXIST) {
                l->skipped++;
                return 0;
        }
        return r;
}

/* All or nothing, as for a record's members. */
static int unit_members_from_json(json_object *o, UnitProtection *u) {
        json_object *array;

        if (!json_object_object_get_ex(o, "members", &array))
                return 0;
        if (!json_object_is_type(array, json_type_array))
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(array); i++) {
                json_object *m = json_object_array_get_idx(array, i);
                UnitMember um = {};
                int r;

                if (!json_object_is_type(m, json_type_object) ||
                    fields_from_json(unit_member_fields, ELEMENTSOF(unit_member_fields), m, &um) < 0)
                        return -EBADMSG;
                r = unit_member_add(u, um.pid, um.starttime, um.original_adj);
                if (r < 0)
                        return r;
        }
        return 0;
}

/*
 * A unit protected by name; a journal line replaces the unit's record. A bad
 * one is skipped and counted: its unit keeps what was applied, which is safe.
 */
static int load_unit(LoadState *l, json_object *o, bool replace) {
        _cleanup_(unit_protection_freep) UnitProtection *u = NULL;
        int r;

        if (!l->want_units)
                return 0;
        u = unit_protection_new();
        if (!u)
                return -ENOMEM;
        u->state = PROTECTION_ACTIVE;
        r = json_object_is_type(o, json_type_object) ? fields_from_json(unit_fields, ELEMENTSOF(unit_fields), o, u)
                                                     : -EBADMSG;
        if (r >= 0 && (!unit_name_is_protectable(u->unit) || !cgroup_path_is_clean(u->cgroup) ||
                       streq(u->cgroup, "/")))
                r = -EBADMSG;
        if (r >= 0)
                r = unit_members_from_json(o, u);
        if (r >= 0 && replace)
                unit_protection_free(unit_table_remove(&l->units, u->unit));
        if (r >= 0)
                r = unit_table_add(&l->units, u);
        if (r == -EBADMSG || r == -EEXIST || r == -ERANGE || r == -EINVAL) {
                l->skipped++;
                return 0;
        }
        if (r < 0)
                return r;
        TAKE_PTR(u);
        return 0;
}

static int load_document(LoadState *l, json_object *top, json_object *protections) {
        json_object *array;
        int r;

        for (size_t i = 0; protections && i < json_object_array_length(protections); i++) {
                r = load_put(l, json_object_array_get_idx(protections, i), false);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(top, "holds", &array) && json_object_is_type(array, json_type_array))
                for (size_t i = 0; i < json_object_array_length(array); i++) {
                        r = load_hold(l, json_object_array_get_idx(array, i), false);
                        if (r < 0)
                                return r;
                }
        if (!json_object_object_get_ex(top, "units", &array) || !json_object_is_type(array, json_type_array))
                return 0;
        for (size_t i = 0; i < json_object_array_length(array); i++) {
                r = load_unit(l, json_object_array_get_idx(array, i), false);
                if (r < 0)
                        return r;
        }
        return 0;
}

/*
 * One journal line: {"put":RECORD}, {"del":PID}, {"hold":HOLD}, {"unhold":CGROUP}, {"unit":UNIT} or
 * {"ununit":NAME}. Anything else is skipped.
 */
static int load_journal_line(LoadState *l, json_tokener *tok, const char *line, size_t len) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *v;
        const char *s;
        int64_t pid;
        CgroupHold *h;

        json_tokener_reset(tok);
        o = json_tokener_parse_ex(tok, line, (int) len);
        if (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len ||
            !json_object_is_type(o, json_type_object) || json_object_object_length(o) != 1) {
                l->skipped++;
                return 0;
        }
        if (json_object_object_get_ex(o, "put", &v))
                return load_put(l, v, true);
        if (json_object_object_get_ex(o, "hold", &v))
                return load_hold(l, v, true);
        if (json_object_object_get_ex(o, "unit", &v))
                return load_unit(l, v, true);
        if (json_object_object_get_ex(o, "del", &v) && json_get_int64(v, 1, OOMPROTECT_PID_MAX_LIMIT, &pid) >= 0) {
                protection_free(registry_remove(&l->records, (pid_t) pid));
                return 0;
        }
        if (json_object_object_get_ex(o, "unhold", &v) && json_get_string(v, &s) >= 0) {
                if (l->want_holds && (h = hold_table_get(&l->holds, s)))
                        hold_table_remove(&l->holds, (size_t) (h - l->holds.items));
                return 0;
        }
        if (json_object_object_get_ex(o, "ununit", &v) && json_get_string(v, &s) >= 0) {
                if (l->want_units)
                        unit_protection_free(unit_table_remove(&l->units, s));
                return 0;
        }
        l->skipped++;
        return 0;
}

/*
 * The lines after the document, in order. The last one without its newline
 * is the torn write of a daemon killed while appending: a change that was
 * never confirmed (the engine touches nothing before its line is on disk),
 * dropped without counting. A bad line elsewhere is skipped and counted.
 */
static int load_journal(LoadState *l, const char *rest) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        int r;

        if (!*rest)
                return 0;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        for (const char *line = rest, *nl; *line; line = nl + 1) {
                nl = strchr(line, '\n');
                if (!nl)
                        break; /* torn */
                if (line[strspn(line, " \t\r")] == '\n')
                        continue;
                r = load_journal_line(l, tok, line, (size_t) (nl - line));
                if (r < 0)
                        return r;
        }
        return 0;
}

int state_parse(const char *text, Protection ***ret, size_t *ret_n, size_t *ret_skipped, const char **ret_reason) {
        return state_parse_full(text, ret, ret_n, NULL, NULL, ret_skipped, ret_reason);
}

int state_parse_full(const char *text, Protection ***ret, size_t *ret_n, HoldTable *ret_holds, UnitTable *ret_units,
                     size_t *ret_skipped, const char **ret_reason) {
        _cleanup_(load_state_done) LoadState l = { .want_holds = ret_holds, .want_units = ret_units };
        _cleanup_(json_object_putp) json_object *top = NULL;
        json_object *protections = NULL;
        const char *rest;
        int r;

        r = json_parse_document(text, &top, &rest, ret_reason);
        if (r < 0)
                return r;
        r = state_parse_top(top, rest, &protections, ret_reason);
        if (r < 0)
                return r;
        r = load_document(&l, top, protections);
        if (r < 0)
                return r;
        r = load_journal(&l, rest);
        if (r < 0)
                return r;

        if (l.records.n == 0) {
                free(l.records.items);
                l.records.items = NULL;
        }
        *ret_n = l.records.n;
        *ret = TAKE_PTR(l.records.items);
        l.records = (Registry) {};
        if (ret_skipped)
                *ret_skipped = l.skipped;
        if (ret_holds) {
                *ret_holds = l.holds;
                l.holds = (HoldTable) {};
        }
        if (ret_units) {
                *ret_units = l.units;
                l.units = (UnitTable) {};
        }
        return 0;
}

/* ---- the file ---- */

int state_save(int dirfd, Protection *const *records, size_t n) {
        return state_save_full(dirfd, records, n, NULL, NULL);
}

int state_save_full(int dirfd, Protection *const *records, size_t n, const HoldTable *holds, const UnitTable *units) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = state_serialize_full(records, n, holds, units, &text);
        if (r < 0)
                return r;
        return write_file_atomic_at(dirfd, OOMPROTECT_STATE_FILE, text, strlen(text), 0600);
}

/* ---- the file written as a journal ---- */

static bool strings_equal(const char *a, const char *b) {
        return a == b || (a && b && streq(a, b));
}

static bool dropins_equal(const CgroupHold *a, const CgroupHold *b) {
        for (size_t i = 0; i < UNIT_DROPINS; i++)
                if (!xattr_value_equal(&a->original_dropins[i], &b->original_dropins[i]))
                        return false;
        return true;
}

static bool hold_same(const CgroupHold *a, const CgroupHold *b) {
        return streq(a->cgroup, b->cgroup) && strings_equal(a->unit, b->unit) &&
               a->original_min == b->original_min && a->original_low == b->original_low &&
               a->original_preference == b->original_preference &&
               xattr_value_equal(&a->original_avoid, &b->original_avoid) && dropins_equal(a, b);
}

/* The common case, in O(H): the same holds in the same order (the table keeps its order). */
static bool holds_unchanged(const HoldTable *written, const HoldTable *cur) {
        size_t j = 0;

        for (size_t i = 0; cur && i < cur->n; i++) {
                if (cur->items[i].released)
                        continue;
                if (j >= written->n || !hold_same(&written->items[j], &cur->items[i]))
                        return false;
                j++;
        }
        return j == written->n;
}

static const CgroupHold *hold_live(const HoldTable *t, const char *cgroup) {
        const CgroupHold *h = t ? hold_table_get(t, cgroup) : NULL;

        return h && !h->released ? h : NULL;
}

/* Lines that take the file's holds to cur's. */
static void holds_diff_write(TextBuf *b, const HoldTable *written, const HoldTable *cur) {
        for (size_t i = 0; cur && i < cur->n; i++) {
                const CgroupHold *h = &cur->items[i], *w;

                if (h->released)
                        continue;
                w = hold_table_get(written, h->cgroup);
                if (w && hold_same(w, h))
                        continue;
                text_adds(b, "{\"hold\":");
                hold_write(b, h);
                text_adds(b, "}\n");
        }
        for (size_t i = 0; i < written->n; i++) {
                if (hold_live(cur, written->items[i].cgroup))
                        continue;
                text_adds(b, "{\"unhold\":");
                text_add_string(b, written->items[i].cgroup, strlen(written->items[i].cgroup));
                text_adds(b, "}\n");
        }
}

static int holds_copy(HoldTable *to, const HoldTable *from) {
        int r;

        hold_table_done(to);
        for (size_t i = 0; from && i < from->n; i++) {
                const CgroupHold *h = &from->items[i];

                if (h->released)
                        continue;
                r = hold_table_add(to, h->cgroup, h->unit, h->original_min, h->original_low);
                if (r < 0)
                        return r;
                to->items[to->n - 1].original_preference = h->original_preference;
                r = xattr_value_copy(&h->original_avoid, &to->items[to->n - 1].original_avoid);
                for (size_t k = 0; k < UNIT_DROPINS && r >= 0; k++)
                        r = xattr_value_copy(&h->original_dropins[k], &to->items[to->n - 1].original_dropins[k]);
                if (r < 0)
                        return r;
        }
        return 0;
}

void state_file_init(StateFile *f, int dirfd) {
        *f = (StateFile) { .dirfd = dirfd, .fd = -EBADF };
}

static void state_file_unstage_units(StateFile *f) {
        for (size_t i = 0; i < f->n_staged_units; i++)
                free(f->staged_units[i]);
        f->n_staged_units = 0;
}

void state_file_done(StateFile *f) {
        safe_close(f->fd);
        free(f->staged);
        state_file_unstage_units(f);
        free(f->staged_units);
        hold_table_done(&f->written);
        *f = (StateFile) { .dirfd = -EBADF, .fd = -EBADF };
}

int state_file_stage(StateFile *f, pid_t pid) {
        if (f->n_staged == f->alloc_staged) {
                size_t want = f->alloc_staged ? f->alloc_staged * 2 : 16;
                pid_t *n = realloc(f->staged, want * sizeof(pid_t));

                if (!n) {
                        f->must_rewrite = true; /* the change is not lost: the next commit writes everything */
                        return -ENOMEM;
                }
                f->staged = n;
                f->alloc_staged = want;
        }
        f->staged[f->n_staged++] = pid;
        return 0;
}

int state_file_stage_unit(StateFile *f, const char *unit) {
        char *name;

        if (f->n_staged_units == f->alloc_staged_units) {
                size_t want = f->alloc_staged_units ? f->alloc_staged_units * 2 : 4;
                char **n = realloc(f->staged_units, want * sizeof(char *));

                if (!n) {
                        f->must_rewrite = true;
                        return -ENOMEM;
                }
                f->staged_units = n;
                f->alloc_staged_units = want;
        }
        name = strdup(unit);
        if (!name) {
                f->must_rewrite = true;
                return -ENOMEM;
        }
        f->staged_units[f->n_staged_units++] = name;
        return 0;
}

int state_file_rewrite(StateFile *f, const Registry *reg, const HoldTable *holds, const UnitTable *units) {
        _cleanup_(text_buf_done) TextBuf b = {};
        _cleanup_close_ int fd = -EBADF;
        char tmp[PATH_MAX];
        int r;

        r = state_serialize_buf(reg->items, reg->n, holds, units, &b);
        if (r < 0)
                return r;
        fd = open_temp_file_at(f->dirfd, OOMPROTECT_STATE_FILE, O_APPEND, 0600, tmp, sizeof(tmp));
        if (fd < 0)
                return fd;
        r = loop_write(fd, b.data, b.len);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0)
                fault_point("state:rewrite-written");
        if (r >= 0 && renameat(f->dirfd, tmp, f->dirfd, OOMPROTECT_STATE_FILE) < 0)
                r = negative_errno();
        if (r < 0) {
                (void) unlinkat(f->dirfd, tmp, 0);
                return r;
        }
        (void) fsync(f->dirfd); /* the rename itself; not fatal on filesystems that refuse */
        fault_point("state:rewrite-renamed");

        safe_close(f->fd);
        f->fd = TAKE_FD(fd);
        f->size = f->document_size = b.len;
        f->n_staged = 0;
        state_file_unstage_units(f);
        f->rewrites++;
        /* Without a copy the next diff cannot be exact: then that commit writes everything again. */
        f->must_rewrite = holds_copy(&f->written, holds) < 0;
        return 0;
}

/*
 * The journal has outgrown the document, or the file nears half of what a
 * load accepts (then after every STATE_JOURNAL_MIN of journal, so that a huge
 * document is not rewritten on every change): time to write it whole.
 */
static bool state_file_wants_rewrite(const StateFile *f) {
        uint64_t journal = f->size - f->document_size;

        return journal > MAX(f->document_size, (uint64_t) STATE_JOURNAL_MIN) ||
               (f->size > STATE_FILE_MAX / 2 && journal > STATE_JOURNAL_MIN);
}

int state_file_commit(StateFile *f, const Registry *reg, const HoldTable *holds, const UnitTable *units) {
        _cleanup_(text_buf_done) TextBuf b = {};
        bool holds_changed;
        int r;

        if (f->fd < 0 || f->must_rewrite)
                return state_file_rewrite(f, reg, holds, units);

        for (size_t i = 0; i < f->n_staged; i++) {
                const Protection *p = registry_get(reg, f->staged[i]);

                if (p) {
                        text_adds(&b, "{\"put\":");
                        protection_write(&b, p);
                } else {
                        text_adds(&b, "{\"del\":");
                        text_add_i64(&b, f->staged[i]);
                }
                text_adds(&b, "}\n");
        }
        f->n_staged = 0;
        for (size_t i = 0; i < f->n_staged_units; i++) {
                const UnitProtection *u = units ? unit_table_get(units, f->staged_units[i]) : NULL;

                if (u) {
                        text_adds(&b, "{\"unit\":");
                        unit_write(&b, u);
                } else {
                        text_adds(&b, "{\"ununit\":");
                        text_add_string(&b, f->staged_units[i], strlen(f->staged_units[i]));
                }
                text_adds(&b, "}\n");
        }
        state_file_unstage_units(f);
        holds_changed = !holds_unchanged(&f->written, holds);
        if (holds_changed)
                holds_diff_write(&b, &f->written, holds);
        if (b.failed) {
                f->must_rewrite = true;
                return -ENOMEM;
        }
        if (b.len == 0)
                return 0;

        r = loop_write(f->fd, b.data, b.len);
        if (r >= 0)
                fault_point("state:appended");
        if (r >= 0 && fdatasync(f->fd) < 0)
                r = negative_errno();
        if (r < 0) {
                /* Cut back to what it said, so that no later line is glued to a torn one; and write it whole next. */
                (void) !ftruncate(f->fd, (off_t) f->size); /* if this fails too, the rewrite replaces it */
                f->must_rewrite = true;
                return r;
        }
        f->size += b.len;
        if (holds_changed && holds_copy(&f->written, holds) < 0)
                f->must_rewrite = true;
        if (state_file_wants_rewrite(f))
                (void) state_file_rewrite(f, reg, holds, units); /* the journal holds the change already */
        return 0;
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
static int state_read(int dirfd, Protection ***ret, size_t *ret_n, HoldTable *ret_holds, UnitTable *ret_units,
                      size_t *ret_skipped, const char **ret_reason) {
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

        r = state_parse_full(text, ret, ret_n, ret_holds, ret_units, ret_skipped, ret_reason);
        if (r == -EBADMSG)
                return 0;
        if (r < 0)
                return r;
        *ret_reason = NULL;
        return 0;
}

int state_load(int dirfd, Protection ***ret, size_t *ret_n, size_t *ret_skipped, char **ret_moved_to,
               const char **ret_reason) {
        return state_load_full(dirfd, ret, ret_n, NULL, NULL, ret_skipped, ret_moved_to, ret_reason);
}

int state_load_full(int dirfd, Protection ***ret, size_t *ret_n, HoldTable *ret_holds, UnitTable *ret_units,
                    size_t *ret_skipped, char **ret_moved_to, const char **ret_reason) {
        _cleanup_free_ char *moved_to = NULL;
        Protection **records = NULL;
        const char *reason = NULL;
        size_t n = 0, skipped = 0;
        int r;

        r = state_read(dirfd, &records, &n, ret_holds, ret_units, &skipped, &reason);
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
