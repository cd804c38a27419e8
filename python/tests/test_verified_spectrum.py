"""recalign.VerifiedSpectrum, verified_spectrum and ritz_spectrum: the Python side of `recalign
spectrum` and `recalign project` on a sketch route. The Ritz pairs of the sketch's own subspace
against a NumPy Rayleigh–Ritz on the same basis, the projector's k chosen from those exact values,
the CLI's JSON bit for bit, and the verbs of an unlabelled multi-pass state (resume, pickle,
merge, refusals)."""
import pickle

import numpy as np
import pytest

import recalign

from _verified_data import cli_json

D = 96  # 8 x 12 images for `recalign project`


def rows(n=1200, seed=11):
    """A power-law spectrum (variance of direction i ~ i^-1.4) with a mean: a sketch of rank 12
    misses most of it, so its estimates and the Ritz values differ visibly."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D)) / np.arange(1, D + 1) ** 0.7 + 0.5


def in_batches(x, size=200):
    return [x[i:i + size] for i in range(0, len(x), size)]


def rayleigh_ritz(s, v):
    """NumPy's Rayleigh–Ritz of S on span V: values descending, vectors, residual norms."""
    q, _ = np.linalg.qr(v)
    theta, w = np.linalg.eigh(q.T @ s @ q)
    theta, w = theta[::-1], w[:, ::-1]
    y = q @ w
    return theta, y, np.linalg.norm(s @ y - y * theta, axis=0)


@pytest.mark.parametrize("method,passes", [("nystrom", 1), ("nystrom", 2), ("fd", 1)])
def test_ritz_pairs_of_the_sketch_subspace_against_numpy(method, passes):
    x = rows()
    state = recalign.track(in_batches(x), recalign.VerifiedSpectrum(D, method=method, rank=12, passes=passes))
    r = state.report()
    sketch = state.sketch().spectrum
    xc = x - x.mean(0)
    s = xc.T @ xc
    lam = np.linalg.eigvalsh(s)[::-1]
    theta, y, residuals = rayleigh_ritz(s, sketch.basis)
    got = r.spectrum
    assert got.ritz and got.values_exact and not sketch.ritz and not sketch.values_exact
    assert got.method == method and got.center == "centered" and got.n == len(x) and got.rank == 12
    np.testing.assert_allclose(got.eigenvalues, theta, rtol=1e-10, atol=1e-12 * theta[0])
    np.testing.assert_allclose(r.sketch_error.residuals, residuals, rtol=1e-6, atol=1e-9 * theta[0])
    assert np.all(got.eigenvalues <= lam[:12] * (1 + 1e-12))  # Cauchy interlacing: never inflated
    assert got.total == pytest.approx(np.trace(s), rel=1e-12)
    np.testing.assert_allclose(got.explained, np.cumsum(theta) / np.trace(s), rtol=1e-10)
    # Y itself: orthonormal, the same directions as NumPy's (up to sign), θ_j = y_jᵀ S y_j.
    np.testing.assert_allclose(got.basis.T @ got.basis, np.eye(12), atol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(got.basis * y, axis=0)), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.einsum("ij,ik,kj->j", got.basis, s, got.basis), theta, rtol=1e-10)
    np.testing.assert_allclose(r.mean, x.mean(0), rtol=1e-12)
    assert r.exact_for == "returned subspace" and r.sketch_error.verified
    if method == "fd":  # FD's own eigenvalues are biased low: the verification pass raises them
        assert np.all(sketch.eigenvalues <= got.eigenvalues * (1 + 1e-12))
        assert np.max(got.eigenvalues - sketch.eigenvalues) > 1e-3 * got.eigenvalues[0]


def test_ritz_spectrum_refuses_a_pass_over_other_rows():
    x = rows(600)
    state = recalign.track(in_batches(x), recalign.VerifiedSpectrum(D, rank=8))
    spec = state.sketch().spectrum
    rm = recalign.RestrictedMoments(spec.basis)
    rm.update(x[:400])
    with pytest.raises(ValueError, match="not of the sketch's rows"):
        recalign.ritz_spectrum(spec, rm.finish("centered"))
    rm.update(x[400:])
    with pytest.raises(ValueError, match="uncentered"):
        recalign.ritz_spectrum(spec, rm.finish("uncentered"))
    done = recalign.ritz_spectrum(spec, rm.finish("centered"), basis=False)
    assert done.spectrum.basis.size == 0 and done.spectrum.ritz
    # other batches than the state's: the same values to rounding
    np.testing.assert_allclose(done.spectrum.eigenvalues, state.report().spectrum.eigenvalues, rtol=1e-12)


def test_the_projector_chooses_k_from_the_exact_values():
    x = rows()
    r = recalign.verified_spectrum(in_batches(x), rank=12)
    theta, total = r.spectrum.eigenvalues, np.trace((x - x.mean(0)).T @ (x - x.mean(0)))
    captured = np.cumsum(theta) / total
    fraction = 0.5 * (captured[4] + captured[5])  # between the 5th and the 6th Ritz value
    p = r.projector(fraction, "top")
    assert p.k == 6 and p.explained == pytest.approx(captured[5], rel=1e-10)
    yk, mu = r.spectrum.basis[:, :6], x.mean(0)
    np.testing.assert_allclose(p.project(x[:50]), (x[:50] - mu) @ yk @ yk.T + mu, atol=1e-10)
    bottom = r.projector(fraction, "bottom")
    np.testing.assert_allclose(bottom.project(x[:50]), x[:50] - (x[:50] - mu) @ yk @ yk.T, atol=1e-10)
    # More than the 12 directions explain: refused, saying the shortfall is measured, not estimated.
    with pytest.raises(ValueError, match="exact for them") as e:
        r.projector(min(1.0, captured[-1] + 0.01))
    assert "estimated" not in str(e.value) and f"{captured[-1]:.6f}" in str(e.value)
    sketch = recalign.track(in_batches(x), recalign.VerifiedSpectrum(D, rank=12)).sketch()
    with pytest.raises(ValueError, match="an estimated"):
        recalign.SubspaceProjector.from_statistics(sketch, 0.999)


@pytest.mark.parametrize("method,options", [("nystrom", ["--passes", 2, "--seed", 3]), ("fd", [])])
def test_cli_parity(tmp_path, method, options):
    """`recalign spectrum` and `recalign project` against VerifiedSpectrum on the same batches:
    the spectrum document bit for bit, project's k and explained fraction exactly."""
    x = rows()
    path = str(tmp_path / "x.npy")
    np.save(path, x)
    common = ["--images", path, "--batch", 200, "--method", method, "--rank", 12, *options]
    kw = dict(method=method, rank=12, passes=2 if method == "nystrom" else 1, seed=3 if method == "nystrom" else 0)
    py = recalign.verified_spectrum(in_batches(x), **kw)
    cli = cli_json("spectrum", *common)
    assert {k: v for k, v in cli.items() if k not in ("input", "scale")} == py.to_dict()
    proj = cli_json("project", *common, "--image-shape", "8,12,1", "--variance", 0.6, "--out", tmp_path / "p.png")
    p = py.projector(0.6)
    assert proj["exact_for"] == "returned subspace" and (proj["k"], proj["explained"]) == (p.k, p.explained)


def test_resume_pickle_merge_and_refusals(tmp_path):
    x = rows(800)
    data = in_batches(x, 100)
    make = lambda: recalign.VerifiedSpectrum(D, rank=10, passes=2, seed=4)  # noqa: E731
    whole = recalign.track(data, make())
    assert whole.total_passes == 3 and whole.classes == 0
    want = whole.to_bytes()
    for stop in (3, 11, 20):  # in each pass: through pickle, the same bytes
        st, done = make(), 0
        for p in range(3):
            if p:
                st.next_pass()
            for xb in data:
                if done == stop:
                    st = pickle.loads(pickle.dumps(st))
                st.update(xb)
                done += 1
        assert st.to_bytes() == want, stop
    ck, seen = str(tmp_path / "s.ckpt"), []

    def cut(batches):
        for b in batches:
            seen.append(1)
            if len(seen) == 21:  # in the verification pass
                raise KeyboardInterrupt
            yield b
    with pytest.raises(KeyboardInterrupt):
        recalign.track(lambda: cut(data), make(), checkpoint=ck, every=1)
    assert recalign.track(lambda: iter(data), make(), checkpoint=ck, every=1, resume=True).to_bytes() == want
    # (images, labels) batches: the labels are left out, as for the sketches
    labelled = [(xb, np.zeros(len(xb), dtype=np.int64)) for xb in data]
    assert recalign.track(labelled, make()).to_bytes() == want
    # shards of every pass merge into the one stream's numbers
    a = make()
    for p in range(3):
        if p:
            a.next_pass()
        b = a.copy()
        for i, xb in enumerate(data):
            (a if i < 3 else b).update(xb, first_row=i * 100)
        a.merge(b)
    np.testing.assert_allclose(a.report().spectrum.eigenvalues, whole.report().spectrum.eigenvalues, rtol=1e-10)
    with pytest.raises(ValueError, match="configuration"):
        make().merge(recalign.VerifiedSpectrum(D, rank=11, passes=2, seed=4))
    # refusals: before any row, and a refused batch changes nothing
    with pytest.raises(ValueError, match="rank"):
        recalign.VerifiedSpectrum(D, rank=D + 1)
    with pytest.raises(ValueError, match="dim must be >= 1"):
        recalign.VerifiedSpectrum(-4, rank=2)
    with pytest.raises(ValueError, match="needs about 34 GiB"):  # the CLI's estimate, before any row
        recalign.VerifiedSpectrum(150528, rank=5000, memory=1)
    with pytest.raises(ValueError, match="method"):
        recalign.VerifiedSpectrum(D, method="exact", rank=5)
    with pytest.raises(TypeError):
        make().update(data[0], np.zeros(100))  # no labels: first_row is a keyword
    st = make()
    st.update(data[0])
    before = st.to_bytes()
    with pytest.raises(ValueError, match="columns"):
        st.update(data[1][:, :50])
    assert st.to_bytes() == before
    with pytest.raises(RuntimeError, match="passes"):
        st.report()
    aligned = recalign.track([(xb, np.arange(len(xb)) % 3) for xb in data], recalign.VerifiedAlignment(D, 3, rank=10))
    with pytest.raises(recalign.FileError, match="expected a VerifiedSpectrum"):
        recalign.VerifiedSpectrum.from_bytes(aligned.to_bytes())
    with pytest.raises(recalign.FileError):
        recalign.VerifiedSpectrum.from_bytes(want[:-5])
