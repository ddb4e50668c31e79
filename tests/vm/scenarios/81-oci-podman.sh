#!/bin/bash
# Issue 13: podman (Debian's package, crun underneath, the systemd cgroup
# manager) runs a busybox root file system with `--rootfs` (no registry) and
# picks oomprotect-oci-hook up from /usr/share/containers/oci/hooks.d for
# the container annotated org.oomprotect.protect=true: its init is
# protected in place (adj, memory.min on its cgroup, every ancestor
# enough, nothing moved, tagged with the container's id); the unannotated
# twin is left alone. A memcg OOM in the containers' limited parent slice
# kills the twin, not the protected one. After `podman rm` (podman runs
# the poststop hook itself) no record, no raised ancestor, no cgroup, no
# unit is left.
# vm-timeout: 300
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=oci-lib.sh
. "$(dirname "$0")/oci-lib.sh"

command -v podman >/dev/null || skip "podman is not installed in the guest"
[[ -f /usr/share/containers/oci/hooks.d/oomprotect.json ]] || fail "the hooks.d file is not installed"

readonly DIR=$OCI_DIR/podman PROT=oci-podman-prot TWIN=oci-podman-twin

# run NAME [ARGS...]: podman run with its own root file system; sets PID, FD, ID.
PID='' ID=''
run() {
        local name=$1 root=$DIR/$1
        shift
        oci_rootfs "$root"
        mkfifo "$root/fifo"
        on_exit "podman rm --force --time 0 $name"
        # --rootfs is a flag: the first argument is then a directory, not an image.
        podman run -d --rootfs --name "$name" --network none --cgroup-parent="$OCI_PARENT" \
                "$@" "$root" tail /fifo </dev/null >"$DIR/$name.log" 2>&1 ||
                fail "podman run $name failed: $(tr '\n' ' ' <"$DIR/$name.log")"
        ID=$(podman inspect -f '{{.Id}}' "$name")
        PID=$(podman inspect -f '{{.State.Pid}}' "$name")
        wait_until 10 comm_is "$PID" tail || fail "$name: init $PID is not tail"
        oci_open_fifo "$name" "$PID" "$root/fifo"
}

oci_parent_slice
oci_daemon_start
oci_watch_unprotect_tag
mkdir -p "$DIR"
on_exit "rm -rf $DIR"
before=$(oci_min_snapshot "/$OCI_PARENT")

run "$PROT" --annotation org.oomprotect.protect=true --annotation org.oomprotect.memory-min="$OCI_MIN"
ppid=$PID pfd=$FD pid_id=$ID
unit=libpod-$pid_id.scope
pcg=$(cgroup_of "$ppid")
scope_cg=$(unit_prop "$unit" ControlGroup)
info "$PROT: init $ppid in $pcg, unit $unit, delegated $(unit_prop "$unit" Delegate)"
expect_eq "$PROT: the scope's cgroup" "$scope_cg" "/$OCI_PARENT/$unit"
[[ $pcg == "$scope_cg" || $pcg == "$scope_cg"/* ]] || fail "$PROT: init $ppid is in $pcg, outside its scope $scope_cg"
oci_assert_protected_in_place "$PROT" "$ppid" "$pcg" "$pid_id"

run "$TWIN"
tpid=$PID tfd=$FD
oci_assert_left_alone "$TWIN" "$tpid"

oci_oom podman "$ppid" "$pfd" "$tpid" "$tfd"
exec {pfd}>&- {tfd}>&-

out=$(podman rm --force --time 0 "$TWIN" 2>&1) || fail "podman rm $TWIN: $out"
out=$(podman rm --force --time 0 "$PROT" 2>&1) || fail "podman rm $PROT: $out"
[[ $out != *oomprotect-oci-hook* ]] || fail "the poststop hook complained: $out"
oci_assert_gone "$pid_id" "$pcg" "$unit" "$before"
journalctl -b --no-pager -o cat -u oomprotectd | grep -F "$pid_id" | sed 's/^/  journal: /' | tail -n 6 || true
pass "podman: hooks.d hook protected the init in place ($pcg memory.min $OCI_MIN, ancestors raised), twin OOM-killed, protected survived; rm restored everything"
