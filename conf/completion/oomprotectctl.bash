# SPDX-License-Identifier: GPL-2.0-or-later
# bash completion for oomprotectctl(1): verbs, their options, PIDs (protected
# ones where only those make sense), unit names (protected ones for
# unprotect and is-protected).

_oomprotectctl_protected_pids() {
        oomprotectctl status --json 2>/dev/null | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$'
}

_oomprotectctl_pids() {
        local p
        for p in /proc/[0-9]*; do
                printf '%s\n' "${p#/proc/}"
        done
}

_oomprotectctl_protected_units() {
        oomprotectctl status --json 2>/dev/null | grep -o '"unit": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'
}

_oomprotectctl_units() {
        systemctl list-units --no-legend --plain --type=service,scope 2>/dev/null | awk '{ print $1 }'
}

_oomprotectctl() {
        local cur prev verb="" i
        local verbs="status protect unprotect is-protected run drop-in doctor rules help"
        local protect_opts="--min --low --adj --tree --oom-group --tag --in-place --move --help"
        local run_opts="--min --low --adj --oom-group --tag --in-place --move --help"
        COMPREPLY=()
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}

        for ((i = 1; i < COMP_CWORD; i++)); do
                case ${COMP_WORDS[i]} in
                -*) ;;
                *)
                        verb=${COMP_WORDS[i]}
                        break
                        ;;
                esac
        done
        if [[ -z $verb ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$verbs --help --version" -- "$cur")
                return
        fi
        case $prev in
        --min | --low | --adj | --tag) return ;; # a value: nothing to offer
        -d | --rules-directory | -c | --config)
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                return
                ;;
        esac
        case $verb in
        protect)
                if [[ $cur == -* ]]; then
                        mapfile -t COMPREPLY < <(compgen -W "$protect_opts" -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -W "$(_oomprotectctl_pids) $(_oomprotectctl_units)" -- "$cur")
                fi
                ;;
        unprotect | is-protected)
                if [[ $cur == -* ]]; then
                        mapfile -t COMPREPLY < <(compgen -W "--all --tag --quiet --help" -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -W \
                                "$(_oomprotectctl_protected_pids) $(_oomprotectctl_protected_units)" -- "$cur")
                fi
                ;;
        status)
                if [[ $cur == -* ]]; then
                        mapfile -t COMPREPLY < <(compgen -W "--json --json=pretty --json=short --help" -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -W \
                                "$(_oomprotectctl_protected_pids) $(_oomprotectctl_protected_units)" -- "$cur")
                fi
                ;;
        drop-in)
                if [[ $cur == -* ]]; then
                        mapfile -t COMPREPLY < <(compgen -W "--min --adj --slice --remove --now --help" -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -W "$(_oomprotectctl_units)" -- "$cur")
                fi
                ;;
        doctor)
                if [[ $cur == -* ]]; then
                        mapfile -t COMPREPLY < <(compgen -W "--json --json=pretty --json=short --help" -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -W "$(_oomprotectctl_pids) $(_oomprotectctl_units)" -- "$cur")
                fi
                ;;
        run)
                if [[ $cur == -* ]]; then
                        mapfile -t COMPREPLY < <(compgen -W "$run_opts --" -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -c -- "$cur")
                fi
                ;;
        rules)
                if [[ $cur == -* ]]; then
                        mapfile -t COMPREPLY < <(compgen -W "--rules-directory --config --json --json=pretty --json=short --help" -- "$cur")
                elif [[ $prev == test ]]; then
                        mapfile -t COMPREPLY < <(compgen -W "$(_oomprotectctl_pids)" -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -W "test" -- "$cur")
                fi
                ;;
        help)
                mapfile -t COMPREPLY < <(compgen -W "$verbs" -- "$cur")
                ;;
        esac
}

complete -F _oomprotectctl oomprotectctl
