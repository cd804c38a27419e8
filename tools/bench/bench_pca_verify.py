#!/usr/bin/python3
"""What StreamingPCA's sketch-route defaults cost and buy, side by side in one run: fit() with and
without the verification pass (verify=True, the default), Nyström's two passes by block Krylov
(krylov=True, the default) and by subspace iteration, on the 60,000 Fashion-MNIST training
images (pixels / 255, in memory), against PCA's exact values (NumPy's eigh of the centered
scatter) and IncrementalPCA (one and two epochs) on the same rows. Columns: the error of
explained_variance_ (what each reports), and the top-k variance the components actually capture
(NumPy's c^T S c summed), short of the exact top-k sum.

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


class _TwoEpochs:
    """IncrementalPCA over the rows twice (partial_fit in batches of 1,000), as BENCHMARKS.md's peer."""

    def __init__(self, k):
        self.ipca = IncrementalPCA(k, batch_size=1000)

    def fit(self, x):
        for _ in range(2):
            for i in range(0, len(x), 1000):
                self.ipca.partial_fit(x[i:i + 1000])
        self.explained_variance_, self.components_ = self.ipca.explained_variance_, self.ipca.components_
        return self


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=60000)
    a = ap.parse_args()
    x, _ = load_fashion(a.n)
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / (len(x) - 1)
    exact = np.linalg.eigvalsh(s)[::-1][:a.k]
    sides = {
        "fd, verify": lambda: StreamingPCA(a.k, method="fd", batch_size=1000),
        "fd, verify=False": lambda: StreamingPCA(a.k, method="fd", batch_size=1000, verify=False),
        "nystrom 2 passes, verify": lambda: StreamingPCA(a.k, method="nystrom", passes=2, batch_size=1000),
        "nystrom 2 passes, verify=False": lambda: StreamingPCA(a.k, method="nystrom", passes=2, batch_size=1000,
                                                               verify=False),
        "nystrom 2 passes, krylov=False": lambda: StreamingPCA(a.k, method="nystrom", passes=2, batch_size=1000,
                                                               krylov=False),
        "IncrementalPCA": lambda: IncrementalPCA(a.k, batch_size=1000),
        "IncrementalPCA, 2 epochs": lambda: _TwoEpochs(a.k),
    }
    times = {name: [] for name in sides}
    fitted = {}
    for _ in range(a.reps):
        for name, make in sides.items():
            t0 = time.perf_counter()
            fitted[name] = make().fit(x)
            times[name].append(time.perf_counter() - t0)
    print(f"n = {len(x)}, D = {x.shape[1]}, k = {a.k}, batch 1000, medians of {a.reps}; load {os.getloadavg()[0]:.2f}")
    print(f"  {'side':32s} {'wall s':>8s} {'max rel err':>12s} {'mean rel err':>12s} {'any above exact':>16s} "
          f"{'captured short':>15s}")
    for name in sides:
        ev, c = fitted[name].explained_variance_, fitted[name].components_
        rel = np.abs(ev - exact) / exact
        above = bool(np.any(ev > exact * (1 + 1e-12)))
        short = (exact.sum() - np.einsum("ij,jk,ik->", c, s, c)) / exact.sum()
        print(f"  {name:32s} {np.median(times[name]):8.3f} {rel.max():12.3e} {rel.mean():12.3e} {str(above):>16s} "
              f"{short:15.3e}")
    for m in ("fd", "nystrom 2 passes"):
        print(f"  {m}: verification costs {np.median(times[m + ', verify']) / np.median(times[m + ', verify=False']):.2f}x "
              "the unverified fit's wall time")


if __name__ == "__main__":
    main()
