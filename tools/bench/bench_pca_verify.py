#!/usr/bin/python3
"""What StreamingPCA's verification pass (verify=True, the default of fit() on the sketch routes)
costs and buys, side by side in one run: fit() with and without it on the 60,000 Fashion-MNIST
training images (pixels / 255, in memory), the error of explained_variance_ against PCA's exact
values (NumPy's eigh of the centered scatter), and IncrementalPCA on the same rows for scale.

    tools/bench/bench_pca_verify.py [--k 50] [--reps 3] [--n 60000]

Each side's wall time is the median of --reps fits in this process, alternating the sides.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "python"))
sys.path.insert(0, HERE)

from bench_peers import load_fashion  # noqa: E402
from sklearn.decomposition import IncrementalPCA  # noqa: E402

from recalign.sklearn import StreamingPCA  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=60000)
    a = ap.parse_args()
    x, _ = load_fashion(a.n)
    xc = x - x.mean(axis=0)
    exact = np.linalg.eigvalsh(xc.T @ xc)[::-1][:a.k] / (len(x) - 1)
    sides = {
        "fd, verify": lambda: StreamingPCA(a.k, method="fd", batch_size=1000),
        "fd, verify=False": lambda: StreamingPCA(a.k, method="fd", batch_size=1000, verify=False),
        "nystrom 2 passes, verify": lambda: StreamingPCA(a.k, method="nystrom", passes=2, batch_size=1000),
        "nystrom 2 passes, verify=False": lambda: StreamingPCA(a.k, method="nystrom", passes=2, batch_size=1000,
                                                               verify=False),
        "IncrementalPCA": lambda: IncrementalPCA(a.k, batch_size=1000),
    }
    times = {name: [] for name in sides}
    fitted = {}
    for _ in range(a.reps):
        for name, make in sides.items():
            t0 = time.perf_counter()
            fitted[name] = make().fit(x)
            times[name].append(time.perf_counter() - t0)
    print(f"n = {len(x)}, D = {x.shape[1]}, k = {a.k}, batch 1000, medians of {a.reps}; load {os.getloadavg()[0]:.2f}")
    print(f"  {'side':32s} {'wall s':>8s} {'max rel err':>12s} {'mean rel err':>12s} {'any above exact':>16s}")
    for name in sides:
        ev = fitted[name].explained_variance_
        rel = np.abs(ev - exact) / exact
        above = bool(np.any(ev > exact * (1 + 1e-12)))
        print(f"  {name:32s} {np.median(times[name]):8.3f} {rel.max():12.3e} {rel.mean():12.3e} {str(above):>16s}")
    for m in ("fd", "nystrom 2 passes"):
        print(f"  {m}: verification costs {np.median(times[m + ', verify']) / np.median(times[m + ', verify=False']):.2f}x "
              "the unverified fit's wall time")


if __name__ == "__main__":
    main()
