/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "rules.h"

static char tmpdir[] = "/tmp/oomprotect-test-rules.XXXXXX";

/* ---- helpers ---- */

static int parse(RuleSet *s, const char *text) {
        return rules_parse_string(s, text, strlen(text), "/etc/oomprotect/rules.d/t.rules");
}

/* Whether some warning contains every one of the NULL-terminated fragments. */
static bool warned(const RuleSet *s, ...) {
        for (size_t i = 0; i < s->n_warnings; i++) {
                va_list ap;
                bool all = true;
                const char *frag;

                va_start(ap, s);
                while ((frag = va_arg(ap, const char *)))
                        if (!strstr(s->warnings[i], frag))
                                all = false;
                va_end(ap);
                if (all)
                        return true;
        }
        return false;
}

static RuleProcess process(const char *exe, const char *comm, uid_t uid, gid_t gid, const char *cgroup) {
        RuleProcess p = { .pid = 4242, .exe = exe ? strdup(exe) : NULL, .uid = uid, .gid = gid,
                          .cgroup = cgroup ? strdup(cgroup) : NULL };

        snprintf(p.comm, sizeof(p.comm), "%s", comm);
        return p;
}

static char *dir_path(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", tmpdir, name) >= 0);
        return p;
}

static void write_rule_file(const char *dir, const char *name, const char *text, mode_t mode) {
        _cleanup_free_ char *d = dir_path(dir), *p = NULL;
        FILE *f;

        (void) mkdir(d, 0755);
        assert_true(asprintf(&p, "%s/%s", d, name) >= 0);
        f = fopen(p, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        assert_int_equal(chmod(p, mode), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup_tmpdir(void **state) {
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state) {
        return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the parser ---- */

static void test_rules_parse_full_rule_with_every_key(void **state) {
        RuleSet s = {};

        assert_int_equal(parse(&s, "# a comment\n"
                                   "[Rule]\n"
                                   "Name=db\n"
                                   "Executable=/usr/sbin/postgres\n"
                                   "Executable=/usr/lib/postgresql/*/bin/postgres\n"
                                   "Comm=postgres\n"
                                   "User=0\n"
                                   "Group=root\n"
                                   "Unit=postgresql@*.service\n"
                                   "Cgroup=/system.slice\n"
                                   "MemoryMin=64M\n"
                                   "MemoryLow=1G\n"
                                   "OOMScoreAdjust=-900\n"
                                   "InPlace=yes\n"
                                   "Descendants=true\n"),
                         0);
        assert_int_equal(s.n, 1);
        const Rule *r = s.rules[0];
        assert_string_equal(r->name, "db");
        assert_int_equal(r->line, 2);
        assert_int_equal(r->executables.n, 2);
        assert_string_equal(r->executables.items[1], "/usr/lib/postgresql/*/bin/postgres");
        assert_int_equal(r->comms.n, 1);
        assert_int_equal(r->n_users, 1);
        assert_int_equal(r->users[0], 0);
        assert_int_equal(r->n_groups, 1);
        assert_int_equal(r->groups[0], 0);
        assert_int_equal(r->units.n, 1);
        assert_int_equal(r->cgroups.n, 1);
        assert_true(r->options.has_memory_min);
        assert_int_equal(r->options.memory_min, 64ULL << 20);
        assert_int_equal(r->options.memory_low, 1ULL << 30);
        assert_true(r->options.has_adj);
        assert_int_equal(r->options.adj, -900);
        assert_true(r->options.has_in_place && r->options.in_place);
        assert_true(r->options.descendants);
        rule_set_done(&s);
}

static void test_rules_unnamed_rules_take_the_file_name_then_a_number(void **state) {
        RuleSet s = {};

        assert_int_equal(parse(&s, "[Rule]\nComm=a\n[Rule]\nComm=b\n[Rule]\nName=x\nComm=c\n[Rule]\nComm=d\n"), 0);
        assert_int_equal(s.n, 4);
        assert_string_equal(s.rules[0]->name, "t");
        assert_string_equal(s.rules[1]->name, "t-2");
        assert_string_equal(s.rules[2]->name, "x");
        assert_string_equal(s.rules[3]->name, "t-3");
        rule_set_done(&s);
}

static void test_rules_bad_value_skips_the_whole_rule_and_names_file_line_key(void **state) {
        RuleSet s = {};

        assert_true(parse(&s, "[Rule]\nName=good\nComm=a\n\n[Rule]\nName=bad\nComm=b\nMemoryMin=lots\nOOMScoreAdjust=-1000\n") > 0);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.rules[0]->name, "good");
        assert_true(warned(&s, "/etc/oomprotect/rules.d/t.rules:8:", "MemoryMin=lots", "not a size", NULL));
        assert_true(warned(&s, "skipped whole", "line 5", NULL));
        assert_null(rules_find(&s, "bad"));
        rule_set_done(&s);
}

static void test_rules_every_key_refuses_bad_values(void **state) {
        static const char *const bad[] = {
                "Executable=relative/path", "Executable=/a/../b",   "Executable=/a//b",
                "Comm=averyveryverylongcomm", "Comm=a/b",           "User=no-such-user-oomprotect",
                "User=-1",                  "Group=no-such-group-oomprotect", "Unit=foo",
                "Unit=foo.timer",           "Unit=a b.service",     "Cgroup=system.slice",
                "Cgroup=/a/",               "MemoryMin=infinity",   "MemoryMin=12X",
                "MemoryLow=200%",           "OOMScoreAdjust=-1001", "OOMScoreAdjust=abc",
                "InPlace=maybe",            "Descendants=",         "Name=has space",
                "Name=",                    "MemoryMin=",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = NULL;
                RuleSet s = {};
                const char *eq = strchr(bad[i], '=');
                _cleanup_free_ char *key = strndup(bad[i], (size_t) (eq - bad[i]));

                assert_true(asprintf(&text, "[Rule]\nComm=x\n%s\n", bad[i]) >= 0);
                assert_true(parse(&s, text) > 0);
                if (s.n != 0)
                        fail_msg("%s was accepted", bad[i]);
                assert_true(warned(&s, ":3:", key, NULL));
                rule_set_done(&s);
        }
}

static void test_rules_rule_without_match_key_is_refused(void **state) {
        RuleSet s = {};

        assert_int_equal(parse(&s, "[Rule]\nName=all\nMemoryMin=1G\n"), 1);
        assert_int_equal(s.n, 0);
        assert_true(warned(&s, "t.rules:1:", "\"all\"", "no match key", NULL));
        rule_set_done(&s);
}

static void test_rules_empty_assignment_empties_the_list(void **state) {
        RuleSet s = {};

        assert_int_equal(parse(&s, "[Rule]\nComm=a\nComm=\nComm=b\n"), 0);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.rules[0]->comms.n, 1);
        assert_string_equal(s.rules[0]->comms.items[0], "b");
        rule_set_done(&s);
}

static void test_rules_unknown_key_section_and_syntax_are_warnings(void **state) {
        RuleSet s = {};

        assert_true(parse(&s, "Comm=outside\n[Other]\nComm=x\n[Rule]\nName=r1\nComm=a\nColour=blue\n"
                              "[Rule]\nName=r2\nComm=b\nthis is not ini\n[Rule]\nName=r3\nComm=c\n") > 0);
        assert_true(warned(&s, ":1:", "outside of a section", NULL));
        assert_true(warned(&s, ":2:", "Unknown section [Other]", NULL));
        assert_true(warned(&s, ":7:", "Unknown key \"Colour\"", NULL));
        assert_true(warned(&s, ":11:", "Syntax error", NULL));
        assert_int_equal(s.n, 1);
        assert_string_equal(s.rules[0]->name, "r3");
        rule_set_done(&s);
}

static void test_rules_duplicate_name_keeps_the_first(void **state) {
        RuleSet s = {};

        assert_int_equal(parse(&s, "[Rule]\nName=x\nComm=a\n[Rule]\nName=x\nComm=b\n"), 1);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.rules[0]->comms.items[0], "a");
        assert_true(warned(&s, ":4:", "exists already", NULL));
        rule_set_done(&s);
}

static void test_rules_overlong_line_and_nul_byte_skip_the_rule(void **state) {
        char text[600];
        RuleSet s = {};

        snprintf(text, sizeof(text), "[Rule]\nName=long\nExecutable=/%0400d\n", 0);
        assert_true(parse(&s, text) > 0);
        assert_int_equal(s.n, 0);
        assert_true(warned(&s, ":3:", "Line longer", NULL));
        rule_set_done(&s);

        static const char nul[] = "[Rule]\nName=nul\nComm=a\0b\n";
        assert_true(rules_parse_string(&s, nul, sizeof(nul) - 1, "n.rules") > 0);
        assert_int_equal(s.n, 0);
        assert_true(warned(&s, "n.rules:3:", "NUL", NULL));
        rule_set_done(&s);
}

static void test_rules_crlf_bom_and_indentation_are_accepted(void **state) {
        RuleSet s = {};

        assert_int_equal(parse(&s, "\xEF\xBB\xBF[Rule]\r\n  Comm = sshd\r\n\tUser=root\r\n"), 0);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.rules[0]->comms.items[0], "sshd");
        rule_set_done(&s);
}

/* ---- the matcher ---- */

static void test_rules_executable_glob_matches_the_real_exe_not_below_a_slash(void **state) {
        RuleSet s = {};
        RuleProcess a = process("/usr/bin/foo", "foo", 1000, 1000, "/user.slice"),
                    b = process("/usr/bin/sub/foo", "foo", 1000, 1000, "/user.slice"),
                    c = process(NULL, "kworker", 0, 0, NULL);
        char *why = NULL;

        assert_int_equal(parse(&s, "[Rule]\nExecutable=/usr/bin/*\n"), 0);
        assert_true(rule_matches(s.rules[0], &a, &why));
        assert_non_null(strstr(why, "Executable=/usr/bin/* matched /usr/bin/foo"));
        free(why);
        assert_false(rule_matches(s.rules[0], &b, &why));
        assert_non_null(strstr(why, "matches no Executable="));
        free(why);
        assert_false(rule_matches(s.rules[0], &c, NULL));
        rule_process_done(&a);
        rule_process_done(&b);
        rule_process_done(&c);
        rule_set_done(&s);
}

static void test_rules_never_match_a_kernel_thread(void **state) {
        RuleSet s = {};
        RuleProcess p = process(NULL, "kworker/0:1", 0, 0, "/");
        char *why = NULL;

        p.kernel_thread = true;
        assert_int_equal(parse(&s, "[Rule]\nComm=kworker*\n"), 0);
        assert_false(rule_matches(s.rules[0], &p, &why));
        assert_non_null(strstr(why, "kernel thread"));
        free(why);
        rule_process_done(&p);
        rule_set_done(&s);
}

static void test_rules_all_keys_must_match_any_value_will_do(void **state) {
        RuleSet s = {};
        RuleProcess p = process("/usr/sbin/nginx", "nginx", 33, 33, "/system.slice/nginx.service");

        assert_int_equal(parse(&s, "[Rule]\nComm=apache2\nComm=ngin?\nUser=33\nUser=0\n"), 0);
        assert_true(rule_matches(s.rules[0], &p, NULL));
        p.uid = 1000;
        assert_false(rule_matches(s.rules[0], &p, NULL));
        rule_process_done(&p);
        rule_set_done(&s);
}

static void test_rules_group_matches_primary_or_supplementary(void **state) {
        RuleSet s = {};
        RuleProcess p = process("/bin/x", "x", 1000, 1000, "/");
        gid_t sup[] = { 27, 44 };

        assert_int_equal(parse(&s, "[Rule]\nGroup=44\n"), 0);
        assert_false(rule_matches(s.rules[0], &p, NULL));
        p.groups = malloc(sizeof(sup));
        memcpy(p.groups, sup, sizeof(sup));
        p.n_groups = 2;
        assert_true(rule_matches(s.rules[0], &p, NULL));
        p.gid = 44;
        p.n_groups = 0;
        assert_true(rule_matches(s.rules[0], &p, NULL));
        rule_process_done(&p);
        rule_set_done(&s);
}

static void test_rules_unit_matches_a_component_of_the_cgroup(void **state) {
        RuleSet s = {};
        RuleProcess p = process("/usr/bin/x", "x", 0, 0, "/system.slice/foo.service/worker");
        char *why = NULL;

        assert_int_equal(parse(&s, "[Rule]\nUnit=foo.service\n[Rule]\nUnit=system.slice\n[Rule]\nUnit=bar.service\n"),
                         0);
        assert_true(rule_matches(s.rules[0], &p, &why));
        assert_non_null(strstr(why, "Unit=foo.service matched foo.service"));
        free(why);
        assert_true(rule_matches(s.rules[1], &p, NULL));
        assert_false(rule_matches(s.rules[2], &p, NULL));
        free(p.cgroup);
        p.cgroup = strdup("/system.slice/foo.service.d"); /* a component that only begins like it */
        assert_false(rule_matches(s.rules[0], &p, NULL));
        rule_process_done(&p);
        rule_set_done(&s);
}

static void test_rules_only_exact_unit_names_alone_are_unit_wide(void **state) {
        RuleSet s = {};

        assert_int_equal(parse(&s, "[Rule]\nName=exact\nUnit=foo.service\nUnit=bar.scope\n"
                                   "[Rule]\nName=glob\nUnit=foo-*.service\n"
                                   "[Rule]\nName=slice\nUnit=system.slice\n"
                                   "[Rule]\nName=more\nUnit=foo.service\nComm=foo\n"
                                   "[Rule]\nName=moved\nUnit=foo.service\nInPlace=no\n"
                                   "[Rule]\nName=inplace\nUnit=foo.service\nInPlace=yes\nDescendants=yes\n"),
                         0);
        assert_int_equal(s.n, 6);
        assert_true(rule_is_unit_wide(rules_find(&s, "exact")));
        assert_false(rule_is_unit_wide(rules_find(&s, "glob")));
        assert_false(rule_is_unit_wide(rules_find(&s, "slice")));
        assert_false(rule_is_unit_wide(rules_find(&s, "more")));
        assert_false(rule_is_unit_wide(rules_find(&s, "moved")));
        assert_true(rule_is_unit_wide(rules_find(&s, "inplace")));
        assert_true(rule_names_unit(rules_find(&s, "exact"), "bar.scope"));
        assert_false(rule_names_unit(rules_find(&s, "exact"), "bar.service"));
        assert_false(rule_names_unit(rules_find(&s, "exact"), NULL));
        rule_set_done(&s);
}

static void test_rules_unit_of_cgroup_is_the_unit_below_slices_only(void **state) {
        RuleSet s = {};
        const Rule *r;

        assert_int_equal(parse(&s, "[Rule]\nUnit=foo.service\nUnit=bar.scope\n[Rule]\nUnit=foo-*.service\n"), 0);
        r = s.rules[0];
        assert_string_equal(rule_unit_of_cgroup(r, "/system.slice/foo.service"), "foo.service");
        assert_string_equal(rule_unit_of_cgroup(r, "/system.slice/foo.service/worker"), "foo.service");
        assert_string_equal(rule_unit_of_cgroup(r, "/a.slice/a-b.slice/bar.scope"), "bar.scope");
        assert_string_equal(rule_unit_of_cgroup(r, "/foo.service"), "foo.service");
        /* A user manager's unit of that name is not PID 1's. */
        assert_null(rule_unit_of_cgroup(r, "/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service"));
        assert_null(rule_unit_of_cgroup(r, "/system.slice/foo.service.d"));
        assert_null(rule_unit_of_cgroup(r, "/system.slice/other.service"));
        assert_null(rule_unit_of_cgroup(r, "/"));
        assert_null(rule_unit_of_cgroup(r, NULL));
        /* A glob is matched process by process, never as a unit. */
        assert_null(rule_unit_of_cgroup(s.rules[1], "/system.slice/foo-a.service"));
        rule_set_done(&s);
}

static void test_rules_cgroup_matches_itself_and_descendants_only(void **state) {
        RuleSet s = {};
        RuleProcess in = process("/x", "x", 0, 0, "/system.slice/a.service"),
                    below = process("/x", "x", 0, 0, "/system.slice/a.service/sub"),
                    beside = process("/x", "x", 0, 0, "/system.slice/a.serviceX"),
                    none = process("/x", "x", 0, 0, NULL);

        assert_int_equal(parse(&s, "[Rule]\nCgroup=/system.slice/a.service\n"), 0);
        assert_true(rule_matches(s.rules[0], &in, NULL));
        assert_true(rule_matches(s.rules[0], &below, NULL));
        assert_false(rule_matches(s.rules[0], &beside, NULL));
        assert_false(rule_matches(s.rules[0], &none, NULL));
        rule_process_done(&in);
        rule_process_done(&below);
        rule_process_done(&beside);
        rule_process_done(&none);
        rule_set_done(&s);
}

static void test_rules_first_matching_rule_wins(void **state) {
        RuleSet s = {};
        RuleProcess p = process("/usr/bin/foo", "foo", 0, 0, "/");

        assert_int_equal(parse(&s, "[Rule]\nName=first\nComm=bar\n[Rule]\nName=second\nComm=foo\n"
                                   "[Rule]\nName=third\nExecutable=/usr/bin/foo\n"),
                         0);
        assert_string_equal(rules_match(&s, &p)->name, "second");
        p.comm[0] = 'x';
        assert_string_equal(rules_match(&s, &p)->name, "third");
        free(p.exe);
        p.exe = strdup("/bin/other");
        assert_null(rules_match(&s, &p));
        rule_process_done(&p);
        rule_set_done(&s);
}

static void test_rules_status_gids_parse_and_refuse_garbage(void **state) {
        gid_t gid = 0, *groups = NULL;
        size_t n = 0;

        assert_int_equal(rules_parse_status_gids("Name:\tx\nGid:\t100\t101\t102\t103\nGroups:\t4 24 27 \n", &gid,
                                                 &groups, &n),
                         0);
        assert_int_equal(gid, 100);
        assert_int_equal(n, 3);
        assert_int_equal(groups[2], 27);
        free(groups);
        assert_int_equal(rules_parse_status_gids("Gid:\t1\t2\n", &gid, &groups, &n), -EINVAL);
        assert_int_equal(rules_parse_status_gids("Uid:\t1\t2\t3\t4\n", &gid, &groups, &n), -ENODATA);
        assert_int_equal(rules_parse_status_gids("Gid:\t1\t2\t3\t4\nGroups:\tx\n", &gid, &groups, &n), -EINVAL);
}

static void test_rules_source_name(void **state) {
        assert_string_equal(rules_source_name("rule:db"), "db");
        assert_null(rules_source_name("dbus"));
        assert_null(rules_source_name(NULL));
}

static void test_rules_process_read_reads_this_process(void **state) {
        _cleanup_close_ int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        RuleProcess p;
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

        assert_true(n > 0);
        exe[n] = '\0';
        assert_int_equal(rule_process_read(procfd, getpid(), &p), 0);
        assert_string_equal(p.exe, exe);
        assert_int_equal(p.uid, getuid());
        assert_int_equal(p.gid, getgid());
        rule_process_done(&p);
        assert_int_equal(rule_process_read(procfd, 4194304, &p), -ESRCH);
}

/* ---- the directories ---- */

static void test_rules_etc_masks_usr_lib_of_the_same_name_and_order_is_lexical(void **state) {
        _cleanup_free_ char *etc = dir_path("etc"), *lib = dir_path("lib");
        char *dirs[] = { etc, lib };
        RuleSet s = {};

        write_rule_file("etc", "50-db.rules", "[Rule]\nName=etc-db\nComm=postgres\n", 0644);
        write_rule_file("lib", "50-db.rules", "[Rule]\nName=lib-db\nComm=postgres\n", 0644);
        write_rule_file("lib", "10-ssh.rules", "[Rule]\nComm=sshd\n", 0644);
        write_rule_file("lib", "90-x.conf", "[Rule]\nComm=never\n", 0644);
        assert_int_equal(rules_load(&s, dirs, 2), 0);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.rules[0]->name, "10-ssh");
        assert_string_equal(s.rules[1]->name, "etc-db");
        rule_set_done(&s);
}

static void test_rules_writable_file_is_refused_with_a_warning(void **state) {
        _cleanup_free_ char *d = dir_path("w");
        char *dirs[] = { d };
        RuleSet s = {};

        if (geteuid() != 0)
                skip(); /* files of ours are not root's: every one would be refused */
        write_rule_file("w", "a.rules", "[Rule]\nComm=a\n", 0664);
        write_rule_file("w", "b.rules", "[Rule]\nComm=b\n", 0644);
        assert_int_equal(rules_load(&s, dirs, 1), 1);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.rules[0]->name, "b");
        assert_true(warned(&s, "a.rules", "writable by group or others", NULL));
        rule_set_done(&s);
}

static void test_rules_missing_directory_is_empty(void **state) {
        char *dirs[] = { (char *) "/nonexistent/oomprotect/rules.d" };
        RuleSet s = {};

        assert_int_equal(rules_load(&s, dirs, 1), 0);
        assert_int_equal(s.n, 0);
        rule_set_done(&s);
}

static void test_rules_dev_null_link_masks_silently(void **state) {
        _cleanup_free_ char *etc = dir_path("m-etc"), *lib = dir_path("m-lib"), *link = NULL;
        char *dirs[] = { etc, lib };
        RuleSet s = {};

        write_rule_file("m-lib", "x.rules", "[Rule]\nComm=x\n", 0644);
        (void) mkdir(etc, 0755);
        assert_true(asprintf(&link, "%s/x.rules", etc) >= 0);
        assert_int_equal(symlink("/dev/null", link), 0);
        assert_int_equal(rules_load(&s, dirs, 2), 0);
        assert_int_equal(s.n, 0);
        assert_int_equal(s.n_warnings, 0);
        rule_set_done(&s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rules_parse_full_rule_with_every_key),
                cmocka_unit_test(test_rules_unnamed_rules_take_the_file_name_then_a_number),
                cmocka_unit_test(test_rules_bad_value_skips_the_whole_rule_and_names_file_line_key),
                cmocka_unit_test(test_rules_every_key_refuses_bad_values),
                cmocka_unit_test(test_rules_rule_without_match_key_is_refused),
                cmocka_unit_test(test_rules_empty_assignment_empties_the_list),
                cmocka_unit_test(test_rules_unknown_key_section_and_syntax_are_warnings),
                cmocka_unit_test(test_rules_duplicate_name_keeps_the_first),
                cmocka_unit_test(test_rules_overlong_line_and_nul_byte_skip_the_rule),
                cmocka_unit_test(test_rules_crlf_bom_and_indentation_are_accepted),
                cmocka_unit_test(test_rules_executable_glob_matches_the_real_exe_not_below_a_slash),
                cmocka_unit_test(test_rules_never_match_a_kernel_thread),
                cmocka_unit_test(test_rules_all_keys_must_match_any_value_will_do),
                cmocka_unit_test(test_rules_group_matches_primary_or_supplementary),
                cmocka_unit_test(test_rules_unit_matches_a_component_of_the_cgroup),
                cmocka_unit_test(test_rules_cgroup_matches_itself_and_descendants_only),
                cmocka_unit_test(test_rules_only_exact_unit_names_alone_are_unit_wide),
                cmocka_unit_test(test_rules_unit_of_cgroup_is_the_unit_below_slices_only),
                cmocka_unit_test(test_rules_first_matching_rule_wins),
                cmocka_unit_test(test_rules_status_gids_parse_and_refuse_garbage),
                cmocka_unit_test(test_rules_source_name),
                cmocka_unit_test(test_rules_process_read_reads_this_process),
                cmocka_unit_test(test_rules_etc_masks_usr_lib_of_the_same_name_and_order_is_lexical),
                cmocka_unit_test(test_rules_writable_file_is_refused_with_a_warning),
                cmocka_unit_test(test_rules_missing_directory_is_empty),
                cmocka_unit_test(test_rules_dev_null_link_masks_silently),
        };
        return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
