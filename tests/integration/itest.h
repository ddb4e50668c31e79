/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "engine.h"

/*
 * A private cgroup2 subtree and real child processes for the integration
 * tests. Everything a test makes lives below <mount>/<name>.slice, so that
 * teardown (cgroup.kill, then rmdir depth-first) removes it even after a
 * failed assertion.
 */
typedef struct Sandbox {
        char mount[256];   /* the cgroup2 mount */
        char name[64];     /* "oomptest<pid>" */
        char top[128];     /* "<name>.slice" relative to the mount */
        char slice[128];   /* "<name>-protected.slice", for Slice= */
        char slice_rel[256]; /* "<name>.slice/<name>-protected.slice" */
        char statedir[128];  /* StateDirectory=, a fresh temporary directory */
        char compatdir[160]; /* CompatDirectory=, <statedir>/compat */
        bool can_lower_adj;  /* CAP_SYS_RESOURCE: the engine may set -1000 */
        int protect_adj;     /* what the engine applies */
        int child_adj;       /* what the children start with */
} Sandbox;

/* 0, or 77 with *reason set when the host cannot run these tests. */
int sandbox_setup(Sandbox *s, const char **reason);
void sandbox_teardown(Sandbox *s);
/*
 * For main(): 0 when the sandbox is set up (and, with need_daemon, ctest named
 * the oomprotectd to test in $OOMPROTECT_DAEMON); else prints "SKIP: reason"
 * and returns 77, ctest's skip code.
 */
int sandbox_setup_or_skip(Sandbox *s, bool need_daemon);

/* A config for this sandbox (Backend, CgroupRoot, Slice, StateDirectory, CompatDirectory, OOMScoreAdjust). */
void sandbox_config(const Sandbox *s, Config *c);
/* The same as an INI file at path, with extra lines appended. */
void sandbox_write_config(const Sandbox *s, const char *path, const char *extra);

/*
 * A daemon stand-in killed at one named instant: a forked engine with config
 * c that protects target, then unprotects it, with OOMPROTECT_FAULT=point.
 * Asserts it died of SIGKILL there (the point was reached).
 */
void engine_killed_at(const Config *c, pid_t target, const char *point);

/* A child that joins <top>/<sub> (created if needed), sets its adj, then waits for commands. */
typedef struct Child {
        pid_t pid;
        int cmd;   /* write 'f' to fork a grandchild, 'q' to exit */
        int reply; /* the grandchild's pid comes back here */
} Child;
int sandbox_spawn(Sandbox *s, const char *sub, int adj, Child *ret);
/* Asks the child to fork; the grandchild waits forever. */
pid_t child_fork(Child *c);
/* The same, the grandchild switching to uid 65534 first (a process of another user in the tree). */
pid_t child_fork_as_nobody(Child *c);
void child_kill(Child *c);

/* /proc/PID/cgroup's v2 path relative to the mount ("/<top>/orig") and oom_score_adj; NULL/-9999 on error. */
char *pid_cgroup(pid_t pid);
int pid_adj(pid_t pid);
bool cgroup_exists(const Sandbox *s, const char *rel);
/* "/<top>/<sub>" */
char *sandbox_path(const Sandbox *s, const char *sub);
/* Polls cond for up to ms milliseconds. */
bool wait_for(bool (*cond)(void *), void *arg, int ms);

/*
 * Starts the real oomprotectd ($OOMPROTECT_DAEMON) with args (NULL-terminated,
 * after argv[0]), stderr to logpath, and waits up to 10 s for its READY=1 on a
 * private NOTIFY_SOCKET. Returns the pid, or -1 if it died or never got ready.
 */
pid_t daemon_start(const Sandbox *s, const char *const *args, const char *logpath);
/* A private NOTIFY_SOCKET in the sandbox's state directory (its path in path), and waiting for READY=1 on it. */
int notify_socket_open(const Sandbox *s, char *path, size_t size);
bool notify_wait_ready(int fd, pid_t pid);
/* Sends sig and waits up to 10 s; returns the wait status, or -1. */
int daemon_stop(pid_t pid, int sig);
/* Whether the file at path contains needle. */
bool file_contains(const char *path, const char *needle);

/*
 * The engine's asynchronous API, waited for: each starts the operation and
 * runs the engine's event loop (for at most 30 s, asserting) until its
 * completion ran; with the cgroupfs backend that is before the call
 * returns. They return the result's r, and what the old synchronous calls
 * gave back: the protection (engine_get() after a protect), the report of
 * an unprotect (fallback_path is the caller's), err.
 */
int itest_start(Engine *e);

/* A completion to wait for: pass itest_on_done and a Waiter, then itest_wait() runs the loop until it ran. */
typedef struct Waiter {
        bool done;
        EngineResult result; /* result.report.fallback_path is a copy, the Waiter's */
} Waiter;
void itest_on_done(Engine *e, const EngineResult *res, void *userdata);
/* Runs e's loop (for at most 30 s, asserting) until w's completion ran; returns its r. */
int itest_wait(Engine *e, Waiter *w);

int itest_protect(Engine *e, const ProtectRequest *req, Protection **ret, OpError *err);
int itest_unprotect(Engine *e, pid_t pid, uid_t owner, const char *reason, UnprotectReport *ret_report,
                    OpError *err);
int itest_unprotect_all(Engine *e, uid_t owner, const char *reason);
int itest_unprotect_tag(Engine *e, const char *tag, uid_t owner, const char *reason);
/* engine_new() (its own loop, no callbacks) and itest_start(); the start's result, or the error. */
int itest_engine_open(const Config *c, Engine **ret, OpError *err);
