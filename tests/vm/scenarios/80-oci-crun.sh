#!/bin/bash
# Issue 13: crun runs real containers (busybox root file system) whose
# config.json names oomprotect-oci-hook at createRuntime and poststop, with
# crun's systemd cgroup manager, so each container is a scope unit in the
# memory-limited oomoci.slice. The annotated one is protected in place: its
# init gets the adj, its cgroup memory.min (through systemd, so a
# daemon-reload keeps it), every ancestor enough, nothing moves; its
# unannotated twin is left alone. A memcg OOM in the parent then kills the
# twin and not the protected one (the protected holder is the larger, so an
# unprotected one would be the victim: see 40-oom-real's control). After
# `crun delete` no record, no raised ancestor, no cgroup, no unit is left.
# vm-timeout: 240
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=oci-lib.sh
. "$(dirname "$0")/oci-lib.sh"

command -v crun >/dev/null || skip "crun is not installed in the guest"
[[ -x $OCI_HOOK ]] || fail "$OCI_HOOK is not installed"

readonly DIR=$OCI_DIR/crun PROT=oci-crun-prot TWIN=oci-crun-twin

# bundle NAME ANNOTATIONS(JSON): a bundle whose config.json runs `tail /fifo` and names the hook.
bundle() {
        local b=$DIR/$1
        mkdir -p "$b"
        oci_rootfs "$b/rootfs"
        mkfifo "$b/rootfs/fifo"
        (cd "$b" && crun spec)
        jq --argjson ann "$2" --arg hook "$OCI_HOOK" --arg cg "$OCI_PARENT:crun:$1" '
                .process.terminal = false | .process.args = ["tail", "/fifo"] |
                .annotations = $ann | .linux.cgroupsPath = $cg |
                .hooks = { createRuntime: [{ path: $hook, args: ["oomprotect-oci-hook", "createRuntime"] }],
                           poststop: [{ path: $hook, args: ["oomprotect-oci-hook", "poststop"] }] }' \
                "$b/config.json" >"$b/config.json.new"
        mv "$b/config.json.new" "$b/config.json"
}

# run NAME: starts the container; sets PID (its init) and FD (the write end of its FIFO).
PID=''
run() {
        local b=$DIR/$1
        on_exit "crun delete --force $1"
        crun --systemd-cgroup run -d --bundle "$b" "$1" </dev/null >"$b/run.log" 2>&1 ||
                fail "crun run $1 failed: $(tr '\n' ' ' <"$b/run.log")"
        PID=$(crun state "$1" | jq -r .pid)
        wait_until 10 comm_is "$PID" tail || fail "$1: init $PID is not tail"
        oci_open_fifo "$1" "$PID" "$b/rootfs/fifo"
}

oci_parent_slice
oci_daemon_start
oci_watch_unprotect_tag
mkdir -p "$DIR"
on_exit "rm -rf $DIR"
bundle "$PROT" "{\"org.oomprotect.protect\": \"true\", \"org.oomprotect.memory-min\": \"$OCI_MIN\"}"
bundle "$TWIN" '{"com.example.twin": "1"}'
before=$(oci_min_snapshot "/$OCI_PARENT")

run "$PROT"
ppid=$PID pfd=$FD
unit=crun-$PROT.scope
scope_cg=$(unit_prop "$unit" ControlGroup)
pcg=$(cgroup_of "$ppid")
info "$PROT: init $ppid in $pcg, unit $unit ($scope_cg), delegated $(unit_prop "$unit" Delegate)"
expect_eq "$PROT: the scope's cgroup" "$scope_cg" "/$OCI_PARENT/$unit"
[[ $pcg == "$scope_cg" || $pcg == "$scope_cg"/* ]] || fail "$PROT: init $ppid is in $pcg, outside its scope $scope_cg"
oci_assert_protected_in_place "$PROT" "$ppid" "$pcg" "$PROT"
# systemd holds the scope's and the slice's figures: a daemon-reload keeps them.
systemctl daemon-reload
expect_eq "$PROT: memory.min of $pcg after daemon-reload" "$(cat "$CG$pcg/memory.min")" "$OCI_MIN_BYTES"
(($(cat "$CG/$OCI_PARENT/memory.min") >= OCI_MIN_BYTES)) || fail "$OCI_PARENT lost its memory.min at daemon-reload"
info "$PROT: systemd's MemoryMin: $unit $(unit_prop "$unit" MemoryMin), $OCI_PARENT $(unit_prop "$OCI_PARENT" MemoryMin)"

run "$TWIN"
tpid=$PID tfd=$FD
oci_assert_left_alone "$TWIN" "$tpid"

oci_oom crun "$ppid" "$pfd" "$tpid" "$tfd"
exec {pfd}>&- {tfd}>&-

out=$(crun delete --force "$TWIN" 2>&1) || fail "crun delete $TWIN: $out"
out=$(crun delete --force "$PROT" 2>&1) || fail "crun delete $PROT: $out"
[[ $out != *oomprotect-oci-hook* ]] || fail "the poststop hook complained: $out"
oci_assert_gone "$PROT" "$pcg" "$unit" "$before"
wait_until 10 test ! -d "$CG/$OCI_PARENT/crun-$TWIN.scope" || fail "$TWIN: its scope is left"
pass "crun: init protected in place ($pcg memory.min $OCI_MIN, ancestors raised, adj $ADJ_PROTECTED), twin OOM-killed, protected survived; delete restored everything"
