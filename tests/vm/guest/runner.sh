#!/bin/bash
# Guest side of the VM test tier: started once per boot by
# oomprotect-vm-test.service, runs every scenario as root and reports on the
# second serial port (/dev/ttyS1 = RESULTS_DIR/results.txt on the host):
#
#   BEGIN uptime=<s> kernel=<release> systemd=<version>
#   START <name>
#   DETAIL <name> <one line of the scenario's output>      (streamed live)
#   RESULT <name> PASS|FAIL|SKIP <reason: its last "PASS:|FAIL:|SKIP:" line>
#   END <n> scenarios
#
# The boot's journal goes to the third serial port (RESULTS_DIR/journal.log).
# When this script returns, the unit's SuccessAction/FailureAction powers the
# guest off.
set -uo pipefail # no -e: a failing scenario must not stop the run

readonly DIR=/usr/local/lib/oomprotect-vm
readonly LOGDIR=/var/log/oomprotect-vm
readonly DEFAULT_TIMEOUT=120

# Raw mode: no \n -> \r\n translation, no echo of anything the host sends.
for tty in /dev/ttyS1 /dev/ttyS2; do
        stty -F "$tty" raw -echo 2>/dev/null || true
done
exec 3>/dev/ttyS1

say() {
        printf '%s\n' "$*" >&3
        printf '%s\n' "$*"
}

# A scenario may ask for a longer timeout with a comment line
# "# vm-timeout: SECONDS" near its top.
scenario_timeout() {
        local t
        t=$(sed -n '1,20s/^# *vm-timeout: *\([0-9][0-9]*\).*/\1/p' "$1" | head -n1)
        echo "${t:-$DEFAULT_TIMEOUT}"
}

mkdir -p "$LOGDIR"
read -r uptime _ </proc/uptime
systemd_version=$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
say "BEGIN uptime=$uptime kernel=$(uname -r) systemd=$systemd_version"

# The package, installed as an administrator would (run-vm.sh put it in
# $DIR/debs): postinst creates the group, enables and starts the service.
# 05-package-installed checks the result; the log is kept for it.
for deb in "$DIR"/debs/oomprotect_*.deb; do
        [[ -f $deb ]] || continue
        # With the library it depends on, from the same build (no archive has it).
        apt-get install -y --no-install-recommends "$DIR"/debs/deps/*.deb "$deb" >"$LOGDIR/package-install.log" 2>&1
        say "PACKAGE $(basename "$deb") apt-get install exit $?"
done

# Only NN-name.sh files are scenarios; lib.sh and friends are helpers.
# An optional filter (kernel command line oomprotect.only=REGEX) narrows it.
only=$(sed -n 's/.*oomprotect\.only=\([^ ]*\).*/\1/p' /proc/cmdline)
n=0
for script in "$DIR"/scenarios/[0-9][0-9]-*.sh; do
        [[ -f $script ]] || continue
        name=$(basename "$script" .sh)
        if [[ -n $only ]] && ! [[ $name =~ $only ]]; then
                continue
        fi
        n=$((n + 1))
        timeout=$(scenario_timeout "$script")
        log="$LOGDIR/$name.log"
        work=$(mktemp -d "/tmp/$name.XXXXXX")
        say "START $name"
        start=$SECONDS
        # timeout puts the scenario in its own process group and signals the
        # whole group, background helpers included; -k: SIGKILL if SIGTERM
        # is ignored. stdin from /dev/null: nothing may wait for input.
        (cd "$work" && exec timeout -k 10 "$timeout" bash "$script" </dev/null) 2>&1 |
                tee "$log" | sed -u "s/^/DETAIL $name /" >&3
        rc=${PIPESTATUS[0]}
        took=$((SECONDS - start))
        # The reason: the scenario's last "PASS:/FAIL:/SKIP:" line, else its
        # last non-empty line.
        reason=$(grep -E '^(PASS|FAIL|SKIP): ' "$log" | tail -n1 | sed -E 's/^(PASS|FAIL|SKIP): //')
        [[ -n $reason ]] || reason=$(grep -v '^[[:space:]]*$' "$log" | tail -n1)
        reason=$(tr -d '\r' <<<"$reason")
        case $rc in
        0) verdict=PASS ;;
        77) verdict=SKIP ;;
        124 | 137)
                verdict=FAIL
                reason="timed out after ${timeout}s (last output: ${reason:-none})"
                ;;
        *)
                verdict=FAIL
                reason="exit $rc: ${reason:-no output}"
                ;;
        esac
        say "DETAIL $name -- finished in ${took}s, exit $rc"
        say "RESULT $name $verdict ${reason:-ok}"
        rm -rf "$work"
done

journalctl -b --no-pager -o short-monotonic >/dev/ttyS2 2>&1 || true
say "END $n scenarios"
# Closing a serial port waits for its output to drain; give it a moment too.
exec 3>&-
sleep 1
exit 0
