/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oomprotectctl doctor [PID|UNIT] [--json]: what decides whether a process
 * survives when memory runs out, read from /proc, cgroupfs and (for
 * systemd-oomd's watch list only) systemd's bus. Read-only, and oomprotectd
 * need not run. The reasoning is src/core/doctor.c; this file gathers the
 * facts and prints them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "cgroup.h"
#include "doctor.h"
#include "fileio.h"
#include "macro.h"
#include "oomprotect.h"
#include "parse.h"
#include "proc.h"
#include "verbs.h"

#define CGROUP2_MAGIC 0x63677270 /* linux/magic.h CGROUP2_SUPER_MAGIC */
#define TMPFS_MAGIC_ 0x01021994

typedef struct Doctor {
        /* the host */
        const char *mode; /* unified, hybrid, legacy */
        char *cgroup_root;
        int rootfd;
        bool memory_v2, memory_v1, recursiveprot;
        /* the process, if there is one */
        pid_t pid;
        ProcInfo info;
        int oom_score;
        size_t rank, n_procs;
        uint64_t rss;
        size_t procs_in_cgroup;
        char *unit_cgroup; /* UNIT given: its cgroup */
        /* the chain and what the killers see */
        DoctorLink *links;
        size_t n_links;
        bool chain_has_memory;
        DoctorTarget target;
        DoctorKillerProcess killers[_DOCTOR_KILLER_MAX];
        DoctorJudgement verdicts[_DOCTOR_KILLER_MAX];
        char *oomd_watched_by;
        /* guard rails (issue 16) */
        size_t n_killable; /* userspace processes but PID 1 with oom_score_adj above -1000 */
        bool daemon_reached;
        uint64_t protected_memory, max_protected_memory;
} Doctor;

static void strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static void doctor_done(Doctor *d) {
        free(d->cgroup_root);
        safe_close(d->rootfd);
        proc_info_done(&d->info);
        free(d->unit_cgroup);
        free(d->oomd_watched_by);
        for (size_t i = 0; i < d->n_links; i++)
                free(d->links[i].path);
        free(d->links);
        for (size_t k = 0; k < _DOCTOR_KILLER_MAX; k++) {
                strv_free(d->killers[k].argv);
                doctor_judgement_done(&d->verdicts[k]);
        }
}

static int fail(const char *what, int r) {
        fprintf(stderr, "oomprotectctl: doctor: %s: %s\n", what, strerror(-r));
        return 1;
}

/* ---- the host ---- */

static bool mountinfo_has_option(const char *fstype, const char *option) {
        _cleanup_free_ char *text = NULL;
        char pattern[64];

        if (read_full_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 20, &text, NULL) < 0)
                return false;
        snprintf(pattern, sizeof(pattern), " - %s ", fstype);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                char *sep = strstr(line, pattern);
                if (sep && strstr(sep, option))
                        return true;
        }
        return false;
}

static void read_host(Doctor *d) {
        _cleanup_free_ char *controllers = NULL;
        struct statfs fs;

        d->mode = "legacy (cgroup v1 only)";
        if (statfs("/sys/fs/cgroup", &fs) == 0 && (unsigned) fs.f_type == CGROUP2_MAGIC)
                d->mode = "unified";
        else if (statfs("/sys/fs/cgroup/unified", &fs) == 0 && (unsigned) fs.f_type == CGROUP2_MAGIC)
                d->mode = "hybrid";
        d->memory_v1 = access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0;
        d->rootfd = -EBADF;
        if (cgroup_find_mount(&d->cgroup_root) < 0 || cgroup_open_root(d->cgroup_root, &d->rootfd) < 0)
                return;
        if (cgroup_read(d->rootfd, ".", "cgroup.controllers", &controllers) >= 0)
                d->memory_v2 = cgroup_controller_list_has(controllers, "memory");
        d->recursiveprot = mountinfo_has_option("cgroup2", "memory_recursiveprot");
}

/* ---- the process and the machine's processes ---- */

static int read_int_file(int procfd, pid_t pid, const char *name, int *ret) {
        _cleanup_free_ char *s = NULL;
        char path[64];
        int r;

        snprintf(path, sizeof(path), "%d/%s", (int) pid, name);
        r = read_one_line_at(procfd, path, &s);
        if (r < 0)
                return r;
        return parse_int_range(s, -1000000, 1000000, ret);
}

static char **read_argv(int procfd, pid_t pid) {
        _cleanup_free_ char *text = NULL;
        char path[64], **argv;
        size_t len = 0, n = 0;

        snprintf(path, sizeof(path), "%d/cmdline", (int) pid);
        if (read_full_file_at(procfd, path, 1 << 16, &text, &len) < 0)
                return NULL;
        argv = calloc(len + 2, sizeof(char *));
        for (size_t i = 0; argv && i < len; i += strlen(text + i) + 1)
                if (!(argv[n++] = strdup(text + i)))
                        break;
        return argv;
}

static void note_killer(Doctor *d, int procfd, pid_t pid, const char *comm) {
        for (DoctorKiller k = 0; k < _DOCTOR_KILLER_MAX; k++) {
                const char *want = doctor_killer_comm(k);

                if (!want || !streq(comm, want) || d->killers[k].pid > 0)
                        continue;
                d->killers[k].pid = pid;
                d->killers[k].argv = read_argv(procfd, pid);
        }
}

/* One pass over /proc: the OOM rank, who shares the process group, which killers run. */
static void scan_processes(Doctor *d, int procfd) {
        _cleanup_free_ int *scores = NULL;
        pid_t pgid = d->pid > 0 ? getpgid(d->pid) : -1;
        size_t n = 0, cap = 0;
        struct dirent *de;
        DIR *dir;

        dir = fdopendir(dup(procfd));
        while (dir && (de = readdir(dir))) {
                _cleanup_free_ char *stat_text = NULL;
                char path[64];
                ProcStat st;
                pid_t pid;
                int score;

                if (parse_pid(de->d_name, &pid) < 0)
                        continue;
                snprintf(path, sizeof(path), "%d/stat", (int) pid);
                if (read_full_file_at(procfd, path, 4096, &stat_text, NULL) < 0 || proc_parse_stat(stat_text, &st) < 0 ||
                    (st.flags & PF_KTHREAD_FLAG))
                        continue;
                note_killer(d, procfd, pid, st.comm);
                if (pid != 1 && st.state != 'Z' && read_int_file(procfd, pid, "oom_score_adj", &score) >= 0 &&
                    score > -1000)
                        d->n_killable++;
                if (pid != d->pid && pgid > 0 && getpgid(pid) == pgid)
                        d->target.pgrp_shared = true;
                if (read_int_file(procfd, pid, "oom_score", &score) < 0)
                        continue;
                if (n == cap) {
                        int *grown = realloc(scores, (cap = cap * 2 + 256) * sizeof(int));
                        if (!grown)
                                break;
                        scores = grown;
                }
                scores[n++] = score;
        }
        if (dir)
                closedir(dir);
        d->n_procs = n;
        d->rank = doctor_oom_rank(scores, n, d->oom_score);
}

static void read_rss(Doctor *d, int procfd) {
        _cleanup_free_ char *status = NULL;
        char path[64], *p;
        unsigned long long kb;

        snprintf(path, sizeof(path), "%d/status", (int) d->pid);
        if (read_full_file_at(procfd, path, 1 << 16, &status, NULL) < 0 || !(p = strstr(status, "\nVmRSS:")))
                return;
        if (sscanf(p, "\nVmRSS: %llu kB", &kb) == 1)
                d->rss = (uint64_t) kb * 1024;
}

static int read_process(Doctor *d, int procfd) {
        int r;

        r = proc_read_info(procfd, d->pid, &d->info);
        if (r == -ESRCH || r == -ENOENT) {
                fprintf(stderr, "oomprotectctl: doctor: no process with PID %d.\n", (int) d->pid);
                return 1;
        }
        if (r < 0)
                return fail("cannot read the process", r);
        if (read_int_file(procfd, d->pid, "oom_score", &d->oom_score) < 0)
                d->oom_score = -1;
        read_rss(d, procfd);
        d->target.pid = d->pid;
        d->target.comm = d->info.stat.comm;
        d->target.oom_score = d->oom_score;
        d->target.oom_score_adj = d->info.oom_score_adj;
        return 0;
}

/* ---- a unit's cgroup ---- */

static int find_unit(int dirfd, const char *rel, const char *unit, unsigned depth, char **ret) {
        _cleanup_close_ int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct dirent *de;
        DIR *dir;
        int r = -ENOENT;

        if (fd < 0 || depth > 32 || !(dir = fdopendir(TAKE_FD(fd))))
                return -ENOENT;
        while (r == -ENOENT && (de = readdir(dir))) {
                char sub[4096];

                if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                snprintf(sub, sizeof(sub), "%s/%s", streq(rel, ".") ? "" : rel, de->d_name);
                if (streq(de->d_name, unit)) {
                        r = asprintf(ret, "%s%s", sub[0] == '/' ? "" : "/", sub) < 0 ? -ENOMEM : 0;
                        break;
                }
                r = find_unit(dirfd, sub[0] == '/' ? sub + 1 : sub, unit, depth + 1, ret);
        }
        closedir(dir);
        return r;
}

/* UNIT: its cgroup, and its first process (down its subtree) as the process to look at. */
static int resolve_unit(Doctor *d, const char *unit) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int r;

        if (d->rootfd < 0)
                return fail("no cgroup2 hierarchy to look for the unit in", -ENOENT);
        r = find_unit(d->rootfd, ".", unit, 0, &d->unit_cgroup);
        if (r < 0) {
                fprintf(stderr, "oomprotectctl: doctor: no cgroup named %s below %s.\n", unit, d->cgroup_root);
                return 1;
        }
        r = cgroup_get_pids(d->rootfd, cgroup_path_to_rel(d->unit_cgroup), &pids, &n);
        if (r >= 0 && n > 0)
                d->pid = pids[0];
        return 0;
}

/* ---- the cgroup chain ---- */

static int read_u64_or_max(int rootfd, const char *rel, const char *file, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        size_t len;
        int r;

        r = cgroup_read(rootfd, rel, file, &s);
        if (r < 0)
                return r;
        len = strcspn(s, "\n");
        s[len] = 0;
        if (streq(s, "max")) {
                *ret = DOCTOR_MAX;
                return 0;
        }
        return parse_u64_base0(s, ret);
}

/* memory.min, memory.low and memory.current of rel; -ENOENT where memory is not accounted. */
static int read_memory(int rootfd, const char *rel, uint64_t *min, uint64_t *low, uint64_t *usage) {
        int r;

        r = read_u64_or_max(rootfd, rel, "memory.min", min);
        if (r >= 0)
                r = read_u64_or_max(rootfd, rel, "memory.low", low);
        if (r >= 0)
                r = read_u64_or_max(rootfd, rel, "memory.current", usage);
        return r;
}

/* The parent's children_min_usage and children_low_usage: each child's min(usage, setting), summed. */
static void read_siblings(int rootfd, const char *parent_rel, DoctorLink *l) {
        _cleanup_close_ int fd = openat(rootfd, parent_rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct dirent *de;
        DIR *dir;

        l->siblings_min_usage = l->siblings_low_usage = 0;
        if (fd < 0 || !(dir = fdopendir(TAKE_FD(fd))))
                return;
        while ((de = readdir(dir))) {
                uint64_t min, low, usage;
                char sub[4096];

                if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                snprintf(sub, sizeof(sub), "%s/%s", parent_rel, de->d_name);
                if (read_memory(rootfd, streq(parent_rel, ".") ? de->d_name : sub, &min, &low, &usage) < 0)
                        continue;
                l->siblings_min_usage += MIN(min, usage);
                l->siblings_low_usage += MIN(low, usage);
        }
        closedir(dir);
}

static int add_link(Doctor *d, const char *path, const char *parent_rel) {
        DoctorLink *grown, *l;
        const char *rel = cgroup_path_to_rel(path);

        grown = realloc(d->links, (d->n_links + 1) * sizeof(DoctorLink));
        if (!grown)
                return -ENOMEM;
        d->links = grown;
        l = &d->links[d->n_links];
        *l = (DoctorLink) { .path = strdup(path) };
        if (!l->path)
                return -ENOMEM;
        d->n_links++;
        if (!rel || read_memory(d->rootfd, rel, &l->min, &l->low, &l->usage) < 0)
                d->chain_has_memory = false;
        else if (d->n_links > 1)
                read_siblings(d->rootfd, parent_rel, l);
        return 0;
}

/* Every cgroup from the root's child down to path ("/a/b/c": /a, /a/b, /a/b/c). */
static int read_chain(Doctor *d, const char *path) {
        char parent_rel[4096] = ".";
        size_t len = strlen(path);
        int r;

        d->chain_has_memory = d->rootfd >= 0 && d->memory_v2;
        if (d->rootfd < 0 || streq(path, "/"))
                return 0;
        for (size_t i = 1; i <= len; i++) {
                _cleanup_free_ char *prefix = NULL;
                const char *rel;

                if (i < len && path[i] != '/')
                        continue;
                prefix = strndup(path, i);
                if (!prefix)
                        return -ENOMEM;
                r = add_link(d, prefix, parent_rel);
                if (r < 0)
                        return r;
                rel = cgroup_path_to_rel(prefix);
                snprintf(parent_rel, sizeof(parent_rel), "%s", rel ? rel : ".");
        }
        if (d->chain_has_memory)
                doctor_compute_protection(d->links, d->n_links, d->recursiveprot);
        return 0;
}

/* ---- what the killers see ---- */

static bool xattr_is_one(const char *root, const char *path, const char *name) {
        char full[4096], value[8];
        ssize_t n;

        snprintf(full, sizeof(full), "%s%s", root, path);
        n = getxattr(full, name, value, sizeof(value));
        return n == 1 && value[0] == '1';
}

/* facebook oomd's test: the attribute exists, whatever its value. */
static bool xattr_present(const char *root, const char *path, const char *name) {
        char full[4096];

        snprintf(full, sizeof(full), "%s%s", root, path);
        return getxattr(full, name, NULL, 0) >= 0;
}

/* The kernel shows trusted.* xattrs only to CAP_SYS_ADMIN (to anyone else they do not exist). */
static bool have_cap_sys_admin(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct c[_LINUX_CAPABILITY_U32S_3] = {};

        if (syscall(SYS_capget, &h, c) < 0)
                return false;
        return c[CAP_SYS_ADMIN / 32].effective & (UINT32_C(1) << (CAP_SYS_ADMIN % 32));
}

static void read_marks(Doctor *d) {
        const char *leaf = d->n_links > 0 ? d->links[d->n_links - 1].path : NULL;
        char full[4096];
        struct stat st;

        if (!leaf)
                return;
        snprintf(full, sizeof(full), "%s%s", d->cgroup_root, leaf);
        d->target.cgroup_root_owned = stat(full, &st) == 0 && st.st_uid == 0;
        /* systemd writes ManagedOOMPreference= as user.* xattrs; older versions wrote trusted.* (both are read). */
        d->target.oomd_omit = xattr_is_one(d->cgroup_root, leaf, "user.oomd_omit") ||
                              xattr_is_one(d->cgroup_root, leaf, "trusted.oomd_omit");
        d->target.oomd_avoid = xattr_is_one(d->cgroup_root, leaf, "user.oomd_avoid");
        d->target.fb_unreadable = !have_cap_sys_admin();
        d->target.fb_avoid = xattr_present(d->cgroup_root, leaf, "trusted.oomd_avoid");
        d->target.fb_avoid_user = xattr_present(d->cgroup_root, leaf, "user.oomd_avoid");
        d->target.fb_prefer = xattr_present(d->cgroup_root, leaf, "trusted.oomd_prefer") ||
                              xattr_present(d->cgroup_root, leaf, "user.oomd_prefer");
}

static const char *unit_interface(const char *unit) {
        static const char *const map[][2] = {
                { ".slice", "org.freedesktop.systemd1.Slice" },
                { ".scope", "org.freedesktop.systemd1.Scope" },
                { ".service", "org.freedesktop.systemd1.Service" },
        };
        size_t len = strlen(unit);

        for (size_t i = 0; i < ELEMENTSOF(map); i++) {
                size_t sl = strlen(map[i][0]);
                if (len > sl && streq(unit + len - sl, map[i][0]))
                        return map[i][1];
        }
        return NULL;
}

/* Which of ManagedOOMSwap=, ManagedOOMMemoryPressure= are "kill" on unit, as "A=kill B=kill"; NULL when systemd cannot say. */
static int unit_oomd_kill(sd_bus *bus, const char *unit, char *buf, size_t size) {
        static const char *const props[] = { "ManagedOOMSwap", "ManagedOOMMemoryPressure" };
        _cleanup_free_ char *path = NULL;
        const char *iface = unit_interface(unit);
        int r;

        buf[0] = 0;
        if (!iface)
                return 0;
        r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &path);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(props); i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *value = NULL;

                r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path, iface, props[i], &e, &value);
                if (r >= 0 && streq(value, "kill"))
                        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s=kill", buf[0] ? " " : "", props[i]);
        }
        return r;
}

/* Which units on the chain (the root slice included) hand their cgroups to systemd-oomd? */
static void read_oomd_watch(Doctor *d) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        char watched[1024] = "";
        int answered = 0;

        d->target.oomd_watched = -1;
        if (d->killers[DOCTOR_KILLER_SYSTEMD_OOMD].pid <= 0 || sd_bus_open_system(&bus) < 0)
                return;
        for (size_t i = 0; i <= d->n_links; i++) {
                const char *unit = i == 0 ? "-.slice" : strrchr(d->links[i - 1].path, '/') + 1;
                char props[128];

                if (unit_oomd_kill(bus, unit, props, sizeof(props)) < 0)
                        continue;
                answered++;
                if (props[0])
                        snprintf(watched + strlen(watched), sizeof(watched) - strlen(watched), "%s%s (%s)",
                                 watched[0] ? ", " : "", unit, props);
        }
        if (answered == 0)
                return;
        d->target.oomd_watched = watched[0] ? 1 : 0;
        d->oomd_watched_by = watched[0] ? strdup(watched) : NULL;
        d->target.oomd_watched_by = d->oomd_watched_by;
}

static int judge_killers(Doctor *d) {
        int r;

        for (DoctorKiller k = 0; k < _DOCTOR_KILLER_MAX; k++) {
                r = doctor_judge(k, &d->killers[k], &d->target, &d->verdicts[k]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- what to change ---- */

typedef struct Advice {
        char *items[16];
        size_t n;
} Advice;

static void advice_done(Advice *a) {
        for (size_t i = 0; i < a->n; i++)
                free(a->items[i]);
}

_printf_(2, 3) static void advise(Advice *a, const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        for (size_t i = 0; i < a->n; i++)
                if (streq(a->items[i], s)) {
                        free(s);
                        return;
                }
        if (a->n < ELEMENTSOF(a->items))
                a->items[a->n++] = s;
        else
                free(s);
}

static const char *bytes(char buf[static FORMAT_BYTES_MAX], uint64_t v) {
        return v == DOCTOR_MAX ? "max" : format_bytes(buf, FORMAT_BYTES_MAX, v);
}

static void advise_memory(const Doctor *d, Advice *a) {
        const DoctorLink *leaf = &d->links[d->n_links - 1];
        char b1[FORMAT_BYTES_MAX], b2[FORMAT_BYTES_MAX];
        DoctorCap cap;

        if (leaf->min == 0 && d->pid > 0)
                advise(a, "memory.min is 0 on its cgroup: oomprotectctl protect %d --min SIZE reserves memory for it",
                       (int) d->pid);
        cap = doctor_find_cap(d->links, d->n_links, false);
        if (cap.reason == DOCTOR_CAP_SETTING)
                advise(a, "raise memory.min of %s (now %s) to at least %s: it caps this cgroup's protection at %s",
                       d->links[cap.link].path, bytes(b1, d->links[cap.link].min), bytes(b2, MIN(leaf->min, leaf->usage)),
                       bytes(b1, leaf->emin));
        else if (cap.reason == DOCTOR_CAP_SHARED && cap.link > 0)
                advise(a, "%s and its siblings claim %s of memory.min together, more than %s affords (%s): "
                          "raise that or lower theirs",
                       d->links[cap.link].path, bytes(b1, d->links[cap.link].siblings_min_usage),
                       d->links[cap.link - 1].path, bytes(b2, d->links[cap.link - 1].emin));
        /* Pages charged before a move stay behind; shared file pages are charged to whoever read them first. */
        if (d->pid > 0 && d->procs_in_cgroup == 1 && d->rss > leaf->usage && d->rss - leaf->usage > d->rss / 4)
                advise(a, "about %s of its memory (VmRSS %s) is charged to other cgroups, where it ran before a move "
                          "(only new allocations land in its cgroup) or as pages shared with others: start it "
                          "protected (oomprotectctl run) or restart it",
                       bytes(b1, d->rss - leaf->usage), bytes(b2, d->rss));
}

static const char *killer_advice(const Doctor *d, DoctorKiller k) {
        return d->verdicts[k].verdict == DOCTOR_VERDICT_HONOURED ? NULL : d->verdicts[k].advice;
}

/* One line per distinct change, naming every killer it answers: "kernel, earlyoom: ...". */
static void advise_killers(const Doctor *d, DoctorKiller k, Advice *a) {
        const char *mine = killer_advice(d, k);
        char names[128] = "";

        if (!mine)
                return;
        for (DoctorKiller j = 0; j < k; j++)
                if (killer_advice(d, j) && streq(killer_advice(d, j), mine))
                        return; /* said already */
        for (DoctorKiller j = k; j < _DOCTOR_KILLER_MAX; j++)
                if (killer_advice(d, j) && streq(killer_advice(d, j), mine))
                        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", names[0] ? ", " : "",
                                 doctor_killer_name(j));
        advise(a, "%s: %s", names, mine);
}

/* What oomprotectd says protected processes hold, against MaxProtectedMemory= (only if it answers). */
static void read_guard(Doctor *d) {
        struct oomprotect_status *s = NULL;

        oomprotect_set_timeout(2 * 1000000ULL);
        if (oomprotect_get_status(&s) < 0)
                return;
        d->daemon_reached = true;
        d->protected_memory = s->protected_memory;
        d->max_protected_memory = s->max_protected_memory;
        oomprotect_status_free(s);
}

static void advise_guard(const Doctor *d, Advice *a) {
        char b[2][FORMAT_BYTES_MAX];

        if (d->n_killable == 0)
                advise(a, "no process but PID 1 has an oom_score_adj above -1000: at an OOM the kernel has nothing "
                          "it may kill and panics (\"System is deadlocked on memory\"); unprotect something");
        if (d->max_protected_memory > 0 && d->protected_memory > d->max_protected_memory)
                advise(a, "protected processes hold %s, more than MaxProtectedMemory=%s: unprotect something, or "
                          "raise the ceiling knowingly", bytes(b[0], d->protected_memory),
                       bytes(b[1], d->max_protected_memory));
}

static void collect_advice(const Doctor *d, Advice *a) {
        advise_guard(d, a);
        if (d->pid > 0 && !d->chain_has_memory)
                advise(a, "no memory controller down to its cgroup: memory.min cannot protect it here (a cgroup v2 "
                          "host with the memory controller can: systemd.unified_cgroup_hierarchy=1)");
        if (d->chain_has_memory && d->n_links > 0)
                advise_memory(d, a);
        for (DoctorKiller k = 0; d->pid > 0 && k < _DOCTOR_KILLER_MAX; k++)
                advise_killers(d, k, a);
}

/* ---- text ---- */

static void print_host(const Doctor *d) {
        printf("Host\n  cgroup mode:        %s%s%s\n", d->mode, d->cgroup_root ? ", cgroup2 at " : "",
               strempty(d->cgroup_root));
        printf("  memory controller:  %s\n", d->memory_v2   ? "on cgroup v2 (memory.min and memory.low work)"
                                             : d->memory_v1 ? "on cgroup v1 only (no memory.min there)"
                                                            : "none");
        printf("  memory_recursiveprot: %s\n", d->recursiveprot ? "on (unclaimed protection flows down)" : "off");
}

static void print_process(const Doctor *d) {
        printf("\nProcess %d (%s), uid %u\n", (int) d->pid, d->info.stat.comm, (unsigned) d->info.uid);
        printf("  oom_score_adj:      %d\n", d->info.oom_score_adj);
        printf("  oom_score:          %d, rank %zu of %zu processes (1 = the kernel's first choice)\n", d->oom_score,
               d->rank, d->n_procs);
        printf("  cgroup:             %s\n", strna(d->info.cgroup));
        printf("  marks on it:        %s%s%s%s%s%s\n", d->target.oomd_omit ? "user.oomd_omit " : "",
               d->target.oomd_avoid ? "user.oomd_avoid " : "", d->target.fb_avoid ? "trusted.oomd_avoid " : "",
               d->target.fb_prefer ? "oomd_prefer " : "",
               d->target.oomd_omit || d->target.oomd_avoid || d->target.fb_avoid || d->target.fb_prefer ? "" : "none",
               d->target.fb_unreadable ? " (trusted.* cannot be read without CAP_SYS_ADMIN)" : "");
}

static void print_chain(const Doctor *d) {
        char b[5][FORMAT_BYTES_MAX];
        DoctorCap cap;

        printf("\nMemory protection along the cgroup chain (effective: what the kernel grants now)\n");
        if (!d->chain_has_memory) {
                printf("  no memory accounting on this chain: memory.min and memory.low do not apply\n");
                return;
        }
        printf("  %-50s %8s %8s %8s %8s %8s\n", "CGROUP", "MIN", "LOW", "CURRENT", "EFF.MIN", "EFF.LOW");
        for (size_t i = 0; i < d->n_links; i++) {
                const DoctorLink *l = &d->links[i];
                printf("  %-50s %8s %8s %8s %8s %8s\n", l->path, bytes(b[0], l->min), bytes(b[1], l->low),
                       bytes(b[2], l->usage), bytes(b[3], l->emin), bytes(b[4], l->elow));
        }
        if (d->n_links == 0)
                return;
        cap = doctor_find_cap(d->links, d->n_links, false);
        printf("  effective memory.min: %s, ", bytes(b[0], d->links[d->n_links - 1].emin));
        if (cap.reason == DOCTOR_CAP_NONE)
                printf("all its cgroup claims\n");
        else if (cap.reason == DOCTOR_CAP_NOTHING_CHARGED)
                printf("nothing is charged to its cgroup yet\n");
        else
                printf("capped by %s (%s)\n", d->links[cap.link].path,
                       cap.reason == DOCTOR_CAP_SHARED ? "shared with its siblings" : "its own memory.min");
}

static void print_killers(const Doctor *d) {
        printf("\nOOM killers\n");
        for (DoctorKiller k = 0; k < _DOCTOR_KILLER_MAX; k++) {
                if (d->pid > 0)
                        printf("  %-13s %-13s %s\n", doctor_killer_name(k), doctor_verdict_name(d->verdicts[k].verdict),
                               d->verdicts[k].why);
                else
                        printf("  %-13s %s\n", doctor_killer_name(k),
                               k == DOCTOR_KILLER_KERNEL || d->killers[k].pid > 0 ? "runs" : "does not run");
        }
}

static void print_guard(const Doctor *d) {
        char b[2][FORMAT_BYTES_MAX];

        printf("\nGuard rails\n  killable processes: %zu (oom_score_adj above -1000; PID 1 and kernel threads aside)\n",
               d->n_killable);
        if (!d->daemon_reached)
                printf("  protected memory:   oomprotectd not reachable, MaxProtectedMemory= not checked\n");
        else if (d->max_protected_memory == 0)
                printf("  protected memory:   %s, no MaxProtectedMemory= ceiling\n", bytes(b[0], d->protected_memory));
        else
                printf("  protected memory:   %s of MaxProtectedMemory=%s%s\n", bytes(b[0], d->protected_memory),
                       bytes(b[1], d->max_protected_memory),
                       d->protected_memory > d->max_protected_memory ? ", OVER THE CEILING" : "");
}

static void print_text(const Doctor *d, const Advice *a) {
        print_host(d);
        if (d->pid > 0)
                print_process(d);
        else if (d->unit_cgroup)
                printf("\n%s has no process of its own\n", d->unit_cgroup);
        if (d->n_links > 0 || d->pid > 0)
                print_chain(d);
        print_killers(d);
        print_guard(d);
        if (a->n > 0)
                printf("\nWhat to change\n");
        for (size_t i = 0; i < a->n; i++)
                printf("  - %s\n", a->items[i]);
}

/* ---- JSON ---- */

static struct json_object *link_json(const DoctorLink *l) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "cgroup", json_object_new_string(l->path));
        json_object_object_add(o, "memory_min", json_object_new_uint64(l->min));
        json_object_object_add(o, "memory_low", json_object_new_uint64(l->low));
        json_object_object_add(o, "memory_current", json_object_new_uint64(l->usage));
        json_object_object_add(o, "effective_min", json_object_new_uint64(l->emin));
        json_object_object_add(o, "effective_low", json_object_new_uint64(l->elow));
        return o;
}

static const char *const cap_names[] = {
        [DOCTOR_CAP_NONE] = "none",
        [DOCTOR_CAP_SETTING] = "setting",
        [DOCTOR_CAP_SHARED] = "shared",
        [DOCTOR_CAP_NOTHING_CHARGED] = "nothing-charged",
};

static struct json_object *chain_json(const Doctor *d) {
        struct json_object *o = json_object_new_object(), *links = json_object_new_array();

        json_object_object_add(o, "memory_accounted", json_object_new_boolean(d->chain_has_memory));
        for (size_t i = 0; i < d->n_links; i++)
                json_object_array_add(links, link_json(&d->links[i]));
        json_object_object_add(o, "links", links);
        for (int low = 0; d->chain_has_memory && d->n_links > 0 && low <= 1; low++) {
                DoctorCap cap = doctor_find_cap(d->links, d->n_links, low);
                bool named = cap.reason == DOCTOR_CAP_SETTING || cap.reason == DOCTOR_CAP_SHARED;

                json_object_object_add(o, low ? "low_capped_by" : "min_capped_by",
                                       named ? json_object_new_string(d->links[cap.link].path) : NULL);
                json_object_object_add(o, low ? "low_cap_reason" : "min_cap_reason",
                                       json_object_new_string(cap_names[cap.reason]));
        }
        return o;
}

/* The userspace killers' marks as read on its own cgroup. */
static struct json_object *marks_json(const DoctorTarget *t) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "user.oomd_omit", json_object_new_boolean(t->oomd_omit));
        json_object_object_add(o, "user.oomd_avoid", json_object_new_boolean(t->oomd_avoid));
        json_object_object_add(o, "trusted.oomd_avoid", t->fb_unreadable ? NULL : json_object_new_boolean(t->fb_avoid));
        json_object_object_add(o, "oomd_prefer", json_object_new_boolean(t->fb_prefer));
        return o;
}

static struct json_object *process_json(const Doctor *d) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "pid", json_object_new_int(d->pid));
        json_object_object_add(o, "comm", json_object_new_string(d->info.stat.comm));
        json_object_object_add(o, "uid", json_object_new_int64(d->info.uid));
        json_object_object_add(o, "oom_score", json_object_new_int(d->oom_score));
        json_object_object_add(o, "oom_score_adj", json_object_new_int(d->info.oom_score_adj));
        json_object_object_add(o, "oom_rank", json_object_new_uint64(d->rank));
        json_object_object_add(o, "processes", json_object_new_uint64(d->n_procs));
        json_object_object_add(o, "cgroup", d->info.cgroup ? json_object_new_string(d->info.cgroup) : NULL);
        json_object_object_add(o, "rss", json_object_new_uint64(d->rss));
        json_object_object_add(o, "marks", marks_json(&d->target));
        return o;
}

static struct json_object *killers_json(const Doctor *d) {
        struct json_object *a = json_object_new_array();

        for (DoctorKiller k = 0; k < _DOCTOR_KILLER_MAX; k++) {
                struct json_object *o = json_object_new_object();
                const DoctorJudgement *j = &d->verdicts[k];

                json_object_object_add(o, "name", json_object_new_string(doctor_killer_name(k)));
                json_object_object_add(o, "running",
                                       json_object_new_boolean(k == DOCTOR_KILLER_KERNEL || d->killers[k].pid > 0));
                json_object_object_add(o, "pid", json_object_new_int(d->killers[k].pid));
                if (d->pid > 0) {
                        json_object_object_add(o, "verdict", json_object_new_string(doctor_verdict_name(j->verdict)));
                        json_object_object_add(o, "why", json_object_new_string(j->why));
                        json_object_object_add(o, "advice", j->advice ? json_object_new_string(j->advice) : NULL);
                }
                json_object_array_add(a, o);
        }
        return a;
}

static struct json_object *guard_json(const Doctor *d) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "killable_processes", json_object_new_uint64(d->n_killable));
        json_object_object_add(o, "protected_memory",
                               d->daemon_reached ? json_object_new_uint64(d->protected_memory) : NULL);
        json_object_object_add(o, "max_protected_memory",
                               d->daemon_reached ? json_object_new_uint64(d->max_protected_memory) : NULL);
        return o;
}

static int print_json(const Doctor *d, const Advice *a, int flags) {
        struct json_object *root = json_object_new_object(), *host = json_object_new_object(),
                           *advice = json_object_new_array();

        json_object_object_add(host, "cgroup_mode", json_object_new_string(d->mode));
        json_object_object_add(host, "cgroup2_mount", d->cgroup_root ? json_object_new_string(d->cgroup_root) : NULL);
        json_object_object_add(host, "memory_controller_v2", json_object_new_boolean(d->memory_v2));
        json_object_object_add(host, "memory_controller_v1", json_object_new_boolean(d->memory_v1));
        json_object_object_add(host, "memory_recursiveprot", json_object_new_boolean(d->recursiveprot));
        json_object_object_add(root, "host", host);
        json_object_object_add(root, "process", d->pid > 0 ? process_json(d) : NULL);
        json_object_object_add(root, "chain", chain_json(d));
        json_object_object_add(root, "killers", killers_json(d));
        json_object_object_add(root, "guard", guard_json(d));
        for (size_t i = 0; i < a->n; i++)
                json_object_array_add(advice, json_object_new_string(a->items[i]));
        json_object_object_add(root, "advice", advice);
        puts(json_object_to_json_string_ext(root, flags));
        json_object_put(root);
        return 0;
}

/* ---- the verb ---- */

static void help_doctor(void) {
        printf("oomprotectctl doctor [PID|UNIT] [--json]\n\n"
               "Explain what decides whether a process survives when memory runs out: the\n"
               "cgroup mode, its oom_score and rank, the effective memory.min/memory.low along\n"
               "its cgroup chain and the link that caps it, which OOM killers run and whether\n"
               "each spares it, and what to change. Read-only; oomprotectd need not run.\n"
               "UNIT is a cgroup name (foo.service): its first process is examined.\n\n"
               "  --json[=MODE]  print one JSON object: pretty (the default) or short (one line)\n"
               "  -h --help      show this help\n");
}

static int parse_doctor_args(int argc, char *argv[], int *json, const char **target) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", optional_argument, NULL, 'j' },
                {},
        };
        int c;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help_doctor();
                        return 0;
                case 'j':
                        if (parse_json_mode(optarg, json) < 0) {
                                fprintf(stderr, "oomprotectctl: doctor: --json=%s: expected pretty, short or off.\n",
                                        optarg);
                                return 2;
                        }
                        break;
                default:
                        fprintf(stderr, "oomprotectctl: doctor: unknown option \"%s\"; see oomprotectctl doctor --help.\n",
                                argv[optind - 1]);
                        return 2;
                }
        if (argc - optind > 1) {
                fprintf(stderr, "oomprotectctl: doctor: one PID or UNIT at most.\n");
                return 2;
        }
        *target = optind < argc ? argv[optind] : NULL;
        return -1; /* go on */
}

static int gather(Doctor *d, int procfd, const char *target) {
        const char *path;
        int r;

        read_host(d);
        read_guard(d);
        if (target && parse_pid(target, &d->pid) < 0) {
                r = resolve_unit(d, target);
                if (r != 0)
                        return r;
        }
        if (d->pid > 0) {
                r = read_process(d, procfd);
                if (r != 0)
                        return r;
        }
        path = d->pid > 0 ? d->info.cgroup : d->unit_cgroup;
        if (path) {
                _cleanup_free_ pid_t *pids = NULL;
                r = read_chain(d, path);
                if (r < 0)
                        return fail("cannot read the cgroup chain", r);
                if (d->rootfd >= 0 && cgroup_get_pids(d->rootfd, cgroup_path_to_rel(path), &pids, &d->procs_in_cgroup) < 0)
                        d->procs_in_cgroup = 0;
                read_marks(d);
        }
        scan_processes(d, procfd);
        if (d->pid <= 0)
                return 0;
        read_oomd_watch(d);
        r = judge_killers(d);
        return r < 0 ? fail("cannot judge", r) : 0;
}

int verb_doctor(int argc, char *argv[]) {
        _cleanup_(doctor_done) Doctor d = { .rootfd = -EBADF, .target.oomd_watched = -1 };
        _cleanup_(advice_done) Advice a = {};
        _cleanup_close_ int procfd = -EBADF;
        const char *target = NULL;
        int json = -1, r;

        r = parse_doctor_args(argc, argv, &json, &target);
        if (r >= 0)
                return r;
        procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (procfd < 0)
                return fail("cannot open /proc", -errno);
        r = gather(&d, procfd, target);
        if (r != 0)
                return r;
        collect_advice(&d, &a);
        if (json >= 0)
                return print_json(&d, &a, json);
        print_text(&d, &a);
        return 0;
}
