#!/usr/bin/env bash
# The README's test command: installs what is needed, builds with warnings as
# errors and ASan+UBSan, and runs every test tier (unit, integration, VM).
# Environment: BUILD_DIR (default build-test), OOMPROTECT_VM_TESTS=0 to skip the VM tier.
set -euo pipefail
cd "$(dirname "$0")/.."

vm=${OOMPROTECT_VM_TESTS:-1}
if [[ "$vm" == 1 ]]; then scripts/install-deps.sh --vm; else scripts/install-deps.sh; fi

build=${BUILD_DIR:-build-test}
# The VM tier installs the binaries into a guest, where the sanitizer runtimes are not: it gets its own plain build.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DOOMPROTECT_WERROR=ON -DOOMPROTECT_SANITIZE=ON \
        -DOOMPROTECT_VM_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600

if [[ "$vm" == 1 ]]; then
        cmake -S . -B "$build-vm" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOOMPROTECT_WERROR=ON \
                -DCMAKE_INSTALL_PREFIX=/usr -DOOMPROTECT_VM_TESTS=ON >/dev/null
        cmake --build "$build-vm" -j"$(nproc)"
        rc=0
        ctest --test-dir "$build-vm" --output-on-failure -L vm --timeout 1800 || rc=$?
        results="$build-vm/tests/vm/results/results.txt"
        if [[ -f $results ]]; then
                echo "== what the guest reported"
                grep -E '^RESULT|^DETAIL 40-oom-real trial' "$results" || true
        fi
        exit "$rc"
fi
