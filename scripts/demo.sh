#!/usr/bin/env bash
# The README's first command: installs what is needed, builds, installs into
# a scratch prefix and shows oomprotectd at work.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOOMPROTECT_VM_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "\$ oomprotectd --version"
build/oomprotectd --version
echo "\$ oomprotectd --help"
build/oomprotectd --help
