#!/usr/bin/env bash
# The README's first command: installs what is needed, builds, and shows
# oomprotectd protecting a process over D-Bus and through the 2006 module's
# files, then putting it back exactly.
#
# It changes nothing on the host beyond a cgroup of its own: a private
# dbus-daemon configured like the system bus (with the shipped policy), the
# daemon's state and compat files in a temporary directory, and a slice
# oomprotect-demo.slice that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOOMPROTECT_VM_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

tmp=$(mktemp -d /tmp/oomprotect-demo.XXXXXX)
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/bus.sock
pids=()
cleanup() {
        set +e
        [[ ${#pids[@]} -gt 0 ]] && kill "${pids[@]}" 2>/dev/null
        wait 2>/dev/null
        [[ -n ${cg:-} ]] && find "$cg/oomprotectdemo.slice" -depth -type d -exec rmdir {} + 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
show() {
        printf '\n$ %s\n' "$*"
        "$@"
}
show_sh() {
        printf '\n$ %s\n' "$1"
        sh -c "$1"
}

sed -e "s|@SOCKET@|$tmp/bus.sock|" -e "s|@POLICY@|$src/conf/org.oomprotect.conf|" \
        tests/integration/system-bus.conf.in >"$tmp/bus.conf"
dbus-daemon --config-file="$tmp/bus.conf" --nofork --nopidfile &
pids+=($!)

# Without CAP_SYS_RESOURCE (some containers) no process may go below 0: show the mechanics from 500 to 0.
adj=-1000 start_adj=0
if ! (echo -1 >/proc/self/oom_score_adj) 2>/dev/null; then
        adj=0 start_adj=500
        echo "note: this host denies lowering oom_score_adj (no CAP_SYS_RESOURCE); the demo protects with 0 from 500"
fi
cat >"$tmp/oomprotectd.conf" <<CONF
[Manager]
Slice=oomprotectdemo-protected.slice
StateDirectory=$tmp/state
CompatDirectory=$tmp/compat
OOMScoreAdjust=$adj
DefaultMemoryMin=16M
CONF

for _ in $(seq 50); do [[ -S $tmp/bus.sock ]] && break; sleep 0.1; done
build/oomprotectd --config "$tmp/oomprotectd.conf" 2>"$tmp/daemon.log" &
pids+=($!)
for _ in $(seq 50); do busctl status org.oomprotect >/dev/null 2>&1 && break; sleep 0.1; done
cg=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
        /proc/self/mountinfo)

sh -c "echo $start_adj >/proc/self/oom_score_adj; exec sleep 600" &
pid=$!
pids+=("$pid")
sleep 0.2

echo "== oomprotectd $(build/oomprotectd --version | cut -d' ' -f2) on a private system-like bus"
show build/oomprotectctl status
echo
echo "== a process to protect: sleep, PID $pid"
show grep '^0::' "/proc/$pid/cgroup"
show cat "/proc/$pid/oom_score_adj"
show busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager Protect u "$pid"
show grep '^0::' "/proc/$pid/cgroup"
show cat "/proc/$pid/oom_score_adj"
show build/oomprotectctl status
show cat "$tmp/compat/status"
show build/oomprotectctl unprotect "$pid"
show grep '^0::' "/proc/$pid/cgroup"
show cat "/proc/$pid/oom_score_adj"
echo
echo "== the same through the 2006 module's files"
show_sh "echo 'setprotection $pid 1' > $tmp/compat/ctl"
sleep 0.3
show cat "$tmp/compat/status"
show build/oomprotectctl is-protected "$pid"
show_sh "echo 'setprotection $pid 0' > $tmp/compat/ctl"
sleep 0.3
show cat "$tmp/compat/status"
echo
echo "== what the daemon logged"
cat "$tmp/daemon.log"
