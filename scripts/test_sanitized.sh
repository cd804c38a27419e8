#!/usr/bin/env bash
# The test suite built with AddressSanitizer + UndefinedBehaviorSanitizer, in ./build-asan
# (configured once, then built incrementally). Run by scripts/test.sh after the normal
# suite; runs alone as `bash scripts/test_sanitized.sh` (extra arguments go to meson test,
# e.g. `--suite limits`). What runs, what is left out and why: tests/SANITIZERS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=build-asan
# The MPI suite (dist) is left out of CI's sanitized run by default (tests/SANITIZERS.md:
# its compile and mpirun time); RECALIGN_SANITIZED_MPI=enabled includes it.
mpi=${RECALIGN_SANITIZED_MPI:-disabled}
if [ ! -f "$dir/build.ninja" ]; then
  # -fno-sanitize-recover: a UBSan finding aborts the program, so the test fails (by default
  # UBSan prints and carries on). b_lundef=false: the sanitizer runtimes resolve at load time.
  # python disabled: see tests/SANITIZERS.md (the extension would need libasan preloaded
  # into the interpreter). examples are not tests. mpi: see above. -g1 (after the buildtype's
  # -g): line tables only, which is what the sanitizers' stack traces print (function, file,
  # line); a file compiles in 21-49 % less time than with -g (tests/SANITIZERS.md). unity=on:
  # meson compiles a target's sources four to a translation unit, so the headers are parsed
  # and their templates instrumented once per four files (the sanitized build's CPU time
  # down by about a third, tests/SANITIZERS.md); the release build compiles file by file.
  meson setup "$dir" --buildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcpp_args="-fno-sanitize-recover=undefined -g1" -Dcpp_link_args=-fno-sanitize-recover=undefined \
    -Dpython=disabled -Dexamples=false -Dmpi="$mpi" -Dunity=on
elif [ "$(meson introspect "$dir" --buildoptions | /usr/bin/python3 -c \
        'import json,sys; o = {x["name"]: x["value"] for x in json.load(sys.stdin)}; print(o["mpi"], o["unity"])')" != "$mpi on" ]; then
  # A folder configured before (another MPI choice, or before unity builds): the same options
  # as a fresh one, so it is built the way CI builds it.
  meson configure "$dir" -Dmpi="$mpi" -Dunity=on
fi
out=$dir/meson-test-output.txt
rm -f "$out"
# Only what the tests need (meson-test-prereq: not the benchmarks).
ninja -C "$dir" -j "${RECALIGN_SANITIZED_JOBS:-2}" meson-test-prereq

# halt_on_error/abort_on_error: the first report ends the process with a failing status.
# allocator_may_return_null: a too-large allocation throws std::bad_alloc as in a normal
# build (ASan's default is to report it and abort), so refusal paths are tested as shipped.
# quarantine_size_mb=16 (default 256): freed memory is held back 16 MB deep to catch a use
# after free; at 256 MB the quarantine alone broke the tests that bound a run's peak RSS.
# detect_leaks: LeakSanitizer on; OpenMPI's exit-time allocations suppressed by module
# (tests/dist/run_mpi.py adds fast_unwind_on_malloc=0 so that the suppressions can match).
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:allocator_may_return_null=1:quarantine_size_mb=16:check_initialization_order=1:strict_init_order=1${RECALIGN_ASAN_OPTIONS:+:$RECALIGN_ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0"
# Under the sanitizers the programs run 2-5x slower: the suites' own timeouts x 3.
set +e
meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 --timeout-multiplier 3 \
  "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
exit "$status"
