#!/usr/bin/python3
"""Lean exact analyses (issue 17 item 4): peak RSS and wall time of `recalign spectrum`,
`align` and `tradeoff` on the exact route against NumPy doing the same decompositions on the
same matrix (X.T @ X and eigh: LAPACK's dsyevd through the same OpenBLAS; eigvalsh for
`spectrum`, which computes eigenvalues only), each side in its own
child process, alternating, medians. RSS is reported in D x D float64 matrices beyond the
process's own footprint at D = 8 (the baseline: the binaries, OpenBLAS's buffers).

--dsyevr-memory GIB adds the same three commands with `--memory GIB`, side by side (before
branch lean a budget between 3 and 5 D x D forced dsyevr; now that align and tradeoff consume
the accumulator, dsyevd fits any budget that passes the 3 D x D estimate, and spectrum computes
values only, so these sides show the same solvers); --memory GIB passes
`--memory` to the other commands. CPU time (user + system) is printed beside the wall time: on a
loaded machine it is the steadier figure.
--baseline-cli PATH runs this build's sides again with another build (main's), for the peaks
before and after side by side. --denoise adds `recalign denoise` with one patch mask (D = H·H, or 2·H·H as H x H x 2) against SciPy
doing the same decompositions on the same matrices (eigh of Sxx, the generalized eigh(Bs Bsᵀ, G)
with G = K ⊙ Sxx, the Cholesky of V*ᵀ Sxx V*). --only "NAME;..." runs those sides alone (beside NumPy's eigh).

    /usr/bin/python3 tools/bench/bench_exact.py --d 2048 --n 3000 --reps 3 [--cli build/tools/recalign/recalign]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

NUMPY_SIDE = r'''
import sys, time, numpy as np
d, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
X = np.fromfile(path, dtype=np.uint8).reshape(n, d).astype(np.float64)
t0 = time.perf_counter(); S = X.T @ X; t1 = time.perf_counter(); w, v = np.linalg.eigh(S); t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
'''

# `recalign spectrum` prints eigenvalues only (dsyevd without vectors): NumPy's eigvalsh.
NUMPY_VALUES = NUMPY_SIDE.replace("w, v = np.linalg.eigh(S)", "w = np.linalg.eigvalsh(S)")

# The ceiling of `recalign denoise --noise mask:patch=4x4,ratio=0.5` (bernoulli), uncentered:
# SciPy doing the same decompositions on the same matrices: Sxx = XᵀX and its eigh (the clean
# curve), G = K ⊙ Sxx (keep 1 - r, same patch 1 - r, else (1 - r)²) and Bs = (1 - r) Sxx, the
# generalized eigh(Bs Bsᵀ, G) (LAPACK's dsygvd: Cholesky of G, reduction, dsyevd, back
# substitution; Bs Bsᵀ by one GEMM), and the Cholesky of V*ᵀ Sxx V* (the nested basis of the curve).
SCIPY_DENOISE = r'''
import sys, time, numpy as np, scipy.linalg as sl
d, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = int(sys.argv[4]) if len(sys.argv) > 4 else 1  # channels (HWC: a pixel's channels share its patch)
h = int(round((d // c) ** 0.5)); p = 4; r = 0.5; q = 1 - r
X = np.fromfile(path, dtype=np.uint8).reshape(n, d).astype(np.float64)
t0 = time.perf_counter()
S = X.T @ X
w, U = sl.eigh(S)
patch = np.repeat(((np.arange(h)[:, None] // p) * ((h + p - 1) // p) + np.arange(h)[None, :] // p).ravel(), c)
G = S * q * q
same = patch[:, None] == patch[None, :]
G[same] = S[same] * q
del same
Bs = q * S
A = Bs @ Bs.T
del Bs
mu, V = sl.eigh(A, G, overwrite_a=True, overwrite_b=True)
del A, G
M = V.T @ (S @ V)
sl.cholesky(M + 1e-9 * np.trace(M) / len(M) * np.eye(len(M)))
print(time.perf_counter() - t0, 0.0)
'''


def rss_wall(cmd):
    """Wall time, peak RSS (MiB) and CPU seconds (user + system) of a child through GNU time."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M %U %S"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {p.stderr.decode()}")
    kb, user, system = p.stderr.decode().strip().splitlines()[-1].split()
    return wall, int(kb) / 1024.0, p.stdout.decode(), float(user) + float(system)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cli", default="build/tools/recalign/recalign")
    ap.add_argument("--tmp", default=tempfile.gettempdir())
    ap.add_argument("--dsyevr-memory", help="add the three commands with --memory GIB (forcing dsyevr)")
    ap.add_argument("--memory", help="--memory GIB for this build's commands")
    ap.add_argument("--denoise", action="store_true",
                    help="add denoise (one 4x4 patch mask; and mask + dropout + Gaussian) against SciPy")
    ap.add_argument("--only", help="semicolon-separated sides to run (names as printed; NumPy's eigh side always runs)")
    ap.add_argument("--baseline-cli", help="another build's recalign (e.g. main's): each side of this build again "
                    "with it, named 'NAME, baseline', for the peaks before and after side by side")
    a = ap.parse_args()
    d, n = a.d, a.n
    rng = np.random.default_rng(0)
    x = os.path.join(a.tmp, f"bench_exact_{n}x{d}.u8")
    y = os.path.join(a.tmp, f"bench_exact_{n}.npy")
    (rng.random((n, d)) * 255).astype(np.uint8).tofile(x)
    np.save(y, rng.integers(0, 10, n).astype(np.int64))
    small = os.path.join(a.tmp, "bench_exact_small.u8")
    (rng.random((n, 8)) * 255).astype(np.uint8).tofile(small)
    mat_mib = 8.0 * d * d / 2**20
    print(f"machine: nproc {os.cpu_count()}; load before {os.getloadavg()[0]:.1f}; D = {d}, n = {n}, one D x D matrix = {mat_mib:.1f} MiB; medians of {a.reps}")
    _, base, _, _ = rss_wall([a.cli, "spectrum", "--images", small, "--raw-shape", f"{n},8", "--quiet"])
    common = ["--images", x, "--raw-shape", f"{n},{d}", "--labels", y, "--quiet"]
    mine = common + (["--memory", a.memory] if a.memory else [])
    sides = {
        "spectrum": [a.cli, "spectrum"] + mine,
        "align": [a.cli, "align"] + mine,
        "tradeoff --k 10 --lambda 0,1": [a.cli, "tradeoff", "--k", "10", "--lambda", "0,1"] + mine,
    }
    if a.dsyevr_memory:
        lean = common + ["--memory", a.dsyevr_memory]
        sides["spectrum, dsyevr"] = [a.cli, "spectrum"] + lean
        sides["align, dsyevr"] = [a.cli, "align"] + lean
        sides["tradeoff, dsyevr"] = [a.cli, "tradeoff", "--k", "10", "--lambda", "0,1"] + lean
    if a.denoise:
        c = 1 if round(d ** 0.5) ** 2 == d else 2  # H x H x 1, or H x H x 2 (D = 2,048: 32 x 32 x 2)
        h = int(round((d // c) ** 0.5))
        if h * h * c != d:
            sys.exit("--denoise needs D = H * H or 2 * H * H")
        sides["denoise mask 4x4 0.5"] = [a.cli, "denoise", "--image-shape", f"{h},{h},{c}", "--noise",
                                         "mask:patch=4x4,ratio=0.5"] + mine
        sides["denoise mask+dropout+gaussian"] = sides["denoise mask 4x4 0.5"][:6] + [
            "--noise", "dropout:ratio=0.3", "--noise", "gaussian:sigma=0.1"] + mine
        if a.dsyevr_memory:
            sides["denoise, dsyevr"] = sides["denoise mask 4x4 0.5"][:-len(mine)] + lean
        sides["scipy denoise decompositions"] = [sys.executable, "-c", SCIPY_DENOISE, str(d), str(n), x, str(c)]
    if a.baseline_cli:
        for k in [k for k, v in sides.items() if v[0] == a.cli]:
            sides[k + ", baseline"] = [a.baseline_cli] + sides[k][1:]
    sides["numpy X.T@X + eigh"] = [sys.executable, "-c", NUMPY_SIDE, str(d), str(n), x]
    sides["numpy X.T@X + eigvalsh"] = [sys.executable, "-c", NUMPY_VALUES, str(d), str(n), x]
    if a.only:
        keep = [v.strip() for v in a.only.split(";")] + ["numpy X.T@X + eigh"]
        sides = {k: v for k, v in sides.items() if k in keep or k.endswith(", baseline") and k[:-10] in keep}
    res = {k: [] for k in sides}
    inside, scipy_inside = [], []
    for _ in range(a.reps):
        for k, cmd in sides.items():
            wall, rss, out, cpu = rss_wall(cmd)
            res[k].append((wall, rss, cpu))
            if k == "numpy X.T@X + eigh":
                inside.append([float(v) for v in out.split()])
            if k.startswith("scipy"):
                scipy_inside.append(float(out.split()[0]))
    med = lambda v: float(np.median(v))
    np_wall = med([x[0] for x in res["numpy X.T@X + eigh"]])
    np_compute = med([s + e for s, e in inside])
    print(f"  baseline RSS of recalign at D = 8: {base:.1f} MiB; NumPy inside its process: X.T@X {med([s for s, _ in inside]):.2f} s + eigh {med([e for _, e in inside]):.2f} s")
    np_cpu = med([x[2] for x in res["numpy X.T@X + eigh"]])
    np_peak = med([x[1] for x in res["numpy X.T@X + eigh"]])
    print(f"  {'side':32s} {'wall s':>8s} {'cpu s':>7s} {'peak MiB':>9s} {'D x D':>6s} {'/numpy peak':>11s} {'/numpy wall':>11s} {'/numpy compute':>14s} {'/numpy cpu':>10s}")
    for k, v in res.items():
        w, r, cp = med([x[0] for x in v]), med([x[1] for x in v]), med([x[2] for x in v])
        print(f"  {k:32s} {w:8.2f} {cp:7.2f} {r:9.1f} {(r - base) / mat_mib:6.2f} {r / np_peak:11.2f} {w / np_wall:11.2f} {w / np_compute:14.2f} {cp / np_cpu:10.2f}")
    if scipy_inside:
        sw = med([x[0] for x in res["scipy denoise decompositions"]])
        dw = med([x[0] for x in res["denoise mask 4x4 0.5"]])
        sc = med([x[2] for x in res["scipy denoise decompositions"]])
        dc = med([x[2] for x in res["denoise mask 4x4 0.5"]])
        sp = med([x[1] for x in res["scipy denoise decompositions"]])
        dp = med([x[1] for x in res["denoise mask 4x4 0.5"]])
        print(f"  denoise / scipy: wall {dw / sw:.2f}, cpu {dc / sc:.2f}, peak {dp / sp:.2f}; scipy's decompositions inside its process: {med(scipy_inside):.2f} s")
    if "spectrum" in res and "numpy X.T@X + eigvalsh" in res:
        vw = med([x[0] for x in res["numpy X.T@X + eigvalsh"]])
        vc = med([x[2] for x in res["numpy X.T@X + eigvalsh"]])
        sw, sc = med([x[0] for x in res["spectrum"]]), med([x[2] for x in res["spectrum"]])
        print(f"  spectrum (values only) / numpy eigvalsh: wall {sw / vw:.2f}, cpu {sc / vc:.2f}")
    print(f"load after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
