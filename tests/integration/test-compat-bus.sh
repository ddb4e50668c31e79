#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# One engine behind every front end: what is changed through ctl and
# ctl.sock is what D-Bus (IsProtected, ListProtected with its source) and
# oomprotectctl report, and what D-Bus and oomprotectctl change is what the
# status file shows, byte for byte. The real oomprotectd on a private
# system-like bus (tests/integration/system-bus.conf.in), real processes in a
# real cgroup2 subtree.
#
# Needs root, a writable cgroup2 mount, dbus-daemon and busctl (exits 77 with
# the reason otherwise); socat for the ctl.sock part (noted and left out
# without it).
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_CTL:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and dbus-daemon busctl
find_cgroup2

name=oomptestcb$$
top=$name.slice
slice=$name-protected.slice
mkdir "$CG/$top" 2>/dev/null || skip "the cgroup2 mount $CG is not writable"

tmp=$(mktemp -d /tmp/oomprotect-compat-bus.XXXXXX)
SOCK=$tmp/bus.sock
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$SOCK
COMPAT=$tmp/state/compat
dbus_pid='' daemon_pid=''
children=()

cleanup() {
        local rc=$?
        [[ -n $daemon_pid ]] && kill -KILL "$daemon_pid" 2>/dev/null
        [[ -n $dbus_pid ]] && kill "$dbus_pid" 2>/dev/null
        echo 1 >"$CG/$top/cgroup.kill" 2>/dev/null || true
        for pid in "${children[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
        wait 2>/dev/null || true
        if [[ $rc -ne 0 && $rc -ne 77 && -f $tmp/daemon.log ]]; then
                echo "--- daemon log (last 30 lines) ---"
                tail -n 30 "$tmp/daemon.log"
        fi
        for _ in $(seq 100); do
                find "$CG/$top" -depth -type d -exec rmdir {} + 2>/dev/null || true
                [[ -d $CG/$top ]] || break
                sleep 0.02 # the kernel frees killed cgroups asynchronously
        done
        rm -rf "$tmp"
        exit "$rc"
}
trap cleanup EXIT




# spawn: a sleep in <top>/orig; $spawned is its pid once it runs sleep.
spawn() {
        mkdir -p "$CG/$top/orig"
        sh -c 'echo $$ >"$1/cgroup.procs" && exec sleep 1000' spawn "$CG/$top/orig" &
        spawned=$!
        children+=("$spawned")
        wait_until 5 is_sleep "$spawned" || fail "child $spawned did not start"
}
is_sleep() {
        [[ $(cat "/proc/$1/comm" 2>/dev/null) == sleep ]]
}

# The module's status text for the given PIDs, built here with its printf formats.
expected_status() {
        printf 'OOM protected processes:\n'
        printf '%-10s %-16s\n' PID NAME
        printf '%-10s %-16s\n' --- ----
        local p
        for p in $(printf '%s\n' "$@" | sort -n); do
                printf '%-10d %-16s\n' "$p" "$(cat "/proc/$p/comm")"
        done
}
status_is() {
        cmp -s <(expected_status "$@") "$COMPAT/status"
}
expect_status() { # WHAT PID...
        local what=$1
        shift
        wait_until 5 status_is "$@" && return 0
        echo "expected:" && expected_status "$@" | sed -n l
        echo "actual:" && sed -n l "$COMPAT/status"
        fail "status is not byte-exact $what"
}

# The source ListProtected reports for PID ("" if it is not listed).
listed_source() {
        mgr ListProtected | grep -oE "(^| )$1 \"[^\"]*\" (\"[^\"]*\" ){2}(-?[0-9]+ ){2}[0-9]+ [0-9]+ \"[^\"]*\"" |
                sed 's/.* "\([^"]*\)"$/\1/' || true
}


# ---- setup ----

protect_adj=0
sh -c 'echo -1 >/proc/self/oom_score_adj' 2>/dev/null && protect_adj=-1000
cat >"$tmp/oomprotectd.conf" <<EOF
[Manager]
Backend=cgroupfs
CgroupRoot=$CG
Slice=$slice
StateDirectory=$tmp/state
CompatDirectory=$COMPAT
OOMScoreAdjust=$protect_adj
EOF
start_private_bus "$tmp"
"$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
wait_until 10 name_has_owner || fail "oomprotectd did not acquire org.oomprotect"
[[ -p $COMPAT/ctl && -S $COMPAT/ctl.sock ]] || fail "$COMPAT has no ctl FIFO and ctl.sock"

spawn
a=$spawned
spawn
b=$spawned

# ---- tests ----

test_ctl_changes_are_seen_on_the_bus_and_by_the_cli() {
        echo "setprotection $a 1" >"$COMPAT/ctl"
        expect_status "after 'setprotection $a 1' on ctl" "$a"
        assert_eq "$(mgr IsProtected u "$a")" "b true" "IsProtected($a)"
        assert_eq "$(listed_source "$a")" ctl "the source ListProtected gives $a"
        "$OOMPROTECT_CTL" status | grep -qE "^$a +sleep .* ctl +" ||
                fail "oomprotectctl status: $("$OOMPROTECT_CTL" status)"
        ok "a protection made through ctl is listed by D-Bus and oomprotectctl, source \"ctl\""
}

test_bus_and_cli_changes_are_seen_in_status() {
        mgr Protect u "$b" >/dev/null
        expect_status "after Protect($b) on D-Bus" "$a" "$b"
        "$OOMPROTECT_CTL" unprotect "$a" >/dev/null
        expect_status "after oomprotectctl unprotect $a" "$b"
        mgr Unprotect u "$b" >/dev/null
        expect_status "after Unprotect($b) on D-Bus (header only)"
        ok "changes made over D-Bus and by oomprotectctl are in status, byte for byte"
}

test_ctl_sock_changes_are_seen_on_the_bus() {
        if ! command -v socat >/dev/null; then
                note "socat is not installed: ctl.sock against D-Bus not tested here (test-compat covers ctl.sock)"
                return 0
        fi
        assert_eq "$(echo "setprotection $b 1" | socat - "UNIX-CONNECT:$COMPAT/ctl.sock")" OK "reply"
        assert_eq "$(listed_source "$b")" ctl.sock "the source ListProtected gives $b"
        expect_status "after 'setprotection $b 1' on ctl.sock" "$b"
        mgr Unprotect u "$b" >/dev/null
        assert_eq "$(echo "setprotection $b 0" | socat - "UNIX-CONNECT:$COMPAT/ctl.sock")" \
                "ERR ENOENT PID $b is not protected." "reply after Unprotect on D-Bus"
        expect_status "after Unprotect($b) on D-Bus (header only)"
        ok "a protection made through ctl.sock is listed by D-Bus, source \"ctl.sock\"; D-Bus undoes it"
}

echo "# cgroup2 at $CG, sandbox $top, work directory $tmp"
test_ctl_changes_are_seen_on_the_bus_and_by_the_cli
test_bus_and_cli_changes_are_seen_in_status
test_ctl_sock_changes_are_seen_on_the_bus
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=''
assert_eq "$rc" 0 "exit status of oomprotectd after SIGTERM (sanitizers included)"
echo "# all $n_ok passed"
