#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS (default 60) each, with ASan+UBSan,
# starting from the checked-in corpus. New crashes land in build-fuzz/.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
scripts/install-deps.sh
command -v clang >/dev/null || apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
CC=clang cmake -S . -B build-fuzz -DOOMPROTECT_FUZZ=ON -DOOMPROTECT_SANITIZE=ON -DOOMPROTECT_VM_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz-ctl fuzz-state fuzz-config fuzz-size fuzz-status fuzz-proc fuzz-oci-state fuzz-cgroup fuzz-doctor fuzz-rules
for t in ctl state config size status proc oci-state cgroup doctor rules; do
        work=$(mktemp -d)
        cp tests/fuzz/corpus/$t/* "$work"/
        echo "== fuzz-$t for ${seconds}s"
        (cd build-fuzz && ./tests/fuzz/fuzz-$t -max_total_time="$seconds" -max_len=8192 "$work" 2>&1 | tail -3)
        rm -rf "$work"
done
