#!/bin/bash
# Issue 15, last because it removes the package: an upgrade (the same
# package with a higher version, made by run-vm.sh) restarts the daemon and
# keeps every protection exactly (RestoreOnStop=no: same scope, adj,
# memory.min, and the same ListProtected record); then `apt-get purge`
# restores the protected process and a unit protected by name, and leaves no
# file, unit, group, runtime directory, runtime drop-in or cgroup behind.
# vm-timeout: 180
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

upgrade=$(find /usr/local/lib/oomprotect-vm/debs/upgrade -name 'oomprotect_*.deb' | head -n1)
[[ -n $upgrade ]] || fail "run-vm.sh put no upgrade package in the guest"
[[ $(dpkg-query -W -f='${db:Status-Status}' oomprotect 2>/dev/null) == installed ]] ||
        fail "package oomprotect is not installed (see 05-package-installed)"
daemon_start

# --- upgrade ---------------------------------------------------------------------
start_sleeper 123
pid=$SLEEPER_PID
origin=$(cgroup_of "$pid")
oomprotectctl protect "$pid" --min 8M >/dev/null || fail "oomprotectctl protect $pid failed"
assert_protected "$pid"
record() { op_json ListProtected | jq -c --argjson p "$1" '.data[0][] | select(.[0] == $p)'; }
before=$(record "$pid")
min_before=$(cat "$CG$(scope_path "$pid")/memory.min")
main_before=$(unit_prop "$OP_UNIT" MainPID)
info "protected $pid: $before"
# A unit protected by name too (issue 12): the upgrade keeps it, and the purge (prerm's unprotect --all)
# gives it back its own MemoryMin= and systemd's runtime files as they were, its main process its adj.
readonly U=nginx.service
systemctl start "$U" || fail "systemctl start $U failed"
u_min=$(unit_prop "$U" MemoryMin)
u_main=$(unit_prop "$U" MainPID)
u_adj=$(adj_of "$u_main")
u_files=$(runtime_dropins "$U" system.slice)
oomprotectctl protect --min 8M "$U" >/dev/null || fail "oomprotectctl protect $U failed"
expect_eq "$U MemoryMin protected" "$(unit_prop "$U" MemoryMin)" $((8 * 1024 * 1024))

apt-get install -y "$upgrade" >/tmp/upgrade.log 2>&1 || {
        sed 's/^/  apt: /' /tmp/upgrade.log
        fail "apt-get install $(basename "$upgrade") failed"
}
new_version=$(dpkg-deb -f "$upgrade" Version)
expect_eq "installed version after the upgrade" "$(dpkg-query -W -f='${Version}' oomprotect)" "$new_version"
wait_until 10 bus_has_name org.oomprotect || fail "no org.oomprotect on the bus after the upgrade"
main_after=$(unit_prop "$OP_UNIT" MainPID)
[[ $main_after != "$main_before" && $main_after != 0 ]] ||
        fail "the upgrade did not restart $OP_UNIT (MainPID $main_before, then $main_after)"
expect_eq "systemctl is-enabled after the upgrade" "$(systemctl is-enabled "$OP_UNIT")" enabled
assert_protected "$pid"
expect_eq "ListProtected record after the upgrade" "$(record "$pid")" "$before"
expect_eq "memory.min of the scope after the upgrade" "$(cat "$CG$(scope_path "$pid")/memory.min")" "$min_before"
expect_eq "$U MemoryMin after the upgrade" "$(unit_prop "$U" MemoryMin)" $((8 * 1024 * 1024))
expect_eq "adj of $U's main process after the upgrade" "$(adj_of "$u_main")" "$ADJ_PROTECTED"
info "upgraded to $new_version: daemon $main_before -> $main_after, protection of $pid unchanged"

# --- purge -------------------------------------------------------------------------
mapfile -t files < <(dpkg-query -L oomprotect)
apt-get purge -y oomprotect liboomprotect0 >/tmp/purge.log 2>&1 || {
        sed 's/^/  apt: /' /tmp/purge.log
        fail "apt-get purge oomprotect failed"
}
status=$(dpkg-query -W -f='${db:Status-Status}' oomprotect 2>/dev/null || true)
[[ -z $status || $status == not-installed ]] || fail "package state after purge: $status"
expect_eq "cgroup of $pid after the purge" "$(cgroup_of "$pid")" "$origin"
expect_eq "oom_score_adj of $pid after the purge" "$(adj_of "$pid")" 123
expect_eq "$U MemoryMin after the purge" "$(unit_prop "$U" MemoryMin)" "$u_min"
expect_eq "adj of $U's main process after the purge" "$(adj_of "$u_main")" "$u_adj"
[[ $(runtime_dropins "$U" system.slice) == "$u_files" ]] ||
        defer_fail "the purge left systemd runtime files of $U or system.slice: $(runtime_dropins "$U" system.slice)"
for f in "${files[@]}"; do
        [[ -d $f && $f != *oomprotect* ]] && continue # /usr/bin and friends
        [[ -e $f || -L $f ]] && defer_fail "purge left $f"
done
left=$(find / -xdev \( -path /usr/local/lib/oomprotect-vm -o -path /var/log/oomprotect-vm -o -path /tmp \
        -o -path /proc \) -prune -o \( -name '*oomprotect*' -o -name 'protected.slice*' \) \
        ! -name 'oomprotect-vm*' -print)
[[ -z $left ]] || defer_fail "purge left: $(tr '\n' ' ' <<<"$left")"
for d in /run/oomprotect /run/oom_kill_protection; do
        [[ ! -e $d ]] || defer_fail "purge left $d"
done
getent group oomprotect >/dev/null && defer_fail "purge left the oomprotect group"
expect_eq "LoadState of $OP_UNIT" "$(unit_prop "$OP_UNIT" LoadState)" not-found
units=$(systemctl list-units --all --no-legend --plain 'oomprotectd*' 'oomprotect-[0-9]*' protected.slice 2>/dev/null)
[[ -z $units ]] || defer_fail "units still loaded: $units"
cgroups=$(find "$CG" \( -name 'oomprotect-*' -o -name 'protected.slice' \) ! -name 'oomprotect-vm*' 2>/dev/null)
[[ -z $cgroups ]] || defer_fail "purge left cgroups: $(tr '\n' ' ' <<<"$cgroups")"
pgrep -x oomprotectd >/dev/null && defer_fail "oomprotectd still runs after the purge"
pass_unless_deferred "upgrade kept the protection of $pid and of $U; purge restored both and left no file, unit, group or cgroup"
