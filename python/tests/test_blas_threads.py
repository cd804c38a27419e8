"""Bit-identity whatever OpenBLAS's thread count (issue 16 item 6): the same stream fed to a
MonteCarloNoise, a tracker with a Monte-Carlo noise and a MomentAccumulator in two processes,
one with OPENBLAS_NUM_THREADS=1 and one with 2, ends in the same state bytes. Real-valued
data (integer pixels would make every product exact and hide rounding); sizes where
OpenBLAS's threaded dgemm rounds differently from its single-threaded one.

Both processes run OpenBLAS's Haswell kernels (OPENBLAS_CORETYPE=Haswell), the ones the
property was established on: with its SkylakeX kernels (the default on AVX-512 machines)
dsyrk itself rounds differently with 1 and 2 threads (measured: NumPy's X.T @ X of 350 x 197),
so there the MomentAccumulator's and the tracker's bytes differ too (README, "Bit-identity
across processes")."""
import os
import subprocess
import sys

CHILD = r"""
import hashlib, sys
import numpy as np
import recalign
rng = np.random.default_rng(5)
x = rng.standard_normal((700, 196))
labels = rng.integers(0, 10, 700).astype(np.uint8)
mc = recalign.MonteCarloNoise(196, "gaussian:sigma=0.5,draws=4,seed=2", replicates=2)
tracker = recalign.AlignmentTracker(196, 10, shape=(14, 14), noises=["dropout:ratio=0.3,draws=2,seed=11"])
acc = recalign.MomentAccumulator(196)
for lo in range(0, 700, 350):
    mc.update(x[lo:lo + 350], first_row=lo)
    tracker.update(x[lo:lo + 350], labels[lo:lo + 350], first_row=lo)
    acc.update(x[lo:lo + 350], first_row=lo)
for state in (mc, tracker, acc):
    print(type(state).__name__, hashlib.sha256(state.to_bytes()).hexdigest())
"""


def run(threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS="1", OPENBLAS_CORETYPE="Haswell")
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split("\n")


def test_state_bytes_do_not_depend_on_openblas_threads():
    one, two = run(1), run(2)
    assert len(one) >= 3 and one == two, (one, two)
