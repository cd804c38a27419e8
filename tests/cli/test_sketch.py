"""--method fd / nystrom end to end: a sketch whose size covers the whole dimension is exact,
so align (both centerings; label statistics from per-class means) and spectrum must equal
the exact route; a small sketch respects its guarantees (FD: 0 <= λ - λ_fd <= Δ); Nyström's
extra passes and the checkpoint: SIGKILL in the second pass then --resume is byte-identical;
merge of sketch checkpoints of two halves matches one pass; exact-only analyses refuse."""
import json
import struct
import zlib
import os
import subprocess

import numpy as np
import pytest

import cli_common as c

rng = np.random.default_rng(8)
N, D, C = 6000, 24, 5
Y = rng.integers(0, C, size=N)
scales = 1.0 / (1 + np.arange(D)) ** 1.5
X = rng.normal(size=(N, D)) * scales * 4 + rng.random(size=D)
X[np.arange(N), Y] += 0.5
# --seed keys Nyström's test matrix; Frequent Directions draws nothing, and refuses it.
SEED = {"fd": lambda s: [], "nystrom": lambda s: ["--seed", s]}


@pytest.fixture(scope="module")
def data(tmp):
    return c.write_data(tmp, X, Y.astype("<i4"), "--batch", "250")


@pytest.mark.parametrize("method,rank", [("fd", D // 2), ("nystrom", D)], ids=["fd", "nystrom"])
@pytest.mark.parametrize("centered", [False, True], ids=["uncentered", "centered"])
def test_full_size_sketch_is_exact(data, centered, method, rank):
    flag = ["--center"] if centered else []
    exact = c.run_json(["align"] + data + flag)
    j = c.run_json(["align"] + data + flag + ["--method", method, "--rank", rank] + SEED[method](4))
    what = f"align {method} full-size ({'centered' if centered else 'uncentered'})"
    assert j["method"] == method, f"{what}: method field {j['method']}"
    m = min(len(j["alignment"]), len(exact["alignment"]))
    assert m >= D // 2, f"{what}: curve of {m} points"
    c.assert_close(j["eigenvalues"][:m], exact["eigenvalues"][:m], 1e-7, f"{what}: eigenvalues",
                   atol=1e-9 * exact["eigenvalues"][0])
    c.assert_close(j["alignment"][:m], exact["alignment"][:m], 1e-6, f"{what}: alignment", atol=1e-8)


@pytest.fixture(scope="module")
def exact_spectrum(data):
    return c.run_json(["spectrum"] + data)


def test_small_fd_within_its_bound(data, exact_spectrum):
    """A small FD sketch: every returned eigenvalue within [λ - Δ, λ]."""
    ex = exact_spectrum
    fd = c.run_json(["spectrum"] + data + ["--method", "fd", "--rank", 4])
    delta = fd["error_bound"]
    assert delta is not None and delta >= 0, "FD reports its bound"
    for i, v in enumerate(fd["eigenvalues"]):
        assert -1e-9 * ex["eigenvalues"][0] <= ex["eigenvalues"][i] - v <= delta * (1 + 1e-9) + 1e-9, \
            f"FD eigenvalue {i}: exact {ex['eigenvalues'][i]} sketch {v} bound {delta}"


def test_nystrom_passes_improve(data, exact_spectrum):
    ex = exact_spectrum
    ny1 = c.run_json(["spectrum"] + data + ["--method", "nystrom", "--rank", 4, "--seed", 1])
    ny3 = c.run_json(["spectrum"] + data + ["--method", "nystrom", "--rank", 4, "--seed", 1, "--passes", 3])
    e1 = abs(sum(ex["eigenvalues"][:4]) - sum(ny1["eigenvalues"]))
    e3 = abs(sum(ex["eigenvalues"][:4]) - sum(ny3["eigenvalues"]))
    assert e3 <= e1 + 1e-9 * ex["eigenvalues"][0], f"3 passes ({e3}) not better than 1 ({e1})"
    c.assert_close(ny3["eigenvalues"], ex["eigenvalues"][:4], 1e-3, "Nyström 3 passes vs exact")


def test_nystrom_sigkill_in_the_second_pass_then_resume(tmp, data):
    args = ["align"] + data + ["--method", "nystrom", "--rank", 6, "--passes", 2, "--seed", 9, "--json", "--quiet"]
    rc, reference, err = c.run(args)
    assert rc == 0, f"nystrom 2 passes: {err}"
    _, rc, out, err = c.kill_then_resume(args, os.path.join(tmp, "ny.ckpt"), lambda s: s["pass"] == 1 and s["rows_done"] >= 1000,
                                         500, "in the second pass", timeout=30, delay_ms=40)
    assert rc == 0 and out == reference, f"nystrom resume in pass 2: exit {rc}, identical={out == reference} {err}"


@pytest.mark.parametrize("method,rank", [("fd", 6), ("nystrom", 6), ("nystrom", D)], ids=["fd", "nystrom", "nystrom_D"])
def test_spectrum_verified_prints_the_ritz_values_of_the_returned_directions(data, method, rank):
    """spectrum on a sketch route verifies by default (as align): its eigenvalues are Ritz
    values, exact second moments along the returned directions, so each is at most the true
    eigenvalue of its rank (Cauchy interlacing), some true eigenvalue lies within its residual
    (Krylov–Bogoliubov), and at rank D they are the exact eigenvalues. --no-verify keeps the
    sketch's own estimates, labelled (exact_for null)."""
    args = ["spectrum"] + data + ["--method", method, "--rank", rank] + SEED[method](4)
    got = c.run_json(args)
    v = got["sketch_error"]
    assert got["exact_for"] == "returned subspace" and v["verified"] and v["verification_passes"] == 1, got
    xc = X - X.mean(axis=0)
    exact = np.linalg.eigvalsh(xc.T @ xc)[::-1]
    theta, res = np.array(got["eigenvalues"]), np.array(v["residuals"])
    assert np.array_equal(theta, np.array(v["ritz_values"]))
    assert len(theta) == rank and np.all(theta <= exact[:rank] * (1 + 1e-10)), (theta, exact[:rank])
    for t, r in zip(theta, res):
        assert np.min(np.abs(exact - t)) <= r + 1e-9 * exact[0], (t, r)
    c.assert_close(got["explained"], np.cumsum(theta) / got["total"], 1e-12, f"{method}: explained")
    c.assert_close(got["total"], np.trace(xc.T @ xc), 1e-10, f"{method}: total")
    if rank == D:
        c.assert_close(theta, exact, 1e-9, "rank D: the exact eigenvalues")
    text = c.run(args, check_rc=0)[1]
    assert "verified by 1 more pass" in text and "ESTIMATES" not in text, text
    unverified = c.run_json(args + ["--no-verify"])
    assert unverified["exact_for"] is None and not unverified["sketch_error"]["verified"], unverified
    assert "ESTIMATES" in c.run(args + ["--no-verify"], check_rc=0)[1]


@pytest.mark.parametrize("method,rank", [("fd", 8), ("nystrom", 8), ("nystrom", D)], ids=["fd", "nystrom", "nystrom_D"])
def test_project_verified_chooses_k_from_the_exact_ritz_values(tmp, data, method, rank):
    """project's top subspace on a sketch route is the span of the top k Ritz vectors, k chosen
    from their exact Ritz values: `explained` is exact for it, so at least --variance and at most
    what the best k-subspace explains; at rank D it is the exact route's. --no-verify: the
    sketch's estimates, exact_for null."""
    base = ["project"] + data + ["--image-shape", "4,6,1", "--variance", 0.6, "--json", "--quiet"]
    exact = c.run_json(base + ["--out", os.path.join(tmp, "p_exact.png")])
    args = base + ["--method", method, "--rank", rank, "--out", os.path.join(tmp, f"p_{method}{rank}.png")] + SEED[method](4)
    got = c.run_json(args)
    assert got["exact_for"] == "returned subspace", got
    xc = X - X.mean(axis=0)
    lam = np.linalg.eigvalsh(xc.T @ xc)[::-1]
    best = np.cumsum(lam) / lam.sum()
    k = got["k"]
    assert k >= exact["k"] and 0.6 <= got["explained"] <= best[k - 1] * (1 + 1e-12), (got, exact)
    if rank == D:
        assert k == exact["k"] and abs(got["explained"] - exact["explained"]) <= 1e-12, (got, exact)
    assert c.run_json(args + ["--no-verify"])["exact_for"] is None


@pytest.mark.parametrize("method", ["fd", "nystrom"])
def test_spectrum_killed_in_its_verification_pass_resumes_to_the_same_bytes(tmp, data, method):
    """The finished sketch waits on disk through the verification pass (verify_plan::park): the
    checkpoints written there read it back, and the resume parks it again."""
    args = ["spectrum"] + data + ["--method", method, "--rank", 6] + SEED[method](9) + ["--json", "--quiet"]
    rc, reference, err = c.run(args)
    assert rc == 0, err
    info, rc, out, err = c.kill_then_resume(args, os.path.join(tmp, f"spectrum-{method}.ckpt"),
                                            lambda s: s["pass"] == 1 and s["rows_done"] >= 1000, 500,
                                            "in the verification pass", timeout=30, delay_ms=40)
    assert not info["complete"] and info["verification_passes"] == 1, info
    assert rc == 0 and out == reference, f"spectrum resume in its verification pass: exit {rc} {err}"


@pytest.mark.parametrize("method", ["fd", "nystrom"])
def test_merge_of_halves(tmp, data, method):
    """Merge of sketch checkpoints over two halves matches one pass."""
    a, b, m = (os.path.join(tmp, f"{method}_{n}.ckpt") for n in "abm")
    common = ["--method", method, "--rank", 6] + SEED[method](2) + ["--quiet", "--no-verify"]  # shards: no verification pass
    c.run(["align"] + data + common + ["--limit", N // 2, "--checkpoint", a], check_rc=0)
    c.run(["align"] + data + common + ["--skip", N // 2, "--checkpoint", b], check_rc=0)
    c.run(["merge", a, b, "-o", m], check_rc=0)
    merged = c.run_json(["align", "--from", m])
    whole = c.run_json(["align"] + data + common)
    assert merged["n"] == N, f"{method} merge n"
    c.assert_close(merged["eigenvalues"], whole["eigenvalues"], 1e-2 if method == "fd" else 1e-8,
                   f"{method}: merged halves vs one pass, eigenvalues")
    c.assert_close(merged["alignment"][:3], whole["alignment"][:3], 1e-2 if method == "fd" else 1e-7,
                   f"{method}: merged halves vs one pass, alignment")


@pytest.mark.parametrize("extra,mentions,what", [
    (["tradeoff", "--method", "fd", "--rank", 4, "--lambda", 1, "--k", 2, "--no-verify"], ["--method exact"],
     "tradeoff with an unverified sketch"),
    (["align", "--method", "fd"], ["--rank"], "fd without --rank"),
    (["align", "--rank", 3], ["--rank"], "--rank with exact"),
], ids=["tradeoff", "fd-without-rank", "rank-with-exact"])
def test_refusals(data, extra, mentions, what):
    rc, out, err = c.run(extra[:1] + data + extra[1:])
    c.assert_one_line_error(rc, err, mentions, what)


# Options only some runs read (one table, validate.cpp): given where the run would not read
# them, they are refused before reading rather than silently ignored (issue 14, loose ends).
DENOISE = ["denoise", "--image-shape", "4,6,1", "--noise", "mask:patch=2x2,ratio=0.5"]
@pytest.mark.parametrize("argv,mentions", [
    (DENOISE + ["--refine", 2], ["--refine", "--method exact"]),
    (DENOISE + ["--refine", 0, "--method", "nystrom", "--rank", 4, "--no-verify"], ["--refine", "--no-verify"]),
    (["denoise", "--image-shape", "4,6,1", "--noise", "gaussian:sigma=0.1", "--refine", 2, "--method", "nystrom",
      "--rank", 4], ["--refine", "masking noise"]),
    (["align", "--verify"], ["--verify", "--method exact"]),
    (["tradeoff", "--lambda", 1, "--k", 2, "--no-verify"], ["--no-verify", "--method exact"]),
    (["align", "--method", "fd", "--rank", 3, "--passes", 2], ["--passes", "nystrom only"]),
    (["align", "--method", "fd", "--rank", 3, "--passes", 1], ["--passes", "nystrom only"]),
], ids=["refine-exact", "refine-no-verify", "refine-gaussian", "verify-exact", "no-verify-exact", "passes-fd",
        "passes-1-fd"])
def test_options_a_run_would_not_read_are_refused(tmp_path, data, argv, mentions):
    ck = str(tmp_path / "never.ckpt")
    rc, out, err = c.run(argv[:1] + data + argv[1:] + ["--checkpoint", ck])
    c.assert_one_line_error(rc, err, mentions, " ".join(map(str, argv)))
    assert not os.path.exists(ck), "a refused run wrote its checkpoint"


def test_refine_with_from_is_refused(tmp, data):
    ck = os.path.join(tmp, "refine-from.ckpt")
    c.run(DENOISE[:1] + data + DENOISE[1:] + ["--checkpoint", ck, "--quiet"], check_rc=0)
    rc, out, err = c.run(DENOISE + ["--from", ck, "--refine", 1])
    c.assert_one_line_error(rc, err, ["--refine", "--from"], "--refine with --from")


def test_refine_is_a_budget_and_a_resume_keeps_it(tmp, data):
    """--refine N: at most N incremental refinement passes, stopped early by the rule of MATH.md
    §7; the JSON says how many ran and why they stopped; a resume with another N is refused."""
    args = DENOISE[:1] + data + DENOISE[1:] + ["--method", "nystrom", "--rank", 6, "--seed", 1]
    j = c.run_json(args + ["--refine", 6])
    f = j["sketch_error"]["refinement"]
    assert f["budget"] == 6 and 1 <= f["passes"] <= 6 and f["stopped"] in ("converged", "budget"), f
    assert j["sketch_error"]["verification_passes"] == 1 + f["passes"], j["sketch_error"]
    # every restart's change and estimate in turn: one per refinement pass started, and the one
    # that stopped them; the first compares nothing (null), the last are change and estimate
    restarts = f["passes"] + (f["stopped"] == "converged")
    assert len(f["changes"]) == len(f["estimates"]) == restarts and f["changes"][0] is None, f
    assert f["changes"][-1] == f["change"] and f["estimates"][-1] == f["estimate"], f
    text = c.run(args + ["--refine", 6], check_rc=0)[1]
    assert "each restart in turn: changes not judged, " in text and "inf" not in text, text
    if f["stopped"] == "converged":
        # by the estimate, or (change null) because the span already held all of R^D, so a further
        # pass had nothing new to read (with the clean top refined too, after one pass here)
        assert f["passes"] < 6, f
        assert f["change"] is None or f["change"] <= f["estimate"] < f["threshold"], f
    ck = os.path.join(tmp, "refine-budget.ckpt")
    c.run(args + ["--refine", 6, "--checkpoint", ck, "--quiet"], check_rc=0)
    rc, out, err = c.run(args + ["--refine", 3, "--checkpoint", ck, "--resume"])
    c.assert_one_line_error(rc, err, ["--refine 6", "--refine"], "resume with another --refine")


def test_a_refining_denoise_takes_two_sketch_passes_by_default(tmp, data):
    """Without --passes, a Nyström denoise run that refines a masking noise sketches in two passes
    (its refinement converges from that basis in fewer passes: BENCHMARKS.md), exactly as
    --passes 2; every other run in one. A checkpoint begun with one pass is refused by a resume
    that does not say --passes 1, and shards past their first pass are refused by merge, each
    naming the way out."""
    args = DENOISE[:1] + data + DENOISE[1:] + ["--method", "nystrom", "--rank", 6, "--seed", 1, "--refine", 2]
    passes = lambda j: (j["sketch_error"]["sketch_passes"], j["sketch_error"]["max_passes"])  # noqa: E731
    default = c.run(args + ["--json"], check_rc=0)[1]
    assert passes(json.loads(default)) == (2, 2), json.loads(default)["sketch_error"]
    assert c.run(args + ["--passes", 2, "--json"], check_rc=0)[1] == default, "the default is --passes 2's run"
    assert passes(c.run_json(args + ["--passes", 1])) == (1, 1)
    assert passes(c.run_json(args[:-2] + ["--refine", 0])) == (1, 1), "nothing refined: one pass"
    gauss = ["denoise"] + data + ["--image-shape", "4,6,1", "--noise", "gaussian:sigma=0.1", "--method", "nystrom",
                                  "--rank", 6, "--seed", 1]
    assert passes(c.run_json(gauss)) == (1, 1), "a Gaussian noise is not refined: one pass"
    mc = ["denoise"] + data + ["--image-shape", "4,6,1", "--noise", "mask:patch=2x2,ratio=0.5,draws=2", "--method",
                               "nystrom", "--rank", 6, "--seed", 1]
    assert passes(c.run_json(mc)) == (1, 1), "a Monte-Carlo mask is not refined: one pass"
    # a checkpoint of one sketch pass (e.g. written before this default) resumes with --passes 1 only
    ck = os.path.join(tmp, "one-pass.ckpt")
    c.run(args + ["--passes", 1, "--checkpoint", ck, "--quiet"], check_rc=0)
    rc, out, err = c.run(args + ["--checkpoint", ck, "--resume"])
    c.assert_one_line_error(rc, err, ["--passes is 1 in the checkpoint but 2", "give --passes 1"],
                            "resume of a one-pass checkpoint under the default")
    # shards of the default's two passes: merge says to run them with --passes 1
    a, b, m = (os.path.join(tmp, f"two-pass-{x}.ckpt") for x in "abm")
    note = "run shards with --passes 1"  # said before reading, by a checkpointed run of a row range
    assert note in c.run(args + ["--limit", N // 2, "--checkpoint", a], check_rc=0)[2]
    assert note in c.run(args + ["--skip", N // 2, "--checkpoint", b], check_rc=0)[2]
    assert note not in c.run(args + ["--skip", N // 2], check_rc=0)[2], "no checkpoint: no shard"
    assert note not in c.run(args + ["--skip", N // 2, "--passes", 2, "--checkpoint", m + ".2"], check_rc=0)[2]
    rc, out, err = c.run(["merge", a, b, "-o", m])
    c.assert_one_line_error(rc, err, ["--passes 2", "--passes 1", "mpirun"], "merge of two-pass shards")
    assert not os.path.exists(m), "a refused merge wrote its output"


@pytest.mark.parametrize("method", ["fd", "nystrom"])
def test_verified_numbers_are_those_of_the_returned_subspace(tmp, data, method):
    """Issue 14: with the verification pass (the default) the eigenvalues printed are the exact
    Rayleigh quotients θ_j of the returned vectors: interlaced below the exact ones (Cauchy) and
    above the sketch's own; the JSON says what is exact and carries the sketch's error."""
    ex = c.run_json(["align"] + data)["eigenvalues"]  # uncentered, as align's sketch
    common = ["align"] + data + ["--method", method, "--rank", 4] + SEED[method](3)
    v = c.run_json(common)
    u = c.run_json(common + ["--no-verify"])
    assert v["exact_for"] == "returned subspace" and u["exact_for"] is None, "exact_for"
    e = v["sketch_error"]
    assert e["verified"] and e["verification_passes"] == 1 and len(e["residuals"]) == 4, e
    assert not u["sketch_error"]["verified"] and "residuals" not in u["sketch_error"]
    for j in range(4):
        assert v["eigenvalues"][j] <= ex[j] * (1 + 1e-9), f"θ_{j} above λ_{j}"
        assert v["eigenvalues"][j] >= u["eigenvalues"][j] * (1 - 1e-9) or method == "nystrom", f"θ_{j} below FD's"
    # The text output says the same.
    rc, out, err = c.run(common + ["--quiet"])
    assert rc == 0 and "verified by 1 more pass" in out and "exact for the subspaces printed" in out, out
    rc, out, err = c.run(common + ["--quiet", "--no-verify"])
    assert rc == 0 and "NOT verified" in out, out


def test_verify_refusals(tmp, data):
    ck = os.path.join(tmp, "noverify.ckpt")
    c.run(["align"] + data + ["--method", "fd", "--rank", 4, "--no-verify", "--checkpoint", ck, "--quiet"], check_rc=0)
    rc, out, err = c.run(["align", "--from", ck, "--verify"])
    c.assert_one_line_error(rc, err, ["--verify", "--from"], "--verify with --from")
    # A checkpoint with a verification pass merges only with others that have one (the merged
    # shards then resume into the verification pass: tests/cli/test_highd.py).
    vk, nk = os.path.join(tmp, "verify.ckpt"), os.path.join(tmp, "noverify-half.ckpt")
    c.run(["align"] + data + ["--method", "fd", "--rank", 4, "--skip", 3000, "--checkpoint", vk, "--quiet"], check_rc=0)
    c.run(["align"] + data + ["--method", "fd", "--rank", 4, "--limit", 3000, "--no-verify", "--checkpoint", nk,
                              "--quiet"], check_rc=0)
    rc, out, err = c.run(["merge", vk, nk, "-o", os.path.join(tmp, "m.ckpt")])
    c.assert_one_line_error(rc, err, ["verification pass", "--no-verify"], "merge of a verified run with another")
    # ... and is analysed after its pass, not with --from.
    rc, out, err = c.run(["align", "--from", vk])
    c.assert_one_line_error(rc, err, ["verification pass", "resume"], "--from of a verified run")


def test_nystrom_tolerance_stops_at_the_first_pass_below_it(data):
    """--tolerance T: the sketch passes stop after the first pass whose relative estimate
    ‖C − Ĉ‖_F / tr C is <= T (the same numbers as a run of exactly that many passes), or run
    all of --passes and say it was not met. After one pass, the reference is the first pass of
    a multi-pass sketch (block Krylov, K + max(K, 10) columns; --passes 1 has K + 10): a run
    that a tolerance every estimate meets stops there."""
    common = ["--method", "nystrom", "--rank", 4, "--seed", 3]
    est = []
    for q in range(1, 5):
        j = c.run_json(["align"] + data + common + (["--passes", q] if q > 1 else ["--passes", 4, "--tolerance", 0.999]))
        e = j["sketch_error"]
        assert e["sketch_passes"] == q and e["max_passes"] == (4 if q == 1 else q), f"passes {q}: {e}"
        assert e["relative_estimate"] > 0, f"passes {q}: {e}"
        est.append((e["relative_estimate"], j))
    for t in sorted({0.5 * (est[0][0] + est[1][0]), 1.01 * est[0][0], 0.99 * min(e for e, _ in est)}):
        j = c.run_json(["align"] + data + common + ["--passes", 4, "--tolerance", t])
        e = j["sketch_error"]
        first = next((i + 1 for i, (v, _) in enumerate(est) if v <= t), None)
        runs = first or 4
        assert e["sketch_passes"] == runs and e["max_passes"] == 4, f"T = {t}: {e}, estimates {[v for v, _ in est]}"
        assert e["tolerance"] == t and e["tolerance_met"] == (first is not None), f"T = {t}: {e}"
        ref = est[runs - 1][1]
        assert j["eigenvalues"] == ref["eigenvalues"] and j["alignment"] == ref["alignment"], \
            f"T = {t}: not the {runs}-pass result"
    rc, out, _ = c.run(["align"] + data + common + ["--passes", 4, "--tolerance", 1.01 * est[0][0]])
    assert rc == 0 and "--tolerance" in out and " met after 1 of at most 4 passes" in out, out


def test_krylov_memory_refused_early(data):
    """Block Krylov keeps every pass's block: its memory grows with --passes and is refused
    before any data is read, naming the way out."""
    # 21 KB: 1 pass ~5 KB, 3 ~38 KB, plus the batch as read (20 rows of 24 doubles: 3.8 KB)
    small = [20 if a == "250" else a for a in data]  # the fixture's --batch 250
    args = ["align"] + small + ["--method", "nystrom", "--rank", 2, "--memory", 2e-5]
    rc, _, err = c.run(args + ["--passes", 1])
    assert rc == 0, err
    rc, _, err = c.run(args + ["--passes", 3])
    assert rc == 2 and "fewer --passes" in err and "nystrom" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("args,what", [(["--method", "fd", "--rank", 4, "--tolerance", 0.1], "nystrom only"),
                                       (["--method", "nystrom", "--rank", 4, "--tolerance", 0.1], "--passes Q >= 2"),
                                       (["--tolerance", 0.1], "nystrom only")], ids=["fd", "one-pass", "exact"])
def test_tolerance_refused_early(data, args, what):
    rc, _, err = c.run(["align"] + data + args)
    assert rc == 2 and what in err, f"{args}: exit {rc}: {err}"


def test_nystrom_tolerance_sigkill_in_the_verification_pass_then_resume(tmp, data):
    """A sketch that met --tolerance after its first pass skips to the verification pass (pass
    index 4 of --passes 4): SIGKILL there, then --resume is byte-identical."""
    args = ["align"] + data + ["--method", "nystrom", "--rank", 6, "--passes", 4, "--tolerance", 0.5, "--seed", 9,
                               "--json", "--quiet"]
    rc, reference, err = c.run(args)
    assert rc == 0 and json.loads(reference)["sketch_error"]["sketch_passes"] == 1, f"tolerance run: {err}"
    _, rc, out, err = c.kill_then_resume(args, os.path.join(tmp, "nytol.ckpt"),
                                         lambda s: s["pass"] == 4 and s["rows_done"] >= 1000, 500,
                                         "in the verification pass", timeout=30, delay_ms=40)
    assert rc == 0 and out == reference, f"resume in the verification pass: exit {rc}, identical={out == reference} {err}"


@pytest.mark.parametrize("value,on", [(None, False), ("", False), ("0", False), ("1", True), ("yes", True)],
                         ids=["unset", "empty", "0", "1", "yes"])
def test_memory_trace_is_off_unless_set_to_a_true_value(data, value, on):
    """RECALIGN_MEMORY_TRACE (docs/benchmarks-log.md's diagnostic): "memory: PHASE: VmRSS ..." lines on
    stderr at each phase of a verified run when set, none when unset, empty or 0."""
    env = {k: v for k, v in os.environ.items() if k != "RECALIGN_MEMORY_TRACE"}
    if value is not None:
        env["RECALIGN_MEMORY_TRACE"] = value
    argv = DENOISE[:1] + data + DENOISE[1:] + ["--method", "nystrom", "--rank", 6, "--refine", 1, "--json", "--quiet"]
    p = subprocess.run([c.RECALIGN] + [str(a) for a in argv], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    marks = [line for line in p.stderr.splitlines() if line.startswith("memory: ")]
    assert bool(marks) == on, f"RECALIGN_MEMORY_TRACE={value!r}: {p.stderr!r}"
    if on:
        assert any("sketch finished: VmRSS " in line for line in marks) and all(" kB, at " in line for line in marks), marks


def test_tradeoff_stopped_early_then_resumed_reports_the_passes_it_ran(tmp, data):
    """The trade-off's adaptive stop (MATH.md §7) ends its CG passes before the --refine budget:
    the checkpoint written after the stop holds how many passes ran, so --resume of it (and of
    a run SIGKILLed in its verification pass) prints the uninterrupted run's JSON, not the
    budget's pass count."""
    args = ["tradeoff"] + data + ["--method", "nystrom", "--rank", 4, "--lambda", "0,1,10", "--k", 3, "--json",
                                  "--quiet"]
    rc, reference, err = c.run(args)
    f = json.loads(reference)[0]["refinement"]
    assert rc == 0 and f["stopped"] == "converged" and f["passes"] < f["max_passes"] - 1, f"the stop did not fire: {f} {err}"
    ck = os.path.join(tmp, "tradeoff-stop.ckpt")
    c.run(args + ["--checkpoint", ck], check_rc=0)
    rc, out, err = c.run(args + ["--checkpoint", ck, "--resume"])
    assert rc == 0 and out == reference, f"resumed after the stop: {json.loads(out)[0]['refinement']} {err}"
    _, rc, out, err = c.kill_then_resume(args, os.path.join(tmp, "tradeoff-stop-killed.ckpt"),
                                         lambda s: s["pass"] == 1 and s["rows_done"] >= 1000, 500,
                                         "in the verification pass", timeout=30, delay_ms=40)
    assert rc == 0 and out == reference, f"resumed in the verification pass: exit {rc} {err}"


@pytest.mark.parametrize("command", ["tradeoff", "denoise"])
def test_no_pass_is_read_after_the_adaptive_stop(data, command):
    """After the adaptive stop (the trade-off's CG passes, denoise's refinement) the passes left
    read nothing: stderr's wall time per pass lists the sketch pass and the verification passes
    run, no pass more (a pass read for nothing would get a time of its own)."""
    if command == "tradeoff":
        argv = ["tradeoff"] + data + ["--method", "nystrom", "--rank", 4, "--lambda", "0,1", "--k", 3]
    else:
        argv = DENOISE[:1] + data + DENOISE[1:] + ["--method", "nystrom", "--rank", 6, "--seed", 1]
    rc, out, err = c.run(argv + ["--json"])
    j = json.loads(out)
    e = (j[0] if command == "tradeoff" else j)["sketch_error"]
    stopped = (j[0] if command == "tradeoff" else e)["refinement"]["stopped"] == "converged"
    assert rc == 0 and stopped, f"{command}: the stop did not fire: {e}"
    line = next(x for x in err.splitlines() if "wall seconds per pass" in x)
    times = line.split("): ", 1)[1].split(", ")
    assert f"then {e['verification_passes']} verification pass" in line, line
    # denoise refines a mask here: two sketch passes by default, tradeoff one
    assert e["sketch_passes"] == (2 if command == "denoise" else 1), e
    assert len(times) == e["sketch_passes"] + e["verification_passes"], f"{command}: a pass read after the stop: {line}"


@pytest.mark.parametrize("command", ["tradeoff", "denoise"])
def test_a_run_its_adaptive_stop_ended_is_complete(tmp, data, command):
    """A run whose adaptive stop ended its passes early has read all it will read: `info` calls
    its checkpoint complete and lists the passes read (not the budget's), the JSON's input
    counts every row, and `merge` of such runs' shards notes no interrupted run (it did: "0 of
    its rows are in the merge")."""
    if command == "tradeoff":
        argv = ["tradeoff"] + data + ["--method", "nystrom", "--rank", 4, "--lambda", "0,1", "--k", 3]
    else:  # --passes 1: its shards below merge within their first sketch pass (the refining default is 2)
        argv = DENOISE[:1] + data + DENOISE[1:] + ["--method", "nystrom", "--rank", 6, "--seed", 1, "--passes", 1]

    def run(extra, ck):
        rc, out, err = c.run(argv + extra + ["--json", "--quiet", "--checkpoint", ck])
        j = json.loads(out) if rc == 0 else None
        e = (j[0] if command == "tradeoff" else j)["sketch_error"] if j else None
        stopped = e and (j[0] if command == "tradeoff" else e)["refinement"]["stopped"] == "converged"
        assert rc == 0 and stopped, f"{command}: the stop did not fire: {e} {err}"
        # The JSON's input rows are the rows read (denoise's were 0 once the stop had skipped a
        # pass); tradeoff's, an array of points, gives them with every point.
        for inp in ([p["input"] for p in j] if command == "tradeoff" else [j["input"]]):
            assert sum(x["rows"] for x in inp) == (N // 2 if extra else N), inp
        return e["verification_passes"]

    ck = os.path.join(tmp, f"stopped-{command}.ckpt")
    read = run([], ck)
    info = json.loads(c.run(["info", ck, "--json"], check_rc=0)[1])
    assert info["complete"] and info["pending"] is None and info["refinement_stopped"], info
    assert info["verification_passes"] == read < info["planned_verification_passes"], info
    assert info["rows_per_pass"] == [N] * (1 + read), info
    text = c.run(["info", ck], check_rc=0)[1]
    assert "complete      yes" in text and f"+ {read} verification (an adaptive stop ended them" in text, text
    assert f"read in pass {1 + read}," in text, text
    # --resume of it reads nothing and prints the run's numbers; the file stays as it was.
    before = open(ck, "rb").read()
    rc, _, err = c.run(argv + ["--json", "--checkpoint", ck, "--resume"])
    assert rc == 0 and "nothing left to read" in err and open(ck, "rb").read() == before, err
    shards = [os.path.join(tmp, f"stopped-{command}-{i}.ckpt") for i in (0, 1)]
    run(["--limit", N // 2], shards[0])
    run(["--skip", N // 2], shards[1])
    merged = os.path.join(tmp, f"stopped-{command}-all.ckpt")
    rc, _, err = c.run(["merge", shards[0], shards[1], "-o", merged])
    assert rc == 0 and "interrupted run" not in err and "resume it with the whole input" in err, err


@pytest.mark.parametrize("command", ["align", "tradeoff", "denoise"])
def test_from_a_verified_run_says_to_resume_it(tmp, data, command):
    """A verified run's numbers come from passes over the data: --from its checkpoint is
    refused, for every command alike, with what to do instead (resume it with its input; the
    sketch alone with --no-verify), not with what the sketch alone lacks (denoise and tradeoff
    said "needs the complete spectrum ... only the exact route"), and the file is untouched."""
    runs = {"align": (["align"], []),
            "tradeoff": (["tradeoff"], ["--lambda", "0,1", "--k", 3]),
            "denoise": (DENOISE[:1], DENOISE[1:])}
    head, tail = runs[command]
    ck = os.path.join(tmp, f"verified-from-{command}.ckpt")
    c.run(head + data + tail + ["--method", "nystrom", "--rank", 6, "--quiet", "--checkpoint", ck], check_rc=0)
    before = open(ck, "rb").read()
    rc, _, err = c.run(head + tail + ["--from", ck])
    c.assert_one_line_error(rc, err, [ck, "byte offset", "holds a run with a verification pass", "--resume",
                                      "--no-verify"], f"{command} --from a verified run")
    assert "complete spectrum" not in err and open(ck, "rb").read() == before, err
    # not "run with --no-verify", which a user read as "--from this checkpoint --no-verify"
    assert "a run made with --no-verify" in err and "or run with --no-verify" not in err, err


def test_a_budget_spent_refinement_says_so_on_stderr(data):
    """When --refine's budget ends the refinement passes before the stop rule fires, stderr says
    so with the estimate the JSON records (not with --quiet); a run the rule stopped does not."""
    args = DENOISE[:1] + data + DENOISE[1:] + ["--method", "nystrom", "--rank", 6, "--seed", 1]
    note = "ended the passes before its stop rule fired"
    rc, out, err = c.run(args + ["--refine", 1, "--passes", 1, "--json"])
    f = json.loads(out)["sketch_error"]["refinement"]
    assert rc == 0 and f["stopped"] == "budget", f
    line = next((x for x in err.splitlines() if note in x), None)
    said = "cannot be estimated" if f["estimate"] is None else f"about {f['estimate']:.3g} "  # JSON: null for inf
    assert line and "--refine 1" in line and said in line, err
    assert not any(w in line for w in ("change inf", "change nan")), line  # "not judged" said in words
    assert "--passes 2" in line, err  # one Nyström sketch pass: a second one is the other remedy
    for two in (["--passes", 2], []):  # the refining default is two passes
        rc, out, err = c.run(args + ["--refine", 1, "--json"] + two)
        assert rc == 0 and json.loads(out)["sketch_error"]["refinement"]["stopped"] == "budget", out
        line = next((x for x in err.splitlines() if note in x), None)
        assert line and "--passes 2" not in line, err
    rc, out, err = c.run(args + ["--refine", 1, "--quiet"])
    assert rc == 0 and note not in err, err
    rc, out, err = c.run(args + ["--json"])
    f = json.loads(out)["sketch_error"]["refinement"]
    assert rc == 0 and f["stopped"] == "converged" and note not in err, (f, err)


def _u64(b, at):
    return struct.unpack_from("<Q", b, at)[0]


def verified_carried_matrix(b, which):
    """Where matrix `which` (0 basis, 1 Sxx V, 2 Vᵀ Sxx V, 3 Gram, 4 its Sxx products) of the
    carried statistics of a verified checkpoint's refinement pass starts, as laid out by
    verified_state::save (tools/recalign/verified_state.cpp), with the offsets of the length
    prefixes that enclose it (the accumulator's, the statistics')."""
    a = b.index(b"RAVERIF5")
    at = a + 16                                   # magic, pass
    at += 8 + _u64(b, at)                         # route
    blocks = _u64(b, at)
    at += 8
    for _ in range(blocks):
        at += 8 + _u64(b, at)
    assert _u64(b, at) == 1, "the checkpoint holds a verification pass"
    at += 8
    at += 8 + _u64(b, at)                         # the pass's restricted moments
    at += 32                                      # planned, refined, stopped, change
    at += 8 + 8 * _u64(b, at)                     # curves
    assert _u64(b, at) == 1, "the checkpoint holds a refinement pass"
    stats = at + 16                               # has next, carried
    at = stats + 8 + 16                           # its length, centering, n
    for _ in range(which):
        at += 8 + _u64(b, at)
    return at, [a - 8, stats]


def with_matrix(b, where, lengths, rows, cols):
    """Checkpoint bytes `b` with the matrix part at `where` replaced by a rows x cols one, every
    enclosing length, the payload size and both CRCs (the payload's, the header's) recomputed."""
    new = struct.pack("<QQ", rows, cols) + np.arange(rows * cols, dtype="<f8").tobytes()
    old = _u64(b, where)
    grow = len(new) - old
    out = bytearray(b[:where] + struct.pack("<Q", len(new)) + new + b[where + 8 + old:])
    for at in lengths:
        struct.pack_into("<Q", out, at, _u64(out, at) + grow)
    struct.pack_into("<Q", out, 48, _u64(out, 48) + grow)
    struct.pack_into("<I", out, 56, zlib.crc32(bytes(out[64:])))
    struct.pack_into("<I", out, 60, zlib.crc32(bytes(out[:60])))
    return bytes(out)


@pytest.mark.parametrize("which,rows,cols", [(3, 1, 1), (2, 1, 1), (1, 24, 1)], ids=["gram", "vsv", "sv"])
def test_resume_refuses_carried_statistics_that_do_not_fit_their_basis(tmp_path, data, which, rows, cols):
    """The carried statistics of a refinement pass have no checksum of their own: a checkpoint
    whose CRCs are right but whose Gram matrix (or Vᵀ Sxx V, Sxx V) does not fit the basis is
    refused on load, naming the file and the matrix's byte offset (complete_pass would read it
    out of bounds), and is left as it was."""
    args = DENOISE[:1] + data + DENOISE[1:] + ["--method", "nystrom", "--rank", 6, "--seed", 1, "--refine", 1]
    ck = str(tmp_path / "carried.ckpt")
    c.run(args + ["--checkpoint", ck, "--quiet"], check_rc=0)
    with open(ck, "rb") as f:
        good = f.read()
    where, lengths = verified_carried_matrix(good, which)
    bad = with_matrix(good, where, lengths, rows, cols)
    with open(ck, "wb") as f:
        f.write(bad)
    rc, out, err = c.run(args + ["--checkpoint", ck, "--resume", "--quiet"])
    c.assert_one_line_error(rc, err, [ck, f"byte offset {where}", "do not fit their basis"],
                            "carried statistics that do not fit")
    with open(ck, "rb") as f:
        assert f.read() == bad, "the refused checkpoint was changed"


def verified_tail(b):
    """Where the trailing parts of a finished denoise run's RAVERIF5 verified state start: the
    state's magic and end, the result's known blocks (one set: [u64 length][count 1][geometry][D]
    [n][matrix a x a]) and the history's two vectors ([u64 n][n doubles] each: changes, then
    estimates). Found from the end: the history's vectors, then the one length that fits."""
    a = b.index(b"RAVERIF5")
    end = a + _u64(b, a - 8)
    at = end
    vectors = []
    for _ in range(2):  # estimates, then changes
        n = next(k for k in range(0, 64) if at - 8 - 8 * k >= a and _u64(b, at - 8 - 8 * k) == k)
        at -= 8 + 8 * n
        vectors.insert(0, at)
    final = next(at - 8 - (56 + 8 * k * k) for k in range(1, 2048)
                 if _u64(b, at - 8 - (56 + 8 * k * k)) == 56 + 8 * k * k and _u64(b, at - (56 + 8 * k * k)) == 1)
    return {"magic": a, "end": end, "final": final, "changes": vectors[0], "estimates": vectors[1]}


def with_crcs(out, a, grow=0):
    """Checkpoint bytes `out` (a bytearray) with the verified state's length (its magic at `a`)
    and the payload size grown by `grow` bytes and both CRCs recomputed."""
    struct.pack_into("<Q", out, a - 8, _u64(out, a - 8) + grow)
    struct.pack_into("<Q", out, 48, _u64(out, 48) + grow)
    struct.pack_into("<I", out, 56, zlib.crc32(bytes(out[64:])))
    struct.pack_into("<I", out, 60, zlib.crc32(bytes(out[:60])))
    return bytes(out)


def as_version_4(b):
    """A finished denoise run's checkpoint bytes as RAVERIF4 wrote them: the verified state without
    its trailing parts (what the pass being read and the result know of Vᵀ Bd V; every restart's
    change and estimate), the enclosing length, the payload size and both CRCs recomputed."""
    t = verified_tail(b)
    a, end, final = t["magic"], t["end"], t["final"]
    assert b[final - 16:final] == struct.pack("<QQ", 8, 0), "no pass being read: an empty list before the result's"
    out = bytearray(b[:final - 16] + b[end:])
    out[a:a + 8] = b"RAVERIF4"
    return with_crcs(out, a, -(end - (final - 16)))


def test_version_4_checkpoint_resumes_without_what_it_lacks(tmp_path, data):
    """A checkpoint of before RAVERIF5 has neither the known Vᵀ Bd V nor the restarts' history:
    it still resumes, its analyses sweep the blocks in full (the same numbers to rounding) and
    the history says null for every restart it did not record."""
    args = DENOISE[:1] + data + DENOISE[1:] + ["--method", "nystrom", "--rank", 6, "--seed", 1, "--refine", 3, "--json"]
    ck = str(tmp_path / "v5.ckpt")
    rc, out, err = c.run(args + ["--checkpoint", ck, "--quiet"])
    assert rc == 0, err
    new = json.loads(out)
    f = new["sketch_error"]["refinement"]
    assert len(f["changes"]) == f["passes"] + (f["stopped"] == "converged") > 0, f
    with open(ck, "rb") as fh:
        v4 = as_version_4(fh.read())
    old_ck = str(tmp_path / "v4.ckpt")
    with open(old_ck, "wb") as fh:
        fh.write(v4)
    rc, out, err = c.run(args + ["--checkpoint", old_ck, "--resume", "--quiet"])
    assert rc == 0, err
    old = json.loads(out)
    g = old["sketch_error"]["refinement"]
    assert g["changes"] == [None] * len(f["changes"]) and g["estimates"] == g["changes"], g
    assert (g["change"], g["estimate"], g["passes"]) == (f["change"], f["estimate"], f["passes"]), g
    for n_old, n_new in zip(old["noises"], new["noises"]):
        c.assert_close(n_old["relative"], n_new["relative"], 1e-9, "relative differences", atol=1e-12)
        c.assert_close(n_old["impact"], n_new["impact"], 1e-9, "impacts", atol=1e-12)


@pytest.mark.parametrize("fault", ["n", "unequal", "too long"])
def test_resume_refuses_a_tail_that_does_not_fit(tmp_path, data, fault):
    """The verified state's trailing parts are checked against the rest before anything is used:
    known patch blocks of another row count, or a history whose two vectors differ in length or
    hold more restarts than the passes allow, are refused naming the file and the byte offset,
    and the checkpoint is left as it was (its CRCs are right: only these checks can catch it)."""
    args = DENOISE[:1] + data + DENOISE[1:] + ["--method", "nystrom", "--rank", 6, "--seed", 1, "--refine", 3, "--json"]
    ck = str(tmp_path / "tail.ckpt")
    c.run(args + ["--checkpoint", ck, "--quiet"], check_rc=0)
    with open(ck, "rb") as fh:
        good = fh.read()
    t = verified_tail(good)
    out = bytearray(good)
    if fault == "n":  # the result's known blocks: [length][count][geometry][D][n][matrix]
        n_at = t["final"] + 32
        struct.pack_into("<Q", out, n_at, _u64(out, n_at) + 1)
        bad, where, words = with_crcs(out, t["magic"]), t["final"] + 40, "do not fit their statistics"
    else:
        grow = [t["estimates"]] if fault == "unequal" else [t["estimates"], t["changes"]]
        extra = 1 if fault == "unequal" else 2
        for at in sorted(grow, reverse=True):  # the later vector first: the earlier one's offset stays
            k = _u64(out, at)
            out[at:at + 8 + 8 * k] = struct.pack("<Q", k + extra) + bytes(out[at + 8:at + 8 + 8 * k]) + \
                struct.pack("<d", 0.0) * extra
        bad = with_crcs(out, t["magic"], 8 * extra * len(grow))
        where, words = t["changes"], "refinement history"
    with open(ck, "wb") as fh:
        fh.write(bad)
    rc, out_, err = c.run(args + ["--checkpoint", ck, "--resume", "--quiet"])
    c.assert_one_line_error(rc, err, [ck, f"byte offset {where}", words], f"a tail with a wrong {fault}")
    with open(ck, "rb") as fh:
        assert fh.read() == bad, "the refused checkpoint was changed"


def test_resume_of_a_stopped_run_says_it_stopped(tmp, data):
    """--resume of a trade-off whose adaptive stop ended its passes says how many passes it read
    and that it stopped, not the planned count as the pass it is in ("pass 22 of 22")."""
    args = ["tradeoff"] + data + ["--method", "nystrom", "--rank", 4, "--lambda", "0,1,10", "--k", 3, "--json"]
    ck = os.path.join(tmp, "tradeoff-stopped-resume.ckpt")
    j = json.loads(c.run(args + ["--checkpoint", ck, "--quiet"], check_rc=0)[1])
    f = j[0]["refinement"]
    assert f["stopped"] == "converged", f"the stop did not fire: {f}"
    rc, out, err = c.run(args + ["--checkpoint", ck, "--resume"])
    line = next(x for x in err.splitlines() if "resuming" in x)
    read = 1 + j[0]["sketch_error"]["verification_passes"]  # the sketch pass and the verification passes run
    assert rc == 0 and f"stopped after {read} of at most" in line and "(pass " not in line, line


def test_fd_checkpoint_of_the_earlier_ell_resumes_with_it(tmp, data):
    """The FD route's ℓ went from min(2K, D) to min(3K, D) (frequent_directions_default_ell): a
    checkpoint begun with the earlier ℓ resumes with it, to the numbers that run would have
    given. A run of --rank 4 (ℓ = 12) writes, at any row, the very sketch an older build wrote
    for --rank 6 (ℓ = 2·6 = 12) on the same rows and batches: spliced into a --rank 6 run's
    checkpoint, the resumed run ends with ℓ = 12 (Δ and the top 4 eigenvalues of the --rank 4
    run), not the fresh --rank 6 run's ℓ = 18."""
    common = ["align"] + data + ["--method", "fd", "--no-verify"]
    ck6, ck4 = os.path.join(tmp, "fd-legacy6.ckpt"), os.path.join(tmp, "fd-legacy4.ckpt")
    for p in (ck6, ck4):
        if os.path.exists(p):
            os.remove(p)
    # A --rank 6 run killed mid-stream (after a checkpoint at a batch boundary). 40 ms per batch:
    # the window (16 batches) must outlast an `info` call, ~0.3 s in the ASan build.
    p = subprocess.Popen([c.RECALIGN] + [str(a) for a in common + ["--rank", 6, "--checkpoint", ck6,
                                                                   "--checkpoint-every", 1000,
                                                                   "--test-batch-delay-ms", 40, "--quiet"]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = None
    try:
        while p.poll() is None and done is None:
            if os.path.exists(ck6):
                rc, out, _ = c.run(["info", ck6, "--json"])
                rows = json.loads(out)["segments"][0]["rows_done"] if rc == 0 else 0
                if 2000 <= rows < N:
                    p.kill()
                    p.wait()
                    done = json.loads(c.run(["info", ck6, "--json"], check_rc=0)[1])["segments"][0]["rows_done"]
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()
    assert done is not None and 2000 <= done < N, f"never saw a mid-stream checkpoint: {done}"
    # The older build's sketch of those rows: a --rank 4 run of the same rows.
    c.run(common + ["--rank", 4, "--limit", done, "--checkpoint", ck4, "--quiet"], check_rc=0)
    with open(ck6, "rb") as f:
        blob = f.read()
    with open(ck4, "rb") as f:
        old = f.read()

    def nested(b):  # (offset, bytes) of the FD sketch nested in a run checkpoint
        at = b.index(b"RECALIGN", 8)
        return at, b[at:at + 64 + struct.unpack_from("<Q", b, at + 48)[0]]

    at, fresh = nested(blob)
    _, legacy = nested(old)
    assert struct.unpack_from("<Q", blob, at - 8)[0] == len(fresh), "layout: [u64 length][sketch][class statistics]"
    assert legacy != fresh, "the ℓ = 12 sketch is another state than the ℓ = 18 one"
    grow = len(legacy) - len(fresh)  # the buffer's rows in use are saved: either sign
    acc = struct.unpack_from("<Q", blob, at - 16)[0]  # the route state's string length
    forged = bytearray(blob[:at - 16] + struct.pack("<QQ", acc + grow, len(legacy)) + legacy + blob[at + len(fresh):])
    struct.pack_into("<QI", forged, 48, len(forged) - 64, zlib.crc32(bytes(forged[64:])))
    struct.pack_into("<I", forged, 60, zlib.crc32(bytes(forged[:60])))
    with open(ck6, "wb") as f:
        f.write(bytes(forged))
    rc, out, err = c.run(common + ["--rank", 6, "--checkpoint", ck6, "--resume", "--json", "--quiet"])
    assert rc == 0, f"the checkpoint of the earlier ℓ did not resume: {err}"
    resumed = json.loads(out)
    four = c.run_json(common + ["--rank", 4])
    six = c.run_json(common + ["--rank", 6])
    bound = lambda j: j["sketch_error"]["error_bound"]  # noqa: E731  (Δ of the sketch)
    assert bound(resumed) == bound(four), (bound(resumed), bound(four))
    # The same sketch (Δ bit for bit); its top 4 eigenvalues to rounding: FD's finish refines the
    # directions asked for (6 here, 4 there) by one Rayleigh–Ritz step on just those.
    assert resumed["eigenvalues"][:4] == pytest.approx(four["eigenvalues"], rel=1e-13, abs=0), \
        (resumed["eigenvalues"], four["eigenvalues"])
    assert len(resumed["eigenvalues"]) == 6 and resumed["sketch_error"]["rank"] == 6
    assert bound(six) < bound(resumed), "a fresh --rank 6 run keeps ℓ = 18 rows (smaller Δ)"


# --precision f32-kernels on the verified routes: only the sketch changes.
@pytest.fixture(scope="module")
def pixels(tmp):
    """The module's rows as uint8 pixels (Nyström's single-precision path reads uint8 and
    float32; float64 rows always take the double path)."""
    d = os.path.join(tmp, "pixels")
    os.makedirs(d, exist_ok=True)
    return c.write_data(d, np.clip(X * 40 + 100, 0, 255).astype(np.uint8), Y.astype("<i4"), "--batch", "250")


@pytest.mark.parametrize("command", ["align", "tradeoff", "denoise"])
def test_single_precision_sketch_of_a_verified_run(pixels, command):
    """The default is --precision f64; f32-kernels gives another sketch (other bits) whose
    verified numbers (computed in double by the verification passes, for the subspace that
    sketch found) agree with the f64 sketch's to the sketch's single-precision rounding."""
    extra = {"align": [], "tradeoff": ["--lambda", "0,1", "--k", 3],
             "denoise": ["--image-shape", "4,6,1", "--noise", "mask:patch=2x2,ratio=0.5"]}[command]
    args = [command] + pixels + extra + ["--method", "nystrom", "--rank", 8, "--seed", 5]
    default = c.run_json(args)
    single = c.run_json(args + ["--precision", "f32-kernels"])
    assert default == c.run_json(args + ["--precision", "f64"]), f"{command}: the default is not f64"
    assert default != single, f"{command}: --precision f32-kernels took the double path"
    curve = {"align": lambda j: j["alignment"], "tradeoff": lambda j: [p["loss"] for p in j],
             "denoise": lambda j: j["noises"][0]["alignment"]}[command]
    c.assert_close(curve(single), curve(default), 1e-4, f"{command}: f32 vs f64 sketch, verified numbers")
    assert (single if command != "tradeoff" else single[0])["exact_for"] == \
        (default if command != "tradeoff" else default[0])["exact_for"]
