/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oomprotect-cuse: /dev/oom_protect, the 2006 module's character device,
 * served through CUSE so that its C programs run unchanged. Exactly the
 * module's two ioctls, on an int:
 *
 *   OOMSETPROTECTCMD _IOWR('O', 1, int)  *arg != 0 protects the calling process, 0 unprotects it
 *   OOMGETPROTECTCMD _IOR('o', 2, int)   *arg = 1 if the calling process is protected, else 0
 *
 * Both are asked of oomprotectd (org.oomprotect.Trusted) on behalf of the
 * caller's process (the thread CUSE names, mapped to its thread group) and
 * uid, so the daemon authorizes them exactly as SetSelfProtection. The
 * caller stays blocked in its ioctl until the answer is there (at most
 * CUSE_BUS_TIMEOUT_USEC). Any other ioctl gets EINVAL, as from the module;
 * read and write get EINVAL, as from a device without them.
 *
 * One thread, one request at a time (fuse's -s): the daemon's own loop
 * rule. The device appears once CUSE is set up; READY=1 then tells systemd.
 */
#define FUSE_USE_VERSION 31
#include <cuse_lowlevel.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cuse-bus.h"
#include "log.h"
#include "macro.h"
#include "oomprotect/protocol.h"

#define PROGRAM "oomprotect-cuse"
#define DEVICE_NAME "oom_protect"

/* The module's numbers, as its users #define them. */
#define OOMSETPROTECTCMD _IOWR('O', 1, int)
#define OOMGETPROTECTCMD _IOR('o', 2, int)

typedef struct Cuse {
        CuseBus bus;
        int procfd;
} Cuse;

static Cuse *cuse_of(fuse_req_t req) {
        return fuse_req_userdata(req);
}

/* The process behind the request's thread, or a negative errno (replied already). */
static int caller_pid(fuse_req_t req, pid_t *ret) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        int r;

        r = cuse_tid_to_pid(cuse_of(req)->procfd, ctx->pid, ret);
        if (r < 0) {
                log_warning_errno(r, "Cannot find the process of thread %d: %m", (int) ctx->pid);
                fuse_reply_err(req, ESRCH);
        }
        return r;
}

static void ioctl_set(fuse_req_t req, const void *in_buf, size_t in_bufsz) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        int mode, r;
        pid_t pid;

        if (!in_buf || in_bufsz < sizeof(int)) {
                fuse_reply_err(req, EFAULT);
                return;
        }
        memcpy(&mode, in_buf, sizeof(int));
        if (caller_pid(req, &pid) < 0)
                return;
        r = cuse_bus_set(&cuse_of(req)->bus, pid, ctx->uid, mode != 0);
        log_debug("OOMSETPROTECTCMD %d from PID %d (uid %u): %s", mode, (int) pid, (unsigned) ctx->uid,
                  r < 0 ? strerror(-r) : "done");
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                fuse_reply_ioctl(req, 0, &mode, sizeof(mode));
}

static void ioctl_get(fuse_req_t req, size_t out_bufsz) {
        bool yes = false;
        int mode, r;
        pid_t pid;

        if (out_bufsz < sizeof(int)) {
                fuse_reply_err(req, EFAULT);
                return;
        }
        if (caller_pid(req, &pid) < 0)
                return;
        r = cuse_bus_get(&cuse_of(req)->bus, pid, &yes);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        mode = yes;
        fuse_reply_ioctl(req, 0, &mode, sizeof(mode));
}

static void cuse_ioctl(fuse_req_t req, int cmd, void *arg, struct fuse_file_info *fi, unsigned flags,
                       const void *in_buf, size_t in_bufsz, size_t out_bufsz) {
        switch ((unsigned) cmd) {
        case OOMSETPROTECTCMD:
                ioctl_set(req, in_buf, in_bufsz);
                return;
        case OOMGETPROTECTCMD:
                ioctl_get(req, out_bufsz);
                return;
        default:
                fuse_reply_err(req, EINVAL); /* the module's answer to any other number */
        }
}

static void cuse_open(fuse_req_t req, struct fuse_file_info *fi) {
        fi->nonseekable = 1;
        fuse_reply_open(req, fi);
}

static void cuse_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi) {
        fuse_reply_err(req, EINVAL);
}

static void cuse_write(fuse_req_t req, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
        fuse_reply_err(req, EINVAL);
}

static void cuse_init_done(void *userdata) {
        log_info("Serving /dev/" DEVICE_NAME " (the 2006 module's OOMSETPROTECTCMD and OOMGETPROTECTCMD).");
        (void) sd_notify(0, "READY=1\nSTATUS=Serving /dev/" DEVICE_NAME);
}

static const struct cuse_lowlevel_ops cuse_ops = {
        .init_done = cuse_init_done,
        .open = cuse_open,
        .read = cuse_read,
        .write = cuse_write,
        .ioctl = cuse_ioctl,
};

static void help(void) {
        printf(PROGRAM " [--debug] [--name NAME]\n\n"
               "Serve /dev/oom_protect, the 2006 OOM kill protection module's device, through\n"
               "CUSE; its ioctls go to oomprotectd on the system bus for the calling process.\n\n"
               "  --name NAME    the device's name (default " DEVICE_NAME ")\n"
               "  --debug        log every request, and fuse's own debug output\n"
               "  -h --help      show this help\n");
}

/* 0 to run, 1 when done (help), or a negative errno (usage error, printed). */
static int parse_args(int argc, char *argv[], const char **ret_name, bool *ret_debug) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "name", required_argument, NULL, 'n' },
                { "debug", no_argument, NULL, 'd' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 1;
                case 'n':
                        *ret_name = optarg;
                        break;
                case 'd':
                        *ret_debug = true;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, PROGRAM ": unexpected argument \"%s\"\n", argv[optind]);
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        const char *name = DEVICE_NAME;
        char devname[256];
        const char *dev_info[] = { devname };
        bool debug = false;
        Cuse c = { .procfd = -1 };
        int r;

        r = parse_args(argc, argv, &name, &debug);
        if (r != 0)
                return r > 0 ? EXIT_SUCCESS : 2;
        log_set_max_level(debug ? LOG_DEBUG : LOG_INFO);
        snprintf(devname, sizeof(devname), "DEVNAME=%s", name);
        c.procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c.procfd < 0) {
                log_error_errno(-errno, "Cannot open /proc: %m");
                return EXIT_FAILURE;
        }
        /* -f: stay in the foreground (systemd runs us), -s: one thread. */
        char *fuse_argv[] = { argv[0], (char *) "-f", (char *) "-s", debug ? (char *) "-d" : NULL, NULL };
        struct cuse_info ci = { .dev_info_argc = 1, .dev_info_argv = dev_info };
        r = cuse_lowlevel_main(debug ? 4 : 3, fuse_argv, &ci, &cuse_ops, &c);
        cuse_bus_done(&c.bus);
        safe_close(c.procfd);
        return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
