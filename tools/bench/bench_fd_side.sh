#!/bin/bash
# Frequent Directions (double and single-precision shrinks) against scikit-learn's
# IncrementalPCA, side by side in one run, one BLAS thread each (under load, OpenBLAS's
# spinning second thread inflates CPU times), on the power-law stream of BENCHMARKS.md
# "Sketches" (D = 784, n = 50,000, k = 100, batches of 1000); then the captured variance of each
# basis, and Nyström with the CLI's default oversampling (p = 10) at 1-4 passes.
#   tools/bench/bench_fd_side.sh BUILD_DIR WORKDIR
set -euo pipefail
BUILD=${1:?build dir}; W=${2:?work dir}; mkdir -p "$W"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
B=$BUILD/tools/bench/bench_sketch; DATA=$W/powerlaw_d784_n50000.f32
HERE=$(cd "$(dirname "$0")" && pwd)
[ -f "$DATA" ] || "$B" generate --dim 784 --rows 50000 --alpha 1.0 --seed 1 --out "$DATA"
C="--data $DATA --dim 784 --rows 50000 --rank 100 --batch 1000"
echo "[$(date -u +%T)] load before: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 "$HERE/bench_sketch_peers.py" --method ipca $C --basis-out "$W/ipca.bin"
"$B" run --method fd --ell 200 $C --basis-out "$W/fd64.bin"
"$B" run --method fd --ell 200 --float32 1 $C --basis-out "$W/fd32.bin"
"$B" run --method fd --ell 220 --float32 1 $C --basis-out "$W/fd32_220.bin"
for q in 1 2 3 4; do "$B" run --method nystrom --passes $q --oversampling 10 --float32 1 $C --basis-out "$W/ny$q.bin"; done
echo "[$(date -u +%T)] load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$B" eval --data "$DATA" --dim 784 --rows 50000 --rank 100 "$W"/ipca.bin "$W"/fd64.bin "$W"/fd32.bin "$W"/fd32_220.bin \
    "$W"/ny1.bin "$W"/ny2.bin "$W"/ny3.bin "$W"/ny4.bin
echo "[$(date -u +%T)] load after: $(cut -d' ' -f1-3 /proc/loadavg)"
