/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oomprotect-adopt-sockets: ExecStart= of oomprotectd-sockets@.service, an
 * instance of which is the Service= of each optional socket unit:
 * oomprotectd-sockets@oomprotectd.service of oomprotectd.socket (ctl.sock),
 * oomprotectd-sockets@oomprotectd-ctl.service of oomprotectd-ctl.socket (the
 * ctl FIFO). The service manager passes it its socket's listening
 * descriptors (LISTEN_FDS); it hands them over to the running oomprotectd
 * with org.oomprotect.Manager.AdoptSockets and exits.
 *
 * Why a service of its own between the sockets and the daemon: systemd
 * refuses to start a socket unit while its Service= is active, and
 * oomprotectd often is (D-Bus activated, serving its own ctl and ctl.sock).
 * This service is not active then, so the sockets start (one instance per
 * socket: an instance stays active, and would refuse a second socket started
 * later); each starts its own at once when the daemon runs (ExecStartPost=),
 * else its first traffic does; it runs once and stays active
 * (RemainAfterExit=yes), which keeps the service manager from polling the
 * listener itself.
 *
 * It does not start oomprotectd through D-Bus activation: the unit's
 * Wants=/After=oomprotectd.service did that, and a daemon that did not come
 * up is an error here, not a second attempt. No listener passed (the socket
 * units are stopped) is nothing to do, exit 0.
 *
 * Exit status: 0 handed over (or nothing to hand over), 1 refused or
 * oomprotectd not reachable, 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "macro.h"
#include "oomprotect/protocol.h"

#define PROGRAM "oomprotect-adopt-sockets"

static int call_adopt(int n, uint32_t *ret_adopted) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_message_new_method_call(bus, &m, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                           OOMPROTECT_MANAGER_INTERFACE, "AdoptSockets");
        if (r >= 0) /* oomprotectd.service is started by this unit's Wants=, not by the bus */
                r = sd_bus_message_set_auto_start(m, false);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "h");
        for (int fd = SD_LISTEN_FDS_START; r >= 0 && fd < SD_LISTEN_FDS_START + n; fd++)
                r = sd_bus_message_append_basic(m, 'h', &fd);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return log_error_errno(r, "Failed to build the AdoptSockets() call: %m");
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0) {
                if (sd_bus_error_has_names(&error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        return log_error_errno(r, "oomprotectd is not running (nobody owns " OOMPROTECT_BUS_NAME
                                                  "): see systemctl status oomprotectd.service.");
                return log_error_errno(r, "oomprotectd refused the listeners: %s",
                                       error.message ? error.message : strerror(-r));
        }
        r = sd_bus_message_read(reply, "u", ret_adopted);
        if (r < 0)
                return log_error_errno(r, "Failed to read the reply of AdoptSockets(): %m");
        return 0;
}

int main(int argc, char *argv[]) {
        uint32_t adopted = 0;
        int n;

        if (argc > 1) {
                bool help = streq(argv[1], "--help") || streq(argv[1], "-h");
                fprintf(help ? stdout : stderr,
                        PROGRAM ": hands the listeners the service manager passed (LISTEN_FDS) over to\n"
                        "oomprotectd. Run by oomprotectd-sockets@.service; takes no arguments.\n");
                return help ? EXIT_SUCCESS : 2;
        }
        n = sd_listen_fds(true);
        if (n < 0) {
                log_error_errno(n, "Failed to read the descriptors the service manager passed: %m");
                return EXIT_FAILURE;
        }
        if (n == 0) {
                log_info("No listeners were passed (the socket unit is not running): nothing to hand over.");
                return EXIT_SUCCESS;
        }
        if (call_adopt(n, &adopted) < 0)
                return EXIT_FAILURE;
        log_info("Handed %d listener(s) over to oomprotectd (%u newly served, the others were already).", n,
                 (unsigned) adopted);
        return EXIT_SUCCESS;
}
