"""`recalign figures --dataset NAME=IMAGES,labels=FILE`: several data sets in one call, their
Figure 2 curves overlaid (as the paper's Figure 2). Two disjoint subsets of Fashion-MNIST (pooled
to 14 x 14, 1000 images each) as the main data and one --dataset: each curve equals a separate
`align --measure published` run on that subset alone; the chart, the CSV files and report.html
contain both; a run killed during the second data set's pass and resumed writes identical CSV;
every user error is refused before any data is read."""
import csv
import glob
import gzip
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

import cli_common as c

n = 1000
CHEAP = ["--patches", "7", "--ratios", "0.5", "--lambda", "1", "--batch", "100", "--image-shape", "14,14,1",
         "--jitter", "1e-4", "--seed", "3"]


@pytest.fixture(scope="module")
def subsets(fashion_mnist, tmp):
    ti, tl = fashion_mnist
    with gzip.open(ti) as f:
        f.read(16)
        x = np.frombuffer(f.read(2 * n * 784), dtype=np.uint8).reshape(2 * n, 28, 28) / 255.0
    with gzip.open(tl) as f:
        f.read(8)
        y = np.frombuffer(f.read(2 * n), dtype=np.uint8).astype(np.int64)
    x = x.reshape(2 * n, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(2 * n, 196)
    files = []
    for i, name in enumerate(["a", "b"]):
        sub = os.path.join(tmp, name)
        os.makedirs(sub, exist_ok=True)
        files.append(c.write_data(sub, x[i * n:(i + 1) * n], y[i * n:(i + 1) * n]))
    return files  # each ["--images", X, "--labels", Y]


def dataset_arg(files, name="b"):
    return ["--dataset", f"{name}={files[1]},labels={files[3]}"]


def column(path, name):
    rows = list(csv.DictReader(open(path)))
    return np.array([float(r[name]) for r in rows if r[name] != ""])


@pytest.fixture(scope="module")
def figures(subsets, tmp):
    a, b = subsets
    out = os.path.join(tmp, "fig")
    rc, stdout, err = c.run(["figures"] + a + CHEAP + dataset_arg(b) + ["--out", out, "--quiet", "--json"])
    assert rc == 0, f"figures: exit {rc}: {err}"
    return out, json.loads(stdout)


def test_each_curve_is_a_separate_align_run(subsets, figures):
    out, j = figures
    assert j["n"] == n and j["datasets"] == [{"name": "b", "n": n, "d": 196}]
    for files, own, combined in [(subsets[0], "fig2_alignment.csv", "alignment"),
                                 (subsets[1], "fig2_alignment_b.csv", "alignment_b")]:
        ref = c.run_json(["align"] + files + ["--measure", "published", "--jitter", "1e-4", "--seed", "3"])["alignment"]
        c.assert_close(column(os.path.join(out, own), "alignment"), ref, 1e-12, own, atol=1e-12)
        c.assert_close(column(os.path.join(out, "fig2_datasets.csv"), combined), ref, 1e-12, combined, atol=1e-12)
    # two different subsets: two different curves (the test could tell them apart)
    assert np.abs(column(os.path.join(out, "fig2_datasets.csv"), "alignment") -
                  column(os.path.join(out, "fig2_datasets.csv"), "alignment_b")).max() > 1e-3


def test_chart_and_report_contain_both(subsets, figures):
    out, _ = figures
    for chart in ["fig2_alignment", "fig2_percent"]:
        gp = open(os.path.join(out, chart + ".gp")).read()
        assert "fig2_alignment_b.csv" in gp and "'b'" in gp, f"{chart}.gp does not draw data set b"
        assert subprocess.run(["xmllint", "--noout", os.path.join(out, chart + ".svg")]).returncode == 0
    html = open(os.path.join(out, "report.html")).read()
    b = np.array([float(r["alignment_b"]) for r in csv.DictReader(open(os.path.join(out, "fig2_datasets.csv")))])
    assert "<tr><th>b (" + subsets[1][1] in html, "report.html has no row for data set b"
    assert "<tr><th>b: images</th><td>" + subsets[1][1] + " | size" in html, "no input fingerprint of data set b"
    assert "%.6g" % b[0] in html or "%.10g" % b[0] in html or repr(b[0])[:8] in html


def test_killed_in_second_pass_and_resumed_writes_identical_csv(subsets, figures, tmp):
    ref, _ = figures
    a, b = subsets
    out = os.path.join(tmp, "fig_resumed")
    ck = os.path.join(tmp, "fig.ckpt")
    args = ["figures"] + a + CHEAP + dataset_arg(b) + ["--out", out, "--quiet", "--checkpoint", ck,
                                                       "--checkpoint-every", "300"]
    p = subprocess.Popen([c.RECALIGN] + args + ["--test-batch-delay-ms", "20"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:
        if os.path.exists(ck + ".b"):
            rc, o, _ = c.run(["info", ck + ".b", "--json"])
            if rc == 0 and json.loads(o)["segments"][0]["rows_done"] >= 300:
                break
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    assert p.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not os.path.exists(os.path.join(out, "report.html"))
    rc, _, err = c.run(args + ["--resume"])
    assert rc == 0, f"resume: exit {rc}: {err}"
    names = sorted(os.path.basename(f) for f in glob.glob(os.path.join(ref, "*.csv")))
    assert "fig2_alignment_b.csv" in names
    assert names == sorted(os.path.basename(f) for f in glob.glob(os.path.join(out, "*.csv")))
    for name in names:
        assert open(os.path.join(ref, name), "rb").read() == open(os.path.join(out, name), "rb").read(), \
            f"{name} differs after kill + resume"


def test_refusals_before_reading(subsets, figures, tmp):
    a, b = subsets
    earlier = os.path.join(figures[0], "fig2_alignment.csv")
    out = os.path.join(tmp, "never")
    blocker = os.path.join(tmp, "a_file")
    open(blocker, "w").write("x")
    cases = [(dataset_arg(b) + dataset_arg(b), "used twice"),
             (["--overlay", "b=" + earlier] + dataset_arg(b), "used twice"),
             (["--dataset", "b=" + os.path.join(tmp, "missing.npy") + ",labels=" + b[3]], "missing.npy"),
             (["--dataset", "b=" + b[1] + ",labels=" + os.path.join(tmp, "nolabels.npy")], "nolabels.npy"),
             (["--dataset", "b/c=" + b[1]], "--dataset"),
             (["--dataset", "b=" + b[1] + ",colour=red"], "colour=red")]
    for extra, what in cases:
        rc, stdout, err = c.run(["figures"] + a + CHEAP + extra + ["--out", out])
        assert rc == 2 and what in err and stdout == "", f"{extra}: exit {rc}, {err!r}"
    rc, stdout, err = c.run(["figures"] + a + CHEAP + dataset_arg(b) + ["--out", os.path.join(blocker, "sub")])
    assert rc == 2 and "--out" in err and stdout == "", f"--out under a file: exit {rc}, {err!r}"
    # a data set's checkpoint left by an earlier run: refused before the main data's pass
    ck = os.path.join(tmp, "left.ckpt")
    open(ck + ".b", "w").write("x")
    rc, stdout, err = c.run(["figures"] + a + CHEAP + dataset_arg(b) + ["--out", out, "--checkpoint", ck])
    assert rc == 2 and ck + ".b exists" in err and stdout == "", f"checkpoint left: exit {rc}, {err!r}"
    assert not os.path.exists(ck)
    # --resume with the checkpoint of another data set (a, 1000 rows, as b's): refused before the main pass
    ck2 = os.path.join(tmp, "other.ckpt")
    c.run(["align"] + a + ["--checkpoint", ck2 + ".b", "--quiet", "--limit", "500"], check_rc=0)
    rc, stdout, err = c.run(["figures"] + a + CHEAP + dataset_arg(b) + ["--out", out, "--checkpoint", ck2, "--resume"])
    assert rc == 2 and "belongs to a different run" in err and stdout == "", f"other checkpoint: exit {rc}, {err!r}"
    assert not os.path.exists(ck2)
    assert not os.path.exists(out)
