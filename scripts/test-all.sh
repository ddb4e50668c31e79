#!/usr/bin/env bash
# The README's test command: installs what is needed, builds with warnings as
# errors and ASan+UBSan, and runs every test tier (unit, integration, VM).
# Environment: BUILD_DIR (default build-test), OOMPROTECT_VM_TESTS=0 to skip the VM tier.
set -euo pipefail
cd "$(dirname "$0")/.."

vm=${OOMPROTECT_VM_TESTS:-1}
if [[ "$vm" == 1 ]]; then scripts/install-deps.sh --vm; else scripts/install-deps.sh; fi

build=${BUILD_DIR:-build-test}
summaries=$(mktemp)
trap 'rm -f "$summaries"' EXIT

# run_ctest ARGS...: ctest, keeping its "N% tests passed, F tests failed out of T" line for the total.
run_ctest() {
        local rc=0
        ctest "$@" 2>&1 | tee >(grep -E 'tests passed, [0-9]+ tests failed out of' >>"$summaries") || rc=$?
        return "$rc"
}

# The VM tier installs the Debian package (built from a fresh copy of the tree, no sanitizers) into a guest.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DOOMPROTECT_WERROR=ON -DOOMPROTECT_SANITIZE=ON \
        -DOOMPROTECT_VM_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"
rc=0
# The Debian package is built once per run: by the VM tier (which installs it) when that runs.
skip_package=()
[[ "$vm" == 1 ]] && skip_package=(-LE package)
run_ctest --test-dir "$build" --output-on-failure -j2 --timeout 600 "${skip_package[@]}" || rc=$?

if [[ "$vm" == 1 && $rc -eq 0 ]]; then
        cmake -S . -B "$build-vm" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOOMPROTECT_WERROR=ON \
                -DCMAKE_INSTALL_PREFIX=/usr -DOOMPROTECT_VM_TESTS=ON >/dev/null
        # The tier installs the package it builds (package.deb); only the guest's test programs are compiled here.
        cmake --build "$build-vm" -j"$(nproc)" --target vm-guest-bin
        run_ctest --test-dir "$build-vm" --output-on-failure -L 'vm|package' --timeout 1800 || rc=$?
        results="$build-vm/tests/vm/results/results.txt"
        if [[ -f $results ]]; then
                echo "== what the guest reported"
                grep -E '^RESULT|^DETAIL 40-oom-real trial' "$results" || true
        fi
fi

sleep 0.1 # let the tee's grep finish writing
total=0 failed=0
while read -r line; do
        [[ $line =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]] || continue
        failed=$((failed + BASH_REMATCH[1]))
        total=$((total + BASH_REMATCH[2]))
done <"$summaries"
echo
echo "oomprotect: $((total - failed)) passed, $failed failed"
exit "$rc"
