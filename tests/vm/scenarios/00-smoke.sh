#!/bin/bash
# Smoke: the guest is what the other scenarios assume — systemd as PID 1, a
# pure cgroup v2 hierarchy with the memory controller, and systemd able to
# make a scope in a slice with memory.min. Needs nothing from oomprotect.
# vm-timeout: 60
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

expect_eq "PID 1" "$(comm_of 1)" systemd
expect_eq "filesystem type of $CG" "$(stat -f -c %T "$CG")" cgroup2fs
read -r -a controllers <"$CG/cgroup.controllers"
info "cgroup.controllers: ${controllers[*]}"
[[ " ${controllers[*]} " == *" memory "* ]] || fail "no memory controller in $CG/cgroup.controllers"
grep -qw memory "$CG/cgroup.subtree_control" || fail "memory not enabled in $CG/cgroup.subtree_control"
info "systemd $(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p'), kernel $(uname -r)"

systemctl is-active --quiet dbus.service || fail "dbus.service is not active"
busctl --system status org.freedesktop.systemd1 >/dev/null || fail "busctl cannot reach systemd on the system bus"

# The call the brief names, then the same scope checked from inside: it must
# sit in test.slice and carry memory.min = 64M.
systemd-run --quiet --scope -p Slice=test.slice -p MemoryMin=64M true ||
        fail "systemd-run --scope -p Slice=test.slice -p MemoryMin=64M true failed"
# shellcheck disable=SC2016 # expanded by the inner sh
inside=$(systemd-run --quiet --collect --scope -p Slice=test.slice -p MemoryMin=64M \
        sh -c 'cg=$(sed -n "s/^0:://p" /proc/self/cgroup); echo "$cg $(cat /sys/fs/cgroup$cg/memory.min)"')
read -r scope_cg scope_min <<<"$inside"
info "transient scope: $scope_cg memory.min=$scope_min"
[[ $scope_cg == /test.slice/run-*.scope ]] || fail "scope not under /test.slice: $scope_cg"
expect_eq "memory.min of the scope" "$scope_min" 67108864

# What the daemon's scenarios will need from the image.
for tool in busctl systemd-run jq choom crun; do
        command -v "$tool" >/dev/null || fail "$tool missing from the guest image"
done
if command -v oomprotectd >/dev/null; then
        info "installed: $(oomprotectd --version 2>&1 | head -n1)"
else
        info "oomprotectd is not installed (yet)"
fi

pass "systemd PID 1, cgroup2 with memory, scope in test.slice with memory.min=64M"
