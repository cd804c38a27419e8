#!/usr/bin/env bash
# MPI speed-up of `recalign align` on the full Fashion-MNIST training set (60000 x 784, .gz):
# one process with 2 OpenBLAS threads against `mpirun -n 2` with 1 OpenBLAS thread per rank,
# alternated ROUNDS times (the machine is shared: compare medians and minima of the same run).
# Usage: tools/bench/bench_mpi.sh BUILD_DIR [ROUNDS [ALIGN OPTIONS...]]
# (e.g. --images train-images-idx3-ubyte --labels train-labels-idx1-ubyte --scale 1/255 for
# uncompressed copies, where a rank's skip is a seek instead of decompressing the prefix)
set -euo pipefail
build=${1:?build dir (configured with -Dmpi=enabled)}
rounds=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
extra=("$@")
exe=$build/tools/recalign/recalign
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
one=() two=() cpu1=() cpu2=()
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$rounds"); do
  OPENBLAS_NUM_THREADS=2 /usr/bin/time -f "%e %U %S" -o "$tmp/t1" "$exe" align --json --quiet "${extra[@]}" > "$tmp/one.json"
  # mpirun waits for its ranks, so its rusage includes theirs.
  /usr/bin/time -f "%e %U %S" -o "$tmp/t2" mpirun --oversubscribe --allow-run-as-root --bind-to none \
    -x OPENBLAS_NUM_THREADS=1 -n 2 "$exe" align --json --quiet "${extra[@]}" > "$tmp/two.json"
  read -r w u s < "$tmp/t1"; one+=("$w"); cpu1+=("$(echo "$u + $s" | bc)")
  read -r w u s < "$tmp/t2"; two+=("$w"); cpu2+=("$(echo "$u + $s" | bc)")
  echo "round $i: 1 process x 2 BLAS threads ${one[-1]} s (cpu ${cpu1[-1]} s), 2 ranks x 1 BLAS thread ${two[-1]} s (cpu ${cpu2[-1]} s)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$tmp/one.json" "$tmp/two.json" "${one[*]}" "${two[*]}" "${cpu1[*]}" "${cpu2[*]}" <<'PY'
import json, sys, statistics as st
import numpy as np
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
one, two, c1, c2 = ([float(x) for x in arg.split()] for arg in sys.argv[3:7])
ev = np.abs(np.array(a["eigenvalues"]) - np.array(b["eigenvalues"])).max() / np.abs(a["eigenvalues"]).max()
cu = np.abs(np.array(a["alignment"][:100]) - np.array(b["alignment"][:100])).max()
print(f"n = {a['n']} vs {b['n']}; eigenvalues agree to {ev:.2g} relative, alignment (k <= 100) to {cu:.2g}")
print(f"1 process, 2 BLAS threads: wall median {st.median(one):.2f} s, min {min(one):.2f} s; cpu median {st.median(c1):.2f} s")
print(f"2 ranks, 1 BLAS thread:    wall median {st.median(two):.2f} s, min {min(two):.2f} s; cpu median {st.median(c2):.2f} s")
print(f"speed-up (wall) median {st.median(one) / st.median(two):.2f}x, min {min(one) / min(two):.2f}x")
PY
