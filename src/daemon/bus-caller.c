/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-caller.h"
#include "log.h"
#include "oomprotect/protocol.h"

_Static_assert(sizeof(gid_t) == sizeof(uint32_t), "D-Bus carries gids as 'u'");

#define CALLER_CREDS (SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID)
/* Asked for as well: a later sd-bus may deliver them, and then the extra bus call is not needed. */
#define CALLER_GROUP_CREDS (SD_BUS_CREDS_GID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS)

void bus_caller_done(BusCaller *c) {
        free(c->groups);
        *c = (BusCaller) {};
}

/* The variant under the cursor is "au": copy it out. */
static int read_gid_array(sd_bus_message *reply, gid_t **ret, size_t *ret_n) {
        const void *data;
        size_t size;
        gid_t *g;
        int r;

        r = sd_bus_message_enter_container(reply, 'v', "au");
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(reply, 'u', &data, &size); /* data stays valid with reply */
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return r;
        g = malloc(size > 0 ? size : 1);
        if (!g)
                return -ENOMEM;
        if (size > 0)
                memcpy(g, data, size);
        *ret = g;
        *ret_n = size / sizeof(gid_t);
        return 0;
}

/* 1 with the groups dbus-daemon recorded for the sender of m, 0 when the bus does not report groups. */
static int groups_from_bus(sd_bus_message *m, gid_t **ret, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *sender = sd_bus_message_get_sender(m), *key;
        int r;

        if (!sender)
                return -ENXIO;
        r = sd_bus_call_method(sd_bus_message_get_bus(m), "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetConnectionCredentials", &error, &reply, "s", sender);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "UnixGroupIDs")) {
                        r = read_gid_array(reply, ret, ret_n);
                        return r < 0 ? r : 1;
                }
                r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        return r < 0 ? r : 0;
}

/* The fallback: uid's user's primary group and its groups in the user database. */
static int groups_from_userdb(uid_t uid, gid_t **ret, size_t *ret_n) {
        long bufsize = sysconf(_SC_GETPW_R_SIZE_MAX);
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ gid_t *g = NULL;
        struct passwd pw, *found = NULL;
        int n = 32, r;

        buf = malloc(bufsize > 0 ? (size_t) bufsize : 16384);
        if (!buf)
                return -ENOMEM;
        r = getpwuid_r(uid, &pw, buf, bufsize > 0 ? (size_t) bufsize : 16384, &found);
        if (r != 0)
                return -r;
        if (!found) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        for (;;) {
                gid_t *ng = realloc(g, (size_t) n * sizeof(gid_t));
                if (!ng)
                        return -ENOMEM;
                g = ng;
                int want = n;
                if (getgrouplist(pw.pw_name, pw.pw_gid, g, &want) >= 0) {
                        n = want;
                        break;
                }
                if (want <= n) /* should not happen; avoid looping */
                        return -EIO;
                n = want;
        }
        *ret = TAKE_PTR(g);
        *ret_n = (size_t) n;
        return 0;
}

/* 1 with the groups sd-bus delivered itself (sd-bus 252 on dbus-daemon does not), 0 if none. */
static int groups_from_creds(sd_bus_creds *creds, gid_t **ret, gid_t *ret_gid, size_t *ret_n) {
        const gid_t *gids;
        gid_t *g;
        int n;

        if (sd_bus_creds_get_augmented_mask(creds) & CALLER_GROUP_CREDS)
                return 0;
        n = sd_bus_creds_get_supplementary_gids(creds, &gids);
        if (n < 0)
                return 0;
        g = malloc(n > 0 ? (size_t) n * sizeof(gid_t) : 1);
        if (!g)
                return -ENOMEM;
        if (n > 0)
                memcpy(g, gids, (size_t) n * sizeof(gid_t));
        (void) sd_bus_creds_get_gid(creds, ret_gid);
        *ret = g;
        *ret_n = (size_t) n;
        return 1;
}

static int caller_groups(sd_bus_message *m, sd_bus_creds *creds, BusCaller *c) {
        size_t n = 0;
        int r;

        r = groups_from_creds(creds, &c->groups, &c->auth.gid, &n);
        if (r == 0)
                r = groups_from_bus(m, &c->groups, &n);
        if (r == 0) {
                log_debug("The bus reports no groups for %s; using the user database for uid %u.",
                          strna(sd_bus_message_get_sender(m)), (unsigned) c->auth.uid);
                r = groups_from_userdb(c->auth.uid, &c->groups, &n);
        }
        if (r < 0)
                return r;
        c->auth.groups = c->groups;
        c->auth.n_groups = n;
        return 0;
}

int bus_caller_get(sd_bus_message *m, bool with_groups, BusCaller *ret, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        BusCaller c = { .auth.gid = (gid_t) -1 };
        uid_t uid;
        pid_t pid;
        int r;

        r = sd_bus_query_sender_creds(m, CALLER_CREDS | (with_groups ? CALLER_GROUP_CREDS : 0), &creds);
        if (r < 0)
                return sd_bus_error_setf(error, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                         "Cannot determine who is calling: %s", strerror(-r));
        /* We never ask for SD_BUS_CREDS_AUGMENT, so this cannot happen; refuse if it ever does. */
        if (sd_bus_creds_get_augmented_mask(creds) & CALLER_CREDS)
                return sd_bus_error_set(error, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                        "The bus offered only /proc-derived credentials for the caller.");
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return sd_bus_error_set(error, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                        "The bus did not tell the caller's uid.");
        c.auth.uid = uid;
        c.pid = sd_bus_creds_get_pid(creds, &pid) >= 0 ? pid : 0;

        if (with_groups && uid != 0) {
                r = caller_groups(m, creds, &c);
                if (r < 0) {
                        bus_caller_done(&c);
                        log_warning_errno(r, "Failed to look up the groups of uid %u: %m", (unsigned) uid);
                        return sd_bus_error_setf(error, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                                 "Cannot determine the groups of uid %u: %s", (unsigned) uid,
                                                 strerror(-r));
                }
        }
        *ret = c;
        return 0;
}
