#!/bin/bash
# Frequent Directions (double and single-precision shrinks) against scikit-learn's
# IncrementalPCA, side by side in one run, one BLAS thread each (under load, OpenBLAS's
# spinning second thread inflates CPU times), on the power-law stream of docs/benchmarks-log.md
# "Sketches" (D = 784, n = 50,000, k = 100, batches of 1000); then the captured variance of each
# basis, and Nyström with the CLI's default oversampling (p = 10) at 1-4 passes.
# With BASELINE=OTHER_BUILD_DIR (e.g. a build of main), its FD runs alternate with this build's,
# so old and new code are timed side by side under the same load.
#   [BASELINE=DIR] tools/bench/bench_fd_side.sh BUILD_DIR WORKDIR
# shellcheck source=tools/bench/sketch_side_common.sh
source "$(dirname "$0")/sketch_side_common.sh" "$@"
/usr/bin/python3 "$HERE/bench_sketch_peers.py" --method ipca $C --basis-out "$W/ipca.bin"
fd() {  # fd NAME ARGS...: this build, then the baseline's (if any) with the same arguments
    local name=$1; shift
    "$B" run --method fd "$@" $C --basis-out "$W/$name.bin"
    if [ -n "${BASELINE:-}" ]; then echo -n "baseline: "; "$BASELINE/tools/bench/bench_sketch" run --method fd "$@" $C; fi
}
fd fd64 --ell 200
fd fd32 --ell 200 --float32 1
fd fd32_205 --ell 205 --float32 1
fd fd32_220 --ell 220 --float32 1
for q in 1 2 3 4; do "$B" run --method nystrom --passes $q --oversampling 10 --float32 1 $C --basis-out "$W/ny$q.bin"; done
load ""
"$B" eval --data "$DATA" --dim 784 --rows 50000 --rank 100 "$W"/ipca.bin "$W"/fd64.bin "$W"/fd32.bin "$W"/fd32_205.bin "$W"/fd32_220.bin \
    "$W"/ny1.bin "$W"/ny2.bin "$W"/ny3.bin "$W"/ny4.bin
load " after"
