#!/usr/bin/python3
"""Lean exact analyses (issue 17 item 4): peak RSS and wall time of `recalign spectrum`,
`align` and `tradeoff` on the exact route against NumPy doing the same decompositions on the
same matrix (X.T @ X and eigh: LAPACK's dsyevd through the same OpenBLAS), each side in its own
child process, alternating, medians. RSS is reported in D x D float64 matrices beyond the
process's own footprint at D = 8 (the baseline: the binaries, OpenBLAS's buffers).

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


def rss_wall(cmd):
    """Wall time and peak RSS (MiB) of a child through GNU time."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {p.stderr.decode()}")
    return wall, int(p.stderr.decode().strip().splitlines()[-1]) / 1024.0, p.stdout.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cli", default="build/tools/recalign/recalign")
    ap.add_argument("--tmp", default=tempfile.gettempdir())
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
    _, base, _ = rss_wall([a.cli, "spectrum", "--images", small, "--raw-shape", f"{n},8", "--quiet"])
    common = ["--images", x, "--raw-shape", f"{n},{d}", "--labels", y, "--quiet"]
    sides = {
        "spectrum": [a.cli, "spectrum"] + common,
        "align": [a.cli, "align"] + common,
        "tradeoff --k 10 --lambda 0,1": [a.cli, "tradeoff", "--k", "10", "--lambda", "0,1"] + common,
        "numpy X.T@X + eigh": [sys.executable, "-c", NUMPY_SIDE, str(d), str(n), x],
    }
    res = {k: [] for k in sides}
    inside = []
    for _ in range(a.reps):
        for k, cmd in sides.items():
            wall, rss, out = rss_wall(cmd)
            res[k].append((wall, rss))
            if k.startswith("numpy"):
                inside.append([float(v) for v in out.split()])
    med = lambda v: float(np.median(v))
    np_wall = med([w for w, _ in res["numpy X.T@X + eigh"]])
    np_compute = med([s + e for s, e in inside])
    print(f"  baseline RSS of recalign at D = 8: {base:.1f} MiB; NumPy inside its process: X.T@X {med([s for s, _ in inside]):.2f} s + eigh {med([e for _, e in inside]):.2f} s")
    print(f"  {'side':32s} {'wall s':>8s} {'peak MiB':>9s} {'D x D':>6s} {'/numpy wall':>11s} {'/numpy compute':>14s}")
    for k, v in res.items():
        w, r = med([x[0] for x in v]), med([x[1] for x in v])
        print(f"  {k:32s} {w:8.2f} {r:9.1f} {(r - base) / mat_mib:6.2f} {w / np_wall:11.2f} {w / np_compute:14.2f}")
    print(f"load after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
