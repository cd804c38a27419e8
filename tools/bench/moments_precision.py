"""Moments accuracy (docs/benchmarks-log.md, "The twenty-sixth session"): max abs error of
MomentAccumulator's centered Sxx (float64 rows) against a long-double two-pass reference, beside NumPy's float64 two-pass error, on Fashion-MNIST (10,000 rows / 255)
and on the same rows after an outlier first row."""
import os
import sys
import numpy as np
import recalign
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python", "tests"))
import conftest

def ref(x):
    xl = x.astype(np.longdouble)
    c = xl - xl.mean(axis=0)
    return c.T @ c

def ours(x, batch):
    acc = recalign.MomentAccumulator(x.shape[1])
    for lo in range(0, len(x), batch):
        acc.update(x[lo:lo + batch])
    return acc.sxx("centered")

images, _ = conftest._load(10000)
x = images.astype(np.float64) / 255.0
cases = {"fashion": x}
y = x.copy(); y[0] = 1e3
cases["outlier first row"] = y
for name, data in cases.items():
    r = ref(data)
    c = data - data.mean(axis=0)
    npe = float(np.max(np.abs(c.T @ c - r)))
    scale = float(np.max(np.abs(r)))
    print(f"{name}: max |Sxx| {scale:.3g}; numpy two-pass error {npe:.3g}")
    for b in (250, 1000, 10000):
        e = float(np.max(np.abs(ours(data, b) - r)))
        print(f"  batch {b:5d}: recalign error {e:.3g}  ({e / npe:.2f}x numpy's)")

# Run: PYTHONPATH=build/python /usr/bin/python3 tools/bench/moments_precision.py
