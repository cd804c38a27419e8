# shellcheck shell=bash disable=SC2034  # sets variables for the script that sources it
# The common start of the side-by-side sketch benchmarks (bench_fd_side.sh, bench_krylov_side.sh),
# sourced by both: the power-law stream of docs/benchmarks-log.md "Sketches" (D = 784, n = 50,000,
# k = 100, batches of 1000), written once into WORKDIR and shared; one BLAS thread per process
# (under load, OpenBLAS's spinning second thread inflates CPU times).
#   source "$(dirname "$0")/sketch_side_common.sh" BUILD_DIR WORKDIR
# Sets BUILD, W (the work dir), B (bench_sketch), DATA, HERE (tools/bench) and C (the arguments
# every run shares); load LABEL prints the time and the load average.
set -euo pipefail
BUILD=${1:?build dir}; W=${2:?work dir}; mkdir -p "$W"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
B=$BUILD/tools/bench/bench_sketch; DATA=$W/powerlaw_d784_n50000.f32
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -f "$DATA" ] || "$B" generate --dim 784 --rows 50000 --alpha 1.0 --seed 1 --out "$DATA"
C="--data $DATA --dim 784 --rows 50000 --rank 100 --batch 1000"
load() { echo "[$(date -u +%T)] load$1: $(cut -d' ' -f1-3 /proc/loadavg)"; }
load " before"
