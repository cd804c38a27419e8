#!/usr/bin/env python3
"""Frequent Directions shrink variants in NumPy/SciPy (float32 shrinks, one BLAS thread), on the
power-law stream of docs/benchmarks-log.md (D = 784, the bench_sketch `generate` file): the captured-
variance error of the top-100 basis, the reported bound Δ against the true ‖C − BᵀB‖₂, and
the time per phase. A study, not the library: it decides which shrink the library runs.

  exact,L,B          exact FD: ℓ = L kept rows, B new rows per shrink (buffer L + B), xSYEVD
  sub,L,B,P,Q        inexact shrink: Q block (subspace) iterations on the (L+B)² Gram matrix,
                     warm-started from the L kept rows (+ P Gaussian columns on the new rows),
                     Rayleigh-Ritz, shrink by a *certified* τ >= λ_max of the Gram matrix on the
                     complement of the kept Ritz vectors (Cholesky of τI − P⊥GP⊥ succeeds), and
                     Δ += τ + ‖R diag(√min(τ/θ,1))‖_F (R: the Ritz residuals; 2x2 block bound),
                     so Δ stays a proven bound (up to float rounding)

  /usr/bin/python3 tools/bench/fd_shrink_study.py DATA.f32 N exact,200,200 sub,200,200,10,1 ...
"""
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
from scipy.linalg import blas, lapack  # noqa: E402

D = 784
data, N = sys.argv[1], int(sys.argv[2])
X = np.fromfile(data, dtype=np.float32).reshape(-1, D)[:N].astype(np.float64)
Xc = X - X.mean(0)
C = Xc.T @ Xc
ev = np.linalg.eigvalsh(C)[::-1]
top = ev[:100].sum()
print(f"exact top-100 {top:.3f}, total {ev.sum():.3f}")
tim = {}


def tick(key, t0):
    tim[key] = tim.get(key, 0.0) + time.perf_counter() - t0
    return time.perf_counter()


def shrink_exact(B, ell):
    t = time.perf_counter()
    G = blas.ssyrk(1.0, B)
    t = tick("gram", t)
    w, v, info = lapack.ssyevd(G, compute_v=1, lower=0)
    t = tick("eig", t)
    m = B.shape[0]
    d = max(w[m - 1 - ell], 0.0)
    lam, vv = w[::-1][:ell], v[:, ::-1][:, :ell]
    keep = lam > d
    T = (vv[:, keep] * np.sqrt((lam[keep] - d) / lam[keep])).T
    Bn = T @ B
    tick("rot", t)
    return Bn.astype(np.float32), d


def shrink_sub(B, ell, p, iters, rng):
    m = B.shape[0]
    t = time.perf_counter()
    G = blas.ssyrk(1.0, B)
    G = np.triu(G) + np.triu(G, 1).T
    t = tick("gram", t)
    Z0 = np.zeros((m, ell + p), np.float32)
    Z0[:ell, :ell] = np.eye(ell)
    Z0[ell:, ell:] = rng.standard_normal((m - ell, p)).astype(np.float32)
    Z = G @ Z0
    for _ in range(iters - 1):
        Z, _ = np.linalg.qr(Z)
        Z = G @ Z
    Z, _ = np.linalg.qr(Z)
    GZ = G @ Z
    th, U, info = lapack.ssyevd(Z.T @ GZ, compute_v=1)
    th, U = th[::-1], U[:, ::-1]
    t = tick("ritz", t)
    Q, GQ = Z @ U[:, :ell], GZ @ U[:, :ell]
    R = GQ - Q * th[:ell]
    K = GQ - 0.5 * Q * th[:ell]
    P = G - (Q @ K.T + K @ Q.T)  # P⊥ G P⊥
    tau = max(th[ell], 0.0)
    while lapack.spotrf(tau * np.eye(m, dtype=np.float32) - P)[1] != 0:
        tau = tau * 1.02 + 1e-6 * th[0]
    t = tick("certificate", t)
    keep = th[:ell] > tau
    F = np.linalg.norm(R * np.sqrt(np.minimum(tau / th[:ell], 1.0)))
    T = (Q[:, keep] * np.sqrt((th[:ell][keep] - tau) / th[:ell][keep])).T
    Bn = T @ B
    tick("rot", t)
    return Bn.astype(np.float32), tau + F


def run(mode, ell, b, p=10, iters=1):
    tim.clear()
    rng = np.random.default_rng(0)
    Xf = Xc.astype(np.float32)
    B, delta, shrinks, i = np.zeros((0, D), np.float32), 0.0, 0, 0
    t0 = time.perf_counter()
    while i < N:
        take = min(ell + b - B.shape[0], N - i)
        B = np.vstack([B, Xf[i:i + take]])
        i += take
        if B.shape[0] == ell + b:
            B, dl = shrink_exact(B, ell) if mode == "exact" else shrink_sub(B, ell, p, iters, rng)
            delta += dl
            shrinks += 1
    seconds = time.perf_counter() - t0
    B64 = B.astype(np.float64)
    W = np.linalg.svd(B64, full_matrices=False)[2][:100].T
    cap = np.einsum("ij,ij->", W, C @ W)
    err = np.linalg.eigvalsh(C - B64.T @ B64)
    print(f"{mode} ell={ell} b={b}" + (f" p={p} iters={iters}" if mode == "sub" else "") +
          f": {seconds:.2f} s, {shrinks} shrinks, captured-variance error {(top - cap) / top:.3e}, "
          f"Δ {delta:.1f}, ‖C − BᵀB‖₂ {err[-1]:.1f}, λ_min(C − BᵀB) {err[0]:.2e}, "
          + ", ".join(f"{k} {v:.2f} s" for k, v in tim.items()), flush=True)


for spec in sys.argv[3:]:
    f = spec.split(",")
    run(f[0], *(int(x) for x in f[1:]))
