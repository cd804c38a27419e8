"""Monte-Carlo noises on the sketch routes from Python (issue 14 item 5): MonteCarloSketch
against NumPy (G Ω, Bs Ω, Bsᵀ Ω, Qᵀ G Q of the very corruptions drawn), a corruption written
in Python on a sketch route against the exact route (MonteCarloNoise, same draws) and against
NumPy's Theorem 3, built-in specs against the CLI's JSON bit for bit (with refinement passes,
a checkpoint resumed inside the verification pass), merges, refusals."""
import json
import os
import pickle
import subprocess

import numpy as np
import pytest
import scipy.linalg

import _workers
from _verified_data import synth_images
import recalign

RNG = np.random.default_rng(23)
DIM = 48  # 4 x 4 x 3


def data_48(n=240, size=60):
    x = RNG.normal(size=(n, DIM)) * np.linspace(3, 0.2, DIM) + 1.0
    y = RNG.integers(0, 4, n)
    x[:, -6:] += 2 * np.eye(4)[y][:, [0, 1, 2, 3, 0, 1]]  # the classes in low-variance directions
    return [(x[i:i + size], y[i:i + size]) for i in range(0, n, size)]


def corrupted(x, first_row, draw, seed=9):
    """_workers.python_dropout of one draw, as the keys give it."""
    return _workers.python_dropout(x, {"seed": seed, "first_row": first_row, "draw": draw, "batch": 0})


def test_monte_carlo_sketch_against_numpy(tmp_path):
    data = data_48()
    omega = recalign.gaussian_test_matrix(DIM, 12, 4)
    assert omega.shape == (DIM, 12)
    np.testing.assert_array_equal(omega, recalign.gaussian_test_matrix(DIM, 12, 4))
    make = lambda test, ranges=True: recalign.MonteCarloSketch(  # noqa: E731
        test, corrupt=_workers.python_dropout, draws=3, seed=9, name="py-dropout", ranges=ranges)
    q = np.linalg.qr(RNG.normal(size=(DIM, 7)))[0]
    sk, on_q = make(omega), make(q, False)
    g = np.zeros((DIM, DIM))
    bs = np.zeros((DIM, DIM))
    row = 0
    for xb, _ in data:
        sk.update(xb)
        on_q.update(xb)
        for s in range(3):
            c = corrupted(xb, row, s)
            g += c.T @ c / 3
            bs += c.T @ xb / 3
        row += len(xb)
    p, pq = sk.products(), on_q.products()
    assert p.n == pq.n == 240 and pq.g.size == 0
    for got, want in ((p.g, g @ omega), (p.bs, bs @ omega), (p.bs_t, bs.T @ omega), (pq.bs_t, bs.T @ q),
                      (pq.gq, q.T @ g @ q)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-9 * np.abs(want).max())
    span = recalign.monte_carlo_ritz_basis(q, p)
    np.testing.assert_allclose(span.T @ span, np.eye(span.shape[1]), atol=1e-12)
    assert span.shape[1] == 7 + 36  # 3 x 12 directions added to q's 7
    # the verbs: pickle (the function by reference), bytes + corruption again, files, shards, copies
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(sk)).products().g, p.g)
    again = recalign.MonteCarloSketch.from_bytes(sk.to_bytes(), corrupt=_workers.python_dropout)
    path = str(tmp_path / "m.ckpt")
    sk.save(path)
    for other in (again, recalign.MonteCarloSketch.load(path, corrupt=_workers.python_dropout), sk.copy()):
        assert other.to_bytes() == sk.to_bytes() and other.name == "py-dropout" and other.spec is None
    a, b = make(omega), make(omega)
    for i, (xb, _) in enumerate(data):
        (a if i < 3 else b).update(xb, first_row=60 * i)
    a.merge(b)
    np.testing.assert_array_equal(a.products().g, p.g)  # b holds the last batch: summed in the one stream's order
    bare = recalign.MonteCarloSketch.from_bytes(sk.to_bytes())
    with pytest.raises(RuntimeError, match="corruption"):
        bare.update(data[0][0])
    with pytest.raises(ValueError, match="test matrices differ"):
        a.merge(make(recalign.gaussian_test_matrix(DIM, 12, 5)))
    # a failing corruption, a bad row: ValueError, nothing changed
    flaky = recalign.MonteCarloSketch(omega, corrupt=_workers.failing_corruption, draws=2, name="flaky")
    flaky.update(data[0][0], first_row=0)
    before = flaky.to_bytes()
    with pytest.raises(ValueError, match="sensor offline"):
        flaky.update(data[0][0], first_row=200)
    bad = data[1][0].copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="row 63"):
        flaky.update(bad)
    assert flaky.to_bytes() == before
    # a built-in spec draws the exact route's corruptions: MonteCarloNoise's G times Ω
    spec = "mask:patch=2x2,ratio=0.5,draws=4,seed=3"
    mc = recalign.MonteCarloNoise(DIM, spec, shape=(4, 4, 3))
    ms = recalign.MonteCarloSketch(omega, spec, shape=(4, 4, 3))
    for xb, _ in data:
        mc.update(xb)
        ms.update(xb)
    est = mc.estimate()["moments"]
    np.testing.assert_allclose(ms.products().g, est.g @ omega, rtol=1e-11, atol=1e-11 * np.abs(est.g).max())
    assert pickle.loads(pickle.dumps(ms)).to_bytes() == ms.to_bytes()
    assert (ms.spec.draws, ms.draws, ms.seed) == (4, 4, 3)


def test_python_corruption_on_a_sketch_route(tmp_path):
    """rank 20: the span (U, G Ω, Bs Ω, Bsᵀ Ω: 20 + 3 x 30 columns) holds every direction of
    R^48, so the sketch route's answer is the exact route's for the same draws (MonteCarloNoise
    with the same function), and Theorem 3's V* by NumPy/SciPy."""
    data = data_48()
    noise = recalign.Corruption(_workers.python_dropout, "py-dropout", draws=4, seed=9)
    make = lambda: recalign.VerifiedDenoising(DIM, 4, [noise, "gaussian:sigma=0.5"], rank=20)  # noqa: E731
    whole = recalign.track(data, make())
    got = whole.report()
    assert got.sketch_error.verification_columns == DIM and got.noises[0].monte_carlo
    d = got.to_dict()["noises"][0]
    assert d["spec"] == "py-dropout" and d["monte_carlo"] and d["g_stderr_fro"] is None
    # the exact route, same corruptions
    acc, mc = recalign.MomentAccumulator(DIM, classes=4), recalign.MonteCarloNoise(
        DIM, corrupt=_workers.python_dropout, draws=4, seed=9, name="py-dropout")
    for xb, yb in data:
        acc.update(xb, yb)
        mc.update(xb)
    stats, moments = acc.finish(), mc.estimate()["moments"]
    exact = recalign.denoising_alignment(stats, moments)
    k = got.noises[0].max_k
    assert k == exact.max_k
    np.testing.assert_allclose(got.noises[0].alignment, exact.curve[:k], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.noises[0].relative, exact.relative_difference[:k], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.noises[0].impact, recalign.noise_impact(stats, moments).distance[:k], atol=1e-9)
    # NumPy: G and Bs of the draws, V* = top generalized eigenvectors of (Bs Bsᵀ, G)
    g, bs, row = np.zeros((DIM, DIM)), np.zeros((DIM, DIM)), 0
    for xb, _ in data:
        for s in range(4):
            c = corrupted(xb, row, s)
            g += c.T @ c / 4
            bs += c.T @ xb / 4
        row += len(xb)
    mu, w = scipy.linalg.eigh(bs @ bs.T, g)
    want = w[:, ::-1]
    v = got.noises[0].basis  # V* (the result keeps the analyses in the pass's coordinates)
    for kk in (1, 3, 8):
        a, b = np.linalg.qr(v[:, :kk])[0], np.linalg.qr(want[:, :kk])[0]
        assert kk - np.linalg.norm(a.T @ b) ** 2 < 1e-9, kk
    np.testing.assert_allclose(got.noises[0].denoising.subspace.eigenvalues[:8], mu[::-1][:8], rtol=1e-9)
    # checkpoint in the verification pass, resumed: the same bytes (the corruption is given again)
    ck, seen = str(tmp_path / "c.ckpt"), []

    def cut(batches):
        for b in batches:
            seen.append(1)
            if len(seen) == 6:
                raise KeyboardInterrupt
            yield b
    with pytest.raises(KeyboardInterrupt):
        recalign.track(lambda: cut(data), make(), checkpoint=ck, every=1)
    with pytest.raises(ValueError, match="py-dropout"):
        recalign.VerifiedDenoising.load(ck)
    assert recalign.VerifiedDenoising.load(ck, [noise]).pass_index == 1
    resumed = recalign.track(lambda: iter(data), make(), checkpoint=ck, every=1, resume=True)
    assert resumed.to_bytes() == whole.to_bytes()
    assert pickle.loads(pickle.dumps(whole)).to_bytes() == whole.to_bytes() == whole.copy().to_bytes()
    # shards of each pass merge (the noise is keyed by row: first_row given)
    a = make()
    for p in range(2):
        if p:
            a.next_pass()
        b = a.copy()
        for i, (xb, yb) in enumerate(data):
            (a if i < 2 else b).update(xb, yb, i * 60)
        a.merge(b)
    np.testing.assert_allclose(a.report().noises[0].relative, got.noises[0].relative, rtol=0, atol=1e-9)
    # refusals before any row; a failing corruption changes nothing
    with pytest.raises(ValueError, match="uncentered"):
        recalign.VerifiedDenoising(DIM, 4, [noise], rank=20, center="centered")
    with pytest.raises(ValueError, match="draws"):
        recalign.Corruption(_workers.python_dropout, "one", draws=1)
    with pytest.raises(ValueError, match="draws >= 2"):
        recalign.VerifiedDenoising(DIM, 4, ["dropout:ratio=0.2,draws=1"], rank=20)
    with pytest.raises(ValueError, match="shape"):
        recalign.VerifiedDenoising(DIM, 4, ["mask:patch=2x2,ratio=0.5,draws=2"], rank=20)
    st = recalign.VerifiedDenoising(DIM, 4, [recalign.Corruption(_workers.failing_corruption, "flaky", draws=2)],
                                    rank=20)
    for xb, yb in data[:3]:
        st.update(xb, yb)
    for verifying in (False, True):  # in the first pass and in the verification pass
        before = st.to_bytes()
        with pytest.raises(ValueError, match="sensor offline"):
            st.update(*data[3], first_row=200)
        with pytest.raises(ValueError, match="out of range"):
            st.update(data[3][0], data[3][1] + 4)
        assert st.to_bytes() == before, verifying
        if not verifying:
            st.next_pass()
            st.update(*data[0])
    with pytest.raises(recalign.FileError):
        recalign.VerifiedDenoising.from_bytes(whole.to_bytes()[:-9], corruptions=[noise])


CLI = os.environ.get("RECALIGN_CLI")


def test_cli_parity_monte_carlo(tmp_path):
    """recalign-synth images at 16x16x3: a Monte-Carlo mask beside a closed-form mask (two
    refinement passes, each redrawing the Monte-Carlo corruptions on its basis) and Gaussian
    noise, through the CLI and through Python on the same batches: the same document bit for
    bit, also after a checkpoint cut inside the verification pass and resumed."""
    if not CLI or not os.path.exists(CLI):
        pytest.skip("RECALIGN_CLI is not set (the python suite sets it when tools are built)")
    images, labels, x, y, data = synth_images(tmp_path, 300, 16)
    noises = ["mask:patch=4x4,ratio=0.75,scheme=fixed,draws=4,seed=2", "mask:patch=2x2,ratio=0.5", "gaussian:sigma=10"]
    out = subprocess.run([CLI, "denoise", "--images", images, "--raw-shape", "300,768", "--labels", labels, "--classes",
                          "10", "--batch", "100", "--method", "nystrom", "--rank", "24", "--passes", "2", "--seed", "3",
                          "--image-shape", "16,16,3", "--refine", "2", "--json", "--quiet"] +
                         [a for n in noises for a in ("--noise", n)], check=True, capture_output=True, text=True)
    cli = {k: v for k, v in json.loads(out.stdout).items() if k != "input"}
    assert cli["noises"][0]["monte_carlo"] and cli["sketch_error"]["verification_passes"] == 3
    make = lambda: recalign.VerifiedDenoising(768, 10, noises, shape=(16, 16, 3), rank=24, passes=2,  # noqa: E731
                                              seed=3, refine=2)
    whole = recalign.track(data, make())
    assert whole.report().to_dict() == cli
    ck, seen = str(tmp_path / "p.ckpt"), []

    def cut(batches):
        for b in batches:
            seen.append(1)
            if len(seen) == 8:  # the second batch of the verification pass
                raise KeyboardInterrupt
            yield b
    with pytest.raises(KeyboardInterrupt):
        recalign.track(lambda: cut(data), make(), checkpoint=ck, every=1)
    assert recalign.VerifiedDenoising.load(ck).pass_index == 2
    resumed = recalign.track(lambda: iter(data), make(), checkpoint=ck, every=1, resume=True)
    assert resumed.to_bytes() == whole.to_bytes() and resumed.report().to_dict() == cli
