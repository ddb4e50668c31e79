#!/bin/bash
# Issue 15: the Debian package as the runner installed it before the first
# scenario (apt-get install ./oomprotect_*.deb in this booted guest, see
# guest/runner.sh): installed, the service enabled and running with its bus
# name, the oomprotect group made by postinst (sysusers.d), the
# configuration a conffile, the units where bookworm's systemd looks.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

log=/var/log/oomprotect-vm/package-install.log
[[ -f $log ]] || fail "the runner installed no package (no $log)"
sed 's/^/  apt: /' "$log" | tail -n 8
status=$(dpkg-query -W -f='${db:Status-Status}' oomprotect 2>/dev/null || true)
[[ $status == installed ]] || fail "package oomprotect is '${status:-unknown}' after apt-get install, not installed"
info "installed: $(dpkg-query -W -f='${Package} ${Version} ${Architecture}' oomprotect)"

expect_eq "systemctl is-enabled $OP_UNIT" "$(systemctl is-enabled "$OP_UNIT" 2>&1)" enabled
# postinst's start is a job that ends when the service is up (Type=notify).
expect_eq "systemctl is-active $OP_UNIT" "$(systemctl is-active "$OP_UNIT" 2>&1)" active
wait_until 5 bus_has_name org.oomprotect || fail "org.oomprotect is not on the bus after the install"
info "daemon: version $(op_prop Version), backend $(op_prop Backend)"
getent group oomprotect >/dev/null || fail "postinst did not create the oomprotect group"
dpkg-query -W -f='${Conffiles}\n' oomprotect | grep -q ' /etc/oomprotect/oomprotectd.conf ' ||
        fail "/etc/oomprotect/oomprotectd.conf is not a conffile"
owner=$(dpkg-query -S /lib/systemd/system/oomprotectd.service 2>/dev/null | cut -d: -f1)
expect_eq "package owning /lib/systemd/system/oomprotectd.service" "$owner" oomprotect
for f in /usr/share/dbus-1/system.d/org.oomprotect.conf /usr/share/dbus-1/system-services/org.oomprotect.service \
        /usr/lib/sysusers.d/oomprotect.conf /usr/lib/tmpfiles.d/oomprotect.conf; do
        [[ -f $f ]] || fail "the package did not install $f"
done
# The optional socket units are shipped, not enabled; their hand-over service only they start.
expect_eq "systemctl is-enabled oomprotectd.socket" "$(systemctl is-enabled oomprotectd.socket 2>&1)" disabled
expect_eq "systemctl is-enabled oomprotectd-sockets@.service" "$(systemctl is-enabled oomprotectd-sockets@.service 2>&1)" static
for s in oomprotectd oomprotectd-ctl; do
        expect_eq "Service= of $s.socket" "$(systemctl show -P Triggers "$s.socket")" "oomprotectd-sockets@$s.service"
done
[[ -x /usr/libexec/oomprotect/oomprotect-adopt-sockets ]] || fail "the package did not install oomprotect-adopt-sockets"
pass "$(dpkg-query -W -f='${Version}' oomprotect) installed by apt, $OP_UNIT enabled and active, group oomprotect exists"
