/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's work queue (src/daemon/workq.c): clients in turns, one item per loop iteration, bounded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-event.h>

#include <cmocka.h>

#include "workq.h"

typedef struct Job {
        WorkItem item;
        char name[8];
} Job;

static char ran[64];

static void run_job(void *userdata) {
        Job *j = userdata;

        strncat(ran, j->name, sizeof(ran) - strlen(ran) - 1);
}

/* Runs the loop until nothing is pending; returns how many iterations dispatched something. */
static int run_until_idle(sd_event *e) {
        int n = 0;

        while (sd_event_run(e, 0) > 0)
                n++;
        return n;
}

static void test_clients_take_turns_one_item_per_iteration(void **state) {
        sd_event *e = NULL;
        WorkQueue *q = NULL;
        Job a[3] = { { .name = "a1" }, { .name = "a2" }, { .name = "a3" } }, b = { .name = "b1" }, c = { .name = "c1" };

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(work_queue_new(e, &q), 0);
        ran[0] = '\0';
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(work_queue_submit(q, ":1.1", &a[i].item, run_job, &a[i]), 0);
        assert_int_equal(work_queue_submit(q, ":1.2", &b.item, run_job, &b), 0);
        assert_int_equal(work_queue_submit(q, "ctl.sock#1", &c.item, run_job, &c), 0);
        assert_int_equal(work_queue_length(q), 5);
        assert_int_equal(work_queue_client_length(q, ":1.1"), 3);
        /* One client's three calls do not go before the others' first. */
        assert_int_equal(run_until_idle(e), 5);
        assert_string_equal(ran, "a1b1c1a2a3");
        assert_int_equal(work_queue_length(q), 0);
        work_queue_free(q);
        sd_event_unref(e);
}

static void test_a_full_queue_refuses_and_a_cancelled_item_never_runs(void **state) {
        static Job jobs[WORK_QUEUE_PER_CLIENT_MAX + 1];
        sd_event *e = NULL;
        WorkQueue *q = NULL;
        Job other = { .name = "x" };

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(work_queue_new(e, &q), 0);
        ran[0] = '\0';
        for (size_t i = 0; i < WORK_QUEUE_PER_CLIENT_MAX; i++) {
                snprintf(jobs[i].name, sizeof(jobs[i].name), "%s", i == 0 ? "f" : "");
                assert_int_equal(work_queue_submit(q, ":1.9", &jobs[i].item, run_job, &jobs[i]), 0);
        }
        assert_int_equal(work_queue_submit(q, ":1.9", &jobs[WORK_QUEUE_PER_CLIENT_MAX].item, run_job,
                                           &jobs[WORK_QUEUE_PER_CLIENT_MAX]), -EBUSY);
        assert_int_equal(work_queue_client_length(q, ":1.9"), WORK_QUEUE_PER_CLIENT_MAX);
        /* Another client still gets in; an item already queued cannot be queued twice. */
        assert_int_equal(work_queue_submit(q, ":1.10", &other.item, run_job, &other), 0);
        assert_int_equal(work_queue_submit(q, ":1.10", &other.item, run_job, &other), -EALREADY);
        work_queue_cancel(&jobs[0].item);
        work_queue_cancel(&jobs[0].item); /* a no-op once out */
        assert_int_equal(work_queue_client_length(q, ":1.9"), WORK_QUEUE_PER_CLIENT_MAX - 1);
        assert_int_equal(run_until_idle(e), WORK_QUEUE_PER_CLIENT_MAX);
        assert_string_equal(ran, "x"); /* "f" was cancelled */
        /* Freed with items queued: they are forgotten, never run. */
        assert_int_equal(work_queue_submit(q, ":1.9", &jobs[0].item, run_job, &jobs[0]), 0);
        work_queue_free(q);
        assert_int_equal(run_until_idle(e), 0);
        assert_string_equal(ran, "x");
        sd_event_unref(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_clients_take_turns_one_item_per_iteration),
                cmocka_unit_test(test_a_full_queue_refuses_and_a_cancelled_item_never_runs),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
