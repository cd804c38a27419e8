"""`recalign figures` end to end on a Fashion-MNIST subset (2000 images pooled to 14 x 14, so
the module stays fast): the files exist and parse (CSV; SVG with xmllint), Figure 2 equals
`align --measure published`, report.html opened in Debian's chromium (headless) shows every
chart non-blank with no console message, and a run killed mid-way then resumed writes
byte-identical CSV files.

Console messages: chromium is started with --enable-logging=stderr --v=0, which prints every
console message of the page as an `INFO:CONSOLE` line on stderr (no DevTools protocol needed); the
report has no script, so any such line is an error. A control page that logs an error checks
that this detection works. Chart positions come from a copy of the report with a script that
writes each chart's bounding box into the DOM (--dump-dom); the screenshot is of the report
itself, at the same window width (appending at the end of body moves nothing above it)."""
import csv
import glob
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

import cli_common as c

n = 2000
CHROMIUM = shutil.which("chromium")
GRID = ["--patches", "1,2,7", "--ratios", "0,0.5,0.9", "--lambda", "0,0.1,10"]


@pytest.fixture(scope="module")
def data(fashion_mnist, tmp):
    ti, tl = fashion_mnist
    with gzip.open(ti) as f:
        f.read(16)
        x = np.frombuffer(f.read(n * 784), dtype=np.uint8).reshape(n, 28, 28) / 255.0
    with gzip.open(tl) as f:
        f.read(8)
        y = np.frombuffer(f.read(n), dtype=np.uint8).astype(np.int64)
    x = x.reshape(n, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(n, 196)
    return c.write_data(tmp, x, y, "--batch", "100", "--image-shape", "14,14,1")


@pytest.fixture(scope="module")
def figures(data, tmp):
    out = os.path.join(tmp, "fig")
    t0 = time.time()
    rc, stdout, err = c.run(["figures"] + data + GRID + ["--out", out + "/", "--quiet", "--jitter", "1e-4", "--seed", "3"])
    assert rc == 0, f"figures: exit {rc}: {err}"
    # every file the text output lists exists (fig2_percent has no CSV of its own; "--out fig/": no "//")
    listed = [line for line in stdout.splitlines() if line.startswith(out)]
    assert any(line.endswith("fig9_projections.png") for line in listed) and "//" not in stdout
    for line in listed:
        stem, _, ext = line.rpartition(".")
        for e in ext.strip("{}").split(","):
            assert os.path.exists(f"{stem}.{e}"), f"listed but not written: {stem}.{e}"
    return out, time.time() - t0


def test_files_exist_and_parse(figures):
    out, _ = figures
    for name in ["fig2_alignment", "fig2_percent", "fig7_patch1", "fig7_patch2", "fig7_patch7", "impact_patch1",
                 "tradeoff"]:
        for ext in ["png", "svg"]:
            path = os.path.join(out, f"{name}.{ext}")
            assert os.path.getsize(path) > 1000, f"{path} missing or tiny"
        rc = subprocess.run(["xmllint", "--noout", os.path.join(out, f"{name}.svg")]).returncode
        assert rc == 0, f"{name}.svg does not parse"
    for path in glob.glob(os.path.join(out, "*.csv")):
        rows = list(csv.reader(open(path)))
        assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows), f"{path}: ragged CSV"
    rows = list(csv.reader(open(os.path.join(out, "fig7_patch2.csv"))))
    assert rows[0] == ["k", "ratio_0", "ratio_0.5", "ratio_0.9"]
    # ratio 0 is the clean encoder itself: no impact (rounding only)
    assert max(abs(float(r[1])) for r in rows[1:]) < 1e-6
    assert os.path.getsize(os.path.join(out, "fig9_projections.png")) > 1000


def test_figure2_is_align_published(figures, data):
    out, _ = figures
    j = c.run_json(["align"] + data[:-2] + ["--measure", "published", "--jitter", "1e-4", "--seed", "3"])
    rows = list(csv.reader(open(os.path.join(out, "fig2_alignment.csv"))))[1:]
    ours = np.array([float(r[2]) for r in rows])
    c.assert_close(ours, j["alignment"], 1e-12, "fig2 vs align --measure published", atol=1e-12)
    assert abs(ours[-1] - 100) < 1e-9


def chromium(args, timeout=120):
    p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                        "--hide-scrollbars", "--user-data-dir=" + os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                                              f"chromium-{os.getpid()}")] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def console_lines(stderr):
    return [l for l in stderr.splitlines() if ":CONSOLE" in l]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh installs it)")
def test_report_in_a_browser(figures, tmp):
    from PIL import Image
    out, _ = figures
    report = os.path.join(out, "report.html")
    size = os.path.getsize(report)
    assert 20_000 < size < 5_000_000, f"report.html is {size} bytes"
    html = open(report).read()
    assert "http://" not in html and "https://" not in html and "<script" not in html, "report is not self-contained"
    # the detection of console messages works (control page)
    control = os.path.join(tmp, "control.html")
    open(control, "w").write("<html><body><script>console.error('recalign-control')</script></body></html>")
    _, err = chromium(["--dump-dom", "file://" + control])
    assert any("recalign-control" in l for l in console_lines(err)), "console detection failed on the control page"
    # positions of the charts, from a copy with a measuring script
    probe = os.path.join(out, "probe.html")
    open(probe, "w").write(html.replace("</body>", "<script>var o=[];document.querySelectorAll('figure.chart img')"
                                        ".forEach(function(e){var r=e.getBoundingClientRect();o.push([e.alt,r.left,"
                                        "r.top+window.scrollY,r.width,r.height])});var p=document.createElement('pre');"
                                        "p.id='pos';p.textContent=JSON.stringify([o,document.documentElement."
                                        "scrollHeight]);document.body.appendChild(p);</script></body>"))
    width = 1100
    dom, _ = chromium([f"--window-size={width},900", "--dump-dom", "file://" + probe])
    os.remove(probe)
    boxes, height = json.loads(re.search(r'<pre id="pos">(.*?)</pre>', dom, re.S).group(1).replace("&quot;", '"'))
    charts = re.findall(r'<figure class="chart" id="([^"]+)"', html)
    assert len(boxes) == len(charts) >= 10, f"{len(boxes)} charts laid out, {len(charts)} in the page"
    shot = os.path.join(tmp, "report.png")
    _, err = chromium([f"--window-size={width},{int(height) + 10}", f"--screenshot={shot}", "file://" + report])
    assert console_lines(err) == [], f"console messages: {console_lines(err)}"
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    for name, left, top, w, h in boxes:
        assert w > 200 and h > 100, f"chart {name} laid out {w} x {h}"
        region = img[int(top) + 2:int(top + h) - 2, int(left) + 2:int(left + w) - 2]
        assert region.size and region.std() > 5, f"chart {name} is blank in the screenshot (std {region.std():.2f})"
        assert (region < 128).mean() > 0.002, f"chart {name}: no drawing in the screenshot"


def test_killed_and_resumed_run_writes_identical_csv(data, figures, tmp):
    ref, _ = figures
    out = os.path.join(tmp, "fig_resumed")
    ck = os.path.join(tmp, "fig.ckpt")
    args = ["figures"] + data + GRID + ["--out", out, "--quiet", "--jitter", "1e-4", "--seed", "3", "--checkpoint", ck,
                                        "--checkpoint-every", "500"]
    p = subprocess.Popen([c.RECALIGN] + args + ["--test-batch-delay-ms", "20"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:
        if os.path.exists(ck):
            rc, o, _ = c.run(["info", ck, "--json"])
            if rc == 0 and json.loads(o)["segments"][0]["rows_done"] >= 500:
                break
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    assert p.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not os.path.exists(os.path.join(out, "report.html"))
    rc, _, err = c.run(args + ["--resume"])
    assert rc == 0, f"resume: exit {rc}: {err}"
    names = sorted(os.path.basename(f) for f in glob.glob(os.path.join(ref, "*.csv")))
    assert names == sorted(os.path.basename(f) for f in glob.glob(os.path.join(out, "*.csv")))
    for name in names:
        a = open(os.path.join(ref, name), "rb").read()
        b = open(os.path.join(out, name), "rb").read()
        assert a == b, f"{name} differs after kill + resume"


def test_refusals_before_reading(data, tmp):
    out = os.path.join(tmp, "never")
    for extra, what in [(["--ratios", "0,1.2"], "--ratios"), (["--patches", "15"], "--patches"),
                        (["--tradeoff-k", "999"], "--tradeoff-k"), (["--noise", "gaussian:sigma=-1"], "--noise"),
                        (["--overlay", "other=" + data[1]], "--overlay"), (["--overlay", "nameless"], "--overlay")]:
        rc, stdout, err = c.run(["figures"] + data + ["--out", out] + extra)
        assert rc == 2 and what in err and stdout == "", f"{extra}: exit {rc}, {err!r}"
    assert not os.path.exists(os.path.join(out, "report.html"))


def test_overlay_draws_another_runs_curve(data, figures, tmp):
    """Figure 2 overlays the curve of another run (the paper overlays its data sets)."""
    ref, _ = figures
    out = os.path.join(tmp, "fig_overlay")
    other = os.path.join(ref, "fig2_alignment.csv")
    rc, stdout, err = c.run(["figures"] + data + ["--patches", "7", "--ratios", "0.5", "--lambda", "1", "--limit",
                                                  "1000", "--out", out, "--quiet", "--json", "--overlay",
                                                  "first run=" + other])
    assert rc == 0, err
    j = json.loads(stdout)
    assert j["n"] == 1000 and j["d"] == 196 and j["masks"] == 1 and j["center"] == "inputs"
    assert j["report"] == os.path.join(out, "report.html") and "fig7_patch7" in j["charts"]
    for chart in ["fig2_alignment", "fig2_percent"]:
        gp = open(os.path.join(out, chart + ".gp")).read()
        assert other in gp and "'first run'" in gp, f"{chart}.gp does not draw the overlay"


def test_jitter_adds_the_stated_noise_per_row(tmp):
    """--jitter S on constant rows: the centered second moment is that of S·N(0,1) noise, drawn
    per (seed, row): the same seed gives the same noise in any batching (equal up to the rounding
    of another summation order), another seed other noise. (A resumed run keeps its batching and
    is bit-identical: test_killed_and_resumed_run_writes_identical_csv.)"""
    sub = os.path.join(tmp, "jitter")
    os.makedirs(sub, exist_ok=True)
    n, d = 4000, 4
    files = c.write_data(sub, np.zeros((n, d)), np.arange(n) % 2)
    def run(*extra):
        return c.run_json(["align"] + files + ["--center", "both", "--jitter", "0.1"] + list(extra))
    a = run("--seed", "5")
    lam = np.array(a["eigenvalues"]) / n
    assert np.all(np.abs(lam - 0.01) < 0.0015), f"jitter variance per direction {lam}, expected 0.01"
    c.assert_close(run("--seed", "5", "--batch", "7")["eigenvalues"], a["eigenvalues"], 1e-12, "batch 7 vs 1000")
    assert run("--seed", "6")["eigenvalues"] != a["eigenvalues"]
