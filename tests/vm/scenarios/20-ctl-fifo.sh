#!/bin/bash
# DESIGN.md 3, the historic text protocol: "setprotection PID 1" written to
# the ctl FIFO protects, the status file lists the process byte for byte in
# the 2006 module's format, bad lines are rejected without stopping the
# reader, and "setprotection PID 0" (PID in 0x hex this time) restores.
# vm-timeout: 90
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

ctl=$OP_COMPAT_DIR/ctl
status=$OP_COMPAT_DIR/status

# ctl_write LINE...: one write of all lines to the FIFO. Bounded: opening a
# FIFO nobody reads blocks forever.
ctl_write() {
        # shellcheck disable=SC2016 # expanded by the inner bash
        timeout 5 bash -c 'printf "%s\n" "${@:2}" >"$1"' _ "$ctl" "$@" ||
                fail "writing to $ctl did not complete within 5 s (is the daemon reading it?)"
}

# The module's status text for the given PIDs.
expected_status() {
        printf 'OOM protected processes:\n'
        printf '%-10s %-16s\n' PID NAME
        printf '%-10s %-16s\n' --- ----
        local p
        for p; do printf '%-10d %-16s\n' "$p" "$(comm_of "$p")"; done
}

# shellcheck disable=SC2317 # called through wait_until
status_is() { cmp -s <(expected_status "$@") "$status"; }

# expect_status WHAT PID...: wait briefly for the status file to read exactly
# as expected (it is rewritten asynchronously), else show both.
expect_status() {
        local what=$1
        shift
        wait_until 5 status_is "$@" && return 0
        info "expected $status (sed -n l):"
        expected_status "$@" | sed -n l | sed 's/^/  | /'
        info "actual:"
        sed -n l "$status" 2>&1 | sed 's/^/  | /'
        fail "$status is not byte-exact $what"
}

daemon_config_default
daemon_fresh_start

[[ -p $ctl ]] || fail "$ctl is not a FIFO"
expect_eq "mode and owner of $ctl" "$(stat -c '%a %U' "$ctl")" "600 root"
[[ -f $status ]] || fail "$status is not a regular file"
expect_status "with nothing protected (header only)"

start_sleeper 123
pid=$SLEEPER_PID
orig_cg=$(cgroup_of "$pid")
info "sleep $pid in $orig_cg, oom_score_adj 123"

ctl_write "setprotection $pid 1"
expect_status "after 'setprotection $pid 1'" "$pid"
assert_protected "$pid"
info "protected via ctl: $(cgroup_of "$pid"), adj $(adj_of "$pid")"

# Garbage must be rejected and logged, and must not stop the reader: an
# unknown verb, a malformed line and a line over the 4096-byte limit.
long=$(printf 'setprotection %s 1 %05000d' "$pid" 0)
ctl_write "frobnicate $pid 1" "setprotection" "setprotection $pid 7" "$long"
sleep 0.5
systemctl is-active --quiet "$OP_UNIT" || fail "$OP_UNIT died on bad ctl lines"
expect_status "after bad lines (must be unchanged)" "$pid"

hex=$(printf '0x%x' "$pid")
ctl_write "setprotection $hex 0"
expect_status "after 'setprotection $hex 0' (header only)"
assert_restored "$pid" "$orig_cg" 123
info "restored via ctl: $(cgroup_of "$pid"), adj $(adj_of "$pid")"

pass "ctl FIFO protected and restored $pid; status byte-exact; bad lines rejected"
