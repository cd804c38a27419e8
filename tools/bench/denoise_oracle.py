#!/usr/bin/python3
"""An independent oracle for `recalign denoise`'s exact route on patch masks (issue 14,
"Accuracy"), in NumPy/SciPy from MATH.md §2, §4 and §7 alone (no recalign code):

    Sxx = Σ x xᵀ, Sxy = Σ x yᵀ (one-hot y), Syy = Σ y yᵀ   (uncentered: denoise's default)
    Bd  = Sxx on the blocks of coordinates sharing a patch (HWC layout), 0 elsewhere
    Bs  = q Sxx,  G = c1 Sxx + c2 Bd   (Bernoulli: q = 1−p, c1 = (1−p)², c2 = p(1−p);
          fixed count, m = ⌊P(1−p)⌋ of P patches kept: q = m/P, c1 = m(m−1)/(P(P−1)), c2 = q − c1)
    V*  = top-K generalized eigenvectors of (Bs Bsᵀ, G)   (scipy.linalg.eigh, subset_by_index)
    curve(K)       = Σ_{j≤K} ṽ_jᵀ Sxy Syy Sxyᵀ ṽ_j / ‖Syy‖_F²,  Ṽ = V* L⁻ᵀ, L Lᵀ = V*ᵀ Sxx V*
    clean_curve(K) = Σ_{i≤K} a_iᵀ Syy a_i / λ_i / ‖Syy‖_F²,  a_i = Sxyᵀ u_i  (eigenpairs of Sxx)
    relative(K)    = (curve − clean_curve) / clean_curve
    impact(K)      = Σ sin² θ(span V*_K, span U_K) = K − ‖U_Kᵀ Q_K‖_F²  (Q: QR of V*); normalised /K

Sxx and the top-K eigenpairs of Sxx are cached beside the data (--cache; 1.2 GB at D =
12,288), so each further mask costs one D x D product (A = Sxx², the scale q² does not move
the eigenvectors) and one generalized eigensolve. Memory: about 3 D x D doubles. Prints one
JSON document {"n", "d", "noises": [{"spec", "relative", "impact_normalised", "curve",
"clean_curve"}], "time": {per stage, s}} on stdout.

    tools/bench/denoise_oracle.py --images X.u8 --raw-shape 20000,12288 --labels X.idx \
        --image-shape 64,64,3 --noise mask:patch=16x16,ratio=0.75 --cache /tmp/recalign-accuracy
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import scipy.linalg as sl
from scipy.linalg.blas import dsyrk


def read_labels(path, n):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:4] != b"\x00\x00\x08\x01":
        sys.exit(f"{path}: not an IDX u8 vector (magic {raw[:4].hex()})")
    count = int.from_bytes(raw[4:8], "big")
    if count < n:
        sys.exit(f"{path}: {count} labels, {n} rows")
    return np.frombuffer(raw, np.uint8, n, 8).astype(np.int64)


def syrk_into(c, x):
    """c's upper triangle += x xᵀ, in place (c n x n, column-major; x n x s), by BLAS SYRK: half a
    GEMM's flops, no n x n temporary, and no copy of x when x or xᵀ is column-major."""
    if not c.flags.f_contiguous:
        raise ValueError("syrk_into: c must be column-major to be updated in place")
    x = np.asarray(x, dtype=np.float64)
    if x.flags.f_contiguous:
        dsyrk(1.0, x, beta=1.0, c=c, trans=0, lower=0, overwrite_c=1)
    else:  # xᵀ is the column-major one: (xᵀ)ᵀ xᵀ = x xᵀ
        dsyrk(1.0, x.T, beta=1.0, c=c, trans=1, lower=0, overwrite_c=1)


def symmetric(c):
    """The symmetric matrix whose upper triangle c holds."""
    u = np.triu(c)
    return u + np.triu(u, 1).T


def moments(images, n, d, labels, batch=1000):
    """Sxx (full, float64, from one SYRK per batch), Sxy, Syy of the uncentered data."""
    x = np.memmap(images, np.uint8, "r", shape=(n, d))
    c = int(labels.max()) + 1
    y = np.eye(c)[labels]
    sxx = np.zeros((d, d), order="F")
    for i in range(0, n, batch):
        syrk_into(sxx, np.asarray(x[i:i + batch], dtype=np.float64).T)  # Sxx += xbᵀ xb
    sxx = symmetric(sxx)
    sxy = np.zeros((d, c))
    for i in range(0, n, batch):
        sxy += np.asarray(x[i:i + batch], dtype=np.float64).T @ y[i:i + batch]
    return np.ascontiguousarray(sxx), sxy, y.T @ y


def patch_of(shape, ph, pw):
    """Patch id of every flat coordinate, HWC layout (edge patches may be partial)."""
    h, w, ch = shape
    rows, cols = np.divmod(np.arange(h * w), w)
    per_row = -(-w // pw)
    pid = (rows // ph) * per_row + cols // pw
    return np.repeat(pid, ch), per_row * -(-h // ph)


def coefficients(scheme, ratio, patches):
    if scheme == "bernoulli":
        return 1 - ratio, (1 - ratio) ** 2, ratio * (1 - ratio)
    m = int(patches * (1 - ratio))  # MAE's int(L * (1 - mask_ratio))
    q = m / patches
    c1 = m * (m - 1) / (patches * (patches - 1))
    return q, c1, q - c1


def parse(spec):
    kind, _, rest = spec.partition(":")
    if kind != "mask":
        sys.exit(f"--noise {spec}: only mask:patch=PHxPW,ratio=P[,scheme=bernoulli|fixed]")
    kv = dict(x.split("=") for x in rest.split(","))
    ph, pw = (int(v) for v in kv["patch"].split("x"))
    return ph, pw, float(kv["ratio"]), kv.get("scheme", "bernoulli")


def curve_of(v, sxx, sxy, syy, norm):
    """Nested Sxx-orthonormal Ṽ = V L⁻ᵀ; cumulative ṽ_jᵀ Sxy Syy Sxyᵀ ṽ_j / ‖Syy‖_F²."""
    gram = v.T @ (sxx @ v)
    lo = np.linalg.cholesky((gram + gram.T) / 2)
    a = sl.solve_triangular(lo, v.T @ sxy, lower=True)  # rows: ṽ_jᵀ Sxy
    return np.cumsum(np.einsum("jc,cd,jd->j", a, syy, a)) / norm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True)
    ap.add_argument("--raw-shape", required=True, help="N,D (u8 rows)")
    ap.add_argument("--labels", required=True)
    ap.add_argument("--image-shape", required=True, help="H,W,C (HWC layout)")
    ap.add_argument("--noise", action="append", required=True)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--cache", default=None, help="directory for Sxx and its top-K eigenpairs")
    a = ap.parse_args()
    n, d = (int(v) for v in a.raw_shape.split(","))
    shape = tuple(int(v) for v in a.image_shape.split(","))
    if math.prod(shape) != d:
        sys.exit(f"--image-shape {a.image_shape} has {math.prod(shape)} values, rows have {d}")
    k, t = a.k, {}
    labels = read_labels(a.labels, n)
    stem = os.path.join(a.cache, os.path.basename(a.images).rsplit(".", 1)[0] + f"_oracle_n{n}") if a.cache else None
    t0 = time.process_time()
    if stem and os.path.exists(stem + "_moments.npz"):
        z = np.load(stem + "_moments.npz")
        sxx, sxy, syy, lam, u = z["sxx"], z["sxy"], z["syy"], z["lam"], z["u"]
        t["moments_cached"] = float(z["cpu"])
    else:
        sxx, sxy, syy = moments(a.images, n, d, labels)
        t["moments"] = time.process_time() - t0
        t1 = time.process_time()
        lam, u = sl.eigh(sxx, subset_by_index=[d - k, d - 1], driver="evr")
        lam, u = lam[::-1], u[:, ::-1]
        t["clean_eigh"] = time.process_time() - t1
        if stem:
            np.savez(stem + "_moments.tmp.npz", sxx=sxx, sxy=sxy, syy=syy, lam=lam, u=u,
                     cpu=t["moments"] + t["clean_eigh"])
            os.replace(stem + "_moments.tmp.npz", stem + "_moments.npz")
    norm = float(np.sum(syy * syy))
    au = u.T @ sxy
    clean = np.cumsum(np.einsum("ic,cd,id->i", au, syy, au) / lam) / norm
    out = []
    for spec in a.noise:
        ph, pw, ratio, scheme = parse(spec)
        pid, patches = patch_of(shape, ph, pw)
        q, c1, c2 = coefficients(scheme, ratio, patches)
        t1 = time.process_time()
        g = c1 * sxx
        order = np.argsort(pid, kind="stable")
        bounds = np.searchsorted(pid[order], np.arange(patches + 1))
        for b in range(patches):
            idx = order[bounds[b]:bounds[b + 1]]
            g[np.ix_(idx, idx)] += c2 * sxx[np.ix_(idx, idx)]
        amat = sxx @ sxx  # Bs Bsᵀ / q²
        amat = (amat + amat.T) / 2
        mu, v = sl.eigh(amat.T, g.T, subset_by_index=[d - k, d - 1], driver="gvx", overwrite_a=True, overwrite_b=True)
        del amat, g
        v = v[:, ::-1]
        t[spec] = time.process_time() - t1
        curve = curve_of(v, sxx, sxy, syy, norm)
        qv = np.linalg.qr(v)[0]
        c = u.T @ qv
        ks = np.arange(1, k + 1)
        inside = np.array([np.sum(c[:kk, :kk] ** 2) for kk in ks])
        out.append({"spec": spec, "q": q, "c1": c1, "c2": c2, "relative": list((curve - clean) / clean),
                    "impact_normalised": list((ks - inside) / ks), "curve": list(curve),
                    "clean_curve": list(clean), "generalized_eigenvalues": list(q * q * mu[::-1])})
    json.dump({"n": n, "d": d, "k": k, "noises": out, "time": t}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
