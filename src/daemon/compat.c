/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CompatDirectory= (default /run/oom_kill_protection): the 2006 module's
 * /proc/oom_kill_protection, served from userspace.
 *
 *   ctl       a FIFO, 0600: "setprotection <pid> [0/1]" lines (compat-fifo.c)
 *   ctl.sock  the same lines on a stream socket, 0666, one reply per line,
 *             authorized by peer credentials (compat-socket.c)
 *   status    the module's format, rewritten atomically on every change made
 *             by any front end or by a process exiting (a ManagerListener)
 *   usage     the module's usage text with this directory's paths
 *
 * ctl and ctl.sock may come from the service manager (oomprotectd-ctl.socket
 * and oomprotectd.socket): passed descriptors are matched by path, and
 * whatever was not passed is made here. Each socket unit's Service= is its
 * own instance of oomprotectd-sockets@.service, which hands its listener
 * over to a running daemon (AdoptSockets, compat_adopt()): so the socket
 * units can be started before or after the daemon, together or one by one.
 * A live socket at ctl.sock is never replaced here (it is the socket
 * unit's, waiting for the hand-over), a dead one is; the FIFO is shared by
 * inode with the socket unit, which opens the one it finds when its mode
 * and owner match SocketMode=.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "compat-internal.h"
#include "fileio.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "oomprotect/protocol.h"

char *compat_path(const Compat *c, const char *name) {
        char *p = NULL;

        if (asprintf(&p, "%s/%s", c->directory, name) < 0)
                return NULL;
        return p;
}

const char *compat_file_type(mode_t mode) {
        switch (mode & S_IFMT) {
        case S_IFREG:
                return "a regular file";
        case S_IFDIR:
                return "a directory";
        case S_IFLNK:
                return "a symbolic link";
        case S_IFSOCK:
                return "a socket";
        case S_IFIFO:
                return "a FIFO";
        case S_IFCHR:
        case S_IFBLK:
                return "a device node";
        default:
                return "something unknown";
        }
}

/* ---- status and usage ---- */

/*
 * "%-10d %-16s\n": 28 bytes for every pid up to the kernel's 4194304 and every
 * comm (at most 15 bytes, sanitized byte for byte), so rows can be patched in
 * place. ctl_format_status() stays the one formatter: a row is what it
 * prints after the header for one entry.
 */
#define STATUS_ROW_LEN 28

static size_t status_header_len(void) {
        static size_t len;

        if (len == 0) {
                _cleanup_free_ char *header = ctl_format_status(NULL, 0, &len);
                if (!header)
                        len = 0;
        }
        return len;
}

static void status_forget(Compat *c) {
        free(c->status_text);
        c->status_text = NULL;
        c->status_len = c->status_alloc = c->status_rows = 0;
        c->status_patchable = false;
}

static int entry_by_pid(const void *a, const void *b) {
        const StatusEntry *x = a, *y = b;

        return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* The processes of the units protected by name (and by drop-in) after the n entries, then all sorted by pid. */
static int status_add_units(Compat *c, StatusEntry **entries, size_t *n, char (**comms)[16]) {
        Engine *e = c->manager->engine;
        size_t k = 0, total = *n;

        for (size_t i = 0; i < e->units.n; i++) {
                _cleanup_free_ pid_t *pids = NULL;
                size_t m = 0;
                if (engine_unit_pids(e, e->units.items[i], &pids, &m) < 0 || m == 0)
                        continue;
                StatusEntry *grown = realloc(*entries, (total + m) * sizeof(StatusEntry));
                char(*names)[16] = realloc(*comms, (k + m) * sizeof(**comms));
                if (grown)
                        *entries = grown;
                if (names)
                        *comms = names;
                if (!grown || !names)
                        return -ENOMEM;
                for (size_t j = 0; j < m; j++, k++) {
                        _cleanup_free_ char *line = NULL;
                        char path[32];
                        snprintf(path, sizeof(path), "%d/comm", (int) pids[j]);
                        snprintf((*comms)[k], sizeof((*comms)[k]), "%s",
                                 read_one_line_at(e->procfd, path, &line) >= 0 ? line : "?");
                        (*entries)[total++] = (StatusEntry) { .pid = pids[j] };
                }
        }
        /* Pointers into comms only now: it may have moved while it grew. */
        for (size_t j = 0; j < k; j++)
                (*entries)[*n + j].comm = (*comms)[j];
        qsort(*entries, total, sizeof(StatusEntry), entry_by_pid);
        /* A process protected on its own inside a protected unit: one row. */
        k = 0;
        for (size_t j = 0; j < total; j++)
                if (k == 0 || (*entries)[k - 1].pid != (*entries)[j].pid)
                        (*entries)[k++] = (*entries)[j];
        *n = k;
        return 0;
}

static int status_rebuild(Compat *c) {
        const Registry *reg = &c->manager->engine->registry;
        StatusEntry *entries = calloc(reg->n ? reg->n : 1, sizeof(StatusEntry));
        char(*comms)[16] = NULL;
        size_t len, n = reg->n;
        char *text = NULL;
        int r = 0;

        if (!entries)
                return -ENOMEM;
        /* The registry is sorted by pid: the status lists processes in ascending PID order. */
        for (size_t i = 0; i < reg->n; i++)
                entries[i] = (StatusEntry) { .pid = reg->items[i]->pid, .comm = reg->items[i]->comm };
        if (c->manager->engine->units.n > 0)
                r = status_add_units(c, &entries, &n, &comms);
        if (r >= 0)
                text = ctl_format_status(entries, n, &len);
        free(entries);
        free(comms);
        if (!text)
                return -ENOMEM;
        status_forget(c);
        c->status_text = text;
        c->status_len = c->status_alloc = len;
        c->status_rows = n;
        /* Rows of another width (not expected from any pid or comm) are never patched: rebuilt each time. */
        c->status_patchable = n == reg->n && len == status_header_len() + reg->n * STATUS_ROW_LEN;
        return 0;
}

static pid_t status_row_pid(const Compat *c, size_t i) {
        return (pid_t) strtol(c->status_text + status_header_len() + i * STATUS_ROW_LEN, NULL, 10);
}

/* Adds, replaces or removes the row of p in the text kept in memory; on any doubt, forgets the text. */
static void status_patch(Compat *c, const Protection *p, bool protected) {
        size_t lo = 0, hi = c->status_rows, header = status_header_len();
        _cleanup_free_ char *one = NULL;
        char *row;
        size_t len;

        if (!c->status_text)
                return;
        if (!c->status_patchable)
                return status_forget(c);
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (status_row_pid(c, mid) < p->pid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        row = c->status_text + header + lo * STATUS_ROW_LEN;
        bool present = lo < c->status_rows && status_row_pid(c, lo) == p->pid;
        size_t tail = c->status_len - (size_t) (row - c->status_text);
        if (!protected) {
                if (present) {
                        memmove(row, row + STATUS_ROW_LEN, tail - STATUS_ROW_LEN);
                        c->status_len -= STATUS_ROW_LEN;
                        c->status_rows--;
                }
                return;
        }
        one = ctl_format_status(&(StatusEntry) { .pid = p->pid, .comm = p->comm }, 1, &len);
        if (!one || len != header + STATUS_ROW_LEN)
                return status_forget(c);
        if (!present) {
                if (c->status_len + STATUS_ROW_LEN > c->status_alloc) {
                        size_t want = MAX(c->status_alloc * 2, c->status_len + STATUS_ROW_LEN);
                        char *n = realloc(c->status_text, want);
                        if (!n)
                                return status_forget(c);
                        row = n + (row - c->status_text);
                        c->status_text = n;
                        c->status_alloc = want;
                }
                memmove(row + STATUS_ROW_LEN, row, tail);
                c->status_len += STATUS_ROW_LEN;
                c->status_rows++;
        }
        memcpy(row, one + header, STATUS_ROW_LEN);
}

static int write_status(Compat *c) {
        const Registry *reg = &c->manager->engine->registry;
        int r;

        /* The patched text must list what the registry holds; if it does not, the registry wins. */
        if (!c->status_text || c->status_rows != reg->n || c->manager->engine->units.n > 0) {
                r = status_rebuild(c);
                if (r < 0)
                        return r;
        }
        r = write_file_replace_at(c->dirfd, OOMPROTECT_STATUS_FILE, c->status_text, c->status_len, 0644);
        if (r < 0)
                return r;
        c->status_dirty = false;
        return 0;
}

static void update_status(Compat *c) {
        int r;

        r = write_status(c);
        if (r < 0)
                log_warning_errno(r, "Failed to rewrite %s/" OOMPROTECT_STATUS_FILE ", ignoring: %m",
                                  c->directory);
}

static int on_status_deferred(sd_event_source *s, void *userdata) {
        Compat *c = userdata;

        if (c->status_dirty)
                update_status(c);
        return 0;
}

static int write_usage(Compat *c) {
        _cleanup_free_ char *text = ctl_format_usage(c->directory);
        int r;

        if (!text)
                return log_oom();
        r = write_file_atomic_at(c->dirfd, OOMPROTECT_USAGE_FILE, text, strlen(text), 0644);
        if (r < 0)
                return log_warning_errno(r, "Failed to write %s/" OOMPROTECT_USAGE_FILE ", ignoring: %m",
                                         c->directory);
        return 0;
}

void compat_batch_begin(Compat *c) {
        c->batch++;
}

void compat_batch_end(Compat *c) {
        if (c->batch > 0)
                c->batch--;
        if (c->batch == 0 && c->status_dirty)
                update_status(c);
}

/* Every change, whoever made it (ctl, ctl.sock, D-Bus, a process exiting), ends up in status. */
static void on_protection_changed(Manager *m, const Protection *p, bool protected, const char *reason,
                                  void *userdata) {
        Compat *c = m->compat;

        if (!c)
                return;
        status_patch(c, p, protected);
        c->status_dirty = true;
        /* Inside a batch, compat_batch_end() rewrites it before the replies; else after this reply. */
        if (c->batch == 0 && sd_event_source_set_enabled(c->status_source, SD_EVENT_ONESHOT) < 0)
                update_status(c);
}

/* A unit's processes change with it (a restart): the file is made again from the engine. */
static void on_unit_changed(Manager *m, const UnitProtection *u, bool protected, const char *reason, void *userdata) {
        Compat *c = m->compat;

        if (!c)
                return;
        status_forget(c);
        c->status_dirty = true;
        if (c->batch == 0 && sd_event_source_set_enabled(c->status_source, SD_EVENT_ONESHOT) < 0)
                update_status(c);
}

/* ---- executing a command ---- */

size_t compat_feed_one_line(CtlReader *r, const char *data, size_t n, ctl_line_func_t f, void *userdata) {
        const char *nl = memchr(data, '\n', n);
        size_t k = nl ? (size_t) (nl - data) + 1 : n;

        ctl_reader_feed(r, data, k, f, userdata);
        return k;
}

struct CompatOp {
        Compat *compat;
        pid_t pid;
        CompatDone done;
        void *userdata;
        CompatOp *prev, *next;
};

static CompatOp *compat_op_free(CompatOp *op) {
        if (!op)
                return NULL;
        LIST_REMOVE(op->compat->ops, op);
        free(op);
        return NULL;
}

static void on_executed(Engine *e, const EngineResult *res, void *userdata) {
        CompatOp *op = userdata;
        CompatDone done = op->done;
        void *done_userdata = op->userdata;

        if (res->r >= 0)
                manager_log_unprotect_report(op->pid, &res->report);
        compat_op_free(op);
        done(res->r, &res->err, done_userdata);
}

void compat_execute(Compat *c, const CtlCommand *cmd, uid_t owner, const char *source, CompatDone done,
                    void *userdata) {
        Engine *e = c->manager->engine;
        CompatOp *op = calloc(1, sizeof(CompatOp));

        if (!op) {
                OpError err = {};
                (void) op_error_set(&err, -ENOMEM, NULL, "Out of memory.");
                done(-ENOMEM, &err, userdata);
                return;
        }
        *op = (CompatOp) { .compat = c, .pid = cmd->pid, .done = done, .userdata = userdata };
        LIST_PREPEND(c->ops, op);
        if (cmd->protect) {
                ProtectRequest req = { .pid = cmd->pid, .pidfd = -EBADF, .source = source, .owner = owner };
                (void) engine_protect(e, &req, on_executed, op);
        } else
                (void) engine_unprotect(e, cmd->pid, owner, "unprotected", on_executed, op);
}

/* ---- the directory and the descriptors the service manager passed ---- */

static int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

static int open_directory(Compat *c) {
        struct stat st;
        int r;

        r = mkdir_parents(c->directory, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create CompatDirectory=%s: %m", c->directory);
        /* Never through a link: a link's target would get our 0666 socket and our files. */
        r = open_private_directory(c->directory, &c->dirfd, &st);
        if (r == -ELOOP)
                return log_error_errno(r, "CompatDirectory=%s is or goes through a symbolic link; refusing it.",
                                       c->directory);
        if (r == -EPERM)
                return log_error_errno(r, "CompatDirectory=%s belongs to uid %u with mode %04o: others could put "
                                       "something else in place of ctl or status. It must be root's, 0755.",
                                       c->directory, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
        if (r < 0)
                return log_error_errno(r, "Failed to open CompatDirectory=%s: %m", c->directory);
        (void) remove_stale_temp_files_at(c->dirfd, OOMPROTECT_STATUS_FILE);
        (void) remove_stale_temp_files_at(c->dirfd, OOMPROTECT_USAGE_FILE);
        return 0;
}

/* Picks ctl and ctl.sock out of what the service manager passed (socket activation), by path. */
static int take_listen_fds(Compat *c, int *ret_fifo, int *ret_socket) {
        _cleanup_free_ char *fifo_path = compat_path(c, OOMPROTECT_CTL_FILE);
        _cleanup_free_ char *socket_path = compat_path(c, OOMPROTECT_CTL_SOCKET);
        int n;

        *ret_fifo = *ret_socket = -EBADF;
        if (!fifo_path || !socket_path)
                return log_oom();
        n = sd_listen_fds(true);
        if (n < 0)
                return log_warning_errno(n, "Failed to read the descriptors the service manager passed, "
                                            "ignoring: %m");
        for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
                if (*ret_fifo < 0 && sd_is_fifo(fd, fifo_path) > 0)
                        *ret_fifo = fd;
                else if (*ret_socket < 0 && sd_is_socket_unix(fd, SOCK_STREAM, 1, socket_path, 0) > 0)
                        *ret_socket = fd;
                else {
                        log_warning("The service manager passed descriptor %d, which is neither %s nor a "
                                    "listening %s; closing it.", fd, fifo_path, socket_path);
                        safe_close(fd);
                }
        }
        if (*ret_fifo >= 0 || *ret_socket >= 0)
                log_info("Socket activation: serving %s%s%s as passed by the service manager.",
                         *ret_fifo >= 0 ? fifo_path : "", *ret_fifo >= 0 && *ret_socket >= 0 ? " and " : "",
                         *ret_socket >= 0 ? socket_path : "");
        return 0;
}

/* ---- descriptors handed over while running (AdoptSockets) ---- */

#define COMPAT_ADOPT_MAX 16

typedef struct Passed {
        int fd; /* the caller's: -EBADF for none */
        size_t index;
        struct stat st;
} Passed;

/* Whether the i-th descriptor is the FIFO at ctl (ret_fifo true) or a listening socket bound to ctl.sock. */
static int passed_check(Compat *c, int fd, size_t i, bool *ret_fifo, struct stat *ret_st, OpError *err) {
        _cleanup_free_ char *fifo_path = compat_path(c, OOMPROTECT_CTL_FILE);
        _cleanup_free_ char *socket_path = compat_path(c, OOMPROTECT_CTL_SOCKET);
        struct stat st, at;
        int flags;

        if (!fifo_path || !socket_path)
                return op_error_set(err, -ENOMEM, NULL, "Out of memory.");
        if (fd < 0 || fstat(fd, &st) < 0)
                return op_error_set(err, -EBADF, OOMPROTECT_ERROR_INVALID_ARGUMENT, "Descriptor %zu is not open.", i);
        if (S_ISFIFO(st.st_mode)) {
                if (fstatat(c->dirfd, OOMPROTECT_CTL_FILE, &at, AT_SYMLINK_NOFOLLOW) < 0 || at.st_dev != st.st_dev ||
                    at.st_ino != st.st_ino)
                        return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                            "Descriptor %zu is a FIFO, but not the one at %s.", i, fifo_path);
                flags = fcntl(fd, F_GETFL);
                if (flags < 0 || (flags & O_ACCMODE) == O_WRONLY)
                        return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                            "Descriptor %zu is %s open for writing only: it cannot be read.", i,
                                            fifo_path);
        } else if (S_ISSOCK(st.st_mode)) {
                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, socket_path, 0) <= 0)
                        return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                            "Descriptor %zu is a socket, but not a listening stream socket bound "
                                            "to %s.", i, socket_path);
                /* Bound to that name once, but the file there is ours now: nobody could connect to it. */
                if (c->server && !compat_server_serves(c->server, &st) && compat_server_path_is_own(c->server))
                        return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                            "Descriptor %zu is bound to the name %s, but the socket at that path "
                                            "is oomprotectd's own: connections would not reach it.", i,
                                            socket_path);
        } else
                return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "Descriptor %zu is %s, neither the FIFO %s nor a listening socket bound to %s.",
                                    i, compat_file_type(st.st_mode), fifo_path, socket_path);
        *ret_fifo = S_ISFIFO(st.st_mode);
        *ret_st = st;
        return 0;
}

/* Sorts the descriptors into one FIFO and one socket; the same one twice is one, two different ones refused. */
static int passed_sort(Compat *c, const int *fds, size_t n, Passed *fifo, Passed *sock, OpError *err) {
        for (size_t i = 0; i < n; i++) {
                struct stat st = {};
                bool is_fifo = false;
                int r;

                r = passed_check(c, fds[i], i, &is_fifo, &st, err);
                if (r < 0)
                        return r;
                Passed *slot = is_fifo ? fifo : sock;
                if (slot->fd >= 0 && (slot->st.st_dev != st.st_dev || slot->st.st_ino != st.st_ino))
                        return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                            "Descriptors %zu and %zu are two different %s: only one can be served.",
                                            slot->index, i, is_fifo ? "FIFOs" : "sockets");
                if (slot->fd < 0)
                        *slot = (Passed) { .fd = fds[i], .index = i, .st = st };
        }
        return 0;
}

static int passed_dup(const Passed *p, OpError *err) {
        int fd = fcntl(p->fd, F_DUPFD_CLOEXEC, 3);

        if (fd < 0)
                return op_error_set(err, negative_errno(), NULL, "Failed to duplicate descriptor %zu: %s.", p->index,
                                    strerror(errno));
        return fd;
}

int compat_adopt(Manager *m, const int *fds, size_t n, OpError *err) {
        Compat *c = m->compat;
        Passed fifo = { .fd = -EBADF }, sock = { .fd = -EBADF };
        _cleanup_close_ int fifo_fd = -EBADF, sock_fd = -EBADF;
        bool take_fifo, take_sock;
        int r;

        if (!c)
                return op_error_set(err, -ENOTCONN, OOMPROTECT_ERROR_BACKEND,
                                    "oomprotectd does not serve CompatDirectory=%s (see its log): it cannot take "
                                    "descriptors for it.", m->config.compat_directory);
        if (n == 0 || n > COMPAT_ADOPT_MAX)
                return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "%zu descriptors given: from 1 to %d (ctl and ctl.sock).", n, COMPAT_ADOPT_MAX);
        r = passed_sort(c, fds, n, &fifo, &sock, err);
        if (r < 0)
                return r;
        take_fifo = fifo.fd >= 0 && !(c->fifo && compat_fifo_serves(c->fifo, &fifo.st));
        take_sock = sock.fd >= 0 && !(c->server && compat_server_serves(c->server, &sock.st));
        /* Both duplicates first: once they exist, running out of descriptors cannot leave one of two taken. */
        if (take_fifo && (fifo_fd = passed_dup(&fifo, err)) < 0)
                return fifo_fd;
        if (take_sock && (sock_fd = passed_dup(&sock, err)) < 0)
                return sock_fd;
        r = 0;
        if (take_fifo)
                r = c->fifo ? compat_fifo_adopt(c->fifo, TAKE_FD(fifo_fd))
                            : compat_fifo_new(c, TAKE_FD(fifo_fd), &c->fifo);
        if (r >= 0 && take_sock && c->server)
                r = compat_server_adopt(c->server, TAKE_FD(sock_fd));
        else if (r >= 0 && take_sock) {
                r = compat_server_new(c, TAKE_FD(sock_fd), &c->server);
                if (r >= 0)
                        log_info("Serving %s/" OOMPROTECT_CTL_SOCKET " on the listener the service manager passed.",
                                 c->directory);
        }
        if (r < 0) /* the daemon's log says which and why */
                return op_error_set(err, r, OOMPROTECT_ERROR_BACKEND, "Failed to serve the descriptors passed in %s: "
                                    "%s.", c->directory, strerror(-r));
        return (int) take_fifo + (int) take_sock;
}

/* The hand-over of each socket unit (oomprotectd-sockets@.service, the instance named after the socket). */
static const char *const handover_units[] = {
        "oomprotectd-sockets@oomprotectd.service",
        "oomprotectd-sockets@oomprotectd-ctl.service",
};

static int on_try_restart(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *unit = userdata;

        if (e)
                log_debug("The service manager did not run %s again, ignoring: %s", unit, strna(e->message));
        else
                log_debug("Asked the service manager to run %s again if it ran before.", unit);
        return 0;
}

void compat_ask_for_sockets(Manager *m) {
        int r;

        /* Only a daemon the service manager started has socket units to get listeners from. */
        if (!m->compat || !m->bus || !getenv("INVOCATION_ID"))
                return;
        for (size_t i = 0; i < ELEMENTSOF(handover_units); i++) {
                r = sd_bus_call_method_async(m->bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                             "org.freedesktop.systemd1.Manager", "TryRestartUnit", on_try_restart,
                                             (void *) handover_units[i], "ss", handover_units[i], "replace");
                if (r < 0)
                        log_debug_errno(r, "Failed to ask the service manager for %s, ignoring: %m",
                                        handover_units[i]);
        }
}

static Compat *compat_free(Compat *c) {
        if (!c)
                return NULL;
        sd_event_source_disable_unref(c->status_source);
        status_forget(c);
        compat_fifo_free(c->fifo);
        compat_server_free(c->server);
        /* Commands still under way: the engine is freed next and calls no completion then. */
        while (c->ops)
                compat_op_free(c->ops);
        safe_close(c->dirfd);
        free(c->directory);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Compat *, compat_free);

static int compat_new(Manager *m, Compat **ret) {
        _cleanup_(compat_freep) Compat *c = calloc(1, sizeof(Compat));
        const char *dir = m->config.compat_directory;
        size_t len;

        if (!c)
                return log_oom();
        c->manager = m;
        c->dirfd = -EBADF;
        if (isempty(dir) || dir[0] != '/')
                return log_error_errno(EINVAL, "CompatDirectory=%s is not an absolute path.", strempty(dir));
        len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/')
                len--;
        c->directory = strndup(dir, len);
        if (!c->directory)
                return log_oom();
        *ret = TAKE_PTR(c);
        return 0;
}

int compat_setup(Manager *m) {
        static const ManagerListener listener = { .changed = on_protection_changed, .unit_changed = on_unit_changed };
        _cleanup_(compat_freep) Compat *c = NULL;
        int fifo_fd, socket_fd, r;

        r = compat_new(m, &c);
        if (r < 0)
                return r;
        r = open_directory(c);
        if (r < 0)
                return r;

        r = sd_event_add_defer(m->event, &c->status_source, on_status_deferred, c);
        if (r >= 0)
                r = sd_event_source_set_priority(c->status_source, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->status_source, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the rewrites of %s/" OOMPROTECT_STATUS_FILE ": %m",
                                       c->directory);
        (void) sd_event_source_set_description(c->status_source, "compat-status");

        /* Status and usage first: when ctl is open for business, status is already true. */
        r = write_status(c);
        if (r < 0)
                log_error_errno(r, "Failed to write %s/" OOMPROTECT_STATUS_FILE " (%s there?), serving the rest: %m",
                                c->directory, r == -EISDIR ? "a directory" : "something else");
        (void) write_usage(c);
        (void) take_listen_fds(c, &fifo_fd, &socket_fd);

        /*
         * A ctl or ctl.sock that cannot be served (say, a regular file where
         * the FIFO belongs) is an error in the log, not a reason to stop
         * protecting: D-Bus and the other of the two keep working.
         */
        r = compat_fifo_new(c, fifo_fd, &c->fifo);
        if (r < 0)
                log_error_errno(r, "Not serving %s/" OOMPROTECT_CTL_FILE ": %m", c->directory);
        r = compat_server_new(c, socket_fd, &c->server);
        if (r < 0 && r != -EADDRINUSE) /* someone else listens there: handed over later, see compat_adopt() */
                log_error_errno(r, "Not serving %s/" OOMPROTECT_CTL_SOCKET ": %m", c->directory);

        r = manager_add_listener(m, &listener);
        if (r < 0)
                return log_error_errno(r, "Failed to listen for protection changes: %m");
        log_info("Serving the historic text protocol in %s:%s%s status, usage.", c->directory,
                 c->fifo ? " " OOMPROTECT_CTL_FILE "," : "", c->server ? " " OOMPROTECT_CTL_SOCKET "," : "");
        m->compat = TAKE_PTR(c);
        return 0;
}

void compat_done(Manager *m) {
        Compat *c = m->compat;

        /* Changes after the loop stopped (RestoreOnStop=yes) armed a source that will not run now. */
        if (c && c->status_dirty)
                update_status(c);
        m->compat = compat_free(m->compat);
}
