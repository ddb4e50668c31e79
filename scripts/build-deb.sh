#!/usr/bin/env bash
# Builds the Debian package as a user would: dpkg-buildpackage -us -uc -b on a
# fresh copy of this tree (the files git tracks or would track, as they are in
# the work tree now: no build directory or other leftover gets in); with
# --lintian, checks a package built so with lintian.
#
#   scripts/build-deb.sh OUTDIR             build into OUTDIR
#   scripts/build-deb.sh --lintian OUTDIR   lintian on OUTDIR's .changes
#
# OUTDIR receives oomprotect_*.deb (and -dbgsym), the .changes and .buildinfo,
# build.log; --lintian writes lintian.txt (its output, info tags included).
# Exit 0 when the package was built / lintian reported no error and no
# warning (no E: or W: line, and lintian itself succeeded), 1 otherwise,
# 77 (skip) when the packaging tools are missing here.
set -euo pipefail
cd "$(dirname "$0")/.."

lintian_only=0
if [[ ${1:-} == --lintian ]]; then
        lintian_only=1
        shift
fi
(($# == 1)) || {
        echo "usage: $0 [--lintian] OUTDIR" >&2
        exit 2
}
for tool in dpkg-buildpackage dh lintian git; do
        command -v "$tool" >/dev/null || {
                echo "build-deb: $tool is missing (scripts/install-deps.sh installs it); skipping" >&2
                exit 77
        }
done

# run_lintian OUTDIR
run_lintian() {
        local changes rc=0
        changes=$(ls "$1"/oomprotect_*.changes) || {
                echo "build-deb: no .changes in $1: build the package first" >&2
                return 1
        }
        # --fail-on: lintian's own verdict as well as the E:/W: lines (a lintian that
        # checked nothing, say for a missing file named in .changes, fails too).
        lintian --info --display-info --pedantic --tag-display-limit 0 --fail-on error,warning \
                "$changes" >"$1/lintian.txt" 2>&1 || rc=$?
        sed 's/^/  /' "$1/lintian.txt"
        if ((rc != 0)) || grep -Eq '^[EW]: ' "$1/lintian.txt"; then
                echo "build-deb: lintian reported errors or warnings, or failed (exit $rc)" >&2
                return 1
        fi
        echo "build-deb: lintian: no error, no warning" \
                "($(grep -Ec '^[IPX]: ' "$1/lintian.txt" || true) info/pedantic tags; overridden: debian/*.lintian-overrides)"
}

if ((lintian_only)); then
        run_lintian "$1"
        exit
fi

out=$(mkdir -p "$1" && cd "$1" && pwd)
rm -rf "$out/src" "$out"/*.deb "$out"/*.ddeb "$out"/*.changes "$out"/*.buildinfo "$out/lintian.txt" "$out/build.log"
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
upstream=${version%-*} # a native package: the whole version
src=$out/src/oomprotect-$upstream
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf - | tar -C "$src" -xf -

start=$SECONDS
echo "build-deb: dpkg-buildpackage -us -uc -b in $src (log: $out/build.log)"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$out/build.log" 2>&1; then
        tail -n 40 "$out/build.log" >&2
        echo "build-deb: dpkg-buildpackage failed" >&2
        exit 1
fi
shopt -s nullglob
mv "$out"/src/*.deb "$out"/src/*.ddeb "$out"/src/*.changes "$out"/src/*.buildinfo "$out/"
rm -rf "$out/src"
echo "build-deb: built" "$(cd "$out" && echo ./*.deb)" "in $((SECONDS - start)) s"

