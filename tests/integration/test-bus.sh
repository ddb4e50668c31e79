#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The D-Bus front end end to end: a private dbus-daemon with a system-like
# configuration that includes the shipped conf/org.oomprotect.conf, the real
# oomprotectd, real processes in a real cgroup2 subtree; every method through
# busctl, the CLI's verbs through oomprotectctl, what busctl cannot do
# (pidfds, calls on oneself) through bus-helper. Error names are read from a
# `busctl monitor` of org.oomprotect, which also sees every signal.
#
# Needs root, a writable cgroup2 mount, dbus-daemon, busctl and setpriv;
# exits 77 with the reason when something is missing.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_CTL:?}" "${OOMPROTECT_BUS_HELPER:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and dbus-daemon busctl setpriv pgrep
find_cgroup2

name=oomptestbus$$
top=$name.slice
slice=$name-protected.slice
slice_rel=$top/$slice
mkdir "$CG/$top" 2>/dev/null || skip "the cgroup2 mount $CG is not writable"

tmp=$(mktemp -d /tmp/oomprotect-bus.XXXXXX)
chmod 0755 "$tmp" # the bus socket in it must be reachable for uid 65534
SOCK=$tmp/bus.sock
MON=$tmp/monitor.log
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$SOCK
CTL=$OOMPROTECT_CTL
HELPER=$OOMPROTECT_BUS_HELPER
dbus_pid='' daemon_pid='' monitor_pid=''
children=()

cleanup() {
        local rc=$?
        trap - ERR
        sandbox_cleanup "$rc" "$monitor_pid" "$daemon_pid" "$dbus_pid"
}
trap cleanup EXIT
set -E
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND exited with $?" >&2' ERR

# ---- helpers ----





as_nobody() {
        setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}
as_member() {
        setpriv --reuid=65534 --regid=65534 --groups="$users_gid" "$@"
}

assert_protected() { # PID [ADJ]
        assert_eq "$(cg_of "$1")" "/$slice_rel/oomprotect-$1.scope" "cgroup of $1"
        assert_eq "$(adj_of "$1")" "${2:-$protect_adj}" "oom_score_adj of $1"
}
assert_unchanged() { # PID SUB ADJ
        assert_eq "$(cg_of "$1")" "/$top/$2" "cgroup of $1"
        assert_eq "$(adj_of "$1")" "$3" "oom_score_adj of $1"
}


count_errors() {
        grep -c '"type":"error"' "$MON" || true
}
errors_above() {
        (($(count_errors) > $1))
}
# expect_error NAME CMD...: CMD fails, and the daemon's error reply (seen by the monitor) is NAME.
expect_error() {
        local want=$1 before out got
        shift
        before=$(count_errors)
        if out=$("$@" 2>&1); then
                fail "$* succeeded; expected $want"
        fi
        wait_until 5 errors_above "$before" || fail "$*: no error reply from the daemon ($out)"
        got=$(grep '"type":"error"' "$MON" | tail -n 1 | sed 's/.*"error_name":"\([^"]*\)".*/\1/')
        assert_eq "$got" "$want" "error of: $* ($out)"
}
# expect_exit CODE CMD...: CMD exits with CODE; its output is in $out.
expect_exit() {
        local want=$1 rc=0
        shift
        out=$("$@" 2>&1) || rc=$?
        assert_eq "$rc" "$want" "exit status of: $* ($out)"
}

has_line() {
        grep -qF -- "$1" "$2"
}
expect_signal() { # PID BOOL REASON
        wait_until 5 has_line "\"member\":\"ProtectionChanged\",\"payload\":{\"type\":\"ubs\",\"data\":[$1,$2,\"$3\"]}" \
                "$MON" || fail "no ProtectionChanged($1, $2, \"$3\") signal"
}
expect_count() {
        assert_eq "$(prop ProtectedCount)" "u $1" "ProtectedCount"
}

write_config() { # PATH SLICE STATEDIR
        cat >"$1" <<EOF
[Manager]
Backend=cgroupfs
CgroupRoot=$CG
Slice=$2
StateDirectory=$3
CompatDirectory=$3/compat
OOMScoreAdjust=$protect_adj
AllowGroup=users
MemoryMinBudget=64M
EOF
}

daemon_alive() {
        kill -0 "$daemon_pid" 2>/dev/null
}

start_daemon() {
        "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" --log-level=debug >"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 10 name_has_owner || fail "oomprotectd did not acquire org.oomprotect"
}

start_monitor() {
        busctl monitor --json=short org.oomprotect >"$MON" 2>&1 &
        monitor_pid=$!
        # Synchronize: the monitor is listening once it reports a call we make.
        # shellcheck disable=SC2016 # $0 is the inner sh's argument
        wait_until 10 sh -c 'busctl call org.oomprotect /org/oomprotect org.freedesktop.DBus.Peer Ping >/dev/null &&
                grep -qF "\"member\":\"Ping\"" "$0"' "$MON" || fail "busctl monitor did not start"
}

# ---- the environment ----

if sh -c 'echo -1 >/proc/self/oom_score_adj' 2>/dev/null; then
        protect_adj=-1000 child_adj=0 custom_adj=-500
else
        protect_adj=0 child_adj=700 custom_adj=100
        note "no CAP_SYS_RESOURCE here: protecting with oom_score_adj 0 from 700"
fi
users_gid=$(getent group users | cut -d: -f3)
[[ -n $users_gid ]] || skip "there is no group \"users\" for the AllowGroup= tests"

write_config "$tmp/oomprotectd.conf" "$slice" "$tmp/state"

# ---- before the bus ----

test_daemon_exits_when_the_bus_is_unreachable() {
        local rc=0
        write_config "$tmp/nobus.conf" "$name-nobus-protected.slice" "$tmp/nobus"
        DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/nonexistent timeout 20 "$OOMPROTECT_DAEMON" \
                --config="$tmp/nobus.conf" >"$tmp/nobus.log" 2>&1 || rc=$?
        [[ $rc -ne 0 && $rc -ne 124 ]] || fail "oomprotectd without a bus exited with $rc"
        grep -q "Failed to connect to the system bus" "$tmp/nobus.log" || fail "no clear error: $(cat "$tmp/nobus.log")"
        ok "oomprotectd exits non-zero with a clear error when the system bus is unreachable"
}

start_bus() {
        start_private_bus "$tmp"
}

test_ctl_says_the_daemon_is_not_running() {
        expect_exit 3 "$CTL" status
        [[ $out == *"oomprotectd is not running (no org.oomprotect on the system bus)"* ]] || fail "message: $out"
        ok "oomprotectctl exits 3 with a clear message when nobody owns org.oomprotect"
}

# ---- the interface ----

interface_lines() {
        grep -oE '<(method|signal|property|arg|annotation) [^>]*>' | sed 's/ *\/>$/>/; s/>$//'
}
test_introspection_matches_the_shipped_xml() {
        busctl introspect org.oomprotect /org/oomprotect >/dev/null || fail "busctl introspect failed"
        busctl introspect --xml-interface org.oomprotect /org/oomprotect |
                sed -n '/<interface name="org.oomprotect.Manager">/,/<\/interface>/p' | interface_lines >"$tmp/live"
        sed -n '/<interface name="org.oomprotect.Manager">/,/<\/interface>/p' \
                "$OOMPROTECT_SRCDIR/conf/org.oomprotect.Manager.xml" | interface_lines >"$tmp/shipped"
        diff -u "$tmp/shipped" "$tmp/live" || fail "conf/org.oomprotect.Manager.xml differs from the introspection"
        grep -q 'name="pid"' "$tmp/live" || fail "arguments are not named"
        ok "introspection names every argument and matches conf/org.oomprotect.Manager.xml"
}

test_properties() {
        assert_eq "$(prop Version)" 's "0.1.0"' Version
        assert_eq "$(prop Backend)" 's "cgroupfs"' Backend
        assert_eq "$(prop Slice)" "s \"$slice\"" Slice
        assert_eq "$(prop MemoryMinBudget)" "t $((64 * 1024 * 1024))" MemoryMinBudget
        assert_eq "$(prop MemoryMinInUse)" "t 0" MemoryMinInUse
        expect_count 0
        busctl introspect org.oomprotect /org/oomprotect org.oomprotect.Manager |
                grep -E '^\.(ProtectedCount|MemoryMinInUse) ' | grep -q emits-change || fail "counters do not emit changes"
        ok "properties Version, Backend, Slice, MemoryMinBudget, MemoryMinInUse, ProtectedCount"
}

# ---- protect and unprotect ----

list_has() { # REGEX
        busctl --json=short call org.oomprotect /org/oomprotect org.oomprotect.Manager ListProtected |
                grep -qE -- "$1"
}

test_protect_unprotect_with_signals() {
        spawn_in orig "$child_adj" sleep sleep 1000
        local pid=$spawned
        assert_eq "$(mgr IsProtected u "$pid")" "b false" "IsProtected before"
        mgr Protect u "$pid" >/dev/null
        assert_protected "$pid"
        assert_eq "$(mgr IsProtected u "$pid")" "b true" "IsProtected after"
        expect_count 1
        expect_signal "$pid" true protected
        wait_until 5 has_line '"ProtectedCount":{"type":"u","data":1}' "$MON" || fail "no PropertiesChanged for the count"
        list_has "\[$pid,\"sleep\",\"/$top/orig\",\"/$slice_rel/oomprotect-$pid.scope\",$child_adj,$protect_adj,0,[0-9]+,\"dbus\",\"\"\]" ||
                fail "ListProtected: $(mgr ListProtected)"
        mgr Protect u "$pid" >/dev/null # again: no-op
        expect_count 1

        mgr Unprotect u "$pid" >/dev/null
        assert_unchanged "$pid" orig "$child_adj"
        [[ ! -d $CG/$slice_rel/oomprotect-$pid.scope ]] || fail "the scope is left"
        expect_signal "$pid" false unprotected
        expect_count 0
        assert_eq "$(mgr ListProtected)" "a(usssiittss) 0" "ListProtected when empty"
        victim=$pid
        ok "Protect/Unprotect restore exactly, signal ProtectionChanged and PropertiesChanged, ListProtected lists"
}

test_protect_with_options_and_unprotect_tag() {
        spawn_in tree "$child_adj" sh sh -c 'sleep 1000 & wait'
        local pid=$spawned kid
        wait_until 5 pgrep -P "$pid" sleep >/dev/null || fail "no child under $pid"
        kid=$(pgrep -P "$pid" sleep)
        mgr ProtectWithOptions 'ua{sv}' "$pid" 6 MemoryMin t 16777216 MemoryLow t 33554432 \
                OOMScoreAdjust i "$custom_adj" OOMGroup b true Descendants b true Tag s web >/dev/null
        assert_protected "$pid" "$custom_adj"
        assert_eq "$(cg_of "$kid")" "/$slice_rel/oomprotect-$pid.scope" "the child moved with Descendants=true"
        assert_eq "$(prop MemoryMinInUse)" "t 16777216" MemoryMinInUse
        list_has "\[$pid,\"sh\",\"/$top/tree\",\"/$slice_rel/oomprotect-$pid.scope\",$child_adj,$custom_adj,16777216,[0-9]+,\"dbus\",\"web\"\]" ||
                fail "ListProtected: $(mgr ListProtected)"
        assert_eq "$(mgr UnprotectTag s nosuchtag)" "u 0" "UnprotectTag of an unknown tag"
        assert_eq "$(mgr UnprotectTag s web)" "u 1" "UnprotectTag"
        assert_unchanged "$pid" tree "$child_adj"
        assert_eq "$(cg_of "$kid")" "/$top/tree" "the child went back"
        assert_eq "$(prop MemoryMinInUse)" "t 0" MemoryMinInUse
        ok "ProtectWithOptions takes every key (MemoryMin, MemoryLow, OOMScoreAdjust, OOMGroup, Descendants, Tag); UnprotectTag"
}

test_protect_pidfd() {
        local out
        out=$("$HELPER" pidfd "$victim" viafd) # busctl cannot pass file descriptors
        assert_eq "$out" "protect-pidfd=ok" "ProtectPidfd"
        assert_protected "$victim"
        list_has "\[$victim,.*\"viafd\"\]" || fail "the tag did not arrive"
        out=$("$HELPER" pidfd-exited)
        assert_eq "$out" "protect-pidfd-exited=org.oomprotect.Error.NoSuchProcess" "ProtectPidfd of an exited process"
        out=$("$HELPER" pidfd-notpidfd)
        assert_eq "$out" "protect-notpidfd=org.oomprotect.Error.InvalidArgument" "ProtectPidfd of /dev/null"
        assert_eq "$(mgr UnprotectAll)" "u 1" "UnprotectAll"
        assert_unchanged "$victim" orig "$child_adj"
        ok "ProtectPidfd with a pidfd (and Tag); an exited process and a non-pidfd are refused; UnprotectAll"
}

test_protect_in_place() {
        spawn_in inplace "$child_adj" sleep sleep 1000
        local pid=$spawned
        mgr ProtectWithOptions 'ua{sv}' "$pid" 1 InPlace b true >/dev/null
        assert_eq "$(cg_of "$pid")" "/$top/inplace" "cgroup of $pid protected in place"
        assert_eq "$(adj_of "$pid")" "$protect_adj" "oom_score_adj of $pid protected in place"
        assert_eq "$(mgr IsProtected u "$pid")" "b true" "IsProtected in place"
        list_has "\[$pid,\"sleep\",\"/$top/inplace\",\"\"," || fail "ListProtected: no in-place record without a scope"
        mgr Unprotect u "$pid" >/dev/null
        assert_unchanged "$pid" inplace "$child_adj"
        # The same through oomprotectctl (and liboomprotect's in_place field).
        "$CTL" protect --in-place "$pid" || fail "oomprotectctl protect --in-place $pid failed"
        assert_eq "$(cg_of "$pid")" "/$top/inplace" "cgroup of $pid after protect --in-place"
        assert_eq "$(adj_of "$pid")" "$protect_adj" "oom_score_adj of $pid after protect --in-place"
        "$CTL" status | grep -qE "^$pid +sleep +in-place " || fail "status does not show $pid in-place: $("$CTL" status)"
        "$CTL" status --json | grep -q '"kind": *"in-place"' || fail "status --json has no \"kind\": \"in-place\""
        "$CTL" unprotect "$pid" || fail "oomprotectctl unprotect $pid failed"
        assert_unchanged "$pid" inplace "$child_adj"
        local rc=0
        "$CTL" protect --in-place --move "$pid" 2>/dev/null || rc=$?
        assert_eq "$rc" 2 "exit code of protect --in-place --move"
        ok "ProtectWithOptions InPlace=true (and protect --in-place) protects where the process is (no scope); Unprotect restores it"
}

# ProtectWithOptions on a protected process changes its settings (it used to keep the old ones silently).
test_protect_again_changes_the_settings() {
        spawn_in again "$child_adj" sleep sleep 1000
        local pid=$spawned
        mgr Protect u "$pid" >/dev/null
        assert_eq "$(adj_of "$pid")" "$protect_adj" "oom_score_adj after Protect"
        mgr ProtectWithOptions 'ua{sv}' "$pid" 1 OOMScoreAdjust i "$custom_adj" >/dev/null
        assert_eq "$(adj_of "$pid")" "$custom_adj" "oom_score_adj after ProtectWithOptions(OOMScoreAdjust)"
        list_has "\[$pid,\"sleep\",\"[^\"]*\",\"[^\"]*\",$child_adj,$custom_adj," ||
                fail "ListProtected does not show the new applied adj $custom_adj"
        mgr Unprotect u "$pid" >/dev/null
        assert_unchanged "$pid" again "$child_adj"
        ok "ProtectWithOptions on a protected process changes its settings; Unprotect restores the original"
}

self_in_cgroup() { # SUB WRAPPER...: bus-helper self, run inside <top>/SUB
        local sub=$1
        shift
        mkdir -p "$CG/$top/$sub"
        sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && shift 2 && exec "$@"' \
                self "$CG/$top/$sub" "$child_adj" "$@" "$HELPER" self
}

# SetSelfProtection from a connection whose connecting process exited (issue 10, class 1): its PID names no
# one, or a newcomer that holds no connection to the bus; either way nothing is protected.
test_self_protection_of_an_exited_connector_is_refused() {
        local out newcomer
        mkdir -p "$CG/$top/orphan"
        out=$(sh -c 'echo $$ >"$1/cgroup.procs" && shift && "$@" && exec "$@" reuse' orphan "$CG/$top/orphan" \
                "$HELPER" self-orphan)
        assert_eq "$(sed -n 's/^set-orphan=//p' <<<"$out" | head -n 1)" org.oomprotect.Error.NoSuchProcess \
                "SetSelfProtection after the connecting process exited"
        newcomer=$(sed -n 's/^newcomer=//p' <<<"$out")
        if [[ $newcomer == missed ]]; then
                note "another process took the exited PID first: the PID-reuse case was not tried this run"
        else
                assert_eq "$(sed -n 's/^set-orphan=//p' <<<"$out" | tail -n 1)" org.oomprotect.Error.InvalidProcess \
                        "SetSelfProtection when the connecting PID names a newcomer"
                assert_eq "$(sed -n 's/^newcomer-unchanged=//p' <<<"$out")" yes "the newcomer's cgroup and adj"
        fi
        assert_eq "$(prop ProtectedCount)" "u 0" "ProtectedCount after refused SetSelfProtection"
        ok "SetSelfProtection of a connection whose process exited: refused, a newcomer at its PID untouched"
}

test_self_protection() {
        local out pid
        out=$(self_in_cgroup self)
        pid=$(sed -n 's/^pid=//p' <<<"$out")
        assert_eq "$(sed -n 's/^get-before=//p' <<<"$out")" no "GetSelfProtection before"
        assert_eq "$(sed -n 's/^set-true=//p' <<<"$out")" ok "SetSelfProtection(true)"
        assert_eq "$(sed -n 's/^get-after-set=//p' <<<"$out")" yes "GetSelfProtection after"
        assert_eq "$(sed -n 's/^cgroup=//p' <<<"$out" | head -n 1)" "/$slice_rel/oomprotect-$pid.scope" "own cgroup"
        assert_eq "$(sed -n 's/^adj=//p' <<<"$out" | head -n 1)" "$protect_adj" "own adj"
        assert_eq "$(sed -n 's/^set-true-again=//p' <<<"$out")" ok "SetSelfProtection(true) again"
        assert_eq "$(sed -n 's/^set-false=//p' <<<"$out")" ok "SetSelfProtection(false)"
        assert_eq "$(sed -n 's/^get-after-unset=//p' <<<"$out")" no "GetSelfProtection after unset"
        assert_eq "$(sed -n 's/^cgroup=//p' <<<"$out" | tail -n 1)" "/$top/self" "own cgroup restored"
        assert_eq "$(sed -n 's/^adj=//p' <<<"$out" | tail -n 1)" "$child_adj" "own adj restored"
        assert_eq "$(sed -n 's/^set-false-again=//p' <<<"$out")" ok "SetSelfProtection(false) when unprotected"
        expect_signal "$pid" true protected
        expect_signal "$pid" false unprotected

        out=$(self_in_cgroup self-nobody setpriv --reuid=65534 --regid=65534 --clear-groups)
        assert_eq "$(sed -n 's/^set-true=//p' <<<"$out")" org.oomprotect.Error.PermissionDenied "SetSelfProtection, nobody"
        assert_eq "$(sed -n 's/^get-after-set=//p' <<<"$out")" no "GetSelfProtection, nobody"

        out=$(self_in_cgroup self-member setpriv --reuid=65534 --regid=65534 --groups="$users_gid")
        assert_eq "$(sed -n 's/^set-true=//p' <<<"$out")" ok "SetSelfProtection, group member"
        assert_eq "$(sed -n 's/^get-after-set=//p' <<<"$out")" yes "GetSelfProtection, group member"
        assert_eq "$(sed -n 's/^set-false=//p' <<<"$out")" ok "SetSelfProtection(false), group member"
        expect_count 0

        # busctl as the caller: protected for the instant before it exits, and the exit is seen.
        assert_eq "$(mgr GetSelfProtection)" "b false" "GetSelfProtection through busctl"
        sh -c 'echo $$ >"$1/cgroup.procs" && echo $$ >"$2" && exec busctl call org.oomprotect /org/oomprotect \
                org.oomprotect.Manager SetSelfProtection b true' self "$CG/$top/self" "$tmp/busctl.pid"
        pid=$(cat "$tmp/busctl.pid")
        expect_signal "$pid" true protected
        expect_signal "$pid" false exited
        expect_count 0
        ok "SetSelfProtection/GetSelfProtection act on the caller's PID: root and a group member may, others may not"
}

# ---- bad arguments: named errors, nothing changes ----

find_kernel_thread() {
        local f s rest
        for f in /proc/[0-9]*/stat; do
                s=$(cat "$f" 2>/dev/null) || continue
                rest=${s##*) }
                read -r -a fields <<<"$rest"
                if (((fields[6] & 0x200000) != 0)); then
                        s=${f#/proc/}
                        echo "${s%/stat}"
                        return 0
                fi
        done
        return 1
}
find_thread() {
        local t pid
        for t in /proc/[0-9]*/task/[0-9]*; do
                pid=${t#/proc/}
                pid=${pid%%/*}
                [[ ${t##*/} != "$pid" ]] && echo "${t##*/}" && return 0
        done
        return 1
}
is_zombie() {
        [[ $(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) == Z ]]
}

test_bad_arguments_get_named_errors_and_change_nothing() {
        local gone kt tid zombie
        spawn_in gone 0 sleep sleep 1000
        gone=$spawned
        kill -KILL "$gone"
        wait "$gone" 2>/dev/null || true
        spawn_in zombie "$child_adj" sleep sh -c 'sleep 0.01 & exec sleep 1000'
        wait_until 5 pgrep -P "$spawned" >/dev/null || fail "no zombie child"
        zombie=$(pgrep -P "$spawned")
        wait_until 5 is_zombie "$zombie" || fail "$zombie did not become a zombie"

        expect_error org.oomprotect.Error.InvalidArgument mgr Protect u 0
        expect_error org.oomprotect.Error.InvalidArgument mgr Protect u 4194305
        expect_error org.oomprotect.Error.InvalidProcess mgr Protect u 1
        expect_error org.oomprotect.Error.InvalidProcess mgr Protect u "$daemon_pid"
        expect_error org.oomprotect.Error.NoSuchProcess mgr Protect u "$gone"
        expect_error org.oomprotect.Error.NoSuchProcess mgr Protect u "$zombie"
        if kt=$(find_kernel_thread); then
                expect_error org.oomprotect.Error.InvalidProcess mgr Protect u "$kt"
        else
                note "no kernel thread is visible here (a PID namespace): not tested"
        fi
        if tid=$(find_thread); then
                expect_error org.oomprotect.Error.InvalidProcess mgr Protect u "$tid"
        else
                note "no multi-threaded process is visible: thread IDs not tested"
        fi
        expect_error org.oomprotect.Error.InvalidArgument mgr ProtectWithOptions 'ua{sv}' "$victim" 1 Colour s red
        expect_error org.oomprotect.Error.InvalidArgument mgr ProtectWithOptions 'ua{sv}' "$victim" 1 MemoryMin u 1
        expect_error org.oomprotect.Error.InvalidArgument mgr ProtectWithOptions 'ua{sv}' "$victim" 1 OOMGroup s yes
        expect_error org.oomprotect.Error.InvalidArgument mgr ProtectWithOptions 'ua{sv}' "$victim" 1 Tag i 5
        expect_error org.oomprotect.Error.InvalidArgument mgr ProtectWithOptions 'ua{sv}' "$victim" 2 Tag s a Tag s b
        expect_error org.oomprotect.Error.InvalidArgument mgr ProtectWithOptions 'ua{sv}' "$victim" 1 Tag s ""
        expect_error org.oomprotect.Error.InvalidArgument mgr ProtectWithOptions 'ua{sv}' "$victim" 1 \
                OOMScoreAdjust i 1001
        expect_error org.oomprotect.Error.OverBudget mgr ProtectWithOptions 'ua{sv}' "$victim" 1 \
                MemoryMin t $((128 * 1024 * 1024))
        expect_error org.oomprotect.Error.NotProtected mgr Unprotect u "$victim"
        expect_error org.oomprotect.Error.InvalidArgument mgr Unprotect u 0
        expect_error org.oomprotect.Error.InvalidArgument mgr UnprotectTag s ""
        expect_error org.oomprotect.Error.InvalidArgument mgr IsProtected u 0
        grep -q '"error_name":"org.oomprotect.Error.InvalidArgument","payload":{"type":"s","data":\["Unknown option \\"Colour\\"' \
                "$MON" || fail "the unknown key is not named"
        grep -q 'Option MemoryMin must be of type' "$MON" || fail "the wrongly typed key is not named"
        assert_unchanged "$victim" orig "$child_adj"
        expect_count 0
        local left=("$CG/$slice_rel"/oomprotect-*)
        [[ ! -e ${left[0]} ]] || fail "a scope was left behind: ${left[*]}"
        ok "PID 0, out-of-range, PID 1, the daemon, vanished, zombie (and kernel thread/thread where visible), unknown/duplicate/mistyped keys, over budget: named errors, nothing changed"
}

# ---- authorization ----

test_others_may_read_but_not_write() {
        spawn_in nobody-own "$child_adj" sleep setpriv --reuid=65534 --regid=65534 --clear-groups sleep 1000
        local own=$spawned
        mgr Protect u "$victim" >/dev/null
        expect_error org.oomprotect.Error.PermissionDenied as_nobody busctl call org.oomprotect /org/oomprotect \
                org.oomprotect.Manager Unprotect u "$victim"
        expect_error org.oomprotect.Error.PermissionDenied as_nobody busctl call org.oomprotect /org/oomprotect \
                org.oomprotect.Manager Protect u "$own"
        expect_error org.oomprotect.Error.PermissionDenied as_nobody busctl call org.oomprotect /org/oomprotect \
                org.oomprotect.Manager ProtectWithOptions 'ua{sv}' "$own" 0
        expect_error org.oomprotect.Error.PermissionDenied as_nobody busctl call org.oomprotect /org/oomprotect \
                org.oomprotect.Manager UnprotectAll
        expect_error org.oomprotect.Error.PermissionDenied as_nobody busctl call org.oomprotect /org/oomprotect \
                org.oomprotect.Manager UnprotectTag s web
        assert_protected "$victim"
        assert_unchanged "$own" nobody-own "$child_adj"

        assert_eq "$(as_nobody busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager IsProtected u "$victim")" \
                "b true" "IsProtected as nobody"
        as_nobody busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager ListProtected | grep -q "^a(usssiittss) 1 $victim " ||
                fail "ListProtected as nobody"
        as_nobody busctl call org.oomprotect /org/oomprotect org.freedesktop.DBus.Properties GetAll s \
                org.oomprotect.Manager | grep -q ProtectedCount || fail "GetAll as nobody"
        as_nobody busctl introspect org.oomprotect /org/oomprotect >/dev/null || fail "introspection as nobody"

        expect_exit 4 as_nobody "$CTL" protect "$own"
        [[ $out == "oomprotectctl: Only root and members"* ]] || fail "CLI message: $out"
        expect_exit 4 as_nobody "$CTL" unprotect "$victim"
        expect_exit 0 as_nobody "$CTL" status
        [[ $out == *"$victim"* ]] || fail "status as nobody: $out"
        expect_exit 0 as_nobody "$CTL" is-protected "$victim"
        assert_protected "$victim"
        ok "a caller outside AllowGroup= is denied every write (PermissionDenied, CLI exit 4) and may read everything"
        nobody_own=$own
}

test_group_member_may_change_only_its_own() {
        local own=$nobody_own
        expect_error org.oomprotect.Error.PermissionDenied as_member busctl call org.oomprotect /org/oomprotect \
                org.oomprotect.Manager Unprotect u "$victim"
        spawn_in root-other "$child_adj" sleep sleep 1000
        local other=$spawned
        expect_error org.oomprotect.Error.PermissionDenied as_member busctl call org.oomprotect /org/oomprotect \
                org.oomprotect.Manager Protect u "$other"
        assert_unchanged "$other" root-other "$child_adj"

        as_member busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager Protect u "$own" >/dev/null
        assert_protected "$own"
        expect_signal "$own" true protected
        assert_eq "$(as_member busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager UnprotectAll)" "u 1" \
                "UnprotectAll as a member: its own only"
        assert_unchanged "$own" nobody-own "$child_adj"
        assert_protected "$victim"

        expect_exit 0 as_member "$CTL" protect "$own" --tag mine
        assert_protected "$own"
        expect_exit 4 as_member "$CTL" protect "$other"
        expect_exit 0 as_member "$CTL" unprotect --tag mine
        assert_unchanged "$own" nobody-own "$child_adj"
        assert_protected "$victim"
        mgr Unprotect u "$victim" >/dev/null
        ok "a member of AllowGroup= may protect and unprotect its own processes only (busctl and oomprotectctl)"
}

# ---- oomprotectctl ----

test_ctl_verbs() {
        local pid=$victim
        expect_exit 0 "$CTL" --version
        assert_eq "$out" "oomprotectctl 0.1.0" "--version"
        expect_exit 0 "$CTL" --help
        for verb in protect unprotect status is-protected; do
                expect_exit 0 "$CTL" "$verb" --help
                [[ $out == "oomprotectctl $verb"* ]] || fail "$verb --help: $out"
        done
        expect_exit 1 "$CTL" is-protected "$pid"
        assert_eq "$out" no "is-protected"
        expect_exit 1 "$CTL" is-protected -q "$pid"
        assert_eq "$out" "" "is-protected -q"

        expect_exit 2 "$CTL" protect "$pid" --min -1M
        expect_exit 2 "$CTL" protect "$pid" --min lots
        expect_exit 2 "$CTL" protect "$pid" --adj 2000
        expect_exit 2 "$CTL" protect 0
        expect_exit 2 "$CTL" protect
        expect_exit 2 "$CTL" protect "$pid" --frobnicate
        expect_exit 2 "$CTL" unprotect --all "$pid"
        expect_exit 2 "$CTL" frobnicate
        assert_unchanged "$pid" orig "$child_adj"

        expect_exit 1 "$CTL" protect 1
        [[ $out == "oomprotectctl: PID 1 is the init process"* ]] || fail "message: $out"
        expect_exit 1 "$CTL" unprotect "$pid"
        assert_eq "$out" "oomprotectctl: PID $pid is not protected." "message"

        expect_exit 0 "$CTL" protect "$pid" --min 8M --low 16M --adj "$custom_adj" --oom-group --tag cli
        assert_protected "$pid" "$custom_adj"
        expect_exit 0 "$CTL" is-protected "$pid"
        assert_eq "$out" yes "is-protected"
        expect_exit 0 "$CTL" status
        grep -qE "^PID +COMM +KIND +MEMORY.MIN +ADJ +SINCE +SOURCE +TAG +CGROUP$" <<<"$out" || fail "status header: $out"
        grep -qE "^$pid +sleep +moved +8.0M +$child_adj->$custom_adj +[0-9-]+ [0-9:]+ +dbus +cli +/$slice_rel/oomprotect-$pid.scope$" \
                <<<"$out" || fail "status row: $out"
        grep -qE "^1 protected; backend cgroupfs, slice $slice, memory.min 8.0M in use of a budget of 64.0M.$" <<<"$out" ||
                fail "status summary: $out"
        # The guard rail's line: what protected processes hold (sleep's RSS, no memory controller needed) of the ceiling.
        grep -qE "^Protected processes hold [0-9.]+[KMG] of MaxProtectedMemory=[0-9.]+[KMGT]\.$" <<<"$out" ||
                fail "status has no MaxProtectedMemory= line: $out"
        expect_exit 0 "$CTL" status --json
        if command -v jq >/dev/null; then
                jq -e ".protected_count == 1 and .backend == \"cgroupfs\" and .memory_min_in_use == 8388608 and
                        .protections[0].pid == $pid and .protections[0].tag == \"cli\" and
                        .protections[0].applied_adj == $custom_adj" <<<"$out" >/dev/null || fail "status --json: $out"
        else
                note "jq is not installed: status --json checked by text only"
                [[ $out == *"\"protections\":["* && $out == *"\"pid\":$pid"* ]] || fail "status --json: $out"
        fi
        expect_exit 0 "$CTL" unprotect "$pid"
        assert_unchanged "$pid" orig "$child_adj"
        expect_exit 0 "$CTL" protect "$pid"
        assert_protected "$pid"
        expect_exit 0 "$CTL" unprotect --all
        assert_eq "$out" "Unprotected 1 process." "unprotect --all"
        assert_unchanged "$pid" orig "$child_adj"
        expect_exit 0 "$CTL"
        [[ $out == "No processes are protected."* ]] || fail "status: $out"
        ok "oomprotectctl: protect (every option), unprotect (PID, --all, --tag), status (table, --json), is-protected, --help, --version, exit codes"
}

# ---- signals from elsewhere ----

test_exit_is_signalled() {
        spawn_in exiting "$child_adj" sleep sleep 1000
        local pid=$spawned
        mgr Protect u "$pid" >/dev/null
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
        expect_signal "$pid" false exited
        scope_gone() { [[ ! -d $CG/$slice_rel/oomprotect-$pid.scope ]]; }
        wait_until 5 scope_gone || fail "the scope of an exited process is left"
        expect_count 0
        ok "a protected process's exit emits ProtectionChanged(pid, false, \"exited\")"
}

test_compat_changes_are_signalled() {
        local ctl=$tmp/state/compat/ctl
        if [[ ! -p $ctl ]]; then
                note "no compat ctl FIFO (the compat front end is not built yet): not tested"
                return 0
        fi
        echo "setprotection $victim 1" >"$ctl"
        expect_signal "$victim" true protected
        echo "setprotection $victim 0" >"$ctl"
        expect_signal "$victim" false unprotected
        ok "changes through the compat ctl FIFO are signalled on the bus"
}

test_second_daemon_cannot_take_the_name() {
        local rc=0
        write_config "$tmp/second.conf" "$name-second-protected.slice" "$tmp/second"
        timeout 20 "$OOMPROTECT_DAEMON" --config="$tmp/second.conf" >"$tmp/second.log" 2>&1 || rc=$?
        [[ $rc -ne 0 && $rc -ne 124 ]] || fail "a second oomprotectd exited with $rc"
        grep -q "Another process owns org.oomprotect" "$tmp/second.log" || fail "message: $(cat "$tmp/second.log")"
        daemon_alive || fail "the first daemon died"
        ok "a second oomprotectd on the same bus exits with a clear error"
}

test_names_that_are_not_utf8_are_listed_safely() {
        local odd=$'x\377\001y' # invalid UTF-8 and a control character; comm is the executable's name
        ln -s "$(command -v sleep)" "$tmp/$odd"
        spawn_in badname "$child_adj" "$odd" "$tmp/$odd" 1000
        local pid=$spawned
        mgr Protect u "$pid" >/dev/null
        # Escaped by the daemon as \xNN (src/shared/escape.c): JSON shows each backslash doubled.
        list_has "\[$pid,\"x[\\\\]{2}xff[\\\\]{2}x01y\"," || fail "ListProtected: $(busctl --json=short call org.oomprotect \
                /org/oomprotect org.oomprotect.Manager ListProtected)"
        expect_exit 0 "$CTL" status
        grep -qE "^$pid +x\\\\xff\\\\x01y " <<<"$out" || fail "status: $out"
        mgr Unprotect u "$pid" >/dev/null
        ok "a comm that is not UTF-8 still lists (escaped as \\xNN), and oomprotectctl does not print control characters"
}

daemon_exited() {
        ! kill -0 "$daemon_pid" 2>/dev/null || is_zombie "$daemon_pid"
}

test_daemon_exits_when_the_bus_goes_away() {
        local rc=0
        start_daemon
        kill "$dbus_pid"
        wait "$dbus_pid" 2>/dev/null || true
        dbus_pid=
        wait_until 10 daemon_exited || fail "oomprotectd kept running without its bus"
        wait "$daemon_pid" || rc=$?
        daemon_pid=
        [[ $rc -ne 0 ]] || fail "oomprotectd exited with 0 after losing the bus"
        grep -q "Lost the connection to the system bus" "$tmp/daemon.log" || fail "no clear message"
        ok "oomprotectd exits non-zero (for Restart=on-failure) when the bus goes away"
}

# The shipped unit's sandbox (PrivateNetwork=, no CAP_SYS_PTRACE) hides the caller's sockets from the daemon:
# SetSelfProtection then rests on the pidfd and the bus alone (bus-peer.h), and still works.
test_self_protection_in_a_network_namespace_of_its_own() {
        local out
        if ! unshare --net true 2>/dev/null; then
                note "unshare --net is not possible here: SetSelfProtection in a sandbox not tried"
                return 0
        fi
        unshare --net "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" --log-level=debug >"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 10 name_has_owner || fail "oomprotectd did not acquire org.oomprotect in a network namespace"
        out=$(self_in_cgroup self-netns)
        assert_eq "$(sed -n 's/^set-true=//p' <<<"$out")" ok "SetSelfProtection(true), daemon in its own netns: $(grep -E "prove|descriptors|SetSelf" "$tmp/daemon.log" | tail -n 3)"
        assert_eq "$(sed -n 's/^set-false=//p' <<<"$out")" ok "SetSelfProtection(false), daemon in its own netns"
        grep -q "proving it the caller by its pidfd and the bus alone" "$tmp/daemon.log" ||
                fail "the daemon did not say it fell back: $(grep -i 'descriptors' "$tmp/daemon.log")"
        kill -TERM "$daemon_pid"
        wait "$daemon_pid" || fail "oomprotectd in a network namespace did not stop cleanly"
        daemon_pid=
        ok "SetSelfProtection with the caller's sockets out of sight (a network namespace of its own)"
}

# ---- run ----

echo "# cgroup2 at $CG, sandbox $top, work directory $tmp"
test_daemon_exits_when_the_bus_is_unreachable
start_bus
test_ctl_says_the_daemon_is_not_running
start_daemon
start_monitor
test_introspection_matches_the_shipped_xml
test_properties
test_protect_unprotect_with_signals
test_protect_with_options_and_unprotect_tag
test_protect_pidfd
test_protect_in_place
test_protect_again_changes_the_settings
test_self_protection
test_self_protection_of_an_exited_connector_is_refused
test_bad_arguments_get_named_errors_and_change_nothing
test_others_may_read_but_not_write
test_group_member_may_change_only_its_own
test_ctl_verbs
test_names_that_are_not_utf8_are_listed_safely
test_exit_is_signalled
test_compat_changes_are_signalled
test_second_daemon_cannot_take_the_name
note "ProtectedOOMKill needs a memory controller and a real OOM kill: the VM tier covers it"
expect_clean_sigterm
test_self_protection_in_a_network_namespace_of_its_own
test_daemon_exits_when_the_bus_goes_away
echo "# all $n_ok passed"
