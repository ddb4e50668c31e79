#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# oomprotectctl doctor on this host, without a daemon or a bus: what it
# reads about a real process matches /proc, the cgroup mode matches the
# mounts, a UNIT is found by its cgroup name, and bad input gets the right
# exit status. (Real chains with memory.min and running OOM killers are the
# VM tier's 72-doctor; this host may have no memory controller on cgroup2.)
set -euo pipefail

: "${OOMPROTECT_CTL:?}"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
ctl=$OOMPROTECT_CTL
pids=()
cgdir=
cleanup() {
        for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        [[ -z $cgdir ]] || rmdir "$cgdir" 2>/dev/null || true
}
trap cleanup EXIT
# json_value JSON KEY: the first "KEY":VALUE of json-c's pretty output, quotes dropped.
json_value() { sed -n "s/^ *\"$2\":\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" <<<"$1" | head -n1; }

sleep 1000 &
pids+=($!)
pid=$!
echo 500 >"/proc/$pid/oom_score_adj" # raising needs no capability
sleep 0.1

j=$("$ctl" doctor "$pid" --json) || fail "doctor $pid --json failed"
[[ $(json_value "$j" pid) == "$pid" ]] || fail "pid: $(json_value "$j" pid), expected $pid"
[[ $(json_value "$j" comm) == sleep ]] || fail "comm: $(json_value "$j" comm)"
[[ $(json_value "$j" oom_score_adj) == 500 ]] || fail "oom_score_adj: $(json_value "$j" oom_score_adj)"
[[ $(json_value "$j" cgroup) == "$(sed -n 's/^0:://p' "/proc/$pid/cgroup")" ]] || fail "cgroup: $(json_value "$j" cgroup)"
rank=$(json_value "$j" oom_rank) procs=$(json_value "$j" processes)
((rank >= 1 && rank <= procs)) || fail "rank $rank of $procs"
ok "doctor reads the process as /proc has it (adj 500, rank $rank of $procs)"

grep -q '"why":"oom_score_adj is 500 ' <<<"$j" || fail "the kernel's verdict does not give the adj: $j"
"$ctl" doctor "$pid" | grep -Eq '^  kernel +not-honoured ' || fail "the text report does not say the kernel may pick it"
ok "adj 500: the kernel's verdict is not-honoured, in JSON and text"

case $(stat -f -c %T /sys/fs/cgroup) in
cgroup2fs) want=unified ;;
tmpfs) [[ $(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]] && want=hybrid || want=legacy ;;
*) want=legacy ;;
esac
[[ $(json_value "$j" cgroup_mode) == "$want"* ]] || fail "cgroup mode $(json_value "$j" cgroup_mode), expected $want"
ok "cgroup mode $want"

rc=0
"$ctl" doctor 4194304 >/dev/null 2>&1 || rc=$?
((rc == 1)) || fail "doctor of a PID that does not exist exited $rc, expected 1"
rc=0
"$ctl" doctor --bogus >/dev/null 2>&1 || rc=$?
((rc == 2)) || fail "doctor --bogus exited $rc, expected 2"
ok "no such process: exit 1; unknown option: exit 2"

# --json=short as systemctl has it: the same object on one line; a bad mode is a usage error.
short=$("$ctl" doctor "$pid" --json=short) || fail "doctor --json=short failed"
[[ $(wc -l <<<"$short") == 1 && $short == "{"*"}" ]] || fail "doctor --json=short is not one line of JSON"
[[ $short == *"\"pid\":$pid,"* ]] || fail "doctor --json=short does not name PID $pid"
rc=0
"$ctl" doctor "$pid" --json=bogus >/dev/null 2>&1 || rc=$?
((rc == 2)) || fail "doctor --json=bogus exited $rc, expected 2"
ok "--json=short is one line of the same object; --json=bogus: exit 2"

# Guard rails: the processes the kernel may still kill (this one at adj 500 among them); no daemon here.
killable=$(json_value "$j" killable_processes)
((killable >= 1)) || fail "doctor counts $killable killable processes, with PID $pid at adj 500 among them"
"$ctl" doctor | grep -Eq '^  killable processes: [1-9][0-9]* ' || fail "the text report has no killable count"
"$ctl" doctor | grep -q 'oomprotectd not reachable, MaxProtectedMemory= not checked' ||
        fail "the text report does not say the ceiling was not checked without oomprotectd"
ok "guard rails: $killable killable processes; without oomprotectd the ceiling is said to be unchecked"

mount=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
        /proc/self/mountinfo)
if [[ -n $mount ]] && mkdir "$mount/oomptest-doctor$$.scope" 2>/dev/null; then
        cgdir=$mount/oomptest-doctor$$.scope
        echo "$pid" >"$cgdir/cgroup.procs" || fail "cannot move $pid into $cgdir"
        j=$("$ctl" doctor "oomptest-doctor$$.scope" --json) || fail "doctor oomptest-doctor$$.scope failed"
        [[ $(json_value "$j" pid) == "$pid" ]] || fail "doctor by unit name found PID $(json_value "$j" pid), not $pid"
        echo "$pid" >"$mount/cgroup.procs"
        ok "doctor UNIT finds the cgroup by name and its process"
else
        note "no writable cgroup2 here: the UNIT lookup is not checked"
fi
echo "test-doctor: $n_ok checks passed"
