# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-or-later
# For the checking scripts that run every check and fail at the end
# (tests/unit/test-man.sh, tests/package/check-contents.sh): TAP-like lines,
# and the functions liboomprotect exports, which both check pages for.

tap_fails=0
ok() { echo "ok - $*"; }
not_ok() {
        echo "not ok - $*"
        tap_fails=$((tap_fails + 1))
}
# tap_exit: 0 when every check passed, else 1.
tap_exit() { exit $((tap_fails > 0)); }

# lib_functions SOURCE_DIR: each function in src/lib/liboomprotect.sym, one a line.
lib_functions() {
        grep -oE '^[[:space:]]*oomprotect_[a-z_]+;' "$1/src/lib/liboomprotect.sym" | tr -d ' \t;'
}
