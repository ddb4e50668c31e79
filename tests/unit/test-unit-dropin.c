/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
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

#include "cgroup.h"
#include "hold.h"
#include "macro.h"
#include "unit-dropin.h"

/*
 * The two directories systemd writes runtime drop-ins to, made in a
 * temporary directory: the same code the systemd backend runs reads and
 * puts back the files there. What systemd 252 itself writes is the VM
 * tier's (tests/vm/scenarios/71-units.sh).
 */
typedef struct Dirs {
        char top[64];
        char control[96], transient[96];
        const char *dirs[UNIT_DROPIN_DIRS];
} Dirs;

static const char ours[] = "# This is a drop-in unit file extension, created via \"systemctl set-property\"\n"
                           "# or an equivalent operation. Do not edit.\n[Service]\nMemoryMin=67108864\n";
static const char admin[] = "# This is a drop-in unit file extension, created via \"systemctl set-property\"\n"
                            "# or an equivalent operation. Do not edit.\n[Service]\nMemoryLow=100M\n";

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        Dirs *d = calloc(1, sizeof(Dirs));

        strcpy(d->top, "/tmp/oomprotect-test-dropin.XXXXXX");
        assert_non_null(mkdtemp(d->top));
        snprintf(d->control, sizeof(d->control), "%s/system.control", d->top);
        snprintf(d->transient, sizeof(d->transient), "%s/transient", d->top);
        assert_int_equal(mkdir(d->control, 0755), 0);
        assert_int_equal(mkdir(d->transient, 0755), 0);
        d->dirs[0] = d->control;
        d->dirs[1] = d->transient;
        *state = d;
        return 0;
}

static int teardown(void **state) {
        Dirs *d = *state;

        nftw(d->top, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(d);
        return 0;
}

static void put_file(const char *dir, const char *unit, const char *name, const char *text) {
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s.d", dir, unit);
        (void) mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/%s.d/%s", dir, unit, name);
        assert_non_null(f = fopen(path, "we"));
        fputs(text, f);
        fclose(f);
}

/* The file's bytes (NULL when absent). */
static char *file_text(const char *dir, const char *unit, const char *name) {
        char path[512], *text = NULL;
        size_t size = 0;
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s.d/%s", dir, unit, name);
        f = fopen(path, "re");
        if (!f)
                return NULL;
        assert_int_equal(getdelim(&text, &size, '\0', f) >= 0, true);
        fclose(f);
        return text;
}

static void dropins_done(XattrValue v[UNIT_DROPINS]) {
        for (size_t i = 0; i < UNIT_DROPINS; i++)
                xattr_value_done(&v[i]);
}

static void test_dropin_unit_names_are_checked(void **state) {
        char longest[300];

        assert_true(unit_dropin_unit_is_valid("nginx.service"));
        assert_true(unit_dropin_unit_is_valid("system.slice"));
        assert_true(unit_dropin_unit_is_valid("system-getty.slice"));
        assert_true(unit_dropin_unit_is_valid("getty@tty1.service"));
        assert_true(unit_dropin_unit_is_valid("a\\x2db.service"));
        assert_false(unit_dropin_unit_is_valid(NULL));
        assert_false(unit_dropin_unit_is_valid(""));
        assert_false(unit_dropin_unit_is_valid("nginx"));
        assert_false(unit_dropin_unit_is_valid("multi-user.target"));
        assert_false(unit_dropin_unit_is_valid("../../etc/x.service"));
        assert_false(unit_dropin_unit_is_valid("a/b.service"));
        assert_false(unit_dropin_unit_is_valid(".hidden.service"));
        assert_false(unit_dropin_unit_is_valid("sp ace.service"));
        memset(longest, 'a', sizeof(longest));
        strcpy(longest + 250, ".service");
        assert_false(unit_dropin_unit_is_valid(longest));
}

static void test_dropins_read_records_absent_files_and_exact_bytes(void **state) {
        Dirs *d = *state;
        XattrValue v[UNIT_DROPINS];
        const XattrValue *low;

        for (size_t i = 0; i < UNIT_DROPINS; i++)
                v[i] = (XattrValue) { .state = -1 };
        put_file(d->control, "x.service", "50-MemoryLow.conf", admin);
        assert_int_equal(unit_dropins_read(d->dirs, "x.service", v), 0);
        low = &v[unit_dropin_slot(0, DROPIN_MEMORY_LOW)];
        assert_int_equal(low->state, 1);
        assert_int_equal(low->size, strlen(admin));
        assert_memory_equal(low->value, admin, strlen(admin));
        assert_int_equal(v[unit_dropin_slot(0, DROPIN_MEMORY_MIN)].state, 0);
        assert_int_equal(v[unit_dropin_slot(0, DROPIN_MANAGED_OOM_PREFERENCE)].state, 0);
        for (UnitDropInProperty p = 0; p < _DROPIN_PROPERTY_MAX; p++)
                assert_int_equal(v[unit_dropin_slot(1, p)].state, 0); /* no x.service.d there at all */
        dropins_done(v);
}

/* What a raise and its restoring call leave (systemd's files), put back: ours removed, the admin's rewritten. */
static void test_dropins_restore_removes_ours_and_rewrites_the_admins_bytes(void **state) {
        Dirs *d = *state;
        XattrValue v[UNIT_DROPINS];
        _cleanup_free_ char *low = NULL;
        char dir[256];

        for (size_t i = 0; i < UNIT_DROPINS; i++)
                v[i] = (XattrValue) { .state = -1 };
        put_file(d->control, "x.service", "50-MemoryLow.conf", admin);
        assert_int_equal(unit_dropins_read(d->dirs, "x.service", v), 0);
        put_file(d->control, "x.service", "50-MemoryMin.conf", ours);
        put_file(d->control, "x.service", "50-MemoryLow.conf", "[Service]\nMemoryLow=104857600\n");
        put_file(d->control, "x.service", "50-ManagedOOMPreference.conf", "[Service]\nManagedOOMPreference=omit\n");
        assert_int_equal(unit_dropins_restore(d->dirs, "x.service", v, UNIT_DROPIN_ALL), 0);
        assert_null(file_text(d->control, "x.service", "50-MemoryMin.conf"));
        assert_null(file_text(d->control, "x.service", "50-ManagedOOMPreference.conf"));
        low = file_text(d->control, "x.service", "50-MemoryLow.conf");
        assert_non_null(low);
        assert_string_equal(low, admin);
        /* A unit that had none: its directory goes with our files. */
        dropins_done(v);
        for (size_t i = 0; i < UNIT_DROPINS; i++)
                v[i] = (XattrValue) { .state = -1 };
        assert_int_equal(unit_dropins_read(d->dirs, "system.slice", v), 0);
        put_file(d->control, "system.slice", "50-MemoryMin.conf", ours);
        put_file(d->control, "system.slice", "50-MemoryLow.conf", ours);
        assert_int_equal(unit_dropins_restore(d->dirs, "system.slice", v, UNIT_DROPIN_ALL), 0);
        snprintf(dir, sizeof(dir), "%s/system.slice.d", d->control);
        assert_int_equal(access(dir, F_OK), -1);
        assert_int_equal(errno, ENOENT);
        dropins_done(v);
}

/* Only the properties of the restoring call, only what was recorded; a file as recorded is not rewritten. */
static void test_dropins_restore_leaves_what_it_was_not_asked_for(void **state) {
        Dirs *d = *state;
        XattrValue v[UNIT_DROPINS];
        _cleanup_free_ char *pref = NULL, *min = NULL;

        for (size_t i = 0; i < UNIT_DROPINS; i++)
                v[i] = (XattrValue) { .state = -1 };
        assert_int_equal(unit_dropins_read(d->dirs, "y.service", v), 0);
        put_file(d->control, "y.service", "50-ManagedOOMPreference.conf", "[Service]\nManagedOOMPreference=avoid\n");
        put_file(d->control, "y.service", "50-MemoryMin.conf", ours);
        v[unit_dropin_slot(0, DROPIN_MEMORY_MIN)].state = -1; /* not recorded: an old record */
        assert_int_equal(unit_dropins_restore(d->dirs, "y.service", v, 1U << DROPIN_MEMORY_MIN | 1U << DROPIN_MEMORY_LOW),
                         0);
        pref = file_text(d->control, "y.service", "50-ManagedOOMPreference.conf");
        min = file_text(d->control, "y.service", "50-MemoryMin.conf");
        assert_non_null(pref);
        assert_non_null(min);
        assert_string_equal(min, ours);
        dropins_done(v);
}

/*
 * A release that sends no ManagedOOMPreference (the original was unreadable)
 * still puts back the file the raise's preference left; a hold that never
 * wrote one leaves that file (someone else's) alone.
 */
static void test_dropins_put_back_of_a_hold_covers_the_preference_it_ever_wrote(void **state) {
        Dirs *d = *state;
        CgroupHold h = { .applied_preference = -1 };
        _cleanup_free_ char *pref = NULL;

        for (size_t i = 0; i < UNIT_DROPINS; i++)
                h.original_dropins[i] = (XattrValue) { .state = -1 };
        assert_int_equal(unit_dropins_read(d->dirs, "z.service", h.original_dropins), 0);
        put_file(d->control, "z.service", "50-ManagedOOMPreference.conf", "[Service]\nManagedOOMPreference=avoid\n");
        put_file(d->control, "z.service", "50-MemoryMin.conf", ours);
        assert_int_equal(unit_dropins_restore(d->dirs, "z.service", h.original_dropins, hold_dropin_mask(&h)), 0);
        assert_null(file_text(d->control, "z.service", "50-MemoryMin.conf"));
        pref = file_text(d->control, "z.service", "50-ManagedOOMPreference.conf");
        assert_non_null(pref); /* never ours */

        h.applied_preference = 2; /* a raise wrote one, the release sends none */
        assert_int_equal(unit_dropins_restore(d->dirs, "z.service", h.original_dropins, hold_dropin_mask(&h)), 0);
        assert_null(file_text(d->control, "z.service", "50-ManagedOOMPreference.conf"));

        h.applied_preference = -1; /* from state.json: an earlier daemon may have written it */
        h.loaded = true;
        put_file(d->control, "z.service", "50-ManagedOOMPreference.conf", "[Service]\nManagedOOMPreference=omit\n");
        assert_int_equal(unit_dropins_restore(d->dirs, "z.service", h.original_dropins, hold_dropin_mask(&h)), 0);
        assert_null(file_text(d->control, "z.service", "50-ManagedOOMPreference.conf"));
        dropins_done(h.original_dropins);
}

/* Never through a link: a link is refused when recording, and replaced (not followed) when putting back. */
static void test_dropins_never_follow_a_symbolic_link(void **state) {
        Dirs *d = *state;
        XattrValue v[UNIT_DROPINS];
        char target[256], link[256];
        _cleanup_free_ char *kept = NULL;

        for (size_t i = 0; i < UNIT_DROPINS; i++)
                v[i] = (XattrValue) { .state = -1 };
        snprintf(target, sizeof(target), "%s/target", d->top);
        snprintf(link, sizeof(link), "%s/z.service.d/50-MemoryMin.conf", d->control);
        put_file(d->control, "z.service", "50-MemoryLow.conf", admin);
        FILE *f = fopen(target, "we");
        assert_non_null(f);
        fputs("precious\n", f);
        fclose(f);
        assert_int_equal(symlink(target, link), 0);
        assert_int_equal(unit_dropins_read(d->dirs, "z.service", v), -ELOOP);
        for (size_t i = 0; i < UNIT_DROPINS; i++)
                assert_int_equal(v[i].state, -1); /* untouched */
        assert_int_equal(unlink(link), 0);
        assert_int_equal(unit_dropins_read(d->dirs, "z.service", v), 0);
        assert_int_equal(symlink(target, link), 0); /* planted after the record */
        assert_int_equal(unit_dropins_restore(d->dirs, "z.service", v, UNIT_DROPIN_ALL), 0);
        assert_int_equal(access(link, F_OK), -1);
        f = fopen(target, "re");
        assert_non_null(f);
        size_t size = 0;
        assert_true(getdelim(&kept, &size, '\0', f) >= 0);
        fclose(f);
        assert_string_equal(kept, "precious\n");
        assert_int_equal(unit_dropins_read(d->dirs, "../z.service", v), -EINVAL);
        assert_int_equal(unit_dropins_restore(d->dirs, "a/b.service", v, UNIT_DROPIN_ALL), -EINVAL);
        dropins_done(v);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dropin_unit_names_are_checked),
                cmocka_unit_test_setup_teardown(test_dropins_read_records_absent_files_and_exact_bytes, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_dropins_restore_removes_ours_and_rewrites_the_admins_bytes,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_dropins_restore_leaves_what_it_was_not_asked_for, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_dropins_put_back_of_a_hold_covers_the_preference_it_ever_wrote,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_dropins_never_follow_a_symbolic_link, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
