#!/bin/bash
# Block Krylov Nyström (issue 17 item 3) side by side in one run, one BLAS thread each, on the
# power-law stream of docs/benchmarks-log.md "Sketches" (D = 784, n = 50,000, k = 100, batches of 1000,
# the file bench_fd_side.sh writes): scikit-learn's IncrementalPCA (1 and 2 epochs of
# partial_fit), randomized_svd in memory (float32, n_iter 4, 10 oversamples), FD l = 220;
# Nyström p = 10 with subspace iteration (the old multi-pass default) and with block Krylov at
# 1-4 passes; the CLI's new defaults (1 pass: p = 10; Q >= 2 passes: block Krylov over Q blocks,
# p = k); one pass at wider sketches. Then the captured-variance error of every basis.
#   tools/bench/bench_krylov_side.sh BUILD_DIR WORKDIR
# shellcheck source=tools/bench/sketch_side_common.sh
source "$(dirname "$0")/sketch_side_common.sh" "$@"
/usr/bin/python3 "$HERE/bench_sketch_peers.py" --method ipca $C --basis-out "$W/ipca1.bin"
/usr/bin/python3 "$HERE/bench_sketch_peers.py" --method ipca --epochs 2 $C --basis-out "$W/ipca2.bin"
/usr/bin/python3 "$HERE/bench_sketch_peers.py" --method rsvd $C --basis-out "$W/rsvd.bin"
"$B" run --method fd --ell 220 --float32 1 $C --basis-out "$W/fd220.bin"
bases="$W/ipca1.bin $W/ipca2.bin $W/rsvd.bin $W/fd220.bin"
for q in 1 2 3 4; do
    "$B" run --method nystrom --passes $q --oversampling 10 --float32 1 $C --basis-out "$W/sub$q.bin"
    bases="$bases $W/sub$q.bin"
done
for q in 2 3 4; do
    "$B" run --method nystrom --passes $q --blocks $q --oversampling 10 --float32 1 $C --basis-out "$W/kry$q.bin"
    bases="$bases $W/kry$q.bin"
done
for q in 2 3 4; do  # the CLI's default for Q >= 2 passes (at Q = 4 the basis restarts: 4 x 200 > 784)
    "$B" run --method nystrom --passes $q --blocks $q --oversampling 100 --float32 1 $C --basis-out "$W/def$q.bin"
    bases="$bases $W/def$q.bin"
done
for p in 100 300 500; do  # one pass, wider
    "$B" run --method nystrom --passes 1 --oversampling $p --float32 1 $C --basis-out "$W/one$p.bin"
    bases="$bases $W/one$p.bin"
done
load ""
# shellcheck disable=SC2086
"$B" eval --data "$DATA" --dim 784 --rows 50000 --rank 100 $bases
load " after"
