#!/bin/bash
# shellcheck disable=SC2317 # the helpers below are called through check()
# The shell completions of oomprotectctl: both parse (bash -n, zsh -n where zsh
# is installed), and bash completes a verb, an option and a PID as a person
# pressing Tab would (COMP_WORDS/COMP_CWORD, then the completion function).
set -euo pipefail
src=${OOMPROTECT_SRCDIR:?}/conf/completion
fails=0
ok() { echo "ok - $*"; }
not_ok() {
        echo "not ok - $*"
        fails=$((fails + 1))
}

# check WHAT CMD...: ok when CMD succeeds.
check() {
        local what=$1
        shift
        if "$@"; then ok "$what"; else not_ok "$what"; fi
}

check "bash -n oomprotectctl.bash" bash -n "$src/oomprotectctl.bash"
if command -v zsh >/dev/null; then
        check "zsh -n _oomprotectctl" zsh -n "$src/_oomprotectctl"
else
        echo "ok - zsh -n _oomprotectctl # SKIP zsh is not installed"
fi

# shellcheck source=/dev/null
. "$src/oomprotectctl.bash"
# complete_words WORD...: what Tab offers after the words (the last one being completed).
complete_words() {
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=()
        _oomprotectctl
        printf '%s\n' "${COMPREPLY[@]}"
}
offers() { # EXPECTED WORD...: Tab after WORDs offers exactly EXPECTED
        local want=$1
        shift
        [[ $(complete_words "$@") == "$want" ]]
}
offers_among() { # EXPECTED WORD...: EXPECTED is among what Tab offers
        local want=$1
        shift
        complete_words "$@" | grep -qx -- "$want"
}
check "'pro' completes to protect" offers protect oomprotectctl pro
check "an empty word offers every verb (doctor among them)" offers_among doctor oomprotectctl ""
check "protect --in completes to --in-place" offers --in-place oomprotectctl protect --in
check "protect completes a running PID ($$)" offers_among "$$" oomprotectctl protect "$$"
check "nothing is offered for the value of --min" offers "" oomprotectctl protect --min ""
check "help sta completes to status" offers status oomprotectctl help sta
check "'dro' completes to drop-in" offers drop-in oomprotectctl dro
check "drop-in --sl completes to --slice" offers --slice oomprotectctl drop-in nginx.service --sl
check "nothing is offered for the value of drop-in --adj" offers "" oomprotectctl drop-in x.service --adj ""
check "rules t completes to test" offers test oomprotectctl rules t
check "rules test completes a running PID ($$)" offers_among "$$" oomprotectctl rules test "$$"

echo "1..13"
exit $((fails > 0))
