/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "engine.h"
#include "oomprotect/protocol.h"

static bool in_group(const Caller *c, gid_t gid) {
        if (c->gid == gid)
                return true;
        for (size_t i = 0; i < c->n_groups; i++)
                if (c->groups[i] == gid)
                        return true;
        return false;
}

int auth_check_modify(const Caller *c, gid_t allow_gid, uid_t *ret_owner, OpError *e) {
        if (c->uid == 0) {
                *ret_owner = UID_ANY;
                return 0;
        }
        if (allow_gid != (gid_t) -1 && in_group(c, allow_gid)) {
                *ret_owner = c->uid;
                return 0;
        }
        return op_error_set(e, -EPERM, OOMPROTECT_ERROR_PERMISSION_DENIED,
                            "Only root and members of the AllowGroup= group may change protections; "
                            "uid %u may only read them.",
                            (unsigned) c->uid);
}

static gid_t resolve_group_here(const char *name) {
        struct group *g = getgrnam(name);

        return g ? g->gr_gid : (gid_t) -1;
}

/*
 * getgrnam() runs in a child: one lookup would leave its NSS modules
 * (nss-systemd, and libm with it: 0.6 MB of the idle RSS) mapped in the
 * daemon for good. The child writes the gid to a pipe and exits; where no
 * child can be made, the lookup runs here after all.
 */
gid_t auth_resolve_group(const char *name) {
        _cleanup_close_ int rfd = -EBADF, wfd = -EBADF;
        gid_t gid = (gid_t) -1;
        int fds[2];
        ssize_t n;
        pid_t pid;

        if (isempty(name))
                return (gid_t) -1;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return resolve_group_here(name);
        rfd = fds[0];
        wfd = fds[1];
        pid = fork();
        if (pid < 0)
                return resolve_group_here(name);
        if (pid == 0) {
                gid = resolve_group_here(name);
                _exit(write(wfd, &gid, sizeof(gid)) == (ssize_t) sizeof(gid) ? 0 : 1);
        }
        wfd = safe_close(wfd);
        do
                n = read(rfd, &gid, sizeof(gid));
        while (n < 0 && errno == EINTR);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        return n == (ssize_t) sizeof(gid) ? gid : (gid_t) -1;
}
