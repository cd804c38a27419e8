"""Issue 14, "Accuracy": the sketch routes with their verification passes against the exact
route, end to end, on data with n >> D. Fashion-MNIST (D = 784, 20000 images) and
recalign-synth's 1/f² images (24x24x3 = 1,728: box averages of 96x96 images, 8000 rows):
denoising relative differences for patches 1, 2, 4, 8 from `--method nystrom --rank 256
--passes 2` within 2e-3 of the exact route for K <= 64 with the same sign where
|exact| > 5e-3, the normalised noise impact within 1e-2, Gaussian impact < 1e-10; trade-off
losses (upper bounds) within 1 % for λ = 0, 1, 10. The sketch route runs one masking noise at a
time: its verification space is span(U) plus 256 + 64 directions per masking noise, so with
all noises in one command it would cover R^D at these D and agree trivially. The full sizes
(32x32x3 = 3,072 and 64x64x3 = 12,288, all 16 masks) are tools/bench/accuracy_highd.py's
(exact route too slow for CI there). Then SIGKILL during the verification pass, and --resume,
gives the same bytes."""
import json
import os
import subprocess

import numpy as np
import pytest

import cli_common as c

SYNTH = os.environ.get("RECALIGN_SYNTH", "build/tools/synth/recalign-synth")
SKETCH = ["--method", "nystrom", "--rank", 256, "--passes", 2, "--seed", 1]


def make_synthetic(tmp, rows, side, factor):
    images, labels = os.path.join(tmp, f"s{side}.u8"), os.path.join(tmp, f"s{side}.idx")
    if not os.path.exists(images):
        subprocess.run([SYNTH, "--rows", str(rows), "--height", str(side * factor), "--width", str(side * factor),
                        "--downsample", str(factor), "--seed", "3", "--output", images, "--labels", labels],
                       check=True, capture_output=True)
    return ["--images", images, "--format", "raw", "--raw-shape", f"{rows},{side * side * 3}", "--labels", labels,
            "--image-shape", f"{side},{side},3"]


@pytest.fixture(scope="module")
def synthetic(tmp):
    return make_synthetic(tmp, 3000, 16, 4)


def compare_denoise(args, masks, what):
    """The exact route once with every noise; the sketch route once per mask (with Gaussian)."""
    flags = lambda ns: [a for n in ns for a in ("--noise", n)]
    exact = {n["spec"]: n for n in c.run_json(["denoise"] + args + flags(masks + ["gaussian:sigma=0.1"]))["noises"]}
    worst = {}
    for mask in masks:
        sketch = c.run_json(["denoise"] + args + flags([mask, "gaussian:sigma=0.1"]) + SKETCH)
        assert sketch["exact_for"] == "returned subspaces" and sketch["sketch_error"]["verified"], what
        s, g = sketch["noises"]
        assert max(abs(v) for v in g["impact"]) < 1e-10, f"{what}: Gaussian impact {max(g['impact'])}"
        e = exact[s["spec"]]
        k = min(64, len(e["relative"]), len(s["relative"]))
        assert k == 64, f"{what} {mask}: curves of {len(e['relative'])} / {len(s['relative'])} points"
        d = max(abs(a - b) for a, b in zip(e["relative"][:k], s["relative"][:k]))
        imp = max(abs(a - b) for a, b in zip(e["impact_normalised"][:k], s["impact_normalised"][:k]))
        worst[mask] = (d, imp)
        for a, b in zip(e["relative"][:k], s["relative"][:k]):
            if abs(a) > 5e-3:
                assert (a > 0) == (b > 0), f"{what} {mask}: sign of {a} vs {b}"
    print(what, {n: f"{d:.2e} / {i:.2e}" for n, (d, i) in worst.items()})
    assert all(d <= 2e-3 for d, _ in worst.values()), f"{what}: relative differences {worst}"
    assert all(i <= 1e-2 for _, i in worst.values()), f"{what}: impacts {worst}"


@pytest.mark.accuracy
def test_denoise_fashion(fashion_mnist):
    compare_denoise(["--limit", 20000, "--image-shape", "28,28,1"],
                    ["mask:patch=1x1,ratio=0.25", "mask:patch=2x2,ratio=0.5,scheme=fixed", "mask:patch=4x4,ratio=0.75",
                     "mask:patch=8x8,ratio=0.9"], "Fashion 20000")


@pytest.mark.accuracy
def test_denoise_synthetic(tmp):
    compare_denoise(make_synthetic(tmp, 8000, 24, 4), ["mask:patch=2x2,ratio=0.5", "mask:patch=8x8,ratio=0.75"],
                    "synthetic 24x24x3")


@pytest.mark.accuracy
@pytest.mark.parametrize("k", [20, 64])
def test_tradeoff_fashion(fashion_mnist, k):
    args = ["tradeoff", "--limit", 20000, "--lambda", "0,1,10", "--k", k]
    exact = c.run_json(args)
    sketch = c.run_json(args + SKETCH)
    for e, s in zip(exact, sketch):
        assert s["bound"] == "upper" and s["exact_for"] == "returned encoder"
        assert s["loss"] >= e["loss"] * (1 - 1e-9), f"λ = {e['lambda']}: below the optimum"
        assert s["loss"] <= e["loss"] * 1.01, f"λ = {e['lambda']}: {s['loss']} vs {e['loss']}"


def test_kill_in_the_verification_pass_then_resume(tmp, synthetic):
    args = ["denoise"] + synthetic + ["--noise", "mask:patch=4x4,ratio=0.75", "--method", "nystrom", "--rank", 32,
                                      "--passes", 2, "--json", "--quiet", "--batch", 100]
    rc, reference, err = c.run(args)
    assert rc == 0, err
    ck = os.path.join(tmp, "verify.ckpt")
    # passes 0, 1: the sketch; 2: verification (info says so, and that its numbers are pending).
    info, rc, out, err = c.kill_then_resume(args, ck, lambda s: s["pass"] == 2 and s["rows_done"] >= 600, 200,
                                            "in the verification pass")
    assert not info["complete"] and info["rows_per_pass"][:2] == [3000, 3000], info
    assert "verification pass 1 of 9" in info["pending"] and "none yet" in info["pending"], info
    assert rc == 0 and out == reference, f"resume in the verification pass: exit {rc}, identical={out == reference} {err}"
    info = json.loads(c.run(["info", ck, "--json"], check_rc=0)[1])
    assert info["complete"] and info["pending"] is None and info["verification_passes"] == 9, info


def test_kill_in_a_refinement_pass_then_resume(tmp, synthetic):
    """During a refinement pass the carried directions' Sxx products wait on disk, in unlinked files
    in $TMPDIR (io/spill.hpp): killed there, nothing is left in $TMPDIR, and the resume (which puts
    them, and the carried directions, on disk again) gives the same bits. A $TMPDIR that cannot
    hold them is refused before reading."""
    spill = os.path.join(tmp, "spill")
    os.makedirs(spill, exist_ok=True)
    args = ["denoise"] + synthetic + ["--noise", "mask:patch=4x4,ratio=0.75", "--method", "nystrom", "--rank", 32,
                                      "--refine", 2, "--json", "--quiet", "--batch", 100]
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = spill  # kill_then_resume's processes inherit it
    try:
        rc, reference, err = c.run(args)
        assert rc == 0, err
        ck = os.path.join(tmp, "refine.ckpt")
        # passes 0, 1: the sketch; 2: the first verification pass; 3: the first refinement pass.
        info, rc, out, err = c.kill_then_resume(args, ck, lambda s: s["pass"] == 3 and s["rows_done"] >= 600, 200,
                                                "in the first refinement pass")
        assert info["segments"][0]["pass"] == 3, info
        assert rc == 0 and out == reference, f"resume in a refinement pass: exit {rc}, identical={out == reference} {err}"
        assert os.listdir(spill) == [], os.listdir(spill)
    finally:
        if old is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = old
    missing = os.path.join(tmp, "no-such-directory")
    refused = os.path.join(tmp, "refused.ckpt")
    rc, out, err = c.run(args + ["--checkpoint", refused], env={"TMPDIR": missing})
    c.assert_one_line_error(rc, err, [missing, "TMPDIR"], "a $TMPDIR that does not exist")
    assert not os.path.exists(refused), "refused, yet the checkpoint was written"


def test_resume_rounds_as_a_run_that_did_not_stop(tmp):
    """At D = 3,072 with rank 256 a checkpoint copies the carried Sxx R (a view of Sxx Q, rotated
    as it is read) in 4 MiB blocks that are not whole blocks of the view's 256 rows, where the
    pass's end reads 512 at a time; OpenBLAS rounds a product's rows past a multiple of 8
    otherwise, so before io::row_spill mapped every read on one grid, the resumed runs printed
    other last digits (the synthetic 768 above reads one block either way). Killed in the first
    refinement pass, and a finished checkpoint resumed: the same bytes as one run."""
    args = ["denoise"] + make_synthetic(tmp, 600, 32, 2) + [
        "--noise", "mask:patch=8x8,ratio=0.75,scheme=fixed", "--noise", "mask:patch=8x8,ratio=0.75", "--method",
        "nystrom", "--rank", 256, "--refine", 2, "--json", "--quiet", "--batch", 100]
    rc, reference, err = c.run(args)
    assert rc == 0, err
    ck = os.path.join(tmp, "grid.ckpt")
    # passes 0, 1: the sketch; 2: the first verification pass; 3: the first refinement pass.
    info, rc, out, err = c.kill_then_resume(args, ck, lambda s: s["pass"] == 3 and s["rows_done"] >= 300, 300,
                                            "in the first refinement pass", timeout=300)
    assert rc == 0 and out == reference, f"resume in a refinement pass: exit {rc}, identical={out == reference} {err}"
    rc, out, err = c.run(args + ["--checkpoint", ck, "--resume"])  # finished: printed without reading
    assert rc == 0 and out == reference, f"a finished checkpoint resumed: exit {rc}, identical={out == reference} {err}"


def test_spill_directory_refused_before_reading(tmp, synthetic):
    """$TMPDIR that is a regular file (statvfs answers for it, yet no file can be made in it) is
    refused before the first byte is read: the refinement passes could not put their carried
    directions there after the sketch and the first verification pass had read the data."""
    not_a_directory = os.path.join(tmp, "tmpdir-is-a-file")
    with open(not_a_directory, "w") as f:
        f.write("x")
    refused = os.path.join(tmp, "refused-file.ckpt")
    args = ["denoise"] + synthetic + ["--noise", "mask:patch=4x4,ratio=0.75", "--method", "nystrom", "--rank", 32,
                                      "--refine", 1, "--json", "--quiet", "--batch", 100, "--checkpoint", refused,
                                      "--checkpoint-every", 500]
    rc, out, err = c.run(args, env={"TMPDIR": not_a_directory})
    c.assert_one_line_error(rc, err, [not_a_directory, "TMPDIR"], "a $TMPDIR that is a regular file")
    assert not os.path.exists(refused), "refused after reading: the checkpoint of a pass was written"


def numeric_leaves(doc, prefix=""):
    """{path: float} of every number in a JSON document (lists indexed), "input" left out."""
    out = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k != "input":
                out.update(numeric_leaves(v, f"{prefix}.{k}"))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.update(numeric_leaves(v, f"{prefix}[{i}]"))
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        out[prefix] = float(doc)
    return out


# Shards (row ranges of one input, run apart), merged, then resumed with the whole input: the
# verification pass runs on the merged sketch's basis. Nyström's merge is a sum, so the
# numbers are one stream's to rounding (eigenvector-derived ones a little worse: 1e-9).
# denoise with one --refine pass: the merged checkpoint resumes into the verification pass
# and then a refinement pass on the next basis (each further
# refinement step repeats the same mechanism and only compounds the rounding).
SHARDED = {
    "align": ["align"],
    # --passes 1: shards merge within their first sketch pass (the refining default is 2)
    "denoise": ["denoise", "--image-shape", "28,28,1", "--noise", "mask:patch=4x4,ratio=0.5", "--noise",
                "gaussian:sigma=0.2", "--refine", 1, "--passes", 1],
    "tradeoff": ["tradeoff", "--k", 10, "--lambda", "0,1,10", "--refine", 1],
}


@pytest.mark.parametrize("command", sorted(SHARDED))
def test_merged_shards_verify_as_one_stream(tmp, fashion_mnist, command):
    args = SHARDED[command] + ["--method", "nystrom", "--rank", 32, "--batch", 250]
    one = c.run_json(args + ["--limit", 3000])
    shards = [(0, 1000), (1000, 1500), (2500, 500)]
    files = []
    for skip, limit in shards:
        files.append(os.path.join(tmp, f"{command}-{skip}.ckpt"))
        c.run_json(args + ["--skip", skip, "--limit", limit, "--checkpoint", files[-1]])
    merged = os.path.join(tmp, f"{command}-all.ckpt")
    rc, _, err = c.run(["merge", files[2], files[0], files[1], "-o", merged])
    assert rc == 0 and "resume it with the whole input" in err, err
    # info says what is pending (it said "complete yes" before the verification pass ran).
    info = json.loads(c.run(["info", merged, "--json"], check_rc=0)[1])
    verification = {"align": 1, "tradeoff": 2, "denoise": 2}[command]  # the pass and one --refine pass
    assert not info["complete"] and info["verified"] and info["verification_passes"] == verification, info
    assert info["rows_per_pass"] == [3000] + [0] * verification, info["rows_per_pass"]
    assert f"verification pass 1 of {verification}" in info["pending"] and "none yet" in info["pending"], info
    rc, out, _ = c.run(["info", merged])
    assert rc == 0 and "complete      no: pending verification pass 1" in out, out
    before = open(merged, "rb").read()
    # Refused before reading, the merged checkpoint untouched: rows not covered, another noise.
    rc, _, err = c.run(args + ["--limit", 3500, "--checkpoint", merged, "--resume", "--quiet"])
    c.assert_one_line_error(rc, err, ["do not cover", "they end at row 3000"], f"{command}: a longer range")
    if command == "denoise":
        other = [a if a != "mask:patch=4x4,ratio=0.5" else "mask:patch=2x2,ratio=0.5" for a in args]
        rc, _, err = c.run(other + ["--limit", 3000, "--checkpoint", merged, "--resume", "--quiet"])
        c.assert_one_line_error(rc, err, ["patch blocks are of other noises"], "denoise: another patch size")
    assert open(merged, "rb").read() == before, f"{command}: a refused resume changed the merged checkpoint"
    got = c.run_json(args + ["--limit", 3000, "--checkpoint", merged, "--resume"])
    a, b = numeric_leaves(got), numeric_leaves(one)
    assert sorted(a) == sorted(b), f"{command}: other fields than one stream's"
    worst = max(((abs(a[k] - b[k]) / max(1.0, abs(b[k])), k) for k in b), default=(0.0, ""))
    print(f"merged {command}: worst relative difference to one stream {worst[0]:.2e} at {worst[1]}")
    assert worst[0] <= 1e-9, f"{command}: merged shards vs one stream: {worst}"


def test_merged_shards_with_a_gap_are_refused(tmp, fashion_mnist):
    args = ["align", "--method", "nystrom", "--rank", 16, "--batch", 250]
    a, b, merged = (os.path.join(tmp, f"gap-{n}.ckpt") for n in ("a", "b", "all"))
    c.run_json(args + ["--limit", 500, "--checkpoint", a])
    c.run_json(args + ["--skip", 1000, "--limit", 500, "--checkpoint", b])
    c.run(["merge", a, b, "-o", merged], check_rc=0)
    rc, _, err = c.run(args + ["--limit", 1500, "--checkpoint", merged, "--resume", "--quiet"])
    c.assert_one_line_error(rc, err, ["rows 500..1000 are missing"], "a gap between the shards")
    # A shard without its verification state cannot join one with it.
    d = os.path.join(tmp, "gap-noverify.ckpt")
    c.run_json(args + ["--skip", 500, "--limit", 500, "--checkpoint", d, "--no-verify"])
    rc, _, err = c.run(["merge", a, d, "-o", os.path.join(tmp, "gap-mixed.ckpt")])
    c.assert_one_line_error(rc, err, ["cannot merge"], "a verified shard with a --no-verify one")
    # A verified shard of another file could never be resumed as a row range of one input:
    # refused by merge itself, naming both files and the ways that work.
    rng = np.random.default_rng(3)
    other = c.write_data(tmp, rng.integers(0, 256, size=(500, 784)).astype(np.uint8),
                         rng.integers(0, 10, size=500).astype("<i4"), "--scale", "1/255")
    e = os.path.join(tmp, "gap-other-file.ckpt")
    c.run_json(args[:1] + other + args[1:] + ["--checkpoint", e])
    rc, _, err = c.run(["merge", a, e, "-o", os.path.join(tmp, "gap-files.ckpt")])
    c.assert_one_line_error(rc, err, ["cannot merge", "x.npy", "--no-verify", "one stream"], "verified shards of two files")
    assert not os.path.exists(os.path.join(tmp, "gap-files.ckpt"))


# The options of the exact route on the verified route (issue 14, verifyall): with the sketch's
# rank = D the verified span is all of R^D, so every number must be the exact route's (1e-8,
# relative to max(1, |value|)). Per-direction contributions are held to that over k <= 100
# only: past it the eigenvalues of Fashion's constant border pixels cluster at 0 and the
# directions inside a cluster (not their sum: the curve) are arbitrary on either route.
# λ = 0's reconstruction loss is left out: the supervised optimum is not unique there (any
# encoder holding the top-C fit); its loss is compared. --standardize with Gaussian noise is
# refused on both routes (sigma is in data units). Uncentered inputs are checked on align
# only (tradeoff and denoise at rank = D cost 15-35 s each on a loaded machine).
ROUTE_CASES = [
    (["align"], ["--measure", "published"]),
    (["align"], ["--center", "inputs"]),
    (["align"], ["--center", "none"]),
    (["align"], ["--standardize", "global"]),
    (["align"], ["--measure", "published", "--standardize", "global"]),
    (["tradeoff", "--k", 20, "--lambda", "0,1,10"], ["--center", "inputs", "--standardize", "global"]),
    (["denoise", "--image-shape", "28,28,1", "--noise", "mask:patch=4x4,ratio=0.5"],
     ["--measure", "published", "--standardize", "global"]),
]


@pytest.mark.parametrize("command,options", ROUTE_CASES,
                         ids=lambda v: "_".join(map(str, v[:1] if v and v[0] in ("align", "tradeoff", "denoise") else v)).replace("--", ""))
def test_options_on_the_verified_route_match_the_exact_route(fashion_mnist, command, options):
    args = command + ["--limit", 1000] + options
    exact = c.run_json(args)
    sketch = c.run_json(args + ["--method", "nystrom", "--rank", 784])
    if command[0] == "tradeoff":
        fields = ("lambda", "supervised_loss", "reconstruction_loss", "loss")
        exact = [{k: v for k, v in row.items() if k in fields and not (k == "reconstruction_loss" and row["lambda"] == 0)}
                 for row in exact]
        sketch = [{k: row[k] for k in e} for e, row in zip(exact, sketch)]
    else:
        keep = ("eigenvalues", "alignment", "contributions", "normaliser", "clean", "noises")
        exact = {k: v for k, v in exact.items() if k in keep}
        sketch = {k: v for k, v in sketch.items() if k in keep}
    a, b = numeric_leaves(sketch), numeric_leaves(exact)
    assert sorted(a) == sorted(b), f"{command[0]} {options}: fields {sorted(set(a) ^ set(b))[:5]}"
    tail = lambda k: k.startswith(".contributions[") and int(k[len(".contributions["):-1]) >= 100
    worst = max(((abs(a[k] - b[k]) / max(1.0, abs(b[k])), k) for k in b if not tail(k)), default=(0.0, ""))
    print(f"{command[0]} {' '.join(options)}: worst difference to the exact route {worst[0]:.2e} at {worst[1]}")
    assert worst[0] <= 1e-8, f"{command[0]} {options}: {worst}"


def test_merged_jittered_shards_keep_their_jitter(tmp, fashion_mnist):
    args = ["align", "--method", "nystrom", "--rank", 16, "--batch", 250, "--jitter", "1e-3", "--seed", 5]
    a, b, merged = (os.path.join(tmp, f"jit-{n}.ckpt") for n in ("a", "b", "all"))
    c.run_json(args + ["--limit", 500, "--checkpoint", a])
    c.run_json(args + ["--skip", 500, "--limit", 500, "--checkpoint", b])
    c.run(["merge", a, b, "-o", merged], check_rc=0)
    other = [x if x != "1e-3" else "2e-3" for x in args]
    rc, _, err = c.run(other + ["--limit", 1000, "--checkpoint", merged, "--resume", "--quiet"])
    c.assert_one_line_error(rc, err, ["--jitter/--seed"], "the merged shards resumed with another jitter")
    got = c.run_json(args + ["--limit", 1000, "--checkpoint", merged, "--resume"])
    one = c.run_json(args + ["--limit", 1000])
    d = max(abs(x - y) for x, y in zip(got["alignment"], one["alignment"]))
    assert len(got["alignment"]) == len(one["alignment"]) and d <= 1e-9, f"jittered shards vs one stream: {d}"
