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

typedef struct CallerQuery {
        bool with_groups;
        BusCallerDone done;
        void *userdata;
} CallerQuery;

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

/* What GetConnectionCredentials said, the cursor at its a{sv}. */
typedef struct Credentials {
        bool has_uid, has_pid, has_groups;
        uint32_t uid, pid;
        gid_t *groups;
        size_t n_groups;
} Credentials;

static int read_credential(sd_bus_message *reply, Credentials *c) {
        const char *key;
        int r;

        r = sd_bus_message_read(reply, "s", &key);
        if (r < 0)
                return r;
        if (streq(key, "UnixUserID")) {
                c->has_uid = true;
                return sd_bus_message_read(reply, "v", "u", &c->uid);
        }
        if (streq(key, "ProcessID")) {
                c->has_pid = true;
                return sd_bus_message_read(reply, "v", "u", &c->pid);
        }
        if (streq(key, "UnixGroupIDs") && !c->has_groups) {
                c->has_groups = true;
                return read_gid_array(reply, &c->groups, &c->n_groups);
        }
        return sd_bus_message_skip(reply, "v");
}

static int read_credentials(sd_bus_message *reply, Credentials *c) {
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = read_credential(reply, c);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(reply);
}

static void credentials_done(Credentials *c) {
        free(c->groups);
        *c = (Credentials) {};
}

/* The groups for a non-root caller: the bus's, else the user database's. */
static int caller_groups(Credentials *creds, BusCaller *c) {
        size_t n = creds->n_groups;
        int r;

        if (creds->has_groups)
                c->groups = TAKE_PTR(creds->groups);
        else {
                log_debug("The bus reports no groups for uid %u; using the user database.", (unsigned) c->auth.uid);
                r = groups_from_userdb(c->auth.uid, &c->groups, &n);
                if (r < 0)
                        return r;
        }
        c->auth.groups = c->groups;
        c->auth.n_groups = n;
        return 0;
}

/* Fills c from the driver's reply; on failure error is set for the client. */
static int caller_from_reply(sd_bus_message *reply, bool with_groups, BusCaller *c, sd_bus_error *error) {
        _cleanup_(credentials_done) Credentials creds = {};
        int r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);
                return sd_bus_error_setf(error, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                         "Cannot determine who is calling: %s",
                                         e && e->message ? e->message : strerror(EIO));
        }
        r = read_credentials(reply, &creds);
        if (r < 0)
                return sd_bus_error_setf(error, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                         "Cannot determine who is calling: %s", strerror(-r));
        if (!creds.has_uid)
                return sd_bus_error_set(error, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                        "The bus did not tell the caller's uid.");
        *c = (BusCaller) { .auth.uid = creds.uid, .auth.gid = (gid_t) -1,
                           .pid = creds.has_pid ? (pid_t) creds.pid : 0 };
        if (!with_groups || c->auth.uid == 0)
                return 0;
        r = caller_groups(&creds, c);
        if (r < 0) {
                bus_caller_done(c);
                log_warning_errno(r, "Failed to look up the groups of uid %u: %m", (unsigned) creds.uid);
                return sd_bus_error_setf(error, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                         "Cannot determine the groups of uid %u: %s", (unsigned) creds.uid,
                                         strerror(-r));
        }
        return 0;
}

static int on_credentials(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(bus_caller_done) BusCaller c = {};
        CallerQuery *q = userdata;
        int r;

        r = caller_from_reply(reply, q->with_groups, &c, &error);
        q->done(r < 0 ? NULL : &c, &error, q->userdata); /* may unref the slot, and with it q */
        return 0;
}

int bus_caller_query(sd_bus_message *m, bool with_groups, BusCallerDone done, void *userdata,
                     sd_bus_slot **ret_slot, sd_bus_error *error) {
        const char *sender = sd_bus_message_get_sender(m);
        sd_bus_slot *slot = NULL;
        CallerQuery *q;
        int r;

        if (!sender)
                return sd_bus_error_set(error, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                        "Cannot determine who is calling: the message names no sender.");
        q = malloc(sizeof(CallerQuery));
        if (!q)
                return -ENOMEM;
        *q = (CallerQuery) { .with_groups = with_groups, .done = done, .userdata = userdata };
        r = sd_bus_call_method_async(sd_bus_message_get_bus(m), &slot, "org.freedesktop.DBus",
                                     "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionCredentials",
                                     on_credentials, q, "s", sender);
        if (r < 0) {
                free(q);
                return sd_bus_error_setf(error, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                         "Cannot determine who is calling: %s", strerror(-r));
        }
        (void) sd_bus_slot_set_destroy_callback(slot, free);
        *ret_slot = slot;
        return 0;
}
