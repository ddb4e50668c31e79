#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Units protected by name on the cgroupfs backend, where a unit name means
# the cgroup of that name below the slices: a private dbus-daemon, the real
# oomprotectd, real processes in a real cgroup2 subtree laid out as systemd
# lays out units (<top>.slice/<unit>), ProtectUnit/UnprotectUnit/
# ListProtectedUnits through busctl and oomprotectctl. A "restart" is what
# systemd does: the unit's processes killed, its cgroup removed, made
# again, and a new process started in it. systemd itself (SetUnitProperties,
# UnitRemoved) is the VM tier's (tests/vm/scenarios/70-units.sh).
#
# Needs root, a writable cgroup2 mount, dbus-daemon, busctl and setpriv.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_CTL:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and dbus-daemon busctl setpriv
find_cgroup2

name=oomptestunits$$
top=$name.slice
slice=$name-protected.slice
unit=$name-web.service
mkdir "$CG/$top" 2>/dev/null || skip "the cgroup2 mount $CG is not writable"

tmp=$(mktemp -d /tmp/oomprotect-unitnames.XXXXXX)
chmod 0755 "$tmp"
CTL=$OOMPROTECT_CTL
STATE=$tmp/state/state.json
dbus_pid='' daemon_pid=''
children=()

sandbox_traps daemon_pid dbus_pid

if sh -c 'echo -1 >/proc/self/oom_score_adj' 2>/dev/null; then
        protect_adj=-1000 child_adj=0 custom_adj=-500
else
        protect_adj=0 child_adj=700 custom_adj=100
        note "no CAP_SYS_RESOURCE here: protecting with oom_score_adj 0 from 700"
fi

{
        cgroupfs_config "$tmp/state"
        printf 'OOMScoreAdjust=%s\nAllowGroup=users\nMemoryMinBudget=64M\n' "$protect_adj"
} >"$tmp/oomprotectd.conf"

start_daemon() { sandbox_daemon "$tmp/oomprotectd.conf"; }

# The unit's cgroup: <top>/<unit>, or where a test moves it (as a drop-in's Slice= would).
unit_dir=$CG/$top/$unit

# start_unit ADJ: one process (a shell that keeps a child) in $unit_dir, as PID 1 would start it; $main.
start_unit() {
        mkdir -p "$unit_dir"
        sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && exec sh -c "sleep 1000 & wait"' \
                start "$unit_dir" "$1" &
        main=$!
        children+=("$main")
        wait_until 5 pgrep -P "$main" sleep >/dev/null || fail "the unit's main process $main has no child"
        kid=$(pgrep -P "$main" sleep)
}

# stop_unit: what systemd does on stop: every process killed, the cgroup removed.
stop_unit() {
        kill -KILL "$main" "$kid" 2>/dev/null || true
        wait "$main" 2>/dev/null || true
        rmdir_killed "$unit_dir"
}

# daemon_killed_at POINT CMD...: the daemon started again with OOMPROTECT_FAULT=POINT (src/core/fault.h), CMD
# run against it (it fails: the daemon SIGKILLs itself at POINT, as a kill -9 at that instant would), then a
# daemon without the fault started on the state that one left.
daemon_killed_at() {
        local point=$1 rc=0
        shift
        kill -KILL "$daemon_pid"
        wait "$daemon_pid" 2>/dev/null || true
        OOMPROTECT_FAULT=$point start_daemon
        "$@" >/dev/null 2>&1 && fail "$* succeeded: the daemon did not stop at $point"
        wait "$daemon_pid" || rc=$?
        daemon_pid=
        assert_eq "$rc" 137 "exit status of oomprotectd armed to be killed at $point"
        start_daemon
}

# The units state.json holds as a daemon loads them: the document's "units", then the journal's unit lines in order.
state_units() {
        python3 - "$STATE" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
doc, end = json.JSONDecoder().raw_decode(text)
units = {u["unit"]: u for u in doc.get("units", [])}
for line in text[end:].splitlines():
    if not line.strip():
        continue
    change = json.loads(line)
    if "unit" in change:
        units[change["unit"]["unit"]] = change["unit"]
    elif "ununit" in change:
        units.pop(change["ununit"], None)
print(json.dumps(list(units.values())))
EOF
}
expect_exit() { # CODE CMD...: $out is its output
        local want=$1 rc=0
        shift
        out=$("$@" 2>&1) || rc=$?
        assert_eq "$rc" "$want" "exit status of: $* ($out)"
}

test_bad_unit_names_are_refused_and_change_nothing() {
        local before bad
        before=$(cat "$STATE" 2>/dev/null || true)
        for bad in "nginx" "nginx.target" "system.slice" ".service" "a@.service" "bad/name.service" \
                "$(printf 'x\001.service')" "$(head -c 300 /dev/zero | tr '\0' a).service"; do
                out=$(mgr ProtectUnit 'sa{sv}' "$bad" 0 2>&1) && fail "ProtectUnit \"$bad\" succeeded"
                [[ $out == *"not the name of a unit that can be protected"* ]] || fail "ProtectUnit \"$bad\": $out"
                out=$(mgr UnprotectUnit s "$bad" 2>&1) && fail "UnprotectUnit \"$bad\" succeeded"
        done
        expect_exit 2 "$CTL" protect nginx.target
        [[ $out == *"not a unit name that can be protected"* ]] || fail "message: $out"
        expect_exit 2 "$CTL" protect --tree "$unit"
        expect_exit 2 "$CTL" protect --move "$unit"
        out=$(mgr ProtectUnit 'sa{sv}' "$unit" 1 Descendants b true 2>&1) && fail "Descendants=true was taken"
        [[ $out == *"do not apply"* ]] || fail "Descendants=true: $out"
        out=$(mgr ProtectUnit 'sa{sv}' "$unit" 1 Frobnicate b true 2>&1) && fail "an unknown option was taken"
        assert_eq "$(cat "$STATE" 2>/dev/null || true)" "$before" "state.json after refused requests"
        assert_eq "$(units_list)" '{"type":"a(ssbttitssau)","data":[[]]}' "ListProtectedUnits after refusals"
        ok "bad unit names (no type, a target, a slice, a template, a slash, a control byte, 300 bytes) and options are refused, nothing changes"
}

test_a_unit_that_is_not_running_is_refused() {
        out=$(mgr ProtectUnit 'sa{sv}' "$name-absent.service" 0 2>&1) && fail "an absent unit was protected"
        [[ $out == *"is not running"* ]] || fail "message: $out"
        expect_exit 1 "$CTL" protect "$name-absent.service"
        ok "a unit with no cgroup is refused (NoSuchUnit): it is not running"
}

test_only_root_may_protect_a_unit() {
        out=$(setpriv --reuid=65534 --regid=65534 --clear-groups busctl call org.oomprotect /org/oomprotect \
                org.oomprotect.Manager ProtectUnit 'sa{sv}' "$unit" 0 2>&1) && fail "nobody protected a unit"
        [[ $out == *"not root"* || $out == *"Only root"* ]] || fail "message: $out"
        ok "ProtectUnit from a user who is not root is refused"
}

test_over_budget_is_refused() {
        out=$(mgr ProtectUnit 'sa{sv}' "$unit" 1 MemoryMin t $((128 * 1024 * 1024)) 2>&1) && fail "over budget taken"
        [[ $out == *"exceeds MemoryMinBudget="* ]] || fail "message: $out"
        adj_is "$main" "$child_adj" || fail "the refused protect changed the adj of $main"
        ok "ProtectUnit over MemoryMinBudget= is refused (OverBudget) and changes nothing"
}

# MaxProtectedMemory= counts a unit by name too: what its processes hold (RSS here, without the memory
# controller; memory.current where there is one) must fit under the ceiling.
test_over_ceiling_is_refused() {
        local out
        cp "$tmp/oomprotectd.conf" "$tmp/oomprotectd.conf.saved"
        echo "MaxProtectedMemory=4K" >>"$tmp/oomprotectd.conf"
        kill -HUP "$daemon_pid"
        wait_until 5 ceiling_is "t 4096" || fail "MaxProtectedMemory= is $(ceiling_is), not 4K, after SIGHUP"
        out=$(mgr ProtectUnit 'sa{sv}' "$unit" 0 2>&1) && fail "over the ceiling taken"
        [[ $out == *"MaxProtectedMemory="* ]] || fail "message: $out"
        adj_is "$main" "$child_adj" || fail "the refused protect changed the adj of $main"
        adj_is "$kid" "$child_adj" || fail "the refused protect changed the adj of $kid"
        mv "$tmp/oomprotectd.conf.saved" "$tmp/oomprotectd.conf"
        kill -HUP "$daemon_pid"
        wait_until 5 ceiling_is_not "t 4096" || fail "the ceiling did not go back after SIGHUP"
        ok "ProtectUnit over MaxProtectedMemory= is refused (OverBudget) and changes nothing"
}
# ceiling_is [VALUE]: the daemon's MaxProtectedMemory property is VALUE ("t N"); without one, prints it.
ceiling_is() {
        local v
        v=$(busctl get-property org.oomprotect /org/oomprotect org.oomprotect.Manager MaxProtectedMemory 2>&1)
        (($#)) || { echo "$v"; return 0; }
        [[ $v == "$1" ]]
}
ceiling_is_not() { ! ceiling_is "$1"; }

test_protect_unit_covers_every_process() {
        "$CTL" protect --min 8M "$unit" || fail "oomprotectctl protect $unit failed"
        adj_is "$main" "$protect_adj" || fail "adj of the main process: $(adj_of "$main")"
        adj_is "$kid" "$protect_adj" || fail "adj of its child: $(adj_of "$kid")"
        units_list | grep -qF "[\"$unit\",\"/$top/$unit\",true,8388608,0,$protect_adj," ||
                fail "ListProtectedUnits: $(units_list)"
        assert_eq "$(prop MemoryMinInUse)" "t 8388608" "MemoryMinInUse counts the unit"
        assert_eq "$(mgr IsProtected u "$kid")" "b true" "IsProtected of a process of the unit"
        expect_exit 0 "$CTL" is-protected "$unit"
        expect_exit 0 "$CTL" status "$unit"
        [[ $out == *"$unit"*running*"across its restarts"* ]] || fail "status $unit: $out"
        expect_exit 0 "$CTL" status "$kid"
        [[ $out == *"as a process of $unit"* ]] || fail "status $kid: $out"
        "$CTL" status --json | grep -q "\"survives_restart\": *true" || fail "status --json has no unit"
        [[ $(state_units) == *"\"unit\": \"$unit\""*"\"state\": \"active\""* ]] || fail "state.json: $(state_units)"
        out=$(mgr ProtectUnit 'sa{sv}' "$unit" 1 MemoryMin t $((128 * 1024 * 1024)) 2>&1) && fail "raise over budget taken"
        assert_eq "$(prop MemoryMinInUse)" "t 8388608" "MemoryMinInUse after a refused raise"
        ok "protect UNIT: every process gets the adj, listed, counted in the budget, persisted; status UNIT and PID say so"
}

test_restart_keeps_the_protection() {
        local old_main=$main
        stop_unit
        units_list | grep -qF "[\"$unit\",\"/$top/$unit\",false," || fail "stopped: $(units_list)"
        start_unit "$child_adj"
        [[ $main != "$old_main" ]] || fail "no new process"
        wait_until 5 adj_is "$main" "$protect_adj" || fail "the new main process $main has adj $(adj_of "$main")"
        wait_until 5 adj_is "$kid" "$protect_adj" || fail "its child $kid has adj $(adj_of "$kid")"
        ok "a restart (cgroup removed, made again, new processes) keeps the unit protected: the new processes get the adj"
}

test_daemon_restart_reloads_the_record() {
        kill -KILL "$daemon_pid"
        wait "$daemon_pid" 2>/dev/null || true
        daemon_pid=
        start_daemon
        units_list | grep -qF "[\"$unit\",\"/$top/$unit\",true,8388608," || fail "after a restart: $(units_list)"
        stop_unit
        start_unit "$child_adj"
        wait_until 5 adj_is "$main" "$protect_adj" || fail "after a daemon restart, the new main process has $(adj_of "$main")"
        ok "a killed daemon reloads the unit's record and keeps protecting its restarts"
}

test_protect_again_changes_the_adj() {
        mgr ProtectUnit 'sa{sv}' "$unit" 1 OOMScoreAdjust i "$custom_adj" >/dev/null
        adj_is "$main" "$custom_adj" || fail "adj after the update: $(adj_of "$main")"
        ok "ProtectUnit again changes the settings of every process it covers"
}

test_unprotect_restores_exactly() {
        "$CTL" unprotect "$unit" || fail "oomprotectctl unprotect $unit failed"
        adj_is "$main" "$child_adj" || fail "adj of $main after unprotect: $(adj_of "$main")"
        adj_is "$kid" "$child_adj" || fail "adj of $kid after unprotect: $(adj_of "$kid")"
        assert_eq "$(units_list)" '{"type":"a(ssbttitssau)","data":[[]]}' "ListProtectedUnits after unprotect"
        assert_eq "$(state_units)" "[]" "units in state.json after unprotect"
        assert_eq "$(prop MemoryMinInUse)" "t 0" "MemoryMinInUse after unprotect"
        expect_exit 1 "$CTL" is-protected "$unit"
        expect_exit 1 "$CTL" unprotect "$unit"
        [[ $out == *"is not protected"* ]] || fail "message: $out"
        stop_unit
        start_unit "$child_adj"
        sleep 0.3
        adj_is "$main" "$child_adj" || fail "a restart after unprotect was protected again"
        ok "unprotect UNIT puts every adj back, forgets the record; a later restart is left alone"
}

# `unprotect --all` (UnprotectAll) ends a protection by name too, counted with the processes: after
# it nothing the daemon applied is left (prerm runs it before the package goes).
test_unprotect_all_takes_units_too() {
        "$CTL" protect "$unit" >/dev/null || fail "protect $unit failed"
        adj_is "$kid" "$protect_adj" || fail "adj of $kid: $(adj_of "$kid")"
        assert_eq "$(mgr UnprotectAll)" "u 1" "UnprotectAll with one unit protected"
        adj_is "$main" "$child_adj" || fail "adj of $main after UnprotectAll: $(adj_of "$main")"
        adj_is "$kid" "$child_adj" || fail "adj of $kid after UnprotectAll: $(adj_of "$kid")"
        assert_eq "$(state_units)" "[]" "units in state.json after UnprotectAll"
        assert_eq "$(prop MemoryMinInUse)" "t 0" "MemoryMinInUse after UnprotectAll"
        ok "UnprotectAll unprotects a unit protected by name too, and counts it"
}

update_points=(unit:update-scanned unit:update-persisted unit:update-raised unit:update-applied)

# unprotected_exactly WHEN: after an unprotect, both processes have their adj back and state.json knows no unit.
unprotected_exactly() {
        adj_is "$main" "$child_adj" || fail "$1: adj of $main after unprotect: $(adj_of "$main")"
        adj_is "$kid" "$child_adj" || fail "$1: adj of $kid after unprotect: $(adj_of "$kid")"
        assert_eq "$(state_units)" "[]" "$1: units in state.json after unprotect"
}

test_an_update_killed_at_each_step_keeps_the_originals() {
        local point
        for point in "${update_points[@]}"; do
                mgr ProtectUnit 'sa{sv}' "$unit" 1 OOMScoreAdjust i "$protect_adj" >/dev/null
                adj_is "$kid" "$protect_adj" || fail "$point: not protected: $(adj_of "$kid")"
                daemon_killed_at "$point" mgr ProtectUnit 'sa{sv}' "$unit" 1 OOMScoreAdjust i "$custom_adj"
                units_list | grep -qF "[\"$unit\"," || fail "killed at $point: the unit is not listed: $(units_list)"
                "$CTL" unprotect "$unit" || fail "unprotect after a kill at $point failed"
                unprotected_exactly "killed at $point"
        done
        ok "an update of a unit's adj killed at each step (${update_points[*]}): the next daemon puts every original back"
}

test_following_a_moved_unit_killed_at_each_step_keeps_the_originals() {
        local point home=$unit_dir
        for point in "${update_points[@]}"; do
                "$CTL" protect "$unit" || fail "$point: protect failed"
                stop_unit
                unit_dir=$CG/$top/$name-moved.slice/$unit # it runs elsewhere now, as after a drop-in's Slice=
                start_unit "$child_adj"
                daemon_killed_at "$point" mgr ProtectUnit 'sa{sv}' "$unit" 0
                "$CTL" unprotect "$unit" || fail "unprotect after a kill at $point failed"
                unprotected_exactly "following killed at $point"
                stop_unit
                rmdir "$CG/$top/$name-moved.slice"
                unit_dir=$home
                start_unit "$child_adj"
        done
        ok "ProtectUnit following a unit to its new cgroup, killed at each step: the next daemon puts every original back"
}

# UnprotectAll while a ProtectUnit is still under way (its hold writes slowed down to 0.6 s): it waits for it
# and takes the unit too, as it waits for a Protect under way; it did not count or restore the unit.
test_unprotect_all_waits_for_a_protect_unit_under_way() {
        local pid out
        kill -TERM "$daemon_pid"
        wait "$daemon_pid" || fail "oomprotectd did not stop cleanly"
        OOMPROTECT_TEST_BACKEND_DELAY_USEC=600000 start_daemon
        mgr ProtectUnit 'sa{sv}' "$unit" 0 >/dev/null &
        pid=$!
        sleep 0.2 # under way
        out=$(mgr UnprotectAll) || fail "UnprotectAll failed: $out"
        wait "$pid" || fail "ProtectUnit $unit failed"
        assert_eq "$out" "u 1" "UnprotectAll with a ProtectUnit under way"
        assert_eq "$(state_units)" "[]" "units in state.json after UnprotectAll"
        adj_is "$main" "$child_adj" || fail "adj of $main after UnprotectAll: $(adj_of "$main")"
        adj_is "$kid" "$child_adj" || fail "adj of $kid after UnprotectAll: $(adj_of "$kid")"
        kill -TERM "$daemon_pid"
        wait "$daemon_pid" || fail "oomprotectd did not stop cleanly"
        start_daemon
        ok "UnprotectAll waits for a ProtectUnit under way, then unprotects and counts the unit"
}

# oomprotectctl drop-in, into a directory of the test's own (no systemd here: no reload, no restart).
test_drop_in() {
        local file=$tmp/etc/$unit.d/50-oomprotect.conf compat=$tmp/state/compat/status
        export OOMPROTECT_SYSTEMD_SYSTEM_DIR=$tmp/etc
        mkdir -p "$tmp/etc"
        expect_exit 1 "$CTL" drop-in "$unit" --min 128M
        [[ $out == *"exceeds MemoryMinBudget="* ]] || fail "drop-in over budget: $out"
        [[ ! -e $file ]] || fail "a refused drop-in was written"
        expect_exit 2 "$CTL" drop-in "$name-x.scope"
        expect_exit 2 "$CTL" drop-in "$unit" --remove --min 1M
        expect_exit 0 "$CTL" drop-in "$unit" --min 4M --adj "$custom_adj" --slice
        [[ $out == *"accounted under"* ]] || fail "--slice does not say that the accounting changes: $out"
        grep -qx '\[Service\]' "$file" || fail "no [Service] in $(cat "$file")"
        grep -qx "OOMScoreAdjust=$custom_adj" "$file" || fail "OOMScoreAdjust in $(cat "$file")"
        grep -qx "MemoryMin=4194304" "$file" || fail "MemoryMin in $(cat "$file")"
        grep -qx "ManagedOOMPreference=omit" "$file" || fail "ManagedOOMPreference in $(cat "$file")"
        grep -qx "Slice=protected.slice" "$file" || fail "Slice in $(cat "$file")"
        adj_is "$main" "$custom_adj" || fail "the running unit did not get the adj: $(adj_of "$main")"
        units_list | grep -qF "[\"$unit\",\"/$top/$unit\",true,4194304,0,$custom_adj," || fail "not listed: $(units_list)"
        busctl --json=short call org.oomprotect /org/oomprotect org.oomprotect.Manager ListProtected |
                grep -qE "\[$main,\"sh\",\"/$top/$unit\",\"\",$child_adj,$custom_adj,0,[0-9]+,\"drop-in\"" ||
                fail "ListProtected does not list $main with source drop-in: $(mgr ListProtected)"
        wait_until 5 grep -qE "^$main +sh" "$compat" || fail "the compat status lacks $main: $(cat "$compat")"
        grep -qE "^$kid +sleep" "$compat" || fail "the compat status lacks $kid: $(cat "$compat")"
        assert_eq "$(prop MemoryMinInUse)" "t 4194304" "MemoryMinInUse counts the drop-in"
        expect_exit 0 "$CTL" drop-in "$unit" --remove
        [[ ! -e $file && ! -d $tmp/etc/$unit.d ]] || fail "the drop-in (or its directory) is left"
        adj_is "$main" "$child_adj" || fail "adj after --remove: $(adj_of "$main")"
        wait_until 5 sh -c "! grep -qE '^$main ' '$compat'" || fail "the compat status still lists $main"
        expect_exit 1 "$CTL" drop-in "$unit" --remove
        unset OOMPROTECT_SYSTEMD_SYSTEM_DIR
        ok "drop-in: refused over budget (nothing written), the file with --slice, listed (source drop-in, compat status), --remove restores"
}

echo "# cgroup2 at $CG, sandbox $top, unit $unit, work directory $tmp"
start_private_bus "$tmp"
start_daemon
start_unit "$child_adj"
test_bad_unit_names_are_refused_and_change_nothing
test_a_unit_that_is_not_running_is_refused
test_only_root_may_protect_a_unit
test_over_budget_is_refused
test_over_ceiling_is_refused
test_protect_unit_covers_every_process
test_restart_keeps_the_protection
test_daemon_restart_reloads_the_record
test_protect_again_changes_the_adj
test_unprotect_restores_exactly
test_unprotect_all_takes_units_too
test_unprotect_all_waits_for_a_protect_unit_under_way
test_an_update_killed_at_each_step_keeps_the_originals
test_following_a_moved_unit_killed_at_each_step_keeps_the_originals
test_drop_in
expect_clean_sigterm
echo "# all $n_ok passed"
