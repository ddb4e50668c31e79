#!/bin/bash
# DESIGN.md 1: a child forked after protection starts in the scope with the
# protected adj (the kernel gives both to children); Unprotect restores the
# parent and that child (still in the scope, still carrying the protected
# value) to the parent's original cgroup and adj.
# vm-timeout: 90
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

daemon_config_default
daemon_fresh_start

gate=$PWD/gate
pidfile=$PWD/child.pid
mkfifo "$gate"
# The parent waits on the gate, then forks a sleep and writes its PID.
# shellcheck disable=SC2016 # expanded by the inner bash
"${IN_SCOPE[@]}" bash -c 'read -r _ <"$1"; sleep 100000 & echo $! >"$2"; wait' parent "$gate" "$pidfile" 2>/dev/null &
parent=$!
wait_until 5 comm_is "$parent" bash || fail "parent $parent never exec'd bash"
on_exit "pkill -KILL -P $parent; kill -KILL $parent; wait $parent"
echo 123 >"/proc/$parent/oom_score_adj"
orig_cg=$(cgroup_of "$parent")
info "parent $parent in $orig_cg, adj 123"

op Protect u "$parent" || fail "Protect($parent) failed"
assert_protected "$parent"

echo go >"$gate"
wait_until 5 test -s "$pidfile" || fail "the parent did not fork its child"
child=$(cat "$pidfile")
wait_until 5 comm_is "$child" sleep || fail "child $child never exec'd sleep"
info "child $child forked after protection"
expect_eq "cgroup of the child" "$(cgroup_of "$child")" "$(scope_path "$parent")"
expect_eq "adj of the child" "$(adj_of "$child")" "$ADJ_PROTECTED"

op Unprotect u "$parent" || fail "Unprotect($parent) failed"
assert_restored "$parent" "$orig_cg" 123
expect_eq "cgroup of the child after unprotect" "$(cgroup_of "$child")" "$orig_cg"
expect_eq "adj of the child after unprotect" "$(adj_of "$child")" 123

pass "child $child was forked into the scope with adj -1000; Unprotect restored parent and child"
