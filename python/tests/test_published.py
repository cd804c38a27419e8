"""finish("inputs") and measure="published" (MATH.md §8) against NumPy: inputs centered, the
one-hot targets raw, 100·sqrt of the rank-normalised, Syy-weighted fit."""
import numpy as np

import recalign


def test_published_curve_matches_numpy(fashion):
    images, labels = fashion
    x = images[:1000].astype(np.float64) / 255.0
    y = labels[:1000].astype(np.int64)
    acc = recalign.MomentAccumulator(784, classes=10)
    acc.update(x, y)
    s = acc.finish("inputs")
    r = recalign.alignment_curve(s, measure="published")
    xc = x - x.mean(0)
    yo = np.eye(10)[y]                       # raw one-hot targets
    lam, u = np.linalg.eigh(xc.T @ xc)
    lam, u = lam[::-1], u[:, ::-1]
    keep = lam > 1e-12 * lam[0]
    a = u.T @ (xc.T @ yo)                    # a_i = Sxyᵀ u_i
    contrib = np.where(keep, np.einsum("ic,cd,id->i", a, yo.T @ yo, a) / np.where(keep, lam, 1), 0.0)
    expected = 100 * np.sqrt(np.cumsum(contrib) / contrib.sum())
    np.testing.assert_allclose(r.curve, expected, rtol=0, atol=1e-7)
    assert r.measure == "published"
    # the tracker takes the same centering
    t = recalign.AlignmentTracker(784, 10, measure="published", center="inputs")
    t.update(x, y)
    np.testing.assert_allclose(t.report().clean.curve, r.curve, rtol=0, atol=1e-10)
