/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "fileio.h"
#include "hold.h"
#include "macro.h"
#include "protection.h"
#include "registry.h"
#include "state.h"
#include "unit-protection.h"

/* ---- helpers ---- */

static int setup_dir(void **state) {
        char tmpl[] = "/tmp/oomprotect-test-state.XXXXXX";
        int *fd = malloc(sizeof(int));

        assert_non_null(fd);
        assert_non_null(mkdtemp(tmpl));
        *fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(*fd >= 0);
        *state = fd;
        return 0;
}

static int teardown_dir(void **state) {
        int *fd = *state;
        char path[64], real[256] = {};
        DIR *d = fdopendir(dup(*fd));
        struct dirent *de;

        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") && unlinkat(*fd, de->d_name, 0) < 0)
                        (void) unlinkat(*fd, de->d_name, AT_REMOVEDIR);
        closedir(d);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", *fd);
        assert_true(readlink(path, real, sizeof(real) - 1) > 0);
        close(*fd);
        rmdir(real);
        free(fd);
        return 0;
}

/* The names in dirfd, sorted, joined by spaces. */
static char *list_dir(int dirfd) {
        struct dirent **names;
        char *buf = calloc(1, 4096);
        int n;
        char path[64];

        assert_non_null(buf);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", dirfd);
        n = scandir(path, &names, NULL, alphasort);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
                if (!streq(names[i]->d_name, ".") && !streq(names[i]->d_name, "..")) {
                        if (buf[0])
                                strcat(buf, " ");
                        strcat(buf, names[i]->d_name);
                }
                free(names[i]);
        }
        free(names);
        return buf;
}

static void write_file(int dirfd, const char *name, const void *data, size_t len) {
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t) len);
        close(fd);
}

static Protection *make_protection(pid_t pid, const char *comm, const char *tag) {
        Protection *p = protection_new();

        assert_non_null(p);
        p->pid = pid;
        p->starttime = 5678;
        snprintf(p->comm, sizeof(p->comm), "%s", comm);
        p->uid = 1000;
        p->original_cgroup = strdup("/system.slice/ssh.service");
        assert_non_null(p->original_cgroup);
        assert_true(asprintf(&p->scope_cgroup, "/protected.slice/oomprotect-%d.scope", (int) pid) > 0);
        p->original_adj = 0;
        p->applied_adj = -1000;
        p->memory_min = 64 << 20;
        p->memory_low = 128 << 20;
        p->since_usec = UINT64_C(1700000000000000);
        p->source = strdup("dbus");
        assert_non_null(p->source);
        if (tag) {
                p->tag = strdup(tag);
                assert_non_null(p->tag);
        }
        return p;
}

static void add_member(Protection *p, pid_t pid, const char *original_cgroup, int original_adj) {
        ProtectionMember *m = realloc(p->members, (p->n_members + 1) * sizeof(ProtectionMember));

        assert_non_null(m);
        p->members = m;
        m = &p->members[p->n_members++];
        *m = (ProtectionMember) {
                .pid = pid,
                .starttime = 9000 + (uint64_t) pid,
                .original_cgroup = original_cgroup ? strdup(original_cgroup) : NULL,
                .original_adj = original_adj,
        };
}

static void assert_string_equal_or_null(const char *a, const char *b) {
        if (!a || !b)
                assert_ptr_equal(a, b);
        else
                assert_string_equal(a, b);
}

static void assert_protection_equal(const Protection *a, const Protection *b) {
        assert_int_equal(a->pid, b->pid);
        assert_true(a->starttime == b->starttime);
        assert_string_equal(a->comm, b->comm);
        assert_int_equal(a->uid, b->uid);
        assert_string_equal_or_null(a->original_cgroup, b->original_cgroup);
        assert_string_equal_or_null(a->scope_cgroup, b->scope_cgroup);
        assert_int_equal(a->original_adj, b->original_adj);
        assert_int_equal(a->applied_adj, b->applied_adj);
        assert_true(a->memory_min == b->memory_min);
        assert_true(a->memory_low == b->memory_low);
        assert_int_equal(a->oom_group, b->oom_group);
        assert_int_equal(a->descendants, b->descendants);
        assert_true(a->since_usec == b->since_usec);
        assert_string_equal_or_null(a->source, b->source);
        assert_string_equal_or_null(a->tag, b->tag);
        assert_int_equal(a->n_members, b->n_members);
        for (size_t i = 0; i < a->n_members; i++) {
                assert_int_equal(a->members[i].pid, b->members[i].pid);
                assert_true(a->members[i].starttime == b->members[i].starttime);
                assert_string_equal_or_null(a->members[i].original_cgroup, b->members[i].original_cgroup);
                assert_int_equal(a->members[i].original_adj, b->members[i].original_adj);
        }
}

/* Serializes and parses back; the result must carry no skipped record and fresh runtime fields. */
static Protection **round_trip(Protection *const *in, size_t n_in, size_t *ret_n) {
        _cleanup_free_ char *text = NULL;
        Protection **out = NULL;
        size_t skipped = 99;
        const char *reason = NULL;

        assert_int_equal(state_serialize(in, n_in, &text), 0);
        assert_int_equal(state_parse(text, &out, ret_n, &skipped, &reason), 0);
        assert_int_equal(skipped, 0);
        assert_null(reason);
        for (size_t i = 0; i < *ret_n; i++) {
                assert_int_equal(out[i]->pidfd, -EBADF);
                assert_null(out[i]->watch);
        }
        return out;
}

/* Parses text with json-c directly, to look at what was written. */
static json_object *json_of(const char *text) {
        json_object *o = json_tokener_parse(text);

        assert_non_null(o);
        return o;
}

static json_object *json_key(json_object *o, const char *key) {
        json_object *v = NULL;

        assert_true(json_object_object_get_ex(o, key, &v));
        return v;
}

/* ---- serialize + parse ---- */

static void test_round_trip_keeps_every_field_of_full_records_with_members(void **state) {
        Protection *in[2], **out;
        size_t n;

        in[0] = make_protection(1234, "sshd", "ctr-1");
        in[0]->oom_group = true;
        in[0]->descendants = true;
        in[0]->original_adj = 300;
        in[0]->applied_adj = -999;
        in[0]->uid = 4294967294U;
        add_member(in[0], 1235, "/system.slice/ssh.service", 300);
        add_member(in[0], 1236, "/user.slice/user-1000.slice/session-2.scope", -17);
        add_member(in[0], 1237, NULL, 0);
        in[1] = make_protection(4194304, "postgres", NULL);

        out = round_trip(in, 2, &n);
        assert_int_equal(n, 2);
        assert_protection_equal(in[0], out[0]);
        assert_protection_equal(in[1], out[1]);

        protection_array_free(out, n);
        protection_free(in[0]);
        protection_free(in[1]);
}

static void test_round_trip_keeps_null_strings_as_json_null(void **state) {
        _cleanup_(protection_freep) Protection *p = make_protection(42, "bash", NULL);
        _cleanup_free_ char *text = NULL;
        Protection **out;
        json_object *top, *rec;
        size_t n;

        free(p->original_cgroup);
        free(p->scope_cgroup);
        free(p->source);
        p->original_cgroup = p->scope_cgroup = p->source = NULL; /* adj-only backend */

        assert_int_equal(state_serialize(&p, 1, &text), 0);
        top = json_of(text);
        rec = json_object_array_get_idx(json_key(top, "protections"), 0);
        assert_null(json_key(rec, "tag")); /* present, and JSON null */
        assert_null(json_key(rec, "original_cgroup"));
        assert_null(json_key(rec, "scope_cgroup"));
        assert_null(json_key(rec, "source"));
        json_object_put(top);

        out = round_trip(&p, 1, &n);
        assert_int_equal(n, 1);
        assert_protection_equal(p, out[0]);
        assert_null(out[0]->tag);
        protection_array_free(out, n);
}

static void test_round_trip_keeps_huge_uint64_values(void **state) {
        _cleanup_(protection_freep) Protection *p = make_protection(42, "java", NULL);
        Protection **out;
        size_t n;

        p->memory_min = UINT64_MAX; /* cgroup "max" */
        p->memory_low = (uint64_t) INT64_MAX + 1;
        p->starttime = UINT64_MAX - 1;
        p->since_usec = (uint64_t) INT64_MAX;

        out = round_trip(&p, 1, &n);
        assert_int_equal(n, 1);
        assert_true(out[0]->memory_min == UINT64_MAX);
        assert_true(out[0]->memory_low == (uint64_t) INT64_MAX + 1);
        assert_true(out[0]->starttime == UINT64_MAX - 1);
        assert_true(out[0]->since_usec == (uint64_t) INT64_MAX);
        protection_array_free(out, n);
}

static void test_round_trip_keeps_comm_of_15_chars(void **state) {
        _cleanup_(protection_freep) Protection *p = make_protection(42, "abcdefghijklmno", NULL);
        Protection **out;
        size_t n;

        assert_int_equal(strlen(p->comm), 15);
        out = round_trip(&p, 1, &n);
        assert_int_equal(n, 1);
        assert_string_equal(out[0]->comm, "abcdefghijklmno");
        protection_array_free(out, n);
}

static void test_serialize_stops_at_16_bytes_of_unterminated_comm(void **state) {
        _cleanup_(protection_freep) Protection *p = make_protection(42, "x", NULL);
        _cleanup_free_ char *text = NULL;
        json_object *top, *rec;
        Protection **out;
        size_t n;

        memcpy(p->comm, "0123456789abcdef", 16); /* no NUL at all */
        assert_int_equal(state_serialize(&p, 1, &text), 0);
        top = json_of(text);
        rec = json_object_array_get_idx(json_key(top, "protections"), 0);
        assert_string_equal(json_object_get_string(json_key(rec, "comm")), "0123456789abcdef");
        json_object_put(top);

        out = round_trip(&p, 1, &n);
        assert_string_equal(out[0]->comm, "0123456789abcde"); /* cut to 15, NUL-terminated */
        protection_array_free(out, n);
}

static void test_parse_truncates_long_comm_to_15_bytes(void **state) {
        const char *text = "{\"version\":1,\"protections\":[{\"pid\":5,\"starttime\":1,"
                           "\"comm\":\"abcdefghijklmnopqrstuvwxyz\"}]}";
        Protection **out;
        size_t n, skipped;

        assert_int_equal(state_parse(text, &out, &n, &skipped, NULL), 0);
        assert_int_equal(n, 1);
        assert_string_equal(out[0]->comm, "abcdefghijklmno");
        protection_array_free(out, n);
}

static void test_serialize_writes_version_2_and_no_runtime_fields(void **state) {
        _cleanup_(protection_freep) Protection *p = make_protection(42, "x", "t");
        _cleanup_free_ char *text = NULL;
        static const char *const keys[] = {
                "pid",          "starttime",  "comm",       "uid",         "original_cgroup",
                "scope_cgroup", "original_adj", "applied_adj", "memory_min", "memory_low",
                "oom_group",    "descendants", "since_usec", "source",      "tag",
                "members",      "original_unit", "kind",     "state",
        };
        json_object *top, *rec;

        p->pidfd = 77; /* not a real fd: protection_free() closes it, so give it back below */
        assert_int_equal(state_serialize(&p, 1, &text), 0);
        p->pidfd = -EBADF;
        assert_non_null(strstr(text, "/system.slice/ssh.service")); /* no "\/" escapes */
        assert_int_equal(text[strlen(text) - 1], '\n');

        top = json_of(text);
        assert_int_equal(json_object_get_int(json_key(top, "version")), STATE_FORMAT_VERSION);
        rec = json_object_array_get_idx(json_key(top, "protections"), 0);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                (void) json_key(rec, keys[i]);
        assert_int_equal(json_object_object_length(rec), ELEMENTSOF(keys));
        assert_false(json_object_object_get_ex(rec, "pidfd", NULL));
        assert_false(json_object_object_get_ex(rec, "watch", NULL));
        assert_false(json_object_object_get_ex(rec, "pending", NULL));
        json_object_put(top);
}

static void test_serialize_of_no_records_parses_back_empty(void **state) {
        _cleanup_free_ char *text = NULL;
        Protection **out = (Protection **) 0x1;
        size_t n = 99, skipped = 99;

        assert_int_equal(state_serialize(NULL, 0, &text), 0);
        assert_int_equal(state_parse(text, &out, &n, &skipped, NULL), 0);
        assert_int_equal(n, 0);
        assert_int_equal(skipped, 0);
        assert_null(out);
}

static void test_parse_ignores_unknown_keys_at_every_level(void **state) {
        const char *text =
                "{ \"version\": 1, \"written_by\": \"oomprotectd 9.0\", \"future\": { \"a\": [1, 2, {}] },\n"
                "  \"protections\": [ { \"pid\": 10, \"starttime\": 20, \"comm\": \"x\", \"colour\": \"blue\",\n"
                "                       \"nested\": { \"deep\": [ null, true ] },\n"
                "                       \"members\": [ { \"pid\": 11, \"starttime\": 21, \"flavour\": 3.5 } ] } ] }";
        Protection **out;
        size_t n, skipped;

        assert_int_equal(state_parse(text, &out, &n, &skipped, NULL), 0);
        assert_int_equal(n, 1);
        assert_int_equal(skipped, 0);
        assert_int_equal(out[0]->pid, 10);
        assert_string_equal(out[0]->comm, "x");
        assert_int_equal(out[0]->n_members, 1);
        assert_int_equal(out[0]->members[0].pid, 11);
        assert_true(out[0]->members[0].starttime == 21);
        protection_array_free(out, n);
}

static void test_parse_fills_missing_optional_keys_with_defaults(void **state) {
        Protection **out;
        size_t n, skipped;

        assert_int_equal(state_parse("{\"version\":1,\"protections\":[{\"pid\":3,\"starttime\":0}]}", &out, &n,
                                     &skipped, NULL),
                         0);
        assert_int_equal(n, 1);
        assert_string_equal(out[0]->comm, "");
        assert_null(out[0]->original_cgroup);
        assert_null(out[0]->tag);
        assert_int_equal(out[0]->n_members, 0);
        assert_null(out[0]->members);
        protection_array_free(out, n);
}

static void test_parse_without_protections_key_is_empty(void **state) {
        Protection **out = (Protection **) 0x1;
        size_t n = 99, skipped = 99;

        assert_int_equal(state_parse(" {\"version\": 1}\n\n", &out, &n, &skipped, NULL), 0);
        assert_null(out);
        assert_int_equal(n, 0);
        assert_int_equal(skipped, 0);
}

/* Rejected as a whole, with a reason, and the outputs left as they were. */
static void assert_parse_rejected(const char *text, const char *reason_part) {
        Protection **out = (Protection **) 0x1;
        size_t n = 99, skipped = 98;
        const char *reason = NULL;

        assert_int_equal(state_parse(text, &out, &n, &skipped, &reason), -EBADMSG);
        assert_non_null(reason);
        if (!strstr(reason, reason_part))
                fail_msg("reason \"%s\" does not contain \"%s\" for: %s", reason, reason_part, text);
        assert_ptr_equal(out, (Protection **) 0x1);
        assert_int_equal(n, 99);
        assert_int_equal(skipped, 98);
}

static void test_parse_rejects_text_that_is_not_json(void **state) {
        assert_parse_rejected("hello world", "not valid JSON");
        assert_parse_rejected("{version: 1}", "not valid JSON");
        assert_parse_rejected("{\"version\": 1,}", "not valid JSON");
}

static void test_parse_rejects_truncated_json(void **state) {
        assert_parse_rejected("{\"version\": 1, \"protections\": [ {\"pid\": 1", "truncated");
        assert_parse_rejected("{", "truncated");
}

static void test_parse_rejects_empty_text(void **state) {
        assert_parse_rejected("", "empty");
        assert_parse_rejected(" \n\t\n", "empty");
}

static void test_parse_rejects_top_level_that_is_not_an_object(void **state) {
        assert_parse_rejected("[{\"version\": 1}]", "not a JSON object");
        assert_parse_rejected("1", "not a JSON object");
        assert_parse_rejected("null", "not a JSON object");
        assert_parse_rejected("\"state\"", "not a JSON object");
}

static void test_parse_rejects_trailing_garbage(void **state) {
        assert_parse_rejected("{\"version\": 1} x", "trailing data");
        assert_parse_rejected("{\"version\": 1}{\"version\": 1}", "trailing data");
        assert_parse_rejected("{\"version\": 1}\n]", "trailing data");
}

static void test_parse_rejects_missing_or_non_integer_version(void **state) {
        assert_parse_rejected("{\"protections\": []}", "version");
        assert_parse_rejected("{\"version\": \"1\"}", "version");
        assert_parse_rejected("{\"version\": 1.0}", "version");
        assert_parse_rejected("{\"version\": null}", "version");
}

static void test_parse_rejects_version_written_by_a_newer_daemon(void **state) {
        assert_parse_rejected("{\"version\": 99, \"protections\": []}", "written by a newer oomprotectd");
        assert_parse_rejected("{\"version\": 18446744073709551615}", "written by a newer oomprotectd");
}

static void test_parse_rejects_version_below_1(void **state) {
        assert_parse_rejected("{\"version\": 0}", "unsupported version");
        assert_parse_rejected("{\"version\": -1}", "unsupported version");
}

static void test_parse_rejects_protections_that_is_not_an_array(void **state) {
        assert_parse_rejected("{\"version\": 1, \"protections\": {}}", "not an array");
        assert_parse_rejected("{\"version\": 1, \"protections\": null}", "not an array");
        assert_parse_rejected("{\"version\": 1, \"protections\": 3}", "not an array");
}

static void test_parse_skips_each_bad_record_and_loads_the_good_ones(void **state) {
        static const char *const bad[] = {
                "{\"starttime\": 1}",                         /* missing pid */
                "{\"pid\": 0, \"starttime\": 1}",             /* pid 0 */
                "{\"pid\": -1, \"starttime\": 1}",            /* pid -1 */
                "{\"pid\": \"77\", \"starttime\": 1}",        /* pid as a string */
                "{\"pid\": 77.0, \"starttime\": 1}",          /* pid as a double */
                "{\"pid\": null, \"starttime\": 1}",          /* pid null */
                "{\"pid\": 4194305, \"starttime\": 1}",       /* above PID_MAX_LIMIT */
                "{\"pid\": 99999999999999999999, \"starttime\": 1}",
                "{\"pid\": 77}",                              /* missing starttime */
                "{\"pid\": 77, \"starttime\": -5}",           /* negative uint64 */
                "{\"pid\": 77, \"starttime\": \"5\"}",
                "{\"pid\": 77, \"starttime\": 1, \"original_adj\": 5000}",
                "{\"pid\": 77, \"starttime\": 1, \"applied_adj\": -1001}",
                "{\"pid\": 77, \"starttime\": 1, \"memory_min\": -1}",
                "{\"pid\": 77, \"starttime\": 1, \"uid\": -1}",
                "{\"pid\": 77, \"starttime\": 1, \"uid\": 4294967296}",
                "{\"pid\": 77, \"starttime\": 1, \"oom_group\": \"yes\"}",
                "{\"pid\": 77, \"starttime\": 1, \"descendants\": 1}",
                "{\"pid\": 77, \"starttime\": 1, \"tag\": 5}",
                "{\"pid\": 77, \"starttime\": 1, \"comm\": null}",
                "{\"pid\": 77, \"starttime\": 1, \"original_cgroup\": \"/a\\u0000/b\"}",
                "{\"pid\": 77, \"starttime\": 1, \"members\": {}}",
                "{\"pid\": 77, \"starttime\": 1, \"members\": [ 5 ]}",
                "{\"pid\": 77, \"starttime\": 1, \"members\": [ {\"starttime\": 2} ]}",
                "{\"pid\": 77, \"starttime\": 1, \"members\": [ {\"pid\": 78, \"starttime\": 2, \"original_adj\": 1001} ]}",
                /* bad after strings were copied: nothing may leak */
                "{\"pid\": 77, \"starttime\": 1, \"original_cgroup\": \"/a\", \"source\": \"ctl\", \"tag\": 5}",
                "{\"pid\": 77, \"starttime\": 1, \"tag\": \"t\", \"members\": [ {\"pid\": 78, \"starttime\": 2, "
                "\"original_cgroup\": \"/b\"}, {\"pid\": 79, \"starttime\": 2, \"original_cgroup\": \"/c\", "
                "\"original_adj\": \"0\"} ]}",
                "42",
                "null",
                "[]",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = NULL;
                Protection **out;
                size_t n, skipped = 0;

                assert_true(asprintf(&text,
                                     "{\"version\":1,\"protections\":[{\"pid\":10,\"starttime\":1},%s,"
                                     "{\"pid\":20,\"starttime\":2,\"members\":[{\"pid\":21,\"starttime\":3}]}]}",
                                     bad[i]) > 0);
                assert_int_equal(state_parse(text, &out, &n, &skipped, NULL), 0);
                if (n != 2 || skipped != 1)
                        fail_msg("record %s: loaded %zu, skipped %zu", bad[i], n, skipped);
                assert_int_equal(out[0]->pid, 10);
                assert_int_equal(out[1]->pid, 20);
                assert_int_equal(out[1]->n_members, 1);
                protection_array_free(out, n);
        }
}

static void test_parse_counts_every_skipped_record(void **state) {
        const char *text = "{\"version\":1,\"protections\":[{\"starttime\":1},{\"pid\":0,\"starttime\":1},"
                           "{\"pid\":-1,\"starttime\":1},{\"pid\":\"5\",\"starttime\":1},"
                           "{\"pid\":5,\"starttime\":1,\"original_adj\":5000}]}";
        Protection **out = (Protection **) 0x1;
        size_t n = 99, skipped = 0;

        assert_int_equal(state_parse(text, &out, &n, &skipped, NULL), 0);
        assert_int_equal(n, 0);
        assert_int_equal(skipped, 5);
        assert_null(out);
}

static void test_parse_keeps_the_first_of_duplicate_pids(void **state) {
        const char *text = "{\"version\":1,\"protections\":["
                           "{\"pid\":7,\"starttime\":1,\"comm\":\"first\"},"
                           "{\"pid\":8,\"starttime\":1,\"comm\":\"other\"},"
                           "{\"pid\":7,\"starttime\":2,\"comm\":\"second\",\"members\":[{\"pid\":9,\"starttime\":1}]},"
                           "{\"pid\":7,\"starttime\":3,\"comm\":\"third\"}]}";
        Protection **out;
        size_t n, skipped;

        assert_int_equal(state_parse(text, &out, &n, &skipped, NULL), 0);
        assert_int_equal(n, 2);
        assert_int_equal(skipped, 2);
        assert_int_equal(out[0]->pid, 7);
        assert_string_equal(out[0]->comm, "first");
        assert_true(out[0]->starttime == 1);
        assert_int_equal(out[1]->pid, 8);
        protection_array_free(out, n);
}

/* ---- the file ---- */

static void test_load_of_missing_file_is_empty_state(void **state) {
        int dirfd = *(int *) *state;
        Protection **out = (Protection **) 0x1;
        char *moved_to = (char *) 0x1;
        const char *reason = "x";
        size_t n = 99, skipped = 99;

        assert_int_equal(state_load(dirfd, &out, &n, &skipped, &moved_to, &reason), 0);
        assert_null(out);
        assert_int_equal(n, 0);
        assert_int_equal(skipped, 0);
        assert_null(moved_to);
        assert_null(reason);
        assert_int_equal(faccessat(dirfd, "state.json", F_OK, 0), -1); /* and nothing was created */
}

/* Writes bytes as state.json, loads: empty state, the file renamed aside with its bytes intact. */
static char *assert_corrupt_moved_aside(int dirfd, const void *data, size_t len, const char *reason_part) {
        _cleanup_free_ char *copy = NULL;
        Protection **out = (Protection **) 0x1;
        char *moved_to = NULL;
        const char *reason = NULL, *digits;
        size_t n = 99, skipped = 99, copy_len;

        write_file(dirfd, "state.json", data, len);
        assert_int_equal(state_load(dirfd, &out, &n, &skipped, &moved_to, &reason), 0);
        assert_null(out);
        assert_int_equal(n, 0);
        assert_int_equal(skipped, 0);
        assert_non_null(reason);
        if (!strstr(reason, reason_part))
                fail_msg("reason \"%s\" does not contain \"%s\"", reason, reason_part);

        assert_non_null(moved_to);
        assert_true(strneq(moved_to, "state.json.corrupt-", strlen("state.json.corrupt-")));
        digits = moved_to + strlen("state.json.corrupt-");
        assert_true(digits[0] != '\0' && strspn(digits, "0123456789") == strlen(digits));

        assert_int_equal(faccessat(dirfd, "state.json", F_OK, 0), -1);
        assert_int_equal(errno, ENOENT);
        assert_int_equal(read_full_file_at(dirfd, moved_to, 128 << 20, &copy, &copy_len), 0);
        assert_int_equal(copy_len, len);
        assert_memory_equal(copy, data, len);
        return moved_to;
}

#define CORRUPT_TEST(name, bytes, reason_part)                                                        \
        static void name(void **state) {                                                              \
                static const char data[] = bytes;                                                     \
                _cleanup_free_ char *dir = NULL;                                                      \
                                                                                                      \
                free(assert_corrupt_moved_aside(*(int *) *state, data, sizeof(data) - 1, reason_part)); \
                dir = list_dir(*(int *) *state);                                                      \
                assert_null(strchr(dir, ' ')); /* the moved file, nothing else */                     \
        }

CORRUPT_TEST(test_load_moves_aside_garbage, "this is not a state file\n", "not valid JSON")
CORRUPT_TEST(test_load_moves_aside_truncated_json, "{\"version\": 1, \"protections\": [ {\"pid\": 12, \"sta",
             "truncated")
CORRUPT_TEST(test_load_moves_aside_empty_file, "", "empty")
CORRUPT_TEST(test_load_moves_aside_json_array, "[ {\"version\": 1} ]\n", "not a JSON object")
CORRUPT_TEST(test_load_moves_aside_binary_bytes, "\x7f" "ELF\x02\x01\x01\x00\x00\xff\xfe{}", "NUL")
CORRUPT_TEST(test_load_moves_aside_binary_bytes_without_nul, "\xff\xfe\x01\x02\x80\x81", "not valid JSON")
CORRUPT_TEST(test_load_moves_aside_trailing_garbage, "{\"version\": 1, \"protections\": []}\ngarbage",
             "trailing data")
CORRUPT_TEST(test_load_moves_aside_json_with_nul_then_garbage, "{\"version\": 1}\0garbage", "NUL")
CORRUPT_TEST(test_load_moves_aside_version_99, "{\"version\": 99, \"protections\": []}\n",
             "written by a newer oomprotectd")

static void test_load_moves_aside_file_over_64_mib(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_close_ int fd = -EBADF;
        Protection **out = (Protection **) 0x1;
        _cleanup_free_ char *moved_to = NULL;
        const char *reason = NULL;
        struct stat st;
        size_t n = 99;

        fd = openat(dirfd, "state.json", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (64 << 20) + 1), 0); /* sparse */

        assert_int_equal(state_load(dirfd, &out, &n, NULL, &moved_to, &reason), 0);
        assert_null(out);
        assert_int_equal(n, 0);
        assert_non_null(moved_to);
        assert_non_null(strstr(reason, "64 MiB"));
        assert_int_equal(fstatat(dirfd, moved_to, &st, 0), 0);
        assert_int_equal(st.st_size, (64 << 20) + 1);
}

static void test_load_never_overwrites_an_earlier_corrupt_copy(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_free_ char *first = NULL, *second = NULL, *bytes = NULL;

        first = assert_corrupt_moved_aside(dirfd, "first", 5, "not valid JSON");
        second = assert_corrupt_moved_aside(dirfd, "second!", 7, "not valid JSON");
        assert_string_not_equal(first, second);

        assert_int_equal(read_full_file_at(dirfd, first, 1024, &bytes, NULL), 0);
        assert_string_equal(bytes, "first");
}

static void test_load_returns_io_errors_other_than_enoent(void **state) {
        int dirfd = *(int *) *state;
        Protection **out = (Protection **) 0x1;
        char *moved_to = (char *) 0x1;
        const char *reason = "x";
        size_t n = 99;
        _cleanup_free_ char *dir = NULL;

        assert_int_equal(mkdirat(dirfd, "state.json", 0700), 0);
        assert_int_equal(state_load(dirfd, &out, &n, NULL, &moved_to, &reason), -EISDIR);
        assert_ptr_equal(out, (Protection **) 0x1);
        assert_int_equal(n, 99);
        assert_ptr_equal(moved_to, (char *) 0x1);
        assert_string_equal(reason, "x");
        dir = list_dir(dirfd);
        assert_string_equal(dir, "state.json"); /* not moved: an I/O error is no proof of corruption */
}

static void test_load_returns_good_records_and_counts_bad_ones(void **state) {
        int dirfd = *(int *) *state;
        const char *text = "{\"version\":1,\"protections\":[{\"pid\":1,\"starttime\":1},"
                           "{\"pid\":300,\"starttime\":4,\"comm\":\"good\"},{\"pid\":-1,\"starttime\":1}]}";
        Protection **out;
        char *moved_to = (char *) 0x1;
        const char *reason = "x";
        size_t n, skipped;

        write_file(dirfd, "state.json", text, strlen(text));
        assert_int_equal(state_load(dirfd, &out, &n, &skipped, &moved_to, &reason), 0);
        assert_int_equal(n, 2);
        assert_int_equal(skipped, 1);
        assert_null(moved_to);
        assert_null(reason);
        assert_string_equal(out[1]->comm, "good");
        protection_array_free(out, n);
        assert_int_equal(faccessat(dirfd, "state.json", F_OK, 0), 0); /* left where it was */
}

static void test_save_then_load_round_trips(void **state) {
        int dirfd = *(int *) *state;
        Protection *in[3], **out;
        char *moved_to;
        const char *reason;
        size_t n, skipped;

        in[0] = make_protection(100, "a", NULL);
        in[1] = make_protection(200, "b", "pod-7");
        add_member(in[1], 201, "/kubepods.slice/x", 5);
        in[2] = make_protection(300, "c", NULL);
        in[2]->memory_min = UINT64_MAX;

        assert_int_equal(state_save(dirfd, in, 3), 0);
        assert_int_equal(state_load(dirfd, &out, &n, &skipped, &moved_to, &reason), 0);
        assert_int_equal(n, 3);
        assert_int_equal(skipped, 0);
        assert_null(moved_to);
        for (size_t i = 0; i < 3; i++) {
                assert_protection_equal(in[i], out[i]);
                protection_free(in[i]);
        }
        protection_array_free(out, n);
}

static void test_save_is_atomic_leaves_no_temp_files_and_mode_0600(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_(protection_freep) Protection *p = make_protection(100, "a", NULL);
        _cleanup_free_ char *dir = NULL;
        Protection **out;
        struct stat st;
        size_t n;
        mode_t old_umask;

        write_file(dirfd, "state.json", "old", 3);
        assert_int_equal(fchmodat(dirfd, "state.json", 0644, 0), 0);

        old_umask = umask(0);
        assert_int_equal(state_save(dirfd, NULL, 0), 0);
        assert_int_equal(state_save(dirfd, &p, 1), 0);
        umask(old_umask);

        dir = list_dir(dirfd);
        assert_string_equal(dir, "state.json");
        assert_int_equal(fstatat(dirfd, "state.json", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);

        assert_int_equal(state_load(dirfd, &out, &n, NULL, NULL, NULL), 0);
        assert_int_equal(n, 1);
        assert_protection_equal(p, out[0]);
        protection_array_free(out, n);
}

static void test_save_of_empty_state_loads_empty(void **state) {
        int dirfd = *(int *) *state;
        Protection **out = (Protection **) 0x1;
        char *moved_to = (char *) 0x1;
        size_t n = 99;

        assert_int_equal(state_save(dirfd, NULL, 0), 0);
        assert_int_equal(state_load(dirfd, &out, &n, NULL, &moved_to, NULL), 0);
        assert_null(out);
        assert_int_equal(n, 0);
        assert_null(moved_to);
}


/* ---- the journal ---- */

/* n records with pids 100, 200, ... in a registry (sorted by pid, as the engine's). */
static void fill_registry(Registry *reg, size_t n) {
        for (size_t i = 0; i < n; i++)
                assert_int_equal(registry_add(reg, make_protection((pid_t) (100 * (i + 1)), "rec", NULL)), 0);
}

static size_t count_lines(int dirfd) {
        _cleanup_free_ char *text = NULL;
        size_t n = 0;

        assert_int_equal(read_full_file_at(dirfd, "state.json", 64 << 20, &text, NULL), 0);
        for (const char *c = text; *c; c++)
                n += *c == '\n';
        return n;
}

static off_t file_size(int dirfd) {
        struct stat st;

        assert_int_equal(fstatat(dirfd, "state.json", &st, AT_SYMLINK_NOFOLLOW), 0);
        return st.st_size;
}

/* Loads state.json and checks it holds exactly the registry's records, field by field. */
static void assert_file_is(int dirfd, const Registry *reg, size_t want_skipped) {
        Protection **out = NULL;
        char *moved_to = NULL;
        const char *reason = NULL;
        size_t n = 0, skipped = 0;

        assert_int_equal(state_load(dirfd, &out, &n, &skipped, &moved_to, &reason), 0);
        assert_null(moved_to);
        assert_null(reason);
        assert_int_equal(skipped, want_skipped);
        assert_int_equal(n, reg->n);
        for (size_t i = 0; i < n; i++)
                assert_protection_equal(reg->items[i], out[i]);
        protection_array_free(out, n);
}

static void test_journal_commit_appends_one_line_per_change_whatever_the_number_of_records(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_(registry_done) Registry reg = {};
        StateFile f;
        off_t before, after_small, after_big;

        state_file_init(&f, dirfd);
        fill_registry(&reg, 10);
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0); /* the first commit writes it whole */
        assert_int_equal(f.rewrites, 1);
        assert_file_is(dirfd, &reg, 0);

        /* A change at N=10 and the same change at N=1,010: the same bytes appended. */
        reg.items[3]->state = PROTECTION_RESTORING;
        before = file_size(dirfd);
        assert_int_equal(state_file_stage(&f, reg.items[3]->pid), 0);
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
        after_small = file_size(dirfd) - before;
        assert_file_is(dirfd, &reg, 0);

        state_file_done(&f);
        state_file_init(&f, dirfd);
        for (size_t i = 0; i < 1000; i++)
                assert_int_equal(registry_add(&reg, make_protection((pid_t) (100000 + i), "more", NULL)), 0);
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
        before = file_size(dirfd);
        assert_int_equal(state_file_stage(&f, reg.items[3]->pid), 0);
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
        after_big = file_size(dirfd) - before;
        assert_true(after_small > 0);
        assert_int_equal(after_small, after_big);
        assert_int_equal(f.rewrites, 1);
        assert_file_is(dirfd, &reg, 0);
        state_file_done(&f);
}

static void test_journal_del_ends_a_record_and_nothing_staged_writes_nothing(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_(registry_done) Registry reg = {};
        StateFile f;
        off_t before;

        state_file_init(&f, dirfd);
        fill_registry(&reg, 3);
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
        protection_free(registry_remove(&reg, 200));
        assert_int_equal(state_file_stage(&f, 200), 0);
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
        assert_file_is(dirfd, &reg, 0);

        before = file_size(dirfd);
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
        assert_int_equal(file_size(dirfd), before);
        state_file_done(&f);
}

/* UnprotectAll of 500: the pids are staged, and one commit appends one line each, in one write. */
static void test_journal_batch_of_dels_is_one_append(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_(registry_done) Registry reg = {};
        StateFile f;
        size_t lines;

        state_file_init(&f, dirfd);
        fill_registry(&reg, 500);
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
        lines = count_lines(dirfd);
        while (reg.n > 0) {
                pid_t pid = reg.items[0]->pid;
                protection_free(registry_remove(&reg, pid));
                assert_int_equal(state_file_stage(&f, pid), 0);
        }
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
        assert_int_equal(count_lines(dirfd), lines + 500);
        assert_int_equal(f.rewrites, 1);
        assert_file_is(dirfd, &reg, 0);
        state_file_done(&f);
}

static void test_journal_torn_last_line_is_dropped_without_counting(void **state) {
        int dirfd = *(int *) *state;
        static const char text[] = "{\"version\":2,\"journal\":1,\"protections\":[\n"
                                   "{\"pid\":5,\"starttime\":1,\"comm\":\"doc\"}\n],\"holds\":[]}\n"
                                   "{\"put\":{\"pid\":6,\"starttime\":2,\"comm\":\"line\"}}\n"
                                   "{\"del\":5}\n"
                                   "{\"put\":{\"pid\":7,\"starttime\":3,\"com";
        Protection **out = NULL;
        size_t n = 0, skipped = 99;
        const char *reason = NULL;

        write_file(dirfd, "state.json", text, sizeof(text) - 1);
        assert_int_equal(state_load(dirfd, &out, &n, &skipped, NULL, &reason), 0);
        assert_null(reason);
        assert_int_equal(skipped, 0);
        assert_int_equal(n, 1);
        assert_int_equal(out[0]->pid, 6);
        assert_string_equal(out[0]->comm, "line");
        protection_array_free(out, n);

        /* Even a complete object is dropped when its newline is missing: its write never returned. */
        assert_int_equal(state_parse("{\"version\":2,\"journal\":1}\n{\"put\":{\"pid\":8,\"starttime\":1}}", &out, &n,
                                     &skipped, NULL), 0);
        assert_int_equal(n, 0);
        assert_int_equal(skipped, 0);
}

static void test_journal_garbage_lines_are_skipped_and_counted_the_rest_applied(void **state) {
        static const char text[] = "{\"version\":2,\"journal\":1,\"protections\":[\n"
                                   "{\"pid\":5,\"starttime\":1,\"comm\":\"doc\"}\n],\"holds\":[]}\n"
                                   "this is not json\n"
                                   "{\"put\":{\"pid\":-3,\"starttime\":1}}\n"         /* bad record */
                                   "{\"del\":\"5\"}\n"                                 /* pid as a string */
                                   "{\"put\":{\"pid\":9,\"starttime\":1},\"del\":5}\n" /* two keys */
                                   "{\"frobnicate\":1}\n"                              /* unknown verb */
                                   "[1,2]\n"
                                   "{\"put\":{\"pid\":6,\"starttime\":2}} trailing\n"
                                   "\n"
                                   "{\"put\":{\"pid\":5,\"starttime\":1,\"comm\":\"changed\"}}\n";
        Protection **out = NULL;
        size_t n = 0, skipped = 0;

        assert_int_equal(state_parse(text, &out, &n, &skipped, NULL), 0);
        assert_int_equal(skipped, 7);
        assert_int_equal(n, 1);
        assert_int_equal(out[0]->pid, 5);
        assert_string_equal(out[0]->comm, "changed"); /* a journal line replaces the record */
        protection_array_free(out, n);
}

static void test_journal_lines_after_a_document_without_journal_key_are_corruption(void **state) {
        assert_parse_rejected("{\"version\":2,\"protections\":[]}\n{\"del\":5}\n", "trailing data");
        assert_parse_rejected("{\"version\":2,\"journal\":2,\"protections\":[]}\n{\"del\":5}\n", "trailing data");
}

/* A file as the daemon before the journal wrote it (json-c, pretty): loads, and the first commit rewrites it. */
static void test_journal_migrates_a_version_2_file_of_an_older_daemon(void **state) {
        int dirfd = *(int *) *state;
        static const char old[] =
                "{\n  \"version\":2,\n  \"protections\":[\n    {\n      \"pid\":100,\n      \"starttime\":5678,\n"
                "      \"comm\":\"rec\",\n      \"uid\":1000,\n      \"original_cgroup\":\"/system.slice/ssh.service\",\n"
                "      \"scope_cgroup\":\"/protected.slice/oomprotect-100.scope\",\n      \"original_unit\":null,\n"
                "      \"kind\":\"moved\",\n      \"state\":\"active\",\n      \"original_adj\":0,\n"
                "      \"applied_adj\":-1000,\n      \"memory_min\":67108864,\n      \"memory_low\":134217728,\n"
                "      \"oom_group\":false,\n      \"descendants\":false,\n      \"since_usec\":1700000000000000,\n"
                "      \"source\":\"dbus\",\n      \"tag\":null,\n      \"members\":[\n      ]\n    }\n  ],\n"
                "  \"holds\":[\n    {\n      \"cgroup\":\"/system.slice\",\n      \"unit\":\"system.slice\",\n"
                "      \"original_min\":0,\n      \"original_low\":0,\n      \"original_oomd_preference\":-1\n"
                "    }\n  ]\n}\n";
        _cleanup_(registry_done) Registry reg = {};
        _cleanup_(hold_table_done) HoldTable holds = {};
        Protection **out = NULL;
        size_t n = 0, skipped = 0;
        StateFile f;

        write_file(dirfd, "state.json", old, sizeof(old) - 1);
        assert_int_equal(state_load_full(dirfd, &out, &n, &holds, NULL, &skipped, NULL, NULL), 0);
        assert_int_equal(n, 1);
        assert_int_equal(holds.n, 1);
        fill_registry(&reg, 1);
        assert_protection_equal(reg.items[0], out[0]);
        protection_array_free(out, n);

        state_file_init(&f, dirfd);
        assert_int_equal(state_file_commit(&f, &reg, &holds, NULL), 0);
        assert_int_equal(f.rewrites, 1);
        state_file_done(&f);
        hold_table_done(&holds);
        assert_int_equal(state_load_full(dirfd, &out, &n, &holds, NULL, &skipped, NULL, NULL), 0);
        assert_int_equal(n, 1);
        assert_protection_equal(reg.items[0], out[0]);
        assert_int_equal(holds.n, 1);
        assert_string_equal(holds.items[0].cgroup, "/system.slice");
        protection_array_free(out, n);
}

static void test_journal_holds_are_appended_when_they_change_and_not_when_released(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_(registry_done) Registry reg = {};
        _cleanup_(hold_table_done) HoldTable holds = {}, back = {};
        Protection **out = NULL;
        size_t n = 0, lines;
        StateFile f;

        state_file_init(&f, dirfd);
        assert_int_equal(state_file_commit(&f, &reg, &holds, NULL), 0);
        lines = count_lines(dirfd);
        assert_int_equal(hold_table_add(&holds, "/a.slice", "a.slice", 1, 2), 0);
        assert_int_equal(hold_table_add(&holds, "/b.slice", "b.slice", 3, 4), 0);
        assert_int_equal(state_file_commit(&f, &reg, &holds, NULL), 0);
        assert_int_equal(count_lines(dirfd), lines + 2);
        assert_int_equal(state_file_commit(&f, &reg, &holds, NULL), 0); /* unchanged: nothing */
        assert_int_equal(count_lines(dirfd), lines + 2);

        holds.items[0].released = true;    /* its original is back */
        holds.items[1].original_min = 30; /* changed */
        assert_int_equal(state_file_commit(&f, &reg, &holds, NULL), 0);
        assert_int_equal(count_lines(dirfd), lines + 4);
        assert_int_equal(state_load_full(dirfd, &out, &n, &back, NULL, NULL, NULL, NULL), 0);
        assert_int_equal(n, 0);
        assert_int_equal(back.n, 1);
        assert_string_equal(back.items[0].cgroup, "/b.slice");
        assert_int_equal(back.items[0].original_min, 30);
        state_file_done(&f);
}

/* A hold whose oomd mark's original is recorded later (its cgroup became a target) gets a line of its own. */
static void test_journal_hold_gets_a_line_when_its_oomd_avoid_original_is_recorded(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_(registry_done) Registry reg = {};
        _cleanup_(hold_table_done) HoldTable holds = {}, back = {};
        Protection **out = NULL;
        size_t n = 0, lines;
        StateFile f;

        state_file_init(&f, dirfd);
        assert_int_equal(hold_table_add(&holds, "/a.slice/x.service", "x.service", 1, 2), 0);
        assert_int_equal(state_file_commit(&f, &reg, &holds, NULL), 0);
        lines = count_lines(dirfd);
        holds.items[0].original_avoid = (XattrValue) { .state = 0 }; /* absent before our mark */
        assert_int_equal(state_file_commit(&f, &reg, &holds, NULL), 0);
        assert_int_equal(count_lines(dirfd), lines + 1);
        assert_int_equal(state_file_commit(&f, &reg, &holds, NULL), 0); /* unchanged now: nothing */
        assert_int_equal(count_lines(dirfd), lines + 1);
        assert_int_equal(state_load_full(dirfd, &out, &n, &back, NULL, NULL, NULL, NULL), 0);
        assert_int_equal(back.n, 1);
        assert_int_equal(back.items[0].original_avoid.state, 0);
        assert_true(back.items[0].loaded);
        state_file_done(&f);
}

/* The journal never grows without bound: past the document's size it is folded into a new document. */
static void test_journal_is_rewritten_whole_once_it_outgrows_the_document(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_(registry_done) Registry reg = {};
        StateFile f;
        off_t largest = 0;

        state_file_init(&f, dirfd);
        fill_registry(&reg, 5);
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
        for (unsigned i = 0; i < 2000; i++) {
                reg.items[i % 5]->memory_min = i;
                assert_int_equal(state_file_stage(&f, reg.items[i % 5]->pid), 0);
                assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
                largest = MAX(largest, file_size(dirfd));
        }
        assert_true(f.rewrites > 1);
        assert_true(largest < 2 * 64 * 1024 + 4096); /* the 64 KiB floor, then one more line */
        assert_file_is(dirfd, &reg, 0);
        state_file_done(&f);
}

/* A write that fails halfway (here the file size limit): the file is cut back, the next commit rewrites. */
static void test_journal_failed_append_is_cut_back_and_changes_nothing(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_(registry_done) Registry reg = {}, was = {};
        struct rlimit old, small;
        struct sigaction ign = { .sa_handler = SIG_IGN }, prev;
        off_t before;
        StateFile f;

        state_file_init(&f, dirfd);
        fill_registry(&reg, 3);
        fill_registry(&was, 3);
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
        before = file_size(dirfd);

        reg.items[1]->state = PROTECTION_RESTORING;
        assert_int_equal(state_file_stage(&f, reg.items[1]->pid), 0);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        small = (struct rlimit) { .rlim_cur = (rlim_t) before + 10, .rlim_max = old.rlim_max };
        assert_int_equal(sigaction(SIGXFSZ, &ign, &prev), 0);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), -EFBIG);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        assert_int_equal(sigaction(SIGXFSZ, &prev, NULL), 0);

        assert_int_equal(file_size(dirfd), before); /* no torn line left for the next one to be glued to */
        assert_true(f.must_rewrite);
        assert_file_is(dirfd, &was, 0);

        reg.items[1]->state = PROTECTION_ACTIVE; /* the caller put it back */
        assert_int_equal(state_file_commit(&f, &reg, NULL, NULL), 0);
        assert_int_equal(f.rewrites, 2);
        assert_false(f.must_rewrite);
        assert_file_is(dirfd, &reg, 0);
        state_file_done(&f);
}

/*
 * SIGKILL at each step of a rewrite (in a child, as the daemon would die):
 * the file then says what the last confirmed commit said, and the dead
 * writer's temporary file is recognized as stale.
 */
static void test_journal_rewrite_killed_at_each_step_loses_no_confirmed_change(void **state) {
        static const char *const points[] = { "state:rewrite-written", "state:rewrite-renamed", "state:appended" };
        int dirfd = *(int *) *state;

        for (size_t k = 0; k < ELEMENTSOF(points); k++) {
                _cleanup_(registry_done) Registry reg = {};
                int status;
                pid_t child;

                (void) unlinkat(dirfd, "state.json", 0);
                fill_registry(&reg, 50);
                child = fork();
                assert_true(child >= 0);
                if (child == 0) {
                        StateFile f;

                        state_file_init(&f, dirfd);
                        if (state_file_commit(&f, &reg, NULL, NULL) < 0)
                                _exit(2);
                        /* From here on each commit is confirmed before the next change; the fault is armed now. */
                        setenv("OOMPROTECT_FAULT", points[k], 1);
                        for (unsigned i = 0;; i++) {
                                reg.items[i % 50]->memory_low = i;
                                if (state_file_stage(&f, reg.items[i % 50]->pid) < 0 ||
                                    state_file_commit(&f, &reg, NULL, NULL) < 0)
                                        _exit(3);
                                if (i > 100000)
                                        _exit(4);
                        }
                }
                assert_int_equal(waitpid(child, &status, 0), child);
                assert_true(WIFSIGNALED(status));
                assert_int_equal(WTERMSIG(status), SIGKILL);

                /* Which change was the last one confirmed: the file says memory_low = i for record i % 50. */
                Protection **out = NULL;
                size_t n = 0, skipped = 0;
                const char *reason = NULL;
                assert_int_equal(state_load(dirfd, &out, &n, &skipped, NULL, &reason), 0);
                assert_null(reason);
                assert_int_equal(skipped, 0);
                assert_int_equal(n, 50);
                uint64_t last = 0;
                for (size_t i = 0; i < n; i++)
                        if (out[i]->memory_low != reg.items[i]->memory_low) /* changed in the child */
                                last = MAX(last, out[i]->memory_low);
                /* Every change up to the last one is there (none lost in between, none half-applied). */
                for (size_t i = 0; i < n; i++) {
                        uint64_t want = last >= i ? last - ((last - i) % 50) : reg.items[i]->memory_low;
                        assert_true(out[i]->memory_low == want);
                }
                protection_array_free(out, n);
                fprintf(stderr, "# killed at %s: %" PRIu64 " changes confirmed, all there\n", points[k], last + 1);
                assert_true(remove_stale_temp_files_at(dirfd, "state.json") == (k == 0 ? 1 : 0));
                _cleanup_free_ char *dir = list_dir(dirfd);
                assert_string_equal(dir, "state.json");
        }
}

#define DIR_TEST(t) cmocka_unit_test_setup_teardown(t, setup_dir, teardown_dir)

/* ---- units protected by name: in the document and through the journal ---- */

static UnitProtection *make_unit(const char *name, int adj) {
        UnitProtection *u = unit_protection_new();
        char cgroup[128];

        assert_non_null(u);
        snprintf(cgroup, sizeof(cgroup), "/system.slice/%s", name);
        u->unit = strdup(name);
        u->cgroup = strdup(cgroup);
        u->source = strdup("dbus");
        assert_non_null(u->unit);
        assert_non_null(u->cgroup);
        assert_non_null(u->source);
        u->state = PROTECTION_ACTIVE;
        u->applied_adj = adj;
        u->base_adj = 7;
        u->has_base_adj = true;
        u->memory_min = 1 << 20;
        u->memory_low = 2 << 20;
        u->since_usec = UINT64_C(1700000000000000);
        assert_int_equal(unit_member_add(u, 4321, 8765, 7), 0);
        return u;
}

static void assert_unit_equal(const UnitProtection *a, const UnitProtection *b) {
        assert_string_equal(a->unit, b->unit);
        assert_string_equal(a->cgroup, b->cgroup);
        assert_int_equal(a->state, b->state);
        assert_int_equal(a->applied_adj, b->applied_adj);
        assert_int_equal(a->base_adj, b->base_adj);
        assert_int_equal(a->has_base_adj, b->has_base_adj);
        assert_int_equal(a->memory_min, b->memory_min);
        assert_int_equal(a->memory_low, b->memory_low);
        assert_int_equal(a->since_usec, b->since_usec);
        assert_string_equal(a->source, b->source);
        if (a->tag)
                assert_string_equal(a->tag, b->tag);
        else
                assert_null(b->tag);
        assert_int_equal(a->n_members, b->n_members);
        for (size_t i = 0; i < a->n_members; i++) {
                assert_int_equal(a->members[i].pid, b->members[i].pid);
                assert_int_equal(a->members[i].starttime, b->members[i].starttime);
                assert_int_equal(a->members[i].original_adj, b->members[i].original_adj);
        }
}

/* Loads state.json and checks it holds exactly these units, in this order, and the registry's records. */
static void assert_file_has_units(int dirfd, const Registry *reg, const UnitTable *units, size_t want_skipped) {
        _cleanup_(unit_table_done) UnitTable back = {};
        Protection **out = NULL;
        size_t n = 0, skipped = 0;

        assert_int_equal(state_load_full(dirfd, &out, &n, NULL, &back, &skipped, NULL, NULL), 0);
        assert_int_equal(skipped, want_skipped);
        assert_int_equal(n, reg->n);
        for (size_t i = 0; i < n; i++)
                assert_protection_equal(reg->items[i], out[i]);
        protection_array_free(out, n);
        assert_int_equal(back.n, units->n);
        for (size_t i = 0; i < back.n; i++)
                assert_unit_equal(units->items[i], back.items[i]);
        assert_int_equal(back.memory_min_sum, units->memory_min_sum);
}

static void test_units_round_trip_through_the_document_and_no_key_without_units(void **state) {
        _cleanup_(unit_table_done) UnitTable units = {}, back = {};
        _cleanup_free_ char *text = NULL, *empty = NULL;
        _cleanup_(registry_done) Registry reg = {};
        Protection **out = NULL;
        size_t n = 0, skipped = 99;

        fill_registry(&reg, 2);
        assert_int_equal(unit_table_add(&units, make_unit("nginx.service", -900)), 0);
        assert_int_equal(unit_table_add(&units, make_unit("db@main.service", -1000)), 0);
        units.items[1]->tag = strdup("t\"ag");
        assert_non_null(units.items[1]->tag);
        assert_int_equal(state_serialize_full(reg.items, reg.n, NULL, &units, &text), 0);
        assert_int_equal(state_parse_full(text, &out, &n, NULL, &back, &skipped, NULL), 0);
        assert_int_equal(skipped, 0);
        assert_int_equal(n, 2);
        protection_array_free(out, n);
        assert_int_equal(back.n, 2);
        assert_unit_equal(units.items[0], back.items[0]);
        assert_unit_equal(units.items[1], back.items[1]);
        assert_int_equal(back.memory_min_sum, 2 << 20);

        /* What a daemon before units reads the same: no "units" key at all without units. */
        assert_int_equal(state_serialize_full(reg.items, reg.n, NULL, NULL, &empty), 0);
        assert_null(strstr(empty, "\"units\""));
}

static void test_journal_unit_lines_put_change_and_end_a_unit_and_a_rewrite_keeps_them(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_(registry_done) Registry reg = {};
        _cleanup_(unit_table_done) UnitTable units = {};
        _cleanup_free_ char *text = NULL;
        size_t lines, len;
        StateFile f;

        state_file_init(&f, dirfd);
        fill_registry(&reg, 3);
        assert_int_equal(state_file_commit(&f, &reg, NULL, &units), 0); /* written whole, no units */
        lines = count_lines(dirfd);

        /* New: one line. */
        assert_int_equal(unit_table_add(&units, make_unit("nginx.service", -900)), 0);
        assert_int_equal(state_file_stage_unit(&f, "nginx.service"), 0);
        assert_int_equal(state_file_commit(&f, &reg, NULL, &units), 0);
        assert_int_equal(count_lines(dirfd), lines + 1);
        assert_file_has_units(dirfd, &reg, &units, 0);

        /* Changed (a restart's new process, a new adj): one more line, the last one wins. */
        units.items[0]->applied_adj = -500;
        assert_int_equal(unit_member_add(units.items[0], 4400, 9000, 7), 0);
        assert_int_equal(state_file_stage_unit(&f, "nginx.service"), 0);
        assert_int_equal(unit_table_add(&units, make_unit("ssh.service", -1000)), 0);
        assert_int_equal(state_file_stage_unit(&f, "ssh.service"), 0);
        assert_int_equal(state_file_commit(&f, &reg, NULL, &units), 0);
        assert_int_equal(count_lines(dirfd), lines + 3);
        assert_file_has_units(dirfd, &reg, &units, 0);
        assert_int_equal(f.rewrites, 1);

        /* Ended: an "ununit" line; nothing staged, nothing written. */
        unit_protection_free(unit_table_remove(&units, "nginx.service"));
        assert_int_equal(state_file_stage_unit(&f, "nginx.service"), 0);
        assert_int_equal(state_file_commit(&f, &reg, NULL, &units), 0);
        assert_int_equal(count_lines(dirfd), lines + 4);
        assert_int_equal(state_file_commit(&f, &reg, NULL, &units), 0);
        assert_int_equal(count_lines(dirfd), lines + 4);
        assert_int_equal(read_full_file_at(dirfd, "state.json", 64 << 20, &text, &len), 0);
        assert_non_null(strstr(text, "\n{\"ununit\":\"nginx.service\"}\n"));
        assert_file_has_units(dirfd, &reg, &units, 0);

        /* Written whole: the unit is in the document, the journal is empty. */
        assert_int_equal(state_file_rewrite(&f, &reg, NULL, &units), 0);
        assert_int_equal(count_lines(dirfd), lines + 2); /* "units":[ and ssh.service's line */
        assert_file_has_units(dirfd, &reg, &units, 0);
        state_file_done(&f);
}

static void test_journal_unit_lines_apply_in_order_over_the_document_and_bad_ones_are_counted(void **state) {
        static const char text[] =
                "{\"version\":2,\"journal\":1,\"protections\":[\n],\"holds\":[\n],\"units\":[\n"
                "{\"unit\":\"a.service\",\"cgroup\":\"/system.slice/a.service\",\"applied_adj\":-100,\"members\":[]},\n"
                "{\"unit\":\"b.service\",\"cgroup\":\"/system.slice/b.service\",\"members\":[]}\n]}\n"
                "{\"unit\":{\"unit\":\"a.service\",\"cgroup\":\"/system.slice/a.service\",\"applied_adj\":-200,"
                "\"memory_min\":4096}}\n"
                "{\"ununit\":\"b.service\"}\n"
                "{\"unit\":{\"unit\":\"c.slice\",\"cgroup\":\"/c.slice\"}}\n"
                "{\"unit\":{\"unit\":\"d.service\",\"cgroup\":\"/\"}}\n"
                "{\"unit\":{\"unit\":\"e.service\",\"cgroup\":\"/system.slice/e.service\",\"members\":[{\"pid\":0}]}}\n"
                "{\"ununit\":\"never.service\"}\n"
                "{\"unit\":{\"unit\":\"b.service\",\"cgroup\":\"/system.slice/b2.service\",\"state\":\"restoring\"}}\n";
        _cleanup_(unit_table_done) UnitTable back = {};
        Protection **out = NULL;
        size_t n = 0, skipped = 0;

        assert_int_equal(state_parse_full(text, &out, &n, NULL, &back, &skipped, NULL), 0);
        assert_int_equal(n, 0);
        assert_int_equal(skipped, 3); /* a slice, "/", a bad member */
        assert_int_equal(back.n, 2);
        assert_string_equal(back.items[0]->unit, "a.service");
        assert_int_equal(back.items[0]->applied_adj, -200);
        assert_int_equal(back.items[0]->state, PROTECTION_ACTIVE);
        assert_string_equal(back.items[1]->unit, "b.service");
        assert_string_equal(back.items[1]->cgroup, "/system.slice/b2.service");
        assert_int_equal(back.items[1]->state, PROTECTION_RESTORING);
        assert_int_equal(back.memory_min_sum, 4096);
        free(out);

        /* A caller that does not read units ignores their lines, uncounted. */
        skipped = 99;
        assert_int_equal(state_parse_full(text, &out, &n, NULL, NULL, &skipped, NULL), 0);
        assert_int_equal(skipped, 0);
        free(out);
}

/* ---- version 2: kind, state, original_unit, holds ---- */

static void test_version_2_fields_round_trip(void **state) {
        _cleanup_(protection_freep) Protection *p = make_protection(42, "nginx", NULL);
        _cleanup_free_ char *text = NULL;
        Protection **out = NULL;
        size_t n = 0, skipped = 0;

        p->kind = PROTECTION_IN_PLACE;
        p->state = PROTECTION_RESTORING;
        p->original_unit = strdup("ssh.service");
        assert_non_null(p->original_unit);
        free(p->scope_cgroup);
        p->scope_cgroup = NULL; /* in place: no scope */
        assert_int_equal(state_serialize(&p, 1, &text), 0);
        assert_non_null(strstr(text, "\"kind\":\"in-place\""));
        assert_non_null(strstr(text, "\"state\":\"restoring\""));
        assert_int_equal(state_parse(text, &out, &n, &skipped, NULL), 0);
        assert_int_equal(n, 1);
        assert_int_equal(skipped, 0);
        assert_int_equal(out[0]->kind, PROTECTION_IN_PLACE);
        assert_int_equal(out[0]->state, PROTECTION_RESTORING);
        assert_string_equal(out[0]->original_unit, "ssh.service");
        assert_null(out[0]->scope_cgroup);
        protection_array_free(out, n);
}

static void test_every_state_round_trips(void **state) {
        for (int st = 0; st < _PROTECTION_STATE_MAX; st++) {
                _cleanup_(protection_freep) Protection *p = make_protection(7, "x", NULL);
                _cleanup_free_ char *text = NULL;
                Protection **out = NULL;
                size_t n = 0;

                p->state = (ProtectionState) st;
                assert_int_equal(state_serialize(&p, 1, &text), 0);
                assert_int_equal(state_parse(text, &out, &n, NULL, NULL), 0);
                assert_int_equal(n, 1);
                assert_int_equal(out[0]->state, st);
                assert_int_equal(out[0]->kind, PROTECTION_MOVED);
                protection_array_free(out, n);
        }
}

static void test_version_1_file_loads_as_moved_and_active(void **state) {
        const char *text = "{\"version\":1,\"protections\":[{\"pid\":5,\"starttime\":1,\"comm\":\"old\","
                           "\"original_cgroup\":\"/user.slice\","
                           "\"scope_cgroup\":\"/protected.slice/oomprotect-5.scope\"}]}";
        _cleanup_(hold_table_done) HoldTable holds = {};
        Protection **out = NULL;
        size_t n = 0, skipped = 0;

        assert_int_equal(state_parse_full(text, &out, &n, &holds, NULL, &skipped, NULL), 0);
        assert_int_equal(n, 1);
        assert_int_equal(skipped, 0);
        assert_int_equal(out[0]->kind, PROTECTION_MOVED);
        assert_int_equal(out[0]->state, PROTECTION_ACTIVE);
        assert_null(out[0]->original_unit);
        assert_int_equal(holds.n, 0);
        protection_array_free(out, n);
}

static void test_holds_round_trip(void **state) {
        _cleanup_(hold_table_done) HoldTable holds = {}, back = {};
        _cleanup_free_ char *text = NULL;
        Protection **out = NULL;
        size_t n = 0, skipped = 0;
        CgroupHold *h;

        assert_int_equal(hold_table_add(&holds, "/system.slice", "system.slice", 0, 1 << 20), 0);
        assert_int_equal(hold_table_add(&holds, "/system.slice/docker-1.scope/payload", NULL, 5 << 20, 0), 0);
        holds.items[0].applied = true; /* runtime: not saved */
        holds.items[0].applied_min = 99;
        assert_int_equal(state_serialize_full(NULL, 0, &holds, NULL, &text), 0);
        assert_null(strstr(text, "applied"));
        assert_int_equal(state_parse_full(text, &out, &n, &back, NULL, &skipped, NULL), 0);
        assert_int_equal(n, 0);
        assert_int_equal(skipped, 0);
        assert_int_equal(back.n, 2);
        h = hold_table_get(&back, "/system.slice");
        assert_non_null(h);
        assert_string_equal(h->unit, "system.slice");
        assert_int_equal(h->original_min, 0);
        assert_int_equal(h->original_low, 1 << 20);
        assert_false(h->applied);
        h = hold_table_get(&back, "/system.slice/docker-1.scope/payload");
        assert_non_null(h);
        assert_null(h->unit);
        assert_int_equal(h->original_min, 5 << 20);
}

static void test_bad_hold_is_skipped_and_counted(void **state) {
        const char *text = "{\"version\":2,\"protections\":[],\"holds\":["
                           "{\"cgroup\":\"/good.slice\",\"unit\":\"good.slice\",\"original_min\":1,\"original_low\":2},"
                           "{\"cgroup\":\"relative.slice\",\"original_min\":0,\"original_low\":0},"
                           "{\"cgroup\":\"/a/../etc\",\"original_min\":0,\"original_low\":0},"
                           "{\"unit\":\"no-cgroup.slice\",\"original_min\":0,\"original_low\":0},"
                           "{\"cgroup\":\"/no-originals.slice\"},"
                           "{\"cgroup\":\"/good.slice\",\"original_min\":7,\"original_low\":7},"
                           "\"not an object\"]}";
        _cleanup_(hold_table_done) HoldTable holds = {};
        Protection **out = NULL;
        size_t n = 0, skipped = 0;

        assert_int_equal(state_parse_full(text, &out, &n, &holds, NULL, &skipped, NULL), 0);
        assert_int_equal(n, 0);
        assert_int_equal(holds.n, 1);
        assert_int_equal(holds.items[0].original_min, 1); /* the first of a duplicate stays */
        assert_int_equal(skipped, 6);
}

/* A state text with holds and no protections: how many holds were skipped. */
static size_t parse_holds_only(const char *text, HoldTable *holds) {
        Protection **out = NULL;
        size_t n = 0, skipped = 0;

        assert_int_equal(state_parse_full(text, &out, &n, holds, NULL, &skipped, NULL), 0);
        assert_int_equal(n, 0);
        protection_array_free(out, n);
        return skipped;
}

/* facebook oomd's trusted.oomd_avoid before our mark: absent, binary bytes, or not recorded (no key). */
static void test_hold_original_oomd_avoid_round_trips_exactly(void **state) {
        _cleanup_(hold_table_done) HoldTable holds = {}, back = {};
        _cleanup_free_ char *text = NULL;
        static const char bytes[] = { 'o', 0, '\n', (char) 0xff };
        CgroupHold *h;

        assert_int_equal(hold_table_add(&holds, "/a.slice", "a.slice", 0, 0), 0);
        assert_int_equal(hold_table_add(&holds, "/a.slice/absent.service", "absent.service", 0, 0), 0);
        assert_int_equal(hold_table_add(&holds, "/a.slice/bytes.service", "bytes.service", 0, 0), 0);
        holds.items[1].original_avoid = (XattrValue) { .state = 0 };
        assert_int_equal(xattr_value_copy(&(XattrValue) { .state = 1, .value = (char *) bytes, .size = sizeof(bytes) },
                                          &holds.items[2].original_avoid),
                         0);
        assert_int_equal(state_serialize_full(NULL, 0, &holds, NULL, &text), 0);
        assert_non_null(strstr(text, "\"original_oomd_avoid\":false"));
        assert_non_null(strstr(text, "\"original_oomd_avoid\":\"6f000aff\""));
        assert_int_equal(parse_holds_only(text, &back), 0);
        h = hold_table_get(&back, "/a.slice");
        assert_int_equal(h->original_avoid.state, -1); /* not recorded: no key, nothing put back */
        h = hold_table_get(&back, "/a.slice/absent.service");
        assert_int_equal(h->original_avoid.state, 0);
        h = hold_table_get(&back, "/a.slice/bytes.service");
        assert_int_equal(h->original_avoid.state, 1);
        assert_int_equal(h->original_avoid.size, sizeof(bytes));
        assert_memory_equal(h->original_avoid.value, bytes, sizeof(bytes));
        assert_true(xattr_value_equal(&h->original_avoid, &holds.items[2].original_avoid));
}

/* systemd's runtime drop-ins before our first SetUnitProperties: absent or exact bytes; a record without them loads. */
static void test_hold_original_dropins_round_trip_and_old_records_load_without_them(void **state) {
        _cleanup_(hold_table_done) HoldTable holds = {}, back = {}, old = {};
        _cleanup_free_ char *text = NULL;
        static const char admin[] = "# set-property\n[Service]\nMemoryLow=104857600\n";
        CgroupHold *h;

        assert_int_equal(hold_table_add(&holds, "/a.slice/x.service", "x.service", 0, 0), 0);
        h = &holds.items[0];
        for (size_t i = 0; i < UNIT_DROPINS; i++)
                h->original_dropins[i] = (XattrValue) { .state = 0 };
        assert_int_equal(xattr_value_copy(&(XattrValue) { .state = 1, .value = (char *) admin, .size = strlen(admin) },
                                          &h->original_dropins[unit_dropin_slot(0, DROPIN_MEMORY_LOW)]),
                         0);
        assert_int_equal(state_serialize_full(NULL, 0, &holds, NULL, &text), 0);
        assert_non_null(strstr(text, "\"original_control_memory_min\":false"));
        assert_non_null(strstr(text, "\"original_transient_oomd_preference\":false"));
        assert_int_equal(parse_holds_only(text, &back), 0);
        h = hold_table_get(&back, "/a.slice/x.service");
        for (size_t i = 0; i < UNIT_DROPINS; i++)
                assert_true(xattr_value_equal(&h->original_dropins[i], &holds.items[0].original_dropins[i]));
        assert_int_equal(h->original_dropins[unit_dropin_slot(0, DROPIN_MEMORY_LOW)].size, strlen(admin));

        assert_int_equal(parse_holds_only("{\"version\":2,\"protections\":[],\"holds\":[{\"cgroup\":\"/a.slice\","
                                          "\"unit\":\"a.slice\",\"original_min\":5,\"original_low\":0}]}",
                                          &old),
                         0);
        h = hold_table_get(&old, "/a.slice");
        assert_non_null(h);
        for (size_t i = 0; i < UNIT_DROPINS; i++)
                assert_int_equal(h->original_dropins[i].state, -1); /* not recorded: left alone */
}

static void test_hold_with_bad_original_oomd_avoid_is_skipped(void **state) {
        const char *text = "{\"version\":2,\"protections\":[],\"holds\":["
                           "{\"cgroup\":\"/ok.slice\",\"original_min\":0,\"original_low\":0,\"original_oomd_avoid\":\"31\"},"
                           "{\"cgroup\":\"/odd.slice\",\"original_min\":0,\"original_low\":0,\"original_oomd_avoid\":\"313\"},"
                           "{\"cgroup\":\"/nothex.slice\",\"original_min\":0,\"original_low\":0,\"original_oomd_avoid\":\"zz\"},"
                           "{\"cgroup\":\"/upper.slice\",\"original_min\":0,\"original_low\":0,\"original_oomd_avoid\":\"FF\"},"
                           "{\"cgroup\":\"/true.slice\",\"original_min\":0,\"original_low\":0,\"original_oomd_avoid\":true},"
                           "{\"cgroup\":\"/num.slice\",\"original_min\":0,\"original_low\":0,\"original_oomd_avoid\":1}]}";
        _cleanup_(hold_table_done) HoldTable holds = {};

        assert_int_equal(parse_holds_only(text, &holds), 5);
        assert_int_equal(holds.n, 1);
        assert_int_equal(holds.items[0].original_avoid.state, 1);
        assert_string_equal(holds.items[0].original_avoid.value, "1");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip_keeps_every_field_of_full_records_with_members),
                cmocka_unit_test(test_round_trip_keeps_null_strings_as_json_null),
                cmocka_unit_test(test_round_trip_keeps_huge_uint64_values),
                cmocka_unit_test(test_round_trip_keeps_comm_of_15_chars),
                cmocka_unit_test(test_serialize_stops_at_16_bytes_of_unterminated_comm),
                cmocka_unit_test(test_parse_truncates_long_comm_to_15_bytes),
                cmocka_unit_test(test_serialize_writes_version_2_and_no_runtime_fields),
                cmocka_unit_test(test_serialize_of_no_records_parses_back_empty),
                cmocka_unit_test(test_parse_ignores_unknown_keys_at_every_level),
                cmocka_unit_test(test_parse_fills_missing_optional_keys_with_defaults),
                cmocka_unit_test(test_parse_without_protections_key_is_empty),
                cmocka_unit_test(test_parse_rejects_text_that_is_not_json),
                cmocka_unit_test(test_parse_rejects_truncated_json),
                cmocka_unit_test(test_parse_rejects_empty_text),
                cmocka_unit_test(test_parse_rejects_top_level_that_is_not_an_object),
                cmocka_unit_test(test_parse_rejects_trailing_garbage),
                cmocka_unit_test(test_parse_rejects_missing_or_non_integer_version),
                cmocka_unit_test(test_parse_rejects_version_written_by_a_newer_daemon),
                cmocka_unit_test(test_parse_rejects_version_below_1),
                cmocka_unit_test(test_parse_rejects_protections_that_is_not_an_array),
                cmocka_unit_test(test_parse_skips_each_bad_record_and_loads_the_good_ones),
                cmocka_unit_test(test_parse_counts_every_skipped_record),
                cmocka_unit_test(test_parse_keeps_the_first_of_duplicate_pids),
                cmocka_unit_test(test_version_2_fields_round_trip),
                cmocka_unit_test(test_every_state_round_trips),
                cmocka_unit_test(test_version_1_file_loads_as_moved_and_active),
                cmocka_unit_test(test_holds_round_trip),
                cmocka_unit_test(test_hold_original_oomd_avoid_round_trips_exactly),
                cmocka_unit_test(test_hold_with_bad_original_oomd_avoid_is_skipped),
                cmocka_unit_test(test_hold_original_dropins_round_trip_and_old_records_load_without_them),
                cmocka_unit_test(test_bad_hold_is_skipped_and_counted),
                DIR_TEST(test_load_of_missing_file_is_empty_state),
                DIR_TEST(test_load_moves_aside_garbage),
                DIR_TEST(test_load_moves_aside_truncated_json),
                DIR_TEST(test_load_moves_aside_empty_file),
                DIR_TEST(test_load_moves_aside_json_array),
                DIR_TEST(test_load_moves_aside_binary_bytes),
                DIR_TEST(test_load_moves_aside_binary_bytes_without_nul),
                DIR_TEST(test_load_moves_aside_trailing_garbage),
                DIR_TEST(test_load_moves_aside_json_with_nul_then_garbage),
                DIR_TEST(test_load_moves_aside_version_99),
                DIR_TEST(test_load_moves_aside_file_over_64_mib),
                DIR_TEST(test_load_never_overwrites_an_earlier_corrupt_copy),
                DIR_TEST(test_load_returns_io_errors_other_than_enoent),
                DIR_TEST(test_load_returns_good_records_and_counts_bad_ones),
                DIR_TEST(test_save_then_load_round_trips),
                DIR_TEST(test_save_is_atomic_leaves_no_temp_files_and_mode_0600),
                DIR_TEST(test_save_of_empty_state_loads_empty),
                DIR_TEST(test_journal_commit_appends_one_line_per_change_whatever_the_number_of_records),
                DIR_TEST(test_journal_del_ends_a_record_and_nothing_staged_writes_nothing),
                DIR_TEST(test_journal_batch_of_dels_is_one_append),
                DIR_TEST(test_journal_torn_last_line_is_dropped_without_counting),
                cmocka_unit_test(test_journal_garbage_lines_are_skipped_and_counted_the_rest_applied),
                cmocka_unit_test(test_journal_lines_after_a_document_without_journal_key_are_corruption),
                DIR_TEST(test_journal_migrates_a_version_2_file_of_an_older_daemon),
                DIR_TEST(test_journal_holds_are_appended_when_they_change_and_not_when_released),
                DIR_TEST(test_journal_hold_gets_a_line_when_its_oomd_avoid_original_is_recorded),
                DIR_TEST(test_journal_is_rewritten_whole_once_it_outgrows_the_document),
                DIR_TEST(test_journal_failed_append_is_cut_back_and_changes_nothing),
                DIR_TEST(test_journal_rewrite_killed_at_each_step_loses_no_confirmed_change),
                cmocka_unit_test(test_units_round_trip_through_the_document_and_no_key_without_units),
                DIR_TEST(test_journal_unit_lines_put_change_and_end_a_unit_and_a_rewrite_keeps_them),
                cmocka_unit_test(test_journal_unit_lines_apply_in_order_over_the_document_and_bad_ones_are_counted),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
