"""tradeoff and denoise end to end: the Theorem 1 losses against an independent NumPy
computation (whitening, MATH.md §3) and its two limits (OLS at λ = 0, PCA as λ grows);
denoise JSON structure, Corollary 3.1 (Gaussian noise changes nothing: relative difference
and noise impact vanish), clean curve = align's curve, Monte Carlo close to the closed form,
CSV output and bad specifications."""
import os

import numpy as np
import pytest

import cli_common as c

rng = np.random.default_rng(21)
N, H, W, C = 2000, 6, 6, 4
D = H * W
Y = rng.integers(0, C, size=N)
protos = rng.random(size=(C, D))
X = 0.3 * rng.random(size=(N, D)) + protos[Y] + np.linspace(0, 0.5, D)

# --- tradeoff vs NumPy (uncentered X, one-hot Y)
Yh = np.eye(C)[Y]
Sxx, Sxy, Syy = X.T @ X, X.T @ Yh, Yh.T @ Yh
K = 5
LAMBDAS = [0, 0.01, 1, 100, 1e6]


@pytest.fixture(scope="module")
def data(tmp):
    return c.write_data(tmp, X, Y.astype("<i8"), "--batch", "256")


def tradeoff_numpy(lam, K):
    d, P = np.linalg.eigh(Sxx)
    keep = d > 1e-12 * d.max()
    d, P = d[keep], P[:, keep]
    F = (P / np.sqrt(d)).T @ Sxy
    Hm = F @ F.T + lam * np.diag(d)
    w, E = np.linalg.eigh(Hm)
    V = (P / np.sqrt(d)) @ E[:, ::-1][:, :K]
    M = V.T @ Sxx @ V
    sup = np.trace(Syy) - np.trace(Sxy.T @ V @ np.linalg.solve(M, V.T @ Sxy))
    rec = np.trace(Sxx) - np.trace(Sxx @ V @ np.linalg.solve(M, V.T @ Sxx))
    return sup, rec


@pytest.fixture(scope="module")
def tradeoff(data):
    j = c.run_json(["tradeoff"] + data + ["--lambda", ",".join(map(str, LAMBDAS)), "--k", K])
    assert isinstance(j, list) and len(j) == len(LAMBDAS), "tradeoff JSON is a list, one entry per lambda"
    return j


@pytest.mark.parametrize("i", range(len(LAMBDAS)), ids=[f"lambda={lam}" for lam in LAMBDAS])
def test_tradeoff_matches_numpy(tradeoff, i):
    e, lam = tradeoff[i], LAMBDAS[i]
    for key in ["lambda", "supervised_loss", "reconstruction_loss"]:
        assert key in e, f"tradeoff entry misses {key}"
    sup, rec = tradeoff_numpy(lam, K)
    assert e["lambda"] == lam, f"lambda {e['lambda']} vs {lam}"
    c.assert_close([e["supervised_loss"]], [sup], 1e-6, f"supervised loss at lambda {lam}")
    if lam > 0:  # at lambda 0 with K > C the last K - C directions are any null vectors of F Fᵀ
        c.assert_close([e["reconstruction_loss"]], [rec], 1e-6, f"reconstruction loss at lambda {lam}")


def test_tradeoff_limits(tradeoff):
    """lambda = 0 is OLS (K >= C), lambda -> infinity is PCA."""
    ols = np.trace(Syy) - np.trace(Sxy.T @ np.linalg.solve(Sxx, Sxy))
    c.assert_close([tradeoff[0]["supervised_loss"]], [ols], 1e-6, "lambda 0 = OLS residual")
    ev = np.linalg.eigvalsh(Sxx)[::-1]
    c.assert_close([tradeoff[-1]["reconstruction_loss"]], [ev[K:].sum()], 1e-5, "large lambda = PCA residual")


def test_supervised_loss_grows_with_lambda(tradeoff):
    sup = [e["supervised_loss"] for e in tradeoff]
    assert all(a <= b * (1 + 1e-9) for a, b in zip(sup, sup[1:])), "supervised loss grows with lambda"


@pytest.mark.parametrize("extra,mentions,what", [
    (["--lambda", "1,x", "--k", 2], ["--lambda"], "bad lambda list"),
    (["--lambda", "1", "--k", 0], ["--k"], "K = 0"),
], ids=["lambda", "k"])
def test_tradeoff_refusals(data, extra, mentions, what):
    rc, out, err = c.run(["tradeoff"] + data + extra)
    c.assert_one_line_error(rc, err, mentions, what)


def test_tradeoff_csv(tmp, data):
    out_t = os.path.join(tmp, "tr")
    c.run(["tradeoff"] + data + ["--lambda", "0,1", "--k", 2, "--out", out_t, "--quiet"], check_rc=0)
    assert open(os.path.join(out_t, "tradeoff.csv")).readline().strip() == \
        "lambda,supervised_loss,reconstruction_loss", "tradeoff.csv header"


# --- denoise
SHAPE = ["--image-shape", f"{H},{W},1"]
NOISES = ["gaussian:sigma=0.3", "mask:patch=2x2,ratio=0.5", "mask:patch=3x2,ratio=0.5,scheme=fixed"]


@pytest.fixture(scope="module")
def denoise(tmp, data):
    args = ["denoise"] + data + SHAPE
    for s in NOISES:
        args += ["--noise", s]
    return c.run_json(args + ["--out", os.path.join(tmp, "den")])


def test_denoise_json_fields(denoise):
    j = denoise
    for key in ["clean", "noises", "n", "d", "classes", "measure", "centered"]:
        assert key in j, f"denoise JSON misses {key}"
    assert len(j["noises"]) == 3, "one entry per --noise"
    for e in j["noises"]:
        for key in ["spec", "alignment", "relative", "impact"]:
            assert key in e, f"noise entry misses {key}"


def test_denoise_clean_curve_is_align_curve(data, denoise):
    a = c.run_json(["align"] + data)
    c.assert_close(denoise["clean"], a["alignment"], 1e-12, "denoise clean curve = align curve", atol=1e-14)


def test_gaussian_noise_changes_nothing(denoise):
    """Corollary 3.1."""
    g = denoise["noises"][0]
    assert g["spec"].startswith("gaussian"), f"spec text {g['spec']}"
    rel = np.array([v for v in g["relative"] if v is not None])
    assert rel.size > 0 and np.max(np.abs(rel)) < 1e-8, "Gaussian noise: relative difference ~ 0 (Corollary 3.1)"
    imp = np.array([v for v in g["impact"] if v is not None])
    assert imp.size > 0 and np.max(np.abs(imp)) < 1e-8, "Gaussian noise: impact ~ 0 (Corollary 3.1)"


def test_masking_relative_difference_and_impact(denoise):
    j = denoise
    m = j["noises"][1]
    al, cl, rl = (np.array([np.nan if v is None else v for v in m[k]], dtype=float) for k in ("alignment", "relative", "impact"))
    n = min(len(al), len(j["clean"]))
    clean = np.array(j["clean"][:n])
    ok = np.isfinite(cl[:n]) & (clean > 0)
    c.assert_close(cl[:n][ok], ((al[:n] - clean) / clean)[ok], 1e-9, "relative = (denoising - clean)/clean", atol=1e-12)
    assert np.nanmax(rl) > 1e-3, "masking moves the subspace (impact > 0)"


def test_relative_csv(tmp, denoise):
    csv_head = open(os.path.join(tmp, "den", "relative.csv")).readline().strip()
    assert csv_head == "k,noise1,noise2,noise3", f"relative.csv header {csv_head}"


def test_monte_carlo_close_to_the_closed_form(data, denoise):
    """Monte Carlo estimate of the mask expectations: close to the closed form."""
    mc = c.run_json(["denoise"] + data + SHAPE + ["--noise", NOISES[1], "--monte-carlo", 64, "--seed", 3])
    e = mc["noises"][0]
    assert e["g_stderr_fro"] is not None and e["g_stderr_fro"] > 0, "Monte Carlo reports its standard error"
    k = 8
    c.assert_close([e["alignment"][k - 1]], [denoise["noises"][1]["alignment"][k - 1]], 0.05,
                   "Monte Carlo vs closed form at k = 8")


@pytest.mark.parametrize("extra,mentions,what", [
    (SHAPE + ["--noise", "salt:ratio=0.1"], ["--noise", "salt"], "unknown noise family"),
    (["--image-shape", "5,5,1", "--noise", "gaussian:sigma=1"], ["--image-shape", "36"], "image shape mismatch"),
], ids=["noise", "shape"])
def test_denoise_refusals(data, extra, mentions, what):
    rc, out, err = c.run(["denoise"] + data + extra)
    c.assert_one_line_error(rc, err, mentions, what)
