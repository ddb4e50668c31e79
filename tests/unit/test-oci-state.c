/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "oci-state.h"

/* ---- real-world shapes ---- */

/* `crun state` / what crun 1.8 writes to a hook's stdin: yajl's pretty print, its own extra keys. */
static const char crun_state[] =
        "{\n"
        "  \"ociVersion\" : \"1.0.0\",\n"
        "  \"id\" : \"web\",\n"
        "  \"pid\" : 4242,\n"
        "  \"status\" : \"creating\",\n"
        "  \"bundle\" : \"/var/lib/oci/web\",\n"
        "  \"rootfs\" : \"/var/lib/oci/web/rootfs\",\n"
        "  \"created\" : \"2026-12-01T13:00:00.123456789Z\",\n"
        "  \"systemd-scope\" : \"crun-web.scope\",\n"
        "  \"owner\" : \"root\",\n"
        "  \"annotations\" : {\n"
        "    \"org.oomprotect.protect\" : \"true\",\n"
        "    \"org.oomprotect.memory-min\" : \"64M\",\n"
        "    \"run.oci.systemd.subgroup\" : \"container\"\n"
        "  }\n"
        "}\n";

/* runc's specs.State, compact, as Go's encoding/json writes it. */
static const char runc_state[] =
        "{\"ociVersion\":\"1.0.2-dev\",\"id\":\"redis\",\"status\":\"created\",\"pid\":31337,"
        "\"bundle\":\"/containers/redis\",\"annotations\":{\"org.oomprotect.protect\":\"true\","
        "\"org.oomprotect.oom-score-adj\":\"-900\"}}";

/* What podman (libpod) hands a poststop hook: the container is gone, so no pid (omitempty). */
static const char podman_poststop_state[] =
        "{\"ociVersion\":\"1.0.2-dev\",\"id\":\"0f5e4cbbd2d4a6f6c0a0b1b7c1d9e6a4b8f3c2e1d0a9b8c7d6e5f4a3b2c1d0e9\","
        "\"status\":\"stopped\",\"bundle\":\"/var/lib/containers/storage/overlay-containers/"
        "0f5e4cbbd2d4a6f6c0a0b1b7c1d9e6a4b8f3c2e1d0a9b8c7d6e5f4a3b2c1d0e9/userdata\","
        "\"annotations\":{\"io.container.manager\":\"libpod\",\"io.podman.annotations.autoremove\":\"FALSE\","
        "\"org.opencontainers.image.stopSignal\":\"15\",\"org.oomprotect.protect\":\"true\"}}";

static void test_oci_state_parses_crun_shape(void **state) {
        OciState s = {};
        OpError err = {};

        assert_int_equal(oci_state_parse(crun_state, &s, &err), 0);
        assert_string_equal(s.oci_version, "1.0.0");
        assert_string_equal(s.id, "web");
        assert_string_equal(s.status, "creating");
        assert_int_equal(s.pid, 4242);
        assert_string_equal(s.bundle, "/var/lib/oci/web");
        /* Only ours are kept: run.oci.* is crun's business. */
        assert_int_equal(s.annotations.n, 2);
        assert_string_equal(oci_annotations_get(&s.annotations, OCI_ANNOTATION_PROTECT), "true");
        assert_string_equal(oci_annotations_get(&s.annotations, OCI_ANNOTATION_MEMORY_MIN), "64M");
        assert_null(oci_annotations_get(&s.annotations, "run.oci.systemd.subgroup"));
        oci_state_done(&s);
}

static void test_oci_state_parses_runc_shape(void **state) {
        OciState s = {};
        OciSettings set = {};

        assert_int_equal(oci_state_parse(runc_state, &s, NULL), 0);
        assert_string_equal(s.id, "redis");
        assert_int_equal(s.pid, 31337);
        assert_int_equal(oci_settings_from_annotations(&s.annotations, 0, &set, NULL), 0);
        assert_true(set.protect);
        assert_true(set.has_adj);
        assert_int_equal(set.adj, -900);
        assert_false(set.has_memory_min);
        oci_state_done(&s);
}

static void test_oci_state_poststop_without_pid_is_pid_0(void **state) {
        OciState s = {};

        assert_int_equal(oci_state_parse(podman_poststop_state, &s, NULL), 0);
        assert_int_equal(s.pid, 0);
        assert_string_equal(s.status, "stopped");
        assert_int_equal(strlen(s.id), 64);
        assert_int_equal(s.annotations.n, 1);
        oci_state_done(&s);
}

static void test_oci_state_without_bundle_or_annotations(void **state) {
        OciState s = {};

        assert_int_equal(oci_state_parse("{\"ociVersion\":\"1.0.0\",\"id\":\"a\",\"status\":\"running\",\"pid\":7,"
                                         "\"bundle\":null}",
                                         &s, NULL),
                         0);
        assert_null(s.bundle);
        assert_int_equal(s.annotations.n, 0);
        oci_state_done(&s);
}

/* ---- broken state documents: each refused with its own sentence, outputs untouched ---- */

static void assert_state_refused(const char *text, const char *expect) {
        OciState s = { .pid = 99 };
        OpError err = {};

        assert_int_equal(oci_state_parse(text, &s, &err), -EBADMSG);
        assert_int_equal(err.code, -EBADMSG);
        if (!strstr(err.message, expect))
                fail_msg("\"%s\": message \"%s\" does not say \"%s\"", text, err.message, expect);
        assert_int_equal(s.pid, 99);
        assert_null(s.id);
}

#define GOOD_HEAD "{\"ociVersion\":\"1.0.0\",\"id\":\"c\",\"status\":\"created\""

static void test_oci_state_refuses_empty_input(void **state) {
        assert_state_refused("", "is empty");
        assert_state_refused(" \n\t", "is empty");
}

static void test_oci_state_refuses_bad_json(void **state) {
        assert_state_refused("not json", "not valid JSON");
        assert_state_refused("{\"id\": 'c'}", "not valid JSON");
        assert_state_refused("{\"id\":\"c\",}", "not valid JSON");
        assert_state_refused(GOOD_HEAD ",\"pid\":1", "truncated");
        assert_state_refused(GOOD_HEAD ",\"pid\":1}{}", "trailing data");
        assert_state_refused(GOOD_HEAD ",\"pid\":1} x", "trailing data");
}

static void test_oci_state_refuses_non_object(void **state) {
        assert_state_refused("[1,2]", "not a JSON object");
        assert_state_refused("null", "not a JSON object");
        assert_state_refused("42", "not a JSON object");
        assert_state_refused("\"state\"", "not a JSON object");
}

static void test_oci_state_refuses_missing_or_bad_required_fields(void **state) {
        assert_state_refused("{\"id\":\"c\",\"status\":\"created\"}", "no \"ociVersion\"");
        assert_state_refused("{\"ociVersion\":\"1.0.0\",\"status\":\"created\"}", "no \"id\"");
        assert_state_refused("{\"ociVersion\":\"1.0.0\",\"id\":\"\",\"status\":\"created\"}", "empty \"id\"");
        assert_state_refused("{\"ociVersion\":\"1.0.0\",\"id\":7,\"status\":\"created\"}", "\"id\" is not a string");
        assert_state_refused("{\"ociVersion\":\"1.0.0\",\"id\":\"c\"}", "no \"status\"");
        assert_state_refused("{\"ociVersion\":1,\"id\":\"c\",\"status\":\"created\"}", "\"ociVersion\" is not");
}

static void test_oci_state_refuses_bad_id(void **state) {
        char text[600];
        char id[OCI_ID_MAX + 2];

        memset(id, 'a', sizeof(id) - 1);
        id[sizeof(id) - 1] = '\0';
        snprintf(text, sizeof(text), "{\"ociVersion\":\"1.0.0\",\"id\":\"%s\",\"status\":\"created\"}", id);
        assert_state_refused(text, "longer than 255 bytes");
        assert_state_refused("{\"ociVersion\":\"1.0.0\",\"id\":\"a\\nb\",\"status\":\"created\"}", "control character");
        assert_state_refused("{\"ociVersion\":\"1.0.0\",\"id\":\"a\\u0000b\",\"status\":\"created\"}", "NUL byte");
}

static void test_oci_state_refuses_bad_pid(void **state) {
        assert_state_refused(GOOD_HEAD ",\"pid\":\"42\"}", "\"pid\" is not an integer");
        assert_state_refused(GOOD_HEAD ",\"pid\":4.5}", "\"pid\" is not an integer");
        assert_state_refused(GOOD_HEAD ",\"pid\":true}", "\"pid\" is not an integer");
        assert_state_refused(GOOD_HEAD ",\"pid\":-1}", "pid -1 is out of range");
        assert_state_refused(GOOD_HEAD ",\"pid\":4194305}", "out of range");
        assert_state_refused(GOOD_HEAD ",\"pid\":18446744073709551615}", "out of range");
}

static void test_oci_state_refuses_bad_bundle_and_annotations(void **state) {
        assert_state_refused(GOOD_HEAD ",\"bundle\":\"relative/dir\"}", "not an absolute path");
        assert_state_refused(GOOD_HEAD ",\"bundle\":[]}", "\"bundle\" is not a string");
        assert_state_refused(GOOD_HEAD ",\"annotations\":[\"a\"]}", "\"annotations\" is not an object");
        assert_state_refused(GOOD_HEAD ",\"annotations\":{\"org.oomprotect.protect\":true}}",
                             "annotation \"org.oomprotect.protect\" is not a string");
        /* Someone else's annotation of the wrong type is still a broken document. */
        assert_state_refused(GOOD_HEAD ",\"annotations\":{\"x\":1}}", "annotation \"x\" is not a string");
}

/* ---- config.json ---- */

static void test_oci_config_reads_annotations(void **state) {
        static const char config[] = "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"]},"
                                     "\"root\":{\"path\":\"rootfs\"},\"annotations\":{"
                                     "\"org.oomprotect.protect\":\"yes\",\"com.example\":\"x\"}}";
        OciAnnotations a = {};

        assert_int_equal(oci_config_parse_annotations(config, &a, NULL), 0);
        assert_int_equal(a.n, 1);
        assert_string_equal(oci_annotations_get(&a, OCI_ANNOTATION_PROTECT), "yes");
        oci_annotations_done(&a);
        assert_int_equal(oci_config_parse_annotations("{\"ociVersion\":\"1.0.2\"}", &a, NULL), 0);
        assert_int_equal(a.n, 0);
}

static void test_oci_config_refuses_bad_documents(void **state) {
        OciAnnotations a = {};
        OpError err = {};

        assert_int_equal(oci_config_parse_annotations("{\"annotations\":", &a, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "config.json is truncated"));
        err = (OpError) {};
        assert_int_equal(oci_config_parse_annotations("{\"annotations\":\"x\"}", &a, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "config.json: \"annotations\" is not an object"));
        assert_int_equal(a.n, 0);
}

static void test_oci_annotations_merge_keeps_the_states_own(void **state) {
        OciAnnotations st = {}, cfg = {};

        assert_int_equal(oci_config_parse_annotations("{\"annotations\":{\"org.oomprotect.protect\":\"true\"}}",
                                                      &st, NULL),
                         0);
        assert_int_equal(oci_config_parse_annotations("{\"annotations\":{\"org.oomprotect.protect\":\"false\","
                                                      "\"org.oomprotect.memory-min\":\"1G\"}}",
                                                      &cfg, NULL),
                         0);
        assert_int_equal(oci_annotations_merge(&st, &cfg), 0);
        assert_int_equal(st.n, 2);
        assert_string_equal(oci_annotations_get(&st, OCI_ANNOTATION_PROTECT), "true");
        assert_string_equal(oci_annotations_get(&st, OCI_ANNOTATION_MEMORY_MIN), "1G");
        oci_annotations_done(&st);
        oci_annotations_done(&cfg);
}

/* ---- settings from annotations ---- */

static int settings_of(const char *annotations, uint64_t ram, OciSettings *ret, OpError *err) {
        char text[1024];
        OciAnnotations a = {};
        int r;

        snprintf(text, sizeof(text), "{\"annotations\":{%s}}", annotations);
        assert_int_equal(oci_config_parse_annotations(text, &a, NULL), 0);
        r = oci_settings_from_annotations(&a, ram, ret, err);
        oci_annotations_done(&a);
        return r;
}

static void test_oci_settings_without_annotation_is_not_ours(void **state) {
        OciSettings s = { .protect = true };

        assert_int_equal(settings_of("\"com.example\":\"1\"", 0, &s, NULL), 0);
        assert_false(s.protect);
        s.protect = true;
        assert_int_equal(settings_of("\"org.oomprotect.protect\":\"false\",\"org.oomprotect.memory-min\":\"junk\","
                                     "\"org.oomprotect.typo\":\"1\"",
                                     0, &s, NULL),
                         0);
        assert_false(s.protect);
        assert_false(s.has_memory_min);
}

static void test_oci_settings_reads_size_and_adj(void **state) {
        OciSettings s = {};

        assert_int_equal(settings_of("\"org.oomprotect.protect\":\"true\",\"org.oomprotect.memory-min\":\"256M\","
                                     "\"org.oomprotect.oom-score-adj\":\"-1000\"",
                                     0, &s, NULL),
                         0);
        assert_true(s.protect);
        assert_true(s.has_memory_min);
        assert_int_equal(s.memory_min, 256ULL << 20);
        assert_true(s.has_adj);
        assert_int_equal(s.adj, -1000);
        assert_int_equal(settings_of("\"org.oomprotect.protect\":\"on\",\"org.oomprotect.memory-min\":\"10%\"",
                                     1000ULL << 20, &s, NULL),
                         0);
        assert_int_equal(s.memory_min, 100ULL << 20);
        assert_false(s.has_adj);
}

static void assert_settings_refused(const char *annotations, const char *expect) {
        OciSettings s = { .adj = 5 };
        OpError err = {};

        assert_int_equal(settings_of(annotations, 1ULL << 30, &s, &err), -EINVAL);
        if (!strstr(err.message, expect))
                fail_msg("%s: message \"%s\" does not say \"%s\"", annotations, err.message, expect);
        assert_int_equal(s.adj, 5);
}

static void test_oci_settings_refuse_bad_values(void **state) {
        assert_settings_refused("\"org.oomprotect.protect\":\"maybe\"", "protect=\"maybe\" is not true or false");
        assert_settings_refused("\"org.oomprotect.protect\":\"\"", "is not true or false");
        assert_settings_refused("\"org.oomprotect.protect\":\"true\",\"org.oomprotect.memory-min\":\"64X\"",
                                "memory-min=\"64X\" is not a size");
        assert_settings_refused("\"org.oomprotect.protect\":\"true\",\"org.oomprotect.memory-min\":\"-1M\"",
                                "is not a size");
        assert_settings_refused("\"org.oomprotect.protect\":\"true\",\"org.oomprotect.oom-score-adj\":\"-1001\"",
                                "oom-score-adj=\"-1001\" is not an integer from -1000 to 1000");
        assert_settings_refused("\"org.oomprotect.protect\":\"true\",\"org.oomprotect.oom-score-adj\":\"low\"",
                                "is not an integer");
        assert_settings_refused("\"org.oomprotect.protect\":\"true\",\"org.oomprotect.memory-mni\":\"1G\"",
                                "unknown annotation org.oomprotect.memory-mni");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_oci_state_parses_crun_shape),
                cmocka_unit_test(test_oci_state_parses_runc_shape),
                cmocka_unit_test(test_oci_state_poststop_without_pid_is_pid_0),
                cmocka_unit_test(test_oci_state_without_bundle_or_annotations),
                cmocka_unit_test(test_oci_state_refuses_empty_input),
                cmocka_unit_test(test_oci_state_refuses_bad_json),
                cmocka_unit_test(test_oci_state_refuses_non_object),
                cmocka_unit_test(test_oci_state_refuses_missing_or_bad_required_fields),
                cmocka_unit_test(test_oci_state_refuses_bad_id),
                cmocka_unit_test(test_oci_state_refuses_bad_pid),
                cmocka_unit_test(test_oci_state_refuses_bad_bundle_and_annotations),
                cmocka_unit_test(test_oci_config_reads_annotations),
                cmocka_unit_test(test_oci_config_refuses_bad_documents),
                cmocka_unit_test(test_oci_annotations_merge_keeps_the_states_own),
                cmocka_unit_test(test_oci_settings_without_annotation_is_not_ours),
                cmocka_unit_test(test_oci_settings_reads_size_and_adj),
                cmocka_unit_test(test_oci_settings_refuse_bad_values),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
