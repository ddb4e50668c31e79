#!/bin/bash
# DESIGN.md 3, issue 14: /dev/oom_protect through oomprotect-cuse. A program
# written for the 2006 module (guest-bin/seed-ioctl.c: the seed's snippet
# compiled as written) protects itself through the device: its own scope and
# adj -1000; GET says 1; SET 0 restores cgroup and adj exactly; a bad ioctl,
# read and write are refused; a user outside the device's group cannot open
# it, one the daemon does not allow gets EPERM, a member may; a stuck or
# absent daemon gives EIO, not a hang; a SIGKILLed program leaves no record.
# vm-timeout: 150
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

readonly SEED=/usr/local/lib/oomprotect-vm/bin/seed-ioctl
readonly DEV=/dev/oom_protect
readonly CUSE_UNIT=oomprotect-cuse.service
[[ -x $SEED ]] || fail "$SEED is missing (built by tests/vm/CMakeLists.txt, copied by run-vm.sh)"
systemctl cat "$CUSE_UNIT" >/dev/null 2>&1 || fail "$CUSE_UNIT is not installed (built without libfuse3?)"
gid=$(getent group oomprotect | cut -d: -f3)
[[ -n $gid ]] || fail "no group oomprotect (sysusers.d/oomprotect.conf)"

daemon_config_default
daemon_fresh_start
on_exit "systemctl stop $CUSE_UNIT"
if ! systemctl start "$CUSE_UNIT"; then
        journalctl -b -u "$CUSE_UNIT" --no-pager -n 20 | sed 's/^/  | /'
        fail "systemctl start $CUSE_UNIT failed"
fi
wait_until 10 test -c "$DEV" || fail "$DEV did not appear"
expect_eq "owner, group and mode of $DEV" "$(stat -c '%U %G %a' "$DEV")" "root oomprotect 660"
info "$DEV: $(stat -c '%U:%G %a, char %t:%T' "$DEV")"

# seed_start WRAPPER...: the program as a coprocess (adj 123) in a bare scope of its own (as from a login
# shell: this script runs in a service, whose processes are protected in place), its first line in $line,
# its PID in $seed, the cgroup it started in in $orig_cg.
seed_start() {
        local unit=vmtest-seed-$RANDOM$RANDOM
        orig_cg=/system.slice/$unit.scope
        coproc SEED_CO { echo 123 >/proc/self/oom_score_adj && exec "${IN_SCOPE[@]}" --unit="$unit" "$@" "$SEED" 2>&1; }
        # shellcheck disable=SC2153 # set by coproc
        seed_co_pid=$SEED_CO_PID
        on_exit "kill -KILL $seed_co_pid"
        read -r -t 15 line <&"${SEED_CO[0]}" || fail "the program did not start"
        info "started: $line"
        seed=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' <<<"$line")
}
# seed_cmd CMD: its answer in $line.
seed_cmd() {
        echo "$1" >&"${SEED_CO[1]}"
        read -r -t 15 line <&"${SEED_CO[0]}" || fail "no answer to '$1' within 15 s (the ioctl hangs?)"
        info "$1 -> $line"
}
seed_stop() {
        echo quit >&"${SEED_CO[1]}"
        wait "$seed_co_pid" 2>/dev/null || true
}


# --- root: the seed's snippet protects the program --------------------------
seed_start
[[ $line =~ \ fd=[0-9]+\ errno=0\ oom_protected=1$ ]] || fail "the snippet: $line"
assert_protected "$seed"
seed_cmd get
expect_eq "OOMGETPROTECTCMD when protected" "$line" "get rc=0 errno=0 value=1"
seed_cmd "set 0"
expect_eq "OOMSETPROTECTCMD 0" "$line" "set rc=0 errno=0"
assert_restored "$seed" "$orig_cg" 123
seed_cmd get
expect_eq "OOMGETPROTECTCMD when not protected" "$line" "get rc=0 errno=0 value=0"
seed_cmd bad
expect_eq "an unknown ioctl" "$line" "bad rc=-1 errno=EINVAL"
seed_cmd read
expect_eq "read(2)" "$line" "read rc=-1 errno=EINVAL"
seed_cmd write
expect_eq "write(2)" "$line" "write rc=-1 errno=EINVAL"
seed_cmd "set 1"
expect_eq "OOMSETPROTECTCMD 1" "$line" "set rc=0 errno=0"
assert_protected "$seed"

# Killed while protected: the daemon's pidfd watch drops everything.
kill -KILL "$seed"
wait "$seed_co_pid" 2>/dev/null || true
wait_until 5 test "$(op_is_protected "$seed")" = false || fail "PID $seed still protected after SIGKILL"
! op_listed "$seed" || fail "ListProtected still lists the killed PID $seed"
wait_until 5 test ! -d "$CG$(scope_path "$seed")" || fail "the killed program's scope is left"
! state_pids | grep -qx "$seed" ||
        fail "state.json still has a record of PID $seed"
info "killed PID $seed: no record left"

# --- not in the device's group: cannot open it -------------------------------
seed_start setpriv --reuid=65534 --regid=65534 --clear-groups
[[ $line == *" fd=-1 errno=EACCES oom_protected=1" ]] || fail "the snippet as nobody: $line"
expect_eq "IsProtected(nobody's program)" "$(op_is_protected "$seed")" false
seed_stop

# --- in the device's group but not in the daemon's AllowGroup=: EPERM --------
daemon_config 60-cuse-allow <<-EOF
	[Manager]
	AllowGroup=users
	EOF
daemon_start
seed_start setpriv --reuid=65534 --regid=65534 --groups="$gid"
[[ $line =~ \ fd=[0-9]+\ errno=0\ oom_protected=1$ ]] || fail "the snippet as a non-member of AllowGroup=: $line"
expect_eq "IsProtected(non-member's program)" "$(op_is_protected "$seed")" false
seed_cmd "set 1"
expect_eq "OOMSETPROTECTCMD 1 by a non-member of AllowGroup=" "$line" "set rc=-1 errno=EPERM"
seed_cmd get
expect_eq "OOMGETPROTECTCMD of a non-member" "$line" "get rc=0 errno=0 value=0"
seed_stop
rm -f "$OP_CONF_DIR/60-cuse-allow.conf"

# --- a member of AllowGroup= (oomprotect, the default): its own process ------
daemon_start
seed_start setpriv --reuid=65534 --regid=65534 --groups="$gid"
[[ $line =~ \ fd=[0-9]+\ errno=0\ oom_protected=1$ ]] || fail "the snippet as a member: $line"
# Not root: under systemd its process is protected where it is, never moved (README, "Moved or in place").
assert_protected_in_place "$seed" "$orig_cg"
seed_cmd "set 0"
assert_restored "$seed" "$orig_cg" 123

# --- a stuck daemon: EIO after the 5 s bus timeout, not a hang ---------------
systemctl kill -s STOP "$OP_UNIT"
on_exit "systemctl kill -s CONT $OP_UNIT"
SECONDS=0
seed_cmd get
systemctl kill -s CONT "$OP_UNIT"
expect_eq "OOMGETPROTECTCMD of a stopped oomprotectd" "$line" "get rc=-1 errno=EIO value=0"
((SECONDS >= 4 && SECONDS <= 15)) || fail "the ioctl of a stopped daemon took ${SECONDS}s, not the 5 s timeout"
info "EIO after ${SECONDS}s from a stopped daemon"

# --- no daemon (and no bus activation): EIO, not a hang -----------------------
systemctl stop "$OP_UNIT"
systemctl mask --runtime "$OP_UNIT" >/dev/null
on_exit "systemctl unmask --runtime $OP_UNIT"
SECONDS=0
seed_cmd get
expect_eq "OOMGETPROTECTCMD without oomprotectd" "$line" "get rc=-1 errno=EIO value=0"
((SECONDS <= 10)) || fail "the ioctl took ${SECONDS}s without a daemon"
info "EIO after ${SECONDS}s"
seed_stop
systemctl unmask --runtime "$OP_UNIT" >/dev/null

pass "the seed's snippet protects itself through $DEV (scope, adj -1000), GET 1, SET 0 restores exactly; bad ioctl, read, write EINVAL; outside the group EACCES, outside AllowGroup= EPERM, a member may; a stopped or absent daemon EIO; SIGKILL leaves no record"
