# shellcheck shell=bash
# Helpers for the VM scenarios (guest side). Sourced, not a scenario itself:
# the runner only runs files named NN-name.sh.
#
# Conventions: a scenario exits 0 = PASS, 77 = SKIP, anything else = FAIL.
# Its last line starting with "PASS:", "FAIL:" or "SKIP:" (else its last
# line) becomes the reason on the RESULT line, so say why in that line.
# Everything a scenario starts is undone by the cleanups registered with
# on_exit, since all scenarios share one booted guest.

set -euo pipefail

readonly CG=/sys/fs/cgroup
readonly OP_BUS=(org.oomprotect /org/oomprotect org.oomprotect.Manager)
readonly OP_UNIT=oomprotectd.service
readonly OP_CONF_DIR=/etc/oomprotect/oomprotectd.conf.d
# shellcheck disable=SC2034 # used by the scenarios
readonly OP_COMPAT_DIR=/run/oom_kill_protection
# shellcheck disable=SC2034 # used by the scenarios
readonly OP_STATE_FILE=/run/oomprotect/state.json
# state_version: the version of state.json's document (its first JSON value; journal lines follow it).
state_version() { jq -s -e '.[0].version' "$OP_STATE_FILE"; }
# state_records: the records state.json holds, one JSON object a line, its journal applied: the
# document's records, then each {"put":RECORD} and {"del":PID} line in order.
state_records() {
        jq -c -s 'reduce .[1:][] as $l ([.[0].protections[]?];
                if $l.put then map(select(.pid != $l.put.pid)) + [$l.put]
                elif $l.del then map(select(.pid != $l.del)) else . end) | .[]' "$OP_STATE_FILE"
}
# state_pids: the PIDs of those records.
state_pids() { state_records | jq -r .pid; }
readonly ADJ_PROTECTED=-1000

info() { printf '%s\n' "$*"; }
pass() {
        printf 'PASS: %s\n' "$*"
        exit 0
}
fail() {
        printf 'FAIL: %s\n' "$*"
        exit 1
}
skip() {
        printf 'SKIP: %s\n' "$*"
        exit 77
}

# A failure that should not hide the checks after it: noted now, reported
# by pass_unless_deferred at the end.
_deferred=()
defer_fail() {
        printf 'FAILED (continuing): %s\n' "$*"
        _deferred+=("$*")
}
pass_unless_deferred() {
        if ((${#_deferred[@]})); then
                local IFS=';'
                fail "${_deferred[*]}"
        fi
        pass "$@"
}

# --- cleanup stack -----------------------------------------------------------

_cleanups=()
# on_exit CMD...: run CMD (as one string, eval'd) at exit, last registered
# first. Cleanups are best effort and silent: they must not change the
# scenario's verdict or its reason line.
on_exit() { _cleanups+=("$*"); }
_run_cleanups() {
        local rc=$? i
        set +e
        for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
                eval "${_cleanups[i]}" >/dev/null 2>&1
        done
        exit "$rc"
}
trap _run_cleanups EXIT
# timeout(1) sends SIGTERM: still clean up on the way out.
trap 'exit 143' TERM INT

# --- polling and assertions --------------------------------------------------

# wait_until SECONDS CMD...: poll CMD every 0.1 s; status 1 on timeout.
wait_until() {
        local deadline=$((SECONDS + $1))
        shift
        until "$@"; do
                ((SECONDS < deadline)) || return 1
                sleep 0.1
        done
}

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
        [[ $2 == "$3" ]] || fail "$1: expected '$3', got '$2'"
}

# --- processes -----------------------------------------------------------------

# The cgroup v2 path of PID ("0::" line of /proc/PID/cgroup), e.g.
# /system.slice/oomprotect-vm-test.service.
cgroup_of() { sed -n 's/^0:://p' "/proc/$1/cgroup"; }
adj_of() { cat "/proc/$1/oom_score_adj"; }
comm_of() { cat "/proc/$1/comm"; }
# Process state letter (R, S, Z, ...), empty once the process is gone.
state_of() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1; }
# Alive = exists and is not a zombie (our killed children stay zombies
# until reaped).
alive() {
        local s
        s=$(state_of "$1")
        [[ -n $s && $s != Z && $s != X ]]
}
gone() { ! alive "$1"; }
comm_is() { [[ $(comm_of "$1" 2>/dev/null) == "$2" ]]; }

# "${IN_SCOPE[@]}" CMD... &: runs CMD in a bare transient scope of its own
# (run-uN.scope in system.slice), like a process of `systemd-run --scope`: a
# place a move into protected.slice escapes nothing. The scripts themselves
# run in a service, whose processes are protected in place. systemd-run
# --scope execs CMD, so $! is CMD's PID (an array, not a function: a function
# in the background would be a subshell with a PID of its own).
# shellcheck disable=SC2034 # used by the scenarios
IN_SCOPE=(systemd-run --quiet --collect --scope)

# start_sleeper [ADJ]: starts a `sleep` child, in a bare scope, with
# oom_score_adj ADJ (default 123, so a restore to the default 0 would be
# noticed). Sets SLEEPER_PID.
SLEEPER_PID=
start_sleeper() {
        local adj=${1:-123}
        "${IN_SCOPE[@]}" sleep 100000 >/dev/null 2>&1 &
        SLEEPER_PID=$!
        on_exit "kill -KILL $SLEEPER_PID; wait $SLEEPER_PID"
        # The fork is bash until it has exec'd sleep: the daemon records comm.
        wait_until 5 comm_is "$SLEEPER_PID" sleep || fail "sleep child $SLEEPER_PID never exec'd"
        echo "$adj" >"/proc/$SLEEPER_PID/oom_score_adj"
}

# A gone PID: the PID of a process that has already exited and been reaped.
dead_pid() {
        local pid
        true &
        pid=$!
        wait "$pid"
        echo "$pid"
}

# --- systemd -----------------------------------------------------------------

# Slice unit name -> cgroup path: a-b.slice -> /a.slice/a-b.slice.
slice_path() {
        local name=${1%.slice} path="" prefix="" part
        local IFS=-
        for part in $name; do
                prefix=${prefix:+$prefix-}$part
                path+="/$prefix.slice"
        done
        echo "$path"
}

unit_prop() { systemctl show -P "$2" "$1"; }

# runtime_dropins UNIT...: the files systemd keeps for runtime property changes of each UNIT
# (SetUnitProperties(runtime=true), systemctl set-property --runtime), in system.control for a unit
# of a unit file and in transient for a transient one, each with its checksum: "SUM  PATH" lines.
runtime_dropins() {
        local u d
        for u in "$@"; do
                for d in /run/systemd/system.control /run/systemd/transient; do
                        [[ -d $d/$u.d ]] || continue
                        find "$d/$u.d" -type f | sort | xargs -r sha256sum
                done
        done
}

# dropins_restored WHEN UNIT BEFORE ADMIN_FILE COPY: after an unprotect, UNIT's and system.slice's runtime
# files are BEFORE (runtime_dropins UNIT system.slice) again: none of ours is left, the administrator's
# ADMIN_FILE is COPY byte for byte.
dropins_restored() {
        local now
        now=$(runtime_dropins "$2" system.slice)
        [[ $now == "$3" ]] || fail "$1: systemd's runtime drop-ins are not as before the protection:
before:
$3
now:
$now"
        cmp -s "$4" "$5" || fail "$1: the administrator's $4 did not come back byte for byte: $(cat "$4" 2>&1)"
}

# --- the daemon ----------------------------------------------------------------

# op METHOD [SIGNATURE ARGS...]: call the Manager on the system bus.
# A bounded timeout: a hung daemon must fail the scenario, not stall it.
op() { busctl --system --timeout=10 call "${OP_BUS[@]}" "$@"; }
# The same, as busctl's JSON ({"type": ..., "data": [return values]}).
op_json() { busctl --system --timeout=10 --json=short call "${OP_BUS[@]}" "$@"; }
op_prop() { busctl --system --timeout=10 --json=short get-property "${OP_BUS[@]}" "$1" | jq -r .data; }

# op_is_protected PID -> prints true/false
op_is_protected() { op_json IsProtected u "$1" | jq -r '.data[0]'; }
# PIDs listed by ListProtected, one a line (the PID is each entry's first field).
op_list_pids() { op_json ListProtected | jq -r '.data[0][][0]'; }
op_listed() { op_list_pids | grep -qx "$1"; }

bus_has_name() {
        [[ $(busctl --system call org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus NameHasOwner s "$1" 2>/dev/null) == "b true" ]]
}

# daemon_config NAME: the drop-in /etc/oomprotect/oomprotectd.conf.d/NAME.conf
# gets stdin; removed again at exit.
daemon_config() {
        mkdir -p "$OP_CONF_DIR"
        cat >"$OP_CONF_DIR/$1.conf"
        on_exit "rm -f '$OP_CONF_DIR/$1.conf'"
}

# The settings most scenarios want: a visible memory.min on every scope, and a
# budget large enough for them.
daemon_config_default() {
        daemon_config 50-vmtest <<-EOF
	[Manager]
	DefaultMemoryMin=16M
	MemoryMinBudget=256M
	EOF
}

# daemon_config_in_slice NAME SLICE: the default settings with the daemon's slice
# SLICE (nested in a memory-limited parent, for the OOM scenarios).
daemon_config_in_slice() {
        daemon_config "$1" <<-EOF
	[Manager]
	Slice=$2
	DefaultMemoryMin=16M
	MemoryMinBudget=256M
	EOF
}

daemon_journal() {
        info "--- journal of $OP_UNIT (last 25 lines):"
        journalctl -b -u "$OP_UNIT" --no-pager -n 25 -o short-monotonic 2>&1 | sed 's/^/  | /' || true
}

_daemon_cleanup_registered=0
# daemon_start: (re)starts oomprotectd.service through systemd, so it reads the
# current configuration, and waits for its bus name. At exit every protection
# is dropped and the daemon stopped, so the next scenario starts clean.
daemon_start() {
        systemctl cat "$OP_UNIT" >/dev/null 2>&1 ||
                fail "$OP_UNIT is not installed (the package must ship it under /lib/systemd/system)"
        if ((!_daemon_cleanup_registered)); then
                # No bus activation here: a broken daemon would cost a timeout.
                on_exit "! bus_has_name org.oomprotect || busctl --system --auto-start=no --timeout=5 call ${OP_BUS[*]} UnprotectAll; systemctl stop $OP_UNIT"
                _daemon_cleanup_registered=1
        fi
        if ! systemctl restart "$OP_UNIT"; then
                daemon_journal
                fail "systemctl restart $OP_UNIT failed"
        fi
        if ! wait_until 10 bus_has_name org.oomprotect; then
                daemon_journal
                fail "bus name org.oomprotect did not appear within 10 s of starting $OP_UNIT"
        fi
}

# Drops whatever an earlier scenario left behind, then starts fresh.
daemon_fresh_start() {
        if bus_has_name org.oomprotect; then
                op UnprotectAll >/dev/null 2>&1 || true
        fi
        daemon_start
}

# The cgroup path a protected PID must be in, for slice unit SLICE.
scope_path() { echo "$(slice_path "${2:-protected.slice}")/oomprotect-$1.scope"; }

# assert_protected PID [SLICE]: in its own scope, at the protected adj,
# reported as protected and listed.
assert_protected() {
        local pid=$1 slice=${2:-protected.slice}
        expect_eq "cgroup of protected PID $pid" "$(cgroup_of "$pid")" "$(scope_path "$pid" "$slice")"
        expect_eq "oom_score_adj of protected PID $pid" "$(adj_of "$pid")" "$ADJ_PROTECTED"
        expect_eq "IsProtected($pid)" "$(op_is_protected "$pid")" true
        op_listed "$pid" || fail "ListProtected does not list protected PID $pid (lists: $(op_list_pids | tr '\n' ' '))"
}

# assert_protected_in_place PID CGROUP: protected where it is (not moved), at the protected adj.
assert_protected_in_place() {
        local pid=$1 cg=$2
        expect_eq "cgroup of PID $pid protected in place" "$(cgroup_of "$pid")" "$cg"
        expect_eq "oom_score_adj of protected PID $pid" "$(adj_of "$pid")" "$ADJ_PROTECTED"
        expect_eq "IsProtected($pid)" "$(op_is_protected "$pid")" true
        op_listed "$pid" || fail "ListProtected does not list protected PID $pid"
}

# assert_restored PID CGROUP ADJ [SLICE]: back exactly where it was recorded.
assert_restored() {
        local pid=$1 cg=$2 adj=$3 slice=${4:-protected.slice}
        expect_eq "cgroup of PID $pid after unprotect" "$(cgroup_of "$pid")" "$cg"
        expect_eq "oom_score_adj of PID $pid after unprotect" "$(adj_of "$pid")" "$adj"
        expect_eq "IsProtected($pid) after unprotect" "$(op_is_protected "$pid")" false
        ! op_listed "$pid" || fail "ListProtected still lists PID $pid after unprotect"
        local scope
        scope=$CG$(scope_path "$pid" "$slice")
        wait_until 5 test ! -d "$scope" || fail "scope cgroup $scope still exists 5 s after unprotect"
}

# bus_monitor FILE: busctl monitor of org.oomprotect's messages into FILE (one JSON line each) until the
# scenario ends; returns once the monitor listens (it reported a Ping of ours).
bus_monitor() {
        busctl --system monitor --json=short org.oomprotect >"$1" 2>&1 &
        on_exit "kill $! 2>/dev/null || true"
        # shellcheck disable=SC2317 # called through wait_until
        _monitor_sees_ping() {
                busctl --system call org.oomprotect /org/oomprotect org.freedesktop.DBus.Peer Ping >/dev/null &&
                        grep -q '"member":"Ping"' "$1"
        }
        wait_until 10 _monitor_sees_ping "$1" || fail "busctl monitor did not start"
}

# --- memory holders (40-oom-real, 73-rules) ------------------------------------

# kill_tail PID [COMM]: SIGKILL a holder if it still is one (its comm is COMM,
# default tail), and wait until it is gone (init reaps it, see start_tail).
kill_tail() {
        if comm_is "$1" "${2:-tail}"; then kill -KILL "$1" 2>/dev/null || true; fi
        wait_until 5 gone "$1"
}

# start_tail UNIT SLICE [PROGRAM]: starts a memory holder (PROGRAM, default
# tail, a copy of tail otherwise, on a fresh FIFO), in a transient scope
# UNIT.scope in SLICE (system.slice when SLICE is "-", a bare scope the daemon
# moves into its own slice). Sets TAIL_PID and TAIL_FD, the FIFO's write end,
# and adds the PID to TAIL_PIDS.
TAIL_PID="" TAIL_FD=""
TAIL_PIDS=()
start_tail() {
        local fifo=$PWD/$1.fifo program=${3:-tail} cmd
        mkfifo "$fifo"
        # systemd-run --scope places itself in the scope, then execs the program.
        cmd=(systemd-run --quiet --collect --scope --unit="$1" "$program")
        [[ $2 == - ]] || cmd=(systemd-run --quiet --collect --scope --unit="$1" -p Slice="$2" "$program")
        # Started from a subshell that exits at once: the holder is no job of
        # this shell (no "Killed" job notices; init reaps it when the OOM
        # killer strikes). stdout is redirected before the FIFO is opened
        # (which blocks until its write end opens), so $(...) returns.
        TAIL_PID=$( ("${cmd[@]}" >/dev/null 2>&1 <"$fifo" & echo $!))
        TAIL_PIDS+=("$TAIL_PID")
        # Opening the write end completes the child's open() of the read end.
        # shellcheck disable=SC2034 # the scenario writes to it
        exec {TAIL_FD}>"$fifo"
        wait_until 15 comm_is "$TAIL_PID" "$(basename "$program" | cut -c1-15)" ||
                fail "$1: $program $TAIL_PID did not start"
}

# fill FD MB: write MB of zeros into a holder; returns non-zero when the
# holder was killed meanwhile (EPIPE). Bounded by a timeout just in case.
fill() { timeout 60 head -c "$2M" /dev/zero 1>&"$1" 2>/dev/null; }
