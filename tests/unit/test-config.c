/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "macro.h"
#include "oomprotect/protocol.h"
#include "parse.h"

static char tmpdir[] = "/tmp/oomprotect-test-config.XXXXXX";

/* ---- helpers ---- */

static char *tpath(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", tmpdir, name) >= 0);
        return p;
}

static char *write_file_len(const char *name, const char *content, size_t len) {
        char *p = tpath(name);
        FILE *f = fopen(p, "we");

        assert_non_null(f);
        assert_int_equal(fwrite(content, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        return p;
}

static char *write_file(const char *name, const char *content) {
        return write_file_len(name, content, strlen(content));
}

static char *make_dir(const char *name) {
        char *p = tpath(name);

        assert_int_equal(mkdir(p, 0755), 0);
        return p;
}

/* Runs config_load() with fd 2 redirected into a memfd; *ret_log gets what was logged. */
static int load_capturing(Config *c, const char *path, bool required, const char *dropins, char **ret_log) {
        int fd, saved, r;
        off_t size;
        char *log;

        fd = memfd_create("stderr", MFD_CLOEXEC);
        assert_true(fd >= 0);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        assert_true(dup2(fd, STDERR_FILENO) >= 0);
        r = config_load(c, path, required, dropins);
        fflush(stderr);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);

        size = lseek(fd, 0, SEEK_END);
        log = calloc(1, (size_t) size + 1);
        assert_non_null(log);
        assert_int_equal(pread(fd, log, (size_t) size, 0), size);
        close(fd);
        *ret_log = log;
        return r;
}

/* Writes content as main.conf and loads it (required, no drop-ins). */
static int load_text(Config *c, const char *content, char **ret_log) {
        _cleanup_free_ char *p = write_file("main.conf", content);

        return load_capturing(c, p, true, NULL, ret_log);
}

/* True if one line of log holds both needles. */
static bool log_has_line(const char *log, const char *a, const char *b) {
        for (const char *l = log; *l;) {
                size_t n = strcspn(l, "\n");
                _cleanup_free_ char *line = strndup(l, n);

                if (strstr(line, a) && strstr(line, b))
                        return true;
                l += n;
                l += *l == '\n';
        }
        return false;
}

static void assert_log_line(const char *log, const char *file, unsigned line, const char *what) {
        _cleanup_free_ char *where = NULL;

        assert_true(asprintf(&where, "%s:%u:", file, line) >= 0);
        if (!log_has_line(log, where, what))
                fail_msg("no log line with \"%s\" and \"%s\" in:\n%s", where, what, log);
}

static void assert_string_equal_or_null(const char *a, const char *b) {
        if (!a || !b)
                assert_ptr_equal(a, b);
        else
                assert_string_equal(a, b);
}

static void assert_config_equal(const Config *a, const Config *b) {
        assert_int_equal(a->backend, b->backend);
        assert_string_equal_or_null(a->cgroup_root, b->cgroup_root);
        assert_string_equal_or_null(a->slice, b->slice);
        assert_string_equal_or_null(a->memory_min_budget, b->memory_min_budget);
        assert_true(a->default_memory_min == b->default_memory_min);
        assert_true(a->default_memory_low == b->default_memory_low);
        assert_int_equal(a->oom_group, b->oom_group);
        assert_int_equal(a->oom_score_adjust, b->oom_score_adjust);
        assert_int_equal(a->managed_oom_preference, b->managed_oom_preference);
        assert_string_equal_or_null(a->allow_group, b->allow_group);
        assert_int_equal(a->max_protected, b->max_protected);
        assert_int_equal(a->max_protected_per_user, b->max_protected_per_user);
        assert_string_equal_or_null(a->memory_min_budget_per_user, b->memory_min_budget_per_user);
        assert_int_equal(a->restore_on_stop, b->restore_on_stop);
        assert_string_equal_or_null(a->state_directory, b->state_directory);
        assert_string_equal_or_null(a->compat_directory, b->compat_directory);
}

static void assert_config_is_default(const Config *c) {
        Config d;

        assert_int_equal(config_init(&d), 0);
        assert_config_equal(c, &d);
        config_done(&d);
}

static uint64_t percent_of_ram(const char *pct) {
        uint64_t v;

        assert_int_equal(parse_size(pct, physical_memory(), &v), 0);
        return v;
}

/* Every key set to a valid value other than its default. */
static const char all_keys_non_default[] =
        "[Manager]\n"
        "Backend=cgroupfs\n"
        "CgroupRoot=/sys/fs/cgroup/unified\n"
        "Slice=test-protected.slice\n"
        "MemoryMinBudget=4G\n"
        "DefaultMemoryMin=64M\n"
        "DefaultMemoryLow=128M\n"
        "OOMGroup=yes\n"
        "OOMScoreAdjust=-17\n"
        "ManagedOOMPreference=avoid\n"
        "AllowGroup=wheel\n"
        "MaxProtected=42\n"
        "RestoreOnStop=true\n"
        "StateDirectory=/var/lib/oomprotect\n"
        "CompatDirectory=/run/okp\n";

/* ---- defaults and valid values ---- */

static void test_config_init_sets_documented_defaults(void **state) {
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(c.backend, BACKEND_AUTO);
        assert_null(c.cgroup_root);
        assert_string_equal(c.slice, "protected.slice");
        assert_string_equal(c.memory_min_budget, "50%");
        assert_true(c.default_memory_min == 0);
        assert_true(c.default_memory_low == 0);
        assert_false(c.oom_group);
        assert_int_equal(c.oom_score_adjust, -1000);
        assert_int_equal(c.managed_oom_preference, MANAGED_OOM_PREFERENCE_OMIT);
        assert_string_equal(c.allow_group, "oomprotect");
        assert_int_equal(c.max_protected, 10000);
        assert_false(c.restore_on_stop);
        assert_string_equal(c.state_directory, "/run/oomprotect");
        assert_string_equal(c.compat_directory, "/run/oom_kill_protection");
        config_done(&c);
        config_done(&c); /* idempotent */
}

static void test_config_every_key_accepts_a_valid_value(void **state) {
        _cleanup_free_ char *log = NULL;
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c, all_keys_non_default, &log), 0);
        assert_string_equal(log, "");
        assert_int_equal(c.backend, BACKEND_CGROUPFS);
        assert_string_equal(c.cgroup_root, "/sys/fs/cgroup/unified");
        assert_string_equal(c.slice, "test-protected.slice");
        assert_string_equal(c.memory_min_budget, "4G");
        assert_true(c.default_memory_min == 64ULL << 20);
        assert_true(c.default_memory_low == 128ULL << 20);
        assert_true(c.oom_group);
        assert_int_equal(c.oom_score_adjust, -17);
        assert_int_equal(c.managed_oom_preference, MANAGED_OOM_PREFERENCE_AVOID);
        assert_string_equal(c.allow_group, "wheel");
        assert_int_equal(c.max_protected, 42);
        assert_true(c.restore_on_stop);
        assert_string_equal(c.state_directory, "/var/lib/oomprotect");
        assert_string_equal(c.compat_directory, "/run/okp");
        config_done(&c);
}

static void test_config_accepts_the_edges_of_every_range(void **state) {
        static const struct {
                const char *key, *value;
        } good[] = {
                { "Backend", "auto" },        { "Backend", "systemd" },
                { "Backend", "adj-only" },    { "OOMScoreAdjust", "-1000" },
                { "OOMScoreAdjust", "1000" }, { "OOMScoreAdjust", "+0" },
                { "MaxProtected", "1" },      { "MaxProtected", "1000000" },
                { "OOMGroup", "off" },        { "RestoreOnStop", "1" },
                { "DefaultMemoryMin", "0" },  { "DefaultMemoryLow", "1T" },
                { "DefaultMemoryMin", "100%" }, { "DefaultMemoryLow", "2.5%" },
                { "MemoryMinBudget", "infinity" }, { "MemoryMinBudget", "0" },
                { "MemoryMinBudget", "100%" }, { "MemoryMinBudget", "512KiB" },
                { "ManagedOOMPreference", "none" }, { "ManagedOOMPreference", "omit" },
                { "Slice", "a.slice" },       { "Slice", "a-b-c.slice" },
                { "Slice", "A:b_c.d.slice" }, { "AllowGroup", "_grp" },
                { "AllowGroup", "machine$" }, { "AllowGroup", "abcdefghijklmnopqrstuvwxyz012345" },
                { "CgroupRoot", "/" },        { "StateDirectory", "/a" },
        };
        Config c;

        assert_int_equal(config_init(&c), 0);
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                if (config_set(&c, good[i].key, good[i].value, "test", (unsigned) i) != 0)
                        fail_msg("%s=%s was refused", good[i].key, good[i].value);
        config_done(&c);
}

static void test_config_percent_sizes_resolve_against_physical_memory(void **state) {
        _cleanup_free_ char *log = NULL;
        Config c;

        assert_true(physical_memory() > 0);
        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c, "[Manager]\nDefaultMemoryMin=10%\nDefaultMemoryLow=2.5%\n", &log), 0);
        assert_true(c.default_memory_min == percent_of_ram("10%"));
        assert_true(c.default_memory_low == percent_of_ram("2.5%"));
        assert_true(c.default_memory_min > 0);
        config_done(&c);
}

static void test_config_paths_are_normalized(void **state) {
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(config_set(&c, "StateDirectory", "/run//oomprotect/./x/", "t", 1), 0);
        assert_string_equal(c.state_directory, "/run/oomprotect/x");
        assert_int_equal(config_set(&c, "CompatDirectory", "/run/okp///", "t", 2), 0);
        assert_string_equal(c.compat_directory, "/run/okp");
        assert_int_equal(config_set(&c, "CgroupRoot", "//sys/fs/cgroup/", "t", 3), 0);
        assert_string_equal(c.cgroup_root, "/sys/fs/cgroup");
        assert_int_equal(config_set(&c, "CgroupRoot", "/sys/fs/cgroup/..hidden", "t", 4), 0);
        assert_string_equal(c.cgroup_root, "/sys/fs/cgroup/..hidden");
        config_done(&c);
}

static void test_config_indented_crlf_and_bom_lines_are_read(void **state) {
        _cleanup_free_ char *log = NULL;
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c,
                                   "\xEF\xBB\xBF[Manager]\r\n"
                                   "  OOMGroup = yes\r\n"
                                   "\tMaxProtected=7 ; inline comment\r\n"
                                   "        Slice=indented.slice\r\n",
                                   &log),
                         0);
        assert_string_equal(log, "");
        assert_true(c.oom_group);
        assert_int_equal(c.max_protected, 7);
        assert_string_equal(c.slice, "indented.slice");
        config_done(&c);
}

/* ---- empty values ---- */

static void test_config_empty_value_resets_string_keys_to_default(void **state) {
        _cleanup_free_ char *log = NULL;
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c,
                                   "[Manager]\n"
                                   "Slice=other.slice\nStateDirectory=/x\nCompatDirectory=/y\nCgroupRoot=/z\n"
                                   "Slice=\nStateDirectory=\nCompatDirectory=\nCgroupRoot=\n",
                                   &log),
                         0);
        assert_string_equal(log, "");
        assert_config_is_default(&c);
        config_done(&c);
}

static void test_config_empty_allow_group_means_nobody_but_root(void **state) {
        _cleanup_free_ char *log = NULL;
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c, "[Manager]\nAllowGroup=\n", &log), 0);
        assert_null(c.allow_group);
        config_done(&c);
}

/* ---- invalid values ---- */

static void test_config_bad_oom_score_adjust_keeps_default_and_warns(void **state) {
        _cleanup_free_ char *log = NULL, *p = tpath("main.conf");
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c, "[Manager]\nOOMScoreAdjust=1001\n", &log), 1);
        assert_int_equal(c.oom_score_adjust, -1000);
        assert_log_line(log, p, 2, "OOMScoreAdjust");
        assert_log_line(log, p, 2, "out of range");
        config_done(&c);
}

static const struct {
        const char *key;
        const char *good; /* a non-default value set first, which the bad ones must not change */
        const char *bad[16];
} bad_values[] = {
        { "Backend", "systemd", { "", "Auto", "systemd2", "cgroup fs", "auto x", "0", "adj_only" } },
        { "CgroupRoot", "/sys/fs/cgroup", { "sys/fs/cgroup", "relative", "/sys/../etc", "/a/..", "..", "./x" } },
        { "Slice", "x.slice",
          { "protected", "protected.service", "-.slice", ".slice", "-a.slice", "a-.slice", "a--b.slice",
            "a b.slice", "a/b.slice", "a@b.slice", "\xc3\xa4.slice", "protected.slice.x", "a\\x2d.slice" } },
        { "MemoryMinBudget", "1G",
          { "", "-1", "-50%", "101%", "50%%", "4Q", "4G junk", "99999999999999999999", "16777216T", "infinite",
            "Infinity", "1.5", "0x10", " " } },
        { "DefaultMemoryMin", "1M",
          { "", "-1", "-1G", "100.1%", "99999999999999999999", "infinity", "10 M", "1.5", "1G1", "abc" } },
        { "DefaultMemoryLow", "1M", { "", "-1", "200%", "17179869184G", "garbage", "1KB2" } },
        { "OOMGroup", "yes", { "", "2", "maybe", "yes please", "-1", "yess" } },
        { "OOMScoreAdjust", "5",
          { "", "-1001", "1001", "99999999999999999999", "-99999999999999999999", "-1000x", "abc", "1e3",
            "0x10", "--1", "1 0" } },
        { "ManagedOOMPreference", "none", { "", "Omit", "kill", "omit,avoid", "omit x" } },
        { "AllowGroup", "wheel",
          { "Wheel", "1group", "gr oup", "a$b", "abcdefghijklmnopqrstuvwxyz0123456", "grp!", "-grp", "$" } },
        { "MaxProtected", "3", { "", "0", "-1", "1000001", "99999999999999999999", "10k", "ten", "4294967297" } },
        { "MaxProtectedPerUser", "3", { "", "0", "-1", "1000001", "ten" } },
        { "MemoryMinBudgetPerUser", "1G", { "", "lots", "-1", "101%" } },
        { "RestoreOnStop", "yes", { "", "2", "nope", "true false" } },
        { "StateDirectory", "/var/lib/x", { "run/x", "/run/../etc", "/", "//", "/./", "/run/x/..", "~/x" } },
        { "CompatDirectory", "/run/y", { "run/y", "/run/y/../../etc", "/", "x" } },
};

/* key=good first, then a file with key=bad on line 3: one warning naming file:3 and key, nothing changed. */
static void assert_bad_value_is_refused(const char *key, const char *good, const char *bad) {
        _cleanup_free_ char *text = NULL, *log = NULL, *p = tpath("main.conf");
        Config c, before;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(config_init(&before), 0);
        assert_int_equal(config_set(&c, key, good, "t", 1), 0);
        assert_int_equal(config_set(&before, key, good, "t", 1), 0);
        assert_true(asprintf(&text, "[Manager]\n# line 2\n%s=%s\n", key, bad) >= 0);
        if (load_text(&c, text, &log) != 1)
                fail_msg("%s=%s: expected exactly one warning, log:\n%s", key, bad, log);
        assert_config_equal(&c, &before);
        assert_log_line(log, p, 3, key);
        config_done(&c);
        config_done(&before);
}

static void test_config_every_key_rejects_bad_values_keeps_previous_and_warns(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(bad_values); i++)
                for (size_t j = 0; bad_values[i].bad[j]; j++)
                        assert_bad_value_is_refused(bad_values[i].key, bad_values[i].good, bad_values[i].bad[j]);
}

static void test_config_set_returns_negative_errno_and_keeps_value(void **state) {
        _cleanup_free_ char *long_path = malloc(PATH_MAX + 2);
        Config c;

        assert_int_equal(config_init(&c), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad_values); i++)
                for (size_t j = 0; bad_values[i].bad[j]; j++)
                        assert_true(config_set(&c, bad_values[i].key, bad_values[i].bad[j], "t", 1) < 0);
        assert_config_is_default(&c);

        assert_int_equal(config_set(&c, "OOMScoreAdjust", "5000", "t", 1), -ERANGE);
        assert_int_equal(config_set(&c, "OOMScoreAdjust", "x", "t", 1), -EINVAL);
        assert_int_equal(config_set(&c, "NoSuchKey", "1", "t", 1), -ENOENT);
        assert_int_equal(config_set(&c, "oomscoreadjust", "1", "t", 1), -ENOENT); /* keys are case-sensitive */
        assert_int_equal(config_set(&c, "OOMScoreAdjust", NULL, NULL, 0), -EINVAL);

        long_path[0] = '/';
        memset(long_path + 1, 'a', PATH_MAX);
        long_path[PATH_MAX + 1] = '\0';
        assert_int_equal(config_set(&c, "CgroupRoot", long_path, "t", 1), -ENAMETOOLONG);
        assert_config_is_default(&c);
        config_done(&c);
}

static void test_config_bad_value_after_good_one_keeps_the_good_one(void **state) {
        _cleanup_free_ char *log = NULL;
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c, "[Manager]\nOOMScoreAdjust=-500\nOOMScoreAdjust=2000\n", &log), 1);
        assert_int_equal(c.oom_score_adjust, -500);
        config_done(&c);
}

/* ---- structure: keys, sections, syntax ---- */

static void test_config_unknown_key_warns_with_file_line_and_key(void **state) {
        _cleanup_free_ char *log = NULL, *p = tpath("main.conf");
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c, "[Manager]\nOOMGroup=yes\nMemoryMax=1G\noomgroup=no\n", &log), 2);
        assert_true(c.oom_group);
        assert_log_line(log, p, 3, "MemoryMax");
        assert_log_line(log, p, 4, "oomgroup");
        config_done(&c);
}

static void test_config_unknown_section_warns_once_and_ignores_its_keys(void **state) {
        _cleanup_free_ char *log = NULL, *p = tpath("main.conf");
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c,
                                   "[Manager]\nMaxProtected=5\n[Service]\nMaxProtected=6\nOOMGroup=yes\n"
                                   "[Manager]\nRestoreOnStop=yes\n",
                                   &log),
                         1);
        assert_int_equal(c.max_protected, 5);
        assert_false(c.oom_group);
        assert_true(c.restore_on_stop);
        assert_log_line(log, p, 3, "Service");
        assert_null(strstr(log, ":4:"));
        config_done(&c);
}

static void test_config_key_outside_manager_section_warns(void **state) {
        _cleanup_free_ char *log = NULL, *p = tpath("main.conf");
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c, "OOMGroup=yes\n[Manager]\nMaxProtected=9\n", &log), 1);
        assert_false(c.oom_group);
        assert_int_equal(c.max_protected, 9);
        assert_log_line(log, p, 1, "OOMGroup");
        config_done(&c);
}

static void test_config_syntax_error_line_warns_and_parsing_continues(void **state) {
        _cleanup_free_ char *log = NULL, *p = tpath("main.conf");
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c, "[Manager\nthis is not ini\n[Manager]\nOOMGroup\nMaxProtected=8\n", &log), 3);
        assert_int_equal(c.max_protected, 8);
        assert_log_line(log, p, 1, "Syntax error");
        assert_log_line(log, p, 2, "Syntax error");
        assert_log_line(log, p, 4, "OOMGroup");
        config_done(&c);
}

static void test_config_overlong_line_warns_and_is_skipped_whole(void **state) {
        _cleanup_free_ char *log = NULL, *text = NULL, *p = tpath("main.conf");
        char longdir[400];
        Config c;

        longdir[0] = '/';
        memset(longdir + 1, 'a', sizeof(longdir) - 2);
        longdir[sizeof(longdir) - 1] = '\0';
        assert_true(asprintf(&text, "[Manager]\nStateDirectory=%s\nOOMGroup=yes\n", longdir) >= 0);
        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c, text, &log), 1);
        assert_string_equal(c.state_directory, OOMPROTECT_STATE_DIRECTORY);
        assert_true(c.oom_group);
        assert_log_line(log, p, 2, "longer than");
        config_done(&c);
}

static void test_config_line_with_nul_byte_warns_and_is_skipped(void **state) {
        static const char text[] = "[Manager]\nOOMGroup=y\0es\nMaxProtected=7\n";
        _cleanup_free_ char *log = NULL, *p = write_file_len("main.conf", text, sizeof(text) - 1);
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_capturing(&c, p, true, NULL, &log), 1);
        assert_false(c.oom_group);
        assert_int_equal(c.max_protected, 7);
        assert_log_line(log, p, 2, "NUL");
        config_done(&c);
}

static void test_config_warning_line_numbers_match_the_file(void **state) {
        _cleanup_free_ char *log = NULL, *p = tpath("main.conf");
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_text(&c,
                                   "# comment\n"                 /* 1 */
                                   "\n"                          /* 2 */
                                   "[Manager]\n"                 /* 3 */
                                   "OOMScoreAdjust=-500\n"       /* 4 */
                                   "; another comment\n"         /* 5 */
                                   "Bogus=1\n"                   /* 6 */
                                   "\n"                          /* 7 */
                                   "MaxProtected=0\n"            /* 8 */
                                   "[Other]\n"                   /* 9 */
                                   "Foo=bar\n"                   /* 10 */
                                   "[Manager]\n"                 /* 11 */
                                   "this is not ini\n"           /* 12 */
                                   "  Slice=indented.slice\n"    /* 13 */
                                   "OOMGroup=maybe\n",           /* 14 */
                                   &log),
                         5);
        assert_int_equal(c.oom_score_adjust, -500);
        assert_string_equal(c.slice, "indented.slice");
        assert_log_line(log, p, 6, "Bogus");
        assert_log_line(log, p, 8, "MaxProtected");
        assert_log_line(log, p, 9, "Other");
        assert_log_line(log, p, 12, "this is not ini");
        assert_log_line(log, p, 14, "OOMGroup");
        config_done(&c);
}

/* ---- files and drop-ins ---- */

static void test_config_missing_optional_file_gives_defaults_without_warnings(void **state) {
        _cleanup_free_ char *log = NULL, *p = tpath("does-not-exist.conf");
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_capturing(&c, p, false, NULL, &log), 0);
        assert_string_equal(log, "");
        assert_config_is_default(&c);
        config_done(&c);
}

static void test_config_missing_required_file_returns_enoent_and_changes_nothing(void **state) {
        _cleanup_free_ char *log = NULL, *p = tpath("does-not-exist.conf");
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(config_set(&c, "MaxProtected", "11", "t", 1), 0);
        assert_int_equal(load_capturing(&c, p, true, NULL, &log), -ENOENT);
        assert_int_equal(c.max_protected, 11);
        config_done(&c);
}

static void test_config_missing_main_file_still_reads_dropins(void **state) {
        _cleanup_free_ char *log = NULL, *p = tpath("does-not-exist.conf");
        _cleanup_free_ char *d = make_dir("dropins-only"), *f = NULL;
        Config c;

        f = write_file("dropins-only/10-a.conf", "[Manager]\nOOMScoreAdjust=-3\n");
        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_capturing(&c, p, false, d, &log), 0);
        assert_int_equal(c.oom_score_adjust, -3);
        config_done(&c);
}

static void test_config_main_path_that_is_a_directory_is_an_error(void **state) {
        _cleanup_free_ char *log = NULL, *d = make_dir("main-is-dir");
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_capturing(&c, d, false, NULL, &log), -EISDIR);
        assert_config_is_default(&c);
        config_done(&c);
}

static void test_config_dropins_override_in_lexical_order(void **state) {
        _cleanup_free_ char *log = NULL, *main_path = NULL, *d = make_dir("order.d");
        Config c;

        main_path = write_file("order.conf", "[Manager]\nOOMScoreAdjust=-1\nSlice=main.slice\nMaxProtected=2\n");
        free(write_file("order.d/20-b.conf", "[Manager]\nOOMScoreAdjust=-20\n"));
        free(write_file("order.d/10-a.conf", "[Manager]\nOOMScoreAdjust=-10\nMaxProtected=5\n"));
        free(write_file("order.d/9-z.conf", "[Manager]\nOOMScoreAdjust=-9\nRestoreOnStop=yes\n"));
        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_capturing(&c, main_path, true, d, &log), 0);
        assert_int_equal(c.oom_score_adjust, -9); /* "9-z.conf" sorts after "20-b.conf" */
        assert_int_equal(c.max_protected, 5);
        assert_true(c.restore_on_stop);
        assert_string_equal(c.slice, "main.slice");
        config_done(&c);
}

static void test_config_dropins_ignore_non_conf_and_hidden_files(void **state) {
        _cleanup_free_ char *log = NULL, *d = make_dir("ignore.d");
        Config c;

        free(write_file("ignore.d/10-a.conf", "[Manager]\nOOMScoreAdjust=-10\n"));
        free(write_file("ignore.d/20-b.conf.disabled", "[Manager]\nOOMScoreAdjust=-20\n"));
        free(write_file("ignore.d/30-c.conf~", "[Manager]\nOOMScoreAdjust=-30\n"));
        free(write_file("ignore.d/.40-hidden.conf", "[Manager]\nOOMScoreAdjust=-40\n"));
        free(write_file("ignore.d/50-d.txt", "[Manager]\nOOMScoreAdjust=-50\n"));
        free(write_file("ignore.d/README", "not ini at all\n"));
        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_capturing(&c, NULL, false, d, &log), 0);
        assert_string_equal(log, "");
        assert_int_equal(c.oom_score_adjust, -10);
        config_done(&c);
}

static void test_config_dropin_warnings_name_the_dropin_and_its_line(void **state) {
        _cleanup_free_ char *log = NULL, *d = make_dir("warn.d"), *f = NULL;
        Config c;

        f = write_file("warn.d/10-bad.conf", "# first\n[Manager]\nMaxProtected=0\n");
        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_capturing(&c, NULL, false, d, &log), 1);
        assert_log_line(log, f, 3, "MaxProtected");
        config_done(&c);
}

static void test_config_dropin_that_is_not_a_regular_file_warns_and_is_skipped(void **state) {
        _cleanup_free_ char *log = NULL, *d = make_dir("nonreg.d"), *sub = make_dir("nonreg.d/20-dir.conf");
        Config c;

        free(write_file("nonreg.d/30-c.conf", "[Manager]\nMaxProtected=30\n"));
        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_capturing(&c, NULL, false, d, &log), 1);
        assert_int_equal(c.max_protected, 30);
        assert_true(log_has_line(log, sub, "regular"));
        config_done(&c);
}

static void test_config_missing_dropin_dir_is_fine(void **state) {
        _cleanup_free_ char *log = NULL, *d = tpath("no-such.d");
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_capturing(&c, NULL, false, d, &log), 0);
        assert_config_is_default(&c);
        config_done(&c);
}

static void test_config_unreadable_dropin_fails_and_leaves_config_untouched(void **state) {
        _cleanup_free_ char *log = NULL, *main_path = NULL, *d = make_dir("loop.d");
        _cleanup_free_ char *loop = tpath("loop.d/50-loop.conf");
        Config c;

        main_path = write_file("loop.conf", "[Manager]\nOOMScoreAdjust=-5\n");
        assert_int_equal(symlink(loop, loop), 0); /* opening it fails with ELOOP */
        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_capturing(&c, main_path, true, d, &log), -ELOOP);
        assert_config_is_default(&c);
        config_done(&c);
}

static void test_config_dropin_dir_that_is_a_file_is_an_error(void **state) {
        _cleanup_free_ char *log = NULL, *f = write_file("not-a-dir.d", "x\n");
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(load_capturing(&c, NULL, false, f, &log), -ENOTDIR);
        config_done(&c);
}

/* ---- budget, names, dump ---- */

static void test_config_budget_bytes_resolves_percent_absolute_and_unlimited(void **state) {
        const uint64_t ram = 8ULL << 30;
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_true(config_budget_bytes(&c, ram) == 4ULL << 30); /* default 50% */
        assert_int_equal(config_set(&c, "MemoryMinBudget", "2.5%", "t", 1), 0);
        assert_true(config_budget_bytes(&c, 1000) == 25);
        assert_int_equal(config_set(&c, "MemoryMinBudget", "3G", "t", 1), 0);
        assert_true(config_budget_bytes(&c, ram) == 3ULL << 30);
        assert_true(config_budget_bytes(&c, 0) == 3ULL << 30);
        assert_int_equal(config_set(&c, "MemoryMinBudget", "infinity", "t", 1), 0);
        assert_true(config_budget_bytes(&c, ram) == 0);
        assert_int_equal(config_set(&c, "MemoryMinBudget", "0", "t", 1), 0);
        assert_true(config_budget_bytes(&c, ram) == 0);
        assert_int_equal(config_set(&c, "MemoryMinBudget", "10%", "t", 1), 0);
        assert_string_equal(c.memory_min_budget, "10%"); /* kept as written */
        assert_true(config_budget_bytes(&c, 0) == 0);    /* unknown RAM: no budget */
        config_done(&c);
}

static void test_config_enum_names_round_trip_and_unknown_maps_to_max(void **state) {
        for (int t = 0; t < _BACKEND_TYPE_MAX; t++)
                assert_int_equal(backend_type_from_string(backend_type_to_string(t)), t);
        for (int p = 0; p < _MANAGED_OOM_PREFERENCE_MAX; p++)
                assert_int_equal(managed_oom_preference_from_string(managed_oom_preference_to_string(p)), p);
        assert_string_equal(backend_type_to_string(BACKEND_ADJ_ONLY), "adj-only");
        assert_string_equal(managed_oom_preference_to_string(MANAGED_OOM_PREFERENCE_AVOID), "avoid");
        assert_int_equal(backend_type_from_string("bogus"), _BACKEND_TYPE_MAX);
        assert_int_equal(backend_type_from_string(NULL), _BACKEND_TYPE_MAX);
        assert_int_equal(managed_oom_preference_from_string("OMIT"), _MANAGED_OOM_PREFERENCE_MAX);
        assert_null(backend_type_to_string(_BACKEND_TYPE_MAX));
        assert_null(managed_oom_preference_to_string(_MANAGED_OOM_PREFERENCE_MAX));
}

static char *dump_to_string(const Config *c) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        config_dump(c, f);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void test_config_dump_prints_every_key_with_sizes_in_bytes(void **state) {
        _cleanup_free_ char *text = NULL, *text2 = NULL;
        Config c;

        assert_int_equal(config_init(&c), 0);
        text = dump_to_string(&c);
        assert_string_equal(text,
                            "[Manager]\n"
                            "Backend=auto\n"
                            "CgroupRoot=\n"
                            "Slice=protected.slice\n"
                            "MemoryMinBudget=50%\n"
                            "DefaultMemoryMin=0\n"
                            "DefaultMemoryLow=0\n"
                            "OOMGroup=no\n"
                            "OOMScoreAdjust=-1000\n"
                            "ManagedOOMPreference=omit\n"
                            "AllowGroup=oomprotect\n"
                            "MaxProtected=10000\n"
                            "MaxProtectedPerUser=100\n"
                            "MemoryMinBudgetPerUser=10%\n"
                            "RestoreOnStop=no\n"
                            "StateDirectory=/run/oomprotect\n"
                            "CompatDirectory=/run/oom_kill_protection\n"
                            "RuleDirectories=/etc/oomprotect/rules.d /usr/lib/oomprotect/rules.d\n"
                            "MaxProtectedMemory=50%\n");
        assert_int_equal(config_set(&c, "DefaultMemoryMin", "512M", "t", 1), 0);
        assert_int_equal(config_set(&c, "DefaultMemoryLow", "1K", "t", 1), 0);
        text2 = dump_to_string(&c);
        assert_non_null(strstr(text2, "\nDefaultMemoryMin=536870912\n"));
        assert_non_null(strstr(text2, "\nDefaultMemoryLow=1024\n"));
        config_done(&c);
}

static void test_config_rule_directories_normalized_empty_is_default_relative_refused(void **state) {
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(config_set(&c, "RuleDirectories", "/a//b/  /c/./d", "t", 1), 0);
        assert_string_equal(c.rule_directories, "/a/b /c/d");
        assert_int_equal(config_set(&c, "RuleDirectories", "/x relative", "t", 2), -EINVAL);
        assert_string_equal(c.rule_directories, "/a/b /c/d");
        assert_int_equal(config_set(&c, "RuleDirectories", "", "t", 3), 0);
        assert_string_equal(c.rule_directories, "/etc/oomprotect/rules.d /usr/lib/oomprotect/rules.d");
        config_done(&c);
}

static void test_config_max_protected_memory_takes_sizes_percent_infinity(void **state) {
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(config_max_protected_memory_bytes(&c, 1000), 500);
        assert_int_equal(config_set(&c, "MaxProtectedMemory", "2G", "t", 1), 0);
        assert_int_equal(config_max_protected_memory_bytes(&c, 1000), 2ULL << 30);
        assert_int_equal(config_set(&c, "MaxProtectedMemory", "infinity", "t", 2), 0);
        assert_int_equal(config_max_protected_memory_bytes(&c, 1000), 0);
        assert_int_equal(config_set(&c, "MaxProtectedMemory", "lots", "t", 3), -EINVAL);
        assert_int_equal(config_set(&c, "MaxProtectedMemory", "", "t", 4), -EINVAL);
        assert_string_equal(c.max_protected_memory, "infinity");
        config_done(&c);
}

static void assert_dump_round_trips(const Config *c) {
        _cleanup_free_ char *text = dump_to_string(c), *log = NULL;
        Config d;

        assert_int_equal(config_init(&d), 0);
        assert_int_equal(load_text(&d, text, &log), 0);
        assert_string_equal(log, "");
        assert_config_equal(&d, c);
        config_done(&d);
}

static void test_config_dump_round_trips_through_load(void **state) {
        _cleanup_free_ char *log = NULL;
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_dump_round_trips(&c); /* defaults, with CgroupRoot unset */

        assert_int_equal(load_text(&c, all_keys_non_default, &log), 0);
        assert_dump_round_trips(&c);

        assert_int_equal(config_set(&c, "AllowGroup", "", "t", 1), 0);
        assert_int_equal(config_set(&c, "DefaultMemoryMin", "3.5%", "t", 1), 0);
        assert_int_equal(config_set(&c, "MemoryMinBudget", "12.5%", "t", 1), 0);
        assert_dump_round_trips(&c); /* nobody-but-root and a resolved percentage */
        config_done(&c);
}

/* ---- fixture ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup_tmpdir(void **state) {
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state) {
        return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_init_sets_documented_defaults),
                cmocka_unit_test(test_config_every_key_accepts_a_valid_value),
                cmocka_unit_test(test_config_accepts_the_edges_of_every_range),
                cmocka_unit_test(test_config_percent_sizes_resolve_against_physical_memory),
                cmocka_unit_test(test_config_paths_are_normalized),
                cmocka_unit_test(test_config_indented_crlf_and_bom_lines_are_read),
                cmocka_unit_test(test_config_empty_value_resets_string_keys_to_default),
                cmocka_unit_test(test_config_empty_allow_group_means_nobody_but_root),
                cmocka_unit_test(test_config_bad_oom_score_adjust_keeps_default_and_warns),
                cmocka_unit_test(test_config_every_key_rejects_bad_values_keeps_previous_and_warns),
                cmocka_unit_test(test_config_set_returns_negative_errno_and_keeps_value),
                cmocka_unit_test(test_config_bad_value_after_good_one_keeps_the_good_one),
                cmocka_unit_test(test_config_unknown_key_warns_with_file_line_and_key),
                cmocka_unit_test(test_config_unknown_section_warns_once_and_ignores_its_keys),
                cmocka_unit_test(test_config_key_outside_manager_section_warns),
                cmocka_unit_test(test_config_syntax_error_line_warns_and_parsing_continues),
                cmocka_unit_test(test_config_overlong_line_warns_and_is_skipped_whole),
                cmocka_unit_test(test_config_line_with_nul_byte_warns_and_is_skipped),
                cmocka_unit_test(test_config_warning_line_numbers_match_the_file),
                cmocka_unit_test(test_config_missing_optional_file_gives_defaults_without_warnings),
                cmocka_unit_test(test_config_missing_required_file_returns_enoent_and_changes_nothing),
                cmocka_unit_test(test_config_missing_main_file_still_reads_dropins),
                cmocka_unit_test(test_config_main_path_that_is_a_directory_is_an_error),
                cmocka_unit_test(test_config_dropins_override_in_lexical_order),
                cmocka_unit_test(test_config_dropins_ignore_non_conf_and_hidden_files),
                cmocka_unit_test(test_config_dropin_warnings_name_the_dropin_and_its_line),
                cmocka_unit_test(test_config_dropin_that_is_not_a_regular_file_warns_and_is_skipped),
                cmocka_unit_test(test_config_missing_dropin_dir_is_fine),
                cmocka_unit_test(test_config_unreadable_dropin_fails_and_leaves_config_untouched),
                cmocka_unit_test(test_config_dropin_dir_that_is_a_file_is_an_error),
                cmocka_unit_test(test_config_budget_bytes_resolves_percent_absolute_and_unlimited),
                cmocka_unit_test(test_config_enum_names_round_trip_and_unknown_maps_to_max),
                cmocka_unit_test(test_config_dump_prints_every_key_with_sizes_in_bytes),
                cmocka_unit_test(test_config_rule_directories_normalized_empty_is_default_relative_refused),
                cmocka_unit_test(test_config_max_protected_memory_takes_sizes_percent_infinity),
                cmocka_unit_test(test_config_dump_round_trips_through_load),
        };
        return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
