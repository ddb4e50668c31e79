/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * doctor's effective protection against chains worked out by hand from the
 * kernel's rules (Documentation/admin-guide/cgroup-v2.rst, memory.min and
 * memory.low; effective_protection() in mm/), and its verdict on each OOM killer.
 * Sizes are in MiB so that the proportions are exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "doctor.h"
#include "macro.h"

#define M (UINT64_C(1) << 20)

/* A link below the top level whose parent has only this child: siblings' claim = its own. */
static DoctorLink only_child(uint64_t min, uint64_t low, uint64_t usage) {
        return (DoctorLink) { .min = min, .low = low, .usage = usage, .siblings_min_usage = MIN(min, usage),
                              .siblings_low_usage = MIN(low, usage) };
}

static void test_parent_without_memory_min_caps_child_to_zero(void **state) {
        /* A.slice (memory.min 0) / B.scope (memory.min 1G, 500M charged): the kernel gives B nothing. */
        DoctorLink chain[] = { { .min = 0, .usage = 500 * M }, only_child(1024 * M, 0, 500 * M) };
        DoctorCap cap;

        doctor_compute_protection(chain, ELEMENTSOF(chain), false);
        assert_int_equal(chain[0].emin, 0);
        assert_int_equal(chain[1].emin, 0);
        cap = doctor_find_cap(chain, ELEMENTSOF(chain), false);
        assert_int_equal(cap.reason, DOCTOR_CAP_SETTING);
        assert_int_equal(cap.link, 0);
}

static void test_top_level_gets_its_setting_and_child_its_claim(void **state) {
        /* A (min 2G, top level: its setting as is) / B (min 512M, 800M charged): B gets 512M, all it asks. */
        DoctorLink chain[] = { { .min = 2048 * M, .usage = 1024 * M }, only_child(512 * M, 0, 800 * M) };

        doctor_compute_protection(chain, ELEMENTSOF(chain), false);
        assert_int_equal(chain[0].emin, 2048 * M);
        assert_int_equal(chain[1].emin, 512 * M);
        assert_int_equal(doctor_find_cap(chain, ELEMENTSOF(chain), false).reason, DOCTOR_CAP_NONE);
}

static void test_claim_is_bounded_by_usage(void **state) {
        /* B asks 1G but holds 300M: 300M is protected, and nothing caps it. */
        DoctorLink chain[] = { { .min = 2048 * M, .usage = 1024 * M }, only_child(1024 * M, 0, 300 * M) };

        doctor_compute_protection(chain, ELEMENTSOF(chain), false);
        assert_int_equal(chain[1].emin, 300 * M);
        assert_int_equal(doctor_find_cap(chain, ELEMENTSOF(chain), false).reason, DOCTOR_CAP_NONE);
}

static void test_overcommitted_siblings_share_in_proportion(void **state) {
        /*
         * P (min 1000M) has C1 (min 1G, 600M charged: claims 600M) and C2 (min 1000M, 2000M charged:
         * claims 1000M). 1600M claimed > 1000M: C1 gets 600 * 1000 / 1600 = 375M, C2 625M.
         */
        DoctorLink c1[] = { { .min = 1000 * M, .usage = 2600 * M },
                            { .min = 1024 * M, .usage = 600 * M, .siblings_min_usage = 1600 * M } };
        DoctorLink c2[] = { { .min = 1000 * M, .usage = 2600 * M },
                            { .min = 1000 * M, .usage = 2000 * M, .siblings_min_usage = 1600 * M } };
        DoctorCap cap;

        doctor_compute_protection(c1, ELEMENTSOF(c1), false);
        doctor_compute_protection(c2, ELEMENTSOF(c2), false);
        assert_int_equal(c1[1].emin, 375 * M);
        assert_int_equal(c2[1].emin, 625 * M);
        assert_int_equal(c1[1].emin + c2[1].emin, c1[0].emin);
        cap = doctor_find_cap(c1, ELEMENTSOF(c1), false);
        assert_int_equal(cap.reason, DOCTOR_CAP_SHARED);
        assert_int_equal(cap.link, 1);
}

static void test_middle_link_caps_the_leaf(void **state) {
        /* A (min 2G) / B (min 256M, 1G charged) / C (min 1G, 800M charged): C gets B's 256M, capped at B. */
        DoctorLink chain[] = { { .min = 2048 * M, .usage = 1024 * M },
                               only_child(256 * M, 0, 1024 * M),
                               only_child(1024 * M, 0, 800 * M) };
        DoctorCap cap;

        doctor_compute_protection(chain, ELEMENTSOF(chain), false);
        assert_int_equal(chain[1].emin, 256 * M);
        assert_int_equal(chain[2].emin, 256 * M);
        cap = doctor_find_cap(chain, ELEMENTSOF(chain), false);
        assert_int_equal(cap.link, 1);
        assert_int_equal(cap.reason, DOCTOR_CAP_SETTING);
}

static void test_memory_low_is_computed_apart_from_min(void **state) {
        /* Same shape for memory.low: A low 512M / B low 1G with 700M: B's low is capped at 512M by A. */
        DoctorLink chain[] = { { .min = 0, .low = 512 * M, .usage = 800 * M }, only_child(0, 1024 * M, 700 * M) };
        DoctorCap cap;

        doctor_compute_protection(chain, ELEMENTSOF(chain), false);
        assert_int_equal(chain[1].emin, 0);
        assert_int_equal(chain[1].elow, 512 * M);
        cap = doctor_find_cap(chain, ELEMENTSOF(chain), true);
        assert_int_equal(cap.link, 0);
        assert_int_equal(cap.reason, DOCTOR_CAP_SETTING);
}

static void test_recursiveprot_hands_unclaimed_protection_down(void **state) {
        /*
         * P (min 1024M, 1000M charged) / C1 (min 200M, 600M charged) and C2 (min 0, 400M charged).
         * Claimed: 200M. Without memory_recursiveprot C1 gets 200M, C2 nothing. With it, the
         * unclaimed 824M goes by unprotected usage: (1024 - 200) * (600 - 200) / (1000 - 200) = 412M
         * more for C1 (612M), and 824 * 400 / 800 = 412M for C2.
         */
        DoctorLink c1[] = { { .min = 1024 * M, .usage = 1000 * M },
                            { .min = 200 * M, .usage = 600 * M, .siblings_min_usage = 200 * M } };
        DoctorLink c2[] = { { .min = 1024 * M, .usage = 1000 * M },
                            { .min = 0, .usage = 400 * M, .siblings_min_usage = 200 * M } };

        doctor_compute_protection(c1, ELEMENTSOF(c1), false);
        doctor_compute_protection(c2, ELEMENTSOF(c2), false);
        assert_int_equal(c1[1].emin, 200 * M);
        assert_int_equal(c2[1].emin, 0);
        doctor_compute_protection(c1, ELEMENTSOF(c1), true);
        doctor_compute_protection(c2, ELEMENTSOF(c2), true);
        assert_int_equal(c1[1].emin, 612 * M);
        assert_int_equal(c2[1].emin, 412 * M);
        assert_int_equal(doctor_find_cap(c2, ELEMENTSOF(c2), false).reason, DOCTOR_CAP_NONE);
}

static void test_recursiveprot_never_exceeds_an_overcommitted_share(void **state) {
        /* Overcommitted siblings get their share only, recursiveprot or not. */
        assert_int_equal(doctor_effective_protection(600 * M, 2600 * M, 1024 * M, 1000 * M, 1600 * M, true),
                         375 * M);
}

static void test_cgroup_without_charge_has_nothing_to_protect(void **state) {
        DoctorLink chain[] = { { .min = 1024 * M, .usage = 10 * M }, only_child(64 * M, 0, 0) };

        doctor_compute_protection(chain, ELEMENTSOF(chain), false);
        assert_int_equal(chain[1].emin, 0);
        assert_int_equal(doctor_find_cap(chain, ELEMENTSOF(chain), false).reason, DOCTOR_CAP_NOTHING_CHARGED);
}

static void test_max_and_huge_values_do_not_overflow(void **state) {
        const uint64_t big = UINT64_C(1) << 62;
        DoctorLink chain[] = { { .min = DOCTOR_MAX, .usage = 4096 * M }, only_child(1024 * M, 0, 2048 * M) };

        doctor_compute_protection(chain, ELEMENTSOF(chain), true);
        assert_true(chain[0].emin == DOCTOR_MAX);
        assert_true(chain[1].emin >= 1024 * M);
        /* 2^62 claimed of 2^63 claimed in all, parent affords 2^61: 2^62 * 2^61 / 2^63 = 2^60. */
        assert_true(doctor_effective_protection(big, big * 2, big, big / 2, big * 2, false) == big / 4);
}

static void test_rank_counts_the_higher_scores(void **state) {
        const int scores[] = { 0, 100, 667, 300, 667 };

        assert_int_equal(doctor_oom_rank(scores, ELEMENTSOF(scores), 667), 1);
        assert_int_equal(doctor_oom_rank(scores, ELEMENTSOF(scores), 300), 3);
        assert_int_equal(doctor_oom_rank(scores, ELEMENTSOF(scores), 0), 5);
}

static DoctorVerdict judge(DoctorKiller k, pid_t pid, char **argv, const DoctorTarget *t, const char *want_in_why) {
        DoctorKillerProcess p = { .pid = pid, .argv = argv };
        DoctorJudgement j = {};
        DoctorVerdict v;

        assert_int_equal(doctor_judge(k, &p, t, &j), 0);
        assert_non_null(j.why);
        if (want_in_why && !strstr(j.why, want_in_why))
                fail_msg("\"%s\" not in \"%s\"", want_in_why, j.why);
        if (j.verdict == DOCTOR_VERDICT_NOT_HONOURED)
                assert_non_null(j.advice);
        v = j.verdict;
        doctor_judgement_done(&j);
        return v;
}

static void test_kernel_honours_only_adj_minus_1000(void **state) {
        DoctorTarget t = { .pid = 42, .comm = "sleep", .oom_score = 0, .oom_score_adj = -1000 };

        assert_int_equal(judge(DOCTOR_KILLER_KERNEL, 0, NULL, &t, "-1000"), DOCTOR_VERDICT_HONOURED);
        t.oom_score_adj = -999;
        t.oom_score = 1;
        assert_int_equal(judge(DOCTOR_KILLER_KERNEL, 0, NULL, &t, "-999"), DOCTOR_VERDICT_NOT_HONOURED);
        t.pid = 1; /* init: oom_unkillable_task(), whatever its adj */
        assert_int_equal(judge(DOCTOR_KILLER_KERNEL, 0, NULL, &t, "init"), DOCTOR_VERDICT_HONOURED);
}

static void test_earlyoom_skips_minus_1000_unless_it_kills_the_process_group(void **state) {
        char *plain[] = { "/usr/bin/earlyoom", "-r", "3600", NULL };
        char *group[] = { "/usr/bin/earlyoom", "-m", "5", "-dg", NULL };
        DoctorTarget t = { .pid = 42, .comm = "sleep", .oom_score_adj = -1000, .pgrp_shared = true };

        assert_int_equal(judge(DOCTOR_KILLER_EARLYOOM, 7, plain, &t, "-1000"), DOCTOR_VERDICT_HONOURED);
        assert_int_equal(judge(DOCTOR_KILLER_EARLYOOM, 7, group, &t, "-g"), DOCTOR_VERDICT_NOT_HONOURED);
        t.pgrp_shared = false;
        assert_int_equal(judge(DOCTOR_KILLER_EARLYOOM, 7, group, &t, NULL), DOCTOR_VERDICT_HONOURED);
        assert_int_equal(judge(DOCTOR_KILLER_EARLYOOM, 0, plain, &t, "does not run"), DOCTOR_VERDICT_NOT_RUNNING);
}

static void test_earlyoom_prefer_ignores_a_negative_adj(void **state) {
        char *prefer[] = { "earlyoom", "--prefer", "^(sleep|cc1)$", NULL };
        DoctorTarget t = { .pid = 42, .comm = "sleep", .oom_score = 100, .oom_score_adj = -900 };

        assert_int_equal(judge(DOCTOR_KILLER_EARLYOOM, 7, prefer, &t, "--prefer"), DOCTOR_VERDICT_NOT_HONOURED);
        t.comm = "postgres";
        assert_int_equal(judge(DOCTOR_KILLER_EARLYOOM, 7, prefer, &t, "only oom_score_adj -1000"),
                         DOCTOR_VERDICT_NOT_HONOURED);
}

static void test_earlyoom_options_are_parsed_like_getopt(void **state) {
        char *a[] = { "earlyoom", "-r", "g", "--avoid=^x$", "--prefer", "y", NULL };
        char *b[] = { "earlyoom", "-m5", "-ng", NULL };
        char *c[] = { "earlyoom", "--", "-g", NULL };
        EarlyoomOptions o;

        doctor_parse_earlyoom_argv(a, &o);
        assert_false(o.kill_group); /* "g" is -r's value */
        assert_string_equal(o.avoid, "^x$");
        assert_string_equal(o.prefer, "y");
        doctor_parse_earlyoom_argv(b, &o);
        assert_true(o.kill_group);
        doctor_parse_earlyoom_argv(c, &o);
        assert_false(o.kill_group);
}

static void test_systemd_oomd_honours_omit_only_on_root_owned_cgroups(void **state) {
        DoctorTarget t = { .pid = 42, .comm = "sleep", .oom_score_adj = -1000, .oomd_omit = true,
                           .cgroup_root_owned = true, .oomd_watched = 1, .oomd_watched_by = "-.slice" };

        assert_int_equal(judge(DOCTOR_KILLER_SYSTEMD_OOMD, 9, NULL, &t, "user.oomd_omit"), DOCTOR_VERDICT_HONOURED);
        t.cgroup_root_owned = false;
        assert_int_equal(judge(DOCTOR_KILLER_SYSTEMD_OOMD, 9, NULL, &t, "belong to root"),
                         DOCTOR_VERDICT_NOT_HONOURED);
        t.oomd_omit = false;
        t.cgroup_root_owned = true;
        /* oom_score_adj -1000 means nothing to it: it kills cgroups. */
        assert_int_equal(judge(DOCTOR_KILLER_SYSTEMD_OOMD, 9, NULL, &t, "-.slice"), DOCTOR_VERDICT_NOT_HONOURED);
        t.oomd_watched = 0;
        assert_int_equal(judge(DOCTOR_KILLER_SYSTEMD_OOMD, 9, NULL, &t, "does not act"),
                         DOCTOR_VERDICT_NOT_WATCHED);
        t.oomd_watched = -1;
        assert_int_equal(judge(DOCTOR_KILLER_SYSTEMD_OOMD, 9, NULL, &t, NULL), DOCTOR_VERDICT_UNKNOWN);
}

static void test_nohang_and_fb_oomd(void **state) {
        DoctorTarget t = { .pid = 42, .comm = "sleep", .oom_score = 0, .oom_score_adj = -1000 };

        assert_int_equal(judge(DOCTOR_KILLER_NOHANG, 5, NULL, &t, "oom_score is 0"), DOCTOR_VERDICT_HONOURED);
        t.oom_score = 3;
        assert_int_equal(judge(DOCTOR_KILLER_NOHANG, 5, NULL, &t, "3"), DOCTOR_VERDICT_NOT_HONOURED);
        assert_int_equal(judge(DOCTOR_KILLER_FB_OOMD, 5, NULL, &t, "trusted.oomd_avoid"),
                         DOCTOR_VERDICT_NOT_HONOURED);
        t.fb_unreadable = true; /* doctor without CAP_SYS_ADMIN: the kernel hides trusted.* */
        assert_int_equal(judge(DOCTOR_KILLER_FB_OOMD, 5, NULL, &t, "CAP_SYS_ADMIN"), DOCTOR_VERDICT_UNKNOWN);
        t.fb_unreadable = false;
        t.fb_avoid_user = true;
        assert_int_equal(judge(DOCTOR_KILLER_FB_OOMD, 5, NULL, &t, "older versions"), DOCTOR_VERDICT_UNKNOWN);
        t.fb_avoid = true;
        assert_int_equal(judge(DOCTOR_KILLER_FB_OOMD, 5, NULL, &t, "last"), DOCTOR_VERDICT_HONOURED);
        /* oomd_prefer beats oomd_avoid on the same cgroup. */
        t.fb_prefer = true;
        assert_int_equal(judge(DOCTOR_KILLER_FB_OOMD, 5, NULL, &t, "picked first"), DOCTOR_VERDICT_NOT_HONOURED);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parent_without_memory_min_caps_child_to_zero),
                cmocka_unit_test(test_top_level_gets_its_setting_and_child_its_claim),
                cmocka_unit_test(test_claim_is_bounded_by_usage),
                cmocka_unit_test(test_overcommitted_siblings_share_in_proportion),
                cmocka_unit_test(test_middle_link_caps_the_leaf),
                cmocka_unit_test(test_memory_low_is_computed_apart_from_min),
                cmocka_unit_test(test_recursiveprot_hands_unclaimed_protection_down),
                cmocka_unit_test(test_recursiveprot_never_exceeds_an_overcommitted_share),
                cmocka_unit_test(test_cgroup_without_charge_has_nothing_to_protect),
                cmocka_unit_test(test_max_and_huge_values_do_not_overflow),
                cmocka_unit_test(test_rank_counts_the_higher_scores),
                cmocka_unit_test(test_kernel_honours_only_adj_minus_1000),
                cmocka_unit_test(test_earlyoom_skips_minus_1000_unless_it_kills_the_process_group),
                cmocka_unit_test(test_earlyoom_prefer_ignores_a_negative_adj),
                cmocka_unit_test(test_earlyoom_options_are_parsed_like_getopt),
                cmocka_unit_test(test_systemd_oomd_honours_omit_only_on_root_owned_cgroups),
                cmocka_unit_test(test_nohang_and_fb_oomd),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
