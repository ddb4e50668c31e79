#!/bin/bash
# DESIGN.md 5: real OOM kills. Everything runs inside oomtest.slice, limited
# to MemoryMax=600M, so the OOM is a quick memcg OOM and not a thrashing
# global one (VM-NOTES.md). The daemon's slice is nested inside it
# (Slice=oomtest-protected.slice). Per trial:
#   holder  350 MB, protected through the daemon (protected trials), or an
#           unprotected scope in oomtest-holder.slice (the control trial);
#   twin    350 MB, never protected, in oomtest-twin.slice;
#   hog     grows until the kernel kills it, in oomtest-hog.slice.
# Holder + twin exceed the limit, so the twin's filling already OOMs; the
# holder, filled first, is the largest task. The control shows the kernel
# then kills the holder; with protection it must kill the twin or the hog.
#
# Memory is held by `tail` reading a FIFO with no newline in it: tail keeps
# everything it read, and the FIFO stays open, so it holds it until killed.
# The holder is protected *before* it is filled: memory charged earlier would
# stay charged to its old cgroup.
# OOMTEST_TRIALS=N: N protected trials (default 3); bench/vm/92-bench-oom-trials.sh sets it.
# vm-timeout: 300
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

readonly LIMIT_MB=600 HOLDER_MB=350 TWIN_MB=350 HOG_MB=600
readonly TRIALS=${OOMTEST_TRIALS:-3}
readonly PARENT=oomtest.slice PSLICE=oomtest-protected.slice
readonly MB=$((1024 * 1024))

oom_kills() { sed -n 's/^oom_kill //p' "$CG/$PARENT/memory.events"; }
rss_mb() { echo $(($(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status") / 1024)); }
fate() { if alive "$1"; then echo survived; else echo killed; fi; }
# shellcheck disable=SC2317 # called through wait_until
forgotten() { [[ $(op_is_protected "$1") == false ]]; }

# The current trial's processes, killed at exit if a check fails mid-trial.
# shellcheck disable=SC2016 # expanded when the cleanup runs
on_exit 'for p in "${TAIL_PIDS[@]}"; do kill_tail "$p"; done'

survived=0 twins_killed=0 hogs_killed=0
control_verdict=
# trial N protected|control
trial() {
        local n=$1 mode=$2 kills0 hpid hfd tpid tfd gpid gfd hcg hmb
        kills0=$(oom_kills)

        if [[ $mode == protected ]]; then
                start_tail "oomtest-holder-$n" -
                hpid=$TAIL_PID hfd=$TAIL_FD
                op Protect u "$hpid" || fail "trial $n: Protect($hpid) failed"
                expect_eq "trial $n: holder cgroup" "$(cgroup_of "$hpid")" "$(scope_path "$hpid" "$PSLICE")"
                expect_eq "trial $n: holder adj" "$(adj_of "$hpid")" "$ADJ_PROTECTED"
        else
                start_tail "oomtest-holder-$n" oomtest-holder.slice
                hpid=$TAIL_PID hfd=$TAIL_FD
        fi
        fill "$hfd" "$HOLDER_MB" || fail "trial $n: the holder died while being filled (limit too small?)"
        hcg=$(cgroup_of "$hpid")
        hmb=$(rss_mb "$hpid")
        ((hmb >= HOLDER_MB * 9 / 10)) || fail "trial $n: holder holds only $hmb MB, expected ~$HOLDER_MB"
        info "trial $n ($mode): holder $hpid holds $hmb MB in $hcg (adj $(adj_of "$hpid"), memory.current $(($(cat "$CG$hcg/memory.current") / MB)) MB)"

        start_tail "oomtest-twin-$n" oomtest-twin.slice
        tpid=$TAIL_PID tfd=$TAIL_FD
        fill "$tfd" "$TWIN_MB" || true
        start_tail "oomtest-hog-$n" oomtest-hog.slice
        gpid=$TAIL_PID gfd=$TAIL_FD
        fill "$gfd" "$HOG_MB" || true
        if alive "$gpid"; then
                fail "trial $n: the hog got $HOG_MB MB under a $LIMIT_MB MB limit without an OOM kill"
        fi

        local kills=$(($(oom_kills) - kills0))
        info "trial $n ($mode): holder $(fate "$hpid"), twin $(fate "$tpid"), hog $(fate "$gpid"); $kills OOM kill(s) in $PARENT"
        dmesg | grep -E "Killed process ($hpid|$tpid|$gpid) " | tail -n 5 | sed 's/^/  kernel: /' || true

        if [[ $mode == protected ]]; then
                if alive "$hpid"; then
                        survived=$((survived + 1))
                else
                        info "trial $n: THE PROTECTED HOLDER WAS KILLED"
                fi
                alive "$tpid" || twins_killed=$((twins_killed + 1))
                alive "$gpid" || hogs_killed=$((hogs_killed + 1))
        else
                if alive "$hpid"; then control_verdict="holder survived"; else control_verdict="holder killed"; fi
        fi

        exec {hfd}>&- {tfd}>&- {gfd}>&-
        local p
        for p in "$hpid" "$tpid" "$gpid"; do
                kill_tail "$p" || fail "trial $n: tail $p did not go away"
        done
        TAIL_PIDS=()
        # A protected process that exits is forgotten by the daemon.
        if [[ $mode == protected ]]; then
                wait_until 5 forgotten "$hpid" || fail "trial $n: daemon still reports exited PID $hpid as protected"
        fi
}

# The memory-limited parent: a runtime slice unit, gone at the next boot.
mkdir -p /run/systemd/system
cat >/run/systemd/system/$PARENT <<EOF
[Unit]
Description=oomprotect VM test: memory-limited parent of all OOM trials
[Slice]
MemoryAccounting=yes
MemoryMax=${LIMIT_MB}M
EOF
on_exit "systemctl stop $PARENT; rm -f /run/systemd/system/$PARENT; systemctl daemon-reload"
systemctl daemon-reload
systemctl start "$PARENT"
expect_eq "memory.max of $PARENT" "$(cat "$CG/$PARENT/memory.max")" $((LIMIT_MB * MB))

# Control first: it needs no daemon, and proves the setup really OOM-kills
# the largest task, so protected survivals below mean something.
trial 0 control
info "control: $control_verdict"
[[ $control_verdict == "holder killed" ]] ||
        fail "control: the unprotected holder survived, so this setup does not test protection"

daemon_config_in_slice 60-oomtest "$PSLICE"
daemon_fresh_start
expect_eq "Slice property" "$(op_prop Slice)" "$PSLICE"

for ((i = 1; i <= TRIALS; i++)); do
        trial "$i" protected
done

# One line for the benchmarks (bench/vm/92-bench-oom-trials.sh runs this scenario with more trials).
echo "FIGURE oom_trials trials=$TRIALS protected_survived=$survived unprotected_twin_killed=$twins_killed" \
        "hog_killed=$hogs_killed control=${control_verdict// /_}"
summary="protected holder survived $survived/$TRIALS trials; control: $control_verdict"
((survived == TRIALS)) || fail "$summary"
pass "$summary"
