#!/bin/bash
# Frequent Directions' sketch size ℓ against scikit-learn's IncrementalPCA, side by side in one
# run, one BLAS thread per process, on the power-law stream of docs/benchmarks-log.md "Sketches"
# (n = 50,000, k = 100, batches of 1000, α = 1, seed 1) at D = DIM: IncrementalPCA once, then FD
# at each ℓ of ELLS with double shrinks (the CLI's default precision) and single-precision
# shrinks (--precision f32-kernels), then the captured variance of every basis (bench_sketch
# eval; the error is (exact top-k sum − captured) / exact top-k sum, exact top-k from NumPy's
# eigvalsh of the same scatter). Each FD run prints its cpu_seconds; IncrementalPCA prints its own.
# THREADS (default 1) sets the BLAS threads of every process; BASELINE=OTHER_BUILD_DIR runs that
# build's FD right after this build's at each ℓ and precision (before/after in one run; its
# bases are evaluated too, named base_*).
#   [ELLS="200 250 300"] [THREADS=1] [BASELINE=DIR] [CORETYPE=SKYLAKEX] tools/bench/bench_fd_ell.sh BUILD_DIR WORKDIR DIM
# The stream (4 n D bytes: 157 MB at D = 784, 819 MB at 4,096) is written once into WORKDIR.
set -euo pipefail
BUILD=${1:?build dir}; W=${2:?work dir}; D=${3:?dim}; mkdir -p "$W"
export OPENBLAS_NUM_THREADS=${THREADS:-1} OMP_NUM_THREADS=${THREADS:-1}
[ -n "${CORETYPE:-}" ] && export OPENBLAS_CORETYPE=$CORETYPE
B=$BUILD/tools/bench/bench_sketch; DATA=$W/powerlaw_d${D}_n50000.f32
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -f "$DATA" ] || "$B" generate --dim "$D" --rows 50000 --alpha 1.0 --seed 1 --out "$DATA"
C="--data $DATA --dim $D --rows 50000 --rank 100 --batch 1000"
load() { echo "[$(date -u +%T)] load$1: $(cut -d' ' -f1-3 /proc/loadavg)"; }
load " before"
/usr/bin/python3 "$HERE/bench_sketch_peers.py" --method ipca $C --basis-out "$W/ipca.bin"
bases=("$W/ipca.bin")
for l in ${ELLS:-200 250 300}; do
    for f in 0 1; do
        p=$([ $f = 1 ] && echo 32 || echo 64)
        "$B" run --method fd --ell "$l" --float32 $f $C --basis-out "$W/fd${p}_$l.bin"; bases+=("$W/fd${p}_$l.bin")
        if [ -n "${BASELINE:-}" ]; then
            "$BASELINE/tools/bench/bench_sketch" run --method fd --ell "$l" --float32 $f $C --basis-out "$W/base_fd${p}_$l.bin"
            bases+=("$W/base_fd${p}_$l.bin")
        fi
    done
done
load " after the runs"
"$B" eval $C "${bases[@]}" > "$W/eval.json"
/usr/bin/python3 - "$DATA" "$D" "$W/eval.json" <<'PY'
import json, sys
import numpy as np
path, d, ev = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
s, m, n = np.zeros((d, d)), np.zeros(d), 0
with open(path, "rb") as f:  # the scatter, Chan-merged per block of 5000 rows
    while True:
        x = np.fromfile(f, dtype=np.float32, count=5000 * d).astype(np.float64)
        if x.size == 0: break
        x = x.reshape(-1, d); b = x.shape[0]; mb = x.mean(0); xc = x - mb
        delta = mb - m; s += xc.T @ xc + np.outer(delta, delta) * n * b / (n + b); m += delta * b / (n + b); n += b
lam = np.linalg.eigvalsh(s)[::-1]
top = lam[:100].sum()
print(f"exact: total {lam.sum():.3f} (eval {ev['total']:.3f}), top-100 {top:.3f}, lambda_100 {lam[99]:.4f}, lambda_101 {lam[100]:.4f}")
for name, cap in ev["captured"].items():
    print(f"  {name.rsplit('/', 1)[-1]:16s} captured-variance error {(top - cap) / top:.3e}")
PY
load " after the evaluation"
