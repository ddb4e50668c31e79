#!/usr/bin/env bash
# The built packages' man pages (issue 15): every page where it belongs,
# gzip-compressed once at maximum compression (no .gz.gz, no roff left
# uncompressed), liboomprotect(3)'s per-function pages as symlinks to it in
# liboomprotect-dev, and every page's source in man/ shipped.
#   tests/package/check-contents.sh DEBDIR SOURCE_DIR
# Exit 0 when all hold, 1 otherwise, 77 when no package was built.
set -euo pipefail
debs=${1:?usage: check-contents.sh DEBDIR SOURCE_DIR}
src=${2:?usage: check-contents.sh DEBDIR SOURCE_DIR}
# shellcheck source=tests/tap.sh
. "$(dirname "$0")/../tap.sh"
deb_of() { # PACKAGE: its .deb in DEBDIR
        compgen -G "$debs/$1_*.deb" | head -n 1
}
main=$(deb_of oomprotect) dev=$(deb_of liboomprotect-dev)
[[ -n $main && -n $dev ]] || {
        echo "check-contents: no oomprotect and liboomprotect-dev .deb in $debs: build the package first" >&2
        exit 77
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$main" "$tmp/main"
dpkg-deb -x "$dev" "$tmp/dev"

# Where each source page goes: oomprotect, but section 3 in liboomprotect-dev.
for scd in "$src"/man/*.scd; do
        page=$(basename "$scd" .scd) section=${page##*.}
        pkg=oomprotect
        [[ $section == 3 ]] && pkg=liboomprotect-dev
        root=$tmp/main
        [[ $pkg == liboomprotect-dev ]] && root=$tmp/dev
        f=$root/usr/share/man/man$section/$page.gz
        if [[ ! -f $f || -L $f ]]; then
                not_ok "$pkg ships usr/share/man/man$section/$page.gz"
                continue
        fi
        # gzip's header: the magic 1f 8b, and XFL (byte 8) 02 for maximum compression.
        if [[ $(od -An -tx1 -N2 "$f" | tr -d ' \n') == 1f8b && $(od -An -tx1 -j8 -N1 "$f" | tr -d ' \n') == 02 ]]; then
                ok "$pkg: $page.gz is gzip at maximum compression"
        else
                not_ok "$pkg: $page.gz is gzip at maximum compression"
        fi
        if zcat "$f" | head -c 2 | od -An -tx1 | tr -d ' ' | grep -q '^1f8b'; then
                not_ok "$page.gz is compressed once"
        else
                ok "$page.gz is compressed once"
        fi
done

# No page uncompressed, none twice.
stray=$(find "$tmp/main/usr/share/man" "$tmp/dev/usr/share/man" \( -name '*.gz.gz' -o ! -name '*.gz' \) ! -type d)
if [[ -z $stray ]]; then ok "no man page uncompressed or compressed twice"; else not_ok "stray: $stray"; fi

# Each exported function: a symlink to liboomprotect.3.gz.
for fn in $(lib_functions "$src"); do
        link=$tmp/dev/usr/share/man/man3/$fn.3.gz
        if [[ -L $link && $(readlink "$link") == liboomprotect.3.gz ]]; then
                ok "$fn.3.gz -> liboomprotect.3.gz"
        else
                not_ok "$fn.3.gz -> liboomprotect.3.gz"
        fi
done
tap_exit
