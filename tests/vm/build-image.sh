#!/bin/bash
# Builds the Debian guest root of the VM test tier as a tarball, or reuses the
# cached one. Prints the tarball's path on stdout (logs go to stderr).
#
#   tests/vm/build-image.sh [--force]
#
# Cache: $OOMPROTECT_VM_CACHE (default /var/cache/oomprotect-vm), one file
# rootfs-<suite>-<key>.tar where <key> hashes the package list, the suite, the
# mirror and VM_IMAGE_VERSION. The build happens in a temporary directory
# inside the cache and is renamed into place, so a killed build never leaves a
# half-written tarball under the final name. Exit 77 = cannot run here (skip).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=vm-lib.sh
. "$(dirname "$0")/vm-lib.sh"

force=0
case "${1:-}" in
"") ;;
--force) force=1 ;;
-h | --help)
        sed -n '2,/^set -e/{/^#/s/^# \{0,1\}//p}' "$0"
        exit 0
        ;;
*) die "unknown argument '$1' (try --help)" ;;
esac

vm_require_root
image=$(vm_image_path)

if ((!force)) && [[ -s $image ]]; then
        log "reusing cached image $image"
        touch "$image" # in use: kept by other keys' builds (below)
        echo "$image"
        exit 0
fi

vm_ensure_host_tools
mkdir -p "$VM_CACHE"

# One builder at a time per cache; whoever waited re-checks the cache first.
exec {lock}>"$VM_CACHE/.lock"
flock "$lock"
if ((!force)) && [[ -s $image ]]; then
        log "reusing image $image (built by a concurrent run)"
        echo "$image"
        exit 0
fi

# Removes a build directory. A SIGKILLed mmdebstrap leaves /proc, /sys,
# /dev/pts and /dev/shm mounted inside its chroot, and a plain rm -rf would
# descend into them (into the host's /dev/shm!): unmount first, deepest
# first, and never cross into another file system.
remove_build_dir() {
        local mnt
        awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
                while read -r mnt; do umount -l "$mnt" || true; done
        rm -rf --one-file-system "$1"
}

# We hold the lock, so any leftover temp dir is from a build that was killed.
for old in "$VM_CACHE"/.build-*; do
        [[ -e $old ]] || continue
        log "removing $old, left by an interrupted build"
        remove_build_dir "$old"
done
tmp=$(mktemp -d "$VM_CACHE/.build-XXXXXX")
chmod 755 "$tmp" # apt downloads as _apt, which must reach its lists dir
trap 'remove_build_dir "$tmp"' EXIT

pkgs=$(IFS=,; echo "${VM_PACKAGES[*]}")
log "building $VM_SUITE guest root from $VM_MIRROR (minbase + $pkgs)"
start=$SECONDS
# Docs, man pages and translations are useless in the guest and only make
# every mke2fs of the root slower.
TMPDIR=$tmp mmdebstrap \
        --mode=root \
        --variant=minbase \
        --components=main \
        --include="$pkgs" \
        --aptopt='Acquire::Retries "3"' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        "$VM_SUITE" "$tmp/rootfs.tar" "$VM_MIRROR"

# Sanity: a root without a kernel or systemd would only fail later, obscurely.
listing=$(tar -tf "$tmp/rootfs.tar")
grep -Eq '^\./boot/vmlinuz-' <<<"$listing" || die "no kernel in the built root"
grep -Eq '^\./boot/initrd\.img-' <<<"$listing" || die "no initrd in the built root"
grep -Eq '^\./(usr/)?lib/systemd/systemd$' <<<"$listing" || die "no systemd in the built root"

sync -f "$tmp/rootfs.tar"
mv -f "$tmp/rootfs.tar" "$image"

# Drop the images of other keys nobody used for a day: each one is several
# hundred MB, but branches with different package lists share this cache,
# and deleting an image another branch uses at once only makes it rebuild.
for old in "$VM_CACHE"/rootfs-*.tar; do
        [[ $old == "$image" ]] || [[ -z $(find "$old" -maxdepth 0 -mmin +1440) ]] || rm -f "$old"
done
log "built $image ($(du -h "$image" | cut -f1)) in $((SECONDS - start)) s"
echo "$image"
