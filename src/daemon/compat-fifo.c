/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl: the FIFO root writes "setprotection <pid> [0/1]" lines into, as it
 * wrote them into /proc/oom_kill_protection/ctl. Only root may open it (mode
 * 0600, recreated if an existing FIFO has another owner or mode), so whoever
 * writes is trusted: owner UID_ANY. Nothing is answered; every rejected line
 * is logged with its reason and the offending bytes, quoted.
 *
 * No writer can block or stop the reader: the FIFO is non-blocking and read
 * at most COMPAT_FIFO_READS_PER_DISPATCH times per wake-up (a writer that
 * never stops does not starve D-Bus or ctl.sock), and CtlReader holds at
 * most one line: a longer one is reported once and skipped up to its
 * newline; garbage and NUL bytes are rejected line by line.
 *
 * Lines without '\n'. The module took each write(2) as one command, so
 * `printf 'setprotection 1 1' > ctl` worked. A FIFO keeps no write
 * boundaries, but it tells when the last writer has closed: it is opened
 * O_RDONLY (not O_RDWR), so EPOLLHUP, or read() returning 0, means every
 * writer is gone, and a pending line without '\n' is then taken as complete.
 * The FIFO is then opened again, the new descriptor before the old one is
 * closed (writers never find it without a reader, nothing queued is lost):
 * a descriptor that saw its writers go keeps reporting EPOLLHUP and would
 * spin the loop. So a writer that closes mid-line has its fragment parsed
 * like any line: executed if it is a whole command, rejected with the reason
 * if not. A pipe write of up to PIPE_BUF (4096) bytes is atomic, so one
 * write of a command never arrives torn; but two writers that each leave a
 * line unfinished at the same moment get their fragments joined, and
 * rejected.
 *
 * Under socket activation the service manager keeps its own O_RDWR
 * descriptor of the FIFO, writers never all go, and EPOLLHUP never comes:
 * there a pending line without '\n' is taken as complete once
 * COMPAT_FIFO_PARTIAL_USEC have passed without new bytes (a one-shot timer
 * armed only while such a line is pending: an idle daemon never wakes up).
 *
 * One line at a time, in turns: a line's command waits for the FIFO's turn
 * in the daemon's work queue (workq.h: one command per loop iteration,
 * every client of D-Bus and ctl.sock in turns), so thousands of lines in
 * one write hold up no one else; while it waits, and while the engine works
 * on it (the backend may answer later, from the loop), the FIFO is not read and the
 * rest of the last read waits in the buffer; the command's completion takes
 * it up again. So "setprotection P 1\nsetprotection P 0\n" in one write is
 * executed in that order, and a writer that floods the FIFO meanwhile blocks
 * (or gets EAGAIN) in its write instead of making the daemon grow.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "compat-internal.h"
#include "log.h"
#include "oomprotect/protocol.h"

#define COMPAT_FIFO_READ_SIZE 4096
#define COMPAT_FIFO_READS_PER_DISPATCH 16
#define COMPAT_FIFO_PARTIAL_USEC (500 * 1000ULL)
#define COMPAT_FIFO_PARTIAL_ACCURACY_USEC (50 * 1000ULL)

struct CompatFifo {
        Compat *compat;
        int fd;
        bool sees_hangup; /* opened O_RDONLY here: EPOLLHUP says the last writer closed */
        sd_event_source *io;
        sd_event_source *timer; /* socket activation only: completes a pending partial line */
        CtlReader reader;
        char in[COMPAT_FIFO_READ_SIZE];
        size_t in_pos, in_len; /* read, not yet executed: held back while a command is under way */
        bool pending;          /* a line's command is under way */
        bool executing;        /* inside compat_execute(): a completion there must not resume */
        bool hangup;           /* every writer went: complete the last line and reopen, once the buffer is done */
        bool broken;           /* could not be opened again: no longer served */
        CtlCommand cmd;        /* the pending one, for the log */
        WorkItem work;         /* cmd waiting for its turn (workq.h) */
};

/* ---- the FIFO node ---- */

/* Makes ctl a FIFO only root may use, keeping a good one that is there, refusing to replace anything else. */
static int fifo_make(Compat *c) {
        struct stat st;

        if (fstatat(c->dirfd, OOMPROTECT_CTL_FILE, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                if (!S_ISFIFO(st.st_mode))
                        return log_error_errno(EEXIST,
                                               "%s/" OOMPROTECT_CTL_FILE " is %s, not a FIFO: refusing to replace "
                                               "it. Move it away and restart oomprotectd to serve ctl.",
                                               c->directory, compat_file_type(st.st_mode));
                if (st.st_uid == geteuid() && (st.st_mode & 07777) == 0600)
                        return 0;
                log_notice("%s/" OOMPROTECT_CTL_FILE " is a FIFO of uid %u with mode %04o; "
                           "replacing it with one only root may write to.",
                           c->directory, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
                if (unlinkat(c->dirfd, OOMPROTECT_CTL_FILE, 0) < 0)
                        return log_error_errno(errno, "Failed to remove %s/" OOMPROTECT_CTL_FILE ": %m",
                                               c->directory);
        } else if (errno != ENOENT)
                return log_error_errno(errno, "Failed to look at %s/" OOMPROTECT_CTL_FILE ": %m", c->directory);

        if (mkfifoat(c->dirfd, OOMPROTECT_CTL_FILE, 0600) < 0)
                return log_error_errno(errno, "Failed to create the FIFO %s/" OOMPROTECT_CTL_FILE ": %m",
                                       c->directory);
        return 0;
}

/* Opens the reading end without blocking (no writer needed) and without following a symlink. */
static int fifo_open(Compat *c, int *ret) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = openat(c->dirfd, OOMPROTECT_CTL_FILE, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s/" OOMPROTECT_CTL_FILE ": %m", c->directory);
        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "Failed to stat %s/" OOMPROTECT_CTL_FILE ": %m", c->directory);
        if (!S_ISFIFO(st.st_mode))
                return log_error_errno(EEXIST, "%s/" OOMPROTECT_CTL_FILE " became %s, not a FIFO.", c->directory,
                                       compat_file_type(st.st_mode));
        /* mkfifoat()'s mode went through the umask: make it exactly 0600. */
        if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
                return log_error_errno(errno, "Failed to make %s/" OOMPROTECT_CTL_FILE " mode 0600: %m",
                                       c->directory);
        *ret = TAKE_FD(fd);
        return 0;
}

/* ---- lines ---- */

static void log_rejected(CompatFifo *f, const char *line, size_t len, const char *reason) {
        _cleanup_free_ char *quoted = ctl_escape_line(line, len, COMPAT_LOG_QUOTE_MAX);

        log_warning("Rejected a line written to %s/" OOMPROTECT_CTL_FILE ": %s: \"%s\"", f->compat->directory,
                    reason, strna(quoted));
}

static void fifo_resume(CompatFifo *f);
static void fifo_update(CompatFifo *f);

static void on_executed(int r, const OpError *err, void *userdata) {
        CompatFifo *f = userdata;

        f->pending = false;
        if (r < 0)
                log_warning("\"" OOMPROTECT_CTL_VERB " %d %d\" written to %s/" OOMPROTECT_CTL_FILE " failed: %s",
                            (int) f->cmd.pid, (int) f->cmd.protect, f->compat->directory,
                            err->code != 0 ? err->message : strerror(-r));
        if (!f->executing) /* later, from the loop: take up what waits */
                fifo_resume(f);
}

/* The FIFO's turn in the work queue (its writers are one client there, root): the pending line's command. */
static void on_turn(void *userdata) {
        CompatFifo *f = userdata;

        f->executing = true;
        compat_execute(f->compat, &f->cmd, UID_ANY, COMPAT_SOURCE_FIFO, on_executed, f);
        f->executing = false;
        if (!f->pending) /* done at once: take up what waits */
                fifo_resume(f);
}

static void on_line(const char *line, size_t len, bool too_long, void *userdata) {
        CompatFifo *f = userdata;
        const char *reason = CTL_REASON_TOO_LONG;
        CtlCommand cmd;
        int r;

        r = too_long ? -E2BIG : ctl_parse_line(line, len, &cmd, &reason);
        if (r == 0)
                return; /* a blank line */
        if (r < 0) {
                log_rejected(f, line, len, reason);
                return;
        }
        f->cmd = cmd;
        f->pending = true;
        r = work_queue_submit(f->compat->manager->work, OOMPROTECT_CTL_FILE, &f->work, on_turn, f);
        if (r < 0) {
                OpError err = {};
                (void) op_error_set(&err, r, NULL, "The daemon has too much work waiting.");
                f->executing = true; /* inside fifo_process(): no resuming from here */
                on_executed(r, &err, f);
                f->executing = false;
        }
}

/* ---- reading ---- */

static bool line_pending(const CtlReader *r) {
        return r->len > 0 || r->skipping;
}

/* Every writer is gone: the pending line is complete; a fresh descriptor stops the EPOLLHUP. */
static void fifo_hangup(CompatFifo *f) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        ctl_reader_flush(&f->reader, on_line, f);
        r = fifo_make(f->compat); /* someone may have removed it */
        if (r >= 0)
                r = fifo_open(f->compat, &fd);
        if (r >= 0)
                r = sd_event_source_set_io_fd(f->io, fd);
        if (r < 0) {
                log_error_errno(r, "Failed to open %s/" OOMPROTECT_CTL_FILE " again, no longer serving it: %m",
                                f->compat->directory);
                (void) sd_event_source_set_enabled(f->io, SD_EVENT_OFF);
                f->broken = true;
                return;
        }
        safe_close(f->fd);
        f->fd = TAKE_FD(fd);
}

/* Executes the buffered input line by line, until a command is under way; then a hangup's last line. */
static void fifo_process(CompatFifo *f) {
        while (!f->pending && f->in_pos < f->in_len)
                f->in_pos += compat_feed_one_line(&f->reader, f->in + f->in_pos, f->in_len - f->in_pos, on_line, f);
        if (f->in_pos == f->in_len)
                f->in_pos = f->in_len = 0;
        if (f->hangup && !f->pending && f->in_len == 0) {
                f->hangup = false;
                fifo_hangup(f);
        }
}

static int on_partial_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        CompatFifo *f = userdata;

        if (f->pending || f->in_len > 0)
                return 0; /* re-armed when the command is done */
        compat_batch_begin(f->compat);
        ctl_reader_flush(&f->reader, on_line, f);
        compat_batch_end(f->compat);
        fifo_update(f); /* the line's command may be under way now */
        return 0;
}

/* Socket activation: (re)starts the quiet-time countdown while a partial line is pending. */
static void arm_partial_timer(CompatFifo *f) {
        int r;

        if (!line_pending(&f->reader) || f->pending) {
                if (f->timer)
                        (void) sd_event_source_set_enabled(f->timer, SD_EVENT_OFF);
                return;
        }
        r = manager_arm_timer(f->compat->manager, &f->timer, COMPAT_FIFO_PARTIAL_USEC,
                              COMPAT_FIFO_PARTIAL_ACCURACY_USEC, on_partial_timeout, f);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the timer for a line without newline in %s/"
                                  OOMPROTECT_CTL_FILE ", it waits for its newline: %m", f->compat->directory);
}

/* Reading goes on only when nothing waits: no command under way, nothing left in the buffer. */
static void fifo_update(CompatFifo *f) {
        bool idle = !f->pending && f->in_len == 0;

        if (f->broken)
                return;
        (void) sd_event_source_set_enabled(f->io, idle ? SD_EVENT_ON : SD_EVENT_OFF);
        if (!f->sees_hangup)
                arm_partial_timer(f);
}

static void fifo_resume(CompatFifo *f) {
        compat_batch_begin(f->compat);
        fifo_process(f);
        compat_batch_end(f->compat);
        fifo_update(f);
}

static int on_fifo_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CompatFifo *f = userdata;
        bool drained = false, writers_gone = false;

        compat_batch_begin(f->compat);
        for (unsigned i = 0; i < COMPAT_FIFO_READS_PER_DISPATCH && !drained && !f->pending && f->in_len == 0;
             i++) {
                ssize_t n = read(fd, f->in, sizeof(f->in));

                if (n > 0) {
                        f->in_pos = 0;
                        f->in_len = (size_t) n;
                        fifo_process(f);
                } else if (n == 0)
                        drained = writers_gone = true;
                else if (errno != EINTR) {
                        if (errno != EAGAIN)
                                log_warning_errno(errno, "Failed to read %s/" OOMPROTECT_CTL_FILE ", ignoring: %m",
                                                  f->compat->directory);
                        drained = true;
                }
        }
        /* Not drained: more next time round, after the other event sources had their turn. */
        if (f->sees_hangup && drained && (writers_gone || (revents & EPOLLHUP))) {
                f->hangup = true;
                fifo_process(f);
        }
        compat_batch_end(f->compat);
        fifo_update(f);
        return 0;
}

/* ---- a FIFO handed over later (AdoptSockets) ---- */

bool compat_fifo_serves(const CompatFifo *f, const struct stat *st) {
        struct stat own;

        /* The service manager's descriptor of the FIFO we read already is still to be taken: ours sees hangups. */
        return !f->broken && !f->sees_hangup && fstat(f->fd, &own) >= 0 && own.st_dev == st->st_dev &&
               own.st_ino == st->st_ino;
}

int compat_fifo_adopt(CompatFifo *f, int fd) {
        _cleanup_close_ int owned = fd;
        int flags, r;

        flags = fcntl(owned, F_GETFL);
        if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(owned, F_SETFL, flags | O_NONBLOCK) < 0))
                return log_error_errno(errno, "Failed to make the %s/" OOMPROTECT_CTL_FILE " passed in "
                                       "non-blocking: %m", f->compat->directory);
        r = sd_event_source_set_io_fd(f->io, owned);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the %s/" OOMPROTECT_CTL_FILE " passed in: %m",
                                       f->compat->directory);
        /*
         * What was read and not executed stays in the buffer and the line
         * reader: only the descriptor changes. A hangup seen on the old one
         * is no news on this one; a pending line without newline is now
         * completed by the quiet-time timer.
         */
        safe_close(f->fd);
        f->fd = TAKE_FD(owned);
        f->sees_hangup = (flags & O_ACCMODE) == O_RDONLY;
        f->hangup = f->broken = false;
        log_info("Serving %s/" OOMPROTECT_CTL_FILE " on the descriptor the service manager passed.",
                 f->compat->directory);
        fifo_update(f);
        return 0;
}

/* ---- setup ---- */

CompatFifo *compat_fifo_free(CompatFifo *f) {
        if (!f)
                return NULL;
        work_queue_cancel(&f->work);
        sd_event_source_disable_unref(f->io);
        sd_event_source_disable_unref(f->timer);
        /* The FIFO stays: while the daemon is away writers wait in open() instead of creating a regular file. */
        safe_close(f->fd);
        free(f);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(CompatFifo *, compat_fifo_free);

int compat_fifo_new(Compat *c, int fd, CompatFifo **ret) {
        _cleanup_(compat_fifo_freep) CompatFifo *f = NULL;
        _cleanup_close_ int owned = fd;
        int flags, r;

        f = calloc(1, sizeof(CompatFifo));
        if (!f)
                return log_oom();
        *f = (CompatFifo) { .compat = c, .fd = -EBADF };
        if (owned < 0) {
                r = fifo_make(c);
                if (r < 0)
                        return r;
                r = fifo_open(c, &owned);
                if (r < 0)
                        return r;
        }
        flags = fcntl(owned, F_GETFL);
        if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(owned, F_SETFL, flags | O_NONBLOCK) < 0))
                return log_error_errno(errno, "Failed to make %s/" OOMPROTECT_CTL_FILE " non-blocking: %m",
                                       c->directory);
        f->sees_hangup = (flags & O_ACCMODE) == O_RDONLY;
        r = sd_event_add_io(c->manager->event, &f->io, owned, EPOLLIN, on_fifo_io, f);
        if (r < 0)
                return log_error_errno(r, "Failed to watch %s/" OOMPROTECT_CTL_FILE ": %m", c->directory);
        (void) sd_event_source_set_description(f->io, "compat-ctl");
        f->fd = TAKE_FD(owned);
        *ret = TAKE_PTR(f);
        return 0;
}
