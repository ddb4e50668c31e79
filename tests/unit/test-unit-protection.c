/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Units protected by name, the pure part: which names are taken, the table, members, and state.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "state.h"
#include "unit-protection.h"

static void test_names_of_units_with_processes_are_taken(void **state) {
        static const char *const yes[] = { "nginx.service", "getty@tty1.service", "session-4.scope", "cups.socket",
                                           "home.mount", "dev-sda2.swap", "a:b_c\\x2d.service" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                assert_true(unit_name_is_protectable(yes[i]));
}

static void test_names_without_processes_or_malformed_are_refused(void **state) {
        char long_name[300];
        static const char *const no[] = { "", "nginx", ".service", "nginx.target", "system.slice", "a.timer",
                                          "getty@.service", "a@b@c.service", "@x.service", "-x.service",
                                          "bad/name.service", "sp ace.service", "x.service\n", "x\001.service",
                                          "nginx.service.d", "x.SERVICE" };

        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                assert_false(unit_name_is_protectable(no[i]));
        assert_false(unit_name_is_protectable(NULL));
        memset(long_name, 'a', sizeof(long_name));
        strcpy(long_name + 252, ".service"); /* 260 bytes: over systemd's 255 */
        assert_false(unit_name_is_protectable(long_name));
}

static UnitProtection *make(const char *unit, uint64_t min) {
        UnitProtection *u = unit_protection_new();

        assert_non_null(u);
        u->unit = strdup(unit);
        u->cgroup = strdup("/system.slice/x.service");
        u->memory_min = min;
        return u;
}

static void test_the_table_counts_memory_min_and_refuses_duplicates(void **state) {
        UnitTable t = {};
        UnitProtection *a = make("a.service", 100), *b = make("b.service", 50), *dup = make("a.service", 1);

        assert_int_equal(unit_table_add(&t, a), 0);
        assert_int_equal(unit_table_add(&t, b), 0);
        assert_int_equal(unit_table_add(&t, dup), -EEXIST);
        assert_int_equal(t.memory_min_sum, 150);
        assert_ptr_equal(unit_table_get(&t, "b.service"), b);
        assert_ptr_equal(unit_table_remove(&t, "a.service"), a);
        assert_int_equal(t.memory_min_sum, 50);
        assert_null(unit_table_get(&t, "a.service"));
        unit_protection_free(a);
        unit_protection_free(dup);
        unit_table_done(&t);
}

static void test_an_inherited_adj_is_recorded_as_the_first_process_had_it(void **state) {
        UnitProtection *u = make("a.service", 0);

        u->applied_adj = -1000;
        assert_int_equal(unit_original_adj_for(u, 200), 200); /* its own */
        assert_int_equal(unit_original_adj_for(u, -1000), -1000); /* nothing known yet: what it has */
        u->base_adj = 100;
        u->has_base_adj = true;
        assert_int_equal(unit_member_add(u, 10, 1000, 100), 0);
        assert_int_equal(unit_original_adj_for(u, -1000), 100); /* a child of a member: inherited */
        assert_int_equal(unit_original_adj_for(u, 300), 300);
        assert_non_null(unit_member_get(u, 10, 1000));
        assert_null(unit_member_get(u, 10, 1001)); /* the same PID, another process */
        u->n_members = 0; /* a restart took every member: what the unit's processes had is still known */
        assert_int_equal(unit_original_adj_for(u, -1000), 100);
        unit_protection_free(u);
}

static bool odd_alive(const UnitMember *m, void *userdata) {
        return m->pid % 2 == 1;
}

static void test_members_that_are_gone_are_pruned(void **state) {
        UnitProtection *u = make("a.service", 0);

        for (pid_t p = 1; p <= 6; p++)
                assert_int_equal(unit_member_add(u, p, (uint64_t) p, 0), 0);
        unit_members_prune(u, odd_alive, NULL);
        assert_int_equal(u->n_members, 3);
        assert_int_equal(u->members[0].pid, 1);
        assert_int_equal(u->members[2].pid, 5);
        unit_protection_free(u);
}

static void test_units_round_trip_through_state_json(void **state) {
        UnitTable t = {}, back = {};
        _cleanup_free_ char *text = NULL;
        Protection **out = NULL;
        UnitProtection *u = make("nginx.service", 8388608), *v;
        size_t n = 99, skipped = 99;

        u->state = PROTECTION_ACTIVE;
        u->applied_adj = -900;
        u->base_adj = 5;
        u->has_base_adj = true;
        u->memory_low = 4096;
        u->since_usec = 1700000000000000ULL;
        u->source = strdup("dbus");
        assert_int_equal(unit_member_add(u, 1234, 5678, 5), 0);
        assert_int_equal(unit_table_add(&t, u), 0);
        assert_int_equal(state_serialize_full(NULL, 0, NULL, &t, &text), 0);
        assert_int_equal(state_parse_full(text, &out, &n, NULL, &back, &skipped, NULL), 0);
        assert_int_equal(n, 0);
        assert_int_equal(skipped, 0);
        assert_int_equal(back.n, 1);
        v = back.items[0];
        assert_string_equal(v->unit, "nginx.service");
        assert_string_equal(v->cgroup, "/system.slice/x.service");
        assert_int_equal(v->state, PROTECTION_ACTIVE);
        assert_int_equal(v->applied_adj, -900);
        assert_int_equal(v->base_adj, 5);
        assert_true(v->has_base_adj);
        assert_int_equal(v->memory_min, 8388608);
        assert_int_equal(v->memory_low, 4096);
        assert_int_equal(back.memory_min_sum, 8388608);
        assert_string_equal(v->source, "dbus");
        assert_null(v->tag);
        assert_int_equal(v->n_members, 1);
        assert_int_equal(v->members[0].pid, 1234);
        assert_int_equal(v->members[0].starttime, 5678);
        assert_int_equal(v->members[0].original_adj, 5);
        unit_table_done(&t);
        unit_table_done(&back);
        free(out);
}

static void test_bad_unit_records_are_skipped(void **state) {
        static const char *const text =
                "{ \"version\": 2, \"protections\": [], \"units\": ["
                " { \"unit\": \"nginx\", \"cgroup\": \"/system.slice/nginx\" },"
                " { \"unit\": \"a.service\", \"cgroup\": \"system.slice/../a.service\" },"
                " { \"unit\": \"b.service\", \"cgroup\": \"/\" },"
                " { \"unit\": \"c.service\", \"cgroup\": \"/c.service\", \"applied_adj\": -5000 },"
                " { \"unit\": \"d.service\", \"cgroup\": \"/d.service\", \"members\": [ { \"pid\": 0 } ] },"
                " { \"unit\": \"ok.service\", \"cgroup\": \"/system.slice/ok.service\" },"
                " { \"unit\": \"ok.service\", \"cgroup\": \"/system.slice/ok.service\" } ] }";
        UnitTable back = {};
        Protection **out = NULL;
        size_t n = 0, skipped = 0;

        assert_int_equal(state_parse_full(text, &out, &n, NULL, &back, &skipped, NULL), 0);
        assert_int_equal(back.n, 1);
        assert_string_equal(back.items[0]->unit, "ok.service");
        assert_int_equal(back.items[0]->state, PROTECTION_ACTIVE); /* no state: active */
        assert_int_equal(skipped, 6);
        unit_table_done(&back);
        free(out);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names_of_units_with_processes_are_taken),
                cmocka_unit_test(test_names_without_processes_or_malformed_are_refused),
                cmocka_unit_test(test_the_table_counts_memory_min_and_refuses_duplicates),
                cmocka_unit_test(test_an_inherited_adj_is_recorded_as_the_first_process_had_it),
                cmocka_unit_test(test_members_that_are_gone_are_pruned),
                cmocka_unit_test(test_units_round_trip_through_state_json),
                cmocka_unit_test(test_bad_unit_records_are_skipped),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
