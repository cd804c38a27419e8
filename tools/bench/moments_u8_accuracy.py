#!/usr/bin/env python3
"""Accuracy of MomentAccumulator's centered scatter on real uint8 images against the exact one.

The oracle: the centered scatter's definition (n XᵀX − s sᵀ) / n evaluated in int64 on the raw
pixels (exact: every entry below 2^63 for Fashion-MNIST), divided in long double. Two feeds of
the same pixels in batches of --batch rows: the uint8 rows themselves (the exact integer path,
lib/stats/moments_u8.cpp) and the same values as float64 (the double path). Errors are per entry
relative to sqrt(M_ii M_jj), so constant columns do not divide by zero; raw pixels (scale 1).

    PYTHONPATH=build/python python3 tools/bench/moments_u8_accuracy.py [--batch 1000]

XᵀX is formed by a float64 matrix product and converted to int64: that product is exact here
(every term an integer below 2^16, every partial sum below n · 255² < 2^53, in any order), and
NumPy's int64 product has no BLAS behind it (8 minutes instead of seconds).
"""
import argparse
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests"))
import data_sets  # noqa: E402  (tests/data_sets.py: where the Debian package puts Fashion-MNIST)

import recalign  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=60000)
    a = ap.parse_args()
    path = data_sets.fashion_mnist_train()[0]
    raw = gzip.open(path).read()
    x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784)[: a.rows]
    n = x.shape[0]
    assert n * 255 * 255 < 2**53
    xf = x.astype(np.float64)
    xtx = (xf.T @ xf).astype(np.int64)
    s = x.astype(np.int64).sum(axis=0)
    ref = (n * xtx - np.outer(s, s)).astype(np.longdouble) / np.longdouble(n)
    size = np.sqrt(np.outer(np.diag(ref), np.diag(ref))).astype(np.float64)
    size[size == 0] = 1.0
    print(f"n = {n}, D = 784, batches of {a.batch} rows; error = |M_ij - exact| / sqrt(M_ii M_jj)")
    for name, data in (("uint8 rows (exact integer path)", x), ("float64 rows (double path)", x.astype(np.float64))):
        acc = recalign.MomentAccumulator(784)
        for r in range(0, n, a.batch):
            acc.update(data[r:r + a.batch])
        err = (np.abs(acc.sxx("centered").astype(np.longdouble) - ref).astype(np.float64)) / size
        print(f"{name:34s} max {err.max():.3e}  median {np.median(err):.3e}")


if __name__ == "__main__":
    main()
