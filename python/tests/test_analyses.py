"""Analyses from Python against NumPy oracles written from the paper: the Section 6.8
alignment sweep, the Theorem 1 trade-off, noise expectations, Theorem 3 denoising, noise
impact, sketches and subspace projections, on Fashion-MNIST subsets."""
import pickle

import numpy as np
import pytest

import recalign
from conftest import batches

N = 1500


def alignment_sweep(X, Y):
    """The paper's Section 6.8 code (column-major X: D x N, Y: C x N), verbatim in NumPy."""
    U, S, Vh = np.linalg.svd(X, full_matrices=False)
    denom = np.square(np.linalg.norm(Y @ Y.T))
    numer = np.linalg.norm(np.linalg.multi_dot([Y.T, Y, Vh.T]), axis=0) ** 2
    return np.cumsum(numer) / denom, S, Vh


@pytest.fixture(scope="module")
def subset(fashion):
    images, labels = fashion
    x = images[:N] / 255.0
    y = labels[:N]
    acc = recalign.MomentAccumulator(784, classes=10)
    for lo, hi in batches(x, 128):
        acc.update(x[lo:hi], y[lo:hi])
    return x, y, acc


@pytest.mark.parametrize("center", ["uncentered", "centered"])
def test_alignment_curve_equals_paper_procedure(subset, center):
    x, labels, acc = subset
    X, Y = x.T, np.eye(10)[labels].T
    if center == "centered":
        X = X - X.mean(axis=1, keepdims=True)
        Y = Y - Y.mean(axis=1, keepdims=True)
    paper, S, Vh = alignment_sweep(X, Y)
    lam = S ** 2
    rank = int(np.sum(lam > 1e-12 * lam[0]))
    fit = np.cumsum(np.linalg.norm(Y @ Vh.T, axis=0) ** 2) / np.linalg.norm(Y) ** 2
    for measure, want in (("paper", paper), ("fit", fit), ("rank", paper / paper[rank - 1])):
        r = recalign.alignment_curve(acc.finish(center), measure=measure)
        assert r.measure == measure and r.center == center and r.n == N and r.dim == 784 and r.classes == 10
        assert r.curve.shape == (784,) and r.skipped == 784 - rank
        err = np.max(np.abs(r.curve[:rank] - want[:rank]) / np.abs(want[:rank]))
        assert err < 1e-9, (measure, err)
        assert np.max(np.abs(r.eigenvalues[:rank] - lam[:rank])) / lam[0] < 1e-12
    # the same from statistics assembled from an explicit spectrum and cross moments
    stats = acc.finish(center)
    assert stats.method == "exact" and stats.center == center and stats.provides("full_spectrum")
    spec = recalign.exact_spectrum(acc, center)
    parts = recalign.make_statistics(spec, acc.mean_x(), acc.cross(center))
    assert not parts.provides("second_moment") and parts.second_moment is None
    r2 = recalign.alignment_curve(parts, measure="paper")
    assert np.array_equal(r2.curve, recalign.alignment_curve(stats, measure="paper").curve)
    with pytest.raises(ValueError, match="centered"):
        recalign.make_statistics(spec, acc.mean_x(), acc.cross("centered" if center == "uncentered" else "uncentered"))
    with pytest.raises(ValueError, match="nonsense"):
        recalign.alignment_curve(stats, measure="nonsense")
    with pytest.raises(TypeError):
        recalign.alignment_curve(acc)  # analyses read finished statistics, not an accumulator
    top = acc.finish(center, top=5)  # the subset solver: the top 5 eigenpairs only
    assert top.spectrum.rank == 5 and not top.provides("full_spectrum")
    np.testing.assert_allclose(top.spectrum.eigenvalues, stats.spectrum.eigenvalues[:5], rtol=1e-12)
    np.testing.assert_allclose(recalign.alignment_curve(top).curve, recalign.alignment_curve(stats).curve[:5], rtol=1e-10)


def test_tradeoff_losses_match_the_data(subset):
    x, labels, acc = subset
    X, Y = x.T, np.eye(10)[labels].T  # the paper's uncentered D x N, C x N
    res = recalign.tradeoff(acc.finish(), [0.0, 0.1, 10.0], k=5)
    assert res.k == 5 and len(res.points) == 3
    for p in res.points:
        V, W, Z = p.v, p.w, p.z
        assert V.shape == (784, 5) and W.shape == (5, 10) and Z.shape == (5, 784)
        H = V.T @ X
        sup = np.linalg.norm(W.T @ H - Y) ** 2
        recon = np.linalg.norm(Z.T @ H - X) ** 2
        assert abs(sup - p.supervised_loss) <= 1e-8 * np.linalg.norm(Y) ** 2
        assert abs(recon - p.reconstruction_loss) <= 1e-8 * np.linalg.norm(X) ** 2
        assert abs(p.loss - (p.supervised_loss + p.lambda_ * p.reconstruction_loss)) <= 1e-9 * max(1.0, p.loss)
        np.testing.assert_allclose(V.T @ (X @ X.T) @ V, np.eye(5), atol=1e-8)  # Sxx-orthonormal
    # λ trades supervision for reconstruction
    assert res.points[0].supervised_loss <= res.points[2].supervised_loss
    assert res.points[0].reconstruction_loss >= res.points[2].reconstruction_loss
    with pytest.raises(ValueError):
        recalign.tradeoff(acc.finish(), [-1.0], k=5)


def test_noise_expectations_denoising_and_impact(subset):
    x, labels, acc = subset
    sxx = x.T @ x
    g = recalign.closed_form_noise("gaussian:sigma=0.3", acc)
    assert g.n == N
    np.testing.assert_allclose(g.bs, sxx, rtol=0, atol=1e-10 * np.abs(sxx).max())
    np.testing.assert_allclose(g.g, sxx + N * 0.09 * np.eye(784), rtol=0, atol=1e-10 * np.abs(sxx).max())
    drop = recalign.closed_form_noise(recalign.NoiseSpec("dropout:ratio=0.25"), acc)
    want_g = 0.75 ** 2 * sxx + (0.75 - 0.75 ** 2) * np.diag(np.diag(sxx))
    np.testing.assert_allclose(drop.bs, 0.75 * sxx, atol=1e-10 * np.abs(sxx).max())
    np.testing.assert_allclose(drop.g, want_g, atol=1e-10 * np.abs(sxx).max())

    # Gaussian noise keeps the principal directions: V* = U, no change of alignment or impact
    clean = acc.finish()
    d = recalign.denoising_alignment(clean, g)
    k = min(50, d.max_k)
    np.testing.assert_allclose(d.curve[:k], d.clean_curve[:k], rtol=1e-7)
    imp = recalign.noise_impact(clean, g)
    assert np.max(imp.normalised[:k]) < 1e-6
    # masking large patches does move the subspace
    mask = recalign.closed_form_noise("mask:patch=7x7,ratio=0.5,scheme=fixed", acc, shape=(28, 28))
    imp_mask = recalign.noise_impact(clean, mask)
    assert np.max(imp_mask.normalised[:k]) > 1e-3
    sub = recalign.denoising_subspace(mask)
    assert sub.basis.shape[0] == 784 and sub.status == "converged"
    # V* is G-orthonormal
    vg = sub.basis[:, :20]
    np.testing.assert_allclose(vg.T @ mask.g @ vg, np.eye(20), atol=1e-8)


def test_monte_carlo_noise_shards_and_pickle(subset):
    x, _, acc = subset
    spec = "dropout:ratio=0.25,draws=8,seed=3"
    whole = recalign.MonteCarloNoise(784, spec, replicates=2)
    a = recalign.MonteCarloNoise(784, spec, replicates=2)
    b = recalign.MonteCarloNoise(784, spec, replicates=2)
    for lo, hi in batches(x[:400], 100):
        whole.update(x[lo:hi], first_row=lo)
        (a if lo < 200 else b).update(x[lo:hi], first_row=lo)
    a = pickle.loads(pickle.dumps(a))
    a.merge(pickle.loads(pickle.dumps(b)))
    ew, ea = whole.estimate(), a.estimate()
    scale = np.abs(ew["moments"].g).max()
    assert np.max(np.abs(ew["moments"].g - ea["moments"].g)) < 1e-12 * scale
    # the estimate agrees with the closed form within a few standard errors
    sub = recalign.MomentAccumulator(784)
    sub.update(x[:400])
    cf = recalign.closed_form_noise("dropout:ratio=0.25", sub, center="uncentered")
    assert np.linalg.norm(ew["moments"].g - cf.g) < 6 * ew["g_stderr_fro"]
    with pytest.raises(ValueError):
        recalign.MonteCarloNoise(784, "dropout:ratio=0.25")  # no draws
    c = recalign.MonteCarloNoise.from_bytes(whole.to_bytes(), spec)
    assert c.to_bytes() == whole.to_bytes()
    with pytest.raises(ValueError):
        recalign.MonteCarloNoise.from_bytes(whole.to_bytes(), "dropout:ratio=0.5,draws=8,seed=3")


def test_monte_carlo_noise_draws_and_seed_keywords_and_files(subset, tmp_path):
    """draws= and seed= fill what the spec leaves unset (the state is the one the full spec
    gives, bit for bit), a contradiction is refused, and save/load round-trips the state."""
    x, _, _ = subset
    full = recalign.MonteCarloNoise(784, "dropout:ratio=0.25,draws=4,seed=9")
    keywords = recalign.MonteCarloNoise(784, "dropout:ratio=0.25", draws=4, seed=9)
    other_seed = recalign.MonteCarloNoise(784, "dropout:ratio=0.25", draws=4, seed=10)
    for m in (full, keywords, other_seed):
        m.update(x[:200])
    assert keywords.name == full.name and str(keywords.spec) == str(full.spec)
    assert keywords.to_bytes() == full.to_bytes()
    assert other_seed.to_bytes() != full.to_bytes()
    with pytest.raises(ValueError, match="merge|name|configuration|seed"):
        full.merge(other_seed)
    with pytest.raises(ValueError, match="draws=4 but draws=8"):
        recalign.MonteCarloNoise(784, "dropout:ratio=0.25,draws=4", draws=8)
    with pytest.raises(ValueError, match="seed=9 but seed=1"):
        recalign.MonteCarloNoise(784, "dropout:ratio=0.25,draws=4,seed=9", seed=1)
    path = str(tmp_path / "mc.ckpt")
    full.save(path)
    back = recalign.MonteCarloNoise.load(path, "dropout:ratio=0.25,draws=4,seed=9")
    assert back.to_bytes() == full.to_bytes()
    back.update(x[200:300])  # the corruption came back with the spec
    assert back.n == 300
    with open(path, "r+b") as f:
        f.write(b"\0" * 80)
    with pytest.raises(recalign.FileError, match="mc.ckpt"):
        recalign.MonteCarloNoise.load(path, "dropout:ratio=0.25,draws=4,seed=9")


def test_sketches_against_exact_spectrum(subset):
    x, y, acc = subset
    exact = recalign.exact_spectrum(acc, "centered")
    fd = recalign.FrequentDirections(784, 40)
    ny = recalign.NystromSketch(784, rank=20, oversampling=10, seed=5)
    for lo, hi in batches(x, 100):
        fd.update(x[lo:hi])
        ny.update(x[lo:hi])
    fd = pickle.loads(pickle.dumps(fd))
    s = fd.spectrum()
    assert s.method == "fd" and s.rank <= 40
    k = 10
    gap = exact.eigenvalues[:k] - s.eigenvalues[:k]
    assert np.all(gap >= -1e-8 * exact.eigenvalues[0]) and np.all(gap <= s.error_bound * (1 + 1e-9))
    assert abs(s.total - exact.total) < 1e-9 * exact.total
    ny2 = pickle.loads(pickle.dumps(ny))
    assert ny2.to_bytes() == ny.to_bytes()
    ny.next_pass()
    for lo, hi in batches(x, 100):
        ny.update(x[lo:hi])
    t = ny.spectrum()
    assert t.method == "nystrom" and ny.pass_index == 1
    # Two passes at rank 20 + 10: over 40 seeds the worst relative error of the top 5 was
    # 1.6e-3 with a Gaussian test matrix and 2.4e-3 with signs (medians 6.8e-4 and 6.3e-4).
    np.testing.assert_allclose(t.eigenvalues[:5], exact.eigenvalues[:5], rtol=3e-3)
    # the float32 kernels: same sketch to single-precision rounding, and they merge
    n32 = recalign.NystromSketch(784, rank=20, oversampling=10, seed=5, float32_kernels=True)
    n64 = recalign.NystromSketch(784, rank=20, oversampling=10, seed=5)
    x32 = x.astype(np.float32)
    n32.update(x32[:700])
    n64.update(x32[:700])
    r32, r64 = n32.range(), n64.range()
    assert np.max(np.abs(r32 - r64)) < 1e-4 * np.max(np.abs(r64))
    n32.merge(n64)
    assert n32.n == 1400
    bad = x[:10].copy()
    bad[4, 4] = np.nan
    before = fd.to_bytes()
    with pytest.raises(ValueError, match=r"row 4\b"):
        fd.update(bad)
    assert fd.to_bytes() == before
    # alignment on a sketch's spectrum, up to its rank
    r = recalign.alignment_curve(recalign.make_statistics(s, fd.mean(), acc.cross("centered")), measure="fit")
    assert r.method == "fd" and r.max_k <= 40 and not r.complete
    # the same through finish(labels): the sketch's eigenpairs, the labels' exact Sxy, Syy
    labels = recalign.ClassMoments(784, 10)
    for lo in range(0, len(x), 500):
        labels.update(x[lo:lo + 500], y[lo:lo + 500])
    st = fd.finish(labels)
    assert st.method == "fd" and not st.provides("full_spectrum") and st.provides("targets")
    np.testing.assert_allclose(recalign.alignment_curve(st, measure="fit").curve[:5], r.curve[:5], rtol=1e-10)
    with pytest.raises(ValueError, match="complete spectrum"):
        recalign.tradeoff(st, [1.0], k=2)
    assert recalign.alignment_curve(acc.finish("centered"), measure="fit").complete


def test_subspace_projection_and_transform(subset):
    x, _, acc = subset
    spec = recalign.exact_spectrum(acc, "centered")
    mu = acc.mean_x()
    top = recalign.SubspaceProjector(spec, mu, 0.75, "top")
    bottom = recalign.SubspaceProjector(spec, mu, 0.75, "bottom")
    k = top.k
    assert k == spec.k_for_fraction(0.75) and top.explained >= 0.75
    U = spec.basis[:, :k]
    xs = x[:64]
    want_top = (xs - mu) @ U @ U.T + mu
    np.testing.assert_allclose(top.project(xs), want_top, atol=1e-12)
    np.testing.assert_allclose(top.project(xs) + bottom.project(xs), xs + mu, atol=1e-12)
    t = recalign.ProjectionTransform.from_moments(acc, fraction=0.75, part="bottom")
    t2 = pickle.loads(pickle.dumps(t))
    one = xs[3].reshape(1, 28, 28).astype(np.float32)
    out = t2(one)
    assert out.shape == (1, 28, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out.reshape(-1), bottom.project(xs[3:4]).reshape(-1), atol=1e-6)
    with pytest.raises(ValueError):
        t(np.zeros(783))


def test_monte_carlo_noise_with_a_python_corruption(subset):
    import _workers
    x, _, _ = subset
    x = x[:, ::4].copy()  # 196 columns keep it quick
    make = lambda: recalign.MonteCarloNoise(196, corrupt=_workers.python_dropout, draws=6, seed=9, name="py-dropout")
    whole = make()
    for lo, hi in batches(x[:600], 100):
        whole.update(x[lo:hi])
    assert whole.spec is None and whole.name == "py-dropout" and whole.n == 600
    half = make()
    for lo, hi in batches(x[:300], 100):
        half.update(x[lo:hi])
    resumed = pickle.loads(pickle.dumps(half))  # the function travels by reference
    for lo, hi in batches(x[300:600], 100):
        resumed.update(x[300 + lo:300 + hi])
    assert resumed.to_bytes() == whole.to_bytes()
    # agrees with the closed form of the same model within a few standard errors
    acc = recalign.MomentAccumulator(196)
    acc.update(x[:600])
    cf = recalign.closed_form_noise("dropout:ratio=0.25", acc)
    est = whole.estimate()
    assert np.linalg.norm(est["moments"].g - cf.g) < 6 * est["g_stderr_fro"]
    assert np.linalg.norm(est["moments"].bs - cf.bs) < 6 * est["bs_stderr_fro"]
    # a corruption that raises: ValueError with its message, state unchanged
    bad = recalign.MonteCarloNoise(196, corrupt=_workers.failing_corruption, draws=2, name="flaky")
    bad.update(x[:200])
    before = bad.to_bytes()
    with pytest.raises(ValueError, match="sensor offline"):
        bad.update(x[200:300])
    assert bad.to_bytes() == before
    wrong = recalign.MonteCarloNoise(196, corrupt=lambda c, k: c[:, :10], draws=2, name="wrong")
    with pytest.raises(ValueError, match="shape"):
        wrong.update(x[:10])
    assert wrong.n == 0
    # a state without its function merges but cannot update
    bare = recalign.MonteCarloNoise.from_bytes(whole.to_bytes())
    with pytest.raises(RuntimeError, match="corruption"):
        bare.update(x[:10])
    other = make()
    other.update(x[600:700], first_row=600)
    bare.merge(other)
    assert bare.n == 700
    with pytest.raises(ValueError):
        bare.merge(recalign.MonteCarloNoise(196, corrupt=_workers.python_dropout, draws=6, seed=9, name="other"))


def test_sparse_sign_sketch_against_exact_spectrum(subset):
    """test='sparse': the sparse sign Ω (8 entries ±1 a row). Two passes as accurate as the dense
    signs' bound above; its test matrix really is sparse; it round-trips, and refuses to merge
    with a dense one or to run where D is too small for it."""
    x, _, acc = subset
    exact = recalign.exact_spectrum(acc, "centered")
    ny = recalign.NystromSketch(784, rank=20, oversampling=10, seed=5, test="sparse")
    for lo, hi in batches(x, 100):
        ny.update(x[lo:hi])
    assert ny.test == "sparse" and recalign.NystromSketch(784, rank=20).test == "signs"
    t = ny.test_matrix()
    assert np.all(np.count_nonzero(t[:, :30], axis=1) == 8) and set(np.unique(t[:, :30])) == {-1.0, 0.0, 1.0}
    assert np.all(np.abs(t[:, 30:]) == 1.0)  # the probes stay dense signs
    assert pickle.loads(pickle.dumps(ny)).to_bytes() == ny.to_bytes()
    dense = recalign.NystromSketch(784, rank=20, oversampling=10, seed=5)
    dense.update(x[:100])
    with pytest.raises(ValueError, match="test matrix.*sparse signs.*signs"):
        ny.merge(dense)
    ny.next_pass()
    for lo, hi in batches(x, 100):
        ny.update(x[lo:hi])
    np.testing.assert_allclose(ny.spectrum().eigenvalues[:5], exact.eigenvalues[:5], rtol=3e-3)
    with pytest.raises(ValueError, match="sparse sign test matrix needs"):
        recalign.NystromSketch(784, rank=700, oversampling=10, test="sparse")
