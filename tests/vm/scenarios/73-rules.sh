#!/bin/bash
# Protection by rule (issue 16) under systemd, with the installed package:
#  - a rule by Executable= (a copy of tail, so that its twin, /usr/bin/tail,
#    differs only by its path) protects the holder started from a login-like
#    bare scope (systemd-run --scope) before it has allocated anything; then a
#    real memcg OOM in rulestest.slice (MemoryMax=600M, the daemon's slice
#    nested inside) kills the unprotected twin and spares the holder;
#  - a rule by Unit= (an exact name) protects the service by name when it
#    starts: in place, memory.min on its cgroup through systemd, the adj on
#    its process, one record (ListProtectedUnits, source rule:service) that
#    the engine carries across each restart: memory.min is the unit's own
#    property, there from the new cgroup's first instant;
#    The service's main process says in the journal how long it ran before it
#    had the adj (a bash loop reading /proc/self/oom_score_adj from its first
#    command): 10 more restarts measure the window (BENCHMARKS.md);
#  - removing the rules and reloading unprotects the service exactly.
# vm-timeout: 300
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

readonly LIMIT_MB=600 HOLDER_MB=350 TWIN_MB=350
readonly PARENT=rulestest.slice PSLICE=rulestest-protected.slice
readonly RULES=/etc/oomprotect/rules.d RULE_FILE=/etc/oomprotect/rules.d/50-vmtest.rules
readonly HOLDER=/usr/local/lib/oomprotect-vm/rules-holder SVC=rulestest-svc.service
readonly SVC_START=/usr/local/lib/oomprotect-vm/rules-svc-start MEASURED_RESTARTS=10

rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
oom_kills() { sed -n 's/^oom_kill //p' "$CG/$PARENT/memory.events"; }
source_of() { op_json ListProtected | jq -r --argjson p "$1" '.data[0][] | select(.[0] == $p) | .[8]'; }
# shellcheck disable=SC2317 # called through wait_until
in_scope() { [[ $(cgroup_of "$1") == "$(scope_path "$1" "$PSLICE")" ]]; }
# shellcheck disable=SC2317 # called through wait_until
at_adj() { [[ $(adj_of "$1" 2>/dev/null) == "$2" ]]; }
main_pid() { systemctl show -P MainPID "$SVC"; }
# unit_record: the service's entry in ListProtectedUnits as "unit cgroup memory.min source", empty if none.
unit_record() {
        op_json ListProtectedUnits | jq -r --arg u "$SVC" '.data[0][] | select(.[0] == $u) | "\(.[0]) \(.[1]) \(.[3]) \(.[7])"'
}
# shellcheck disable=SC2317 # called through wait_until
unit_protected() { [[ $(unit_record) == "$SVC /system.slice/$SVC 16777216 rule:service" ]]; }
svc_min() { cat "$CG/system.slice/$SVC/memory.min"; }
# shellcheck disable=SC2317 # called through wait_until
new_main_pid() { local p; p=$(main_pid); [[ $p != 0 && $p != "$1" ]] && comm_is "$p" sleep; }
# shellcheck disable=SC2317 # called through wait_until
journal_has() { journalctl -b -u "$OP_UNIT" --no-pager -o cat | grep -qF -- "$1"; }
# explain PID: what the CLI says of the rules and PID, and what the daemon logged of it.
explain() {
        info "--- oomprotectctl rules test $1:"
        oomprotectctl rules test "$1" 2>&1 | sed 's/^/  | /' || true
        info "--- the daemon's journal about PID $1, the connector and the rules:"
        journalctl -b -u "$OP_UNIT" --no-pager -o short-monotonic |
                grep -E "PID $1[ ):,.]|connector|subscription|Rules:" | tail -n 30 | sed 's/^/  | /' || true
}

[[ -d $RULES && $(stat -c '%U %a' "$RULES") == "root 755" ]] ||
        fail "the package did not make $RULES root's, 0755 ($(stat -c '%U %a' "$RULES" 2>&1))"
cp /usr/bin/tail "$HOLDER"
on_exit "rm -f '$HOLDER'"
cat >"$RULE_FILE" <<EOF
# 73-rules: the holder by its real executable, the service by its unit.
[Rule]
Name=holder
Executable=$HOLDER

[Rule]
Name=service
Unit=$SVC
EOF
chmod 0644 "$RULE_FILE"
on_exit "rm -f '$RULE_FILE'"

mkdir -p /run/systemd/system
cat >"/run/systemd/system/$PARENT" <<EOF
[Unit]
Description=oomprotect VM test: memory-limited parent of the rules' OOM
[Slice]
MemoryAccounting=yes
MemoryMax=${LIMIT_MB}M
EOF
cat >"/run/systemd/system/$SVC" <<EOF
[Unit]
Description=oomprotect VM test: a service a rule protects by Unit=
# 13 starts in the scenario: no start rate limit.
StartLimitIntervalSec=0
[Service]
ExecStart=$SVC_START
EOF
# The service's main process: from its first command, how long until it has the adj, then sleep.
cat >"$SVC_START" <<EOF
#!/bin/bash
t0=\${EPOCHREALTIME/./} n=0
until read -r adj </proc/self/oom_score_adj && [[ \$adj == $ADJ_PROTECTED ]]; do
        ((++n, \${EPOCHREALTIME/./} - t0 < 10000000)) || break # 10 s at most
done
t1=\${EPOCHREALTIME/./}
echo "adj-window: adj \$adj after \$n polls, \$((t1 - t0)) us"
exec /bin/sleep infinity
EOF
chmod 0755 "$SVC_START"
on_exit "rm -f '$SVC_START'"
on_exit "systemctl stop $SVC $PARENT; rm -f /run/systemd/system/$PARENT /run/systemd/system/$SVC; systemctl daemon-reload"
systemctl daemon-reload
systemctl start "$PARENT"

daemon_config_in_slice 73-rules "$PSLICE"
# The daemon at debug level for this scenario: every exec it hears of and every rule match is in the journal.
mkdir -p "/run/systemd/system/$OP_UNIT.d"
printf '[Service]\nExecStart=\nExecStart=/usr/sbin/oomprotectd --log-level=debug\n' >"/run/systemd/system/$OP_UNIT.d/73-debug.conf"
on_exit "rm -f '/run/systemd/system/$OP_UNIT.d/73-debug.conf'; systemctl daemon-reload"
systemctl daemon-reload
daemon_fresh_start
wait_until 10 journal_has "Rules: 2 loaded" || { daemon_journal; fail "the daemon did not load the 2 rules"; }
journal_has "listening to the kernel's process events" ||
        { daemon_journal; fail "no exec matching under the shipped unit (connector not subscribed)"; }

# --- Executable=: protected before it allocates, and spared by a real OOM ---
# shellcheck disable=SC2016 # expanded when the cleanup runs
on_exit 'for p in "${TAIL_PIDS[@]}"; do if comm_is "$p" rules-holder; then kill_tail "$p" rules-holder; else kill_tail "$p"; fi; done'
start_tail rulestest-holder - "$HOLDER"
hpid=$TAIL_PID hfd=$TAIL_FD
wait_until 5 in_scope "$hpid" || { explain "$hpid"; fail "holder $hpid not moved into its scope within 5 s of its exec"; }
assert_protected "$hpid" "$PSLICE"
expect_eq "source of the holder's protection" "$(source_of "$hpid")" "rule:holder"
hkb=$(rss_kb "$hpid")
((hkb < 8 * 1024)) || fail "holder already held $hkb kB when protected: not protected before it allocates"
info "holder $hpid protected by rule:holder with $hkb kB resident, in $(cgroup_of "$hpid")"

kills0=$(oom_kills)
fill "$hfd" "$HOLDER_MB" || fail "the holder died while being filled"
start_tail rulestest-twin rulestest-twin.slice
tpid=$TAIL_PID tfd=$TAIL_FD
expect_eq "IsProtected(twin $tpid), /usr/bin/tail matches no rule" "$(op_is_protected "$tpid")" false
fill "$tfd" "$TWIN_MB" || true
wait_until 10 gone "$tpid" || fail "the twin $tpid survived $((HOLDER_MB + TWIN_MB)) MB under a $LIMIT_MB MB limit"
alive "$hpid" || fail "THE PROTECTED HOLDER $hpid WAS KILLED"
info "OOM kills in $PARENT: $(($(oom_kills) - kills0)); holder $hpid alive with $(($(rss_kb "$hpid") / 1024)) MB, twin $tpid killed"
dmesg | grep -E "Killed process ($hpid|$tpid) " | tail -n 3 | sed 's/^/  kernel: /' || true
exec {hfd}>&- {tfd}>&-
kill_tail "$hpid" rules-holder || fail "holder $hpid did not go away"

# --- Unit=: the service by name, in place, across every restart ---
systemctl start "$SVC"
spid=$(main_pid)
wait_until 5 unit_protected || { explain "$spid"; fail "$SVC not protected by name within 5 s: '$(unit_record)'"; }
wait_until 5 at_adj "$spid" "$ADJ_PROTECTED" || { explain "$spid"; fail "$SVC's PID $spid not protected within 5 s"; }
assert_protected_in_place "$spid" "/system.slice/$SVC"
expect_eq "source of $SVC's protection" "$(source_of "$spid")" "rule:service"
expect_eq "memory.min of $SVC's cgroup" "$(svc_min)" 16777216
expect_eq "$SVC's MemoryMin property" "$(systemctl show -P MemoryMin "$SVC")" 16777216
for round in 1 2; do
        old=$spid
        systemctl restart "$SVC"
        wait_until 10 new_main_pid "$old" || fail "restart $round: $SVC has no new main PID"
        spid=$(main_pid)
        wait_until 5 at_adj "$spid" "$ADJ_PROTECTED" ||
                { explain "$spid"; fail "restart $round: $SVC's new PID $spid not protected within 5 s"; }
        assert_protected_in_place "$spid" "/system.slice/$SVC"
        ! op_listed "$old" || fail "restart $round: the old PID $old is still listed"
        expect_eq "restart $round: memory.min of $SVC's new cgroup" "$(svc_min)" 16777216
        unit_protected || fail "restart $round: $SVC's record changed: '$(unit_record)'"
        info "restart $round: $SVC's PID $old -> $spid, protected by rule:service in place"
done
# The window, over more restarts: each main process's own line (the first start's is the rule's exec path).
for round in $(seq "$MEASURED_RESTARTS"); do
        old=$spid
        systemctl restart "$SVC"
        wait_until 10 new_main_pid "$old" || fail "measured restart $round: $SVC has no new main PID"
        spid=$(main_pid)
done
windows() { journalctl -b -u "$SVC" --no-pager -o cat | grep '^adj-window: ' || true; }
# shellcheck disable=SC2317 # called through wait_until
all_measured() { (($(windows | grep -c "adj $ADJ_PROTECTED after") >= MEASURED_RESTARTS + 3)); }
wait_until 10 all_measured || fail "not every main process had the adj: $(windows | tr '\n' ';')"
info "first start (protected by the rule at its exec): $(windows | head -n 1)"
info "restarts: $(windows | tail -n +2 | sed 's/^adj-window: adj [-0-9]* after //' | tr '\n' ';')"

# --- the rules go, the service's process comes back exactly ---
rm -f "$RULE_FILE"
systemctl reload "$OP_UNIT"
wait_until 10 journal_has "Restoring unit $SVC: rule removed." || { daemon_journal; fail "$SVC not restored on reload"; }
wait_until 5 at_adj "$spid" 0 || fail "PID $spid's oom_score_adj is $(adj_of "$spid") after the reload, not 0"
expect_eq "cgroup of $spid after the reload" "$(cgroup_of "$spid")" "/system.slice/$SVC"
expect_eq "IsProtected($spid) after the reload" "$(op_is_protected "$spid")" false
wait_until 10 test "$(svc_min)" = 0 || fail "memory.min of $SVC is $(svc_min) after the reload, not 0"
expect_eq "ListProtectedUnits after the reload" "$(unit_record)" ""
pass "rule by Executable= protected a bare-scope program before it allocated ($hkb kB) and the OOM spared it, twin killed; rule by Unit= protected $SVC by name in place (memory.min 16M) across 2 restarts; removed on reload, restored"
