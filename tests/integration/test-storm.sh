#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The kill-at-random-points storm (issue 10): the real daemon on a private
# bus is SIGKILLed $OOMPROTECT_STORM_KILLS times (200 by default), each time
# at a random moment while 4 D-Bus clients and 1 ctl.sock client protect and
# unprotect 40 processes as fast as it answers them. After each kill the
# clients are frozen (cgroup.freeze), the daemon is started again, and once it
# serves, the invariant is checked for every process:
#   - protected: ListProtected has its record, the record's original cgroup
#     and adj are what the process had before (/$top/targets, 0), and the
#     process is in the record's scope with the record's adj;
#   - or fully restored: back in /$top/targets with adj 0;
# and no scope exists under the slice but the records' own, no temporary
# file (.#*) is left in the state or compat directory.
#
# Needs root, a writable cgroup2 mount with cgroup.freeze, dbus-daemon and
# busctl (exits 77 with the reason otherwise).
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_FLOOD_HELPER:?}" "${OOMPROTECT_SRCDIR:?}"
kills=${OOMPROTECT_STORM_KILLS:-200}

require_root_and dbus-daemon busctl
find_cgroup2

sandbox_begin storm
mkdir "$CG/$top/clients" "$CG/$top/targets"
[[ -e $CG/$top/clients/cgroup.freeze ]] || skip "this kernel's cgroup2 has no cgroup.freeze"
# Raising an adj needs no CAP_SYS_RESOURCE (which the build machine lacks); it is told apart from 0 all the same.
sandbox_config "$tmp" 300

start_private_bus "$tmp"

start_daemon() {
        "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" >>"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 20 name_has_owner || fail "oomprotectd did not come back after kill $k"
}

freeze() {
        echo "$1" >"$CG/$top/clients/cgroup.freeze"
        wait_until 5 grep -qx "frozen $1" "$CG/$top/clients/cgroup.events" || fail "the clients did not freeze=$1"
}

# The records, one line each: PID SCOPE ORIGINAL-CGROUP ORIGINAL-ADJ APPLIED-ADJ (busctl quotes the strings).
records() {
        busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager ListProtected |
                awk '{ for (i = 3; i + 9 <= NF; i += 10) { gsub(/"/, "", $(i + 2)); gsub(/"/, "", $(i + 3));
                                                           print $i, $(i + 3), $(i + 2), $(i + 4), $(i + 5) } }'
}

check_invariant() {
        local pid scope orig oadj aadj cg adj dir
        local -A rec=()
        while read -r pid scope orig oadj aadj; do
                [[ $orig == "/$top/targets" && $oadj == 0 ]] ||
                        fail "kill $k: the record of PID $pid says it came from $orig with adj $oadj"
                read -r adj <"/proc/$pid/oom_score_adj" || fail "kill $k: PID $pid is protected but gone"
                cg=$(cg_of "$pid")
                [[ $cg == "$scope" && $adj == "$aadj" ]] ||
                        fail "kill $k: PID $pid is recorded in $scope with adj $aadj but is in $cg with adj $adj"
                rec[$scope]=$pid
        done < <(records)
        for pid in "${targets[@]}"; do
                read -r adj <"/proc/$pid/oom_score_adj" || fail "kill $k: target $pid died"
                [[ $(sed 's/.*) \(.\).*/\1/' "/proc/$pid/stat") != Z ]] ||
                        fail "kill $k: target $pid died (did its client die? $(tr '\n' ' ' <"$tmp/helper.log"))"
                cg=$(cg_of "$pid")
                [[ $cg == "/$top/targets" && $adj == 0 ]] && continue
                [[ -n ${rec[$cg]:-} && ${rec[$cg]} == "$pid" ]] ||
                        fail "kill $k: PID $pid has no record but is in $cg with adj $adj"
        done
        for dir in "$CG/$slice"/*/; do
                [[ -d $dir ]] || continue
                dir=${dir%/}
                [[ -n ${rec[/$slice/${dir##*/}]:-} ]] || fail "kill $k: a stray scope $dir"
        done
        if compgen -G "$tmp/state/.#*" >/dev/null || compgen -G "$tmp/compat/.#*" >/dev/null; then
                fail "kill $k: temporary files left: $(ls -A "$tmp/state" "$tmp/compat")"
        fi
        protected_now=${#rec[@]}
}

targets_started() {
        [[ -f $tmp/targets && $(wc -l <"$tmp/targets") -eq 40 ]]
}

test_the_daemon_survives_200_sigkills_at_random_points_losing_nothing() {
        local t0 k=0 seen=0 most=0
        start_daemon
        wait_until 10 test -S "$tmp/compat/ctl.sock" || fail "ctl.sock is not served"
        sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --clients 4 --pids 8 --ctl-clients 1 --socket "$3" \
                --seconds 100000 --targets "$4" --storm "$5"' storm "$CG/$top/clients" "$OOMPROTECT_FLOOD_HELPER" \
                "$tmp/compat/ctl.sock" "$CG/$top/targets" "$tmp/targets" >"$tmp/helper.log" 2>&1 &
        helper_pid=$!
        wait_until 10 targets_started ||
                fail "the clients did not start their 40 processes"
        mapfile -t targets <"$tmp/targets"
        t0=$SECONDS
        for ((k = 1; k <= kills; k++)); do
                sleep "0.0$((RANDOM % 10))$((RANDOM % 10))" # 0 to 99 ms of flood
                kill -KILL "$daemon_pid"
                wait "$daemon_pid" 2>/dev/null || true
                freeze 1
                start_daemon
                check_invariant
                seen=$((seen + protected_now))
                ((protected_now > most)) && most=$protected_now
                freeze 0
        done
        ((seen > kills)) || fail "only $seen protections were found after $kills restarts: the storm tested nothing"
        ok "$kills SIGKILLs at random points in $((SECONDS - t0)) s: after each, every one of the 40 processes" \
                "protected with a matching record or fully restored ($seen protections held over the restarts," \
                "at most $most at once), no stray scope, no temporary file"
}

test_the_daemon_survives_200_sigkills_at_random_points_losing_nothing
echo "1..$n_ok"
