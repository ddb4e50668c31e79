/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Protection by rule: the rule set, the process events connector and the
 * scans of /proc (oomprotect.rules(5)).
 *
 * Choices, each said in the man page too:
 *  - A process that has a record already (protected by hand, or by another
 *    rule) is left alone: a rule never changes a protection someone asked for.
 *  - A rule-made protection that is removed by hand (Unprotect, ctl) opts
 *    that process out: no scan protects it again until it execs again (or
 *    exits). The opt-outs live in memory only: a daemon restart forgets them.
 *  - On reload a rule-made record is restored when its rule is gone, no
 *    longer matches the process, or asks for other settings; in the last two
 *    cases the scan after the restore may protect it again (with the new
 *    settings, or by another rule). At start the same holds for the records
 *    state.json brought back, but for the settings (the old rules are not
 *    known any more).
 *  - The connector is subscribed to only while there are rules: without
 *    any, the daemon does not wake up for every fork on the machine.
 *  - A rule whose only match key is Unit= with exact unit names (no glob, no
 *    slice) protects each such unit by name (engine_protect_unit(): in
 *    place, memory.min/low held on its cgroup, every process's adj, its
 *    restarts followed by the engine), when a process of the unit is first
 *    seen: at the scans, and at the exec (or fork) of the first process of a
 *    unit that starts later, which the connector reports. The connector
 *    rather than systemd's signals: it serves the cgroupfs backend too, and
 *    a unit's first exec is the earliest moment either would tell of.
 *  - A unit protection a rule made and a user removed (UnprotectUnit) opts
 *    the unit out as PIDs are: until its cgroup is made again (it stops
 *    and starts, or restarts), until its rule is changed or removed on
 *    reload, or until the daemon restarts.
 *  - A process inside a unit protected by name (by hand or by rule) is
 *    covered by the unit's protection: no rule protects it one by one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "fileio.h"
#include "hold.h"
#include "log.h"
#include "manager.h"
#include "parse.h"
#include "proc.h"
#include "procwatch.h"

/* The socket's receive buffer: a burst of forks must not overrun it (ENOBUFS means a rescan). */
#define PROCWATCH_RCVBUF (4 * 1024 * 1024)
#define PROCWATCH_SOURCE_MAX (sizeof(RULE_SOURCE_PREFIX) + RULE_NAME_MAX)

typedef struct OptOut {
        pid_t pid;
        uint64_t starttime;
} OptOut;

typedef struct UnitOptOut {
        char *unit;
        char *rule;          /* the rule whose protection was removed */
        uint64_t cgroup_ino; /* the unit's cgroup then (0: none): made again, the opt-out ends */
} UnitOptOut;

struct ProcWatch {
        Manager *manager;
        RuleSet rules;
        int procfd;
        int fd; /* the connector socket, -EBADF when not subscribed */
        sd_event_source *io;
        bool connector_failed; /* tried and could not: said once, scans only */
        OptOut *opt_outs;
        size_t n_opt_outs;
        UnitOptOut *unit_opt_outs;
        size_t n_unit_opt_outs;
        unsigned restoring; /* reload restores under way */
        bool cgroup_rules;  /* some rule has Unit= or Cgroup=: forks are looked at too */
        LogRateLimit refusals;
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

/* ---- opt-outs: rule-made protections removed by hand ---- */

static ssize_t opt_out_find(const ProcWatch *w, pid_t pid) {
        for (size_t i = 0; i < w->n_opt_outs; i++)
                if (w->opt_outs[i].pid == pid)
                        return (ssize_t) i;
        return -1;
}

static void opt_out_drop(ProcWatch *w, pid_t pid) {
        ssize_t i = opt_out_find(w, pid);

        if (i >= 0)
                w->opt_outs[i] = w->opt_outs[--w->n_opt_outs];
}

static void opt_out_add(ProcWatch *w, pid_t pid, uint64_t starttime) {
        OptOut *a;

        opt_out_drop(w, pid);
        a = realloc(w->opt_outs, (w->n_opt_outs + 1) * sizeof(OptOut));
        if (!a) {
                log_oom();
                return; /* the rule may protect it again at the next scan: said in the log */
        }
        w->opt_outs = a;
        w->opt_outs[w->n_opt_outs++] = (OptOut) { .pid = pid, .starttime = starttime };
}

/* Whether pid is opted out; an entry of an earlier process of that PID is dropped. */
static bool opted_out(ProcWatch *w, pid_t pid) {
        ssize_t i = opt_out_find(w, pid);
        uint64_t starttime;

        if (i < 0)
                return false;
        if (proc_read_starttime(w->procfd, pid, &starttime) >= 0 && starttime == w->opt_outs[i].starttime)
                return true;
        opt_out_drop(w, pid);
        return false;
}

static void on_protection_changed(Manager *m, const Protection *p, bool protected, const char *reason,
                                  void *userdata) {
        ProcWatch *w = userdata;

        if (protected || !rules_source_name(p->source) || streq(reason, "exited") ||
            strneq(reason, "rule ", strlen("rule ")))
                return;
        opt_out_add(w, p->pid, p->starttime);
        log_info("PID %d (%s) was protected by %s and is now unprotected (%s): no rule protects it again until it "
                 "executes a program again.", (int) p->pid, p->comm, p->source, reason);
}

static bool options_equal(const ProtectOptions *a, const ProtectOptions *b) {
        return a->has_memory_min == b->has_memory_min && (!a->has_memory_min || a->memory_min == b->memory_min) &&
               a->has_memory_low == b->has_memory_low && (!a->has_memory_low || a->memory_low == b->memory_low) &&
               a->has_adj == b->has_adj && (!a->has_adj || a->adj == b->adj) &&
               a->has_in_place == b->has_in_place && (!a->has_in_place || a->in_place == b->in_place) &&
               a->descendants == b->descendants;
}

/* ---- unit opt-outs: unit protections a rule made, removed by hand ---- */

/* The inode of a cgroup directory, which a unit's restart makes anew; 0 if it is not there. */
static uint64_t cgroup_ino(const ProcWatch *w, const char *cgroup) {
        const Engine *e = w->manager->engine;
        const char *rel = cgroup ? cgroup_path_to_rel(cgroup) : NULL;
        struct stat st;

        if (!rel || e->backend.rootfd < 0 || fstatat(e->backend.rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        return (uint64_t) st.st_ino;
}

static void unit_opt_out_drop_at(ProcWatch *w, size_t i) {
        free(w->unit_opt_outs[i].unit);
        free(w->unit_opt_outs[i].rule);
        w->unit_opt_outs[i] = w->unit_opt_outs[--w->n_unit_opt_outs];
}

static ssize_t unit_opt_out_find(const ProcWatch *w, const char *unit) {
        for (size_t i = 0; i < w->n_unit_opt_outs; i++)
                if (streq(w->unit_opt_outs[i].unit, unit))
                        return (ssize_t) i;
        return -1;
}

static void unit_opt_out_add(ProcWatch *w, const char *unit, const char *rule, uint64_t ino) {
        ssize_t i = unit_opt_out_find(w, unit);
        UnitOptOut *a, o = { .unit = strdup(unit), .rule = strdup(rule), .cgroup_ino = ino };

        if (i >= 0)
                unit_opt_out_drop_at(w, (size_t) i);
        a = o.unit && o.rule ? realloc(w->unit_opt_outs, (w->n_unit_opt_outs + 1) * sizeof(UnitOptOut)) : NULL;
        if (!a) {
                free(o.unit);
                free(o.rule);
                log_oom();
                return; /* the rule may protect it again at the next scan: said in the log */
        }
        w->unit_opt_outs = a;
        w->unit_opt_outs[w->n_unit_opt_outs++] = o;
}

/* Whether unit (running in cgroup now) is opted out; an entry of an earlier cgroup of it is dropped. */
static bool unit_opted_out(ProcWatch *w, const char *unit, const char *cgroup) {
        ssize_t i = unit_opt_out_find(w, unit);

        if (i < 0)
                return false;
        if (w->unit_opt_outs[i].cgroup_ino != 0 && cgroup_ino(w, cgroup) == w->unit_opt_outs[i].cgroup_ino)
                return true;
        log_info("%s runs in a new cgroup since its rule-made protection was removed by hand: rule %s applies to "
                 "it again.", unit, w->unit_opt_outs[i].rule);
        unit_opt_out_drop_at(w, (size_t) i);
        return false;
}

static void on_unit_changed(Manager *m, const UnitProtection *u, bool protected, const char *reason,
                            void *userdata) {
        ProcWatch *w = userdata;
        const char *rule = rules_source_name(u->source);

        /* Not an opt-out: the rules' own restores, a unit systemd unloaded, the daemon stopping. */
        if (protected || !rule || strneq(reason, "rule ", strlen("rule ")) || streq(reason, "unit unloaded") ||
            streq(reason, "daemon stopping"))
                return;
        unit_opt_out_add(w, u->unit, rule, cgroup_ino(w, u->cgroup));
        log_info("%s was protected by %s and is now unprotected (%s): no rule protects it again until it runs in a "
                 "new cgroup (a restart) or the rule changes.", u->unit, u->source, reason);
}

/* On reload: the opt-outs of rules removed, changed or no longer naming their unit end. */
static void unit_opt_outs_reload(ProcWatch *w, const RuleSet *old) {
        for (size_t i = 0; i < w->n_unit_opt_outs;) {
                const UnitOptOut *o = &w->unit_opt_outs[i];
                const Rule *now = rules_find(&w->rules, o->rule), *before = rules_find(old, o->rule);

                if (now && before && rule_is_unit_wide(now) && rule_names_unit(now, o->unit) &&
                    options_equal(&now->options, &before->options)) {
                        i++;
                        continue;
                }
                log_info("Rule %s changed: %s is no longer opted out of it.", o->rule, o->unit);
                unit_opt_out_drop_at(w, i);
        }
}

/* ---- applying a rule ---- */

static void on_rule_protected(Engine *e, const EngineResult *res, void *userdata) {
        ProcWatch *w = userdata;
        unsigned suppressed = 0;

        if (res->r >= 0)
                return; /* the protection itself is logged by the manager */
        /* Refusals (PID 1, a process of the daemon's slice, a budget) repeat at every exec: keep the log short. */
        if (!log_ratelimit_ok(&w->refusals, &suppressed))
                return;
        log_notice("A rule matched PID %d but it was not protected: %s%s", (int) res->pid,
                   res->err.code != 0 ? res->err.message : strerror(-res->r),
                   suppressed ? " (and more refusals, not shown)" : "");
}

static int protect_by_rule(ProcWatch *w, const Rule *r, pid_t pid) {
        char source[PROCWATCH_SOURCE_MAX];
        ProtectRequest req = { .pid = pid, .pidfd = -1, .options = r->options, .source = source,
                               .owner = UID_ANY };

        snprintf(source, sizeof(source), RULE_SOURCE_PREFIX "%s", r->name);
        req.options.tag = NULL;
        return engine_protect(w->manager->engine, &req, on_rule_protected, w);
}

typedef struct RuleUnitCall {
        ProcWatch *w;
        pid_t pid; /* the process it was seen through */
        char unit[];
} RuleUnitCall;

static void on_rule_unit_protected(Engine *e, const EngineResult *res, void *userdata) {
        RuleUnitCall *c = userdata;
        const UnitProtection *u = engine_get_unit(e, c->unit);
        char min[FORMAT_BYTES_MAX], low[FORMAT_BYTES_MAX];
        unsigned suppressed = 0;

        if (res->r > 0 && u)
                log_info("Protected unit %s through %s (seen at PID %d), in place in %s: oom_score_adj %d, "
                         "memory.min %s, memory.low %s.", u->unit, u->source, (int) c->pid, u->cgroup,
                         u->applied_adj, format_bytes(min, sizeof(min), u->memory_min),
                         format_bytes(low, sizeof(low), u->memory_low));
        else if (res->r < 0 && log_ratelimit_ok(&c->w->refusals, &suppressed))
                log_notice("A rule matched unit %s (PID %d) but it was not protected: %s%s", c->unit, (int) c->pid,
                           res->err.code != 0 ? res->err.message : strerror(-res->r),
                           suppressed ? " (and more refusals, not shown)" : "");
        free(c);
}

/* The cgroup of unit that a process in cgroup (in the unit, where systemd lays it out) is in. */
static char *unit_cgroup_of(const char *cgroup, const char *unit) {
        size_t n = strlen(unit);

        for (const char *c = strchr(cgroup, '/'); c; c = strchr(c + 1, '/'))
                if (strneq(c + 1, unit, n) && (c[1 + n] == '/' || c[1 + n] == '\0'))
                        return strndup(cgroup, (size_t) (c + 1 + n - cgroup));
        return NULL;
}

/*
 * A unit-wide rule (rule_is_unit_wide()) matched a process of unit: the
 * unit is protected by name, unless it is already (by hand or by a rule:
 * left alone) or opted out.
 */
static int protect_unit_by_rule(ProcWatch *w, const Rule *r, const char *unit, const RuleProcess *p) {
        Engine *e = w->manager->engine;
        _cleanup_free_ char *cgroup = NULL;
        char source[PROCWATCH_SOURCE_MAX];
        UnitProtectRequest req = { .unit = unit, .options = r->options, .source = source, .owner = UID_ANY };
        RuleUnitCall *c;

        /*
         * Protected, or being unprotected: a fork or exec in the unit while
         * its restore settles must not protect it again behind the back of
         * an UnprotectUnit (its opt-out is recorded when the restore ends),
         * nor raise its holds while they are put back. A rule's own restore
         * (reload) scans again once it is done.
         */
        if (engine_get_unit(e, unit) || engine_unit_restoring(e, unit))
                return 0;
        cgroup = unit_cgroup_of(p->cgroup, unit);
        if (!cgroup)
                return -ENOMEM; /* rule_unit_of_cgroup() found it there */
        if (unit_opted_out(w, unit, cgroup))
                return 0;
        c = malloc(sizeof(RuleUnitCall) + strlen(unit) + 1);
        if (!c)
                return -ENOMEM;
        c->w = w;
        c->pid = p->pid;
        strcpy(c->unit, unit);
        snprintf(source, sizeof(source), RULE_SOURCE_PREFIX "%s", r->name);
        req.options.tag = NULL;
        req.options.descendants = false; /* a unit's protection covers all its processes anyway */
        log_debug("PID %d is in %s, which rule %s protects as a unit.", (int) p->pid, unit, r->name);
        return engine_protect_unit(e, &req, on_rule_unit_protected, c);
}

/* A process in a unit protected by name: covered by the unit's protection. */
static bool in_protected_unit(const Engine *e, const char *cgroup) {
        for (size_t i = 0; cgroup && i < e->units.n; i++) {
                const UnitProtection *u = e->units.items[i];
                if (u->cgroup && (streq(u->cgroup, cgroup) || cgroup_is_ancestor(u->cgroup, cgroup)))
                        return true;
        }
        return false;
}

/* A process inside the protected slice: a child born in a protected scope, covered by its parent's protection. */
static bool in_slice(const Engine *e, const char *cgroup) {
        const char *rel = e->backend.has_cgroup && cgroup ? cgroup_path_to_rel(cgroup) : NULL;
        size_t n;

        if (!rel)
                return false;
        n = strlen(e->backend.slice_rel);
        return strneq(rel, e->backend.slice_rel, n) && (rel[n] == '/' || rel[n] == '\0');
}

/* Whether a rule applies to pid now, and if so apply it. */
static void consider(ProcWatch *w, pid_t pid, bool only_cgroup_rules) {
        Engine *e = w->manager->engine;
        const char *unit;
        RuleProcess p;
        const Rule *r;
        int k;

        if (pid <= 1 || pid == e->self || engine_get(e, pid) || opted_out(w, pid))
                return;
        k = rule_process_read(w->procfd, pid, &p);
        if (k < 0) {
                if (k == -ENOMEM)
                        log_oom();
                else if (k != -ESRCH)
                        log_debug_errno(k, "Cannot read PID %d for the rules, skipping it: %m", (int) pid);
                return;
        }
        if (p.kernel_thread || in_slice(e, p.cgroup) || in_protected_unit(e, p.cgroup)) {
                rule_process_done(&p);
                return;
        }
        if (!p.exe)
                log_debug("PID %d (%s): its executable cannot be read, Executable= cannot match it.", (int) pid,
                          p.comm);
        r = rules_match(&w->rules, &p);
        if (r && (!only_cgroup_rules || rule_uses_cgroup(r))) {
                log_debug("PID %d (%s, %s) matches rule %s (%s:%u).", (int) pid, p.comm, strna(p.exe), r->name,
                          r->file, r->line);
                unit = e->backend.has_cgroup ? rule_unit_of_cgroup(r, p.cgroup) : NULL;
                k = unit ? protect_unit_by_rule(w, r, unit, &p) : protect_by_rule(w, r, pid);
                if (k < 0)
                        log_warning_errno(k, "Failed to protect PID %d by rule %s: %m", (int) pid, r->name);
        }
        rule_process_done(&p);
}

static void scan(ProcWatch *w, const char *why) {
        DIR *d = NULL;
        uint64_t start = now_usec();
        size_t before = engine_count(w->manager->engine), n = 0;
        struct dirent *de;
        int r;

        if (w->rules.n == 0)
                return;
        r = opendir_at(w->procfd, ".", &d);
        if (r < 0) {
                log_warning_errno(r, "Failed to list /proc for the rules' scan, ignoring: %m");
                return;
        }
        while ((de = readdir(d))) {
                pid_t pid;
                if (parse_pid(de->d_name, &pid) < 0)
                        continue;
                consider(w, pid, false);
                n++;
        }
        closedir(d);
        log_info("Rules: scanned %zu processes (%s) in %.1f ms; %zu protection(s) before, %zu now (including "
                 "those still being applied).", n, why, (double) (now_usec() - start) / 1000.0, before,
                 engine_count(w->manager->engine));
}

/* ---- the process events connector ---- */

typedef struct __attribute__((packed)) ConnectorRequest {
        struct nlmsghdr nl;
        struct cn_msg cn;
        enum proc_cn_mcast_op op;
} ConnectorRequest;

static void handle_event(ProcWatch *w, const struct proc_event *ev) {
        switch (ev->what) {
        case PROC_EVENT_NONE:
                /* The kernel's answer to PROC_CN_MCAST_LISTEN (or IGNORE): 0, or why it refused. */
                if (ev->event_data.ack.err != 0)
                        log_warning("The kernel refused the process events subscription: %s; rules apply at start "
                                    "and on reload only.", strerror((int) ev->event_data.ack.err));
                else
                        log_debug("The kernel acknowledged the process events subscription.");
                break;
        case PROC_EVENT_EXEC:
                if (ev->event_data.exec.process_pid != ev->event_data.exec.process_tgid)
                        return; /* a thread's exec replaced the whole process: its leader's event follows */
                log_debug("Exec of PID %d.", (int) ev->event_data.exec.process_tgid);
                opt_out_drop(w, ev->event_data.exec.process_tgid);
                consider(w, ev->event_data.exec.process_tgid, false);
                break;
        case PROC_EVENT_FORK:
                /* A new process (not a thread) has its parent's exe and uids: only its cgroup may be new to a rule. */
                if (w->cgroup_rules && ev->event_data.fork.child_pid == ev->event_data.fork.child_tgid)
                        consider(w, ev->event_data.fork.child_tgid, true);
                break;
        case PROC_EVENT_EXIT:
                if (ev->event_data.exit.process_pid == ev->event_data.exit.process_tgid)
                        opt_out_drop(w, ev->event_data.exit.process_tgid);
                break;
        default:
                break;
        }
}

static void handle_datagram(ProcWatch *w, const void *buf, size_t len) {
        for (const struct nlmsghdr *h = buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
                const struct cn_msg *cn;
                struct proc_event ev;

                if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_NOOP)
                        continue;
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct cn_msg)))
                        continue;
                cn = NLMSG_DATA(h);
                if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC || cn->len < sizeof(struct proc_event) ||
                    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct cn_msg) + sizeof(struct proc_event)))
                        continue;
                /* The event follows a 20-byte header: copied out, as it is not aligned for its 64-bit fields. */
                memcpy(&ev, cn->data, sizeof(ev));
                handle_event(w, &ev);
        }
}

static int on_connector(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ProcWatch *w = userdata;
        char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));

        for (unsigned i = 0; i < 256; i++) { /* then let the loop serve the rest too */
                struct sockaddr_nl from = {};
                socklen_t fromlen = sizeof(from);
                ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *) &from, &fromlen);

                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        if (errno == ENOBUFS) {
                                log_notice("The process events connector overran (a burst of forks and execs); "
                                           "scanning /proc instead for what was lost.");
                                scan(w, "after an overrun");
                                continue;
                        }
                        log_warning_errno(errno, "Failed to read the process events connector, ignoring: %m");
                        return 0;
                }
                if (from.nl_pid != 0)
                        continue; /* not the kernel's */
                handle_datagram(w, buf, (size_t) n);
        }
        return 0;
}

static int connector_send(int fd, enum proc_cn_mcast_op op) {
        ConnectorRequest req = {
                .nl = { .nlmsg_len = sizeof(ConnectorRequest), .nlmsg_type = NLMSG_DONE, .nlmsg_pid = 0 },
                .cn = { .id = { .idx = CN_IDX_PROC, .val = CN_VAL_PROC }, .len = sizeof(enum proc_cn_mcast_op) },
                .op = op,
        };

        return send(fd, &req, sizeof(req), 0) < 0 ? negative_errno() : 0;
}

static int connector_open(int *ret) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
        int fd, size = PROCWATCH_RCVBUF, r;

        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR);
        if (fd < 0)
                return negative_errno();
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = negative_errno();
                safe_close(fd);
                return r;
        }
        r = connector_send(fd, PROC_CN_MCAST_LISTEN);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        *ret = fd;
        return 0;
}

static void connector_close(ProcWatch *w) {
        if (w->fd < 0)
                return;
        (void) connector_send(w->fd, PROC_CN_MCAST_IGNORE);
        w->io = sd_event_source_disable_unref(w->io);
        w->fd = safe_close(w->fd);
}

/* Subscribed while there are rules, not otherwise. */
static void connector_update(ProcWatch *w) {
        int r;

        if (w->rules.n == 0) {
                if (w->fd >= 0)
                        log_info("No rules: exec matching is off.");
                connector_close(w);
                return;
        }
        if (w->fd >= 0)
                return;
        r = connector_open(&w->fd);
        if (r >= 0)
                r = sd_event_add_io(w->manager->event, &w->io, w->fd, EPOLLIN, on_connector, w);
        if (r < 0) {
                w->fd = safe_close(w->fd);
                if (!w->connector_failed)
                        log_warning_errno(r, "Cannot subscribe to the kernel's process events connector (%s): "
                                             "rules apply at start and on reload (SIGHUP) only, not at exec: %m",
                                          r == -EPERM ? "CAP_NET_ADMIN missing, or not the initial network namespace"
                                                      : "NETLINK_CONNECTOR or CONFIG_PROC_EVENTS missing?");
                w->connector_failed = true;
                return;
        }
        (void) sd_event_source_set_description(w->io, "proc-connector");
        /* Before the scans that follow: an exec meanwhile is seen by one or the other. */
        log_info("Rules: listening to the kernel's process events for exec matching.");
}

/* ---- rules ---- */

static int load_rules(Manager *m, RuleSet *ret) {
        RuleSet s = {};
        int r;

        r = rules_load_string(&s, m->config.rule_directories);
        if (r < 0) {
                rule_set_done(&s);
                return log_error_errno(r, "Failed to read the rules in %s: %m", m->config.rule_directories);
        }
        for (size_t i = 0; i < s.n_warnings; i++)
                log_warning("%s", s.warnings[i]);
        log_info("Rules: %zu loaded from %s%s.", s.n, m->config.rule_directories,
                 s.n_warnings ? " (see the warnings above)" : "");
        *ret = s;
        return 0;
}

static void restore_stale(ProcWatch *w, const RuleSet *old, const char *why);

static bool any_cgroup_rule(const RuleSet *s) {
        for (size_t i = 0; i < s->n; i++)
                if (rule_uses_cgroup(s->rules[i]))
                        return true;
        return false;
}

int procwatch_setup(Manager *m) {
        ProcWatch *w;
        int r;

        w = calloc(1, sizeof(ProcWatch));
        if (!w)
                return log_oom();
        *w = (ProcWatch) { .manager = m, .procfd = m->engine->procfd, .fd = -EBADF,
                           .refusals = LOG_RATELIMIT_INIT(10 * 1000000ULL, 10) };
        m->procwatch = w;
        r = manager_add_listener(m, &(ManagerListener) { .changed = on_protection_changed,
                                                          .unit_changed = on_unit_changed, .userdata = w });
        if (r < 0)
                return log_error_errno(r, "Failed to listen for protection changes: %m");
        r = load_rules(m, &w->rules);
        if (r < 0)
                return r;
        w->cgroup_rules = any_cgroup_rule(&w->rules);
        connector_update(w);
        /* Records of rules from before a restart (state.json) whose rule is gone meanwhile are restored too. */
        restore_stale(w, &(RuleSet) {}, "at start");
        return 0;
}

void procwatch_done(Manager *m) {
        ProcWatch *w = m->procwatch;

        if (!w)
                return;
        connector_close(w);
        rule_set_done(&w->rules);
        free(w->opt_outs);
        while (w->n_unit_opt_outs > 0)
                unit_opt_out_drop_at(w, w->n_unit_opt_outs - 1);
        free(w->unit_opt_outs);
        free(w);
        m->procwatch = NULL;
}

/*
 * Why a record of a rule (source) must go on reload whatever it protects:
 * its rule is gone, or its settings changed. NULL otherwise, with *ret_now
 * its rule (NULL for a record of another source).
 */
static const char *rule_gone_or_changed(ProcWatch *w, const RuleSet *old, const char *source, const Rule **ret_now) {
        const char *name = rules_source_name(source);
        const Rule *before;

        *ret_now = NULL;
        if (!name)
                return NULL;
        *ret_now = rules_find(&w->rules, name);
        if (!*ret_now)
                return "rule removed";
        before = rules_find(old, name);
        if (before && !options_equal(&before->options, &(*ret_now)->options)) {
                *ret_now = NULL;
                return "rule changed";
        }
        return NULL;
}

/* Why a rule-made record must go on reload, or NULL if it stays. */
static const char *stale_reason(ProcWatch *w, const RuleSet *old, const Protection *p) {
        const char *reason, *unit;
        const Rule *now;
        RuleProcess proc;
        bool match;

        reason = rule_gone_or_changed(w, old, p->source, &now);
        if (reason || !now)
                return reason;
        if (rule_process_read(w->procfd, p->pid, &proc) < 0)
                return NULL; /* exited: its pidfd watch cleans up */
        match = rule_matches(now, &proc, NULL);
        /* A record of a daemon that protected a Unit= rule's processes one by one: the unit takes over. */
        unit = match && w->manager->engine->backend.has_cgroup ? rule_unit_of_cgroup(now, proc.cgroup) : NULL;
        rule_process_done(&proc);
        return !match ? "rule no longer matches" : unit ? "rule protects its unit as a whole now" : NULL;
}

/* The same for a unit protected by a rule. */
static const char *unit_stale_reason(ProcWatch *w, const RuleSet *old, const UnitProtection *u) {
        const Rule *now;
        const char *reason = rule_gone_or_changed(w, old, u->source, &now);

        if (reason || !now)
                return reason;
        return rule_is_unit_wide(now) && rule_names_unit(now, u->unit) ? NULL : "rule no longer names it";
}

/* A restore of the reload's ended (a process's or a unit's: res->pid 0); the last one starts the scan. */
static void on_rule_restored(Engine *e, const EngineResult *res, void *userdata) {
        ProcWatch *w = userdata;
        char what[32] = "a unit";

        if (res->pid > 0)
                snprintf(what, sizeof(what), "PID %d", (int) res->pid);
        if (res->r < 0)
                log_warning("Failed to restore %s, whose rule changed: %s", what,
                            res->err.code != 0 ? res->err.message : strerror(-res->r));
        if (w->restoring > 0 && --w->restoring == 0)
                scan(w, "after restoring the processes of changed rules");
}

static void strv_free_n(char **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

/* Collects the units (names, copied) to restore; the count, or -ENOMEM. */
static int stale_units(ProcWatch *w, const RuleSet *old, char ***ret_units, const char ***ret_reasons) {
        Engine *e = w->manager->engine;
        char **units = calloc(e->units.n + 1, sizeof(char *));
        _cleanup_free_ const char **reasons = calloc(e->units.n + 1, sizeof(char *));
        size_t n = 0;

        for (size_t i = 0; units && reasons && i < e->units.n; i++) {
                const char *reason = unit_stale_reason(w, old, e->units.items[i]);
                if (!reason)
                        continue;
                units[n] = strdup(e->units.items[i]->unit);
                if (!units[n]) {
                        strv_free_n(units, n);
                        return -ENOMEM;
                }
                reasons[n++] = reason;
        }
        if (!units || !reasons) {
                free(units);
                return -ENOMEM;
        }
        *ret_units = units;
        *ret_reasons = TAKE_PTR(reasons);
        return (int) n;
}

static void restore_stale(ProcWatch *w, const RuleSet *old, const char *why) {
        Engine *e = w->manager->engine;
        pid_t *pids;
        const char **reasons, **unit_reasons = NULL;
        char **units = NULL;
        size_t n = 0;
        int n_units;

        /* Collected first: an unprotect may change the registry under the loop. */
        pids = calloc(engine_count(e) + 1, sizeof(pid_t));
        reasons = calloc(engine_count(e) + 1, sizeof(char *));
        if (!pids || !reasons) {
                free(pids);
                free(reasons);
                log_oom();
                return;
        }
        for (size_t i = 0; i < e->registry.n; i++) {
                const char *reason = stale_reason(w, old, e->registry.items[i]);
                if (reason) {
                        pids[n] = e->registry.items[i]->pid;
                        reasons[n++] = reason;
                }
        }
        n_units = stale_units(w, old, &units, &unit_reasons);
        if (n_units < 0) {
                log_oom(); /* the units stay as they are until the next reload: said in the log */
                n_units = 0;
        }
        w->restoring += (unsigned) (n + (size_t) n_units) + 1; /* +1: held until every unprotect was started */
        for (size_t i = 0; i < n; i++) {
                log_info("Restoring PID %d: %s.", (int) pids[i], reasons[i]);
                (void) engine_unprotect(e, pids[i], UID_ANY, reasons[i], on_rule_restored, w);
        }
        for (int i = 0; i < n_units; i++) {
                log_info("Restoring unit %s: %s.", units[i], unit_reasons[i]);
                (void) engine_unprotect_unit(e, units[i], UID_ANY, unit_reasons[i], on_rule_restored, w);
        }
        strv_free_n(units, (size_t) n_units);
        free(unit_reasons);
        free(pids);
        free(reasons);
        if (--w->restoring == 0)
                scan(w, why);
}

int procwatch_reload(Manager *m) {
        ProcWatch *w = m->procwatch;
        RuleSet new = {}, old;
        int r;

        if (!w)
                return 0;
        r = load_rules(m, &new);
        if (r < 0)
                return r; /* the running rules stay */
        old = w->rules;
        w->rules = new;
        w->cgroup_rules = any_cgroup_rule(&w->rules);
        connector_update(w);
        unit_opt_outs_reload(w, &old);
        restore_stale(w, &old, "on reload");
        rule_set_done(&old);
        return 0;
}

size_t procwatch_rule_count(const Manager *m) {
        return m->procwatch ? m->procwatch->rules.n : 0;
}

bool procwatch_exec_matching(const Manager *m) {
        return m->procwatch && m->procwatch->fd >= 0;
}
