/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libcgroup.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cgroup.h"
#include "fileio.h"
#include "macro.h"
#include "parse.h"

static bool is_cgroup2(const char *path) {
        struct statfs fs;

        return statfs(path, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

/*
 * libcgroup lists each controller with its mount (on a hybrid host: memory at
 * the v1 /sys/fs/cgroup/memory, hugetlb at the v2 /sys/fs/cgroup/unified).
 * Only discovery is asked of it: its v2 writes do not fit (DESIGN.md section 2).
 */
static int find_mount_libcgroup(char **ret) {
        struct cgroup_mount_point info;
        void *handle = NULL;
        int r;

        if (cgroup_init() != 0)
                return -ENOENT;
        r = cgroup_get_controller_begin(&handle, &info);
        while (r == 0) {
                if (is_cgroup2(info.path)) {
                        cgroup_get_controller_end(&handle);
                        *ret = strdup(info.path);
                        return *ret ? 0 : -ENOMEM;
                }
                r = cgroup_get_controller_next(&handle, &info);
        }
        cgroup_get_controller_end(&handle);
        return -ENOENT;
}

/* mountinfo's field as a path: "\040" and the like decoded; NULL unless it is absolute. */
static char *mountinfo_unescape(const char *field, size_t len) {
        _cleanup_free_ char *p = malloc(len + 1);
        size_t n = 0;

        if (!p)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                if (field[i] == '\\' && i + 3 < len && field[i + 1] >= '0' && field[i + 1] <= '3' &&
                    field[i + 2] >= '0' && field[i + 2] <= '7' && field[i + 3] >= '0' && field[i + 3] <= '7') {
                        p[n++] = (char) ((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
                        i += 3;
                } else
                        p[n++] = field[i];
        }
        p[n] = '\0';
        if (n == 0 || p[0] != '/' || strlen(p) != n)
                return NULL; /* not absolute, or an escaped NUL */
        return TAKE_PTR(p);
}

int cgroup_parse_mountinfo_cgroup2(const char *text, char **ret) {
        for (const char *l = text; l && *l;) {
                const char *end = strchr(l, '\n');
                _cleanup_free_ char *line = strndup(l, end ? (size_t) (end - l) : strlen(l));
                const char *sep, *f;
                char fstype[64];
                size_t len;

                if (!line)
                        return -ENOMEM;
                l = end ? end + 1 : NULL;
                /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER" */
                sep = strstr(line, " - ");
                if (!sep || sscanf(sep + 3, "%63s", fstype) != 1 || !streq(fstype, "cgroup2"))
                        continue;
                f = line;
                for (int i = 0; i < 4 && f < sep; i++) { /* skip ID PARENT MAJ:MIN ROOT */
                        f += strcspn(f, " ");
                        f += strspn(f, " ");
                }
                if (f >= sep)
                        continue; /* fewer fields than the kernel writes: not a mount line */
                len = strcspn(f, " ");
                if (f + len >= sep)
                        continue; /* no OPTIONS after it */
                *ret = mountinfo_unescape(f, len);
                if (*ret)
                        return 0;
        }
        return -ENOENT;
}

int cgroup_find_mount(char **ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        if (find_mount_libcgroup(ret) == 0)
                return 0;
        r = read_full_file_at(AT_FDCWD, "/proc/self/mountinfo", 16 << 20, &text, NULL);
        if (r < 0)
                return r;
        return cgroup_parse_mountinfo_cgroup2(text, ret);
}

int cgroup_open_root(const char *path, int *ret_fd) {
        struct statfs fs;
        int fd;

        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fstatfs(fd, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
                safe_close(fd);
                return -EMEDIUMTYPE;
        }
        *ret_fd = fd;
        return 0;
}

/* Whether a path has a ".." component: /proc/PID/cgroup shows "/../.." for a cgroup outside our namespace. */
static bool has_dotdot(const char *path) {
        for (const char *c = path; (c = strstr(c, "..")); c += 2)
                if ((c == path || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
                        return true;
        return false;
}

const char *cgroup_path_to_rel(const char *path) {
        if (!path || path[0] != '/' || has_dotdot(path))
                return NULL;
        path += strspn(path, "/");
        return *path ? path : ".";
}

bool cgroup_path_is_clean(const char *path) {
        if (!path || path[0] != '/')
                return false;
        if (streq(path, "/"))
                return true;
        for (const char *c = path; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        return false;
        for (const char *s = path; *s;) {
                size_t n;
                s++; /* the '/' */
                n = strcspn(s, "/");
                if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                        return false;
                s += n;
        }
        return true;
}

int cgroup_slice_to_path(const char *slice, char **ret) {
        const char *suffix = ".slice";
        size_t len = strlen(slice), slen = strlen(suffix), plen, pos = 0;
        _cleanup_free_ char *out = NULL;

        if (len <= slen || !streq(slice + len - slen, suffix))
                return -EINVAL;
        plen = len - slen;
        if (slice[0] == '-' || slice[plen - 1] == '-' || strstr(slice, "--"))
                return -EINVAL;
        if (strspn(slice, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.-") != len)
                return -EINVAL;

        /* "a-b-c.slice" -> "a.slice/a-b.slice/a-b-c.slice": each dash ends a parent. */
        out = malloc(len * (plen + 1) + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i <= plen; i++) {
                if (i < plen && slice[i] != '-')
                        continue;
                if (pos > 0)
                        out[pos++] = '/';
                memcpy(out + pos, slice, i);
                pos += i;
                memcpy(out + pos, suffix, slen);
                pos += slen;
        }
        out[pos] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

bool cgroup_controller_list_has(const char *list, const char *name) {
        size_t n = strlen(name);

        for (const char *p = list; p && *p;) {
                p += strspn(p, " \t\n");
                size_t w = strcspn(p, " \t\n");
                if (w == n && strneq(p, name, n))
                        return true;
                p += w;
        }
        return false;
}

int cgroup_parse_keyed(const char *text, const char *key, uint64_t *ret) {
        size_t klen = strlen(key);

        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (!strneq(l, key, klen) || l[klen] != ' ')
                        continue;
                char num[32];
                size_t n = strcspn(l + klen + 1, "\n");
                if (n == 0 || n >= sizeof(num))
                        return -EINVAL;
                memcpy(num, l + klen + 1, n);
                num[n] = '\0';
                if (num[0] == '0' && n > 1)
                        return -EINVAL; /* cgroup files are decimal: no octal here */
                return parse_u64_base0(num, ret);
        }
        return -ENODATA;
}

static int join(const char *rel, const char *file, char *buf, size_t size) {
        int n = snprintf(buf, size, "%s/%s", rel, file);

        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

int cgroup_read(int rootfd, const char *rel, const char *file, char **ret) {
        char path[4096];
        int r;

        r = join(rel, file, path, sizeof(path));
        if (r < 0)
                return r;
        return read_full_file_at(rootfd, path, 1 << 20, ret, NULL);
}

int cgroup_write(int rootfd, const char *rel, const char *file, const char *value) {
        char path[4096];
        int r;

        r = join(rel, file, path, sizeof(path));
        if (r < 0)
                return r;
        return write_string_file_at(rootfd, path, value);
}

int cgroup_write_u64(int rootfd, const char *rel, const char *file, uint64_t value) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRIu64, value);
        return cgroup_write(rootfd, rel, file, buf);
}

bool cgroup_has_controller(int rootfd, const char *rel, const char *name) {
        _cleanup_free_ char *list = NULL;

        return cgroup_read(rootfd, rel, "cgroup.controllers", &list) >= 0 && cgroup_controller_list_has(list, name);
}

int cgroup_create(int rootfd, const char *rel) {
        char path[4096];
        size_t len = strlen(rel);

        if (len >= sizeof(path))
                return -ENAMETOOLONG;
        if (streq(rel, "."))
                return 0;
        /* The parents exist nearly always (a scope below its slice): the leaf first, the walk only without them. */
        if (mkdirat(rootfd, rel, 0755) >= 0)
                return 1;
        if (errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return negative_errno();
        memcpy(path, rel, len + 1);
        for (char *p = path;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char c = *p;
                *p = '\0';
                if (!streq(path, ".") && mkdirat(rootfd, path, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                *p = c;
                if (c == '\0')
                        return 1;
        }
}

static int enable_in(int rootfd, const char *rel, const char *name) {
        _cleanup_free_ char *current = NULL;
        char value[64];
        int r;

        r = cgroup_read(rootfd, rel, "cgroup.subtree_control", &current);
        if (r < 0)
                return r;
        if (cgroup_controller_list_has(current, name))
                return 0;
        snprintf(value, sizeof(value), "+%s", name);
        return cgroup_write(rootfd, rel, "cgroup.subtree_control", value);
}

int cgroup_enable_controller(int rootfd, const char *rel, const char *name) {
        char path[4096];
        size_t len = strlen(rel);
        int r;

        if (len >= sizeof(path))
                return -ENAMETOOLONG;
        r = enable_in(rootfd, ".", name);
        if (r < 0)
                return r;
        memcpy(path, rel, len + 1);
        for (char *p = path;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char c = *p;
                *p = '\0';
                if (!streq(path, ".")) {
                        r = enable_in(rootfd, path, name);
                        if (r < 0)
                                return r;
                }
                *p = c;
                if (c == '\0')
                        return 1;
        }
}

int cgroup_attach(int rootfd, const char *rel, pid_t pid) {
        char buf[16];

        snprintf(buf, sizeof(buf), "%d", (int) pid);
        return cgroup_write(rootfd, rel, "cgroup.procs", buf);
}

int cgroup_get_pids(int rootfd, const char *rel, pid_t **ret, size_t *ret_n) {
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0, alloc = 0;
        int r;

        r = cgroup_read(rootfd, rel, "cgroup.procs", &text);
        if (r < 0)
                return r;
        for (char *save = NULL, *t = strtok_r(text, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
                pid_t pid;
                if (parse_pid(t, &pid) < 0)
                        continue;
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 8;
                        pid_t *p = realloc(pids, alloc * sizeof(pid_t));
                        if (!p)
                                return -ENOMEM;
                        pids = p;
                }
                pids[n++] = pid;
        }
        *ret = TAKE_PTR(pids);
        *ret_n = n;
        return 0;
}

bool cgroup_events_frozen(int fd) {
        char buf[512];
        uint64_t frozen;
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

        if (n <= 0)
                return false;
        buf[n] = '\0';
        return cgroup_parse_keyed(buf, "frozen", &frozen) >= 0 && frozen == 1;
}

int cgroup_freeze(int rootfd, const char *rel, bool freeze, int *ret_events_fd) {
        _cleanup_close_ int fd = -EBADF;
        char path[4096];
        int r;

        r = cgroup_write(rootfd, rel, "cgroup.freeze", freeze ? "1" : "0");
        if (r < 0 || !freeze || !ret_events_fd)
                return r;
        r = join(rel, "cgroup.events", path, sizeof(path));
        if (r < 0)
                return r;
        fd = openat(rootfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (cgroup_events_frozen(fd))
                return 0;
        *ret_events_fd = TAKE_FD(fd);
        return 1;
}

int cgroup_remove(int rootfd, const char *rel) {
        if (unlinkat(rootfd, rel, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

int cgroup_nearest_existing(int rootfd, const char *rel, char **ret) {
        _cleanup_free_ char *path = strdup(rel);
        struct stat st;

        if (!path)
                return -ENOMEM;
        for (;;) {
                if (fstatat(rootfd, path, &st, 0) == 0 && S_ISDIR(st.st_mode))
                        break;
                char *slash = strrchr(path, '/');
                if (!slash) {
                        strcpy(path, ".");
                        break;
                }
                *slash = '\0';
        }
        *ret = TAKE_PTR(path);
        return 0;
}

bool cgroup_limit_text_limits(const char *file, const char *text, uint64_t pids_floor) {
        size_t n = strcspn(text, " \n");
        uint64_t v;

        if (streq(file, "pids.max")) {
                _cleanup_free_ char *num = strndup(text, n);
                if (!num || streq(num, "max"))
                        return false;
                return parse_u64_base0(num, &v) < 0 || v < pids_floor;
        }
        if (streq(file, "io.max"))
                return text[strspn(text, " \n")] != '\0'; /* one line per limited device, empty when none */
        if (streq(file, "cpu.max")) /* "max 100000" */
                return !(n == 3 && strncmp(text, "max", 3) == 0);
        return !(n == 3 && strncmp(text, "max", 3) == 0 && text[strspn(text + 3, " \n") + 3] == '\0');
}

/*
 * The cgroup BPF attach points that restrict what a process may do: its
 * devices, its sockets and addresses, its sysctls and socket options. A
 * program attached at one of them is a limit a move would escape.
 */
static const struct {
        enum bpf_attach_type type;
        const char *what;
} bpf_limits[] = {
        { BPF_CGROUP_DEVICE, "a BPF device filter" },
        { BPF_CGROUP_INET_INGRESS, "a BPF ingress filter" },
        { BPF_CGROUP_INET_EGRESS, "a BPF egress filter" },
        { BPF_CGROUP_INET_SOCK_CREATE, "a BPF socket filter" },
        { BPF_CGROUP_INET4_BIND, "a BPF bind filter" },
        { BPF_CGROUP_INET6_BIND, "a BPF bind filter" },
        { BPF_CGROUP_INET4_CONNECT, "a BPF connect filter" },
        { BPF_CGROUP_INET6_CONNECT, "a BPF connect filter" },
        { BPF_CGROUP_UDP4_SENDMSG, "a BPF sendmsg filter" },
        { BPF_CGROUP_UDP6_SENDMSG, "a BPF sendmsg filter" },
        { BPF_CGROUP_SYSCTL, "a BPF sysctl filter" },
        { BPF_CGROUP_GETSOCKOPT, "a BPF getsockopt filter" },
        { BPF_CGROUP_SETSOCKOPT, "a BPF setsockopt filter" },
};

/* How many programs are attached to dirfd at type; -errno when the kernel cannot tell. */
static int bpf_count_attached(int dirfd, enum bpf_attach_type type, uint32_t *ret) {
        union bpf_attr attr;

        memset(&attr, 0, sizeof(attr));
        attr.query.target_fd = (uint32_t) dirfd;
        attr.query.attach_type = type;
        if (syscall(SYS_bpf, BPF_PROG_QUERY, &attr, sizeof(attr)) < 0)
                return negative_errno();
        *ret = attr.query.prog_cnt;
        return 0;
}

int cgroup_find_bpf(int rootfd, const char *rel, const char **ret_what) {
        _cleanup_close_ int fd = openat(rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        bool answered = false;

        if (fd < 0)
                return negative_errno();
        for (size_t i = 0; i < ELEMENTSOF(bpf_limits); i++) {
                uint32_t n = 0;
                int r = bpf_count_attached(fd, bpf_limits[i].type, &n);
                if (r == -EINVAL)
                        continue; /* an attach type this kernel does not have */
                if (r < 0)
                        return r; /* no bpf(2) here (ENOSYS), or not allowed to ask (EPERM): cannot tell */
                answered = true;
                if (n > 0) {
                        if (ret_what)
                                *ret_what = bpf_limits[i].what;
                        return 1;
                }
        }
        return answered ? 0 : -EOPNOTSUPP;
}

int cgroup_find_limit(int rootfd, const char *rel, uint64_t pids_floor, const char **ret_file) {
        static const char *const files[] = { "memory.max", "memory.high", "memory.swap.max", "pids.max", "cpu.max",
                                             "io.max" };

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *text = NULL;
                int r = cgroup_read(rootfd, rel, files[i], &text);
                if (r == -ENOENT)
                        continue; /* controller not enabled there: no limit of that kind */
                if (r < 0)
                        return r;
                if (cgroup_limit_text_limits(files[i], text, pids_floor)) {
                        if (ret_file)
                                *ret_file = files[i];
                        return 1;
                }
        }
        /* No bpf(2) or no right to ask: the files above are all that can be known. */
        return cgroup_find_bpf(rootfd, rel, ret_file) > 0;
}

int cgroup_read_protection(int rootfd, const char *rel, uint64_t *ret_min, uint64_t *ret_low) {
        uint64_t v[2];
        const char *files[2] = { "memory.min", "memory.low" };

        for (size_t i = 0; i < 2; i++) {
                _cleanup_free_ char *text = NULL;
                int r = cgroup_read(rootfd, rel, files[i], &text);
                if (r < 0)
                        return r;
                text[strcspn(text, "\n")] = '\0';
                if (streq(text, "max"))
                        v[i] = UINT64_MAX;
                else if (parse_u64_base0(text, &v[i]) < 0)
                        return -EBADMSG;
        }
        *ret_min = v[0];
        *ret_low = v[1];
        return 0;
}

void xattr_value_done(XattrValue *v) {
        free(v->value);
        *v = (XattrValue) { .state = -1 };
}

bool xattr_value_equal(const XattrValue *a, const XattrValue *b) {
        if (a->state != b->state)
                return false;
        return a->state != 1 || (a->size == b->size && memcmp(a->value, b->value, a->size) == 0);
}

int xattr_value_copy(const XattrValue *v, XattrValue *ret) {
        char *copy = NULL;

        if (v->state == 1) {
                copy = malloc(v->size + 1);
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, v->value, v->size);
                copy[v->size] = '\0';
        }
        *ret = (XattrValue) { .state = v->state, .value = copy, .size = v->state == 1 ? v->size : 0 };
        return 0;
}

static int open_cgroup_dir(int rootfd, const char *rel) {
        int fd = openat(rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        return fd < 0 ? negative_errno() : fd;
}

int cgroup_read_xattr(int rootfd, const char *rel, const char *name, XattrValue *ret) {
        _cleanup_close_ int fd = open_cgroup_dir(rootfd, rel);
        char buf[XATTR_VALUE_MAX];
        ssize_t n;
        char *value;

        if (fd < 0)
                return fd;
        n = fgetxattr(fd, name, buf, sizeof(buf));
        if (n < 0 && errno == ENODATA) {
                *ret = (XattrValue) { .state = 0 };
                return 0;
        }
        if (n < 0)
                return errno == ERANGE ? -E2BIG : negative_errno();
        value = malloc((size_t) n + 1);
        if (!value)
                return -ENOMEM;
        memcpy(value, buf, (size_t) n);
        value[n] = '\0';
        *ret = (XattrValue) { .state = 1, .value = value, .size = (size_t) n };
        return 0;
}

int cgroup_write_xattr(int rootfd, const char *rel, const char *name, const XattrValue *v) {
        _cleanup_close_ int fd = -EBADF;

        if (v->state < 0 || v->state > 1 || (v->state == 1 && v->size > XATTR_VALUE_MAX))
                return -EINVAL;
        fd = open_cgroup_dir(rootfd, rel);
        if (fd < 0)
                return fd;
        if (v->state == 1)
                return fsetxattr(fd, name, v->value, v->size, 0) < 0 ? negative_errno() : 0;
        if (fremovexattr(fd, name) < 0 && errno != ENODATA)
                return negative_errno();
        return 0;
}
