#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# oomprotect-oci-hook end to end on the build machine: OCI state documents
# of the shapes runtimes write, on the hook's stdin, against the real
# oomprotectd on a private system-like bus (cgroupfs backend, a cgroup2
# subtree of its own). An annotated "container" (a process in a cgroup of
# its own) is protected in place and tagged with the container id, poststop
# ends it; what is not annotated is left alone without the bus; every bad
# input is one line on stderr, a non-zero exit, and no change.
#
# Needs root, a writable cgroup2 mount, dbus-daemon and busctl; exits 77
# with the reason when something is missing. The VM tier runs the hook
# under real crun and podman.
set -euo pipefail
shopt -s lastpipe # `state ... | hook STAGE` sets $rc and $err here

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_HOOK:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and dbus-daemon busctl
find_cgroup2

name=oomptesthook$$
top=$name.slice
mkdir "$CG/$top" 2>/dev/null || skip "the cgroup2 mount $CG is not writable"
tmp=$(mktemp -d /tmp/oomprotect-hook.XXXXXX)
HOOK=$OOMPROTECT_HOOK
dbus_pid='' daemon_pid=''
children=()

cleanup() {
        local rc=$?
        trap - ERR
        sandbox_cleanup "$rc" "$daemon_pid" "$dbus_pid"
}
trap cleanup EXIT
set -E
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND exited with $?" >&2' ERR

if sh -c 'echo -1 >/proc/self/oom_score_adj' 2>/dev/null; then
        protect_adj=-1000 start_adj=0 custom_adj=-800
else
        protect_adj=0 start_adj=700 custom_adj=100
        note "no CAP_SYS_RESOURCE here: protecting with oom_score_adj 0 from 700"
fi
has_memory=false
grep -qw memory "$CG/cgroup.controllers" && has_memory=true

cat >"$tmp/oomprotectd.conf" <<EOF
[Manager]
Backend=cgroupfs
CgroupRoot=$CG
Slice=$name-protected.slice
StateDirectory=$tmp/state
CompatDirectory=$tmp/state/compat
OOMScoreAdjust=$protect_adj
MemoryMinBudget=64M
EOF

# ---- helpers ----

# container ID: a process in <top>/ID, as a runtime leaves a container's init; $spawned is its pid.
container() {
        mkdir -p "$CG/$top/$1"
        sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && exec sleep 1000' \
                container "$CG/$top/$1" "$start_adj" &
        spawned=$!
        children+=("$spawned")
        wait_until 5 is_comm "$spawned" sleep || fail "container $1 did not start"
}

# state ID STATUS PID BUNDLE ANNOTATIONS: crun's shape (pretty, with its own extra keys); PID 0 leaves it out.
state() {
        local pid_line=''
        (($3 > 0)) && pid_line="\"pid\" : $3,"
        cat <<EOF
{
  "ociVersion" : "1.0.0",
  "id" : "$1",
  $pid_line
  "status" : "$2",
  "bundle" : "$4",
  "rootfs" : "$4/rootfs",
  "created" : "2026-12-01T13:00:00.000000000Z",
  "owner" : "root",
  "annotations" : { $5 }
}
EOF
}
PROTECT='"org.oomprotect.protect" : "true"'

# hook STAGE < STATE: runs the hook; $rc, $err (its stderr), $out (its stdout).
hook() {
        rc=0
        out=$("$HOOK" "$@" 2>"$tmp/err") || rc=$?
        err=$(cat "$tmp/err")
}
# expect_refusal RC TEXT: the last hook run exited RC with one line on stderr that says TEXT.
expect_refusal() {
        assert_eq "$rc" "$1" "exit status (stderr: $err)"
        [[ $(wc -l <"$tmp/err") -eq 1 ]] || fail "expected one line on stderr, got: $err"
        [[ $err == "oomprotect-oci-hook: "*"$2"* ]] || fail "stderr does not say \"$2\": $err"
}

list() {
        busctl --json=short call org.oomprotect /org/oomprotect org.oomprotect.Manager ListProtected
}
count() {
        prop ProtectedCount
}
start_daemon() {
        "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" --log-level=debug >"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 10 name_has_owner || fail "oomprotectd did not acquire org.oomprotect"
}
# assert_untouched PID ID: nothing protected, the container where it was with its adj.
assert_untouched() {
        assert_eq "$(count)" "u 0" "ProtectedCount"
        assert_eq "$(cg_of "$1")" "/$top/$2" "cgroup of $1"
        assert_eq "$(adj_of "$1")" "$start_adj" "oom_score_adj of $1"
        [[ ! $has_memory == true ]] || assert_eq "$(cat "$CG/$top/$2/memory.min")" 0 "memory.min of $2"
}

# ---- tests ----

test_unannotated_container_never_touches_the_bus() {
        container plain
        state plain creating "$spawned" /nonexistent '"com.example.other" : "1"' >"$tmp/state.json"
        # No bus at all: had the hook tried it, it would have failed.
        DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/nonexistent hook createRuntime <"$tmp/state.json"
        assert_eq "$rc" 0 "exit status for a container without the annotation ($err)"
        assert_eq "$err$out" "" "output for a container without the annotation"
        state plain creating "$spawned" /nonexistent '"org.oomprotect.protect" : "false"' >"$tmp/state.json"
        DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/nonexistent hook createRuntime <"$tmp/state.json"
        assert_eq "$rc$err" 0 "protect=false"
        ok "a container without org.oomprotect.protect=true is left alone, silently, without the bus"
}

test_unreachable_daemon_is_one_line_and_exit_3() {
        state web creating 4242 /nonexistent "$PROTECT" >"$tmp/state.json"
        DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/nonexistent hook createRuntime <"$tmp/state.json"
        expect_refusal 3 "cannot reach oomprotectd to protect PID 4242: Cannot connect to the system bus at unix:path=$tmp/nonexistent"
        hook createRuntime <"$tmp/state.json" # the bus, but nobody owns org.oomprotect
        expect_refusal 3 "cannot reach oomprotectd to protect PID 4242"
        hook poststop <"$tmp/state.json"
        expect_refusal 3 "cannot reach oomprotectd to unprotect the container"
        ok "no bus, or no daemon on it: one line on stderr and exit 3"
}

test_create_runtime_protects_in_place_and_poststop_ends_it() {
        container web
        local pid=$spawned
        state web creating "$pid" /nonexistent \
                "$PROTECT, \"org.oomprotect.memory-min\" : \"8M\", \"org.oomprotect.oom-score-adj\" : \"$custom_adj\"" \
                >"$tmp/state.json"
        hook createRuntime <"$tmp/state.json"
        assert_eq "$rc$err" 0 "createRuntime"
        assert_eq "$(adj_of "$pid")" "$custom_adj" "oom_score_adj of the container's init"
        assert_eq "$(cg_of "$pid")" "/$top/web" "cgroup of the container's init (nothing moved)"
        list | grep -qE "\[$pid,\"sleep\",\"/$top/web\",\"\",$start_adj,$custom_adj,8388608,[0-9]+,\"dbus\",\"web\"\]" ||
                fail "ListProtected: $(list)"
        if [[ $has_memory == true ]]; then
                assert_eq "$(cat "$CG/$top/web/memory.min")" 8388608 "memory.min of the container's cgroup"
        else
                note "no memory controller on $CG: memory.min is checked in the VM tier"
        fi
        hook poststart <"$tmp/state.json" # both stages configured: the second changes nothing
        assert_eq "$rc$err" 0 "poststart after createRuntime"
        assert_eq "$(count)" "u 1" "ProtectedCount after poststart"

        state web stopped 0 /nonexistent "$PROTECT" >"$tmp/state.json"
        hook poststop <"$tmp/state.json"
        assert_eq "$rc$err" 0 "poststop"
        assert_untouched "$pid" web
        hook poststop <"$tmp/state.json" # again (podman and the runtime may both run it): nothing left, fine
        assert_eq "$rc$err" 0 "poststop again"
        ok "createRuntime protects the init in place with Tag=id, MemoryMin, adj; poststart is idempotent; poststop restores"
}

test_annotations_from_config_json_and_auto_stage() {
        container bundled
        local pid=$spawned
        mkdir -p "$tmp/bundle"
        printf '{"ociVersion":"1.0.2","process":{"args":["sleep"]},"annotations":{%s}}' \
                '"org.oomprotect.protect":"yes"' >"$tmp/bundle/config.json"
        # runc's compact shape, without annotations: they come from the bundle.
        printf '{"ociVersion":"1.0.2-dev","id":"bundled","status":"created","pid":%d,"bundle":"%s"}' \
                "$pid" "$tmp/bundle" >"$tmp/state.json"
        hook auto <"$tmp/state.json"
        assert_eq "$rc$err" 0 "auto at status created"
        assert_eq "$(adj_of "$pid")" "$protect_adj" "oom_score_adj from config.json's annotation"
        list | grep -qF "\"dbus\",\"bundled\"]" || fail "ListProtected: $(list)"
        printf '{"ociVersion":"1.0.2-dev","id":"bundled","status":"stopped","bundle":"%s"}' \
                "$tmp/bundle" >"$tmp/state.json"
        hook auto <"$tmp/state.json"
        assert_eq "$rc$err" 0 "auto at status stopped"
        assert_untouched "$pid" bundled
        ok "annotations come from bundle/config.json when the state has none; auto picks the stage from the status"
}

test_bad_input_is_refused_and_changes_nothing() {
        container bad
        local pid=$spawned
        hook createRuntime <<<'{"ociVersion":"1.0.0","id":"bad",'
        expect_refusal 1 "the OCI state is truncated JSON"
        hook createRuntime <<<'not json'
        expect_refusal 1 "the OCI state is not valid JSON"
        hook createRuntime </dev/null
        expect_refusal 1 "the OCI state is empty"
        state bad creating 0 /nonexistent "$PROTECT" | hook createRuntime
        expect_refusal 1 "the OCI state of container bad has no pid"
        state bad creating "$pid" /nonexistent "$PROTECT" | hook createContainer
        expect_refusal 2 "unknown stage \"createContainer\""
        state bad creating "$pid" /nonexistent "$PROTECT" | hook
        expect_refusal 2 "expected one stage"
        state bad creating "$pid" /nonexistent "$PROTECT, \"org.oomprotect.memory-min\" : \"lots\"" |
                hook createRuntime
        expect_refusal 1 "container bad: annotation org.oomprotect.memory-min=\"lots\" is not a size"
        state bad creating "$pid" /nonexistent "$PROTECT, \"org.oomprotect.oom-score-adj\" : \"-2000\"" |
                hook createRuntime
        expect_refusal 1 "oom-score-adj=\"-2000\" is not an integer from -1000 to 1000"
        state bad creating "$pid" /nonexistent '"org.oomprotect.protect" : "sure"' | hook createRuntime
        expect_refusal 1 "protect=\"sure\" is not true or false"
        state bad creating "$pid" /nonexistent "$PROTECT, \"org.oomprotect.memory_min\" : \"1G\"" | hook createRuntime
        expect_refusal 1 "unknown annotation org.oomprotect.memory_min"
        mkdir -p "$tmp/broken"
        echo '{"annotations":' >"$tmp/broken/config.json"
        state bad creating "$pid" "$tmp/broken" '' | hook createRuntime
        expect_refusal 1 "$tmp/broken/config.json: config.json is truncated JSON"
        state bad creating "$pid" /nonexistent "$PROTECT, \"org.oomprotect.memory-min\" : \"1G\"" | hook createRuntime
        expect_refusal 1 "oomprotectd refused to protect PID $pid: memory.min 1.0G on top of 0B in use exceeds MemoryMinBudget"
        state bad creating 4194304 /nonexistent "$PROTECT" | hook createRuntime
        expect_refusal 1 "oomprotectd refused to protect PID 4194304"
        hook --timeout=0 createRuntime </dev/null
        expect_refusal 2 "--timeout \"0\" is not a number of seconds"
        assert_untouched "$pid" bad
        ok "bad JSON, no pid, unknown stage, bad annotation values, a broken config.json, a refusal: one line, non-zero, no change"
}

# --timeout reaches the library (oomprotect_set_timeout): a stuck daemon costs that long, then exit 3.
test_timeout_bounds_a_stuck_daemon() {
        state web creating 4242 /nonexistent "$PROTECT" >"$tmp/state.json"
        kill -STOP "$daemon_pid"
        local t0=$SECONDS
        hook --timeout 1 createRuntime <"$tmp/state.json"
        kill -CONT "$daemon_pid"
        expect_refusal 3 "cannot reach oomprotectd to protect PID 4242"
        ((SECONDS - t0 <= 5)) || fail "--timeout 1 took $((SECONDS - t0)) s"
        ok "--timeout 1 with a stuck daemon: exit 3 within $((SECONDS - t0)) s"
}

test_help() {
        hook --help
        assert_eq "$rc" 0 "--help"
        [[ $out == *"Usage: oomprotect-oci-hook"*"org.oomprotect.memory-min=SIZE"* ]] || fail "--help: $out"
        ok "--help"
}

# ---- run ----

echo "# cgroup2 at $CG, sandbox $top, work directory $tmp"
test_help
test_unannotated_container_never_touches_the_bus
start_private_bus "$tmp"
test_unreachable_daemon_is_one_line_and_exit_3
start_daemon
test_create_runtime_protects_in_place_and_poststop_ends_it
test_annotations_from_config_json_and_auto_stage
test_bad_input_is_refused_and_changes_nothing
test_timeout_bounds_a_stuck_daemon
echo "# all $n_ok passed"
