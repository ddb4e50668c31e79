# shellcheck shell=bash
# Helpers of the container scenarios (80-oci-*.sh), sourced after lib.sh:
# a busybox root file system, a memory-limited parent slice for the
# containers, memory holders inside them, and the checks that a container is
# protected in place (and, after it is gone, that nothing of it is left).
#
# A container's init is `tail /fifo` (GNU tail with its libraries, which
# keeps every byte it reads from a FIFO without a newline, as in
# 40-oom-real.sh); the scenario fills it from the host through the FIFO in
# the root file system.

# shellcheck disable=SC2034 # used by the scenarios
readonly OCI_HOOK=/usr/libexec/oomprotect/oomprotect-oci-hook
# shellcheck disable=SC2034 # OCI_MIN is used by the scenarios
readonly OCI_PARENT=oomoci.slice OCI_LIMIT_MB=600 OCI_HOLDER_MB=350 OCI_MIN=256M
readonly OCI_MIN_BYTES=$((256 * 1024 * 1024))
# shellcheck disable=SC2034 # used by the scenarios
readonly OCI_DIR=/var/tmp/oomprotect-oci

# oci_rootfs DIR: busybox (static) as /bin/*, plus GNU tail and what it links.
oci_rootfs() {
        local dir=$1 lib
        mkdir -p "$dir"/{bin,proc,sys,dev,tmp,etc,usr/bin}
        cp /bin/busybox "$dir/bin/busybox"
        chroot "$dir" /bin/busybox --install -s /bin
        rm -f "$dir/bin/tail"
        cp /usr/bin/tail "$dir/usr/bin/tail"
        ln -s /usr/bin/tail "$dir/bin/tail"
        for lib in $(ldd /usr/bin/tail | grep -o '/[^ ]*'); do
                mkdir -p "$dir$(dirname "$lib")"
                cp -L "$lib" "$dir$lib"
        done
}

# oci_parent_slice: the memory-limited parent of every container (runtime unit, gone at reboot).
oci_parent_slice() {
        mkdir -p /run/systemd/system
        cat >/run/systemd/system/$OCI_PARENT <<EOF
[Unit]
Description=oomprotect VM test: memory-limited parent of the containers
[Slice]
MemoryAccounting=yes
MemoryMax=${OCI_LIMIT_MB}M
EOF
        on_exit "systemctl stop $OCI_PARENT; rm -f /run/systemd/system/$OCI_PARENT; systemctl daemon-reload"
        # The bundles and rootfs: gone after the scenario, so that nothing of ours outlives it (90 checks).
        on_exit "rm -rf --one-file-system $OCI_DIR"
        systemctl daemon-reload
        systemctl start "$OCI_PARENT"
        expect_eq "memory.max of $OCI_PARENT" "$(cat "$CG/$OCI_PARENT/memory.max")" $((OCI_LIMIT_MB * 1024 * 1024))
}

oci_daemon_start() {
        daemon_config 60-oci <<-EOF
	[Manager]
	MemoryMinBudget=512M
	EOF
        daemon_fresh_start
}

oci_oom_kills() { sed -n 's/^oom_kill //p' "$CG/$OCI_PARENT/memory.events"; }

# oci_ancestors CGROUP: CGROUP and every ancestor up to the top level, one a line, deepest first.
oci_ancestors() {
        local p=$1
        while [[ -n $p && $p != / ]]; do
                echo "$p"
                p=${p%/*}
        done
}

# oci_min_snapshot CGROUP: "path=memory.min" of CGROUP and its ancestors, for a before/after diff.
oci_min_snapshot() {
        local p
        oci_ancestors "$1" | while read -r p; do
                echo "$p=$(cat "$CG$p/memory.min")"
        done
}

# oci_assert_protected_in_place NAME PID CGROUP TAG: the adj on the init, memory.min on its own cgroup,
# enough on every ancestor, the process still where the runtime put it, and the daemon's record.
oci_assert_protected_in_place() {
        local name=$1 pid=$2 cg=$3 tag=$4 p min
        expect_eq "$name: cgroup of the init $pid (nothing moved)" "$(cgroup_of "$pid")" "$cg"
        expect_eq "$name: oom_score_adj of the init $pid" "$(adj_of "$pid")" "$ADJ_PROTECTED"
        expect_eq "$name: memory.min of $cg" "$(cat "$CG$cg/memory.min")" "$OCI_MIN_BYTES"
        while read -r p; do
                min=$(cat "$CG$p/memory.min")
                ((min >= OCI_MIN_BYTES)) || fail "$name: ancestor $p carries memory.min $min < $OCI_MIN_BYTES"
                info "$name: $p memory.min=$min"
        done < <(oci_ancestors "$cg" | tail -n +2)
        op_json ListProtected | jq -ce --arg tag "$tag" --argjson pid "$pid" \
                '.data[0][] | select(.[0] == $pid and .[9] == $tag and .[3] == "")' >/dev/null ||
                fail "$name: ListProtected has no in-place record of $pid tagged $tag: $(op_json ListProtected)"
        [[ -z $(find "$CG$(slice_path protected.slice)" -name "oomprotect-$pid.scope" 2>/dev/null) ]] ||
                fail "$name: the init $pid got a scope of its own in protected.slice"
}

# oci_watch_unprotect_tag: records every UnprotectTag call on the bus from now on (busctl monitor), so
# that a scenario sees the runtime run the poststop hook: by then the init has exited, which ends its
# protection on its own, so the call itself changes nothing to look at.
OCI_MONITOR_LOG=''
oci_watch_unprotect_tag() {
        local pid
        OCI_MONITOR_LOG=$(mktemp)
        busctl --system monitor --json=short org.oomprotect >"$OCI_MONITOR_LOG" 2>&1 &
        pid=$!
        on_exit "kill $pid; rm -f $OCI_MONITOR_LOG"
        # Listening once it has seen a call of ours.
        wait_until 10 sh -c "busctl --system call ${OP_BUS[*]} UnprotectTag s oci-monitor-sync >/dev/null &&
                grep -qF oci-monitor-sync $OCI_MONITOR_LOG" || fail "busctl monitor did not start"
}
oci_saw_unprotect_tag() { grep -F '"member":"UnprotectTag"' "$OCI_MONITOR_LOG" | grep -qF "\"data\":[\"$1\"]"; }

# oci_assert_left_alone NAME PID: an unannotated container's init: not protected, nothing recorded.
oci_assert_left_alone() {
        [[ $(adj_of "$2") != "$ADJ_PROTECTED" ]] || fail "$1: the unannotated container's init got the protected adj"
        expect_eq "$1: IsProtected($2)" "$(op_is_protected "$2")" false
        expect_eq "ProtectedCount with $1 running" "$(op_prop ProtectedCount)" 1
}

# oci_assert_gone NAME CGROUP UNIT SNAPSHOT: after delete/rm: the poststop hook's UnprotectTag(NAME) (see
# oci_watch_unprotect_tag) was called, no record, the parent slice and its
# ancestors back to SNAPSHOT (oci_min_snapshot /$OCI_PARENT before the container), no cgroup, no unit,
# no drop-in left by SetUnitProperties.
oci_assert_gone() {
        local name=$1 cg=$2 unit=$3 before=$4
        wait_until 10 oci_saw_unprotect_tag "$name" || fail "$name: no UnprotectTag($name) call: the poststop hook did not run"
        wait_until 10 test "$(op_prop ProtectedCount)" = 0 ||
                fail "$name: still protected after removal: $(op_json ListProtected)"
        wait_until 10 test ! -d "$CG$cg" || fail "$name: cgroup $cg is left"
        wait_until 10 test "$(oci_min_snapshot "/$OCI_PARENT")" = "$before" ||
                fail "$name: ancestors not restored: before [$before], now [$(oci_min_snapshot "/$OCI_PARENT")]"
        [[ $(systemctl show -P LoadState "$unit") == not-found ]] ||
                fail "$name: unit $unit is left ($(systemctl show -P LoadState,ActiveState "$unit" | tr '\n' ' '))"
        [[ ! -e /run/systemd/system.control/$unit.d && ! -e /run/systemd/transient/$unit.d ]] ||
                fail "$name: drop-ins of $unit are left: $(ls /run/systemd/system.control/"$unit".d 2>&1)"
        ! state_records 2>/dev/null | grep -qF "\"$name\"" || fail "$name: state.json still mentions it"
}

# oci_open_fifo NAME PID PATH: sets FD to the write end of the FIFO the init PID (tail) opens. tail's
# open() waits for a writer, and ours for a reader: a read-write open, which waits for nobody, lets
# both through; once tail holds its end, that one goes, so a write to a killed holder fails (EPIPE).
FD=''
oci_open_fifo() {
        local rw
        exec {rw}<>"$3"
        exec {FD}>"$3"
        wait_until 10 sh -c "ls -l /proc/$2/fd | grep -q fifo" || fail "$1: tail $2 has not opened its FIFO"
        exec {rw}>&-
}

# oci_fill FIFO MB: write MB of zeros into a holder (non-zero when it was killed meanwhile).
oci_fill() { timeout 60 head -c "$2M" /dev/zero 1>&"$1" 2>/dev/null; }
rss_mb() { echo $(($(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status") / 1024)); }
fate() { if alive "$1"; then echo survived; else echo killed; fi; }

# oci_oom NAME PROT_PID PROT_FD TWIN_PID TWIN_FD: the protected container's holder first (the largest
# task), then its twin until the parent's limit OOMs; the twin must die, the protected one live.
oci_oom() {
        local name=$1 ppid=$2 pfd=$3 tpid=$4 tfd=$5 kills0 mb
        kills0=$(oci_oom_kills)
        oci_fill "$pfd" "$OCI_HOLDER_MB" || fail "$name: the protected holder died while being filled"
        mb=$(rss_mb "$ppid")
        ((mb >= OCI_HOLDER_MB * 9 / 10)) || fail "$name: the protected holder holds only $mb MB"
        oci_fill "$tfd" "$OCI_HOLDER_MB" || true
        wait_until 10 gone "$tpid" || fail "$name: the twin $tpid survived $((OCI_HOLDER_MB * 2)) MB under a ${OCI_LIMIT_MB} MB limit"
        info "$name: protected holder $ppid ($mb MB) $(fate "$ppid"), twin $tpid $(fate "$tpid"); $(($(oci_oom_kills) - kills0)) OOM kill(s) in $OCI_PARENT"
        dmesg | grep -E "Killed process ($ppid|$tpid) " | tail -n 3 | sed 's/^/  kernel: /' || true
        alive "$ppid" || fail "$name: THE PROTECTED CONTAINER'S INIT WAS KILLED"
        (($(oci_oom_kills) > kills0)) || fail "$name: no OOM kill in $OCI_PARENT"
}
