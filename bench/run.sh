#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The benchmarks of DESIGN.md section 6 (issue 11), every figure beside its
# baseline measured in the same run. Like the integration tests it starts its
# own private dbus-daemon (configured like the system bus, with the shipped
# policy) and its own oomprotectd (cgroupfs backend on a cgroup2 subtree of its
# own), so it touches nothing of the host's. scripts/bench.sh builds and runs
# it; this script expects a build.
#
#   bench/run.sh [--quick|--smoke] [--no-callgrind] [--out DIR]
#
#   (default)  3 interleaved rounds, scaling up to 10,000 protections, 30 s
#              idle window, strace and perf of the daemon, callgrind of the
#              per-change work: ~10 minutes
#   --quick    1 round, scaling up to 1,000, 5 s idle window, no callgrind
#   --smoke    seconds: that every binary builds and one short run of each
#              kind works (ctest's bench/smoke)
#   --report-only  print the table again from the figures in --out DIR
#
# Environment: OOMPROTECT_BINDIR (the build, default build-bench),
# OOMPROTECT_SRCDIR (default: this checkout). Results: a table on stdout and
# everything measured, with logs, in --out (default BINDIR/bench-results).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export OOMPROTECT_SRCDIR=${OOMPROTECT_SRCDIR:-$(dirname "$here")}
bindir=${OOMPROTECT_BINDIR:-$OOMPROTECT_SRCDIR/build-bench}
# shellcheck source=tests/integration/lib.sh
source "$OOMPROTECT_SRCDIR/tests/integration/lib.sh"

mode=full callgrind=1 out='' report_only=0
while [[ $# -gt 0 ]]; do
        case $1 in
        --report-only) report_only=1 ;;
        --quick) mode=quick callgrind=0 ;;
        --smoke) mode=smoke callgrind=0 ;;
        --no-callgrind) callgrind=0 ;;
        --out) out=$2 && shift ;;
        *) echo "usage: bench/run.sh [--quick|--smoke] [--no-callgrind] [--out DIR] [--report-only]" >&2 && exit 2 ;;
        esac
        shift
done

case $mode in
full) rounds=3 count=400 seconds=4 levels=(10 100 1000 10000) idle=30 shell_count=100 gap_count=50 ;;
quick) rounds=1 count=200 seconds=2 levels=(10 100 1000) idle=5 shell_count=50 gap_count=50 ;;
smoke) rounds=1 count=10 seconds=0.5 levels=(10) idle=1 shell_count=5 gap_count=5 ;;
esac

# OOMPROTECT_DAEMON: another oomprotectd to measure with the same bench (say, a build of main, for a before/after).
DAEMON=${OOMPROTECT_DAEMON:-$bindir/oomprotectd}
BENCH=$bindir/bench/oombench
SLEEPERS=$bindir/bench/oombench-sleepers
CORE=$bindir/bench/oombench-core
FLOOD=$bindir/bench/oombench-flood
for f in "$DAEMON" "$BENCH" "$SLEEPERS" "$CORE" "$FLOOD"; do
        [[ -x $f ]] || fail "$f is missing: build first (scripts/bench.sh does)"
done
require_root_and dbus-daemon busctl choom
find_cgroup2

name=oombench$$
top=$name.slice
slice=$name-protected.slice
adj_orig=700 # without CAP_SYS_RESOURCE nothing may go below 0: victims start high, protection lowers them to 0
adj_prot=0
mkdir "$CG/$top" 2>/dev/null || skip "the cgroup2 mount $CG is not writable"
mkdir "$CG/$top/victims" "$CG/$top/load" "$CG/$top/raw"

# StateDirectory= and CompatDirectory= live in /run on a real host, a tmpfs: fsync costs nothing there.
# Here /run may be on disk, so the bench puts them on a tmpfs of its own choosing.
tmpbase=/tmp
[[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]] && tmpbase=/dev/shm
tmp=$(mktemp -d "$tmpbase/oomprotect-bench.XXXXXX")
out=${out:-$bindir/bench-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
((report_only)) || rm -f "$out"/*.txt "$out"/*.log "$out"/callgrind.* 2>/dev/null || true
dbus_pid='' daemon_pid='' earlyoom_pid='' victim_pid=''
sleeper_parents=()

cleanup() {
        local rc=$? pid
        set +e
        [[ -n $daemon_pid ]] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
        for pid in "$daemon_pid" "$earlyoom_pid" "$dbus_pid" "${sleeper_parents[@]}"; do
                [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
        done
        echo 1 >"$CG/$top/cgroup.kill" 2>/dev/null
        wait 2>/dev/null
        if [[ $rc -ne 0 && $rc -ne 77 && -f $tmp/daemon.log ]]; then
                echo "--- daemon log (last 20 lines) ---"
                tail -n 20 "$tmp/daemon.log"
        fi
        for _ in $(seq 200); do
                find "$CG/$top" -depth -type d -exec rmdir {} + 2>/dev/null
                [[ -d $CG/$top ]] || break
                sleep 0.05 # the kernel frees killed cgroups asynchronously
        done
        [[ -d $CG/$top ]] && echo "# warning: could not remove $CG/$top"
        cp "$tmp"/daemon.log "$out/" 2>/dev/null
        rm -rf "$tmp"
        exit "$rc"
}
trap cleanup EXIT

# ---- helpers ----

log() { echo "# $*" >&2; }

# spawn_sleepers SUB N: N more sleepers in <top>/SUB at adj_orig; appends "PID STARTTIME" lines to $tmp/SUB.pids.
spawn_sleepers() {
        local sub=$1 n=$2 fifo=$tmp/sleepers.out line
        mkdir -p "$CG/$top/$sub"
        rm -f "$fifo" && mkfifo "$fifo"
        sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" "$3" "$4"' spawn "$CG/$top/$sub" "$SLEEPERS" "$n" \
                "$adj_orig" >"$fifo" &
        sleeper_parents+=("$!")
        while read -r line; do
                [[ $line == READY ]] && break
                echo "$line" >>"$tmp/$sub.pids"
        done <"$fifo"
        [[ $line == READY ]] || fail "oombench-sleepers $n did not start"
}

# key FIELD LINE: the value of FIELD=... in a result line.
key() {
        local re="(^| )$1=([^ ]+)"
        [[ $2 =~ $re ]] && echo "${BASH_REMATCH[2]}"
}

# median VALUES...
median() {
        printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# calc EXPR: floating point arithmetic.
calc() {
        awk "BEGIN { printf \"%.2f\", $* }"
}

# bench VERB ARGS...: one oombench run, its result line also logged.
bench() {
        local verb=$1 line
        shift
        line=$("$BENCH" --count "$count" --seconds "$seconds" "$@" "$verb") || fail "oombench $verb failed"
        echo "$verb $*: $line" >>"$out/runs.log"
        echo "$line"
}

write_config() {
        cat >"$tmp/oomprotectd.conf" <<EOF
[Manager]
Backend=cgroupfs
CgroupRoot=$CG
Slice=$slice
StateDirectory=$tmp/state
CompatDirectory=$tmp/compat
OOMScoreAdjust=$adj_prot
MaxProtected=20000
MemoryMinBudget=infinity
EOF
}

# start_daemon: the daemon, ready when it owns its name; sets daemon_pid and start_ms (how long until
# ready: the state reload at start included).
start_daemon() {
        local t0
        t0=$(date +%s%N)
        # A pidfd per protection: 10,000 protections need more than the usual 1,024 descriptors.
        (
                ulimit -n "$(ulimit -Hn)"
                exec "$DAEMON" --config="$tmp/oomprotectd.conf"
        ) 2>>"$tmp/daemon.log" &
        daemon_pid=$!
        wait_until 600 name_has_owner || fail "oomprotectd did not start: $(tail -n 5 "$tmp/daemon.log")"
        start_ms=$((($(date +%s%N) - t0) / 1000000))
}

stop_daemon() {
        kill -TERM "$daemon_pid"
        wait "$daemon_pid" || true
        daemon_pid=''
        wait_until 10 sh -c '! busctl status org.oomprotect >/dev/null 2>&1' || true
}

# rss_kb PID, uss_kb PID: resident set, and what only this process holds (private pages).
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
uss_kb() { awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s }' "/proc/$1/smaps_rollup"; }
# cpu_ns PID: time on a CPU so far (/proc/PID/schedstat): what a request costs the daemon, waits excluded,
# and far less disturbed by the other users of a shared machine than wall time.
cpu_ns() { cut -d' ' -f1 "/proc/$1/schedstat"; }
# switches PID: voluntary + involuntary context switches so far (each wakeup is at least one).
switches() { awk '/ctxt_switches:/ { s += $2 } END { print s }' "/proc/$1/status"; }

# seed_state N: state.json holding one record for each of the first N sleepers of <top>/load, as a
# daemon that protected them would have written it (format version 1, src/core/state.h).
seed_state() {
        local now
        now=$(($(date +%s) * 1000000))
        mkdir -p "$tmp/state"
        head -n "$1" "$tmp/load.pids" | awk -v top="$top" -v slice="$slice" -v orig="$adj_orig" -v prot="$adj_prot" -v now="$now" '
                BEGIN { printf "{\"version\":1,\"protections\":[" }
                {
                        printf "%s{\"pid\":%d,\"starttime\":%s,\"comm\":\"oombench-sleepe\",\"uid\":0,", n++ ? "," : "", $1, $2
                        printf "\"original_cgroup\":\"/%s/load\",\"scope_cgroup\":\"/%s/%s/oomprotect-%d.scope\",", top, top, slice, $1
                        printf "\"original_adj\":%d,\"applied_adj\":%d,\"memory_min\":0,\"memory_low\":0,", orig, prot
                        printf "\"oom_group\":false,\"descendants\":false,\"since_usec\":%s,\"source\":\"bench\",\"tag\":null,\"members\":[]}", now
                }
                END { printf "]}\n" }' >"$tmp/state/state.json"
}

# ---- figures: every one is kept as "name value" in $out/figures.txt ----

fig() { echo "$1 $2" >>"$out/figures.txt"; }
figv() { awk -v k="$1" '$1 == k { print $2; exit }' "$out/figures.txt"; }

machine() {
        {
                echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
                echo "host: $(uname -srm), $(nproc) CPUs: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
                echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
                echo "cgroup2: $CG ($(awk -v m="$CG" '$2 == m { print $4 }' /proc/mounts)), controllers: $(cat "$CG/cgroup.controllers")"
                echo "state and compat directories on: $(stat -f -c %T "$tmp")"
                echo "commit: $(git -C "$OOMPROTECT_SRCDIR" describe --always --dirty 2>/dev/null || echo unknown); daemon: $DAEMON"
                echo "mode: $mode ($rounds round(s), up to $count rounds or ${seconds} s per figure)"
        } >"$out/machine.txt"
}

# ---- the steps ----

idle_and_rss() {
        local d0 e0 d1 e1 eo=''
        command -v earlyoom >/dev/null && [[ $mode != smoke ]] && eo=1
        if [[ -n $eo ]]; then
                # Debian's default arguments (-r 3600), and --dryrun: it must never kill on a shared machine.
                earlyoom -r 3600 --dryrun >"$tmp/earlyoom.log" 2>&1 &
                earlyoom_pid=$!
        fi
        sleep 1
        fig rss_idle_kb "$(rss_kb "$daemon_pid")"
        # Where the idle RSS is: kB resident and private per mapped object.
        awk '/^[0-9a-f]+-/ { name = $6 == "" ? "[anon]" : $6 } /^Rss:/ { rss[name] += $2 }
             /^Private_(Clean|Dirty):/ { priv[name] += $2 }
             END { for (n in rss) printf "%6d %6d %s\n", rss[n], priv[n], n }' "/proc/$daemon_pid/smaps" |
                sort -rn >"$out/smaps-idle.txt"
        fig uss_idle_kb "$(uss_kb "$daemon_pid")"
        fig rss_dbus_kb "$(rss_kb "$dbus_pid")"
        if [[ -n $eo ]]; then
                fig rss_earlyoom_kb "$(rss_kb "$earlyoom_pid")"
                fig uss_earlyoom_kb "$(uss_kb "$earlyoom_pid")"
        fi
        log "idle window: $idle s"
        d0=$(switches "$daemon_pid")
        [[ -n $eo ]] && e0=$(switches "$earlyoom_pid")
        sleep "$idle"
        d1=$(switches "$daemon_pid")
        fig wakeups_daemon "$((d1 - d0))"
        if [[ -n $eo ]]; then
                e1=$(switches "$earlyoom_pid")
                fig wakeups_earlyoom "$((e1 - e0))"
                kill "$earlyoom_pid"
                wait "$earlyoom_pid" 2>/dev/null || true
                earlyoom_pid=''
        fi
        fig idle_seconds "$idle"
}

# One round of the pair and its baselines, interleaved so that they share the machine's noise.
pair_round() {
        local i=$1 line c0 common=(--pid "$victim_pid" --adj "$adj_prot" --orig-adj "$adj_orig")
        line=$(bench raw "${common[@]}" --root "$CG" --parent "$top/raw" --orig "$top/victims")
        fig "raw_p50.$i" "$(key p50_us "$line")"
        fig "raw_p99.$i" "$(key p99_us "$line")"
        fig raw_memory_min "$(key memory_min "$line")"
        # The same kernel work with the rounds 20 ms apart, as a daemon's requests come: moving a process
        # between cgroups then waits for an RCU grace period (see BENCHMARKS.md).
        line=$("$BENCH" --count "$gap_count" --seconds "$seconds" --gap-us 20000 "${common[@]}" --root "$CG" \
                --parent "$top/raw" --orig "$top/victims" raw) || fail "oombench raw --gap-us failed"
        echo "raw spaced: $line" >>"$out/runs.log"
        fig "rawgap_p50.$i" "$(key p50_us "$line")"
        fig "rawgap_mean.$i" "$(key mean_us "$line")"
        fig "rawgap_p99.$i" "$(key p99_us "$line")"
        line=$(bench noop --method ping)
        fig "ping_p50.$i" "$(key p50_us "$line")"
        fig "ping_p99.$i" "$(key p99_us "$line")"
        line=$(bench noop --method get)
        fig "get_p50.$i" "$(key p50_us "$line")"
        c0=$(cpu_ns "$daemon_pid")
        line=$(bench dbus-pair "${common[@]}")
        fig "pair_cpu.$i" "$(calc "($(cpu_ns "$daemon_pid") - $c0) / 1000 / ($(key n "$line") + 3)")"
        fig "pair_p50.$i" "$(key p50_us "$line")"
        fig "pair_p99.$i" "$(key p99_us "$line")"
        fig "pair_rate.$i" "$(key per_s "$line")"
        line=$(bench ctl-pair "${common[@]}" --socket "$tmp/compat/ctl.sock")
        fig "ctl_p50.$i" "$(key p50_us "$line")"
        fig "ctl_p99.$i" "$(key p99_us "$line")"
        line=$("$BENCH" --count "$shell_count" --seconds "$seconds" "${common[@]}" --root "$CG" --parent "$top/raw" \
                --orig "$top/victims" shell-pair) || fail "oombench shell-pair failed"
        echo "shell-pair: $line" >>"$out/runs.log"
        fig "shell_p50.$i" "$(key p50_us "$line")"
}

# Ping and a quiet client's Protect/Unprotect while 8 D-Bus clients (16 calls in flight each) and 2 ctl.sock
# clients flood the daemon (issue 10): the work goes in turns, a Ping waits for about one call.
flood_round() {
        local line secs=$seconds
        [[ $mode == smoke ]] && secs=1
        mkdir -p "$CG/$top/flood"
        line=$(sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && shift 2 && exec "$@"' \
                flood "$CG/$top/flood" "$adj_orig" "$FLOOD" --clients 8 --pids 16 --ctl-clients 2 \
                --socket "$tmp/compat/ctl.sock" --seconds "$secs" | tr '\n' ' ') || fail "oombench-flood failed: $line"
        echo "flood: $line" >>"$out/runs.log"
        fig flood_ping_p50 "$(key ping_p50_ms "$line")"
        fig flood_ping_p99 "$(key ping_p99_ms "$line")"
        fig flood_ping_max "$(key ping_max_ms "$line")"
        fig flood_quiet_p50 "$(key quiet_p50_ms "$line")"
        fig flood_quiet_max "$(key quiet_max_ms "$line")"
        fig flood_rate "$(key flood_ops_per_s "$line")"
        fig flood_errors "$(key flood_errors "$line")"
}

# The median over the rounds of name.1, name.2, ...
fold_rounds() {
        local k vals
        for k in raw_p50 raw_p99 rawgap_p50 rawgap_mean rawgap_p99 ping_p50 ping_p99 get_p50 pair_p50 pair_p99 pair_rate pair_cpu ctl_p50 ctl_p99 shell_p50; do
                mapfile -t vals < <(awk -v k="$k" 'index($1, k ".") == 1 { print $2 }' "$out/figures.txt")
                fig "$k" "$(median "${vals[@]}")"
        done
}

# The pair at N protections: N sleepers in <top>/load, protected through a state.json the daemon
# reloads at start (what a restart does; protecting 10,000 one by one costs O(N^2) today, see
# BENCHMARKS.md), then the pair on the victim as before.
scale_level() {
        local n=$1 have=0 line c0
        [[ -f $tmp/load.pids ]] && have=$(wc -l <"$tmp/load.pids")
        ((n > have)) && spawn_sleepers load $((n - have))
        stop_daemon
        seed_state "$n"
        start_daemon
        fig "start_ms.$n" "$start_ms"
        [[ $(busctl get-property org.oomprotect /org/oomprotect org.oomprotect.Manager ProtectedCount) == "u $n" ]] ||
                fail "the daemon did not take up the $n protections of state.json"
        # Few rounds at large N: a pair costs up to a tenth of a second there.
        c0=$(cpu_ns "$daemon_pid")
        line=$("$BENCH" --count "$count" --seconds "$seconds" --pid "$victim_pid" dbus-pair) || fail "dbus-pair at $n"
        echo "dbus-pair at $n: $line" >>"$out/runs.log"
        fig "scale_cpu.$n" "$(calc "($(cpu_ns "$daemon_pid") - $c0) / 1000 / ($(key n "$line") + 3)")"
        profile_daemon "$n"
        fig "scale_p50.$n" "$(key p50_us "$line")"
        fig "scale_p99.$n" "$(key p99_us "$line")"
        fig "scale_n.$n" "$(key n "$line")"
        line=$("$BENCH" --count 20 --seconds "$seconds" list) || fail "ListProtected at $n"
        echo "list at $n: $line" >>"$out/runs.log"
        fig "list_p50.$n" "$(key p50_us "$line")"
        line=$("$BENCH" --count 50 --seconds "$seconds" --status "$tmp/compat/status" status-read) ||
                fail "status at $n"
        echo "status-read at $n: $line" >>"$out/runs.log"
        fig "status_read_p50.$n" "$(key p50_us "$line")"
        fig "status_bytes.$n" "$(key bytes "$line")"
        line=$("$BENCH" --count 20 --seconds "$seconds" --pid "$victim_pid" --status "$tmp/compat/status" \
                status-fresh | tr '\n' ' ') || fail "status freshness at $n"
        echo "status-fresh at $n: $line" >>"$out/runs.log"
        fig "status_fresh_mean.$n" "$(key fresh_mean_us "$line")"
        fig "status_fresh_max.$n" "$(key fresh_max_us "$line")"
        fig "rss_kb.$n" "$(rss_kb "$daemon_pid")"
        fig "uss_kb.$n" "$(uss_kb "$daemon_pid")"
        # What of that is free heap glibc keeps (the peaks of whole-state rebuilds), not live data.
        if command -v gdb >/dev/null && [[ $mode != smoke ]]; then
                gdb -q -p "$daemon_pid" -batch -ex 'call (int) malloc_trim(0)' >/dev/null 2>&1 || true
                fig "rss_trimmed_kb.$n" "$(rss_kb "$daemon_pid")"
        fi
}

# syscalls the daemon makes: strace -c over K protects of distinct processes, then K unprotects.
strace_daemon() {
        local k=50 pids pid spid line f
        command -v strace >/dev/null || return 0
        spawn_sleepers strace "$k"
        mapfile -t pids < <(awk '{ print $1 }' "$tmp/strace.pids")
        for phase in Protect Unprotect; do
                strace -c -f -o "$out/strace-$phase.txt" -p "$daemon_pid" 2>/dev/null &
                spid=$!
                sleep 0.5
                for pid in "${pids[@]}"; do
                        mgr "$phase" u "$pid" >/dev/null
                done
                kill -INT "$spid"
                wait "$spid" 2>/dev/null || true
                fig "syscalls_per_$phase" "$(awk -v k="$k" '$NF == "total" { printf "%.0f", $4 / k }' \
                        "$out/strace-$phase.txt")"
        done
        # The same processes in one burst each way, pipelined on one connection: how long (untraced), and
        # how often are status and state.json rewritten (traced, a second time)?
        line=$("$BENCH" --pids "$tmp/strace.pids" burst) || fail "oombench burst failed"
        echo "burst: $line" >>"$out/runs.log"
        for f in n protect_ms unprotect_ms; do
                fig "burst_$f" "$(key "$f" "$line")"
        done
        strace -f -e trace=rename,renameat,renameat2,fdatasync -o "$tmp/renames.txt" -p "$daemon_pid" 2>/dev/null &
        spid=$!
        sleep 0.5
        "$BENCH" --pids "$tmp/strace.pids" burst >>"$out/runs.log" || fail "oombench burst failed"
        sleep 0.3 # the rewrite after the last reply
        kill -INT "$spid"
        wait "$spid" 2>/dev/null || true
        fig burst_rewrites "$(grep -c '"status")' "$tmp/renames.txt" || true)"
        fig burst_state_saves "$(grep -c '"state.json")' "$tmp/renames.txt" || true)"
        fig burst_state_appends "$(grep -c 'fdatasync(' "$tmp/renames.txt" || true)"
}

# perf record (cpu-clock samples: this machine has no hardware counters) of the daemon over a few seconds
# of pairs, after the measured ones: where its CPU time goes at N protections. Top symbols in $out.
profile_daemon() {
        local n=$1 ppid
        [[ $mode != smoke ]] && command -v perf >/dev/null || return 0
        perf record -q -e cpu-clock -F 2000 -g -p "$daemon_pid" -o "$tmp/perf.data" >/dev/null 2>&1 &
        ppid=$!
        sleep 0.3
        "$BENCH" --count 100000 --seconds 3 --pid "$victim_pid" dbus-pair >/dev/null || true
        kill -INT "$ppid"
        wait "$ppid" 2>/dev/null || true
        perf report -q -i "$tmp/perf.data" --stdio --no-children --sort symbol -g none --percent-limit 1 \
                >"$tmp/perf.txt" 2>/dev/null || true
        head -n 30 "$tmp/perf.txt" >"$out/perf-daemon-N$n.txt"
        # Kernel, libc, libjson-c, libsystemd, the daemon: who spends its CPU.
        perf report -q -i "$tmp/perf.data" --stdio --no-children --sort dso -g none --percent-limit 1 \
                >"$out/perf-daemon-N$n-dso.txt" 2>/dev/null || true
        fig "perf_dso.$n" "$(awk 'NF >= 2 { sub(/%/, "", $1); printf "%s%s=%s%%", (k++ ? "," : ""), $2, $1 }' \
                "$out/perf-daemon-N$n-dso.txt" | head -c 200)"
}

# callgrind instruction counts of the per-change work that grows with N, without a daemon
# (oombench-core; valgrind 3.19 cannot run the daemon: it lacks pidfd_open).
callgrind_core() {
        local verb n ir repeat
        command -v valgrind >/dev/null || return 0
        for verb in serialize commit status registry; do
                for n in 10 1000 10000; do
                        repeat=$(valgrind --tool=callgrind --collect-atstart=no --toggle-collect='measured_*' \
                                --callgrind-out-file="$out/callgrind.$verb.$n" "$CORE" "$verb" "$n" "$tmp" 2>"$tmp/cg.log" |
                                sed -n 's/^repeat=//p')
                        ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/cg.log")
                        fig "ir_$verb.$n" "$((ir / repeat))"
                done
        done
        callgrind_annotate "$out/callgrind.serialize.10000" 2>/dev/null >"$tmp/cg.txt" || true
        head -n 30 "$tmp/cg.txt" >"$out/callgrind-serialize-10000.txt"
}

# ---- the report ----

# row FIGURE MEASURED BASELINE RATIO TARGET VERDICT
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
verdict() { awk "BEGIN { exit !($1) }" && echo met || echo MISSED; }

report() {
        local raw ping pair floor floor99 ratio shell ctl
        raw=$(figv raw_p50) ping=$(figv ping_p50) pair=$(figv pair_p50)
        floor=$(calc "$raw + 2 * $ping")
        floor99=$(calc "$(figv raw_p99) + 2 * $(figv ping_p99)")
        shell=$(figv shell_p50) ctl=$(figv ctl_p50)
        echo
        echo "## oomprotect benchmarks ($mode)"
        echo
        cat "$out/machine.txt"
        echo
        row figure measured "baseline (same run)" ratio target verdict
        row --- --- --- --- --- ---
        ratio=$(calc "$pair / $floor")
        row "Protect+Unprotect over D-Bus, p50" "$pair µs" "floor $floor µs = raw $raw µs (memory.min: $(figv raw_memory_min)) + 2 × Ping $ping µs" \
                "${ratio}×" "≤ 2× floor" "$(verdict "$ratio <= 2")"
        ratio=$(calc "$(figv pair_p99) / $floor99")
        row "same, p99" "$(figv pair_p99) µs" "floor p99 $floor99 µs" "${ratio}×" "≤ 4× floor p99" "$(verdict "$ratio <= 4")"
        row "same, pairs/s" "$(figv pair_rate)" "raw floor $(calc "1000000 / $raw") /s" "" "" ""
        row "daemon CPU time per pair (schedstat)" "$(figv pair_cpu) µs" "raw floor $raw µs (all of it in the kernel)" \
                "$(calc "$(figv pair_cpu) / $raw")×" "" ""
        ratio=$(calc "$shell / $pair")
        row "vs the shell way (6 fork/execs a pair)" "$pair µs" "shell $shell µs" "${ratio}× faster" "≥ 10× faster" \
                "$(verdict "$ratio >= 10")"
        row "raw floor with pairs 20 ms apart, p50 / mean / p99" "$(figv rawgap_p50) / $(figv rawgap_mean) / $(figv rawgap_p99) µs" \
                "back to back: $raw µs" "$(calc "$(figv rawgap_mean) / $raw")× (mean)" "" ""
        row "the pair over ctl.sock, p50 (p99)" "$ctl µs ($(figv ctl_p99) µs)" "raw $raw µs" "$(calc "$ctl / $raw")× raw" "" ""
        row "D-Bus no-op: Get(Version), p50" "$(figv get_p50) µs" "Ping $ping µs" "$(calc "$(figv get_p50) / $ping")×" "" ""
        if [[ -n $(figv flood_ping_p99) ]]; then
                row "Ping during a flood from 8+2 clients, p50 / p99 / max" \
                        "$(figv flood_ping_p50) / $(figv flood_ping_p99) / $(figv flood_ping_max) ms" \
                        "idle Ping $ping µs; the flood: $(figv flood_rate) calls/s, $(figv flood_errors) failed" "" \
                        "p99 ≤ 100 ms" "$(verdict "$(figv flood_ping_p99) <= 100")"
                row "a quiet client's Protect or Unprotect during it, p50 / max" \
                        "$(figv flood_quiet_p50) / $(figv flood_quiet_max) ms" "one turn: 10 clients × $(calc "1000 / $(figv flood_rate)") ms" "" "" ""
        fi
        local first=${levels[0]} n last
        for n in "${levels[@]}"; do
                row "pair at N=$n protected, p50 (p99; pairs; daemon CPU)" \
                        "$(figv "scale_p50.$n") µs ($(figv "scale_p99.$n") µs; $(figv "scale_n.$n"); $(figv "scale_cpu.$n") µs)" \
                        "N=$first: $(figv "scale_p50.$first") µs" "$(calc "$(figv "scale_p50.$n") / $(figv "scale_p50.$first")")×" \
                        "≤ 1.3×" "$(verdict "$(figv "scale_p50.$n") <= 1.3 * $(figv "scale_p50.$first")")"
                last=$n
        done
        for n in "$first" "$last"; do
                [[ -n $(figv "perf_dso.$n") ]] || continue
                row "daemon CPU by object at N=$n (perf cpu-clock)" "$(figv "perf_dso.$n" | sed 's/,/, /g')" "" "" "" ""
        done
        row "ListProtected at N=$last, p50" "$(figv "list_p50.$last") µs" "" "" "< 50 ms" "$(verdict "$(figv "list_p50.$last") < 50000")"
        row "status at N=$last: read ($(figv "status_bytes.$last") bytes), p50" "$(figv "status_read_p50.$last") µs" "" "" \
                "< 50 ms" "$(verdict "$(figv "status_read_p50.$last") < 50000")"
        row "status at N=$last: current after the Protect reply (mean; max)" \
                "$(figv "status_fresh_mean.$last") µs; $(figv "status_fresh_max.$last") µs" "" "" "< 50 ms" \
                "$(verdict "$(figv "status_fresh_max.$last") < 50000")"
        row "daemon start with N=$last records in state.json" "$(figv "start_ms.$last") ms" "" "" "" ""
        local eo_rss eo_uss
        eo_rss=$(figv rss_earlyoom_kb) eo_uss=$(figv uss_earlyoom_kb)
        if [[ -n $eo_rss ]]; then
                ratio=$(calc "$(figv rss_idle_kb) / $eo_rss")
                row "RSS idle (USS)" "$(figv rss_idle_kb) kB ($(figv uss_idle_kb) kB)" "earlyoom $eo_rss kB ($eo_uss kB); dbus-daemon $(figv rss_dbus_kb) kB" \
                        "${ratio}× ($(calc "$(figv uss_idle_kb) / $eo_uss")× USS)" "≤ 2× earlyoom" "$(verdict "$ratio <= 2")"
                row "idle wakeups over $(figv idle_seconds) s (context switches)" "$(figv wakeups_daemon)" \
                        "earlyoom $(figv wakeups_earlyoom)" "" "0" "$(verdict "$(figv wakeups_daemon) == 0")"
        else
                row "RSS idle (USS)" "$(figv rss_idle_kb) kB ($(figv uss_idle_kb) kB)" "earlyoom not run" "" "≤ 2× earlyoom" ""
                row "idle wakeups over $(figv idle_seconds) s" "$(figv wakeups_daemon)" "" "" "0" \
                        "$(verdict "$(figv wakeups_daemon) == 0")"
        fi
        local per
        per=$(calc "($(figv "rss_kb.$last") - $(figv rss_idle_kb)) / $last")
        row "RSS with N=$last protections (USS)" "$(figv "rss_kb.$last") kB ($(figv "uss_kb.$last") kB)" "idle $(figv rss_idle_kb) kB" \
                "$per kB per protection" "≤ 1 kB each" "$(verdict "$per <= 1")"
        if [[ -n $(figv "rss_trimmed_kb.$last") ]]; then
                per=$(calc "($(figv "rss_trimmed_kb.$last") - $(figv rss_idle_kb)) / $last")
                row "same after malloc_trim(0) in the daemon (gdb)" "$(figv "rss_trimmed_kb.$last") kB" "idle $(figv rss_idle_kb) kB" \
                        "$per kB per protection" "" ""
        fi
        if [[ -n $(figv syscalls_per_Protect) ]]; then
                row "syscalls per Protect / Unprotect (strace -c of the daemon)" \
                        "$(figv syscalls_per_Protect) / $(figv syscalls_per_Unprotect)" "raw: 4 / 4 (plus open/close per file)" "" "" ""
        fi
        if [[ -n $(figv burst_n) ]]; then
                row "a burst of $(figv burst_n) Protects, then of $(figv burst_n) Unprotects, pipelined" \
                        "$(figv burst_protect_ms) ms, $(figv burst_unprotect_ms) ms" \
                        "$((2 * $(figv burst_n))) changes: status rewritten $(figv burst_rewrites) times; state.json rewritten $(figv burst_state_saves), appended to $(figv burst_state_appends)" \
                        "" "" ""
        fi
        for verb in serialize commit status registry; do
                [[ -n $(figv "ir_$verb.10") ]] || continue
                row "callgrind instructions: $verb (per call) at N=10 / 1000 / 10000" \
                        "$(figv "ir_$verb.10") / $(figv "ir_$verb.1000") / $(figv "ir_$verb.10000")" "" \
                        "$(calc "$(figv "ir_$verb.10000") / $(figv "ir_$verb.10")")× from 10 to 10000" "" ""
        done
        echo
        echo "Raw figures: $out/figures.txt; every run: $out/runs.log; strace and callgrind reports beside them."
}

# ---- main ----

if ((report_only)); then
        [[ -f $out/figures.txt ]] || fail "no $out/figures.txt to report on"
        mapfile -t levels < <(sed -n 's/^scale_p50\.\([0-9]*\) .*/\1/p' "$out/figures.txt")
        mode=$(sed -n 's/^mode: \([a-z]*\).*/\1/p' "$out/machine.txt")
        report | tee "$out/report.md"
        exit 0
fi

machine
: >"$out/figures.txt" && : >"$out/runs.log"
start_private_bus "$tmp"
write_config
start_daemon
fig start_ms.0 "$start_ms"
spawn_sleepers victims 1
victim_pid=$(awk 'NR == 1 { print $1 }' "$tmp/victims.pids")

log "idle: RSS and wakeups"
idle_and_rss
for ((i = 1; i <= rounds; i++)); do
        log "round $i of $rounds: raw floor, D-Bus no-op, the pair over D-Bus and ctl.sock, the shell way"
        pair_round "$i"
done
fold_rounds
log "a flood from 8 D-Bus and 2 ctl.sock clients: Ping meanwhile"
flood_round
[[ $mode == smoke ]] || strace_daemon
for n in "${levels[@]}"; do
        log "the pair at N=$n"
        scale_level "$n"
done
if ((callgrind)); then
        log "callgrind: the per-change work at N=10, 1000, 10000"
        callgrind_core
fi
report | tee "$out/report.md"
