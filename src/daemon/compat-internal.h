/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "compat.h"
#include "ctl-protocol.h"
#include "op-error.h"

/*
 * What compat.c (the directory, status, usage), compat-fifo.c (ctl) and
 * compat-socket.c (ctl.sock) share. README.md "The historic text protocol"
 * documents the behaviour seen from outside.
 */

/* The source recorded for protections made through each of the two. */
#define COMPAT_SOURCE_FIFO "ctl"
#define COMPAT_SOURCE_SOCKET "ctl.sock"

/* How much of a rejected line a log message quotes. */
#define COMPAT_LOG_QUOTE_MAX 64

typedef struct CompatFifo CompatFifo;
typedef struct CompatServer CompatServer;
typedef struct CompatOp CompatOp;

typedef struct Compat {
        Manager *manager;
        char *directory; /* CompatDirectory= without a trailing '/' */
        int dirfd;
        /*
         * While a front end executes the lines of one read, changes only mark
         * status dirty and compat_batch_end() rewrites it once: a flood of
         * commands costs one rewrite per read, not one per line, and the
         * file is current before any ctl.sock reply of that read is sent.
         * A change from elsewhere (D-Bus, a process exiting) arms
         * status_source instead, a deferred source at idle priority: the
         * rewrite comes after the reply, once for a whole burst.
         */
        unsigned batch;
        bool status_dirty;
        sd_event_source *status_source;
        /*
         * The text of status, kept in memory and patched per change (each
         * row is STATUS_ROW_LEN bytes, in ascending pid order) so that a
         * rewrite is one write(2), not a reformatting of every row. NULL:
         * rebuild it from the registry at the next rewrite.
         */
        char *status_text;
        size_t status_len, status_alloc, status_rows;
        bool status_patchable;
        CompatFifo *fifo;
        CompatServer *server;
        CompatOp *ops; /* commands the engine is working on */
} Compat;

/* "<directory>/<name>"; NULL on OOM. */
char *compat_path(const Compat *c, const char *name);
/* "a regular file", "a directory", ... for messages about what sits where a FIFO or socket belongs. */
const char *compat_file_type(mode_t mode);

void compat_batch_begin(Compat *c);
void compat_batch_end(Compat *c);

/*
 * Feeds r the input up to and including its first newline (all of it when
 * there is none), so that f sees at most one line; returns the bytes taken.
 * The front ends execute one line at a time with it.
 */
size_t compat_feed_one_line(CtlReader *r, const char *data, size_t n, ctl_line_func_t f, void *userdata);

/* How a command ended: r as the engine's result, err (never NULL) says why when r < 0. */
typedef void (*CompatDone)(int r, const OpError *err, void *userdata);

/*
 * Protects (source recorded) or unprotects cmd->pid for owner (UID_ANY: any
 * process). done is called exactly once: before this returns (the backend
 * answered at once) or later from the event loop. Until then the caller
 * executes nothing more from the same input, so that replies and effects
 * keep the order of the lines.
 */
void compat_execute(Compat *c, const CtlCommand *cmd, uid_t owner, const char *source, CompatDone done,
                    void *userdata);

/*
 * Serve ctl from fd (a FIFO the service manager passed), or from a FIFO
 * made (or reused) in the directory when fd < 0. Takes fd in both cases.
 */
int compat_fifo_new(Compat *c, int fd, CompatFifo **ret);
CompatFifo *compat_fifo_free(CompatFifo *f);
/* Whether f reads the FIFO of st already through a descriptor the service manager passed. */
bool compat_fifo_serves(const CompatFifo *f, const struct stat *st);
/* Reads from fd (the FIFO, passed in later) instead: what was read and not executed stays. Takes fd. */
int compat_fifo_adopt(CompatFifo *f, int fd);

/*
 * Serve ctl.sock from fd (a listening socket passed in), or bind one when
 * fd < 0: -EADDRINUSE (logged as a notice) when someone listens there
 * already, which is then left alone. Takes fd.
 */
int compat_server_new(Compat *c, int fd, CompatServer **ret);
CompatServer *compat_server_free(CompatServer *s);
/* Whether s listens on the socket of st (fstat() of a descriptor) already. */
bool compat_server_serves(const CompatServer *s, const struct stat *st);
/* Whether the file at the path is still the socket bound here (and would be unlinked at exit). */
bool compat_server_path_is_own(const CompatServer *s);
/*
 * Listens on fd (a listening socket for the same path, passed in later)
 * instead: connections under way stay, those waiting on the old listener
 * are accepted first, the old one is closed and its file left alone. Takes fd.
 */
int compat_server_adopt(CompatServer *s, int fd);
