/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The public calls of liboomprotect (include/oomprotect.h), each one method
 * of org.oomprotect.Manager over its own system bus connection.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib-internal.h"
#include "oomprotect.h"
#include "oomprotect/protocol.h"

/* The kernel's PID_MAX_LIMIT, as the daemon checks it. */
#define LIB_PID_MAX_LIMIT 4194304

#define KNOWN_OPTIONS                                                                              \
        (OOMPROTECT_OPTION_MEMORY_MIN | OOMPROTECT_OPTION_MEMORY_LOW | OOMPROTECT_OPTION_OOM_SCORE_ADJ | \
         OOMPROTECT_OPTION_OOM_GROUP | OOMPROTECT_OPTION_DESCENDANTS | OOMPROTECT_OPTION_TAG |           \
         OOMPROTECT_OPTION_IN_PLACE)

/* The size of the first version of struct oomprotect_options (up to tag): programs built then pass that. */
#define OPTIONS_SIZE_V0 (offsetof(struct oomprotect_options, tag) + sizeof(const char *))

static int check_pid(pid_t pid) {
        if (pid <= 0 || pid > LIB_PID_MAX_LIMIT)
                return lib_error_set(-EINVAL, "PID %d is not a valid process ID.", (int) pid);
        return 0;
}

static int read_bool_reply(sd_bus_message *reply, int *ret) {
        int b, r;

        r = sd_bus_message_read(reply, "b", &b);
        if (r < 0)
                return lib_error_set(-EPROTO, "oomprotectd's answer is not a boolean: %s.", strerror(-r));
        *ret = !!b;
        return 0;
}

LIB_EXPORT int oomprotect_set_self(int protect) {
        lib_error_reset();
        return lib_call_method("SetSelfProtection", NULL, "b", protect ? 1 : 0);
}

LIB_EXPORT int oomprotect_get_self(int *ret_protected) {
        lib_cleanup_(lib_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        lib_error_reset();
        if (!ret_protected)
                return lib_error_set(-EINVAL, "oomprotect_get_self() needs somewhere to store the answer.");
        r = lib_call_method("GetSelfProtection", &reply, NULL);
        if (r < 0)
                return r;
        return read_bool_reply(reply, ret_protected);
}

/*
 * The caller's struct, checked against the one this library knows (see
 * struct oomprotect_options): an older program's is shorter (its later
 * fields are unset), a newer one's longer (its extra fields must be zero).
 */
static int check_options(const struct oomprotect_options *o) {
        const unsigned char *extra = (const unsigned char *) o + sizeof(*o);

        if (o->size < OPTIONS_SIZE_V0)
                return lib_error_set(-EINVAL, "struct oomprotect_options has size %zu, less than the first "
                                              "version's %zu: set size with OOMPROTECT_OPTIONS_INIT.",
                                     o->size, (size_t) OPTIONS_SIZE_V0);
        for (size_t i = 0; o->size > sizeof(*o) && i < o->size - sizeof(*o); i++)
                if (extra[i] != 0)
                        return lib_error_set(-E2BIG, "struct oomprotect_options has fields this version of "
                                                     "liboomprotect does not know.");
        if ((o->set & OOMPROTECT_OPTION_IN_PLACE) && o->size < offsetof(struct oomprotect_options, in_place) + sizeof(int))
                return lib_error_set(-EINVAL, "OOMPROTECT_OPTION_IN_PLACE is set but the struct has no in_place field.");
        if (o->set & ~KNOWN_OPTIONS)
                return lib_error_set(-EINVAL, "Unknown option bits 0x%llx in struct oomprotect_options.",
                                     (unsigned long long) (o->set & ~KNOWN_OPTIONS));
        return 0;
}

static int append_options(sd_bus_message *m, const struct oomprotect_options *o) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && (o->set & OOMPROTECT_OPTION_MEMORY_MIN))
                r = sd_bus_message_append(m, "{sv}", "MemoryMin", "t", o->memory_min);
        if (r >= 0 && (o->set & OOMPROTECT_OPTION_MEMORY_LOW))
                r = sd_bus_message_append(m, "{sv}", "MemoryLow", "t", o->memory_low);
        if (r >= 0 && (o->set & OOMPROTECT_OPTION_OOM_SCORE_ADJ))
                r = sd_bus_message_append(m, "{sv}", "OOMScoreAdjust", "i", (int32_t) o->oom_score_adj);
        if (r >= 0 && (o->set & OOMPROTECT_OPTION_OOM_GROUP))
                r = sd_bus_message_append(m, "{sv}", "OOMGroup", "b", o->oom_group ? 1 : 0);
        if (r >= 0 && (o->set & OOMPROTECT_OPTION_DESCENDANTS))
                r = sd_bus_message_append(m, "{sv}", "Descendants", "b", o->descendants ? 1 : 0);
        if (r >= 0 && (o->set & OOMPROTECT_OPTION_TAG))
                r = sd_bus_message_append(m, "{sv}", "Tag", "s", o->tag ? o->tag : "");
        if (r >= 0 && (o->set & OOMPROTECT_OPTION_IN_PLACE))
                r = sd_bus_message_append(m, "{sv}", "InPlace", "b", o->in_place ? 1 : 0);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return lib_error_set(r, "Cannot build the protection options: %s.", strerror(-r));
        return 0;
}

LIB_EXPORT int oomprotect_protect(pid_t pid, const struct oomprotect_options *options) {
        lib_cleanup_(lib_message_unrefp) sd_bus_message *m = NULL;
        lib_cleanup_(lib_bus_closep) sd_bus *bus = NULL;
        int r;

        lib_error_reset();
        r = check_pid(pid);
        if (r < 0)
                return r;
        if (options) {
                r = check_options(options);
                if (r < 0)
                        return r;
        }
        if (!options || options->set == 0)
                return lib_call_method("Protect", NULL, "u", (uint32_t) pid);
        r = lib_bus_open(&bus);
        if (r < 0)
                return r;
        r = lib_message_new(bus, "ProtectWithOptions", &m);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "u", (uint32_t) pid);
        if (r < 0)
                return lib_error_set(r, "Cannot build the ProtectWithOptions call: %s.", strerror(-r));
        r = append_options(m, options);
        if (r < 0)
                return r;
        return lib_call(bus, m, NULL);
}

static int check_unit(const char *unit) {
        if (!unit || !unit[0])
                return lib_error_set(-EINVAL, "A unit name must not be empty.");
        return 0;
}

LIB_EXPORT int oomprotect_protect_unit(const char *unit, const struct oomprotect_options *options) {
        lib_cleanup_(lib_message_unrefp) sd_bus_message *m = NULL;
        lib_cleanup_(lib_bus_closep) sd_bus *bus = NULL;
        struct oomprotect_options none = OOMPROTECT_OPTIONS_INIT;
        int r;

        lib_error_reset();
        r = check_unit(unit);
        if (r >= 0 && options)
                r = check_options(options);
        if (r >= 0)
                r = lib_bus_open(&bus);
        if (r >= 0)
                r = lib_message_new(bus, "ProtectUnit", &m);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", unit);
        if (r < 0)
                return lib_error_set(r, "Cannot build the ProtectUnit call: %s.", strerror(-r));
        r = append_options(m, options ? options : &none);
        if (r < 0)
                return r;
        return lib_call(bus, m, NULL);
}

LIB_EXPORT int oomprotect_unprotect_unit(const char *unit) {
        int r;

        lib_error_reset();
        r = check_unit(unit);
        if (r < 0)
                return r;
        return lib_call_method("UnprotectUnit", NULL, "s", unit);
}

LIB_EXPORT int oomprotect_unprotect(pid_t pid) {
        int r;

        lib_error_reset();
        r = check_pid(pid);
        if (r < 0)
                return r;
        return lib_call_method("Unprotect", NULL, "u", (uint32_t) pid);
}

LIB_EXPORT int oomprotect_is_protected(pid_t pid, int *ret_protected) {
        lib_cleanup_(lib_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        lib_error_reset();
        r = check_pid(pid);
        if (r < 0)
                return r;
        if (!ret_protected)
                return lib_error_set(-EINVAL, "oomprotect_is_protected() needs somewhere to store the answer.");
        r = lib_call_method("IsProtected", &reply, "u", (uint32_t) pid);
        if (r < 0)
                return r;
        return read_bool_reply(reply, ret_protected);
}

/* reply: "u", how many were unprotected. */
static int read_count_reply(sd_bus_message *reply) {
        uint32_t n;
        int r;

        r = sd_bus_message_read(reply, "u", &n);
        if (r < 0)
                return lib_error_set(-EPROTO, "oomprotectd's answer is not a count: %s.", strerror(-r));
        return n > INT32_MAX ? INT32_MAX : (int) n;
}

LIB_EXPORT int oomprotect_unprotect_all(void) {
        lib_cleanup_(lib_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        lib_error_reset();
        r = lib_call_method("UnprotectAll", &reply, NULL);
        if (r < 0)
                return r;
        return read_count_reply(reply);
}

LIB_EXPORT int oomprotect_unprotect_tag(const char *tag) {
        lib_cleanup_(lib_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        lib_error_reset();
        if (!tag || !tag[0])
                return lib_error_set(-EINVAL, "A tag must not be empty.");
        r = lib_call_method("UnprotectTag", &reply, "s", tag);
        if (r < 0)
                return r;
        return read_count_reply(reply);
}
