/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The proof that a PID from the bus is the caller's process: see bus-peer.h. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bus-peer.h"
#include "fileio.h"
#include "macro.h"

/* What sock_diag says of one Unix socket. */
typedef struct UnixDiag {
        uint32_t peer; /* 0: not connected */
        char name[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
        size_t name_len; /* 0: unnamed */
} UnixDiag;

static void unix_diag_attrs(const struct unix_diag_msg *m, size_t len, UnixDiag *ret) {
        size_t off = NLMSG_ALIGN(sizeof(*m));

        while (off + sizeof(struct rtattr) <= len) {
                const struct rtattr *a = (const struct rtattr *) ((const char *) m + off);
                size_t alen = a->rta_len, plen;
                if (alen < sizeof(struct rtattr) || off + alen > len)
                        break;
                plen = alen - RTA_LENGTH(0);
                if (a->rta_type == UNIX_DIAG_PEER && plen >= sizeof(uint32_t))
                        memcpy(&ret->peer, RTA_DATA(a), sizeof(uint32_t));
                else if (a->rta_type == UNIX_DIAG_NAME && plen <= sizeof(ret->name)) {
                        memcpy(ret->name, RTA_DATA(a), plen);
                        ret->name_len = plen;
                }
                off += RTA_ALIGN(alen);
        }
}

/* One socket by inode: -ENOENT when the kernel knows none (not a Unix socket, or gone). */
static int unix_diag_get(int nl, uint32_t ino, UnixDiag *ret) {
        struct {
                struct nlmsghdr nlh;
                struct unix_diag_req req;
        } q = {
                .nlh = { .nlmsg_len = sizeof(q), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST },
                .req = { .sdiag_family = AF_UNIX, .udiag_states = UINT32_MAX, .udiag_ino = ino,
                         .udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_NAME,
                         .udiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE } },
        };
        union {
                struct nlmsghdr nlh;
                char buf[8192];
        } a;
        ssize_t n;

        if (send(nl, &q, sizeof(q), 0) < 0)
                return negative_errno();
        n = recv(nl, &a, sizeof(a), 0);
        if (n < 0)
                return negative_errno();
        if ((size_t) n < sizeof(struct nlmsghdr) || a.nlh.nlmsg_len > (size_t) n)
                return -EBADMSG;
        if (a.nlh.nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(&a.nlh);
                return a.nlh.nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? e->error : -EBADMSG;
        }
        if (a.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY ||
            a.nlh.nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
                return -EBADMSG;
        *ret = (UnixDiag) {};
        unix_diag_attrs(NLMSG_DATA(&a.nlh), a.nlh.nlmsg_len - NLMSG_LENGTH(0), ret);
        return 0;
}

/* The inode of fd entry name of dir ("socket:[1234]"), 0 when it is no socket. */
static uint32_t socket_inode_at(int dirfd, const char *name) {
        char link[64];
        unsigned long ino;
        ssize_t n = readlinkat(dirfd, name, link, sizeof(link) - 1);

        if (n <= 0)
                return 0;
        link[n] = '\0';
        if (sscanf(link, "socket:[%lu]", &ino) != 1 || ino == 0 || ino > UINT32_MAX)
                return 0;
        return (uint32_t) ino;
}

/* Whether socket ino is connected to a socket named like the bus. */
static bool connected_to(int nl, uint32_t ino, const struct sockaddr_un *bus, size_t bus_len) {
        UnixDiag mine, peer;

        if (unix_diag_get(nl, ino, &mine) < 0 || mine.peer == 0)
                return false;
        if (unix_diag_get(nl, mine.peer, &peer) < 0 || peer.name_len == 0)
                return false;
        if (peer.name[0] != '\0') /* a path: with or without its NUL, as the kernel has it */
                peer.name_len = strnlen(peer.name, peer.name_len);
        return peer.name_len == bus_len && memcmp(peer.name, bus->sun_path, bus_len) == 0;
}

int bus_peer_holds_bus_socket(int procfd, pid_t pid, int busfd) {
        struct sockaddr_un bus = {};
        socklen_t len = sizeof(bus);
        struct stat st, own;
        _cleanup_close_ int nl = -EBADF;
        char path[32];
        struct dirent *de;
        DIR *d;
        int r, found = 0;

        if (getpeername(busfd, (struct sockaddr *) &bus, &len) < 0)
                return negative_errno();
        if (bus.sun_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path))
                return -EAFNOSUPPORT; /* not a Unix socket, or an unnamed one: nothing to compare with */
        len -= offsetof(struct sockaddr_un, sun_path);
        if (bus.sun_path[0] != '\0') /* a path: the kernel reports it without the trailing NUL */
                len = strnlen(bus.sun_path, len);
        nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (nl < 0)
                return negative_errno(); /* RestrictAddressFamilies=AF_UNIX: cannot tell */
        /*
         * sock_diag shows the sockets of our network namespace only: one of the
         * process's (and the bus's end of its connection, made in the same) is
         * out of sight from another, such as the unit's PrivateNetwork=.
         */
        snprintf(path, sizeof(path), "%d/ns/net", (int) pid);
        if (fstatat(procfd, "self/ns/net", &own, 0) < 0 || fstatat(procfd, path, &st, 0) < 0)
                return negative_errno();
        if (own.st_dev != st.st_dev || own.st_ino != st.st_ino)
                return -EXDEV;
        snprintf(path, sizeof(path), "%d/fd", (int) pid);
        r = opendir_at(procfd, path, &d);
        if (r < 0)
                return r;
        while (!found && (de = readdir(d))) {
                uint32_t ino = de->d_name[0] != '.' ? socket_inode_at(dirfd(d), de->d_name) : 0;
                found = ino != 0 && connected_to(nl, ino, &bus, len);
        }
        closedir(d);
        return found;
}
