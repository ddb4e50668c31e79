#!/bin/bash
# The built man pages (man/*.scd through scdoc): each one renders with
# neither a groff nor a man warning (what lintian's groff-message sees), says
# its own name and section in .TH, and liboomprotect(3) names in its NAME
# line every function the version script exports, each of which has a .so
# link page to it.
#   test-man.sh BUILD_MAN_DIR SOURCE_DIR
set -euo pipefail
man_dir=${1:?usage: test-man.sh BUILD_MAN_DIR SOURCE_DIR}
src=${2:?usage: test-man.sh BUILD_MAN_DIR SOURCE_DIR}
# shellcheck source=tests/tap.sh
. "$(dirname "$0")/../tap.sh"

pages=()
for scd in "$src"/man/*.scd; do
        page=$(basename "$scd" .scd)
        if [[ "$page" == oomprotect-cuse.8 && ! -e "$man_dir/$page" ]]; then
                echo "ok - $page # SKIP oomprotect-cuse is not built (no libfuse3)"
                continue
        fi
        pages+=("$page")
done

for page in "${pages[@]}"; do
        f=$man_dir/$page
        if [[ ! -s "$f" ]]; then
                not_ok "$page was built"
                continue
        fi
        name=${page%.*} section=${page##*.}
        if head -n 20 "$f" | grep -q "^\.TH \"$name\" \"$section\""; then
                ok "$page: .TH names $name($section)"
        else
                not_ok "$page: .TH names $name($section)"
        fi
        warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 "$f" 2>&1 >/dev/null) || true
        if [[ -z "$warnings" ]]; then
                ok "$page renders without warnings"
        else
                not_ok "$page renders without warnings: $warnings"
        fi
done

# Every exported function: in liboomprotect(3)'s NAME line, and a link page of its own.
name_line=$(sed -n '/^\.SH NAME/,/^\.SH /p' "$man_dir/liboomprotect.3" | tr '\n' ' ')
functions=$(lib_functions "$src")
[[ -n "$functions" ]] || not_ok "liboomprotect.sym lists functions"
for fn in $functions; do
        if grep -qE "(^|[ ,])$fn([ ,]|$)" <<<"$name_line"; then
                ok "liboomprotect(3) NAME names $fn"
        else
                not_ok "liboomprotect(3) NAME names $fn"
        fi
        if [[ "$(cat "$man_dir/$fn.3" 2>/dev/null)" == ".so man3/liboomprotect.3" ]]; then
                ok "$fn.3 is a link to liboomprotect.3"
        else
                not_ok "$fn.3 is a link to liboomprotect.3"
        fi
done

# liboomprotect(3)'s EXAMPLE compiles against the installed header, as written.
example=$(awk '/^# EXAMPLE/ { on = 1; next } on && /^```/ { if (in_block) exit; in_block = 1; next } in_block' \
        "$src/man/liboomprotect.3.scd" | sed 's/\\\\/\\/g')
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null; then
        echo "ok - liboomprotect(3) EXAMPLE compiles # SKIP no C compiler"
elif [[ -n "$example" ]] && "$cc" -std=c11 -Wall -Wextra -Werror -fsyntax-only -I "$src/include" -x c - <<<"$example"; then
        ok "liboomprotect(3) EXAMPLE compiles"
else
        not_ok "liboomprotect(3) EXAMPLE compiles"
fi
tap_exit
