/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "guard.h"
#include "guardwatch.h"
#include "log-struct.h"
#include "log.h"
#include "oomprotect/protocol.h"
#include "manager.h"
#include "parse.h"

#define GUARD_PSI_PATH "/proc/pressure/memory"
#define GUARD_PSI_TRIGGER "some 150000 2000000"

struct GuardWatch {
        int fd;
        sd_event_source *source;
        bool over;
};

void guardwatch_check(Manager *m, uint64_t *ret_in_use, uint64_t *ret_ceiling, bool *ret_over) {
        GuardWatch *g = m->guardwatch;
        uint64_t ceiling = guard_ceiling(m->engine), in_use = guard_protected_usage(m->engine);
        bool over = ceiling > 0 && in_use > ceiling;
        char a[FORMAT_BYTES_MAX], b[FORMAT_BYTES_MAX];

        if (g && over != g->over) {
                g->over = over;
                if (over)
                        log_struct_internal(LOG_WARNING, 0, OOMPROTECT_MESSAGE_OVER_CEILING, 0, NULL,
                                            "Protected processes hold %s, more than MaxProtectedMemory=%s: under "
                                            "memory pressure the kernel may find too little it is allowed to kill. "
                                            "Unprotect something, or raise the ceiling knowingly.",
                                            format_bytes(a, sizeof(a), in_use), format_bytes(b, sizeof(b), ceiling));
                else
                        log_struct_internal(LOG_NOTICE, 0, OOMPROTECT_MESSAGE_OVER_CEILING, 0, NULL,
                                            "Protected processes hold %s, within MaxProtectedMemory=%s again.",
                                            format_bytes(a, sizeof(a), in_use), format_bytes(b, sizeof(b), ceiling));
                for (size_t i = 0; i < m->n_listeners; i++)
                        if (m->listeners[i].over_ceiling)
                                m->listeners[i].over_ceiling(m, in_use, ceiling, over, m->listeners[i].userdata);
        }
        if (ret_in_use)
                *ret_in_use = in_use;
        if (ret_ceiling)
                *ret_ceiling = ceiling;
        if (ret_over)
                *ret_over = over;
}

static int on_pressure(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;

        if (revents & EPOLLERR) {
                log_warning("The PSI trigger on " GUARD_PSI_PATH " failed; protected memory is checked at each "
                            "protect only from now on.");
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        }
        guardwatch_check(m, NULL, NULL, NULL);
        return 0;
}

int guardwatch_setup(Manager *m) {
        GuardWatch *g = calloc(1, sizeof(GuardWatch));
        int r;

        if (!g)
                return log_oom();
        g->fd = open(GUARD_PSI_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        m->guardwatch = g;
        if (g->fd < 0 || write(g->fd, GUARD_PSI_TRIGGER, strlen(GUARD_PSI_TRIGGER) + 1) < 0) {
                r = -errno;
                g->fd = safe_close(g->fd);
                log_notice_errno(r, "No PSI trigger on " GUARD_PSI_PATH " (%m): MaxProtectedMemory= is checked at "
                                    "each protect, not when protected processes grow.");
                return 0;
        }
        r = sd_event_add_io(m->event, &g->source, g->fd, EPOLLPRI, on_pressure, m);
        if (r < 0) {
                g->fd = safe_close(g->fd);
                return log_warning_errno(r, "Failed to watch " GUARD_PSI_PATH ", ignoring: %m");
        }
        (void) sd_event_source_set_description(g->source, "memory-pressure");
        return 0;
}

void guardwatch_done(Manager *m) {
        GuardWatch *g = m->guardwatch;

        if (!g)
                return;
        sd_event_source_disable_unref(g->source);
        safe_close(g->fd);
        free(g);
        m->guardwatch = NULL;
}
