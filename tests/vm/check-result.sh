#!/bin/bash
# One ctest test per scenario: reports what the guest said about scenario
# NAME in RESULTS_DIR/results.txt (written by run-vm.sh).
#
#   tests/vm/check-result.sh RESULTS_DIR NAME
#
# Exit 0 = PASS, 77 = SKIP, 1 = FAIL, also when the scenario has no RESULT
# line (it did not run, or the guest stopped during it).
set -euo pipefail

(($# == 2)) || {
        echo "usage: $0 RESULTS_DIR NAME" >&2
        exit 2
}
results=$1
name=$2
file=$results/results.txt

if [[ -f $results/skipped.txt ]]; then
        echo "SKIP: the VM tier did not run on this host: $(cat "$results/skipped.txt")"
        exit 77
fi
if [[ ! -f $file ]]; then
        echo "FAIL: no $file: the VM run did not happen or failed (see the vm.run test)"
        exit 1
fi

# The scenario's own output, as the guest streamed it.
grep -F "DETAIL $name " "$file" | cut -d' ' -f3- || true

result=$(grep -F "RESULT $name " "$file" | tail -n1 || true)
if [[ -z $result ]]; then
        if grep -qF "START $name" "$file"; then
                echo "FAIL: $name started in the guest but never reported a result (guest stopped or hung?)"
        else
                echo "FAIL: $name has no result in $file (not run: filtered out, or added after the run?)"
        fi
        exit 1
fi
read -r _ _ verdict reason <<<"$result"
echo "$verdict: ${reason:-}"
case $verdict in
PASS) exit 0 ;;
SKIP) exit 77 ;;
*) exit 1 ;;
esac
