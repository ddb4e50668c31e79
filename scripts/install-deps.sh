#!/usr/bin/env bash
# Installs every package oomprotect needs to build and to run all its tests on
# Debian 12. Idempotent: quiet when everything is there already.
#   scripts/install-deps.sh          build + unit/integration test + packaging dependencies
#   scripts/install-deps.sh --vm     also the VM tier's (qemu, mmdebstrap)
set -euo pipefail

packages=(
        gcc make cmake pkg-config
        libsystemd-dev libjson-c-dev libcgroup-dev libinih-dev libcmocka-dev libfuse3-dev
        dbus-daemon systemd util-linux procps socat shellcheck zsh
        valgrind # test-valgrind: memcheck of the daemon through a scenario
        scdoc man-db # the man pages: built from scdoc sources, checked with man --warnings
        attr # getfattr/setfattr: integration/test-marks reads the xattrs the daemon writes
        debhelper dpkg-dev fakeroot lintian # the Debian package and its lintian check
)
if [[ "${1:-}" == "--vm" ]]; then
        packages+=(qemu-system-x86 mmdebstrap e2fsprogs zstd)
fi

missing=()
for p in "${packages[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [[ "$status" == "installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
        echo "install-deps: missing packages (${missing[*]}); run this as root." >&2
        exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A third-party source that cannot be reached must not stop us: Debian's archive is what we need.
apt-get update -qq || echo "install-deps: apt-get update reported errors, continuing" >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
