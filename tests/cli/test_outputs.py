"""Outputs: --out writes CSV files matching the JSON and PNG charts (or says in one line that
gnuplot is missing and still succeeds); project writes the image grid (originals / top /
bottom projections) whose pixels are checked; the progress line is on a terminal only.
(The default data set's checks are in test_default_data.py.)"""
import csv
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import time
import zlib

import numpy as np
import pytest

import cli_common as c

rng = np.random.default_rng(3)
N, H, W = 400, 6, 5
D = H * W
X = rng.random(size=(N, D)) + np.linspace(0, 1, D)
Y = rng.integers(0, 4, size=N)
Xf = X.astype(np.float32).astype(np.float64)
count, gap = 5, 2


@pytest.fixture(scope="module")
def data(tmp):
    return c.write_data(tmp, X.astype("<f4"), Y.astype("<u1"))


def read_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array([[float(v) for v in r] for r in rows[1:]])


def read_png(path):
    """Minimal PNG reader for the unfiltered 8-bit gray/RGB files recalign writes."""
    blob = open(path, "rb").read()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos:pos + 4])
        kind = blob[pos + 4:pos + 8]
        body = blob[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, ctype = ihdr[:4]
    ch = {0: 1, 2: 3}[ctype]
    raw = zlib.decompress(idat)
    stride = w * ch + 1
    rows = [raw[i * stride:(i + 1) * stride] for i in range(h)]
    assert all(r[0] == 0 for r in rows), "filtered rows"
    return np.array([list(r[1:]) for r in rows], dtype=np.uint8).reshape(h, w, ch)


def stretch(v):
    lo, hi = v.min(), v.max()
    return np.rint(255 * (v - lo) / (hi - lo if hi > lo else 1)).astype(int)


def cell(img, r, i, zoom):
    y0, x0 = gap + r * (H * zoom + gap), gap + i * (W * zoom + gap)
    return img[y0:y0 + H * zoom:zoom, x0:x0 + W * zoom:zoom].astype(int)


# --- align --out: CSV equal to the JSON, charts drawn
@pytest.fixture(scope="module")
def align_out(tmp, data):
    out = os.path.join(tmp, "out_align")
    return out, c.run_json(["align"] + data + ["--out", out])


def test_alignment_csv(align_out):
    out, j = align_out
    head, tab = read_csv(os.path.join(out, "alignment.csv"))
    assert head == ["k", "alignment", "eigenvalue"], f"alignment.csv header {head}"
    assert np.array_equal(tab[:, 0], np.arange(1, D + 1)), "alignment.csv k column"
    assert np.array_equal(tab[:, 1], np.array(j["alignment"])), "alignment.csv differs from the JSON curve"


def test_spectrum_csv(align_out):
    head, tab = read_csv(os.path.join(align_out[0], "spectrum.csv"))
    assert head == ["k", "eigenvalue", "explained"] and tab.shape == (D, 3), f"spectrum.csv {head} {tab.shape}"


@pytest.mark.parametrize("png", ["alignment.png", "spectrum.png", "explained.png"])
def test_charts(align_out, png):
    if shutil.which("gnuplot") is None:
        pytest.skip("gnuplot is not installed (Debian package gnuplot-nox)")
    f = os.path.join(align_out[0], png)
    assert os.path.exists(f) and open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n", f"{png} missing or not a PNG"


def test_out_without_gnuplot(tmp, data):
    """One line says gnuplot is missing, exit 0, CSV still written."""
    out2 = os.path.join(tmp, "out_nognuplot")
    rc, so, err = c.run(["spectrum"] + data + ["--out", out2], env={"PATH": "/nonexistent"})
    assert rc == 0, f"spectrum --out without gnuplot: exit {rc} {err}"
    assert len(err.strip().splitlines()) == 1 and "gnuplot" in err, f"missing gnuplot message: {err!r}"
    assert os.path.exists(os.path.join(out2, "spectrum.csv")), "spectrum.csv not written without gnuplot"


def test_quiet_without_gnuplot(tmp, data):
    rc, so, err = c.run(["spectrum"] + data + ["--out", os.path.join(tmp, "q"), "--quiet"], env={"PATH": "/nonexistent"})
    assert rc == 0 and err == "", f"--quiet still printed {err!r}"


def test_killed_during_gnuplot_leaves_no_script(tmp, data):
    """The chart's gnuplot script is unlinked before gnuplot starts (gnuplot reads it through an
    inherited descriptor): a run SIGKILLed while gnuplot draws leaves nothing in $TMPDIR. A stand-in
    gnuplot says it has pngcairo, then notes that it started and sleeps until it is killed."""
    fake, scratch = os.path.join(tmp, "fakebin"), os.path.join(tmp, "chart_tmp")
    os.makedirs(fake, exist_ok=True)
    os.makedirs(scratch, exist_ok=True)
    started = os.path.join(tmp, "gnuplot_started")
    with open(os.path.join(fake, "gnuplot"), "w") as f:
        f.write('#!/bin/sh\ncase "$1" in -e) exit 0;; esac\necho $$ > "$STARTED"\nexec sleep 60\n')
    os.chmod(os.path.join(fake, "gnuplot"), 0o755)
    env = dict(os.environ, PATH=fake + os.pathsep + os.environ["PATH"], TMPDIR=scratch, STARTED=started)
    p = subprocess.Popen([c.RECALIGN, "spectrum"] + [str(a) for a in data] + ["--out", os.path.join(tmp, "killed_out")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (os.path.exists(started) and os.path.getsize(started) > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.exists(started), "the stand-in gnuplot never started"
        left = sorted(os.listdir(scratch))  # while gnuplot runs
        p.send_signal(signal.SIGKILL)
        p.wait()
        left += sorted(os.listdir(scratch))  # and after the kill
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if os.path.exists(started):
            with open(started) as f:
                pid = f.read().strip()
            if pid:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    assert not [n for n in left if n.startswith("recalign-chart")], f"the script was left in $TMPDIR: {left}"


# --- project: pixels of the grid
def test_project_variance_1(tmp, data):
    png = os.path.join(tmp, "grid1.png")
    zoom = 2
    rc, so, err = c.run(["project"] + data + ["--image-shape", f"{H},{W},1", "--variance", "1", "--count", count,
                                              "--zoom", zoom, "--out", png, "--skip", 10])
    assert rc == 0, f"project: exit {rc} {err}"
    img = read_png(png)[:, :, 0]
    assert img.shape == (3 * H * zoom + 4 * gap, count * W * zoom + (count + 1) * gap), f"grid shape {img.shape}"
    for i in range(count):
        orig = Xf[10 + i].reshape(H, W)
        assert np.array_equal(cell(img, 0, i, zoom), stretch(orig)), f"project: original {i} pixels"
        # --variance 1: the top subspace is everything, so the top row reproduces the original
        assert np.max(np.abs(cell(img, 1, i, zoom) - stretch(orig))) <= 1, f"project: top projection {i} (variance 1)"


def test_project_top_and_bottom_rows(tmp, data):
    """A 3-direction top subspace: compare with NumPy's projection."""
    png = os.path.join(tmp, "grid05.png")
    rc, so, err = c.run(["project"] + data + ["--image-shape", f"{H},{W}", "--variance", "0.5", "--count", count,
                                              "--zoom", 1, "--out", png, "--json", "--quiet"])
    pj = json.loads(so)
    k = pj["k"]
    mu = Xf.mean(axis=0)
    lam, U = np.linalg.eigh((Xf - mu).T @ (Xf - mu))
    lam, U = lam[::-1], U[:, ::-1]
    assert k == int(np.searchsorted(np.cumsum(lam) / lam.sum(), 0.5 - 1e-15) + 1), f"project k = {k}"
    img = read_png(png)[:, :, 0]
    for i in range(count):
        xc = Xf[i] - mu
        top = U[:, :k] @ (U[:, :k].T @ xc) + mu
        bottom = xc - U[:, :k] @ (U[:, :k].T @ xc) + mu
        assert np.max(np.abs(cell(img, 1, i, 1) - stretch(top.reshape(H, W)))) <= 1, f"project: top row image {i}"
        assert np.max(np.abs(cell(img, 2, i, 1) - stretch(bottom.reshape(H, W)))) <= 1, f"project: bottom row image {i}"


def test_project_rgb_chw_bottom(tmp):
    """RGB, CHW layout, --keep bottom: two rows."""
    Xc = np.random.default_rng(4).random(size=(50, 3 * 4 * 4))
    p3 = os.path.join(tmp, "rgb.npy")
    c.write_npy(p3, Xc)
    png = os.path.join(tmp, "rgb.png")
    rc, so, err = c.run(["project", "--images", p3, "--image-shape", "4,4,3", "--layout", "chw", "--keep", "bottom",
                         "--count", 3, "--zoom", 1, "--out", png])
    assert rc == 0, f"project rgb: exit {rc} {err}"
    img = read_png(png)
    assert img.shape == (2 * 4 + 3 * 2, 3 * 4 + 4 * 2, 3), f"rgb grid shape {img.shape}"
    orig = Xc[0].reshape(3, 4, 4).transpose(1, 2, 0)
    assert np.array_equal(img[2:6, 2:6, :].astype(int), stretch(orig)), "rgb chw original pixels"


# --- progress line: on stderr only when it is a terminal, and not with --quiet
def stderr_on_tty(data, extra):
    master, slave = pty.openpty()
    p = subprocess.Popen([c.RECALIGN, "spectrum"] + data + ["--batch", "10", "--json", "--test-batch-delay-ms", "2"] + extra,
                         stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 4096)
        except OSError:
            break
        if not b:
            break
        chunks.append(b)
    out, _ = p.communicate()
    os.close(master)
    return p.returncode, out.decode(), b"".join(chunks).decode(errors="replace")


def test_progress_on_a_terminal(data):
    rc, so, tty_err = stderr_on_tty(data, [])
    assert rc == 0 and "samples/s" in tty_err and "ETA" in tty_err and f"/{N} samples" in tty_err, \
        f"no progress line on a terminal: {tty_err!r}"
    assert so.startswith("{") and "samples/s" not in so, "progress leaked into stdout"


def test_quiet_on_a_terminal(data):
    rc, so, tty_err = stderr_on_tty(data, ["--quiet"])
    assert rc == 0 and tty_err == "", f"--quiet on a terminal printed {tty_err!r}"


def test_no_progress_when_stderr_is_not_a_terminal(data):
    rc, so, err = c.run(["spectrum"] + data + ["--batch", "10", "--test-batch-delay-ms", "2"])
    assert rc == 0 and err == "", f"progress printed to a non-terminal stderr: {err!r}"


def test_checkpoint_in_a_missing_directory(data):
    rc, so, err = c.run(["spectrum"] + data + ["--checkpoint", "/nonexistent/dir/x.ckpt"])
    c.assert_one_line_error(rc, err, ["/nonexistent/dir"], "checkpoint in a missing directory")
