"""OpenBLAS's AVX2 (Haswell) kernels against its AVX-512 (SkylakeX) ones on the shapes recalign
runs (BENCHMARKS.md, "Machines"): on an AVX-512 CPU OpenBLAS picks AVX-512 kernels by itself,
but an environment may force others (the Zen 5 VM's sets OPENBLAS_CORETYPE=Haswell for every
process, so its CI and its users run the AVX2 kernels). Each kernel set runs in a process of its own
(OPENBLAS_CORETYPE is read once, when OpenBLAS loads), the two alternating --rounds times; each
figure is the best of --reps calls in a process, and the table gives the median over rounds.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/bench/bench_blas_kernels.py [--rounds 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

KERNELS = ("Haswell", "SkylakeX")


def child(reps):
    import numpy as np
    import scipy.linalg as sl
    rng = np.random.default_rng(0)

    def best(f, n=reps):
        t = []
        for _ in range(n):
            s = time.perf_counter()
            f()
            t.append(time.perf_counter() - s)
        return min(t)

    out = {}
    d, b, w = 150528, 500, 120  # Nystrom's update at 224x224x3: X_b Omega, then X_b^T (X_b Omega)
    for name, dt in (("f64", np.float64), ("f32", np.float32)):
        x = rng.standard_normal((b, d)).astype(dt)
        om = rng.standard_normal((d, w)).astype(dt)
        y = x @ om
        out[f"Nystrom update GEMMs {name} (GFLOP/s)"] = 4 * b * d * w / best(lambda: (x @ om, x.T @ y)) / 1e9
        del x, om, y
    for dim in (784, 4096):  # the moment update: a 1,000-row DSYRK
        x = rng.standard_normal((1000, dim))
        out[f"DSYRK 1000 rows, D = {dim} (GFLOP/s)"] = 1000 * dim * dim / best(lambda: x.T @ x) / 1e9
    s = rng.standard_normal((4096, 4096))
    out["DGEMM 4096^3 (GFLOP/s)"] = 2 * 4096**3 / best(lambda: s @ s, 2) / 1e9
    a = s[:2048, :2048] + s[:2048, :2048].T
    out["dsyevd 2048 (s)"] = best(lambda: sl.eigh(a, driver="evd"), 2)
    g = rng.standard_normal((410, 784)).astype(np.float32)
    g = g @ g.T
    out["ssyevd 410, FD's shrink at l = 205 (ms)"] = 1e3 * best(lambda: sl.eigh(g, driver="evd"), 10)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--child", action="store_true")
    a = ap.parse_args()
    if a.child:
        return child(a.reps)
    runs = {k: [] for k in KERNELS}
    for r in range(a.rounds):
        for k in (KERNELS if r % 2 == 0 else KERNELS[::-1]):
            env = dict(os.environ, OPENBLAS_CORETYPE=k)
            p = subprocess.run([sys.executable, __file__, "--child", "--reps", str(a.reps)], env=env,
                               capture_output=True, text=True, check=True)
            runs[k].append(json.loads(p.stdout))
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}, {a.rounds} rounds, "
          f"load {os.getloadavg()[0]:.2f} at the end")
    print(f"| shape | {KERNELS[0]} | {KERNELS[1]} | {KERNELS[1]} / {KERNELS[0]} (speed) |")
    print("|---|---:|---:|---:|")
    for key in runs[KERNELS[0]][0]:
        m = [statistics.median(r[key] for r in runs[k]) for k in KERNELS]
        speed = m[1] / m[0] if "GFLOP" in key else m[0] / m[1]
        print(f"| {key} | {m[0]:.2f} | {m[1]:.2f} | {speed:.2f}x |")


if __name__ == "__main__":
    main()
