# shellcheck shell=bash
# Shared host-side helpers of the VM test tier, sourced by build-image.sh,
# run-vm.sh and shell.sh. Not executable on its own.

# shellcheck disable=SC2034 # used by the scripts that source this
VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly VM_DIR

# Bump when build-image.sh changes what ends up in the tarball: it is part of
# the cache key, so a new version never reuses an old image.
readonly VM_IMAGE_VERSION=1

VM_SUITE=${OOMPROTECT_VM_SUITE:-bookworm}
# The host's own archive (see /etc/apt/sources.list.d/debian.sources).
VM_MIRROR=${OOMPROTECT_VM_MIRROR:-http://deb.debian.org/debian}
VM_CACHE=${OOMPROTECT_VM_CACHE:-/var/cache/oomprotect-vm}

# Everything the guest needs: boot (kernel, systemd, udev), the daemon's
# runtime libraries, and the tools the scenarios use (busctl and systemd-run
# are in systemd, choom/findmnt in util-linux, jq for busctl --json;
# libfuse3-3 for oomprotect-cuse), and the OOM killers doctor judges
# (72-doctor; disabled in the guest by run-vm.sh); nginx-light, the service
# 71-units protects by name and with a drop-in.
VM_PACKAGES=(
        linux-image-amd64
        systemd-sysv
        dbus
        udev
        procps
        util-linux
        coreutils
        libsystemd0
        libjson-c5
        libcgroup2
        libinih1
        crun
        podman
        busybox-static
        jq
        kmod
        libfuse3-3
        earlyoom
        systemd-oomd
        nginx-light
)

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Exit code 77 means "skip" everywhere in this tier (ctest SKIP_RETURN_CODE).
skip() { log "skipping: $*"; exit 77; }

# The cache key: everything that changes the content of the tarball.
vm_image_key() {
        printf '%s\n' "version=$VM_IMAGE_VERSION" "suite=$VM_SUITE" "mirror=$VM_MIRROR" \
                "variant=minbase" "${VM_PACKAGES[@]}" | LC_ALL=C sort | sha256sum | cut -c1-16
}

vm_image_path() {
        printf '%s/rootfs-%s-%s.tar\n' "$VM_CACHE" "$VM_SUITE" "$(vm_image_key)"
}

# Installs the host tools this tier needs with apt-get when one is missing.
# Runs apt-get only when needed: it takes the dpkg lock and the network.
vm_ensure_host_tools() {
        local -A want=([qemu-system-x86_64]=qemu-system-x86 [mmdebstrap]=mmdebstrap
                [mke2fs]=e2fsprogs [timeout]=coreutils [flock]=util-linux)
        local cmd missing=()
        for cmd in "${!want[@]}"; do
                command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
        done
        ((${#missing[@]} == 0)) && return 0
        command -v apt-get >/dev/null 2>&1 || skip "missing ${missing[*]} and no apt-get to install them"
        log "installing ${missing[*]} with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

vm_require_root() {
        ((EUID == 0)) || skip "needs root (mmdebstrap, chroot, mke2fs -d with real ownership)"
}
