#!/usr/bin/env python3
"""Oracle: the paper's own alignment procedure (Section 6.8, `alignment_sweep`), re-implemented
in NumPy on the whole data matrix, against the curves recalign computes from streamed moments.

The paper is column-major: X is D x N, Y is C x N (one-hot). Its code:

    U, S, Vh = np.linalg.svd(X, full_matrices=False)
    denom = np.square(np.linalg.norm(Y @ Y.T))
    numer = np.linalg.norm(np.linalg.multi_dot([Y.T, Y, Vh.T]), axis=0) ** 2
    return np.cumsum(numer) / denom

It forms N x N matrices (Yᵀ Y), which is why it only runs on a subset here.
The `fit` measure is ‖Y V_k‖² / ‖Y‖² and `rank` renormalises `paper` to its value at the
rank of X (MATH.md §2). Usage: paper_alignment.py DUMP_ALIGNMENT_EXE N
"""
import gzip
import json
import subprocess
import sys

import numpy as np

from data_sets import fashion_mnist_or_skip


def fashion_mnist(n):
    images_file, labels_file = fashion_mnist_or_skip("paper_alignment")
    with gzip.open(images_file) as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)[:n]
    with gzip.open(labels_file) as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:n]
    return images.astype(np.float64) / 255.0, labels


def alignment_sweep(X, Y):
    """Section 6.8, major="C", verbatim in NumPy."""
    U, S, Vh = np.linalg.svd(X, full_matrices=False)
    denom = np.square(np.linalg.norm(Y @ Y.T))
    numer = np.linalg.multi_dot([Y.T, Y, Vh.T])
    numer = np.linalg.norm(numer, axis=0) ** 2
    return np.cumsum(numer) / denom, S, Vh


def main():
    exe, n = sys.argv[1], int(sys.argv[2])
    images, labels = fashion_mnist(n)
    got = json.loads(subprocess.run([exe, str(n)], check=True, capture_output=True, text=True).stdout)
    assert got["n"] == n and got["d"] == 784, got["n"]
    X = images.T  # D x N
    Y = np.eye(10)[labels].T  # C x N
    failures = 0
    for centering in ("uncentered", "centered"):
        Xc = X - X.mean(axis=1, keepdims=True) if centering == "centered" else X
        Yc = Y - Y.mean(axis=1, keepdims=True) if centering == "centered" else Y
        paper, S, Vh = alignment_sweep(Xc, Yc)
        fit = np.cumsum(np.linalg.norm(Yc @ Vh.T, axis=0) ** 2) / np.linalg.norm(Yc) ** 2
        lam = S ** 2
        # Compare where the direction is numerically meaningful: the paper's SVD returns an
        # arbitrary v_i for a zero singular value, recalign skips it (and counts it).
        rank = int(np.sum(lam > 1e-12 * lam[0]))
        ours = {c["measure"]: c for c in got["curves"] if c["centering"] == centering}
        rank_curve = paper / paper[rank - 1]
        for measure, want in (("paper", paper), ("rank", rank_curve), ("fit", fit)):
            c = ours[measure]
            have = np.array(c["curve"])
            eig = np.array(c["eigenvalues"])
            rel_eig = np.max(np.abs(eig[:rank] - lam[:rank]) / lam[0])
            err = np.max(np.abs(have[:rank] - want[:rank]) / np.maximum(np.abs(want[:rank]), 1e-300))
            ok = err <= 1e-9 and rel_eig <= 1e-12 and c["skipped"] == 784 - rank
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {centering:10s} {measure:5s} rank {rank:3d} skipped {c['skipped']:3d} "
                  f"max rel err over k<=rank {err:.2e}  eigenvalues {rel_eig:.2e}  "
                  f"curve at k=10,100,rank: {want[9]:.6f} {want[99]:.6f} {want[rank - 1]:.6f}")
    print(f"{6 - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
