#!/usr/bin/env bash
# The benchmarks (bench/, DESIGN.md section 6), one command, as root on Debian 12:
# installs what they need (the build dependencies, earlyoom, valgrind, strace),
# makes an optimized build in BUILD_DIR (default build-bench) and runs
# bench/run.sh, which prints every figure beside its baseline measured in the
# same run. Arguments go to bench/run.sh: --quick (about a minute), --smoke,
# --no-callgrind, --out DIR. BENCHMARKS.md explains the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
bench_packages=(earlyoom valgrind strace)
missing=()
for p in "${bench_packages[@]}"; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true) == installed ]] || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
        echo "bench: installing ${missing[*]}"
        # earlyoom's package would start its service where an init system runs: it is run here as a child instead.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        if [[ " ${missing[*]} " == *" earlyoom "* ]] && [[ -d /run/systemd/system ]]; then
                echo "bench: earlyoom is only a baseline here: disabling the service its package started"
                systemctl disable --now earlyoom.service >/dev/null 2>&1 || true
        fi
fi

build=${BUILD_DIR:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOOMPROTECT_VM_TESTS=OFF >/dev/null
cmake --build "$build" -j2 >/dev/null
OOMPROTECT_BINDIR=$PWD/$build exec bench/run.sh "$@"
