#!/bin/bash
# Issue 12, the administrator's way, on a real systemd with Debian's nginx-light:
#  1. `oomprotectctl protect nginx.service`: in place, nginx stays supervised
#     (MainPID and cgroup unchanged, its journal under the unit), every
#     process at the adj, MemoryMin on the unit, system.slice raised;
#  2. `systemctl restart nginx` keeps it protected: the new PIDs get the adj;
#     `systemctl daemon-reload` keeps every figure; stop and start too;
#  3. unprotect restores the unit's properties and every adj exactly, and
#     systemd's runtime drop-ins too (none of ours left, an administrator's
#     set-property --runtime file back byte for byte, daemon-reload keeps
#     the original values, a later /etc drop-in is not masked); an
#     unprotect and a protect at once keep the raise across daemon-reload;
#     a put-back that fails is logged and tried again, the unprotect stands;
#     a unit systemd unloads (a transient one, stopped) ends its protection;
#  4. `oomprotectctl drop-in nginx.service --now` restarts it inside its
#     protection; it holds across a restart and daemon-reload, is listed
#     (ListProtected source drop-in, the compat status file), over the
#     budget is refused with nothing written, and --remove --now restores it;
#  5. a disabled daemon is not activated by a bus call (ProtectUnit);
#  6. the optional socket units: started while the daemon runs, and with
#     it stopped, a connection or a write activates it and a restart passes
#     them again (both orders in detail: 76-sockets).
# vm-timeout: 300
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317 # functions called through wait_until
. "$(dirname "$0")/lib.sh"

readonly MB=$((1024 * 1024))
readonly U=nginx.service
readonly DROPIN=/etc/systemd/system/$U.d/50-oomprotect.conf
systemctl cat "$U" >/dev/null 2>&1 || skip "$U is not installed (nginx-light is in the image's package list)"
daemon_config_default
daemon_fresh_start
on_exit "oomprotectctl unprotect $U >/dev/null 2>&1; rm -f $DROPIN; rmdir /etc/systemd/system/$U.d 2>/dev/null; systemctl daemon-reload; systemctl restart $U"
systemctl restart "$U"
wait_until 10 systemctl is-active --quiet "$U" || fail "$U does not run"

unit_pids() { cat "$CG${1:-/system.slice/$U}/cgroup.procs" 2>/dev/null; } # [CGROUP]
all_at() { # ADJ: every process of the unit has it (and there is one)
        local pid n=0
        for pid in $(unit_pids); do
                [[ $(adj_of "$pid" 2>/dev/null) == "$1" ]] || return 1
                n=$((n + 1))
        done
        ((n > 0))
}
all_at_in() { # CGROUP ADJ
        local pid n=0
        for pid in $(unit_pids "$1"); do
                [[ $(adj_of "$pid" 2>/dev/null) == "$2" ]] || return 1
                n=$((n + 1))
        done
        ((n > 0))
}
adjs() { for pid in $(unit_pids); do printf '%s=%s ' "$pid" "$(adj_of "$pid" 2>/dev/null)"; done; }
listed_unit() { op_json ListProtectedUnits | jq -e --arg u "$U" '.data[0][] | select(.[0] == $u)' >/dev/null; }

# An administrator's own runtime setting, made before the protection: its file must come back byte for byte.
readonly ADMIN_LOW=/run/systemd/system.control/$U.d/50-MemoryLow.conf
systemctl set-property --runtime "$U" MemoryLow=3M || fail "systemctl set-property --runtime $U MemoryLow=3M failed"
on_exit "rm -f $ADMIN_LOW; systemctl daemon-reload"
[[ -f $ADMIN_LOW ]] || fail "set-property --runtime wrote no $ADMIN_LOW: $(runtime_dropins "$U")"
cp "$ADMIN_LOW" /tmp/vmtest-admin-low.conf
dropins_before=$(runtime_dropins "$U" system.slice)
orig_low=$(unit_prop "$U" MemoryLow)
orig_min=$(unit_prop "$U" MemoryMin)
orig_pref=$(unit_prop "$U" ManagedOOMPreference)
orig_sys_min=$(cat "$CG/system.slice/memory.min")
main=$(unit_prop "$U" MainPID)
main_cg=$(cgroup_of "$main")
adj0=$(adj_of "$main")
info "$U: MainPID $main in $main_cg, MemoryMin=$orig_min, ManagedOOMPreference=$orig_pref, adj $adj0, system.slice memory.min $orig_sys_min"

# --- 1. protect by name ----------------------------------------------------------
systemctl daemon-reload # what earlier scenarios' unprotects left systemd to re-read (NeedDaemonReload)
oomprotectctl protect --min 32M "$U" || fail "oomprotectctl protect $U failed"
# The properties are set in the order their drop-ins sort: systemd 252 then keeps its list of them in order,
# and a unit without drop-ins of its own that sort after ours (system.slice) does not say "changed on disk".
expect_eq "system.slice NeedDaemonReload while it holds $U's protection" "$(unit_prop system.slice NeedDaemonReload)" no
expect_eq "MainPID of $U after protect" "$(unit_prop "$U" MainPID)" "$main"
expect_eq "cgroup of $U's main process" "$(cgroup_of "$main")" "$main_cg"
all_at "$ADJ_PROTECTED" || fail "not every process of $U is at $ADJ_PROTECTED: $(adjs)"
expect_eq "$U MemoryMin" "$(unit_prop "$U" MemoryMin)" $((32 * MB))
expect_eq "$U ManagedOOMPreference" "$(unit_prop "$U" ManagedOOMPreference)" omit
sys_min=$(cat "$CG/system.slice/memory.min")
((sys_min >= orig_sys_min + 32 * MB)) || fail "system.slice memory.min $sys_min does not carry $U's 32M"
expect_eq "IsProtected($main)" "$(op_is_protected "$main")" true
oomprotectctl status "$U" | grep -q "across its restarts" || fail "status $U does not say it survives restarts"
journalctl -b -u "$U" --no-pager -n 1 -o cat | grep -q . || fail "$U has no journal under its unit"
info "1: $U protected in place: MainPID $main kept in $main_cg, $(adjs)MemoryMin 32M, system.slice $sys_min"
info "1: systemd's runtime files while protected: $(runtime_dropins "$U" system.slice | awk '{ print $2 }' | tr '\n' ' ')"
info "1: $U.d/50-MemoryMin.conf: $(tr '\n' '|' </run/systemd/system.control/"$U".d/50-MemoryMin.conf 2>&1)"
# An update (ProtectUnit again, persisted as applying first): systemd rewrites the file for each call.
ino=$(stat -c %i "/run/systemd/system.control/$U.d/50-MemoryMin.conf")
oomprotectctl protect --min 40M "$U" || fail "updating the protection of $U to --min 40M failed"
expect_eq "$U MemoryMin after an update to 40M" "$(unit_prop "$U" MemoryMin)" $((40 * MB))
grep -qx "MemoryMin=$((40 * MB))" "/run/systemd/system.control/$U.d/50-MemoryMin.conf" ||
        fail "50-MemoryMin.conf after the update: $(cat "/run/systemd/system.control/$U.d/50-MemoryMin.conf")"
info "1: the update rewrote 50-MemoryMin.conf (inode $ino -> $(stat -c %i "/run/systemd/system.control/$U.d/50-MemoryMin.conf"))"
oomprotectctl protect --min 32M "$U" || fail "updating the protection of $U back to --min 32M failed"
expect_eq "$U MemoryMin after an update back to 32M" "$(unit_prop "$U" MemoryMin)" $((32 * MB))
all_at "$ADJ_PROTECTED" || fail "after the updates not every process of $U is at $ADJ_PROTECTED: $(adjs)"

# --- 2. restart, daemon-reload, stop and start -----------------------------------
systemctl restart "$U" || fail "systemctl restart $U failed while protected"
new_main=$(unit_prop "$U" MainPID)
[[ $new_main != "$main" && $new_main != 0 ]] || fail "$U did not restart"
wait_until 5 all_at "$ADJ_PROTECTED" || fail "after a restart: $(adjs)"
expect_eq "$U MemoryMin after restart" "$(unit_prop "$U" MemoryMin)" $((32 * MB))
systemctl daemon-reload
expect_eq "$U MemoryMin after daemon-reload" "$(unit_prop "$U" MemoryMin)" $((32 * MB))
expect_eq "$U memory.min after daemon-reload" "$(cat "$CG/system.slice/$U/memory.min")" $((32 * MB))
sys_min=$(cat "$CG/system.slice/memory.min")
((sys_min >= orig_sys_min + 32 * MB)) || fail "after daemon-reload system.slice memory.min is $sys_min"
all_at "$ADJ_PROTECTED" || fail "after daemon-reload: $(adjs)"
systemctl stop "$U"
listed_unit || fail "a stopped unit's protection was dropped"
systemctl start "$U"
wait_until 5 all_at "$ADJ_PROTECTED" || fail "after stop and start: $(adjs)"
info "2: restart (MainPID $main -> $new_main), daemon-reload, stop and start kept $U protected: $(adjs)"

# --- 3. unprotect restores exactly ------------------------------------------------
oomprotectctl unprotect "$U" || fail "oomprotectctl unprotect $U failed"
expect_eq "$U MemoryMin after unprotect" "$(unit_prop "$U" MemoryMin)" "$orig_min"
expect_eq "$U ManagedOOMPreference after unprotect" "$(unit_prop "$U" ManagedOOMPreference)" "$orig_pref"
expect_eq "system.slice memory.min after unprotect" "$(cat "$CG/system.slice/memory.min")" "$orig_sys_min"
all_at "$adj0" || fail "after unprotect: $(adjs)"
! listed_unit || fail "still listed after unprotect"
expect_eq "$U MemoryLow after unprotect" "$(unit_prop "$U" MemoryLow)" "$orig_low"
dropins_restored "unprotect $U" "$U" "$dropins_before" "$ADMIN_LOW" /tmp/vmtest-admin-low.conf
info "3: after unprotect $U NeedDaemonReload=$(unit_prop "$U" NeedDaemonReload) (its drop-ins changed on disk, its values did not)"
systemctl daemon-reload
expect_eq "$U MemoryMin after unprotect and daemon-reload" "$(unit_prop "$U" MemoryMin)" "$orig_min"
expect_eq "$U MemoryLow after unprotect and daemon-reload" "$(unit_prop "$U" MemoryLow)" "$orig_low"
expect_eq "$U ManagedOOMPreference after unprotect and daemon-reload" "$(unit_prop "$U" ManagedOOMPreference)" "$orig_pref"
expect_eq "system.slice memory.min after unprotect and daemon-reload" "$(cat "$CG/system.slice/memory.min")" "$orig_sys_min"
# The unit's own configuration changed later is not masked by a file of ours (10- sorts before 50-MemoryMin.conf).
mkdir -p "/etc/systemd/system/$U.d"
printf '[Service]\nMemoryMin=5M\n' >"/etc/systemd/system/$U.d/10-vmtest.conf"
on_exit "rm -f /etc/systemd/system/$U.d/10-vmtest.conf"
systemctl daemon-reload
expect_eq "$U MemoryMin from an /etc drop-in after unprotect" "$(unit_prop "$U" MemoryMin)" $((5 * MB))
rm "/etc/systemd/system/$U.d/10-vmtest.conf"
rmdir "/etc/systemd/system/$U.d" 2>/dev/null || true
rm "$ADMIN_LOW"
systemctl daemon-reload
orig_low=$(unit_prop "$U" MemoryLow)
info "3: unprotect restored MemoryMin=$orig_min, MemoryLow=3M, ManagedOOMPreference=$orig_pref, system.slice, adj $adj0, and systemd's runtime files exactly; daemon-reload keeps them, an /etc drop-in applies"

# --- 3a. unprotect and protect at once: the release's put-back does not undo the raise ---
# UnprotectUnit and ProtectUnit back to back on one connection (bus-helper retake): the raise is sent while
# the release's SetUnitProperties is in flight, and systemd rewrites the runtime files for both in order.
# The files must then be the raise's (no put-back behind it), so that a daemon-reload (every apt run does
# one) keeps the protection, for the unit and for system.slice; the final unprotect puts them all back.
dropins_plain=$(runtime_dropins "$U" system.slice)
oomprotectctl protect --min 32M "$U" || fail "3a: oomprotectctl protect $U failed"
out=$(/usr/local/lib/oomprotect-vm/bin/bus-helper retake "$U" $((48 * MB)) 2>&1) || fail "3a: bus-helper retake: $out"
{ grep -qx unprotect=ok <<<"$out" && grep -qx protect=ok <<<"$out"; } || fail "3a: retake: $out"
listed_unit || fail "3a: $U is not listed after the retake"
expect_eq "3a: $U MemoryMin after the retake" "$(unit_prop "$U" MemoryMin)" $((48 * MB))
grep -qx "MemoryMin=$((48 * MB))" "/run/systemd/system.control/$U.d/50-MemoryMin.conf" 2>/dev/null ||
        fail "3a: 50-MemoryMin.conf after the retake: $(cat "/run/systemd/system.control/$U.d/50-MemoryMin.conf" 2>&1)"
systemctl daemon-reload
expect_eq "3a: $U MemoryMin after the retake and daemon-reload" "$(unit_prop "$U" MemoryMin)" $((48 * MB))
expect_eq "3a: $U memory.min after the retake and daemon-reload" "$(cat "$CG/system.slice/$U/memory.min")" $((48 * MB))
sys_min=$(cat "$CG/system.slice/memory.min")
((sys_min >= orig_sys_min + 48 * MB)) || fail "3a: after the retake and daemon-reload system.slice memory.min is $sys_min"
oomprotectctl unprotect "$U" || fail "3a: oomprotectctl unprotect $U failed"
systemctl daemon-reload
expect_eq "3a: $U MemoryMin after the final unprotect and daemon-reload" "$(unit_prop "$U" MemoryMin)" "$orig_min"
expect_eq "3a: system.slice memory.min after the final unprotect" "$(cat "$CG/system.slice/memory.min")" "$orig_sys_min"
now=$(runtime_dropins "$U" system.slice)
[[ $now == "$dropins_plain" ]] || fail "3a: systemd's runtime drop-ins after the final unprotect:
before:
$dropins_plain
now:
$now"
info "3a: unprotect + protect at once ($(tr '\n' ' ' <<<"$out")): MemoryMin 48M held across daemon-reload, system.slice $sys_min; the final unprotect put every file back"

# --- 3f. a put-back that fails: the release stands, only the file step is tried again ---
# The unit's runtime drop-in directory swapped for a link once it is protected: systemd writes through it,
# the put-back refuses it (never through a link). The unprotect must still succeed (systemd has the
# original values), the failure be logged, and the files go back at the next settle once the directory is
# a directory again; a protect taken up again before that must not record systemd's restoring files as
# the unit's "original" (its final unprotect would leave them behind).
plain_u=$(runtime_dropins "$U")
rd=/run/systemd/system.control/$U.d
link_back() { if [[ -L $rd ]]; then rm "$rd" && mv /run/vmtest-dropins.d "$rd"; fi; }
on_exit "link_back"
for round in retry retake; do
        oomprotectctl protect --min 32M "$U" || fail "3f $round: oomprotectctl protect $U failed"
        [[ -d $rd ]] || fail "3f $round: systemd wrote no $rd for the raise"
        { mv "$rd" /run/vmtest-dropins.d && ln -s /run/vmtest-dropins.d "$rd"; } || fail "3f $round: cannot swap $rd for a link"
        since=$(date '+%Y-%m-%d %H:%M:%S')
        oomprotectctl unprotect "$U" || fail "3f $round: unprotect failed over a put-back that could not be done"
        expect_eq "3f $round: $U MemoryMin after the unprotect" "$(unit_prop "$U" MemoryMin)" "$orig_min"
        ! listed_unit || fail "3f $round: $U still listed after the unprotect"
        logged() { journalctl -b -u "$OP_UNIT" --since "$since" --no-pager -o cat | grep -q "Failed to put back the runtime drop-ins of $U"; }
        wait_until 5 logged || fail "3f $round: the failed put-back was not logged"
        link_back
        if [[ $round == retry ]]; then
                # Any settle tries the files again: a protect of another unit.
                systemd-run --quiet --unit=vmtest-retry.service sleep 1000 || fail "3f: systemd-run failed"
                on_exit "systemctl stop vmtest-retry.service 2>/dev/null"
                wait_until 5 systemctl is-active --quiet vmtest-retry.service || fail "3f: vmtest-retry.service does not run"
                oomprotectctl protect --min 8M vmtest-retry.service || fail "3f: protect vmtest-retry.service failed"
                oomprotectctl unprotect vmtest-retry.service || fail "3f: unprotect vmtest-retry.service failed"
                systemctl stop vmtest-retry.service
        else
                oomprotectctl protect --min 32M "$U" || fail "3f: the protect taken up again failed"
                oomprotectctl unprotect "$U" || fail "3f: the final unprotect failed"
        fi
        now=$(runtime_dropins "$U")
        [[ $now == "$plain_u" ]] || fail "3f $round: $U's runtime drop-ins are not put back:
before:
$plain_u
now:
$now"
        systemctl daemon-reload
        expect_eq "3f $round: $U MemoryMin after daemon-reload" "$(unit_prop "$U" MemoryMin)" "$orig_min"
done
info "3f: a failed put-back is logged, the unprotect stands, the files go back at the next settle (retry) and after a protect taken up again (retake)"

# --- 3b. a unit that goes away ends its protection --------------------------------
tu=vmtest-unload.service
systemd-run --quiet --unit="$tu" sleep 1000 || fail "systemd-run --unit=$tu failed"
on_exit "systemctl stop $tu 2>/dev/null"
wait_until 5 systemctl is-active --quiet "$tu" || fail "$tu does not run"
oomprotectctl protect --min 8M "$tu" || fail "oomprotectctl protect $tu failed"
sys_min=$(cat "$CG/system.slice/memory.min")
((sys_min >= orig_sys_min + 8 * MB)) || fail "system.slice memory.min $sys_min does not carry $tu's 8M"
systemctl stop "$tu" # a transient unit is unloaded once it stops: UnitRemoved
unit_gone() { ! op_json ListProtectedUnits | jq -e --arg u "$tu" '.data[0][] | select(.[0] == $u)' >/dev/null; }
wait_until 10 unit_gone || fail "the protection of $tu outlived the unit"
wait_until 5 test "$(cat "$CG/system.slice/memory.min")" = "$orig_sys_min" ||
        fail "system.slice memory.min is $(cat "$CG/system.slice/memory.min") after $tu went away, not $orig_sys_min"
unloaded() { journalctl -b -u "$OP_UNIT" --no-pager -o cat | grep -q "unit unloaded: $tu is no longer protected"; }
wait_until 5 unloaded || fail "the journal does not say that $tu's protection ended with the unit"
info "3b: $tu, stopped and unloaded by systemd, ended its protection; system.slice back to $orig_sys_min"

# --- 3c. an update to -1000 passes the last-killable check, as a new protection does ---
ku=vmtest-killable.service
systemd-run --quiet --unit="$ku" sleep 1000 || fail "systemd-run --unit=$ku failed"
on_exit "systemctl stop $ku 2>/dev/null"
wait_until 5 systemctl is-active --quiet "$ku" || fail "$ku does not run"
oomprotectctl protect --adj 0 "$ku" || fail "oomprotectctl protect --adj 0 $ku failed"
kpid=$(unit_prop "$ku" MainPID)
# For a moment every userspace process but $ku's sleep at -1000 (this shell and what it runs included).
saved=()
for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [[ $p == 1 || $p == "$kpid" ]] && continue
        readlink "/proc/$p/exe" >/dev/null 2>&1 || continue # a kernel thread: never the OOM killer's
        a=$(cat "/proc/$p/oom_score_adj" 2>/dev/null) || continue
        [[ $a == -1000 ]] && continue
        echo -1000 >"/proc/$p/oom_score_adj" 2>/dev/null && saved+=("$p:$a")
done
restore_adjs() { local s; for s in "${saved[@]}"; do echo "${s#*:}" >"/proc/${s%%:*}/oom_score_adj" 2>/dev/null; done; }
on_exit restore_adjs
rc=0
out=$(oomprotectctl protect --adj -1000 "$ku" 2>&1) || rc=$?
restore_adjs
((rc != 0)) || fail "an update of $ku to -1000 that leaves nothing killable was taken"
[[ $out == *"no process the kernel's OOM killer may pick"* ]] || fail "the refused update said: $out"
expect_eq "adj of $ku's process after the refused update" "$(adj_of "$kpid")" 0
oomprotectctl unprotect "$ku" || fail "oomprotectctl unprotect $ku failed"
systemctl stop "$ku"
info "3c: with ${#saved[@]} processes at -1000 for a moment, updating $ku to -1000 was refused (exit $rc): $out"

# --- 4. a drop-in -----------------------------------------------------------------
rc=0
oomprotectctl drop-in "$U" --min 1G >/dev/null 2>&1 || rc=$?
expect_eq "exit code of a drop-in over MemoryMinBudget=256M" "$rc" 1
[[ ! -e $DROPIN ]] || fail "a refused drop-in was written"
main=$(unit_prop "$U" MainPID)
oomprotectctl drop-in "$U" --min 24M --adj -900 --now || fail "oomprotectctl drop-in $U --now failed"
[[ -f $DROPIN ]] || fail "no $DROPIN"
new_main=$(unit_prop "$U" MainPID)
[[ $new_main != "$main" ]] || fail "--now did not restart $U"
wait_until 5 all_at -900 || fail "after drop-in --now: $(adjs)"
expect_eq "$U MemoryMin with the drop-in" "$(unit_prop "$U" MemoryMin)" $((24 * MB))
expect_eq "$U OOMScoreAdjust with the drop-in" "$(unit_prop "$U" OOMScoreAdjust)" -900
op_json ListProtected | jq -e --argjson p "$new_main" '.data[0][] | select(.[0] == $p and .[8] == "drop-in")' >/dev/null ||
        fail "ListProtected does not list $new_main with source drop-in"
# The file follows the unit's processes when its cgroup changes and in the rounds after a start (0.2, 1.2, 5.2 s).
wait_until 8 grep -qE "^$new_main +nginx" "$OP_COMPAT_DIR/status" || fail "the compat status lacks $new_main: $(cat "$OP_COMPAT_DIR/status")"
systemctl restart "$U"
wait_until 5 all_at -900 || fail "drop-in, after a restart: $(adjs)"
systemctl daemon-reload
expect_eq "$U MemoryMin with the drop-in after daemon-reload" "$(unit_prop "$U" MemoryMin)" $((24 * MB))
sys_min=$(cat "$CG/system.slice/memory.min")
((sys_min >= orig_sys_min + 24 * MB)) || fail "drop-in: system.slice memory.min $sys_min does not carry 24M"
oomprotectctl drop-in "$U" --remove --now || fail "oomprotectctl drop-in $U --remove --now failed"
[[ ! -e $DROPIN ]] || fail "$DROPIN is left after --remove"
wait_until 5 all_at "$adj0" || fail "after --remove --now: $(adjs)"
expect_eq "$U MemoryMin after --remove" "$(unit_prop "$U" MemoryMin)" "$orig_min"
expect_eq "system.slice memory.min after --remove" "$(cat "$CG/system.slice/memory.min")" "$orig_sys_min"
! listed_unit || fail "still listed after --remove"
info "4: drop-in --now restarted $U inside its protection (-900, 24M), held across restart and daemon-reload, listed; --remove restored it"

# --- 4b. a drop-in with --slice: the unit runs in protected.slice, which carries it -----
oomprotectctl drop-in "$U" --min 20M --slice --now || fail "oomprotectctl drop-in $U --slice --now failed"
grep -qx "Slice=protected.slice" "$DROPIN" || fail "no Slice= in $DROPIN"
main=$(unit_prop "$U" MainPID)
expect_eq "cgroup of $U with --slice" "$(cgroup_of "$main")" "/protected.slice/$U"
op_json ListProtectedUnits | jq -e --arg u "$U" '.data[0][] | select(.[0] == $u and .[1] == "/protected.slice/" + $u)' \
        >/dev/null || fail "ListProtectedUnits does not follow $U into protected.slice: $(op_json ListProtectedUnits)"
expect_eq "$U MemoryMin in protected.slice" "$(unit_prop "$U" MemoryMin)" $((20 * MB))
wait_until 5 test "$(cat "$CG/protected.slice/$U/memory.min")" = $((20 * MB)) ||
        fail "memory.min of /protected.slice/$U is $(cat "$CG/protected.slice/$U/memory.min"), not 20M"
slice_min=$(cat "$CG/protected.slice/memory.min")
((slice_min >= 20 * MB)) || fail "protected.slice memory.min $slice_min does not carry $U's 20M"
wait_until 5 all_at_in "/protected.slice/$U" "$ADJ_PROTECTED" || fail "--slice: not every process at $ADJ_PROTECTED"
oomprotectctl drop-in "$U" --remove --now || fail "oomprotectctl drop-in $U --remove --now (after --slice) failed"
main=$(unit_prop "$U" MainPID)
expect_eq "cgroup of $U after --remove" "$(cgroup_of "$main")" "/system.slice/$U"
wait_until 5 all_at "$adj0" || fail "after --slice --remove: $(adjs)"
expect_eq "system.slice memory.min after --slice --remove" "$(cat "$CG/system.slice/memory.min")" "$orig_sys_min"
expect_eq "$U MemoryMin after --slice --remove" "$(unit_prop "$U" MemoryMin)" "$orig_min"
info "4b: drop-in --slice --now moved $U into protected.slice (memory.min $slice_min carries it); --remove --now moved it back"

# --- 5. a disabled daemon is not activated ----------------------------------------
systemctl stop "$OP_UNIT"
systemctl disable --quiet "$OP_UNIT"
on_exit "systemctl enable --quiet $OP_UNIT"
busctl --system --timeout=10 call "${OP_BUS[@]}" ProtectUnit 'sa{sv}' "$U" 0 >/dev/null 2>&1 &&
        fail "ProtectUnit succeeded with the daemon disabled"
expect_eq "$OP_UNIT after a bus call while disabled" "$(unit_prop "$OP_UNIT" ActiveState)" inactive
systemctl enable --quiet "$OP_UNIT"
info "5: disabled, a ProtectUnit call does not start oomprotectd"

# --- 6. the socket units ----------------------------------------------------------
# Their Service= is each one's own oomprotectd-sockets@.service instance, not the daemon: systemd starts them while it runs.
readonly CTL_SOCK=/usr/local/lib/oomprotect-vm/bin/ctl-sock
daemon_start
on_exit "systemctl stop oomprotectd.socket oomprotectd-ctl.socket"
systemctl start oomprotectd.socket ||
        { systemctl status oomprotectd.socket --no-pager || true; fail "oomprotectd.socket does not start while the daemon runs"; }
info "6: oomprotectd.socket starts while the daemon runs"
systemctl stop "$OP_UNIT"
systemctl start oomprotectd.socket oomprotectd-ctl.socket ||
        { systemctl status oomprotectd.socket oomprotectd-ctl.socket --no-pager || true; fail "the socket units do not start with the daemon stopped"; }
[[ -S $OP_COMPAT_DIR/ctl.sock && -p $OP_COMPAT_DIR/ctl ]] || fail "ctl.sock or the ctl FIFO is missing: $(ls -l "$OP_COMPAT_DIR")"
start_sleeper 61
s1=$SLEEPER_PID
prot() { [[ $(op_is_protected "$1") == "$2" ]]; }
reply=$(echo "setprotection $s1 1" | "$CTL_SOCK" "$OP_COMPAT_DIR/ctl.sock" 2>&1) || true
[[ $reply == OK* ]] || fail "a connection to ctl.sock with the daemon stopped answered '$reply'"
expect_eq "$OP_UNIT after a connection to ctl.sock" "$(unit_prop "$OP_UNIT" ActiveState)" active
wait_until 5 prot "$s1" true || fail "the socket-activated daemon did not protect $s1"
systemctl restart "$OP_UNIT" # the sockets active: the restarted daemon is passed both
wait_until 10 bus_has_name org.oomprotect || fail "the restarted daemon has no bus name"
reply=$(echo "setprotection $s1 0" | "$CTL_SOCK" "$OP_COMPAT_DIR/ctl.sock" 2>&1) || true
[[ $reply == OK* ]] || fail "ctl.sock after a restart with the sockets active answered '$reply'"
systemctl stop "$OP_UNIT"
[[ -S $OP_COMPAT_DIR/ctl.sock ]] || fail "the daemon's stop removed the socket unit's ctl.sock"
echo "setprotection $s1 1" >"$OP_COMPAT_DIR/ctl"
wait_until 20 systemctl is-active --quiet "$OP_UNIT" || fail "a write to the ctl FIFO did not activate the stopped daemon"
wait_until 10 bus_has_name org.oomprotect || fail "the FIFO-activated daemon has no bus name"
wait_until 5 prot "$s1" true || fail "the FIFO-activated daemon did not read the line that woke it"
info "6: with the socket units started, a connection to ctl.sock or a write to ctl activates the stopped daemon, and a restarted daemon is passed both"

pass "protect $U by name kept it supervised and protected across restart, daemon-reload, stop/start; unprotect restored it; an unloaded unit ended its protection; a drop-in --now held and --remove restored; a disabled daemon stayed off; the socket units activate it"
