/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl.sock: the ctl grammar on a stream socket, for scripts that want to
 * know what happened. Every non-blank line gets one reply, in order:
 *
 *   OK
 *   ERR <errno name> <reason>        e.g. ERR ESRCH No process with PID 4242.
 *
 * A blank line gets none: it is no command (the FIFO ignores it too), and a
 * script that ends its input with one must not receive a stray reply.
 *
 * Who may change what is decided from the peer's credentials at connect
 * time (SO_PEERCRED, and SO_PEERGROUPS for its supplementary groups) by
 * auth_check_modify(), the rule D-Bus applies: root anything, members of
 * AllowGroup= the processes of their own uid, everyone else ERR EPERM. The
 * line is parsed first, so a malformed one gets its own error whoever sent
 * it. The socket is 0666 because of that check.
 *
 * Bounds, so that no client can make the daemon grow or stall:
 *  - at most COMPAT_CONNECTIONS_MAX connections, the last
 *    COMPAT_CONNECTIONS_ROOT_RESERVED of them for root only, and at most
 *    COMPAT_CONNECTIONS_PER_UID_MAX for one non-root uid: one more is
 *    answered ERR EAGAIN and closed;
 *  - a connection holds one read of input (COMPAT_READ_SIZE), one line
 *    (CtlReader) and its queued replies. Once COMPAT_REPLY_QUEUE_MAX bytes of
 *    replies wait for a client that does not read, nothing more is read or
 *    executed for it until it does: the kernel's socket buffers fill up and
 *    the client's writes block, the daemon does not grow;
 *  - one read per wake-up and connection: busy clients take turns with each
 *    other, the FIFO and D-Bus.
 *
 * One line at a time, in turns: a line's command waits for the
 * connection's turn in the daemon's work queue (workq.h: one command per
 * loop iteration, the clients of ctl.sock and D-Bus in turns), so a client
 * that sends thousands of lines in one write holds up no one else; while
 * it waits, and while the engine works on it (the
 * backend may answer later, from the loop), that connection reads and
 * executes nothing more and is not even polled; when the command is done its
 * reply is queued and the rest of what the client sent is taken up again.
 * A connection is freed only once no command of its is under way: one whose
 * client goes away meanwhile waits for the completion.
 *
 * End of input: complete lines are executed even when the client hangs up
 * without reading the replies (those are dropped), as on the FIFO. A last
 * line without '\n' is NOT executed, unlike on the FIFO: a stream write is
 * not atomic, and "setprotection 12" cut short from "setprotection 1234 0"
 * must not protect PID 12. The client is told so (it can read the reply
 * after shutdown(SHUT_WR)).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "compat-internal.h"
#include "list.h"
#include "log.h"
#include "oomprotect/protocol.h"

#define COMPAT_CONNECTIONS_MAX 64
#define COMPAT_CONNECTIONS_PER_UID_MAX 16
#define COMPAT_CONNECTIONS_ROOT_RESERVED 8 /* other uids together cannot lock root out */
#define COMPAT_READ_SIZE 4096
#define COMPAT_REPLY_QUEUE_MAX (64U * 1024U)
#define COMPAT_ACCEPTS_PER_DISPATCH 16
#define COMPAT_ACCEPT_RETRY_USEC (1000 * 1000ULL)

#define REASON_NO_NEWLINE "the last line does not end with a newline; it was not executed"

typedef struct Connection Connection;

struct Connection {
        CompatServer *server; /* NULL until linked */
        Connection *prev, *next;
        int fd;
        sd_event_source *io;
        pid_t pid; /* at connect time, for the log */
        uid_t uid;
        gid_t gid;
        gid_t *groups;
        size_t n_groups;
        bool eof;       /* the client will send nothing more */
        bool finished;  /* ...and all it sent has been handled */
        bool peer_gone; /* replies cannot be delivered: they are dropped */
        bool pending;   /* the command of a line is under way: nothing more is read or executed */
        bool executing; /* inside compat_execute(): a completion there must not resume processing */
        bool dead;      /* to be freed when the pending command completes */
        CtlCommand cmd; /* the pending one, for the log */
        WorkItem work;  /* cmd waiting for its turn */
        char work_name[40]; /* the connection's name in the work queue */
        char in[COMPAT_READ_SIZE];
        size_t in_pos, in_len; /* read, not yet parsed: held back while replies are queued up */
        char *out;
        size_t out_len, out_alloc;
        CtlReader reader;
};

struct CompatServer {
        Compat *compat;
        int fd;
        char *path;  /* for messages */
        bool bound;  /* bound here (not passed in): removed when done, if the path is still ours */
        dev_t bound_dev;
        ino_t bound_ino; /* the file bind() made: another socket there (a socket unit's) is left alone */
        sd_event_source *io;
        sd_event_source *retry; /* accepting paused after EMFILE and the like */
        Connection *connections;
        size_t n_connections;
        uint64_t serial; /* of the last connection accepted: its name in the work queue */
};

/* ---- a connection ---- */

static Connection *connection_free(Connection *conn) {
        if (!conn)
                return NULL;
        if (conn->server) {
                LIST_REMOVE(conn->server->connections, conn);
                conn->server->n_connections--;
        }
        work_queue_cancel(&conn->work);
        sd_event_source_disable_unref(conn->io);
        safe_close(conn->fd);
        free(conn->groups);
        free(conn->out);
        free(conn);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Connection *, connection_free);

static void queue_reply(Connection *conn, int code, const char *reason) {
        char buf[CTL_REPLY_MAX];
        size_t n = ctl_format_reply(code, reason, buf);

        if (conn->peer_gone)
                return;
        if (conn->out_len + n > conn->out_alloc) {
                /* Lines are only executed below COMPAT_REPLY_QUEUE_MAX, so this is as big as it gets. */
                size_t alloc = MIN(MAX(MAX(conn->out_alloc * 2, conn->out_len + n), (size_t) 1024),
                                   (size_t) COMPAT_REPLY_QUEUE_MAX + CTL_REPLY_MAX);
                char *p = realloc(conn->out, alloc);
                if (!p) {
                        log_oom();
                        conn->peer_gone = true; /* the client misses its replies, the daemon goes on */
                        conn->out_len = 0;
                        return;
                }
                conn->out = p;
                conn->out_alloc = alloc;
        }
        memcpy(conn->out + conn->out_len, buf, n);
        conn->out_len += n;
}

static int authorize(Connection *conn, const CtlCommand *cmd, uid_t *ret_owner, OpError *err) {
        const Manager *m = conn->server->compat->manager;
        const Config *config = &m->config;
        Caller caller = { .uid = conn->uid, .gid = conn->gid, .groups = conn->groups, .n_groups = conn->n_groups };
        int r;

        r = auth_check_modify(&caller, m->allow_gid, ret_owner, err);
        static LogRateLimit rl = LOG_RATELIMIT_INIT(10 * 1000000ULL, 10);
        unsigned suppressed;
        if (r < 0 && log_ratelimit_ok(&rl, &suppressed))
                log_notice("Refused \"" OOMPROTECT_CTL_VERB " %d %d\" on " OOMPROTECT_CTL_SOCKET
                           " from uid %u (PID %d): not root and not in AllowGroup=%s.%s",
                           (int) cmd->pid, (int) cmd->protect, (unsigned) conn->uid, (int) conn->pid,
                           strna(config->allow_group), suppressed ? " (Earlier refusals were not logged.)" : "");
        return r;
}

static void connection_resume(Connection *conn);

static void on_executed(int r, const OpError *err, void *userdata) {
        Connection *conn = userdata;

        conn->pending = false;
        if (conn->dead) {
                connection_free(conn);
                return;
        }
        if (r < 0)
                log_debug("\"" OOMPROTECT_CTL_VERB " %d %d\" from uid %u (PID %d) on " OOMPROTECT_CTL_SOCKET
                          " failed: %s", (int) conn->cmd.pid, (int) conn->cmd.protect, (unsigned) conn->uid,
                          (int) conn->pid, err->code != 0 ? err->message : strerror(-r));
        queue_reply(conn, r, err->code != 0 ? err->message : NULL);
        if (!conn->executing) /* later, from the loop: take up the rest of the input */
                connection_resume(conn);
}

/* The connection's turn (workq.h): the pending line's command runs; once it is done, the rest of the input. */
static void on_turn(void *userdata) {
        Connection *conn = userdata;
        bool dead = conn->dead; /* then on_executed() frees it, now or at the completion */
        OpError err = {};
        uid_t owner;
        int r;

        conn->executing = true;
        r = authorize(conn, &conn->cmd, &owner, &err);
        if (r < 0)
                on_executed(r, &err, conn);
        else
                compat_execute(conn->server->compat, &conn->cmd, owner, COMPAT_SOURCE_SOCKET, on_executed, conn);
        if (dead)
                return;
        conn->executing = false;
        if (!conn->pending) /* done at once */
                connection_resume(conn);
}

static void on_line(const char *line, size_t len, bool too_long, void *userdata) {
        Connection *conn = userdata;
        const char *reason = CTL_REASON_TOO_LONG;
        OpError err = {};
        CtlCommand cmd;
        int r;

        r = too_long ? -E2BIG : ctl_parse_line(line, len, &cmd, &reason);
        if (r == 0)
                return; /* a blank line: no command, no reply */
        if (r < 0) {
                _cleanup_free_ char *quoted = ctl_escape_line(line, len, COMPAT_LOG_QUOTE_MAX);
                log_debug("Rejected a line from uid %u (PID %d) on " OOMPROTECT_CTL_SOCKET ": %s: \"%s\"",
                          (unsigned) conn->uid, (int) conn->pid, reason, strna(quoted));
                queue_reply(conn, r, reason);
                return;
        }
        conn->cmd = cmd;
        conn->pending = true;
        r = work_queue_submit(conn->server->compat->manager->work, conn->work_name, &conn->work, on_turn, conn);
        if (r < 0) {
                (void) op_error_set(&err, r, NULL, "The daemon has too much work waiting; try again later.");
                conn->executing = true; /* on_line() runs inside connection_process(): no resuming from here */
                on_executed(r, &err, conn);
                conn->executing = false;
        }
}

/* End of input with a line pending that has no '\n'. */
static void on_unterminated_line(const char *line, size_t len, bool too_long, void *userdata) {
        Connection *conn = userdata;
        CtlCommand cmd;
        const char *reason;

        if (ctl_parse_line(line, len, &cmd, &reason) == 0)
                return; /* only blanks */
        queue_reply(conn, -EINVAL, REASON_NO_NEWLINE);
}

/* Executes the input read so far, line by line, while there is room for replies and no command is under way. */
static void connection_process(Connection *conn) {
        while (!conn->pending && conn->in_pos < conn->in_len && conn->out_len < COMPAT_REPLY_QUEUE_MAX)
                conn->in_pos += compat_feed_one_line(&conn->reader, conn->in + conn->in_pos,
                                                     conn->in_len - conn->in_pos, on_line, conn);
        if (conn->in_pos == conn->in_len)
                conn->in_pos = conn->in_len = 0;
        if (conn->eof && conn->in_len == 0 && !conn->finished && !conn->pending &&
            conn->out_len < COMPAT_REPLY_QUEUE_MAX) {
                ctl_reader_flush(&conn->reader, on_unterminated_line, conn);
                conn->finished = true;
        }
}

static int connection_read(Connection *conn) {
        ssize_t n = recv(conn->fd, conn->in, sizeof(conn->in), MSG_DONTWAIT);

        if (n > 0) {
                conn->in_pos = 0;
                conn->in_len = (size_t) n;
        } else if (n == 0)
                conn->eof = true;
        else if (errno == ECONNRESET)
                conn->eof = conn->peer_gone = true;
        else if (errno != EAGAIN && errno != EINTR)
                return negative_errno();
        return 0;
}

static void connection_flush(Connection *conn) {
        size_t done = 0;

        if (conn->out_len == 0)
                return;
        while (done < conn->out_len) {
                ssize_t n = send(conn->fd, conn->out + done, conn->out_len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n >= 0)
                        done += (size_t) n;
                else if (errno == EAGAIN)
                        break;
                else if (errno != EINTR) {
                        /* EPIPE, ECONNRESET: gone. What it sent is still executed, the replies are dropped. */
                        conn->peer_gone = true;
                        done = conn->out_len;
                }
        }
        memmove(conn->out, conn->out + done, conn->out_len - done);
        conn->out_len -= done;
        if (conn->out_len == 0) {
                free(conn->out);
                conn->out = NULL;
                conn->out_alloc = 0;
        }
}

/*
 * While a command is under way with no reply to send, the connection is not
 * polled at all: epoll reports a hangup whatever the mask, and it would spin.
 */
static int connection_update_events(Connection *conn) {
        uint32_t events = 0;
        int r;

        if (!conn->eof && !conn->pending && conn->in_len == 0 && conn->out_len < COMPAT_REPLY_QUEUE_MAX)
                events |= EPOLLIN;
        if (conn->out_len > 0)
                events |= EPOLLOUT;
        if (events == 0 && conn->pending)
                return sd_event_source_set_enabled(conn->io, SD_EVENT_OFF);
        r = sd_event_source_set_io_events(conn->io, events);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(conn->io, SD_EVENT_ON);
}

/* Gone now, or, while its command is under way, when that completes. */
static void connection_drop(Connection *conn) {
        if (!conn->pending) {
                connection_free(conn);
                return;
        }
        conn->dead = conn->peer_gone = true;
        (void) sd_event_source_set_enabled(conn->io, SD_EVENT_OFF);
}

/* Executes what is buffered, sends the replies, and watches for what comes next. */
static void connection_resume(Connection *conn) {
        Compat *c = conn->server->compat;
        int r;

        compat_batch_begin(c);
        connection_process(conn);
        compat_batch_end(c); /* status is current before the replies go out */
        connection_flush(conn);

        if (conn->finished && conn->out_len == 0) {
                connection_free(conn);
                return;
        }
        r = connection_update_events(conn);
        if (r < 0) {
                log_warning_errno(r, "Failed to watch a client of " OOMPROTECT_CTL_SOCKET ", dropping it: %m");
                connection_drop(conn);
        }
}

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Connection *conn = userdata;
        int r;

        connection_flush(conn); /* first make room, then take more */
        if (!conn->eof && !conn->pending && conn->in_len == 0 && conn->out_len < COMPAT_REPLY_QUEUE_MAX &&
            (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                r = connection_read(conn);
                if (r < 0) {
                        log_debug_errno(r, "Failed to read from a client of " OOMPROTECT_CTL_SOCKET
                                           ", dropping it: %m");
                        connection_drop(conn);
                        return 0;
                }
        }
        connection_resume(conn);
        return 0;
}

/* ---- accepting ---- */

static int peer_groups(int fd, gid_t **ret, size_t *ret_n) {
        socklen_t size = 64 * sizeof(gid_t);

        for (;;) {
                _cleanup_free_ gid_t *groups = malloc(size);
                socklen_t n = size;

                if (!groups)
                        return -ENOMEM;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &n) >= 0) {
                        *ret = TAKE_PTR(groups);
                        *ret_n = n / sizeof(gid_t);
                        return 0;
                }
                if (errno == ENOPROTOOPT) { /* before Linux 4.13: the primary group only */
                        *ret = NULL;
                        *ret_n = 0;
                        return 0;
                }
                if (errno != ERANGE || n <= size)
                        return negative_errno();
                size = n;
        }
}

static size_t connections_of(const CompatServer *s, uid_t uid) {
        size_t n = 0;

        for (const Connection *c = s->connections; c; c = c->next)
                n += c->uid == uid;
        return n;
}

/* Whether one more connection from uid fits; if not, tells the client why and returns false. */
static bool connection_fits(CompatServer *s, int fd, const struct ucred *cred) {
        char reply[CTL_REPLY_MAX], why[160];

        if (s->n_connections >= COMPAT_CONNECTIONS_MAX ||
            (cred->uid != 0 && s->n_connections >= COMPAT_CONNECTIONS_MAX - COMPAT_CONNECTIONS_ROOT_RESERVED)) {
                snprintf(why, sizeof(why), "Too many connections to %s (%d); try again later.", s->path,
                         COMPAT_CONNECTIONS_MAX);
                log_notice("Refused a connection from uid %u (PID %d) to %s: %d are open already.",
                           (unsigned) cred->uid, (int) cred->pid, s->path, COMPAT_CONNECTIONS_MAX);
        } else if (cred->uid != 0 && connections_of(s, cred->uid) >= COMPAT_CONNECTIONS_PER_UID_MAX) {
                snprintf(why, sizeof(why), "uid %u has %d connections to %s open already; close one first.",
                         (unsigned) cred->uid, COMPAT_CONNECTIONS_PER_UID_MAX, s->path);
                log_debug("Refused a connection from uid %u (PID %d) to %s: it has %d open already.",
                          (unsigned) cred->uid, (int) cred->pid, s->path, COMPAT_CONNECTIONS_PER_UID_MAX);
        } else
                return true;
        (void) !send(fd, reply, ctl_format_reply(-EAGAIN, why, reply), MSG_DONTWAIT | MSG_NOSIGNAL);
        return false;
}

static void connection_new(CompatServer *s, int fd) {
        _cleanup_(connection_freep) Connection *conn = NULL;
        _cleanup_close_ int cfd = fd;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int r;

        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                log_warning_errno(errno, "Failed to read the credentials of a client of %s, dropping it: %m",
                                  s->path);
                return;
        }
        if (!connection_fits(s, cfd, &cred))
                return;
        conn = calloc(1, sizeof(Connection));
        if (!conn) {
                log_oom();
                return;
        }
        conn->fd = TAKE_FD(cfd);
        conn->pid = cred.pid;
        snprintf(conn->work_name, sizeof(conn->work_name), OOMPROTECT_CTL_SOCKET "#%" PRIu64, ++s->serial);
        conn->uid = cred.uid;
        conn->gid = cred.gid;
        r = peer_groups(conn->fd, &conn->groups, &conn->n_groups);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the groups of uid %u (PID %d) on %s, dropping it: %m",
                                  (unsigned) cred.uid, (int) cred.pid, s->path);
                return;
        }
        r = sd_event_add_io(s->compat->manager->event, &conn->io, conn->fd, EPOLLIN, on_connection_io, conn);
        if (r < 0) {
                log_warning_errno(r, "Failed to watch a client of %s, dropping it: %m", s->path);
                return;
        }
        (void) sd_event_source_set_description(conn->io, "compat-ctl-sock-connection");
        conn->server = s;
        LIST_PREPEND(s->connections, conn);
        TAKE_PTR(conn);
        s->n_connections++;
        log_debug("Connection to %s from uid %u (PID %d).", s->path, (unsigned) cred.uid, (int) cred.pid);
}

static int on_retry(sd_event_source *t, uint64_t usec, void *userdata) {
        CompatServer *s = userdata;

        (void) sd_event_source_set_enabled(s->io, SD_EVENT_ON);
        return 0;
}

/* Out of descriptors or memory: the listening socket would stay readable and spin the loop. Wait a second. */
static void pause_accepting(CompatServer *s) {
        int r;

        (void) sd_event_source_set_enabled(s->io, SD_EVENT_OFF);
        r = manager_arm_timer(s->compat->manager, &s->retry, COMPAT_ACCEPT_RETRY_USEC, 0, on_retry, s);
        if (r < 0) {
                log_warning_errno(r, "Failed to arm a timer, accepting on %s again at once: %m", s->path);
                (void) sd_event_source_set_enabled(s->io, SD_EVENT_ON);
        }
}

static int on_server_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        CompatServer *s = userdata;

        for (unsigned i = 0; i < COMPAT_ACCEPTS_PER_DISPATCH; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (cfd >= 0) {
                        connection_new(s, cfd);
                        continue;
                }
                if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                        continue;
                if (errno != EAGAIN) {
                        log_warning_errno(errno, "Failed to accept a connection on %s, pausing for a second: %m",
                                          s->path);
                        pause_accepting(s);
                }
                break;
        }
        return 0;
}

/* ---- the listening socket ---- */

/* ctl.sock as a socket address; -ENAMETOOLONG (logged) when the path does not fit. */
static int server_address(const CompatServer *s, struct sockaddr_un *ret, socklen_t *ret_len) {
        size_t len = strlen(s->path);

        if (len >= sizeof(ret->sun_path))
                return log_error_errno(ENAMETOOLONG, "%s is too long for a socket address (at most %zu bytes).",
                                       s->path, sizeof(ret->sun_path) - 1);
        *ret = (struct sockaddr_un) { .sun_family = AF_UNIX };
        memcpy(ret->sun_path, s->path, len + 1);
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1);
        return 0;
}

/*
 * Whether someone listens on the socket at the path: 1 when a connection is
 * taken (or the backlog is full), 0 when refused (a socket an earlier run
 * left, nobody behind it). The probe is closed at once; a socket unit's
 * listener sees it as a connection, which starts its hand-over,
 * oomprotectd-sockets@oomprotectd.service.
 */
static int server_is_live(const struct sockaddr_un *sa, socklen_t len) {
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        if (fd < 0)
                return negative_errno();
        if (connect(fd, (const struct sockaddr *) sa, len) >= 0 || errno == EAGAIN || errno == EINPROGRESS)
                return 1;
        if (errno == ECONNREFUSED)
                return 0;
        return negative_errno();
}

/*
 * Binds ctl.sock, replacing a dead socket an earlier run left, refusing to
 * replace anything else: a live one (oomprotectd.socket's, or a second
 * oomprotectd's) gives -EADDRINUSE, the service manager hands it over later.
 */
static int server_bind(CompatServer *s) {
        Compat *c = s->compat;
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = {};
        socklen_t sa_len = 0;
        struct stat st;
        int r;

        r = server_address(s, &sa, &sa_len);
        if (r < 0)
                return r;
        if (fstatat(c->dirfd, OOMPROTECT_CTL_SOCKET, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                if (!S_ISSOCK(st.st_mode))
                        return log_error_errno(EEXIST, "%s is %s, not a socket: refusing to replace it. Move it "
                                                       "away and restart oomprotectd to serve ctl.sock.",
                                               s->path, compat_file_type(st.st_mode));
                r = server_is_live(&sa, sa_len);
                if (r > 0) {
                        log_notice("%s is served by someone else (oomprotectd.socket, or another oomprotectd): "
                                   "not replacing it. oomprotectd-sockets@oomprotectd.service hands oomprotectd.socket's "
                                   "over (AdoptSockets).", s->path);
                        return -EADDRINUSE;
                }
                if (r < 0)
                        return log_error_errno(r, "Failed to tell whether anyone listens on %s, not replacing "
                                                  "it: %m", s->path);
                if (unlinkat(c->dirfd, OOMPROTECT_CTL_SOCKET, 0) < 0 && errno != ENOENT)
                        return log_error_errno(errno, "Failed to remove the old %s: %m", s->path);
        } else if (errno != ENOENT)
                return log_error_errno(errno, "Failed to look at %s: %m", s->path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create a socket for %s: %m", s->path);
        if (bind(fd, (const struct sockaddr *) &sa, sa_len) < 0)
                return log_error_errno(errno, "Failed to bind %s: %m", s->path);
        s->bound = true;
        if (fstatat(c->dirfd, OOMPROTECT_CTL_SOCKET, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                s->bound_dev = st.st_dev;
                s->bound_ino = st.st_ino;
        }
        /* Anyone may connect: what a client may do is decided from its credentials. */
        if (fchmodat(c->dirfd, OOMPROTECT_CTL_SOCKET, 0666, 0) < 0)
                return log_error_errno(errno, "Failed to make %s mode 0666: %m", s->path);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "Failed to listen on %s: %m", s->path);
        s->fd = TAKE_FD(fd);
        return 0;
}

bool compat_server_path_is_own(const CompatServer *s) {
        struct stat st;

        return s->bound && fstatat(s->compat->dirfd, OOMPROTECT_CTL_SOCKET, &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
               st.st_dev == s->bound_dev && st.st_ino == s->bound_ino;
}

bool compat_server_serves(const CompatServer *s, const struct stat *st) {
        struct stat own;

        return fstat(s->fd, &own) >= 0 && own.st_dev == st->st_dev && own.st_ino == st->st_ino;
}

static int make_nonblocking(int fd) {
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0))
                return negative_errno();
        return 0;
}

int compat_server_adopt(CompatServer *s, int fd) {
        _cleanup_close_ int owned = fd;
        int r;

        r = make_nonblocking(owned);
        if (r < 0)
                return log_error_errno(r, "Failed to make the %s passed in non-blocking: %m", s->path);
        /* Clients that connected to the old listener before it was replaced are taken first. */
        for (unsigned i = 0; i < COMPAT_CONNECTIONS_MAX; i++) {
                int cfd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0 && errno == EINTR)
                        continue;
                if (cfd < 0)
                        break;
                connection_new(s, cfd);
        }
        r = sd_event_source_set_io_fd(s->io, owned);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the %s passed in: %m", s->path);
        /* Ours no longer: the file at the path is the service manager's, and stays when we exit. */
        log_info("Serving %s on the listener the service manager passed; %s.", s->path,
                 s->bound ? "closing the one made here" : "closing the one served before");
        safe_close(s->fd);
        s->fd = TAKE_FD(owned);
        s->bound = false;
        return 0;
}

CompatServer *compat_server_free(CompatServer *s) {
        if (!s)
                return NULL;
        while (s->connections)
                connection_free(s->connections);
        sd_event_source_disable_unref(s->io);
        sd_event_source_disable_unref(s->retry);
        safe_close(s->fd);
        /*
         * A socket nobody listens on would only give ECONNREFUSED, so the
         * one bound here goes; but only while the file at the path is still
         * it: oomprotectd.socket started while we ran has replaced it with
         * the service manager's, which must stay for the next start, and one
         * the service manager passed is its own.
         */
        if (compat_server_path_is_own(s))
                (void) unlinkat(s->compat->dirfd, OOMPROTECT_CTL_SOCKET, 0);
        free(s->path);
        free(s);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(CompatServer *, compat_server_free);

int compat_server_new(Compat *c, int fd, CompatServer **ret) {
        _cleanup_(compat_server_freep) CompatServer *s = NULL;
        int r;

        s = calloc(1, sizeof(CompatServer));
        if (!s) {
                safe_close(fd);
                return log_oom();
        }
        *s = (CompatServer) { .compat = c, .fd = fd, .path = compat_path(c, OOMPROTECT_CTL_SOCKET) };
        if (!s->path)
                return log_oom();
        if (s->fd < 0) {
                r = server_bind(s);
                if (r < 0)
                        return r;
        }
        r = make_nonblocking(s->fd);
        if (r < 0)
                return log_error_errno(r, "Failed to make %s non-blocking: %m", s->path);
        r = sd_event_add_io(c->manager->event, &s->io, s->fd, EPOLLIN, on_server_io, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch %s: %m", s->path);
        (void) sd_event_source_set_description(s->io, "compat-ctl-sock");
        *ret = TAKE_PTR(s);
        return 0;
}
