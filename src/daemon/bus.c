/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * org.oomprotect.Manager at /org/oomprotect on the system bus (DESIGN.md
 * section 3; conf/org.oomprotect.Manager.xml is the same interface as
 * introspection data).
 *
 * Every method validates its arguments, then authorizes the caller (writes
 * only: auth_check_modify() with credentials from the bus, see
 * bus-caller.h), then calls the engine, then replies. Nothing waits: the
 * method call is held (a BusRequest) while the bus driver says who sent it
 * and while the engine works, and the reply goes out from the completion
 * (systemd-machined's machine_start_scope()/match_job_removed()). The bus
 * policy lets everyone call every method; this file is the real gate.
 *
 * ListProtected() returns a(usssiittss), one struct per protection:
 *   u pid, s comm, s original cgroup, s scope cgroup,
 *   i original oom_score_adj, i applied oom_score_adj,
 *   t memory.min in bytes, t protected since (µs, CLOCK_REALTIME),
 *   s source ("dbus", "ctl", ...), s tag.
 * After those (by ascending pid), the processes of the units protected by
 * name, each with its unit's cgroup, no scope, memory.min 0 (the unit has
 * it: ListProtectedUnits), source "unit" (ProtectUnit), "drop-in"
 * (oomprotectctl drop-in) or "rule:NAME" (a rule's Unit=) and the unit's tag.
 * A string the engine does not have (cgroups on adj-only, no tag) is "".
 * Strings from the system (comm, cgroup names) are arbitrary bytes; bytes
 * that are not UTF-8 are sent as '?'.
 *
 * ListProtectedUnits() returns a(ssbttitssau), one struct per unit protected
 * by name (ProtectUnit): s unit, s its cgroup, b running (it has processes
 * now), t memory.min, t memory.low, i applied oom_score_adj, t protected
 * since (µs), s source, s tag, au the PIDs in its cgroup now. A unit's
 * protection outlives its processes: a restart keeps it.
 *
 * Signals come from a ManagerListener, so changes made through any front
 * end and process exits are signalled too.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "auth.h"
#include "bus-caller.h"
#include "bus-peer.h"
#include "bus-trusted.h"
#include "bus.h"
#include "compat.h"
#include "guard.h"
#include "escape.h"
#include "list.h"
#include "log-struct.h"
#include "log.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "fileio.h"
#include "proc.h"
#include "rules.h"

/* The source recorded for protections made through this front end. */
#define BUS_SOURCE "dbus"
/* ...and for those oomprotect-cuse asks for, on behalf of a caller of /dev/oom_protect. */
#define TRUSTED_SOURCE "cuse"

/* ---- helpers ---- */

/* s itself when it has nothing unsafe (escape.h), else an escaped copy in *buf: valid UTF-8 for the bus. */
static const char *utf8_safe(const char *s, char **buf) {
        char *t;

        if (!s)
                return "";
        if (text_is_safe(s))
                return s;
        t = text_escape(s);
        if (!t)
                return "?";
        free(*buf);
        *buf = t;
        return t;
}

/* The engine's refusal as a named error with its sentence. */
static int reply_op_error(sd_bus_error *error, int r, const OpError *err) {
        if (err->name)
                return sd_bus_error_set(error, err->name, err->message);
        return sd_bus_error_setf(error, op_error_name_from_errno(r), "%s.", strerror(-r));
}

static int check_pid(uint32_t pid, sd_bus_error *error) {
        if (pid == 0 || pid > OOMPROTECT_PID_MAX_LIMIT)
                return sd_bus_error_setf(error, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                         "PID %" PRIu32 " is not a valid process ID.", pid);
        return 0;
}

static int check_tag(const char *tag, sd_bus_error *error) {
        if (isempty(tag))
                return sd_bus_error_set(error, OOMPROTECT_ERROR_INVALID_ARGUMENT, "A tag must not be empty.");
        return 0;
}

/* ---- protection options (a{sv}) ---- */

typedef enum OptionKey {
        OPTION_MEMORY_MIN,
        OPTION_MEMORY_LOW,
        OPTION_OOM_SCORE_ADJUST,
        OPTION_OOM_GROUP,
        OPTION_DESCENDANTS,
        OPTION_IN_PLACE,
        OPTION_TAG,
        OPTION_DROP_IN,
        _OPTION_KEY_MAX,
} OptionKey;

static const struct {
        const char *name;
        const char *type;
} option_table[_OPTION_KEY_MAX] = {
        [OPTION_MEMORY_MIN] = { "MemoryMin", "t" },
        [OPTION_MEMORY_LOW] = { "MemoryLow", "t" },
        [OPTION_OOM_SCORE_ADJUST] = { "OOMScoreAdjust", "i" },
        [OPTION_OOM_GROUP] = { "OOMGroup", "b" },
        [OPTION_DESCENDANTS] = { "Descendants", "b" },
        [OPTION_IN_PLACE] = { "InPlace", "b" },
        [OPTION_TAG] = { "Tag", "s" },
        [OPTION_DROP_IN] = { "DropIn", "b" }, /* ProtectUnit only: made by oomprotectctl drop-in */
};

typedef union OptionValue {
        uint64_t t;
        int32_t i;
        int b;
        const char *s; /* points into the message */
} OptionValue;

static int option_key_from_string(const char *s) {
        for (size_t k = 0; k < _OPTION_KEY_MAX; k++)
                if (streq(s, option_table[k].name))
                        return (int) k;
        return -EINVAL;
}

static void option_store(ProtectOptions *o, OptionKey k, const OptionValue *v) {
        switch (k) {
        case OPTION_MEMORY_MIN:
                o->memory_min = v->t;
                o->has_memory_min = true;
                break;
        case OPTION_MEMORY_LOW:
                o->memory_low = v->t;
                o->has_memory_low = true;
                break;
        case OPTION_OOM_SCORE_ADJUST:
                o->adj = v->i;
                o->has_adj = true;
                break;
        case OPTION_OOM_GROUP:
                o->oom_group = v->b;
                o->has_oom_group = true;
                break;
        case OPTION_DESCENDANTS:
                o->descendants = v->b;
                break;
        case OPTION_IN_PLACE:
                o->in_place = v->b;
                o->has_in_place = true;
                break;
        case OPTION_TAG:
                o->tag = v->s;
                break;
        case OPTION_DROP_IN:
                o->drop_in = v->b;
                break;
        default:
                break;
        }
}

/* One {sv} entry, the cursor inside it. seen: a bit per key already given. */
static int read_option(sd_bus_message *m, ProtectOptions *o, unsigned *seen, sd_bus_error *error) {
        const char *key, *contents;
        OptionValue v = {};
        int k, r;

        r = sd_bus_message_read(m, "s", &key);
        if (r < 0)
                return r;
        k = option_key_from_string(key);
        if (k < 0)
                return sd_bus_error_setf(error, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                         "Unknown option \"%s\"; the options are MemoryMin (t), MemoryLow (t), "
                                         "OOMScoreAdjust (i), OOMGroup (b), Descendants (b), InPlace (b), Tag (s), "
                                         "DropIn (b, ProtectUnit only).",
                                         key);
        if (*seen & (1U << k))
                return sd_bus_error_setf(error, OOMPROTECT_ERROR_INVALID_ARGUMENT, "Option %s is given twice.", key);
        *seen |= 1U << k;
        r = sd_bus_message_peek_type(m, NULL, &contents);
        if (r < 0)
                return r;
        if (!streq(contents, option_table[k].type))
                return sd_bus_error_setf(error, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                         "Option %s must be of type '%s', not '%s'.", key, option_table[k].type,
                                         contents);
        r = sd_bus_message_read(m, "v", option_table[k].type, &v);
        if (r < 0)
                return r;
        option_store(o, (OptionKey) k, &v);
        return 0;
}

static int check_options(const ProtectOptions *o, sd_bus_error *error) {
        if (o->has_adj && (o->adj < OOMPROTECT_OOM_SCORE_ADJ_MIN || o->adj > OOMPROTECT_OOM_SCORE_ADJ_MAX))
                return sd_bus_error_setf(error, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                         "OOMScoreAdjust %d is out of range (%d to %d).", o->adj,
                                         OOMPROTECT_OOM_SCORE_ADJ_MIN, OOMPROTECT_OOM_SCORE_ADJ_MAX);
        if (o->tag)
                return check_tag(o->tag, error);
        return 0;
}

static int read_options(sd_bus_message *m, ProtectOptions *ret, sd_bus_error *error) {
        ProtectOptions o = {};
        unsigned seen = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = read_option(m, &o, &seen, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        r = check_options(&o, error);
        if (r < 0)
                return r;
        *ret = o;
        return 0;
}

/* ---- requests held until their reply ---- */

typedef enum BusAction {
        ACTION_PROTECT,        /* Protect, ProtectWithOptions, ProtectPidfd */
        ACTION_UNPROTECT,
        ACTION_UNPROTECT_ALL,
        ACTION_UNPROTECT_TAG,
        ACTION_SET_SELF,
        ACTION_GET_SELF,
        ACTION_SET_FOR, /* org.oomprotect.Trusted, for oomprotect-cuse */
        ACTION_GET_FOR,
        ACTION_PROTECT_UNIT,   /* ProtectUnit */
        ACTION_UNPROTECT_UNIT, /* UnprotectUnit */
        ACTION_ADOPT_SOCKETS,  /* AdoptSockets, root only */
} BusAction;

/* The most descriptors AdoptSockets takes in one call (compat_adopt() says what it makes of them). */
#define ADOPT_FDS_MAX 16

/*
 * A method call on its way: first the caller's credentials are asked of
 * the bus driver, then the engine works; the reply goes out when the last
 * of the two completes. msg is held until then, so the strings and the fd
 * read from it (req, tag) stay valid.
 */
struct BusRequest {
        Manager *manager;
        sd_bus_message *msg;
        sd_bus_slot *slot; /* the credentials query, while it runs */
        BusAction action;
        ProtectRequest req; /* ACTION_PROTECT */
        pid_t pid;          /* ACTION_UNPROTECT */
        const char *tag;    /* ACTION_UNPROTECT_TAG */
        UnitProtectRequest unit; /* ACTION_PROTECT_UNIT, ACTION_UNPROTECT_UNIT (unit.unit only) */
        bool enable;        /* ACTION_SET_SELF, ACTION_SET_FOR */
        int pidfd;          /* ACTION_*_FOR: the process acted for (owned by msg) */
        uid_t for_uid;      /* ACTION_SET_FOR: its uid, as the kernel told oomprotect-cuse */
        int fds[ADOPT_FDS_MAX]; /* ACTION_ADOPT_SOCKETS (owned by msg) */
        size_t n_fds;
        BusCaller caller;   /* who sent it, once the bus said (a copy: groups are not kept) */
        int self_pidfd;     /* ACTION_SET_SELF: the caller's process, while it is proven (bus-peer.h) */
        uid_t owner;        /* what request_authorize() made of it */
        WorkItem work;      /* its turn in m->work, once authorized */
        BusRequest *prev, *next;
};

static BusRequest *request_free(BusRequest *r) {
        if (!r)
                return NULL;
        LIST_REMOVE(r->manager->bus_requests, r);
        work_queue_cancel(&r->work);
        safe_close(r->self_pidfd);
        sd_bus_slot_unref(r->slot);
        sd_bus_message_unref(r->msg);
        free(r);
        return NULL;
}

static BusRequest *request_new(Manager *m, sd_bus_message *msg, BusAction action) {
        BusRequest *r = calloc(1, sizeof(BusRequest));

        if (!r)
                return NULL;
        *r = (BusRequest) { .manager = m, .msg = sd_bus_message_ref(msg), .action = action, .req.pidfd = -EBADF,
                           .self_pidfd = -EBADF };
        LIST_PREPEND(m->bus_requests, r);
        return r;
}

static void log_reply_failure(BusRequest *r, int q) {
        if (q < 0)
                log_debug_errno(q, "Failed to reply to %s(), ignoring: %m", sd_bus_message_get_member(r->msg));
}

/* Sends error (set) as the reply and forgets the request. */
static void request_reply_error(BusRequest *r, const sd_bus_error *error) {
        log_reply_failure(r, sd_bus_reply_method_error(r->msg, error));
        request_free(r);
}

static void request_reply_op_error(BusRequest *r, int code, const OpError *err) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        (void) reply_op_error(&error, code, err);
        request_reply_error(r, &error);
}

static void request_reply_empty(BusRequest *r) {
        log_reply_failure(r, sd_bus_reply_method_return(r->msg, NULL));
        request_free(r);
}

/* The engine finished: the method's reply, or its named error with the sentence. */
static void on_engine_done(Engine *e, const EngineResult *res, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        BusRequest *r = userdata;

        switch (r->action) {
        case ACTION_PROTECT_UNIT:
        case ACTION_UNPROTECT_UNIT:
                if (res->r < 0) {
                        log_struct_internal(LOG_NOTICE, 0, OOMPROTECT_MESSAGE_FAILED, 0, r->unit.unit,
                                            "%s(%s) from %s failed: %s", sd_bus_message_get_member(r->msg),
                                            r->unit.unit, strna(sd_bus_message_get_sender(r->msg)),
                                            res->err.code != 0 ? res->err.message : strerror(-res->r));
                        request_reply_op_error(r, res->r, &res->err);
                        return;
                }
                log_struct_internal(LOG_INFO, 0, r->action == ACTION_PROTECT_UNIT ? OOMPROTECT_MESSAGE_PROTECTED
                                                                                  : OOMPROTECT_MESSAGE_UNPROTECTED,
                                    0, r->unit.unit, "%s %s (%s).", r->unit.unit,
                                    r->action == ACTION_UNPROTECT_UNIT ? "is no longer protected"
                                    : res->r > 0                        ? "is protected, in place"
                                                                        : "was protected already",
                                    BUS_SOURCE);
                request_reply_empty(r);
                return;
        case ACTION_UNPROTECT_ALL:
                if (res->r < 0) {
                        (void) sd_bus_error_setf(&error, op_error_name_from_errno(res->r), "Cannot unprotect: %s.",
                                                 strerror(-res->r));
                        request_reply_error(r, &error);
                        return;
                }
                log_reply_failure(r, sd_bus_reply_method_return(r->msg, "u", (uint32_t) res->r));
                request_free(r);
                return;
        case ACTION_UNPROTECT_TAG:
                if (res->r < 0) {
                        (void) sd_bus_error_setf(&error, op_error_name_from_errno(res->r),
                                                 "Cannot unprotect tag %s: %s.", r->tag, strerror(-res->r));
                        request_reply_error(r, &error);
                        return;
                }
                log_reply_failure(r, sd_bus_reply_method_return(r->msg, "u", (uint32_t) res->r));
                request_free(r);
                return;
        default:
                if (res->r < 0) {
                        /* Logged as well as replied: an administrator reads the journal, not the client's terminal. */
                        static LogRateLimit rl = LOG_RATELIMIT_INIT(10 * 1000000ULL, 20);
                        unsigned suppressed;
                        if (log_ratelimit_ok(&rl, &suppressed))
                                log_struct_internal(LOG_NOTICE, 0, OOMPROTECT_MESSAGE_FAILED, res->pid, NULL,
                                                    "%s() for PID %d from %s failed: %s%s",
                                                    sd_bus_message_get_member(r->msg), (int) res->pid,
                                                    strna(sd_bus_message_get_sender(r->msg)),
                                                    res->err.code != 0 ? res->err.message : strerror(-res->r),
                                                    suppressed ? " (Earlier failures were not logged.)" : "");
                        request_reply_op_error(r, res->r, &res->err);
                        return;
                }
                manager_log_unprotect_report(res->pid, &res->report);
                request_reply_empty(r);
                return;
        }
}

/* May the caller change protections? *ret_owner: UID_ANY for root, else its uid. Replies when not. */
static int request_authorize(BusRequest *r, const BusCaller *c, uid_t *ret_owner) {
        Manager *m = r->manager;
        OpError err = {};
        int q;

        q = auth_check_modify(&c->auth, m->allow_gid, ret_owner, &err);
        if (q < 0) {
                static LogRateLimit rl = LOG_RATELIMIT_INIT(10 * 1000000ULL, 10);
                unsigned suppressed;
                if (log_ratelimit_ok(&rl, &suppressed))
                        log_notice("Refused %s() from uid %u (PID %d): not root and not in AllowGroup=%s.%s",
                                   sd_bus_message_get_member(r->msg), (unsigned) c->auth.uid, (int) c->pid,
                                   strna(m->config.allow_group),
                                   suppressed ? " (Earlier refusals were not logged.)" : "");
                request_reply_op_error(r, q, &err);
                return q;
        }
        log_debug("%s() from uid %u (PID %d) authorized.", sd_bus_message_get_member(r->msg), (unsigned) c->auth.uid,
                  (int) c->pid);
        return 0;
}

/* The caller's own PID, for the self-protection methods; replies when the bus did not tell it. */
static int request_caller_pid(BusRequest *r, const BusCaller *c) {
        if (c->pid > 0)
                return 0;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        (void) sd_bus_error_set(&error, OOMPROTECT_ERROR_INVALID_PROCESS, "The bus did not tell the caller's PID.");
        request_reply_error(r, &error);
        return -ESRCH;
}

static void request_reply_named(BusRequest *r, const char *name, const char *format, ...) _printf_(3, 4);
static void request_reply_named(BusRequest *r, const char *name, const char *format, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;

        va_start(ap, format);
        (void) sd_bus_error_setfv(&error, name, format, ap);
        va_end(ap);
        log_debug("Refused %s() from %s: %s", sd_bus_message_get_member(r->msg),
                  strna(sd_bus_message_get_sender(r->msg)), strna(error.message));
        request_reply_error(r, &error);
}

/* Proven the caller (bus-peer.h): protect or unprotect the process behind r->self_pidfd. */
static void set_self_proven(BusRequest *r, pid_t pid) {
        Engine *e = r->manager->engine;
        Protection *p = engine_get(e, pid);
        uint64_t starttime;

        if (r->enable) {
                r->req = (ProtectRequest) { .pidfd = r->self_pidfd, .owner = r->owner, .source = BUS_SOURCE };
                (void) engine_protect(e, &r->req, on_engine_done, r);
                return;
        }
        /* "Off" for an unprotected caller is a no-op; a record of another process at its PID is not its. */
        if (!p || proc_read_starttime(e->procfd, pid, &starttime) < 0 || !proc_pidfd_alive(r->self_pidfd) ||
            starttime != p->starttime) {
                request_reply_empty(r);
                return;
        }
        (void) engine_unprotect(e, pid, r->owner, "unprotected", on_engine_done, r);
}

/* The bus, asked again after the pidfd was opened: is the caller's connection still there, the same? */
static void on_caller_again(const BusCaller *c, const sd_bus_error *error, void *userdata) {
        BusRequest *r = userdata;
        pid_t pid = r->caller.pid;

        r->slot = sd_bus_slot_unref(r->slot);
        if (!c || c->pid != pid || c->auth.uid != r->caller.auth.uid)
                return request_reply_named(r, OOMPROTECT_ERROR_INVALID_PROCESS,
                                           "Cannot prove that PID %d is the caller: its connection %s.", (int) pid,
                                           c ? "now names another process" : "went away");
        if (!proc_pidfd_alive(r->self_pidfd))
                return request_reply_named(r, OOMPROTECT_ERROR_NO_SUCH_PROCESS, "PID %d has exited.", (int) pid);
        set_self_proven(r, pid);
}

/*
 * The 2006 module's ioctl OOMSETPROTECTCMD: the caller's own process. The
 * bus names it by a PID that may have been reused: bus-peer.h's proof first,
 * holding a pidfd; the engine then acts on that pidfd.
 */
static void run_set_self(BusRequest *r, const BusCaller *c) {
        Manager *m = r->manager;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int q;

        if (request_caller_pid(r, c) < 0)
                return;
        r->self_pidfd = proc_pidfd_open(c->pid);
        if (r->self_pidfd == -ENOSYS)
                return request_reply_named(r, OOMPROTECT_ERROR_INVALID_PROCESS,
                                           "Cannot prove that PID %d is the caller without pidfd_open() (Linux 5.3 "
                                           "or later); protect it with Protect() instead.", (int) c->pid);
        if (r->self_pidfd < 0)
                return request_reply_named(r, OOMPROTECT_ERROR_NO_SUCH_PROCESS, "PID %d, the caller's, has exited.",
                                           (int) c->pid);
        q = bus_peer_holds_bus_socket(m->engine->procfd, c->pid, sd_bus_get_fd(m->bus));
        if (q == 0)
                return request_reply_named(r, OOMPROTECT_ERROR_INVALID_PROCESS,
                                           "Cannot prove that PID %d is the caller: it holds no connection to this "
                                           "bus (the caller's PID was reused?).", (int) c->pid);
        if (q < 0) /* the sandbox hides its descriptors: the rest of the proof (bus-peer.h) */
                log_debug_errno(q, "Cannot look at the descriptors of PID %d (%m); proving it the caller by its "
                                   "pidfd and the bus alone.", (int) c->pid);
        q = bus_caller_query(r->msg, false, on_caller_again, r, &r->slot, &error);
        if (q < 0)
                request_reply_error(r, &error);
}

/*
 * org.oomprotect.Trusted: oomprotect-cuse (root) acts for the process behind
 * r->pidfd, which is authorized exactly as SetSelfProtection would authorize
 * it (bus-trusted.c reads who it is).
 */
static void run_for(BusRequest *r, const BusCaller *sender) {
        _cleanup_(bus_caller_done) BusCaller caller = {};
        Manager *m = r->manager;
        OpError err = {};
        pid_t pid = 0;
        uid_t owner;
        int q;

        if (sender->auth.uid != 0) {
                request_reply_op_error(r, -EPERM, &(OpError) { .code = -EPERM, .name = OOMPROTECT_ERROR_PERMISSION_DENIED,
                                                               .message = "Only root may act on behalf of another process." });
                return;
        }
        if (r->action == ACTION_GET_FOR) {
                q = trusted_pid_of(m, r->pidfd, &pid, &err);
                if (q < 0)
                        return request_reply_op_error(r, q, &err);
                log_reply_failure(r, sd_bus_reply_method_return(r->msg, "b", engine_get(m->engine, pid) != NULL &&
                                                                                     proc_pidfd_alive(r->pidfd)));
                request_free(r);
                return;
        }
        q = trusted_caller_from_pidfd(m, r->pidfd, r->for_uid, &caller, &pid, &err);
        if (q >= 0)
                q = auth_check_modify(&caller.auth, m->allow_gid, &owner, &err);
        if (q < 0) {
                log_debug("Refused SetProtectionFor(PID %d, uid %u): %s", (int) pid, (unsigned) r->for_uid, err.message);
                return request_reply_op_error(r, q, &err);
        }
        if (r->enable) {
                r->req = (ProtectRequest) { .pidfd = r->pidfd, .owner = owner, .source = TRUSTED_SOURCE };
                (void) engine_protect(m->engine, &r->req, on_engine_done, r);
        } else if (engine_get(m->engine, pid))
                (void) engine_unprotect(m->engine, pid, owner, "unprotected", on_engine_done, r);
        else
                request_reply_empty(r); /* "off" on an unprotected process is a no-op */
}

/* AdoptSockets, once the bus said who sent it: root only, then compat_adopt() takes or refuses them all. */
static void run_adopt(BusRequest *r, const BusCaller *c) {
        OpError err = {};
        int q;

        if (c->auth.uid != 0) {
                log_notice("Refused AdoptSockets() from uid %u (PID %d): only root may hand listeners over.",
                           (unsigned) c->auth.uid, (int) c->pid);
                return request_reply_op_error(r, -EPERM, &(OpError) { .code = -EPERM,
                                                                      .name = OOMPROTECT_ERROR_PERMISSION_DENIED,
                                                                      .message = "Only root may hand listeners "
                                                                                 "over to oomprotectd." });
        }
        q = compat_adopt(r->manager, r->fds, r->n_fds, &err);
        if (q < 0) {
                log_warning("Refused AdoptSockets() from PID %d: %s", (int) c->pid, err.message);
                return request_reply_op_error(r, q, &err);
        }
        log_info("AdoptSockets() from PID %d: %d of %zu descriptor(s) newly served.", (int) c->pid, q, r->n_fds);
        log_reply_failure(r, sd_bus_reply_method_return(r->msg, "u", (uint32_t) q));
        request_free(r);
}

/* Its turn has come (workq.h): hand it to the engine, which may complete at once. */
static void request_run(void *userdata) {
        BusRequest *r = userdata;
        Engine *e = r->manager->engine;
        uid_t owner = r->owner;

        switch (r->action) {
        case ACTION_SET_FOR:
                return run_for(r, &r->caller);
        case ACTION_PROTECT:
                r->req.owner = owner;
                r->req.source = BUS_SOURCE;
                (void) engine_protect(e, &r->req, on_engine_done, r);
                break;
        case ACTION_UNPROTECT:
                (void) engine_unprotect(e, r->pid, owner, "unprotected", on_engine_done, r);
                break;
        case ACTION_UNPROTECT_ALL: /* A group member's "all" is all of its own. */
                (void) engine_unprotect_all(e, owner, "unprotected", on_engine_done, r);
                break;
        case ACTION_UNPROTECT_TAG:
                (void) engine_unprotect_tag(e, r->tag, owner, "unprotected", on_engine_done, r);
                break;
        case ACTION_PROTECT_UNIT:
                r->unit.owner = owner;
                r->unit.source = r->unit.options.drop_in ? "drop-in" : BUS_SOURCE;
                (void) engine_protect_unit(e, &r->unit, on_engine_done, r);
                break;
        case ACTION_UNPROTECT_UNIT:
                (void) engine_unprotect_unit(e, r->unit.unit, owner, "unprotected", on_engine_done, r);
                break;
        case ACTION_SET_SELF:
                run_set_self(r, &r->caller);
                break;
        default:
                request_reply_op_error(r, -EINVAL, &(OpError) {});
        }
}

/* Waits for its turn among the calls of every client, or is refused at once when too many of its own wait. */
static void request_queue(BusRequest *r) {
        const char *sender = sd_bus_message_get_sender(r->msg);
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int q;

        q = work_queue_submit(r->manager->work, sender, &r->work, request_run, r);
        if (q >= 0)
                return;
        if (q == -EBUSY)
                (void) sd_bus_error_setf(&error, OOMPROTECT_ERROR_BUSY,
                                         "Too many calls are waiting (%zu of this connection, %zu in all; at most "
                                         "%u and %u); wait for their replies and try again.",
                                         work_queue_client_length(r->manager->work, sender),
                                         work_queue_length(r->manager->work), WORK_QUEUE_PER_CLIENT_MAX,
                                         WORK_QUEUE_MAX);
        else
                (void) sd_bus_error_set_errno(&error, q);
        request_reply_error(r, &error);
}

/* The caller is known: a read is answered now; a change is authorized, then waits for its turn. */
static void on_caller(const BusCaller *c, const sd_bus_error *error, void *userdata) {
        BusRequest *r = userdata;
        Engine *e = r->manager->engine;

        r->slot = sd_bus_slot_unref(r->slot);
        if (!c) {
                request_reply_error(r, error);
                return;
        }
        r->caller = (BusCaller) { .auth = { .uid = c->auth.uid, .gid = c->auth.gid }, .pid = c->pid };
        if (r->action == ACTION_GET_FOR)
                return run_for(r, c);
        if (r->action == ACTION_SET_FOR)
                return request_queue(r);
        if (r->action == ACTION_ADOPT_SOCKETS)
                return run_adopt(r, c);
        if (r->action == ACTION_GET_SELF) { /* The module's OOMGETPROTECTCMD: a read, no authorization. */
                if (request_caller_pid(r, c) < 0)
                        return;
                log_reply_failure(r, sd_bus_reply_method_return(r->msg, "b", engine_get(e, c->pid) != NULL));
                request_free(r);
                return;
        }
        if (request_authorize(r, c, &r->owner) < 0)
                return;
        request_queue(r);
}

/*
 * Holds msg and asks who sent it; the reply comes later, from on_caller()
 * or the engine's completion. Returns 1 (nothing to reply now), or a
 * negative errno with error set.
 */
static int request_start(Manager *m, sd_bus_message *msg, BusRequest *template, sd_bus_error *error) {
        BusRequest *r = request_new(m, msg, template->action);
        int q;

        if (!r)
                return -ENOMEM;
        r->req = template->req;
        r->pid = template->pid;
        r->tag = template->tag;
        r->unit = template->unit;
        r->enable = template->enable;
        r->pidfd = template->pidfd;
        r->for_uid = template->for_uid;
        memcpy(r->fds, template->fds, sizeof(r->fds));
        r->n_fds = template->n_fds;
        q = bus_caller_query(msg, r->action == ACTION_SET_SELF || r->action == ACTION_PROTECT ||
                                          r->action == ACTION_UNPROTECT || r->action == ACTION_UNPROTECT_ALL ||
                                          r->action == ACTION_UNPROTECT_TAG || r->action == ACTION_PROTECT_UNIT ||
                                          r->action == ACTION_UNPROTECT_UNIT,
                             on_caller, r, &r->slot, error);
        if (q < 0) {
                request_free(r);
                return q;
        }
        return 1;
}

int bus_request_for(Manager *m, sd_bus_message *msg, int pidfd, uid_t uid, int mode, sd_bus_error *error) {
        BusRequest t = { .action = mode < 0 ? ACTION_GET_FOR : ACTION_SET_FOR, .req.pidfd = -EBADF, .pidfd = pidfd,
                         .for_uid = uid, .enable = mode > 0 };

        return request_start(m, msg, &t, error);
}

/* ---- methods ---- */

/* The same check the engine makes, before anyone is asked who the caller is: a bad name changes nothing. */
static int check_unit(const char *unit, sd_bus_error *error) {
        if (!unit_name_is_protectable(unit))
                return sd_bus_error_setf(error, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                         "\"%s\" is not the name of a unit that can be protected: give its full "
                                         "name with its type, such as nginx.service (a .service, .scope, .socket, "
                                         ".mount or .swap).", text_is_safe(unit) ? unit : "?");
        return 0;
}

/* ProtectUnit (with options) and UnprotectUnit: the name, checked before anyone is asked who the caller is. */
static int unit_method(sd_bus_message *msg, Manager *m, BusAction action, sd_bus_error *error) {
        BusRequest t = { .action = action, .req.pidfd = -EBADF };
        int r;

        r = sd_bus_message_read(msg, "s", &t.unit.unit); /* points into msg, held with it */
        if (r >= 0 && action == ACTION_PROTECT_UNIT)
                r = read_options(msg, &t.unit.options, error);
        if (r >= 0)
                r = check_unit(t.unit.unit, error);
        if (r < 0)
                return r;
        return request_start(m, msg, &t, error);
}

static int method_protect_unit(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return unit_method(msg, userdata, ACTION_PROTECT_UNIT, error);
}

static int method_unprotect_unit(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return unit_method(msg, userdata, ACTION_UNPROTECT_UNIT, error);
}

static int method_protect(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusRequest t = { .action = ACTION_PROTECT, .req.pidfd = -EBADF };
        uint32_t pid;
        int r;

        r = sd_bus_message_read(msg, "u", &pid);
        if (r < 0)
                return r;
        r = check_pid(pid, error);
        if (r < 0)
                return r;
        t.req.pid = (pid_t) pid;
        return request_start(userdata, msg, &t, error);
}

static int method_protect_with_options(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusRequest t = { .action = ACTION_PROTECT, .req.pidfd = -EBADF };
        uint32_t pid;
        int r;

        r = sd_bus_message_read(msg, "u", &pid);
        if (r < 0)
                return r;
        r = read_options(msg, &t.req.options, error);
        if (r < 0)
                return r;
        r = check_pid(pid, error);
        if (r < 0)
                return r;
        t.req.pid = (pid_t) pid;
        return request_start(userdata, msg, &t, error);
}

static int method_protect_pidfd(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusRequest t = { .action = ACTION_PROTECT };
        int r;

        r = sd_bus_message_read(msg, "h", &t.req.pidfd); /* owned by msg, held with it; the engine keeps a dup */
        if (r < 0)
                return r;
        r = read_options(msg, &t.req.options, error);
        if (r < 0)
                return r;
        return request_start(userdata, msg, &t, error);
}

static int method_unprotect(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusRequest t = { .action = ACTION_UNPROTECT };
        uint32_t pid;
        int r;

        r = sd_bus_message_read(msg, "u", &pid);
        if (r < 0)
                return r;
        r = check_pid(pid, error);
        if (r < 0)
                return r;
        t.pid = (pid_t) pid;
        return request_start(userdata, msg, &t, error);
}

static int method_unprotect_all(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return request_start(userdata, msg, &(BusRequest) { .action = ACTION_UNPROTECT_ALL }, error);
}

static int method_unprotect_tag(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusRequest t = { .action = ACTION_UNPROTECT_TAG };
        int r;

        r = sd_bus_message_read(msg, "s", &t.tag); /* points into msg, held with it */
        if (r < 0)
                return r;
        r = check_tag(t.tag, error);
        if (r < 0)
                return r;
        return request_start(userdata, msg, &t, error);
}

/* AdoptSockets(ah fds) -> u: a socket unit's listeners, from its oomprotectd-sockets@.service instance. */
static int method_adopt_sockets(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusRequest t = { .action = ACTION_ADOPT_SOCKETS, .req.pidfd = -EBADF };
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "h");
        if (r < 0)
                return r;
        for (;;) {
                int fd;
                r = sd_bus_message_read(msg, "h", &fd); /* owned by msg, held with it; compat_adopt() dups */
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (t.n_fds >= ADOPT_FDS_MAX)
                        return sd_bus_error_setf(error, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                                 "More than %d descriptors given.", ADOPT_FDS_MAX);
                t.fds[t.n_fds++] = fd;
        }
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        if (t.n_fds == 0)
                return sd_bus_error_set(error, OOMPROTECT_ERROR_INVALID_ARGUMENT, "No descriptors given.");
        return request_start(userdata, msg, &t, error);
}

static int method_set_self_protection(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusRequest t = { .action = ACTION_SET_SELF };
        int enable, r;

        r = sd_bus_message_read(msg, "b", &enable);
        if (r < 0)
                return r;
        t.enable = enable;
        return request_start(userdata, msg, &t, error);
}

static int method_get_self_protection(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return request_start(userdata, msg, &(BusRequest) { .action = ACTION_GET_SELF }, error);
}

static int method_is_protected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        uint32_t pid;
        int r;

        r = sd_bus_message_read(msg, "u", &pid);
        if (r < 0)
                return r;
        r = check_pid(pid, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "b", engine_get(m->engine, (pid_t) pid) != NULL ||
                                                            engine_unit_of_pid(m->engine, (pid_t) pid) != NULL);
}

static int append_protection(sd_bus_message *reply, const Protection *p) {
        _cleanup_free_ char *comm = NULL, *orig = NULL, *scope = NULL, *source = NULL, *tag = NULL;

        return sd_bus_message_append(reply, "(usssiittss)", (uint32_t) p->pid, utf8_safe(p->comm, &comm),
                                     utf8_safe(p->original_cgroup, &orig), utf8_safe(p->scope_cgroup, &scope),
                                     (int32_t) p->original_adj, (int32_t) p->applied_adj, p->memory_min,
                                     p->since_usec, utf8_safe(p->source, &source), utf8_safe(p->tag, &tag));
}

/* The processes of a unit protected by name, each as a protection of its own: source "unit", "drop-in" or "rule:NAME". */
static int append_unit_processes(Manager *m, sd_bus_message *reply, const UnitProtection *u) {
        _cleanup_free_ char *cgroup = NULL, *tag = NULL, *rule_source = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        Engine *e = m->engine;
        const char *source = streq(strempty(u->source), "drop-in") ? "drop-in"
                             : rules_source_name(u->source) ? utf8_safe(u->source, &rule_source)
                                                             : "unit";
        size_t n = 0;
        int r = 0;

        if (engine_unit_pids(e, u, &pids, &n) < 0)
                return 0; /* stopped */
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *comm = NULL, *line = NULL;
                const UnitMember *mb = NULL;
                char path[32];
                uint64_t st;

                if (engine_get(e, pids[i]))
                        continue; /* listed with its own protection */
                if (proc_read_starttime(e->procfd, pids[i], &st) >= 0)
                        mb = unit_member_get(u, pids[i], st);
                snprintf(path, sizeof(path), "%d/comm", (int) pids[i]);
                r = sd_bus_message_append(reply, "(usssiittss)", (uint32_t) pids[i],
                                          utf8_safe(read_one_line_at(e->procfd, path, &line) >= 0 ? line : "", &comm),
                                          utf8_safe(u->cgroup, &cgroup), "",
                                          (int32_t) (mb ? mb->original_adj : u->base_adj), (int32_t) u->applied_adj,
                                          (uint64_t) 0, u->since_usec, source, utf8_safe(u->tag, &tag));
        }
        return r;
}

static int method_list_protected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        const Registry *reg = &m->engine->registry;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(usssiittss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < reg->n; i++) {
                r = append_protection(reply, reg->items[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < m->engine->units.n; i++) {
                r = append_unit_processes(m, reply, m->engine->units.items[i]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* One (ssbttitssau): unit, cgroup, running, memory.min, memory.low, adj, since, source, tag, its processes now. */
static int append_unit(Manager *m, sd_bus_message *reply, const UnitProtection *u) {
        _cleanup_free_ char *unit = NULL, *cgroup = NULL, *source = NULL, *tag = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int r;

        (void) engine_unit_pids(m->engine, u, &pids, &n); /* none while it is stopped */
        r = sd_bus_message_open_container(reply, 'r', "ssbttitssau");
        if (r >= 0)
                r = sd_bus_message_append(reply, "ssbttitss", utf8_safe(u->unit, &unit), utf8_safe(u->cgroup, &cgroup),
                                          n > 0, u->memory_min, u->memory_low, (int32_t) u->applied_adj,
                                          u->since_usec, utf8_safe(u->source, &source), utf8_safe(u->tag, &tag));
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "u");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "u", (uint32_t) pids[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int method_list_protected_units(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        const UnitTable *t = &m->engine->units;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssbttitssau)");
        for (size_t i = 0; r >= 0 && i < t->n; i++)
                r = append_unit(m, reply, t->items[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ---- properties ---- */

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", OOMPROTECT_VERSION_STRING);
}

static int property_get_backend(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", m->engine->backend.vtable->name);
}

static int property_get_backend_note(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *buf = NULL;
        Manager *m = userdata;
        const char *note = m->engine->backend_note ? m->engine->backend_note : m->engine->backend.memory_note;

        return sd_bus_message_append(reply, "s", utf8_safe(note, &buf));
}

static int property_get_slice(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *buf = NULL;
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", utf8_safe(m->config.slice, &buf));
}

static int property_get_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) engine_count(m->engine));
}

static int property_get_budget(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "t", m->engine->budget);
}

static int property_get_in_use(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "t", engine_memory_min_in_use(m->engine));
}

/* At most a second old (guard.c): status of 10,000 protections must not read 10,000 files every time. */
static int property_get_protected_memory(sd_bus *bus, const char *path, const char *interface, const char *property,
                                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "t", streq(property, "ProtectedMemory")
                                                         ? guard_protected_usage_cached(m->engine)
                                                         : guard_ceiling(m->engine));
}

/* ---- signals, for changes from every front end ---- */

static void on_protection_changed(Manager *m, const Protection *p, bool protected, const char *reason,
                                  void *userdata) {
        sd_bus *bus = m->bus;
        int r;

        if (!bus)
                return;
        r = sd_bus_emit_signal(bus, OOMPROTECT_OBJECT_PATH, OOMPROTECT_MANAGER_INTERFACE, "ProtectionChanged", "ubs",
                               (uint32_t) p->pid, (int) protected, reason);
        if (r < 0)
                log_warning_errno(r, "Failed to emit ProtectionChanged for PID %d, ignoring: %m", (int) p->pid);
        r = sd_bus_emit_properties_changed(bus, OOMPROTECT_OBJECT_PATH, OOMPROTECT_MANAGER_INTERFACE,
                                           "ProtectedCount", "MemoryMinInUse", NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to emit PropertiesChanged, ignoring: %m");
}

static void on_oom_kill(Manager *m, const char *cgroup, uint64_t count, void *userdata) {
        _cleanup_free_ char *buf = NULL;
        sd_bus *bus = m->bus;
        int r;

        if (!bus)
                return;
        r = sd_bus_emit_signal(bus, OOMPROTECT_OBJECT_PATH, OOMPROTECT_MANAGER_INTERFACE, "ProtectedOOMKill", "st",
                               utf8_safe(cgroup, &buf), count);
        if (r < 0)
                log_warning_errno(r, "Failed to emit ProtectedOOMKill, ignoring: %m");
}

static void on_over_ceiling(Manager *m, uint64_t in_use, uint64_t ceiling, bool over, void *userdata) {
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_signal(m->bus, OOMPROTECT_OBJECT_PATH, OOMPROTECT_MANAGER_INTERFACE,
                               "ProtectedMemoryOverCeiling", "ttb", in_use, ceiling, (int) over);
        if (r < 0)
                log_warning_errno(r, "Failed to emit ProtectedMemoryOverCeiling, ignoring: %m");
}

static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        log_error("Lost the connection to the system bus; exiting so that the service manager restarts oomprotectd. "
                  "Protections stay in place.");
        return sd_event_exit(m->event, -ECONNRESET);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),

        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Backend", "s", property_get_backend, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("BackendNote", "s", property_get_backend_note, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Slice", "s", property_get_slice, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ProtectedCount", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MemoryMinBudget", "t", property_get_budget, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MemoryMinInUse", "t", property_get_in_use, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ProtectedMemory", "t", property_get_protected_memory, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY("MaxProtectedMemory", "t", property_get_protected_memory, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),

        SD_BUS_METHOD_WITH_NAMES("Protect", "u", SD_BUS_PARAM(pid), "", , method_protect,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ProtectWithOptions", "ua{sv}", SD_BUS_PARAM(pid) SD_BUS_PARAM(options), "", ,
                                 method_protect_with_options, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ProtectPidfd", "ha{sv}", SD_BUS_PARAM(pidfd) SD_BUS_PARAM(options), "", ,
                                 method_protect_pidfd, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Unprotect", "u", SD_BUS_PARAM(pid), "", , method_unprotect,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnprotectAll", "", , "u", SD_BUS_PARAM(count), method_unprotect_all,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnprotectTag", "s", SD_BUS_PARAM(tag), "u", SD_BUS_PARAM(count),
                                 method_unprotect_tag, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetSelfProtection", "b", SD_BUS_PARAM(protect), "", ,
                                 method_set_self_protection, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetSelfProtection", "", , "b", SD_BUS_PARAM(protected),
                                 method_get_self_protection, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("IsProtected", "u", SD_BUS_PARAM(pid), "b", SD_BUS_PARAM(protected),
                                 method_is_protected, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListProtected", "", , "a(usssiittss)", SD_BUS_PARAM(protections),
                                 method_list_protected, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ProtectUnit", "sa{sv}", SD_BUS_PARAM(unit) SD_BUS_PARAM(options), "", ,
                                 method_protect_unit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnprotectUnit", "s", SD_BUS_PARAM(unit), "", , method_unprotect_unit,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListProtectedUnits", "", , "a(ssbttitssau)", SD_BUS_PARAM(units),
                                 method_list_protected_units, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AdoptSockets", "ah", SD_BUS_PARAM(fds), "u", SD_BUS_PARAM(adopted),
                                 method_adopt_sockets, SD_BUS_VTABLE_UNPRIVILEGED),

        SD_BUS_SIGNAL_WITH_NAMES("ProtectionChanged", "ubs",
                                 SD_BUS_PARAM(pid) SD_BUS_PARAM(protected) SD_BUS_PARAM(reason), 0),
        SD_BUS_SIGNAL_WITH_NAMES("ProtectedOOMKill", "st", SD_BUS_PARAM(cgroup) SD_BUS_PARAM(count), 0),
        SD_BUS_SIGNAL_WITH_NAMES("ProtectedMemoryOverCeiling", "ttb",
                                 SD_BUS_PARAM(in_use) SD_BUS_PARAM(ceiling) SD_BUS_PARAM(over), 0),

        SD_BUS_VTABLE_END,
};

/* ---- setup: after the vtable it registers ---- */

static int bus_connect(Manager *m, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *address = getenv("DBUS_SYSTEM_BUS_ADDRESS");
        int r;

        if (!address)
                address = "unix:path=/run/dbus/system_bus_socket";
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus at %s: %m. "
                                          "oomprotectd needs the bus unless started with --no-bus.", address);
        (void) sd_bus_set_description(bus, "oomprotectd");
        r = sd_bus_add_object_vtable(bus, NULL, OOMPROTECT_OBJECT_PATH, OOMPROTECT_MANAGER_INTERFACE,
                                     manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register " OOMPROTECT_OBJECT_PATH ": %m");
        r = sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch for the bus going away: %m");
        r = sd_bus_request_name(bus, OOMPROTECT_BUS_NAME, 0);
        if (r == -EEXIST)
                return log_error_errno(r, "Another process owns " OOMPROTECT_BUS_NAME " on the system bus: "
                                          "is oomprotectd running already?");
        if (r == -EACCES || r == -EPERM)
                return log_error_errno(r, "The bus policy does not let oomprotectd own " OOMPROTECT_BUS_NAME
                                          ": is org.oomprotect.conf installed in the bus's system.d?");
        if (r < 0)
                return log_error_errno(r, "Failed to acquire " OOMPROTECT_BUS_NAME ": %m");
        *ret = TAKE_PTR(bus);
        return 0;
}

int bus_setup(Manager *m) {
        static const ManagerListener listener = {
                .changed = on_protection_changed,
                .oom_kill = on_oom_kill,
                .over_ceiling = on_over_ceiling,
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = bus_connect(m, &bus);
        if (r >= 0)
                r = bus_trusted_setup(m, bus); /* org.oomprotect.Trusted, for oomprotect-cuse (issue 14) */
        if (r < 0)
                return r;
        r = sd_bus_attach_event(bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = manager_add_listener(m, &listener);
        if (r < 0)
                return log_error_errno(r, "Failed to listen for protection changes: %m");
        m->bus = TAKE_PTR(bus);
        log_info("Serving " OOMPROTECT_MANAGER_INTERFACE " as " OOMPROTECT_BUS_NAME " on the system bus.");
        return 0;
}

void bus_done(Manager *m) {
        /* Requests still waiting get no reply: the engine is freed next and calls no completion then. */
        while (m->bus_requests)
                request_free(m->bus_requests);
        m->bus = sd_bus_flush_close_unref(m->bus);
}
