#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang++ -fsanitize=fuzzer,address,undefined (the
# library sources are compiled into each binary with the same flags, so ASan/UBSan see
# them) and runs each for a while. Needs clang-14 and libclang-rt-14-dev (README.md).
#
#   tests/fuzz/run_fuzzers.sh [seconds per harness] [harness...]
#
# Run it with a plain nice level: the harnesses are started with `nice -n $NICE` already.
# Environment: OUT (build and work directory, default build-fuzz-clang), JOBS (harnesses run
# at once, default 2), CXX (default clang++-14), NICE (default 10).
# Inputs found to crash go to $OUT/artifacts/<harness>/; new corpus entries to
# $OUT/corpus/<harness>/ (the committed corpus in tests/fuzz/corpus/ is only read).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-240}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(npy idx checkpoint noise_spec image cifar list)
out=${OUT:-$root/build-fuzz-clang}
jobs=${JOBS:-2}
cxx=${CXX:-clang++-14}
nice_level=${NICE:-10}
mkdir -p "$out/obj"

flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -I"$root/include" -I"$root/lib" $(pkg-config --cflags xtensor openblas 2>/dev/null || true))
libs=($(pkg-config --libs openblas lapacke zlib libjpeg libpng) -lpthread)

# The library (minus the MPI part), compiled once with the sanitizers, no fuzzer main.
sources=$(cd "$root" && find lib -name '*.cpp' -not -path 'lib/dist/*' | sort)
objs=()
pids=()
for s in $sources; do
    o="$out/obj/$(echo "$s" | tr / _).o"
    objs+=("$o")
    if [ ! -f "$o" ] || [ "$root/$s" -nt "$o" ] || [ -n "$(find "$root/include" "$root/lib" -newer "$o" -name '*.hpp' -print -quit)" ]; then
        nice -n "$nice_level" "$cxx" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$root/$s" -o "$o" &
        pids+=($!)
        if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
    fi
done
for p in "${pids[@]}"; do wait "$p"; done

for h in "${harnesses[@]}"; do
    nice -n "$nice_level" "$cxx" "${flags[@]}" -fsanitize=fuzzer "$here/fuzz_$h.cpp" "${objs[@]}" "${libs[@]}" -o "$out/fuzz_$h"
done

[ -n "${BUILD_ONLY:-}" ] && exit 0

run() {
    local h=$1
    local seeds="$here/corpus/$h"
    mkdir -p "$out/corpus/$h" "$out/artifacts/$h"
    local dict=()
    [ -f "$here/dict/$h.dict" ] && dict=(-dict="$here/dict/$h.dict")
    local dirs=("$out/corpus/$h" "$seeds")
    [ -d "$seeds/regression" ] && dirs+=("$seeds/regression")
    # New corpus entries go to the first directory; the committed seeds and regressions are read only.
    # CPU time (user + system) of the run goes to $out/fuzz_<harness>.cpu.
    nice -n "$nice_level" /usr/bin/time -f "%U %S" -o "$out/fuzz_$h.cpu" "$out/fuzz_$h" "${dirs[@]}" "${dict[@]}" \
        -max_total_time="$seconds" -malloc_limit_mb=512 -rss_limit_mb=1024 -timeout=10 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$h/" >"$out/fuzz_$h.log" 2>&1 || true
    echo "$h: $(awk 'END {printf "%.0f s CPU", $1 + $2}' "$out/fuzz_$h.cpu"), $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/fuzz_$h.log" | awk '{print $2}') runs, artifacts: $(ls "$out/artifacts/$h" | wc -l)"
}

running=0
for h in "${harnesses[@]}"; do
    run "$h" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
