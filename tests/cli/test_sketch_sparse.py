"""--test-matrix sparse (Nyström's sparse sign Ω: 8 entries ±1 a row) end to end: the verified
spectrum against NumPy's exact eigenvalues (Ritz values at most the true ones, and as close as the
dense signs' on the same data), the JSON and info say which test matrix ran, SIGKILL then --resume
is byte-identical, shards merge like one pass, and every misuse is refused before any data is
read: a resume or merge with the other test matrix, a dimension too small for it, and the option
given where no Nyström sketch is built."""
import json
import os

import numpy as np
import pytest

import cli_common as c

rng = np.random.default_rng(21)
N, D, C = 4000, 200, 4
Y = rng.integers(0, C, size=N)
X = rng.normal(size=(N, D)) * (1.0 / (1 + np.arange(D))) ** 0.75 * 3 + rng.random(size=D)
X[np.arange(N), 3 * Y] += 0.4
SKETCH = ["--method", "nystrom", "--rank", 10, "--seed", 5]


@pytest.fixture(scope="module")
def data(tmp):
    return c.write_data(tmp, X, Y.astype("<i4"), "--batch", "300")


def exact_eigenvalues():
    xc = X - X.mean(axis=0)
    return np.sort(np.linalg.eigvalsh(xc.T @ xc))[::-1]


@pytest.mark.parametrize("passes", [1, 2])
def test_verified_spectrum_against_numpy_and_the_dense_signs(data, passes):
    ex = exact_eigenvalues()[:10]
    runs = {t: c.run_json(["spectrum"] + data + SKETCH + ["--passes", passes, "--test-matrix", t])
            for t in ("signs", "sparse")}
    for t, j in runs.items():
        assert j["sketch_error"]["test_matrix"] == t, f"{t}: JSON says {j['sketch_error']['test_matrix']}"
        ritz = np.array(j["eigenvalues"][:10])
        # Ritz values: the exact second moment along each returned direction, at most the true
        # eigenvalue of its rank (to rounding).
        assert np.all(ritz <= ex * (1 + 1e-9)), f"{t}, {passes} pass(es): a Ritz value above the exact eigenvalue"
    err = {t: float(np.sum(ex - np.array(j["eigenvalues"][:10])) / np.sum(ex)) for t, j in runs.items()}
    assert err["sparse"] <= 1.5 * err["signs"] + 1e-6, f"{passes} pass(es): top-10 deficit {err}"
    assert err["sparse"] < (2e-2 if passes == 1 else 2e-3), f"{passes} pass(es): sparse top-10 deficit {err['sparse']}"


def test_sigkill_then_resume_is_byte_identical_and_info_says_sparse(tmp, data):
    args = ["spectrum"] + data + SKETCH + ["--test-matrix", "sparse", "--json", "--quiet", "--no-verify"]
    rc, reference, err = c.run(args)
    assert rc == 0, err
    ck = os.path.join(tmp, "sparse_kill.ckpt")
    _, rc, out, err = c.kill_then_resume(args, ck, lambda s: s["rows_done"] >= 600, 300, "in the first pass",
                                         timeout=30, delay_ms=40)
    assert rc == 0 and out == reference, f"resume: exit {rc}, identical={out == reference} {err}"
    info = json.loads(c.run(["info", ck, "--json"], check_rc=0)[1])
    assert info["test_matrix"] == "sparse", f"info: {info.get('test_matrix')}"
    rc, text, err = c.run(["info", ck])
    assert rc == 0 and "test matrix   sparse" in text, text


def test_resume_with_the_other_test_matrix_is_refused_and_loses_nothing(tmp, data):
    ck = os.path.join(tmp, "sparse_half.ckpt")
    common = data + SKETCH + ["--quiet", "--no-verify", "--checkpoint", ck]
    c.run(["spectrum"] + common + ["--test-matrix", "sparse", "--limit", 1200], check_rc=0)
    before = open(ck, "rb").read()
    rc, out, err = c.run(["spectrum"] + common + ["--limit", 2400, "--resume"])
    c.assert_one_line_error(rc, err, ["--test-matrix is sparse in the checkpoint but signs in this run"],
                            "resume with signs")
    assert open(ck, "rb").read() == before, "a refused resume changed the checkpoint"


def test_merge_of_halves_and_the_mixed_merge_refused(tmp, data):
    a, b, s, m = (os.path.join(tmp, f"merge_{n}.ckpt") for n in "absm")
    common = SKETCH + ["--quiet", "--no-verify"]
    c.run(["align"] + data + common + ["--test-matrix", "sparse", "--limit", N // 2, "--checkpoint", a], check_rc=0)
    c.run(["align"] + data + common + ["--test-matrix", "sparse", "--skip", N // 2, "--checkpoint", b], check_rc=0)
    c.run(["align"] + data + common + ["--skip", N // 2, "--checkpoint", s], check_rc=0)  # signs
    c.run(["merge", a, b, "-o", m], check_rc=0)
    merged = c.run_json(["align", "--from", m])
    whole = c.run_json(["align"] + data + common + ["--test-matrix", "sparse"])
    assert merged["n"] == N and merged["sketch_error"]["test_matrix"] == "sparse"
    c.assert_close(merged["eigenvalues"], whole["eigenvalues"], 1e-8, "merged halves vs one pass, eigenvalues")
    c.assert_close(merged["alignment"][:5], whole["alignment"][:5], 1e-7, "merged halves vs one pass, alignment")
    out = os.path.join(tmp, "never_merged.ckpt")
    rc, _, err = c.run(["merge", a, s, "-o", out])
    c.assert_one_line_error(rc, err, ["--test-matrix"], "merge of sparse and signs")
    assert not os.path.exists(out), "a refused merge wrote its output"


@pytest.mark.parametrize("argv,mentions", [
    (["spectrum", "--method", "nystrom", "--rank", 50, "--test-matrix", "sparse"],
     ["sparse sign test matrix needs D x 8 >= 32 x (rank + oversampling) = 1920", "D = 200"]),
    (["spectrum", "--test-matrix", "sparse"], ["--test-matrix", "nystrom only", "--method exact"]),
    (["spectrum", "--method", "fd", "--rank", 4, "--test-matrix", "sparse"], ["--test-matrix", "nystrom only"]),
    (["spectrum", "--method", "nystrom", "--rank", 4, "--test-matrix", "dense"], ["--test-matrix", "dense"]),
], ids=["too-small-d", "exact", "fd", "unknown"])
def test_refused_before_reading(tmp_path, data, argv, mentions):
    ck = str(tmp_path / "never.ckpt")
    rc, out, err = c.run(argv[:1] + data + argv[1:] + ["--checkpoint", ck])
    c.assert_one_line_error(rc, err, mentions, " ".join(map(str, argv)))
    assert not os.path.exists(ck), "a refused run wrote its checkpoint"


def test_from_refuses_the_option(tmp, data):
    ck = os.path.join(tmp, "from.ckpt")
    c.run(["spectrum"] + data + SKETCH + ["--test-matrix", "sparse", "--quiet", "--no-verify", "--checkpoint", ck],
          check_rc=0)
    rc, _, err = c.run(["spectrum", "--from", ck, "--test-matrix", "sparse"])
    c.assert_one_line_error(rc, err, ["--test-matrix", "--from"], "--from with --test-matrix")
    j = c.run_json(["spectrum", "--from", ck])
    assert j["sketch_error"]["test_matrix"] == "sparse"
