"""recalign.sklearn against scikit-learn: its estimator checks (check_estimator, every check,
none skipped), its PCA / IncrementalPCA attributes on Fashion-MNIST, and the paper's
alignment sweep (NumPy transcription) for AlignmentCurve. The ported IncrementalPCA suite is
test_sklearn_ipca.py."""
import pickle
import warnings

import numpy as np
import pytest
from sklearn.decomposition import PCA, IncrementalPCA
from sklearn.utils.estimator_checks import parametrize_with_checks

import recalign
from recalign.sklearn import AlignmentCurve, PrecisionWarning, StreamingPCA
from test_analyses import alignment_sweep

ESTIMATORS = [StreamingPCA(), StreamingPCA(whiten=True), StreamingPCA(n_components=1, method="fd"),
              StreamingPCA(n_components=1, method="nystrom"), StreamingPCA(n_components=1, method="fd", verify=False),
              AlignmentCurve(), AlignmentCurve(method="fd", rank=1), AlignmentCurve(method="nystrom", rank=1)]


@parametrize_with_checks(ESTIMATORS)
def test_check_estimator(estimator, check):
    # The checks feed tiny or rank-deficient data on purpose: their trailing components are
    # flagged (PrecisionWarning), which is right and not what the checks are about.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        check(estimator)


@pytest.fixture(scope="module")
def pixels(fashion):
    images, labels = fashion
    return images[:2000] / 255.0, labels[:2000]


def test_exact_matches_incremental_pca(pixels):
    # One batch: IncrementalPCA is then an exact SVD with the same sign convention
    # (svd_flip(u_based_decision=False): largest entry of each component positive).
    x, _ = pixels
    k = 20
    ref = IncrementalPCA(n_components=k, batch_size=len(x)).fit(x)
    pca = PCA(n_components=k, svd_solver="full").fit(x)
    got = StreamingPCA(k, batch_size=300).fit(x)
    assert got.n_samples_seen_ == len(x) and got.n_components_ == k and got.imprecise_components_ == 0
    np.testing.assert_allclose(got.components_, ref.components_, atol=1e-9)
    for name in ("explained_variance_", "explained_variance_ratio_", "singular_values_", "mean_", "var_"):
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-10, atol=1e-13, err_msg=name)
    assert got.noise_variance_ == pytest.approx(pca.noise_variance_, rel=1e-9)
    np.testing.assert_allclose(got.transform(x[:50]), ref.transform(x[:50]), atol=1e-9)
    np.testing.assert_allclose(got.inverse_transform(got.transform(x[:50])), ref.inverse_transform(ref.transform(x[:50])),
                               atol=1e-9)
    # uint8 read in place gives the same state as its float64 copy (up to the 1/255 scale)
    raw = StreamingPCA(k).fit((x * 255).round().astype(np.uint8))
    np.testing.assert_allclose(raw.explained_variance_, got.explained_variance_ * 255**2, rtol=1e-10)
    # pickled mid-stream and continued
    half = pickle.loads(pickle.dumps(StreamingPCA(k).partial_fit(x[:1000])))
    half.partial_fit(x[1000:])
    np.testing.assert_allclose(half.components_, got.components_, atol=1e-9)
    again = pickle.loads(pickle.dumps(half))  # after the attributes were computed
    np.testing.assert_array_equal(again.components_, half.components_)
    assert again.spectrum_.n == len(x)


@pytest.mark.parametrize("method", ["fd", "nystrom"])
def test_sketch_routes(pixels, method):
    x, _ = pixels
    k = 10
    ref = PCA(n_components=k, svd_solver="full").fit(x)
    kwargs = {"sketch_size": 60} if method == "fd" else {"oversampling": 20, "passes": 2}
    got = StreamingPCA(k, method=method, batch_size=256, **kwargs).fit(x)
    spec = got.spectrum_
    assert spec.method == method and got.n_samples_seen_ == len(x)
    # exact per route: mean, per-feature variance (O(D) Chan merge), the trace in the ratio
    np.testing.assert_allclose(got.mean_, x.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(got.var_, x.var(axis=0), rtol=1e-10, atol=1e-13)
    assert spec.total == pytest.approx(np.sum(x.var(axis=0)) * len(x), rel=1e-10)
    # the eigenvalues within the route's own error information
    lam = ref.singular_values_ ** 2
    bound = spec.error_bound if method == "fd" else 10 * spec.error_estimate
    assert np.all(np.abs(got.singular_values_ ** 2 - lam) <= bound + 1e-9 * lam[0])
    assert np.all(got.singular_values_ ** 2 <= lam * (1 + 1e-12))  # both routes underestimate
    # the top components agree (up to sign, fixed by the same convention)
    assert np.abs(np.sum(got.components_[:3] * ref.components_[:3], axis=1)).min() > 0.99


@pytest.mark.parametrize("method", ["fd", "nystrom"])
def test_verified_sketch_attributes_are_exact_for_the_components(pixels, method):
    """fit() on a sketch route reads X once more (verify=True): explained_variance_ is then the
    exact sample variance along each returned component (NumPy's c^T S c / (n - 1)), never above
    PCA's, and noise_variance_ the exact mean variance left outside them; verify=False and
    partial_fit keep the sketch's own estimates, labelled by spectrum_.ritz."""
    x, _ = pixels
    k, n = 10, len(x)
    kwargs = {"sketch_size": 30} if method == "fd" else {"oversampling": 5}
    ref = PCA(n_components=k, svd_solver="full").fit(x)
    got = StreamingPCA(k, method=method, batch_size=256, **kwargs).fit(x)
    est = StreamingPCA(k, method=method, batch_size=256, verify=False, **kwargs).fit(x)
    assert got.spectrum_.ritz and got.spectrum_.values_exact and isinstance(got.verification_, recalign.RestrictedMoments)
    assert not est.spectrum_.ritz and "verification_" not in est.__dict__
    xc = x - x.mean(axis=0)
    along = np.sum((xc @ got.components_.T) ** 2, axis=0) / (n - 1)  # the variance along each component
    np.testing.assert_allclose(got.explained_variance_, along, rtol=1e-9)
    np.testing.assert_allclose(got.components_ @ got.components_.T, np.eye(k), atol=1e-10)
    assert np.all(got.explained_variance_ <= ref.explained_variance_ * (1 + 1e-12))  # Cauchy interlacing
    total = np.sum(xc ** 2) / (n - 1)
    assert got.noise_variance_ == pytest.approx((total - along.sum()) / (min(n, x.shape[1]) - k), rel=1e-9)
    np.testing.assert_allclose(got.explained_variance_ratio_, along / total, rtol=1e-9)
    # The sketch's own estimates are further from PCA's; the verified values are nearer (not inflated).
    err = lambda m: np.max(np.abs(m.explained_variance_ - ref.explained_variance_) / ref.explained_variance_)  # noqa: E731
    assert err(got) < err(est)
    if method == "fd":  # FD's estimates are biased low: the Ritz values are above them
        assert np.all(got.explained_variance_ >= est.explained_variance_ * (1 - 1e-12))
    # A later partial_fit has rows the verification pass did not read: estimates again.
    more = pickle.loads(pickle.dumps(got)).partial_fit(x[:100])
    assert not more.spectrum_.ritz and "verification_" not in more.__dict__ and more.n_samples_seen_ == n + 100
    with pytest.raises(ValueError, match="verify"):
        StreamingPCA(k, method=method, verify="yes", **kwargs).fit(x)


def test_verify_after_partial_fit(pixels):
    """Streaming with partial_fit, then verify_pass(batches): the attributes fit() gives, exact for the
    components; other rows (another count, or the same count with another mean) are refused and
    change nothing."""
    x, labels = pixels
    k = 10
    batches = [x[i:i + 250] for i in range(0, len(x), 250)]
    whole = StreamingPCA(k, method="fd", batch_size=250).fit(x)
    pca = StreamingPCA(k, method="fd")
    for b in batches:
        pca.partial_fit(b)
    assert not pca.spectrum_.ritz
    with pytest.raises(ValueError, match="read 1750 rows, but the state has seen 2000"):
        pca.verify_pass(batches[1:])
    with pytest.raises(ValueError, match="not those the state has seen"):
        pca.verify_pass([x[::-1][i:i + 250] * 1.01 for i in range(0, len(x), 250)])
    assert not pca.spectrum_.ritz and "verification_" not in pca.__dict__
    before = pca.explained_variance_.copy()
    assert pca.verify_pass([(b, labels[:len(b)]) for b in batches]) is pca  # (X, y) batches: X is read
    assert pca.spectrum_.ritz
    np.testing.assert_array_equal(pca.components_, whole.components_)
    np.testing.assert_array_equal(pca.explained_variance_, whole.explained_variance_)
    assert np.all(pca.explained_variance_ >= before * (1 - 1e-12))  # FD's estimates were low
    exact = StreamingPCA(k).partial_fit(x)
    assert exact.verify_pass(batches) is exact and not exact.spectrum_.ritz  # nothing to verify


def test_nystrom_passes_default_to_block_krylov(pixels):
    """passes >= 2 on nystrom: block Krylov by default (the CLI's; krylov=False: subspace
    iteration). Its components capture more of the top-k variance (NumPy's c^T S c), at the
    same seed and passes."""
    x, _ = pixels
    k = 10
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / (len(x) - 1)
    top = np.sum(np.linalg.eigvalsh(s)[::-1][:k])
    short = {}
    for krylov in (True, False):
        m = StreamingPCA(k, method="nystrom", passes=2, batch_size=256, krylov=krylov).fit(x)
        short[krylov] = (top - np.einsum("ij,jk,ik->", m.components_, s, m.components_)) / top
        assert m.n_passes_ == 2 and short[krylov] >= -1e-12  # never above the true top-k sum
    assert short[True] < 0.5 * short[False], short
    with pytest.raises(ValueError, match="krylov"):
        StreamingPCA(k, method="nystrom", passes=2, krylov=None).fit(x)


def test_nystrom_sparse_test_matrix(pixels):
    """test_matrix="sparse" (the CLI's --test-matrix sparse): the sketch takes the sparse signs,
    its components capture the top-k variance about as well as the dense signs' (NumPy's
    c^T S c, one pass and two), verified components stay exact (never above the true sum);
    refused with method="exact"/"fd" and for an unknown value, before the state exists."""
    x, _ = pixels
    k = 10
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / (len(x) - 1)
    top = np.sum(np.linalg.eigvalsh(s)[::-1][:k])
    for passes in (1, 2):
        short = {}
        for test in ("signs", "sparse"):
            m = StreamingPCA(k, method="nystrom", passes=passes, batch_size=256, test_matrix=test).fit(x)
            assert m.state_.test == test
            short[test] = (top - np.einsum("ij,jk,ik->", m.components_, s, m.components_)) / top
            assert short[test] >= -1e-12  # verified: never above the true top-k sum
        assert short["sparse"] < 2 * short["signs"] + 1e-3, (passes, short)
    for bad in (dict(method="fd", test_matrix="sparse"), dict(method="exact", test_matrix="sparse"),
                dict(method="nystrom", test_matrix="dense")):
        est = StreamingPCA(k, **bad)
        with pytest.raises(ValueError, match="test_matrix"):
            est.fit(x)
        assert not hasattr(est, "state_")


def test_negative_eigenvalues_clipped_and_flagged():
    # 6 rows in 12 dimensions: the centered scatter has rank 5, its 7 zero eigenvalues come
    # out of LAPACK as +-1e-14-sized rounding of either sign (all 35 of five seeds >= 0 has
    # probability 2^-35).
    clipped = 0
    for seed in range(5):
        rng = np.random.RandomState(seed)
        x = rng.randn(6, 12) @ rng.randn(12, 12)
        acc = recalign.MomentAccumulator(12)
        acc.update(x)
        for top in (0, 8):
            spec = acc.finish("centered", top=top).spectrum
            raw = np.linalg.eigvalsh(acc.sxx("centered"))[::-1][:spec.rank]
            assert np.all(spec.eigenvalues >= 0.0)
            assert spec.clipped <= np.count_nonzero(spec.eigenvalues == 0.0) and spec.clipped <= 7
            assert spec.most_negative <= 0.0 and abs(spec.most_negative) < 1e-12 * spec.eigenvalues[0]
            assert (spec.clipped == 0) == (spec.most_negative == 0.0)
            np.testing.assert_allclose(spec.eigenvalues, np.maximum(raw, 0.0), atol=1e-12 * raw[0])
            np.testing.assert_allclose(spec.explained, np.cumsum(spec.eigenvalues) / spec.total, rtol=1e-12)
            clipped += spec.clipped
    assert clipped > 0
    # the diagonal without the D x D matrix
    np.testing.assert_allclose(acc.diag_xx("centered"), x.var(axis=0) * 6, rtol=1e-12)
    np.testing.assert_allclose(acc.diag_xx("uncentered"), (x * x).sum(axis=0), rtol=1e-12)
    # an estimator on such data flags its null components
    with pytest.warns(PrecisionWarning):
        assert StreamingPCA().fit(x).imprecise_components_ == 1  # min(n, D) = 6 kept, rank 5


@pytest.mark.parametrize("center", ["uncentered", "centered"])
def test_alignment_curve_is_the_papers(pixels, center):
    x, labels = pixels
    x, labels = x[:600], labels[:600]
    names = np.array(["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"])
    est = AlignmentCurve(center=center, batch_size=128).fit(x, names[labels])
    assert list(est.classes_) == sorted(names) and est.n_samples_seen_ == 600
    codes = np.searchsorted(np.sort(names), names[labels])
    X, Y = x.T, np.eye(10)[codes].T
    if center == "centered":
        X, Y = X - X.mean(axis=1, keepdims=True), Y - Y.mean(axis=1, keepdims=True)
    paper, S, _ = alignment_sweep(X, Y)
    rank = int(np.sum(S ** 2 > 1e-12 * S[0] ** 2))
    assert est.skipped_ == 784 - rank
    np.testing.assert_allclose(est.curve_[:rank], paper[:rank], rtol=1e-9)
    # partial_fit over two halves: the same curve
    part = AlignmentCurve(center=center).partial_fit(x[:300], names[labels[:300]], classes=names)
    part.partial_fit(x[300:], names[labels[300:]])
    np.testing.assert_allclose(part.curve_[:rank], est.curve_[:rank], rtol=1e-10)
    with pytest.raises(ValueError, match="not in classes_"):
        part.partial_fit(x[:5], np.array(["hat"] * 5))


@pytest.mark.parametrize("method", ["fd", "nystrom"])
def test_alignment_curve_on_a_sketch_route_is_verified_align(pixels, method):
    """AlignmentCurve(method=fd|nystrom, rank=K): fit() is recalign.verified_align on the same
    batches (the CLI's align --method M --rank K), bit for bit, its curve near the exact one and
    its eigenvalues (Ritz values) never above the exact ones; no partial_fit (several reads)."""
    x, labels = pixels
    x, labels = x[:1500], labels[:1500]
    exact = AlignmentCurve().fit(x, labels)
    got = AlignmentCurve(method=method, rank=30, batch_size=250).fit(x, labels)
    want = recalign.verified_align([(x[i:i + 250], labels[i:i + 250]) for i in range(0, 1500, 250)], 10, method=method,
                                   rank=30)
    np.testing.assert_array_equal(got.curve_, want.curve.curve)
    np.testing.assert_array_equal(got.eigenvalues_, want.curve.eigenvalues)
    assert got.max_k_ == 30 and not got.complete_ and got.sketch_error_.method == method and got.sketch_error_.verified
    assert exact.sketch_error_ is None
    assert np.max(np.abs(got.curve_ - exact.curve_[:30])) < (1e-3 if method == "fd" else 3e-2)
    assert np.all(got.eigenvalues_ <= exact.eigenvalues_[:30] * (1 + 1e-12))  # Ritz values: never inflated
    assert not hasattr(got, "partial_fit") and hasattr(exact, "partial_fit")  # rows read more than once
    with pytest.raises(ValueError, match="needs rank"):
        AlignmentCurve(method=method).fit(x, labels)
    with pytest.raises(ValueError, match="rank and passes apply"):
        AlignmentCurve(rank=5).fit(x, labels)


def test_refusals():
    x = np.random.RandomState(0).randn(30, 5)
    with pytest.raises(ValueError, match="method must be one of"):
        StreamingPCA(method="svd").fit(x)
    with pytest.raises(ValueError, match="needs n_components or sketch_size"):
        StreamingPCA(method="fd").fit(x)
    with pytest.raises(ValueError, match="n_components=6 invalid for n_features=5"):
        StreamingPCA(6).fit(x)
    with pytest.raises(ValueError, match="classes must be given"):
        AlignmentCurve().partial_fit(x, np.zeros(30, dtype=int))


def test_spectrum_variances_per_sample_match_numpy():
    """Spectrum.variances: explained variance per sample (issue 16 item 4), against NumPy."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    acc = recalign.MomentAccumulator(6)
    acc.update(x)
    spec = acc.finish("centered").spectrum
    for ddof in (0, 1):
        ref = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False, ddof=ddof)))[::-1]
        np.testing.assert_allclose(spec.variances(ddof), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(spec.variances(), spec.eigenvalues / 199, rtol=0, atol=0)
    with pytest.raises(ValueError, match="ddof"):
        spec.variances(2)


def test_nystrom_tolerance_stops_at_the_first_pass_below_it(pixels):
    """tolerance=T: fit() stops after the first pass whose relative estimate is <= T, with the
    numbers of a fit of exactly that many passes; a T below every estimate runs all passes."""
    x, _ = pixels
    k = 10
    est = []
    for q in (1, 2, 3):
        m = StreamingPCA(k, method="nystrom", batch_size=256, passes=q).fit(x)
        assert m.n_passes_ == q and m.tolerance_met_ is None
        est.append((m.state_.relative_error(), m))
    assert est[0][0] == pytest.approx(est[0][1].spectrum_.error_estimate / est[0][1].spectrum_.total, rel=1e-12)
    for t in (1.01 * est[0][0], 0.5 * (est[0][0] + est[1][0]), 0.5 * min(e for e, _ in est)):
        got = StreamingPCA(k, method="nystrom", batch_size=256, passes=3, tolerance=t).fit(x)
        first = next((i + 1 for i, (e, _) in enumerate(est) if e <= t), None)
        assert got.n_passes_ == (first or 3) and got.tolerance_met_ == (first is not None), (t, [e for e, _ in est])
        np.testing.assert_array_equal(got.components_, est[got.n_passes_ - 1][1].components_)
    with pytest.raises(ValueError, match="tolerance"):
        StreamingPCA(k, method="fd", tolerance=0.1).fit(x)
