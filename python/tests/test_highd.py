"""The high-D pieces (MATH.md §7, issue 14) from Python: PatchBlocks and RestrictedMoments
against NumPy (blocks of Sxx, Vᵀ Sxx V, Sxx V, Vᵀ Sxy from the data), the Ritz analyses
against NumPy transcriptions (the authors' QR-of-X·v_j curve, Theorem 1's optimum, Theorem 3's
generalized eigenproblem), checkpoints and the strong guarantee, and the verified sketch
analyses against the CLI's JSON on the same data (bit for bit)."""
import json
import os
import pickle
import subprocess

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
    assert pb.blocks == len(sets) and pb.values == sum(len(s) ** 2 for s in sets) and pb.n == 150
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


def synthetic_batches(n=300, size=64):
    x = RNG.integers(0, 256, size=(n, 8 * 8 * 3), dtype=np.uint8)
    y = RNG.integers(0, 5, n)
    x[:, :5] = (y[:, None] * 40).astype(np.uint8)
    return [(x[i:i + size], y[i:i + size]) for i in range(0, n, size)]


def test_verified_state_resume_pickle_merge_and_refusals(tmp_path):
    data = synthetic_batches()
    noises = ["mask:patch=2x2,ratio=0.5", "dropout:ratio=0.25", "gaussian:sigma=3"]
    make = lambda: recalign.VerifiedDenoising(192, 5, noises, shape=(8, 8, 3), rank=20, passes=2)  # noqa: E731
    whole = recalign.track(data, make())
    assert whole.total_passes == 3 and whole.pass_index == 2
    want = whole.report()
    assert want.exact_for == "returned subspaces" and want.sketch_error.verified
    assert np.max(np.abs(want.noises[2].impact)) < 1e-10  # Gaussian noise keeps U
    # stop in each pass, go through pickle, continue: the same bytes and numbers
    for stop in (2, 6, 12):
        st, done = make(), 0
        for p in range(3):
            if p:
                st.next_pass()
            for xb, yb in data:
                if done == stop:
                    st = pickle.loads(pickle.dumps(st))
                st.update(xb, yb)
                done += 1
        assert st.to_bytes() == whole.to_bytes(), stop
    # checkpoint + resume through track in the verification pass
    ck = str(tmp_path / "v.ckpt")
    st = make()
    seen = []

    def cut(batches):
        for i, b in enumerate(batches):
            seen.append(i)
            if len(seen) == 13:
                raise KeyboardInterrupt
            yield b
    with pytest.raises(KeyboardInterrupt):
        recalign.track(lambda: cut(data), st, checkpoint=ck, every=1)
    resumed = recalign.track(lambda: iter(data), make(), checkpoint=ck, every=1, resume=True)
    assert resumed.to_bytes() == whole.to_bytes()
    # shards of each pass merge into the one stream's state (later passes start from the merged state)
    a = make()
    for p in range(3):
        if p:
            a.next_pass()
        b = a.copy()
        for i, (xb, yb) in enumerate(data):
            (a if i < 2 else b).update(xb, yb, i * 64)
        a.merge(b)
        if p == 0:
            with pytest.raises(ValueError, match="configuration"):
                a.merge(recalign.VerifiedDenoising(192, 5, noises[:1], shape=(8, 8, 3), rank=20, passes=2))
    assert a.n == 300
    np.testing.assert_allclose(a.report().noises[0].alignment, want.noises[0].alignment, rtol=1e-6)
    # refusals: a bad batch changes nothing; a generator cannot be read 3 times; report too early
    st = make()
    st.update(*data[0])
    before = st.to_bytes()
    with pytest.raises(ValueError, match="out of range"):
        st.update(data[1][0], data[1][1] + 5)
    assert st.to_bytes() == before
    with pytest.raises(RuntimeError, match="passes"):
        st.report()
    with pytest.raises(ValueError, match="iterator"):
        recalign.track(iter(data), make())
    with pytest.raises(ValueError, match="Monte-Carlo"):
        recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5,draws=4"], shape=(8, 8, 3), rank=20)
    with pytest.raises(ValueError, match="rank"):
        recalign.VerifiedAlignment(192, 5, rank=500)
    with pytest.raises(recalign.FileError):
        recalign.VerifiedDenoising.from_bytes(whole.to_bytes()[:-9])
    with pytest.raises(ValueError, match="published"):
        recalign.VerifiedAlignment(192, 5, rank=20, measure="published")
    # in a verification pass too: a refused batch leaves the bytes as they were
    st = make()
    recalign.track(data, st, passes=3)
    assert st.pass_index == 2
    st = pickle.loads(pickle.dumps(whole))
    before = st.to_bytes()
    with pytest.raises(ValueError, match="columns"):
        st.update(data[0][0][:, :100], data[0][1])
    assert st.to_bytes() == before
    with pytest.raises(ValueError, match="passes are done"):
        st.next_pass()


def test_track_drives_nystrom_power_iterations():
    data = synthetic_batches(200, 50)
    manual = recalign.NystromSketch(192, 10, seed=2)
    for p in range(3):
        if p:
            manual.next_pass()
        for xb, _ in data:
            manual.update(xb)
    driven = recalign.track([xb for xb, _ in data], recalign.NystromSketch(192, 10, seed=2), passes=3)
    assert driven.pass_index == 2 and driven.to_bytes() == manual.to_bytes()


CLI = os.environ.get("RECALIGN_CLI")
SYNTH = os.environ.get("RECALIGN_SYNTH")


def cli_json(*args):
    if not CLI or not os.path.exists(CLI):
        pytest.skip("RECALIGN_CLI is not set (the python suite sets it when tools are built)")
    out = subprocess.run([CLI] + [str(a) for a in args] + ["--json", "--quiet"], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)


def check_parity(cli, py, rows, batch, what):
    assert cli["exact_for"] == py.exact_for, what
    assert py.sketch_error.to_dict() == cli["sketch_error"], what
    assert cli["n"] == rows


def test_cli_parity_synthetic_3072(tmp_path):
    """recalign-synth output at D = 3,072 (32x32x3, 1/f² images): denoise and align through
    the CLI and through Python on the same batches give the same numbers bit for bit."""
    if not SYNTH or not os.path.exists(SYNTH):
        pytest.skip("RECALIGN_SYNTH is not set (the python suite sets it when tools are built)")
    images, labels = str(tmp_path / "s.u8"), str(tmp_path / "s.npy")
    subprocess.run([SYNTH, "--rows", "400", "--height", "32", "--width", "32", "--seed", "5", "--output", images,
                    "--labels", labels], check=True, capture_output=True)
    x = np.fromfile(images, dtype=np.uint8).reshape(400, 3072)
    y = np.load(labels)
    data = [(x[i:i + 100], y[i:i + 100]) for i in range(0, 400, 100)]
    common = ["--images", images, "--raw-shape", "400,3072", "--labels", labels, "--classes", 10, "--batch", 100,
              "--method", "nystrom", "--rank", 48, "--passes", 2, "--seed", 3]
    noises = ["mask:patch=4x4,ratio=0.75,scheme=fixed", "mask:patch=8x8,ratio=0.5", "gaussian:sigma=10"]
    cli = cli_json("denoise", *common, "--image-shape", "32,32,3", *[a for n in noises for a in ("--noise", n)])
    py = recalign.verified_denoise(data, noises, 10, shape=(32, 32, 3), rank=48, passes=2, seed=3)
    check_parity(cli, py, 400, 100, "denoise")
    assert cli["clean"] == py.clean.tolist()
    for a, b in zip(cli["noises"], py.noises):
        assert a["spec"] == b.spec and a["max_k"] == b.max_k and a["informative"] == b.informative
        assert a["alignment"] == b.alignment.tolist() and a["impact"] == b.impact.tolist()
    cli = cli_json("align", *common)
    py = recalign.verified_align(data, 10, rank=48, passes=2, seed=3)
    check_parity(cli, py, 400, 100, "align")
    assert cli["alignment"] == py.alignment.tolist()


def test_cli_parity_fashion(fashion, tmp_path):
    """A Fashion-MNIST subset (1,000 images): align and tradeoff with FD, denoise with Nyström,
    CLI JSON against Python, bit for bit."""
    images, labels = fashion
    x, y = images[:1000], labels[:1000]
    xi, yi = str(tmp_path / "x.npy"), str(tmp_path / "y.npy")
    np.save(xi, x)
    np.save(yi, y)
    data = [(x[i:i + 250], y[i:i + 250]) for i in range(0, 1000, 250)]
    common = ["--images", xi, "--labels", yi, "--classes", 10, "--batch", 250]
    cli = cli_json("align", *common, "--method", "fd", "--rank", 30)
    py = recalign.verified_align(data, 10, method="fd", rank=30)
    check_parity(cli, py, 1000, 250, "align fd")
    assert cli["alignment"] == py.alignment.tolist()
    cli = cli_json("tradeoff", *common, "--method", "fd", "--rank", 30, "--lambda", "0,1,10", "--k", 10)
    py = recalign.verified_tradeoff(data, [0, 1, 10], 10, 10, method="fd", rank=30)
    for a, p in zip(cli, py.points):
        assert a["bound"] == py.bound and a["exact_for"] == py.exact_for and a["k"] == py.tradeoff.k
        assert a["sketch_error"] == py.sketch_error.to_dict()
        assert (a["supervised_loss"], a["reconstruction_loss"], a["loss"]) == \
            (p.supervised_loss, p.reconstruction_loss, p.loss)
    cli = cli_json("denoise", *common, "--image-shape", "28,28,1", "--method", "nystrom", "--rank", 40,
                   "--noise", "mask:patch=4x4,ratio=0.5", "--noise", "dropout:ratio=0.3")
    py = recalign.verified_denoise(data, ["mask:patch=4x4,ratio=0.5", "dropout:ratio=0.3"], 10, shape=(28, 28, 1),
                                   rank=40)
    check_parity(cli, py, 1000, 250, "denoise")
    assert cli["clean"] == py.clean.tolist()
    for a, b in zip(cli["noises"], py.noises):
        assert a["alignment"] == b.alignment.tolist() and a["relative"] == [
            None if np.isnan(v) else v for v in b.relative.tolist()]
