#!/usr/bin/python3
"""The exact denoising curves at any D when there are fewer rows than coordinates (n < D, e.g.
the 224x224x3 demo's data with --limit 1000), in NumPy/SciPy from MATH.md §2, §4 and §7 alone
(no recalign code): the same quantities as denoise_oracle.py, without any D x D matrix.

With X the n x D rows (uncentered: denoise's default), Sxx = XᵀX, N = XXᵀ (n x n),
G = c1 Sxx + E, E = c2 Bd (block diagonal, one block per patch), A = q² Sxx²:

    every generalized eigenvector with μ > 0 is v = G⁻¹ Xᵀ a, and X v = M a with
    M = X G⁻¹ Xᵀ = P (I + c1 P)⁻¹,  P = X E⁻¹ Xᵀ = (1/c2) Σ_b Π_b   (Woodbury),
    Π_b = Q_b Q_bᵀ the projector on range(X_b) (X_b = Q_b R_b: the n x s columns of patch b);
    q² N M a = μ a, symmetric through M = W diag(m) Wᵀ: S = q² m^½ Wᵀ N W m^½, X V = W m^½ B.
    The curves need only X V (Vᵀ Sxx V = (XV)ᵀ XV, Vᵀ Sxy = (XV)ᵀ Y) and, for the clean side,
    N's eigenpairs (a_iᵀ Syy a_i / λ_i = w_iᵀ Y Syy Yᵀ w_i); the impact needs Vᵀ V = hᵀ FᵀF h,
    h = (I + c1 P)⁻¹ a, FᵀF = (1/c2²) Σ_b Z_b Z_bᵀ (Z_b = Q_b R_b⁻ᵀ), and Uᵀ V = λ^-½ Wₙᵀ P h.

Needs every patch block of full column rank (n >= patch pixels x channels and no constant
coordinate in a patch): refused otherwise. Cost: one QR per block, O(n² D) flops; memory
O(n² + n s) beyond the u8 rows. Prints denoise_oracle.py's JSON document on stdout.

    tools/bench/denoise_oracle_lowrank.py --images synth_20000_224_to_224.u8 --raw-shape 20000,150528 \\
        --limit 1000 --labels synth_20000_224_to_224.idx --image-shape 224,224,3 \\
        --noise mask:patch=16x16,ratio=0.75,scheme=fixed --noise mask:patch=16x16,ratio=0.75
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import scipy.linalg as sl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from denoise_oracle import coefficients, parse, patch_of, read_labels, symmetric, syrk_into  # noqa: E402


def block_sums(x, pid, patches):
    """Σ_b Π_b and Σ_b Z_b Z_bᵀ over the patch blocks (columns of one patch)."""
    n = x.shape[0]
    proj, zz = np.zeros((n, n), order="F"), np.zeros((n, n), order="F")
    order = np.argsort(pid, kind="stable")
    bounds = np.searchsorted(pid[order], np.arange(patches + 1))
    worst = np.inf
    for b in range(patches):
        xb = np.asarray(x[:, order[bounds[b]:bounds[b + 1]]], dtype=np.float64)
        if xb.shape[1] > n:
            sys.exit(f"patch {b}: {xb.shape[1]} coordinates, {n} rows: its block is singular (use more rows)")
        qb, rb = np.linalg.qr(xb)
        d = np.abs(np.diag(rb))
        worst = min(worst, d.min() / d.max())
        if worst < 1e-12:
            sys.exit(f"patch {b}: its block is singular to rounding (a constant coordinate?)")
        syrk_into(proj, qb)
        syrk_into(zz, sl.solve_triangular(rb, qb.T, lower=False).T)  # Z_b = Q_b R_b⁻ᵀ
    return symmetric(proj), symmetric(zz), worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True)
    ap.add_argument("--raw-shape", required=True, help="N,D (u8 rows)")
    ap.add_argument("--limit", type=int, default=0, help="the first LIMIT rows (0: all)")
    ap.add_argument("--labels", required=True)
    ap.add_argument("--image-shape", required=True, help="H,W,C (HWC layout)")
    ap.add_argument("--noise", action="append", required=True)
    ap.add_argument("--k", type=int, default=64)
    a = ap.parse_args()
    rows, d = (int(v) for v in a.raw_shape.split(","))
    n = a.limit or rows
    shape = tuple(int(v) for v in a.image_shape.split(","))
    if math.prod(shape) != d:
        sys.exit(f"--image-shape {a.image_shape} has {math.prod(shape)} values, rows have {d}")
    if n > rows or n >= d:
        sys.exit(f"{n} rows of D = {d}: this oracle is for n < D (denoise_oracle.py otherwise)")
    k, t = a.k, {}
    y = np.eye(int(read_labels(a.labels, n).max()) + 1)[read_labels(a.labels, n)]
    syy = y.T @ y
    norm = float(np.sum(syy * syy))
    x = np.array(np.memmap(a.images, np.uint8, "r", shape=(rows, d))[:n])
    gram = np.zeros((n, n), order="F")
    for c0 in range(0, d, 4096):  # N = XXᵀ, a slab of columns at a time (no n x D doubles)
        syrk_into(gram, x[:, c0:c0 + 4096])
    gram = symmetric(gram)
    lam_n, wn = np.linalg.eigh(gram)
    lam_n, wn = lam_n[::-1][:k], wn[:, ::-1][:, :k]
    yw = y.T @ wn  # C x k: a_i / sqrt(λ_i)
    clean = np.cumsum(np.einsum("ci,cd,di->i", yw, syy, yw)) / norm
    out, blocks = [], {}
    for spec in a.noise:
        ph, pw, ratio, scheme = parse(spec)
        pid, patches = patch_of(shape, ph, pw)
        q, c1, c2 = coefficients(scheme, ratio, patches)
        t0 = time.process_time()
        if (ph, pw) not in blocks:
            blocks[(ph, pw)] = block_sums(x, pid, patches)
            t[f"blocks {ph}x{pw}"] = time.process_time() - t0
        proj, zz, worst = blocks[(ph, pw)]
        pi, w = np.linalg.eigh(proj / c2)
        pi = np.maximum(pi, 0.0)
        m = pi / (1 + c1 * pi)
        rm = w * np.sqrt(m)  # R: M = R Rᵀ
        s = q * q * (rm.T @ gram @ rm)
        mu, bv = np.linalg.eigh((s + s.T) / 2)
        mu, bv = mu[::-1][:k], bv[:, ::-1][:, :k]
        xv = rm @ bv  # X V
        lo = np.linalg.cholesky(xv.T @ xv)
        av = sl.solve_triangular(lo, xv.T @ y, lower=True)
        curve = np.cumsum(np.einsum("jc,cd,jd->j", av, syy, av)) / norm
        # the impact: V = F h, h = (I + c1 P)⁻¹ a, a = R⁻ᵀ b = W m^-½ b
        coef = w @ (bv / np.sqrt(m)[:, None] / (1 + c1 * pi)[:, None])
        vtv = coef.T @ (zz / (c2 * c2)) @ coef
        utv = (wn.T @ ((proj / c2) @ coef)) / np.sqrt(lam_n)[:, None]
        lv = np.linalg.cholesky((vtv + vtv.T) / 2)
        c = sl.solve_triangular(lv, utv.T, lower=True).T  # Uᵀ Q, Q = V Lᵀ⁻¹
        ks = np.arange(1, k + 1)
        inside = np.array([np.sum(c[:kk, :kk] ** 2) for kk in ks])
        t[spec] = time.process_time() - t0
        out.append({"spec": spec, "q": q, "c1": c1, "c2": c2, "relative": list((curve - clean) / clean),
                    "impact_normalised": list((ks - inside) / ks), "curve": list(curve),
                    "clean_curve": list(clean), "generalized_eigenvalues": list(mu),
                    "smallest_block_condition": worst})
    json.dump({"n": n, "d": d, "k": k, "noises": out, "time": t}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
