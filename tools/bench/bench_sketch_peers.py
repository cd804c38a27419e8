#!/usr/bin/python3
"""Peers of bench_sketch: scikit-learn's IncrementalPCA (streaming, fed the same float32 file
in the same batches) and randomized_svd (in memory: the whole centered matrix is loaded).

Run with Debian's interpreter (python3-sklearn, python3-numpy):

    /usr/bin/python3 tools/bench/bench_sketch_peers.py --method ipca --data FILE --dim D --rows N \
        [--fit-rows M] [--batch 1000] [--rank 100] [--basis-out FILE]
    /usr/bin/python3 tools/bench/bench_sketch_peers.py --method rsvd --data FILE --dim D --rows N \
        [--n-iter 4] [--oversampling 10] [--basis-out FILE]

Prints one JSON line (wall seconds, peak RSS, state bytes, top eigenvalue sum); writes the
D x K basis as float64 row-major for `bench_sketch eval`. One method per process, so that
the peak RSS is the method's own. --fit-rows feeds IncrementalPCA only the first M rows (for
D where all N rows take too long); the basis is then still judged on all N rows.
"""
import argparse
import json
import pickle
import resource
import time

import numpy as np
from sklearn.decomposition import IncrementalPCA
from sklearn.utils.extmath import randomized_svd


def batches(path, d, n, batch):
    with open(path, "rb") as f:
        for r0 in range(0, n, batch):
            rows = min(batch, n - r0)
            x = np.fromfile(f, dtype=np.float32, count=rows * d)
            if x.size != rows * d:
                raise RuntimeError(f"{path}: short read at row {r0}")
            yield x.reshape(rows, d)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", choices=["ipca", "rsvd"], required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--fit-rows", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=1, help="ipca: reads of the data, partial_fit on every batch")
    ap.add_argument("--rank", type=int, default=100)
    ap.add_argument("--n-iter", type=int, default=4)
    ap.add_argument("--oversampling", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--basis-out", default="")
    a = ap.parse_args()
    d, n, k = a.dim, a.rows, a.rank
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    if a.method == "ipca":
        fit_rows = a.fit_rows or n
        model = IncrementalPCA(n_components=k, batch_size=a.batch)
        for _ in range(a.epochs):
            for x in batches(a.data, d, fit_rows, a.batch):
                model.partial_fit(x)
        basis = model.components_.T
        eig = model.singular_values_ ** 2
        state = len(pickle.dumps(model))
        extra = {"fit_rows": fit_rows, "batch": a.batch, "epochs": a.epochs}
    else:
        x = np.fromfile(a.data, dtype=np.float32, count=n * d).reshape(n, d)
        x -= x.mean(axis=0, dtype=np.float64).astype(np.float32)
        u, s, vt = randomized_svd(x, n_components=k, n_oversamples=a.oversampling, n_iter=a.n_iter,
                                  random_state=a.seed)
        basis = vt.T.astype(np.float64)
        eig = s.astype(np.float64) ** 2
        state = x.nbytes  # the method needs the whole matrix in memory
        extra = {"n_iter": a.n_iter, "oversampling": a.oversampling, "dtype": "float32"}
    secs = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    if a.basis_out:
        np.ascontiguousarray(basis, dtype=np.float64).tofile(a.basis_out)
    out = {"method": a.method, "dim": d, "rows": n, "rank": k, "seconds": round(secs, 3), "cpu_seconds": round(cpu, 3),
           "peak_rss_mb": round(peak_rss_mb(), 1), "rss_after_imports_mb": round(rss0, 1),
           "state_bytes": state, "top_eigenvalue_sum": float(eig.sum())}
    out.update(extra)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
