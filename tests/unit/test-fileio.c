/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "fileio.h"
#include "macro.h"

static int setup_dir(void **state) {
        char tmpl[] = "/tmp/oomprotect-test-fileio.XXXXXX";
        int *fd = malloc(sizeof(int));

        assert_non_null(mkdtemp(tmpl));
        *fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(*fd >= 0);
        *state = fd;
        return 0;
}

static int teardown_dir(void **state) {
        int *fd = *state;
        char path[64];
        DIR *d = fdopendir(dup(*fd));
        struct dirent *de;

        rewinddir(d); /* the dup shares its offset with every earlier reader of this fd */
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' || strlen(de->d_name) > 2)
                        (void) unlinkat(*fd, de->d_name, 0);
        closedir(d);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", *fd);
        char real[256] = {};
        assert_true(readlink(path, real, sizeof(real) - 1) > 0);
        close(*fd);
        rmdir(real);
        free(fd);
        return 0;
}

static size_t count_entries(int dirfd) {
        DIR *d = fdopendir(dup(dirfd));
        struct dirent *de;
        size_t n = 0;

        rewinddir(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_atomic_write_replaces_content_and_leaves_no_temp_file(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_free_ char *a = NULL, *b = NULL;
        struct stat st;
        size_t len;

        assert_int_equal(write_file_atomic_at(dirfd, "state.json", "first", 5, 0600), 0);
        assert_int_equal(read_full_file_at(dirfd, "state.json", 1024, &a, &len), 0);
        assert_string_equal(a, "first");
        assert_int_equal(write_file_atomic_at(dirfd, "state.json", "second\n", 7, 0644), 0);
        assert_int_equal(read_full_file_at(dirfd, "state.json", 1024, &b, &len), 0);
        assert_string_equal(b, "second\n");
        assert_int_equal(len, 7);
        assert_int_equal(fstatat(dirfd, "state.json", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(count_entries(dirfd), 1);
}

static void test_replace_without_sync_replaces_content_and_leaves_no_temp_file(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_free_ char *a = NULL, *b = NULL;
        struct stat st;

        assert_int_equal(write_file_replace_at(dirfd, "status", "first\n", 6, 0644), 0);
        assert_int_equal(read_full_file_at(dirfd, "status", 1024, &a, NULL), 0);
        assert_string_equal(a, "first\n");
        assert_int_equal(write_file_replace_at(dirfd, "status", "2\n", 2, 0644), 0);
        assert_int_equal(read_full_file_at(dirfd, "status", 1024, &b, NULL), 0);
        assert_string_equal(b, "2\n");
        assert_int_equal(fstatat(dirfd, "status", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(count_entries(dirfd), 1);
}

static void test_atomic_write_survives_a_stale_temp_file_of_a_killed_writer(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_free_ char *text = NULL;
        char name[128];

        /* A daemon SIGKILLed between open and rename, whose PID we now have, left these. */
        for (unsigned i = 0; i < 64; i++) {
                snprintf(name, sizeof(name), ".#state.json.%d.%u", (int) getpid(), i);
                int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                close(fd);
        }
        assert_int_equal(write_file_atomic_at(dirfd, "state.json", "fresh", 5, 0600), 0);
        assert_int_equal(read_full_file_at(dirfd, "state.json", 64, &text, NULL), 0);
        assert_string_equal(text, "fresh");
}

static void test_read_full_file_refuses_files_over_the_limit(void **state) {
        int dirfd = *(int *) *state;
        char big[10000];
        char *s = NULL;

        memset(big, 'x', sizeof(big));
        assert_int_equal(write_file_atomic_at(dirfd, "big", big, sizeof(big), 0600), 0);
        assert_int_equal(read_full_file_at(dirfd, "big", 4096, &s, NULL), -EFBIG);
        assert_null(s);
        assert_int_equal(read_full_file_at(dirfd, "big", sizeof(big), &s, NULL), 0);
        assert_int_equal(strlen(s), sizeof(big));
        free(s);
}

static void test_read_missing_file_is_enoent(void **state) {
        int dirfd = *(int *) *state;
        char *s = NULL;

        assert_int_equal(read_full_file_at(dirfd, "nope", 10, &s, NULL), -ENOENT);
        assert_int_equal(read_one_line_at(dirfd, "nope", &s), -ENOENT);
}

static void test_write_string_file_never_creates(void **state) {
        int dirfd = *(int *) *state;
        _cleanup_free_ char *line = NULL;

        assert_int_equal(write_string_file_at(dirfd, "absent", "1"), -ENOENT);
        assert_int_equal(write_file_atomic_at(dirfd, "present", "old\nsecond\n", 11, 0600), 0);
        assert_int_equal(write_string_file_at(dirfd, "present", "new"), 0);
        assert_int_equal(read_one_line_at(dirfd, "present", &line), 0);
        assert_string_equal(line, "new"); /* no O_TRUNC: "new" over "old", the rest stays */
}

static void test_read_regular_file_refuses_fifo_symlink_and_directory_without_blocking(void **state) {
        int fd = *(int *) *state;
        char *text = NULL;

        assert_int_equal(mkfifoat(fd, "fifo", 0600), 0);
        assert_int_equal(symlinkat("real", fd, "link"), 0);
        assert_int_equal(mkdirat(fd, "dir", 0700), 0);
        assert_int_equal(write_file_atomic_at(fd, "real", "x", 1, 0600), 0);
        assert_int_equal(read_regular_file_at(fd, "fifo", 1024, &text, NULL), -EBADFD);
        assert_int_equal(read_regular_file_at(fd, "link", 1024, &text, NULL), -ELOOP);
        assert_int_equal(read_regular_file_at(fd, "dir", 1024, &text, NULL), -EISDIR);
        assert_null(text);
        assert_int_equal(read_regular_file_at(fd, "real", 1024, &text, NULL), 0);
        assert_string_equal(text, "x");
        free(text);
        (void) unlinkat(fd, "dir", AT_REMOVEDIR);
}

static void test_stale_temp_files_of_dead_writers_go_and_live_ones_stay(void **state) {
        int fd = *(int *) *state, keep;
        char dead_name[64], live_name[64];
        pid_t dead = fork();

        if (dead == 0)
                _exit(0);
        assert_true(dead > 0);
        assert_int_equal(waitpid(dead, NULL, 0), dead);
        snprintf(dead_name, sizeof(dead_name), ".#state.json.%d.3", (int) dead);
        snprintf(live_name, sizeof(live_name), ".#state.json.%d.0", (int) getppid());
        keep = openat(fd, dead_name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        close(keep);
        keep = openat(fd, live_name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        close(keep);
        keep = openat(fd, ".#status.1.x", O_WRONLY | O_CREAT | O_CLOEXEC, 0600); /* another file's */
        close(keep);
        assert_int_equal(remove_stale_temp_files_at(fd, "state.json"), 1);
        assert_int_equal(faccessat(fd, dead_name, F_OK, 0), -1);
        assert_int_equal(faccessat(fd, live_name, F_OK, 0), 0);
        assert_int_equal(faccessat(fd, ".#status.1.x", F_OK, 0), 0);
}

static void test_private_directory_refuses_symlinks_and_loose_modes(void **state) {
        char tmpl[] = "/tmp/oomprotect-test-private.XXXXXX", sub[128], link[128];
        struct stat st;
        int fd = -1;

        assert_non_null(mkdtemp(tmpl));
        snprintf(sub, sizeof(sub), "%s/dir", tmpl);
        snprintf(link, sizeof(link), "%s/link", tmpl);
        assert_int_equal(mkdir(sub, 0755), 0);
        assert_int_equal(symlink(sub, link), 0);
        assert_int_equal(open_private_directory(sub, &fd, NULL), 0);
        close(fd);
        assert_int_equal(open_private_directory(link, &fd, NULL), -ELOOP);
        snprintf(link, sizeof(link), "%s/link/.", tmpl); /* a link in the middle */
        assert_int_equal(open_private_directory(link, &fd, NULL), -ELOOP);
        assert_int_equal(chmod(sub, 0775), 0);
        assert_int_equal(open_private_directory(sub, &fd, &st), -EPERM);
        assert_int_equal(st.st_mode & 07777, 0775);
        snprintf(link, sizeof(link), "%s/link", tmpl);
        unlink(link);
        rmdir(sub);
        rmdir(tmpl);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_read_regular_file_refuses_fifo_symlink_and_directory_without_blocking,
                                                setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_stale_temp_files_of_dead_writers_go_and_live_ones_stay, setup_dir,
                                                teardown_dir),
                cmocka_unit_test(test_private_directory_refuses_symlinks_and_loose_modes),
                cmocka_unit_test_setup_teardown(test_atomic_write_replaces_content_and_leaves_no_temp_file,
                                                setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_replace_without_sync_replaces_content_and_leaves_no_temp_file,
                                                setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_atomic_write_survives_a_stale_temp_file_of_a_killed_writer,
                                                setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_read_full_file_refuses_files_over_the_limit, setup_dir,
                                                teardown_dir),
                cmocka_unit_test_setup_teardown(test_read_missing_file_is_enoent, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_write_string_file_never_creates, setup_dir, teardown_dir),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
