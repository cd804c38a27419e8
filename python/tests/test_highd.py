"""The high-D pieces (MATH.md §7, issue 14) from Python: PatchBlocks and RestrictedMoments
against NumPy (blocks of Sxx, Vᵀ Sxx V, Sxx V, Vᵀ Sxy from the data), the Ritz analyses
against NumPy transcriptions (the authors' QR-of-X·v_j curve, Theorem 1's optimum, Theorem 3's
generalized eigenproblem), checkpoints and the strong guarantee. The verified sketch analyses
built on them: test_verified.py."""
import pickle

import numpy as np
import pytest

import recalign

RNG = np.random.default_rng(14)


def patch_index_sets(h, w, c, ph, pw, layout):
    """I_b of MATH.md §7 by hand: every pixel and channel of each patch (edge patches smaller)."""
    flat = np.arange(h * w * c).reshape((h, w, c) if layout == "hwc" else (c, h, w))
    sets = []
    for i in range(0, h, ph):
        for j in range(0, w, pw):
            part = flat[i:i + ph, j:j + pw, :] if layout == "hwc" else flat[:, i:i + ph, j:j + pw]
            sets.append(np.sort(part.ravel()))
    return sets


def scatter(x, center):
    x = x - x.mean(axis=0) if center == "centered" else x
    return x.T @ x


def feed(state, x, *rest, size=37):
    for lo in range(0, len(x), size):
        state.update(x[lo:lo + size], *(r[lo:lo + size] for r in rest))
    return state


@pytest.mark.parametrize("layout", ["hwc", "chw"])
def test_patch_blocks_against_numpy(layout):
    h, w, c, ph, pw = 5, 7, 2, 2, 3  # edge patches of 1 row and of 1 column
    x = RNG.normal(size=(150, h * w * c)) + 3.0
    pb = feed(recalign.PatchBlocks((h, w, c), patch=(ph, pw), layout=layout), x)
    sets = patch_index_sets(h, w, c, ph, pw, layout)
    assert pb.blocks == len(sets) and pb.values == sum(len(s) * (len(s) + 1) // 2 for s in sets) and pb.n == 150
    v = np.linalg.qr(RNG.normal(size=(h * w * c, 4)))[0]
    for center in ("uncentered", "centered"):
        s = scatter(x, center)
        bd = np.zeros_like(s)
        for b, idx in enumerate(sets):
            assert np.array_equal(pb.indices(b), idx)
            np.testing.assert_allclose(pb.block(b, center), s[np.ix_(idx, idx)], rtol=1e-12, atol=1e-9)
            bd[np.ix_(idx, idx)] = s[np.ix_(idx, idx)]
        np.testing.assert_allclose(pb.diagonal(center), np.diag(s), rtol=1e-12)
        np.testing.assert_allclose(pb.restrict_to(v, center), v.T @ bd @ v, rtol=1e-10, atol=1e-9)
    # MATH.md §7's table: Bernoulli (q, c1, c1 + c2) = (1-p, (1-p)², 1-p); fixed m = ⌊P(1-p)⌋ of P
    p, patches = 0.6, len(sets)
    np.testing.assert_allclose(pb.coefficients(f"mask:patch={ph}x{pw},ratio={p}"), (1 - p, (1 - p) ** 2, 1 - p))
    m = int(np.floor(patches * (1 - p)))
    np.testing.assert_allclose(pb.coefficients(f"mask:patch={ph}x{pw},ratio={p},scheme=fixed"),
                               (m / patches, m * (m - 1) / (patches * (patches - 1)), m / patches))
    with pytest.raises(ValueError):
        pb.coefficients("mask:patch=2x2,ratio=0.5")  # another patch size than the blocks'


def test_restricted_moments_against_numpy():
    d, k, classes = 60, 7, 4
    x = RNG.normal(size=(300, d)) * np.linspace(3, 0.1, d) + 1.0
    y = RNG.integers(0, classes, 300)
    v = RNG.normal(size=(d, k))  # any full-column-rank basis
    rm = feed(recalign.RestrictedMoments(v, classes), x, y)
    assert rm.k == k and rm.dim == d and rm.n == 300 and rm.has_labels
    onehot = np.eye(classes)[y]
    for center in ("uncentered", "centered"):
        xs = x - x.mean(axis=0) if center == "centered" else x
        ys = onehot - onehot.mean(axis=0) if center == "centered" else onehot
        s = xs.T @ xs
        st = rm.finish(center)
        assert st.n == 300 and st.k == k and st.center == center and np.array_equal(st.basis, v)
        np.testing.assert_allclose(st.vsv, v.T @ s @ v, rtol=1e-10)
        np.testing.assert_allclose(st.sv, s @ v, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(st.cross.sxy, v.T @ xs.T @ ys, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(st.cross.syy, ys.T @ ys, rtol=1e-12, atol=1e-9)
        w = RNG.normal(size=(k, 3))
        r = st.rotated(w)
        np.testing.assert_allclose(r.vsv, w.T @ v.T @ s @ v @ w, rtol=1e-9)
        np.testing.assert_allclose(r.basis, v @ w, rtol=1e-12)
    # shards merge into the one stream's statistics (Chan's rule)
    a = feed(recalign.RestrictedMoments(v, classes), x[:110], y[:110])
    b = feed(recalign.RestrictedMoments(v, classes), x[110:], y[110:])
    a.merge(b)
    np.testing.assert_allclose(a.vsv("centered"), rm.vsv("centered"), rtol=1e-11)
    with pytest.raises(ValueError):
        a.merge(recalign.RestrictedMoments(v + 1e-3, classes))  # another basis


def authors_curve(x, y, basis, classes):
    """MATH.md §8's transcription of the authors' code, uncentered, on the raw curve: q_j from a
    QR of X·v_j (nested), Σ_{j<=k} ‖Y Yᵀ q_j‖² / ‖Y Yᵀ‖² (Y: N x C one-hot)."""
    Y = np.eye(classes)[y]
    q, _ = np.linalg.qr(x @ basis)
    yyt = Y @ Y.T
    return np.cumsum(np.linalg.norm(yyt @ q, axis=0) ** 2) / np.linalg.norm(Y.T @ Y) ** 2


def test_ritz_and_basis_alignment_against_numpy():
    d, k, classes = 40, 6, 3
    x = RNG.normal(size=(200, d)) * np.linspace(2, 0.2, d)
    y = RNG.integers(0, classes, 200)
    x[:, :3] += np.eye(classes)[y] * 2.0
    v = np.linalg.qr(RNG.normal(size=(d, k)))[0]
    st = feed(recalign.RestrictedMoments(v, classes), x, y).finish()
    np.testing.assert_allclose(recalign.basis_alignment(st).curve, authors_curve(x, y, v, classes), rtol=1e-9)
    s = x.T @ x
    theta, w = np.linalg.eigh(v.T @ s @ v)
    theta, w = theta[::-1], w[:, ::-1]
    ritz = recalign.ritz_alignment(st)
    np.testing.assert_allclose(ritz.curve.eigenvalues, theta, rtol=1e-10)
    vecs = v @ w
    np.testing.assert_allclose(ritz.residuals, np.linalg.norm(s @ vecs - vecs * theta, axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ritz.curve.curve, authors_curve(x, y, vecs, classes), rtol=1e-9)
    # the noise impact between nested bases: K − ‖Q_Uᵀ Q_V‖_F²
    u2 = np.linalg.qr(RNG.normal(size=(d, 4)))[0]
    imp = recalign.basis_impact(v[:, :4], u2)
    want = [kk - np.linalg.norm(v[:, :kk].T @ u2[:, :kk]) ** 2 for kk in range(1, 5)]
    np.testing.assert_allclose(imp.distance, want, rtol=1e-9, atol=1e-12)


def test_sketched_and_ritz_denoising_against_numpy():
    """With the complete exact spectrum as the 'sketch', §7's construction is Theorem 3's
    V* (NumPy: top generalized eigenvectors of (q² Sxx², c1 Sxx + c2 Bd)); so is the Ritz
    step on the whole space (V = I)."""
    h, w, c = 6, 6, 2
    d = h * w * c
    x = RNG.normal(size=(400, d)) * np.linspace(2, 0.3, d) + 0.5
    y = RNG.integers(0, 3, 400)
    acc = feed(recalign.MomentAccumulator(d, classes=3), x, y)
    pb = feed(recalign.PatchBlocks((h, w, c), patch=(2, 2)), x)
    s = x.T @ x
    bd = np.zeros_like(s)
    for idx in patch_index_sets(h, w, c, 2, 2, "hwc"):
        bd[np.ix_(idx, idx)] = s[np.ix_(idx, idx)]
    noise = "mask:patch=2x2,ratio=0.5"
    q, c1, same = pb.coefficients(noise)
    g = c1 * s + (same - c1) * bd
    lo = np.linalg.cholesky(g)
    li = np.linalg.inv(lo)
    mu, wv = np.linalg.eigh(li @ (q * q * s @ s) @ li.T)
    want = (li.T @ wv)[:, ::-1]
    sk = recalign.sketched_denoising_subspace(acc.finish().spectrum, noise, pb)
    full = feed(recalign.RestrictedMoments(np.eye(d), 3), x, y).finish()
    rd = recalign.ritz_denoising(full, noise, pb)
    for got in (sk.basis, rd.subspace.basis):
        for kk in (1, 5, 20):
            a, b = np.linalg.qr(got[:, :kk])[0], np.linalg.qr(want[:, :kk])[0]
            assert kk - np.linalg.norm(a.T @ b) ** 2 < 1e-8, kk
    np.testing.assert_allclose(rd.subspace.eigenvalues[:20], mu[::-1][:20], rtol=1e-8)


def test_ritz_tradeoff_against_theorem_1():
    """On V = I the Ritz trade-off is Theorem 1's optimum: loss = tr Syy + λ tr Sxx − Σ top-K
    generalized eigenvalues of (Sxy Sxyᵀ + λ Sxx², Sxx) (NumPy); on a smaller span, the loss of
    the encoder returned, which is no lower."""
    d, classes, k = 30, 4, 3
    x = RNG.normal(size=(250, d)) * np.linspace(2, 0.2, d)
    y = RNG.integers(0, classes, 250)
    x[:, -4:] += np.eye(classes)[y]
    onehot = np.eye(classes)[y]
    s, sxy = x.T @ x, x.T @ onehot
    full = feed(recalign.RestrictedMoments(np.eye(d), classes), x, y).finish()
    small = feed(recalign.RestrictedMoments(np.eye(d)[:, :12], classes), x, y).finish()
    lo = np.linalg.cholesky(s)
    li = np.linalg.inv(lo)
    for lam in (0.0, 1.0, 10.0):
        mu = np.linalg.eigvalsh(li @ (sxy @ sxy.T + lam * s @ s) @ li.T)[::-1]
        best = 250.0 + lam * np.trace(s) - mu[:k].sum()
        got = recalign.ritz_tradeoff(full, np.trace(s), [lam], k).points[0]
        assert abs(got.loss - best) <= 1e-8 * best, (lam, got.loss, best)
        bound = recalign.ritz_tradeoff(small, np.trace(s), [lam], k).points[0]
        assert bound.loss >= best * (1 - 1e-12)


def test_checkpoints_and_strong_guarantee():
    x = RNG.normal(size=(80, 48))
    y = RNG.integers(0, 3, 80)
    pb = feed(recalign.PatchBlocks((4, 4, 3), patch=(2, 2)), x)
    rm = feed(recalign.RestrictedMoments(np.linalg.qr(RNG.normal(size=(48, 5)))[0], 3), x, y)
    bad = x[:5].copy()
    bad[3, 7] = np.nan
    for state, args in ((pb, ()), (rm, (y[:5],))):
        before = state.to_bytes()
        for b in (pickle.loads(pickle.dumps(state)), type(state).from_bytes(before), state.copy()):
            assert b.to_bytes() == before
        with pytest.raises(ValueError, match="row 3"):
            state.update(bad, *args)
        with pytest.raises(ValueError):
            state.update(x[:5, :40], *args)
        assert state.to_bytes() == before
        with pytest.raises(recalign.FileError):
            type(state).from_bytes(before[:-3])
    with pytest.raises(ValueError, match="out of range"):
        rm.update(x[:5], np.array([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError):
        pb.merge(recalign.PatchBlocks((4, 4, 3), patch=(1, 1)))


def test_orthonormal_extension_against_numpy():
    """orthonormal_extension (now in place, its result handed to NumPy without a copy): q's columns
    unchanged, then orthonormal columns spanning what `extra` adds, dependent ones left out; the
    array owns its memory (the inputs and a collection later it is unchanged)."""
    import gc
    rng = np.random.default_rng(8)
    q, _ = np.linalg.qr(rng.normal(size=(300, 20)))
    new = rng.normal(size=(300, 7))
    extra = np.hstack([new[:, :3], q[:, :4] @ rng.normal(size=(4, 2)), new[:, 3:]])  # 2 dependent columns
    out = recalign._recalign.orthonormal_extension(q, extra)
    assert out.shape == (300, 27) and out.flags.c_contiguous and out.flags.writeable
    assert np.array_equal(out[:, :20], q)
    assert np.max(np.abs(out.T @ out - np.eye(27))) < 1e-12
    both = np.hstack([q, new])  # the same span: the projector onto it
    p = both @ np.linalg.pinv(both)
    assert np.max(np.abs(p @ out - out)) < 1e-10 and np.linalg.matrix_rank(out) == 27
    keep = out.copy()
    del q, extra, new
    gc.collect()
    assert np.array_equal(out, keep)
    same = recalign._recalign.orthonormal_extension(keep[:, :5], keep[:, 1:3])  # nothing new
    assert np.array_equal(same, keep[:, :5])
    assert np.array_equal(recalign._recalign.orthonormal_extension(keep, np.zeros((300, 0))), keep)
    with pytest.raises(ValueError, match="different dimensions"):
        recalign._recalign.orthonormal_extension(keep, np.ones((299, 2)))
