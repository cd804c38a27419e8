#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
out=build/meson-test-output.txt
set +e
meson test -C build --print-errorlogs --num-processes 2 "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
# A plain closing line any CI reader understands, from meson's own summary.
count() { awk -F: -v k="$1" '$1 == k { gsub(/ /, "", $2); s += $2 } END { print s + 0 }' "$out"; }
echo "tests: $(count Ok) passed, $(( $(count Fail) + $(count Timeout) + $(count 'Unexpected Pass') )) failed"
exit "$status"
