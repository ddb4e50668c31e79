#!/bin/bash
# Boots the project's build in a throw-away Debian VM and runs the scenarios.
#
#   tests/vm/run-vm.sh BUILD_DIR RESULTS_DIR      run every scenario
#   tests/vm/run-vm.sh --shell BUILD_DIR          interactive root shell (see shell.sh)
#
# Steps: get the cached guest root (build-image.sh), unpack a fresh copy, put
# the Debian package (BUILD_DIR/deb, built by scripts/build-deb.sh: ctest's
# package.deb, or here if it is missing) and a copy of it with a higher
# version (for the upgrade scenario) into it, add the scenarios and the guest
# runner with its oneshot unit, make an ext4 image with `mke2fs -d`, boot it
# under qemu (TCG) and collect the guest's report. The runner installs the
# package with `apt install ./oomprotect_*.deb` in the booted guest, as an
# administrator would, before the first scenario (--shell: dpkg -i in the
# guest root before boot).
#
# RESULTS_DIR receives: results.txt (the guest's ttyS1: BEGIN/START/DETAIL/
# RESULT/END lines), console.log (ttyS0), journal.log (the guest's journal,
# ttyS2), timing.txt; skipped.txt when the tier cannot run on this host.
#
# Exit: 0 when the guest ran every scenario and reported (each scenario's
# verdict is in results.txt; the per-scenario ctest tests judge those),
# 77 when this host cannot run the tier, 1 otherwise.
#
# Environment:
#   OOMPROTECT_VM_TIMEOUT  seconds before qemu is killed (default 900)
#   OOMPROTECT_VM_MEMORY   guest RAM in MiB (default 1024)
#   OOMPROTECT_VM_CPUS     guest CPUs (default 2)
#   OOMPROTECT_VM_ONLY     regex: run only the scenarios whose name matches
#   OOMPROTECT_VM_APPEND   extra kernel command line
#   OOMPROTECT_VM_KEEP=1   keep the work directory (root tree and disk image)
#   OOMPROTECT_VM_CACHE    image cache (see build-image.sh)
#   OOMPROTECT_VM_DEB_DIR  where the package is (default BUILD_DIR/deb)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=vm-lib.sh
. "$(dirname "$0")/vm-lib.sh"

usage() { sed -n '2,/^set -e/{/^#/s/^# \{0,1\}//p}' "$0"; }

mode="test"
case "${1:-}" in
--shell)
        mode=shell
        shift
        ;;
-h | --help)
        usage
        exit 0
        ;;
esac
if [[ $mode == test ]]; then
        (($# == 2)) || {
                usage >&2
                exit 2
        }
        results=$2
else
        (($# == 1 || $# == 2)) || {
                usage >&2
                exit 2
        }
        results=${2:-}
fi
build=$(cd "$1" && pwd) || die "no build directory $1"
[[ -f $build/CMakeCache.txt ]] || die "$build is not a CMake build directory"

timeout_s=${OOMPROTECT_VM_TIMEOUT:-900}
memory=${OOMPROTECT_VM_MEMORY:-1024}
cpus=${OOMPROTECT_VM_CPUS:-2}
readonly GUEST_DIR=/usr/local/lib/oomprotect-vm
readonly DRIVER_UNIT=oomprotect-vm-test.service

if [[ -n $results ]]; then
        mkdir -p "$results"
        results=$(cd "$results" && pwd)
        rm -f "$results"/{results.txt,console.log,journal.log,timing.txt,skipped.txt}
        # A skip leaves its reason where the per-scenario tests look.
        skip() {
                log "skipping: $*"
                echo "$*" >"$results/skipped.txt"
                exit 77
        }
fi

# The package this tier installs: BUILD_DIR/deb's, built now if it is not there.
find_package() {
        local dir=${OOMPROTECT_VM_DEB_DIR:-$build/deb} deb
        deb=$(find "$dir" -maxdepth 1 -name 'oomprotect_*.deb' 2>/dev/null | sort | tail -n1)
        if [[ -z $deb ]]; then
                log "no package in $dir: building it (scripts/build-deb.sh)"
                "$VM_DIR/../../scripts/build-deb.sh" "$dir" >&2 || die "scripts/build-deb.sh $dir failed"
                deb=$(find "$dir" -maxdepth 1 -name 'oomprotect_*.deb' | sort | tail -n1)
        fi
        [[ -n $deb ]] || die "no oomprotect_*.deb in $dir"
        echo "$deb"
}

# The same package with a higher version: what an upgrade installs. Same
# files, same maintainer scripts, so the upgrade path is the real one.
make_upgrade_package() {
        local deb=$1 out=$2 version tree
        version=$(dpkg-deb -f "$deb" Version)+vmupgrade1
        tree=$work/upgrade-tree
        dpkg-deb -R "$deb" "$tree"
        sed -i "s/^Version: .*/Version: $version/" "$tree/DEBIAN/control"
        dpkg-deb --root-owner-group -b "$tree" "$out/oomprotect_${version}_$(dpkg-deb -f "$deb" Architecture).deb" >/dev/null
        rm -rf "$tree"
}

# install_package ROOT: the package (and its upgrade) into ROOT$GUEST_DIR/debs,
# with the client library it depends on (liboomprotect0, from the same build).
install_package() {
        local deb lib
        deb=$(find_package)
        lib=$(find "$(dirname "$deb")" -maxdepth 1 -name 'liboomprotect0_*.deb' | sort | tail -n1)
        [[ -n $lib ]] || die "no liboomprotect0_*.deb beside $(basename "$deb")"
        log "guest gets $(basename "$deb") and $(basename "$lib") (apt install in the guest)"
        install -d "$1$GUEST_DIR/debs/upgrade" "$1$GUEST_DIR/debs/deps"
        install -m 0644 "$deb" "$1$GUEST_DIR/debs/"
        install -m 0644 "$lib" "$1$GUEST_DIR/debs/deps/"
        make_upgrade_package "$deb" "$1$GUEST_DIR/debs/upgrade"
        if [[ $mode == shell ]]; then
                chroot "$1" dpkg -i "$GUEST_DIR/debs/deps/$(basename "$lib")" "$GUEST_DIR/debs/$(basename "$deb")" 2>&1 |
                        sed 's/^/  /' >&2 || die "dpkg -i $(basename "$deb") in the guest root failed"
        fi
}

t0=$SECONDS
vm_require_root
vm_ensure_host_tools

rc=0
image=$("$VM_DIR/build-image.sh") || rc=$?
((rc != 77)) || skip "the guest image cannot be built here (see build-image.sh output)"
((rc == 0)) || die "build-image.sh failed (exit $rc)"
t_image=$((SECONDS - t0))

work=$(mktemp -d "${TMPDIR:-/var/tmp}/oomprotect-vm.XXXXXX")
qpid=""
cleanup() {
        if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then
                kill "$qpid" 2>/dev/null || true
                wait "$qpid" 2>/dev/null || true
        fi
        if [[ ${OOMPROTECT_VM_KEEP:-0} == 1 ]]; then
                log "kept work directory $work"
        else
                rm -rf --one-file-system "$work"
        fi
}
trap cleanup EXIT
# ctest's timeout or a Ctrl-C: stop qemu and remove the work dir on the way out.
trap 'exit 143' TERM INT HUP
root=$work/root
mkdir "$root"

# --- the guest root --------------------------------------------------------

t1=$SECONDS
log "unpacking $image"
tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -xf "$image"

install_package "$root"
# earlyoom and systemd-oomd are in the image for the doctor scenario, which
# starts them; off otherwise, so that no other scenario meets a second killer.
for unit in earlyoom.service systemd-oomd.service systemd-oomd.socket; do
        chroot "$root" systemctl disable "$unit" >/dev/null 2>&1 || true
done

install -d "$root$GUEST_DIR/scenarios"
install -m 0644 "$VM_DIR"/scenarios/*.sh "$root$GUEST_DIR/scenarios/"
chmod 0755 "$root$GUEST_DIR"/scenarios/[0-9][0-9]-*.sh
install -m 0755 "$VM_DIR/guest/runner.sh" "$root$GUEST_DIR/runner.sh"
# Test programs built for the guest (tests/vm/CMakeLists.txt), which has no compiler.
if compgen -G "$build/tests/vm/guest-bin/*" >/dev/null; then
        install -d "$root$GUEST_DIR/bin"
        install -m 0755 "$build"/tests/vm/guest-bin/* "$root$GUEST_DIR/bin/"
fi
install -m 0644 "$VM_DIR/guest/$DRIVER_UNIT" "$root/etc/systemd/system/$DRIVER_UNIT"
echo oomprotect-vm >"$root/etc/hostname"

if [[ $mode == test ]]; then
        # The serial getty would take ttyS0 over at login and eat output.
        ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
        chroot "$root" systemctl enable "$DRIVER_UNIT" 2>&1 | sed 's/^/  /' >&2
        [[ -L $root/etc/systemd/system/multi-user.target.wants/$DRIVER_UNIT ]] ||
                die "systemctl enable $DRIVER_UNIT did not create the wants link"
else
        # Interactive: root logs in on the serial console without a password.
        install -d "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
        cat >"$root/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<-'EOF'
	[Service]
	ExecStart=
	ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
	EOF
        cat >"$root/etc/motd" <<-EOF

	oomprotect VM debug shell. Scenarios: $GUEST_DIR/scenarios/NN-*.sh
	(run one with: bash $GUEST_DIR/scenarios/00-smoke.sh). Power off: poweroff.
	Leave qemu at any time: Ctrl-A X.

	EOF
fi

# Kernel and initrd come out of the guest root itself.
kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)
initrd=$root/boot/initrd.img-${kernel##*/vmlinuz-}
[[ -f $kernel && -f $initrd ]] || die "no kernel/initrd in the guest root's /boot"
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"

# Disk: the tree plus 1 GiB of room, made without mounting anything.
size_mb=$(($(du -sm "$root" | cut -f1) + 1024))
mke2fs -q -t ext4 -L oomprotect-vm -d "$root" -F "$work/rootfs.img" "${size_mb}M" >/dev/null
[[ ${OOMPROTECT_VM_KEEP:-0} == 1 ]] || rm -rf "$root"
t_prepare=$((SECONDS - t1))
log "guest ready: image ${t_image}s, unpack+install+mke2fs ${t_prepare}s"

# --- boot ----------------------------------------------------------------------

# mitigations=off: no page-table isolation etc., which costs a lot under TCG.
# panic=1 with -no-reboot: a kernel panic ends qemu at once.
append="root=/dev/vda rw console=ttyS0,115200 panic=1 fsck.mode=skip mitigations=off"
append+=" systemd.show_status=1 systemd.log_color=0 net.ifnames=0"
[[ -z ${OOMPROTECT_VM_ONLY:-} ]] || append+=" oomprotect.only=$OOMPROTECT_VM_ONLY"
[[ -z ${OOMPROTECT_VM_APPEND:-} ]] || append+=" $OOMPROTECT_VM_APPEND"

qemu=(qemu-system-x86_64 -accel tcg -smp "$cpus" -m "$memory"
        -nodefaults -no-user-config -display none -no-reboot -snapshot
        -kernel "$work/vmlinuz" -initrd "$work/initrd.img" -append "$append"
        -drive "file=$work/rootfs.img,format=raw,if=virtio"
        -device virtio-rng-pci)

if [[ $mode == shell ]]; then
        log "booting a debug shell (Ctrl-A X quits qemu, Ctrl-A C the monitor)"
        "${qemu[@]}" -serial mon:stdio -serial null -serial null
        exit 0
fi

log "booting the guest under TCG (${cpus} CPUs, ${memory} MiB, timeout ${timeout_s}s)"
t2=$SECONDS
"${qemu[@]}" -monitor none \
        -serial "file:$results/console.log" \
        -serial "file:$results/results.txt" \
        -serial "file:$results/journal.log" &
qpid=$!

# Supervise: the overall timeout, and a guest that reported END but does not
# power off (it should, through the driver unit's SuccessAction=) is stopped
# after a grace period instead of eating the whole timeout.
timed_out=0 end_at=""
while kill -0 "$qpid" 2>/dev/null; do
        if ((SECONDS - t2 >= timeout_s)); then
                log "timeout: the guest is still running after ${timeout_s}s; stopping qemu"
                timed_out=1
                break
        fi
        if [[ -z $end_at ]] && grep -q '^END ' "$results/results.txt" 2>/dev/null; then
                end_at=$SECONDS
        fi
        if [[ -n $end_at ]] && ((SECONDS - end_at > 60)); then
                log "warning: the guest reported END but did not power off within 60 s; stopping qemu"
                break
        fi
        sleep 1
done
if kill -0 "$qpid" 2>/dev/null; then
        kill "$qpid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
                kill -0 "$qpid" 2>/dev/null || break
                sleep 1
        done
        kill -KILL "$qpid" 2>/dev/null || true
fi
qrc=0
wait "$qpid" || qrc=$?
qpid=""
t_run=$((SECONDS - t2))

# --- the report ------------------------------------------------------------------

# Serial output may carry \r; the guest writes raw, but be lenient.
sed -i 's/\r$//' "$results/results.txt" "$results/journal.log" 2>/dev/null || true

console_tail() {
        log "last 60 lines of $results/console.log:"
        tail -n 60 "$results/console.log" 2>/dev/null | tr -d '\r' | sed 's/^/  | /' >&2 || true
}

begin=$(grep -m1 '^BEGIN ' "$results/results.txt" 2>/dev/null || true)
if [[ -z $begin ]]; then
        console_tail
        if ((timed_out)); then
                die "the guest did not report within ${timeout_s}s: it did not boot, or the test driver never started"
        fi
        die "qemu exited (status $qrc) without a report from the guest: it did not boot, or the test driver never started"
fi
boot_s=$(sed -n 's/.*uptime=\([0-9.]*\).*/\1/p' <<<"$begin")

{
        echo "image_s=$t_image"
        echo "prepare_s=$t_prepare"
        echo "guest_boot_s=$boot_s"
        echo "qemu_s=$t_run"
        echo "total_s=$((SECONDS - t0))"
} >"$results/timing.txt"

log "guest: ${begin#BEGIN }"
grep '^RESULT ' "$results/results.txt" | sed 's/^RESULT /  /' >&2 || true
log "times: image ${t_image}s, prepare ${t_prepare}s, boot to driver ${boot_s}s, qemu ${t_run}s, total $((SECONDS - t0))s"

if ! grep -q '^END ' "$results/results.txt"; then
        last=$(grep '^START ' "$results/results.txt" | tail -n1 | cut -d' ' -f2)
        console_tail
        if ((timed_out)); then
                die "timed out after ${timeout_s}s while the guest was running ${last:-?} (raise OOMPROTECT_VM_TIMEOUT?)"
        fi
        die "the guest stopped reporting during ${last:-?} (qemu status $qrc): crash or panic? see $results/console.log"
fi
if ((qrc != 0)); then
        log "note: qemu exited with status $qrc after a complete report"
fi
log "results in $results"
