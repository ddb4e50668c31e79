#!/bin/bash
# Interactive debugging: boots the same guest the tests use (cached root +
# the package, installed with dpkg -i + the scenarios) with the serial console on
# this terminal, root logged in, and no test driver.
#
#   tests/vm/shell.sh BUILD_DIR
#
# Inside: bash /usr/local/lib/oomprotect-vm/scenarios/NN-name.sh runs one
# scenario; journalctl -u oomprotectd shows the daemon. The disk is a
# snapshot: nothing persists. Ctrl-A X leaves qemu.
set -euo pipefail
(($# == 1)) || {
        sed -n '2,/^set -e/{/^#/s/^# \{0,1\}//p}' "$0" >&2
        exit 2
}
exec "$(dirname "$0")/run-vm.sh" --shell "$1"
