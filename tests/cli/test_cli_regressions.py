"""Regression tests of issue 12's bug list, found by trying the CLI as a new user would: each
case runs the tool on small synthetic .npy files and checks the exit status, that a refusal
is one line on stderr with nothing on stdout, and (where the bug was a late refusal) that it
comes before any data is read: the images file then holds a NaN in its first row, so a
refusal that read data would name that row instead of the option.

Run by hand:
    RECALIGN_CLI=build/tools/recalign/recalign PYTHONPATH=tests/cli:tests \\
        /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cli/test_cli_regressions.py
"""
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

H, W = 4, 3
D = H * W
N = 240
C = 3


@pytest.fixture(scope="session")
def exe(recalign):
    return recalign  # conftest.py: the binary from RECALIGN_CLI


def run(exe, args, **kw):
    return subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True, **kw)


def refused(p, *words):
    """Exit 2, nothing on stdout, one line on stderr mentioning every word."""
    assert p.returncode == 2, f"exit {p.returncode}: {p.stderr}"
    assert p.stdout == "", f"stdout not empty on a refusal: {p.stdout[:200]!r}"
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("recalign: "), p.stderr
    for w in words:
        assert str(w) in lines[0], f"{w!r} not in {lines[0]!r}"
    assert "not finite" not in lines[0], f"the refusal read the data: {lines[0]}"
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(images, labels, poisoned images, tmp dir): clean data with two always-zero pixels (so
    that Sxx has rank D - 2), and a copy whose first row holds a NaN."""
    tmp = str(tmp_path_factory.mktemp("regressions"))
    rng = np.random.default_rng(12)
    y = rng.integers(0, C, N)
    x = rng.normal(size=(N, D)) + 0.7 * np.eye(C, D)[y] @ rng.normal(size=(D, D))
    x[:, [0, 5]] = 0.0
    images, labels, poisoned = (os.path.join(tmp, n) for n in ("x.npy", "y.npy", "poisoned.npy"))
    np.save(images, x)
    np.save(labels, y.astype(np.int64))
    bad = x.copy()
    bad[0, 1] = np.nan
    np.save(poisoned, bad)
    return images, labels, poisoned, tmp


def test_monte_carlo_odd_draws(exe, data):
    images, labels, _, _ = data
    base = ["denoise", "--images", images, "--labels", labels, "--image-shape", f"{H},{W},1",
            "--noise", "mask:patch=2x2,ratio=0.5", "--json", "--quiet"]
    for s in (3, 5):
        p = run(exe, base + ["--monte-carlo", s])
        assert p.returncode == 0, p.stderr
        e = json.loads(p.stdout)["noises"][0]
        assert e["monte_carlo"] and e["g_stderr_fro"] > 0
    _, _, poisoned, _ = data
    p = run(exe, ["denoise", "--images", poisoned, "--labels", labels, "--image-shape", f"{H},{W},1",
                  "--noise", "mask:patch=2x2,ratio=0.5", "--monte-carlo", 1])
    line = refused(p, "--monte-carlo", "at least 2")
    assert "replicates" not in line  # no internal vocabulary


def test_monte_carlo_pass_resumes(exe, data):
    """The Monte-Carlo expectations are drawn in the checkpointed pass: interrupted and resumed,
    the result equals the uninterrupted run's."""
    images, labels, _, tmp = data
    args = ["denoise", "--images", images, "--labels", labels, "--image-shape", f"{H},{W},1",
            "--noise", "mask:patch=2x2,ratio=0.5", "--monte-carlo", 4, "--seed", 5, "--batch", 10, "--json", "--quiet"]
    reference = run(exe, args)
    assert reference.returncode == 0, reference.stderr
    ck = os.path.join(tmp, "mc.ckpt")
    p = subprocess.Popen([exe] + [str(a) for a in args + ["--checkpoint", ck, "--checkpoint-every", 10,
                                                           "--test-batch-delay-ms", 20]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and not os.path.exists(ck):
        time.sleep(0.01)
    time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert out == ""
    info = json.loads(run(exe, ["info", ck, "--json"]).stdout)
    assert 0 < info["segments"][0]["rows_done"] < N
    resumed = run(exe, args + ["--checkpoint", ck, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == reference.stdout


def test_project_impossible_png_refused_up_front(exe, data, tmp_path):
    images, _, _, _ = data
    many = tmp_path / "many.npy"  # 25000 rows: a grid of them all at zoom 16 is 1.25 million pixels wide
    x = np.ones((25000, D))
    x[0, 0] = np.nan
    np.save(many, x)
    out = tmp_path / "grid.png"
    out.write_bytes(b"previous")
    p = run(exe, ["project", "--images", many, "--image-shape", f"{H},{W},1", "--count", 100000, "--zoom", 16,
                  "--out", out])
    refused(p, "--count", "PNG", "1000000")
    assert out.read_bytes() == b"previous"
    # --count larger than the rows read: the grid holds the rows there are.
    p = run(exe, ["project", "--images", images, "--image-shape", f"{H},{W},1", "--count", 100000, "--out", out,
                  "--json", "--quiet"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["images"] == N
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f], "a temporary file was left"


def test_class_count_beyond_memory_refused_up_front(exe, data, tmp_path):
    images, labels, poisoned, _ = data
    p = run(exe, ["align", "--images", poisoned, "--labels", labels, "--classes", 200000])
    refused(p, "GiB", "C = 200000")
    stray = tmp_path / "stray.npy"
    y = np.load(labels)
    y[7] = 300000
    np.save(stray, y)
    p = run(exe, ["align", "--images", poisoned, "--labels", stray])
    refused(p, "GiB", "C = 300001")


@pytest.mark.parametrize("case", [
    ("missing --labels, align", ["align"], ["--labels"]),
    ("missing --labels, tradeoff", ["tradeoff", "--lambda", "1", "--k", 2], ["--labels"]),
    ("missing --labels, denoise", ["denoise", "--image-shape", f"{H},{W},1", "--noise", "gaussian:sigma=1"], ["--labels"]),
    ("--image-shape vs D", ["denoise", "LABELS", "--image-shape", "5,5,1", "--noise", "gaussian:sigma=1"],
     ["--image-shape", "25", str(D)]),
    ("project --image-shape vs D", ["project", "--image-shape", "5,5,1", "--out", "OUT/p.png"], ["--image-shape", "25"]),
    ("--k > D", ["tradeoff", "LABELS", "--lambda", "1", "--k", D + 1], ["--k", str(D)]),
    ("--k-list > D", ["denoise", "LABELS", "--image-shape", f"{H},{W},1", "--noise", "gaussian:sigma=1",
                      "--k-list", f"1,{D + 1}"], ["--k-list", str(D + 1)]),
    ("tradeoff --method fd --no-verify", ["tradeoff", "LABELS", "--lambda", "1", "--k", 2, "--method", "fd", "--rank", 2,
                                          "--no-verify"], ["tradeoff", "fd", "drop --no-verify"]),
    ("denoise --method nystrom --no-verify", ["denoise", "LABELS", "--image-shape", f"{H},{W},1", "--noise",
                                              "gaussian:sigma=1", "--method", "nystrom", "--rank", 2, "--no-verify"],
     ["nystrom", "needs its verification pass (drop --no-verify); without it:"]),
    ("figures --patches beyond the image", ["figures", "LABELS", "--image-shape", f"{H},{W},1", "--patches", 4,
                                            "--out", "OUT/fig"], ["--patches", "'4'", "the image's shorter side = 3"]),
    ("--patches twice", ["figures", "LABELS", "--image-shape", f"{H},{W},1", "--patches", "2,2", "--out", "OUT/fig"],
     ["--patches", "'2'", "twice"]),
    ("--ratios twice", ["figures", "LABELS", "--image-shape", f"{H},{W},1", "--patches", 2, "--ratios", "0.5,0.5",
                        "--out", "OUT/fig"], ["--ratios", "0.5", "twice"]),
    ("--k-list twice", ["denoise", "LABELS", "--image-shape", f"{H},{W},1", "--noise", "gaussian:sigma=1",
                        "--k-list", "1,2,2"], ["--k-list", "'2'", "twice"]),
    ("denoise --method nystrom --monte-carlo centered", ["denoise", "LABELS", "--image-shape", f"{H},{W},1",
                                                         "--noise", "gaussian:sigma=1", "--method", "nystrom", "--rank", 2,
                                                         "--center", "both", "--monte-carlo", 4],
     ["--monte-carlo", "--no-center"]),
    ("mask patch larger than the image", ["denoise", "LABELS", "--image-shape", f"{H},{W},1",
                                          "--noise", "mask:patch=5x5,ratio=0.5"], ["--noise", "5x5"]),
    ("unwritable --out", ["align", "LABELS", "--out", "OUT/file/sub"], ["--out", "file/sub", "cannot be created"]),
    ("a spec's own shape that is not D", ["denoise", "LABELS", "--image-shape", f"{H},{W},1", "--method", "nystrom",
                                          "--rank", 2, "--noise", "mask:patch=2x2,ratio=0.5,shape=2x2x1"],
     ["--noise", "shape=2x2x1", "has 4 values but the rows have " + str(D)]),
    ("--monte-carlo 1 on a sketch route", ["denoise", "LABELS", "--image-shape", f"{H},{W},1", "--method", "nystrom",
                                           "--rank", 2, "--no-center", "--noise", "gaussian:sigma=1", "--monte-carlo", 1],
     ["--monte-carlo", "draws 1", "at least 2"]),
], ids=lambda c: c[0])
def test_user_errors_before_reading(exe, data, tmp_path, case):
    _, labels, poisoned, _ = data
    _, args, words = case
    args = [a for a in args]
    if "LABELS" in args:
        args[args.index("LABELS"):args.index("LABELS") + 1] = ["--labels", labels]
    (tmp_path / "file").write_text("a regular file")
    args = [str(tmp_path / a[4:]) if isinstance(a, str) and a.startswith("OUT/") else a for a in args]
    p = run(exe, args[:1] + ["--images", poisoned] + args[1:])
    refused(p, *words)


def test_out_file_with_json_prints_nothing(exe, data, tmp_path):
    images, labels, _, _ = data
    f = tmp_path / "regular"
    f.write_text("keep")
    p = run(exe, ["align", "--images", images, "--labels", labels, "--out", f, "--json"])
    refused(p, "--out", "not a directory")
    assert f.read_text() == "keep"


def test_gaussian_denoise_curve_shorter_than_clean_is_explained(exe, data, tmp_path):
    images, labels, _, _ = data
    base = ["denoise", "--images", images, "--labels", labels, "--image-shape", f"{H},{W},1",
            "--noise", "gaussian:sigma=0.1", "--noise", "mask:patch=2x2,ratio=0.5", "--quiet"]
    j = json.loads(run(exe, base + ["--json"]).stdout)
    g = j["noises"][0]
    assert len(j["clean"]) == D
    assert len(g["alignment"]) == g["max_k"] < D  # Sxx has rank D - 2: V* has D - 2 informative directions
    assert g["informative"] == g["max_k"]
    text = run(exe, base + ["--k-list", f"1,{D}"])
    assert text.returncode == 0, text.stderr
    assert "nan" not in text.stdout
    assert f"stops at k = {g['max_k']}" in text.stdout and "informative" in text.stdout
    out = tmp_path / "den"
    assert run(exe, base + ["--out", out]).returncode == 0
    rows = (out / "denoise.csv").read_text().splitlines()
    assert len(rows) == 1 + D  # the clean curve and the mask's go on past the Gaussian's end
    header = rows[0].split(",")
    last = dict(zip(header, rows[-1].split(",")))
    assert last["noise1_alignment"] == "" and last["clean"] != ""


def test_limit_beyond_the_file_is_refused_as_help_says(exe, data):
    images, _, _, _ = data
    p = run(exe, ["spectrum", "--images", images, "--limit", N + 1])
    refused(p, "--limit", str(N + 1), str(N))
    h = run(exe, ["spectrum", "--help"]).stdout
    assert "refused" in h[h.index("--limit"):]
    assert "at most" not in h[h.index("--limit"):h.index("--limit") + 200]


def test_merge_says_what_it_replaces_and_accepts(exe, data, tmp_path):
    images, labels, _, _ = data
    a, b, m = (str(tmp_path / n) for n in ("a.ckpt", "b.ckpt", "m.ckpt"))
    common = ["align", "--images", images, "--labels", labels, "--quiet", "--batch", 20]
    assert run(exe, common + ["--limit", N // 2, "--checkpoint", a]).returncode == 0
    # b: interrupted after its first checkpoint (a partial run)
    p = subprocess.Popen([exe] + [str(x) for x in common + ["--skip", N // 2, "--checkpoint", b,
                                                             "--checkpoint-every", 20, "--test-batch-delay-ms", 50]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline and not os.path.exists(b):
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=60)
    assert p.returncode == 130
    first = run(exe, ["merge", a, b, "-o", m])
    assert first.returncode == 0, first.stderr
    assert "interrupted run" in first.stderr and b in first.stderr
    assert "replaced" not in first.stderr
    again = run(exe, ["merge", a, b, "-o", m])
    assert again.returncode == 0 and f"replaced the existing {m}" in again.stderr


def test_messages(exe, data, tmp_path):
    images, labels, _, _ = data
    line = refused(run(exe, ["spectrum", "--images", images, "--limit", "-5"]), "--limit", "-5")
    assert "18446744073709551611" not in line
    line = refused(run(exe, ["denoise", "--images", images, "--labels", labels, "--image-shape", f"{H},{W},1",
                             "--noise", "gaussian:sigma=1", "--k-list", "0"]), "--k-list", "'0'")
    assert "0.000000" not in line
    refused(run(exe, ["info", str(tmp_path)]), str(tmp_path), "directory")
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    refused(run(exe, ["spectrum", "--images", empty]), str(empty), "empty")
    refused(run(exe, ["info", empty]), str(empty), "empty")
    for cmd in ("merge", "info"):
        h = run(exe, [cmd, "--help"])
        assert h.returncode == 0 and "DATA defaults" not in h.stdout, h.stdout
    assert "DATA defaults" in run(exe, ["align", "--help"]).stdout
    ck = str(tmp_path / "align.ckpt")
    assert run(exe, ["align", "--images", images, "--labels", labels, "--checkpoint", ck, "--quiet"]).returncode == 0
    line = refused(run(exe, ["spectrum", "--images", images, "--checkpoint", ck, "--resume", "--quiet"]),
                   "spectrum reads no labels", "--from")
    assert "number of classes" not in line


def test_second_run_on_one_checkpoint_is_refused(exe, data, tmp_path):
    """The driver holds an advisory lock on its checkpoint: a second run is refused, naming the
    first's pid, and the first finishes undisturbed."""
    images, labels, _, _ = data
    ck = str(tmp_path / "locked.ckpt")
    args = ["align", "--images", images, "--labels", labels, "--batch", 10, "--quiet", "--checkpoint", ck,
            "--checkpoint-every", 10]
    first = subprocess.Popen([exe] + [str(a) for a in args + ["--test-batch-delay-ms", 30]],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and not os.path.exists(ck):
        time.sleep(0.01)
    second = run(exe, args + ["--resume"])
    line = refused(second, ck, str(first.pid))
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert out.startswith(f"n = {N} samples")
    assert "in use" in line or "lock" in line


# ---- The twenty-sixth session's audit (a new user's tour of the CLI) --------------------------

@pytest.mark.parametrize("cmd", [["align", "--json"], ["spectrum"], ["info", "CKPT"], ["info", "CKPT", "--json"]],
                         ids=lambda c: " ".join(c))
def test_a_failed_write_to_stdout_is_an_error(exe, data, tmp_path, cmd):
    """Results that never reached stdout (a full disk: /dev/full) are not a success."""
    images, labels, _, _ = data
    ck = str(tmp_path / "a.ckpt")
    assert run(exe, ["align", "--images", images, "--labels", labels, "--checkpoint", ck, "--quiet"]).returncode == 0
    args = [ck if a == "CKPT" else a for a in cmd]
    if cmd[0] != "info":
        args += ["--images", images, "--quiet"] + (["--labels", labels] if cmd[0] == "align" else [])
    with open("/dev/full", "w") as full:
        p = subprocess.run([exe] + args, stdout=full, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "standard output" in lines[0] and "No space left" in lines[0], p.stderr


def produced(exe, args, out):
    p = run(exe, args + ["--out", out, "--quiet"])
    assert p.returncode == 0, p.stderr
    return sorted(os.listdir(out))


@pytest.mark.parametrize("cmd", ["align", "spectrum", "tradeoff", "denoise", "figures"])
def test_an_output_name_taken_by_a_directory_is_refused_before_reading(exe, data, tmp_path, cmd):
    """Every file a command writes in --out DIR (found by a real run) is checked up front: a
    directory of that name is refused before any data is read, naming it, and nothing is written."""
    images, labels, poisoned, _ = data
    extra = {"align": ["--labels", labels], "spectrum": [], "tradeoff": ["--labels", labels, "--lambda", "0,1", "--k", 2],
             "denoise": ["--labels", labels, "--image-shape", f"{H},{W},1", "--noise", "mask:patch=2x2,ratio=0.5"],
             "figures": ["--labels", labels, "--image-shape", f"{H},{W},1", "--patches", "2", "--ratios", "0.5",
                         "--count", 2]}[cmd]
    files = produced(exe, [cmd, "--images", images] + extra, str(tmp_path / "first"))
    charts = {"align": ["alignment", "spectrum", "explained"], "spectrum": ["spectrum", "explained"],
              "tradeoff": ["tradeoff"], "denoise": ["relative"],
              "figures": ["fig2_alignment", "fig2_percent", "fig7_patch2", "impact_patch2", "tradeoff"]}[cmd]
    for c in charts:  # every chart drawn (D = 12 <= 32 once left Figure 7 with an empty x range)
        assert {c + ".png", c + ".gp"} <= set(files), (c, files)
        with open(os.path.join(tmp_path / "first", c + ".png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", c
    for i, name in enumerate(files):
        out = tmp_path / f"taken{i}"
        (out / name).mkdir(parents=True)
        p = run(exe, [cmd, "--images", poisoned, "--out", out, "--quiet"] + extra)
        refused(p, "--out", name, "is a directory")
        assert sorted(os.listdir(out)) == [name] and not os.listdir(out / name)


def test_a_sketch_spectrum_says_its_numbers_are_estimates(exe, data):
    """Without its verification pass (--no-verify; test_sketch.py checks the verified numbers)."""
    images, _, _, _ = data
    exact = run(exe, ["spectrum", "--images", images, "--quiet"])
    assert exact.returncode == 0 and "ESTIMATE" not in exact.stdout
    assert "exact_for" not in json.loads(run(exe, ["spectrum", "--images", images, "--quiet", "--json"]).stdout)
    for method in ("fd", "nystrom"):
        p = run(exe, ["spectrum", "--images", images, "--quiet", "--method", method, "--rank", 3, "--no-verify"])
        assert p.returncode == 0, p.stderr
        assert f"({method} sketch, rank" in p.stdout and "ESTIMATES" in p.stdout, p.stdout
        assert ("at most" if method == "fd" else "error estimate") in p.stdout
        j = json.loads(run(exe, ["spectrum", "--images", images, "--quiet", "--method", method, "--rank", 3,
                                 "--no-verify", "--json"]).stdout)
        assert "exact_for" in j and j["exact_for"] is None


def test_a_sketch_too_small_for_variance_says_so_in_the_options(exe, data, tmp_path):
    images, _, _, _ = data
    small = ["project", "--images", images, "--image-shape", f"{H},{W},1", "--method", "fd", "--rank", 1,
             "--variance", "0.99", "--out", tmp_path / "p.png", "--quiet"]
    line = refused(run(exe, small + ["--no-verify"]), "--variance", "fd sketch", "estimated", "--rank")
    assert "subspace_projector" not in line
    line = refused(run(exe, small), "--variance", "fd sketch returned", "exact", "--rank")  # verified
    assert "estimated" not in line
    assert not (tmp_path / "p.png").exists()
    ok = ["project", "--images", images, "--image-shape", f"{H},{W},1", "--method", "nystrom", "--rank", 6,
          "--variance", "0.3", "--out", tmp_path / "q.png", "--quiet"]
    p = run(exe, ok + ["--no-verify"])
    assert p.returncode == 0 and "ESTIMATED from the nystrom sketch" in p.stdout, p.stderr
    p = run(exe, ok)
    assert p.returncode == 0 and "verified by one more pass" in p.stdout and "ESTIMATED" not in p.stdout, p.stderr


def test_a_checkpoint_of_another_command(exe, data, tmp_path):
    """--resume continues the run that wrote the checkpoint (another command would rewrite it as
    its own); --from of a state this command cannot read names the command that can."""
    images, labels, _, _ = data
    dn, al = str(tmp_path / "dn.ckpt"), str(tmp_path / "al.ckpt")
    assert run(exe, ["denoise", "--images", images, "--labels", labels, "--image-shape", f"{H},{W},1", "--noise",
                     "gaussian:sigma=1", "--checkpoint", dn, "--quiet"]).returncode == 0
    assert run(exe, ["align", "--images", images, "--labels", labels, "--checkpoint", al, "--quiet"]).returncode == 0
    before = {p: open(p, "rb").read() for p in (dn, al)}
    line = refused(run(exe, ["align", "--from", dn]), "a checkpoint of denoise", "denoise --from")
    assert "alignment_tracker" not in line.split("(")[0]
    refused(run(exe, ["align", "--images", images, "--labels", labels, "--checkpoint", dn, "--resume", "--quiet"]),
            "written by denoise", "denoise --resume")
    refused(run(exe, ["tradeoff", "--images", images, "--labels", labels, "--lambda", 1, "--k", 2, "--checkpoint", al,
                      "--resume", "--quiet"]), "written by align", "align --resume")
    assert {p: open(p, "rb").read() for p in (dn, al)} == before
    ok = run(exe, ["tradeoff", "--from", al, "--lambda", 1, "--k", 2, "--quiet"])  # analysing it is fine
    assert ok.returncode == 0, ok.stderr


def test_center_help_does_not_show_its_bare_value_as_the_default(exe):
    for cmd, default in (("align", "none"), ("figures", "none"), ("spectrum", "both")):
        h = run(exe, [cmd, "--help"]).stdout
        assert "(bare: both)" in h and "=both" not in h.split("--center", 1)[1].split("\n", 1)[0], cmd
        assert f"Default: {default}" in h
        nc = h.split("--no-center", 1)[1].split("--method", 1)[0]
        assert ("(the default, except with --measure published: inputs)" in nc) == (default == "none"), (cmd, nc)


@pytest.mark.parametrize("option", [["--batch", 10], ["--classes", 3], ["--format", "npy"], ["--threads", 2],
                                    ["--method", "fd"], ["--precision", "f32-kernels"], ["--layout", "chw"],
                                    ["--seed", 3]], ids=lambda o: o[0])
def test_from_refuses_the_options_that_decide_how_data_is_read(exe, data, tmp_path, option):
    """--from analyses a saved state: an option that only shapes reading or accumulating is
    refused by name, not silently ignored."""
    images, labels, _, _ = data
    ck = str(tmp_path / "a.ckpt")
    assert run(exe, ["align", "--images", images, "--labels", labels, "--checkpoint", ck, "--quiet"]).returncode == 0
    refused(run(exe, ["align", "--from", ck, "--quiet"] + option), option[0], "--from")
    assert run(exe, ["align", "--from", ck, "--quiet"]).returncode == 0


def test_figures_overlay_names_are_unique(exe, data, tmp_path):
    images, labels, _, _ = data
    out = tmp_path / "fig"
    base = ["figures", "--images", images, "--labels", labels, "--image-shape", f"{H},{W},1", "--patches", 2,
            "--ratios", "0.5", "--quiet"]
    assert run(exe, base + ["--out", out]).returncode == 0
    curve = str(out / "fig2_alignment.csv")
    refused(run(exe, base + ["--out", tmp_path / "again", "--overlay", f"a={curve}", "--overlay", f"a={curve}"]),
            "--overlay", "'a'", "twice")


def test_a_checkpoint_that_cannot_be_written_is_refused_before_any_input_is_opened(exe, data, tmp_path):
    images, _, _, _ = data
    bad_labels = tmp_path / "labels.npy"
    bad_labels.write_bytes(b"not a labels file at all")
    p = run(exe, ["align", "--images", images, "--labels", bad_labels, "--checkpoint", tmp_path / "missing" / "c.ckpt"])
    line = refused(p, "--checkpoint", "missing")
    assert "labels.npy" not in line


def test_memory_applies_to_from(exe, data, tmp_path):
    images, labels, _, _ = data
    ck = str(tmp_path / "a.ckpt")
    assert run(exe, ["align", "--images", images, "--labels", labels, "--checkpoint", ck, "--quiet"]).returncode == 0
    refused(run(exe, ["align", "--from", ck, "--memory", "1e-7"]), "--memory", "--from")
    assert run(exe, ["align", "--from", ck, "--memory", "1", "--quiet"]).returncode == 0


# ---- The twenty-seventh session: options that did nothing, and spectrum's memory -------------

def test_seed_is_refused_where_nothing_is_drawn(exe, data):
    """--seed keys Nyström's test matrix, --jitter and Monte-Carlo noises; elsewhere it was
    accepted and changed nothing. Refused before reading (the poisoned file is never read)."""
    images, labels, poisoned, _ = data
    for args in (["spectrum", "--images", poisoned], ["align", "--images", poisoned, "--labels", labels],
                 ["align", "--images", poisoned, "--labels", labels, "--method", "fd", "--rank", 4],
                 ["denoise", "--images", poisoned, "--labels", labels, "--image-shape", f"{H},{W},1",
                  "--noise", "mask:patch=2x1,ratio=0.5"],
                 ["denoise", "--images", poisoned, "--labels", labels, "--image-shape", f"{H},{W},1",
                  "--noise", "dropout:ratio=0.5,draws=4,seed=7", "--no-center"]):
        refused(run(exe, args + ["--seed", 3]), "--seed", "none of them")
    for args in (["spectrum", "--method", "nystrom", "--rank", 4], ["align", "--labels", labels, "--jitter", "1e-3"],
                 ["denoise", "--labels", labels, "--image-shape", f"{H},{W},1", "--noise", "dropout:ratio=0.5,draws=4",
                  "--no-center"],
                 ["denoise", "--labels", labels, "--image-shape", f"{H},{W},1", "--noise", "dropout:ratio=0.5",
                  "--monte-carlo", 4, "--no-center"]):
        p = run(exe, args[:1] + ["--images", images] + args[1:] + ["--seed", 3, "--quiet", "--json"])
        assert p.returncode == 0, (args, p.stderr)


def test_a_monte_carlo_spec_without_its_own_seed_draws_from_seed(exe, data):
    """A spec's draws=S without seed= used seed 0 whatever --seed said; its own seed=N wins. A
    spec's draws= that --monte-carlo contradicts is refused (it was overwritten)."""
    images, labels, _, _ = data
    base = ["denoise", "--images", images, "--labels", labels, "--image-shape", f"{H},{W},1", "--no-center", "--json",
            "--quiet"]
    specs = lambda extra: [n["spec"] for n in json.loads(run(exe, base + extra).stdout)["noises"]]
    assert specs(["--noise", "dropout:ratio=0.5,draws=4", "--seed", 5]) == ["dropout:ratio=0.5,draws=4,seed=5"]
    assert specs(["--noise", "dropout:ratio=0.5,draws=4,seed=7", "--noise", "dropout:ratio=0.3,draws=4",
                  "--seed", 5]) == ["dropout:ratio=0.5,draws=4,seed=7", "dropout:ratio=0.3,draws=4,seed=5"]
    one = json.loads(run(exe, base + ["--noise", "dropout:ratio=0.5,draws=4", "--seed", 5]).stdout)["noises"][0]
    two = json.loads(run(exe, base + ["--noise", "dropout:ratio=0.5,draws=4,seed=5"]).stdout)["noises"][0]
    assert one == two, "draws=4 with --seed 5 is not seed=5's run"
    refused(run(exe, base + ["--noise", "dropout:ratio=0.5,draws=4", "--monte-carlo", 6]), "draws=4", "--monte-carlo 6")


def test_layout_is_refused_where_it_orders_nothing(exe, data):
    """align/spectrum/tradeoff's --layout orders decoded images; for rows read as they are it did
    nothing. denoise's own --layout orders the rows for the masks: accepted there."""
    images, labels, poisoned, _ = data
    for cmd in (["spectrum"], ["align", "--labels", labels], ["tradeoff", "--labels", labels, "--lambda", 1, "--k", 2]):
        refused(run(exe, cmd[:1] + ["--images", poisoned] + cmd[1:] + ["--layout", "chw"]), "--layout", "npy")
    p = run(exe, ["denoise", "--images", images, "--labels", labels, "--image-shape", f"{H},{W},1", "--layout", "chw",
                  "--noise", "mask:patch=2x1,ratio=0.5", "--quiet", "--json"])
    assert p.returncode == 0, p.stderr


def test_figures_offers_no_sketch_options(exe):
    """figures reads the exact D x D statistics only: its --help listed --method fd|nystrom,
    --rank, --passes and --tolerance, which it then refused whatever their value."""
    help_text = run(exe, ["figures", "--help"]).stdout
    for option in ("--method", "--rank", "--passes", "--tolerance"):
        assert f"  {option} " not in help_text, option
        p = run(exe, ["figures", "--out", "never-written", option, "1"])
        assert p.returncode == 2 and option in p.stderr, (option, p.stderr)
    assert not os.path.exists("never-written")


# ---- The thirty-first session: outputs that are pipes or devices -----------------------------

def test_outputs_to_a_pipe_are_written_in_place_and_checkpoints_refuse_one(exe, data, tmp_path):
    """An output named by an existing FIFO or device (/dev/stdout, a consumer's FIFO) was
    replaced by a renamed temporary file (as root, /dev/null itself); it is written in place.
    A checkpoint must be a regular file: refused before any input is read."""
    import stat
    import threading
    images, labels, poisoned, _ = data
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    p = run(exe, ["project", "--images", images, "--image-shape", f"{H},{W},1", "--count", 16, "--out", fifo,
                  "--quiet"], timeout=60)
    assert p.returncode == 0, p.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced by a regular file"
    reader.join(timeout=60)
    assert got and got[0][:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["out.fifo"], "a temporary file was left"
    refused(run(exe, ["align", "--images", poisoned, "--labels", labels, "--checkpoint", fifo]),
            "--checkpoint", str(fifo), "pipe or device")
    a = str(tmp_path / "a.ckpt")
    assert run(exe, ["align", "--images", images, "--labels", labels, "--quiet", "--checkpoint", a]).returncode == 0
    refused(run(exe, ["merge", a, a, "-o", fifo]), "-o", str(fifo), "pipe or device")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["a.ckpt", "out.fifo"]


def test_a_checkpoint_through_a_symbolic_link_keeps_the_link(exe, data, tmp_path):
    """merge -o LINK replaces the file the link names, atomically beside it, and leaves the link
    a link; it used to replace the link with a regular file."""
    images, labels, _, _ = data
    (tmp_path / "real").mkdir()
    a, b, real, link = tmp_path / "a.ckpt", tmp_path / "b.ckpt", tmp_path / "real" / "m.ckpt", tmp_path / "m.ckpt"
    common = ["align", "--images", images, "--labels", labels, "--quiet", "--batch", 20]
    assert run(exe, common + ["--limit", N // 2, "--checkpoint", a]).returncode == 0
    assert run(exe, common + ["--skip", N // 2, "--checkpoint", b]).returncode == 0
    real.write_bytes(a.read_bytes())
    link.symlink_to("real/m.ckpt")
    p = run(exe, ["merge", a, b, "-o", link])
    assert p.returncode == 0, p.stderr
    assert link.is_symlink()
    assert real.read_bytes() != a.read_bytes()
    assert run(exe, ["info", link, "--json"]).returncode == 0
    assert os.listdir(tmp_path / "real") == ["m.ckpt"], "a temporary file was left"
