"""Outputs: --out writes CSV files matching the JSON and PNG charts (or says in one line that
gnuplot is missing and still succeeds); project writes the image grid (originals / top /
bottom projections) whose pixels are checked; on the default data set (Fashion-MNIST, when
installed) align on a small subset matches the NumPy oracle and the text output works."""
import csv
import gzip
import os
import struct
import zlib

import numpy as np

import cli_common as c

tmp = c.init()
rng = np.random.default_rng(3)
N, H, W = 400, 6, 5
D = H * W
X = rng.random(size=(N, D)) + np.linspace(0, 1, D)
Y = rng.integers(0, 4, size=N)
xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
c.write_npy(xp, X.astype("<f4"))
c.write_npy(yp, Y.astype("<u1"))
data = ["--images", xp, "--labels", yp]


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


# --- align --out: CSV equal to the JSON, charts drawn
out = os.path.join(tmp, "out_align")
j = c.run_json(["align"] + data + ["--out", out])
if j:
    head, tab = read_csv(os.path.join(out, "alignment.csv"))
    c.check(head == ["k", "alignment", "eigenvalue"], f"alignment.csv header {head}")
    c.check(np.array_equal(tab[:, 0], np.arange(1, D + 1)), "alignment.csv k column")
    c.check(np.array_equal(tab[:, 1], np.array(j["alignment"])), "alignment.csv differs from the JSON curve")
    head, tab = read_csv(os.path.join(out, "spectrum.csv"))
    c.check(head == ["k", "eigenvalue", "explained"] and tab.shape == (D, 3), f"spectrum.csv {head} {tab.shape}")
    have_gnuplot = any(os.access(os.path.join(d, "gnuplot"), os.X_OK) for d in os.environ["PATH"].split(":"))
    for png in ["alignment.png", "spectrum.png", "explained.png"]:
        f = os.path.join(out, png)
        if have_gnuplot:
            c.check(os.path.exists(f) and open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n", f"{png} missing or not a PNG")
# without gnuplot: one line, exit 0, CSV still written
out2 = os.path.join(tmp, "out_nognuplot")
rc, so, err = c.run(["spectrum"] + data + ["--out", out2], env={"PATH": "/nonexistent"})
c.check(rc == 0, f"spectrum --out without gnuplot: exit {rc} {err}")
c.check(len(err.strip().splitlines()) == 1 and "gnuplot" in err, f"missing gnuplot message: {err!r}")
c.check(os.path.exists(os.path.join(out2, "spectrum.csv")), "spectrum.csv not written without gnuplot")
rc, so, err = c.run(["spectrum"] + data + ["--out", os.path.join(tmp, "q"), "--quiet"], env={"PATH": "/nonexistent"})
c.check(rc == 0 and err == "", f"--quiet still printed {err!r}")

# --- project: pixels of the grid
png = os.path.join(tmp, "grid.png")
count, zoom, gap = 5, 2, 2
rc, so, err = c.run(["project"] + data + ["--image-shape", f"{H},{W},1", "--variance", "1", "--count", count,
                                          "--zoom", zoom, "--out", png, "--skip", 10])
c.check(rc == 0, f"project: exit {rc} {err}")
if rc == 0:
    img = read_png(png)[:, :, 0]
    c.check(img.shape == (3 * H * zoom + 4 * gap, count * W * zoom + (count + 1) * gap), f"grid shape {img.shape}")

    def cell(r, i):
        y0, x0 = gap + r * (H * zoom + gap), gap + i * (W * zoom + gap)
        return img[y0:y0 + H * zoom:zoom, x0:x0 + W * zoom:zoom].astype(int)

    Xf = X.astype(np.float32).astype(np.float64)
    for i in range(count):
        orig = Xf[10 + i].reshape(H, W)
        c.check(np.array_equal(cell(0, i), stretch(orig)), f"project: original {i} pixels")
        # --variance 1: the top subspace is everything, so the top row reproduces the original
        c.check(np.max(np.abs(cell(1, i) - stretch(orig))) <= 1, f"project: top projection {i} (variance 1)")
    # a 3-direction top subspace: compare with NumPy's projection
    rc, so, err = c.run(["project"] + data + ["--image-shape", f"{H},{W}", "--variance", "0.5", "--count", count,
                                              "--zoom", 1, "--out", png, "--json", "--quiet"])
    import json
    pj = json.loads(so)
    k = pj["k"]
    mu = Xf.mean(axis=0)
    lam, U = np.linalg.eigh((Xf - mu).T @ (Xf - mu))
    lam, U = lam[::-1], U[:, ::-1]
    c.check(k == int(np.searchsorted(np.cumsum(lam) / lam.sum(), 0.5 - 1e-15) + 1), f"project k = {k}")
    img = read_png(png)[:, :, 0]
    zoom = 1
    for i in range(count):
        xc = Xf[i] - mu
        top = U[:, :k] @ (U[:, :k].T @ xc) + mu
        bottom = xc - U[:, :k] @ (U[:, :k].T @ xc) + mu
        c.check(np.max(np.abs(cell(1, i) - stretch(top.reshape(H, W)))) <= 1, f"project: top row image {i}")
        c.check(np.max(np.abs(cell(2, i) - stretch(bottom.reshape(H, W)))) <= 1, f"project: bottom row image {i}")
    # RGB, CHW layout, --keep bottom: two rows
    Xc = rng.random(size=(50, 3 * 4 * 4))
    p3 = os.path.join(tmp, "rgb.npy")
    c.write_npy(p3, Xc)
    rc, so, err = c.run(["project", "--images", p3, "--image-shape", "4,4,3", "--layout", "chw", "--keep", "bottom",
                         "--count", 3, "--zoom", 1, "--out", png])
    c.check(rc == 0, f"project rgb: exit {rc} {err}")
    img = read_png(png)
    c.check(img.shape == (2 * 4 + 3 * 2, 3 * 4 + 4 * 2, 3), f"rgb grid shape {img.shape}")
    orig = Xc[0].reshape(3, 4, 4).transpose(1, 2, 0)
    c.check(np.array_equal(img[2:6, 2:6, :].astype(int), stretch(orig)), "rgb chw original pixels")

# --- progress line: on stderr only when it is a terminal, and not with --quiet
import pty
import subprocess


def stderr_on_tty(extra):
    master, slave = pty.openpty()
    p = subprocess.Popen([c.RECALIGN, "spectrum"] + data + ["--batch", "10", "--json"] + extra,
                         stdout=subprocess.PIPE, stderr=slave, env=dict(os.environ, RECALIGN_TEST_BATCH_DELAY_MS="2"))
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


rc, so, tty_err = stderr_on_tty([])
c.check(rc == 0 and "samples/s" in tty_err and "ETA" in tty_err and f"/{N} samples" in tty_err,
        f"no progress line on a terminal: {tty_err!r}")
c.check(so.startswith("{") and "samples/s" not in so, "progress leaked into stdout")
rc, so, tty_err = stderr_on_tty(["--quiet"])
c.check(rc == 0 and tty_err == "", f"--quiet on a terminal printed {tty_err!r}")
rc, so, err = c.run(["spectrum"] + data + ["--batch", "10"], env={"RECALIGN_TEST_BATCH_DELAY_MS": "2"})
c.check(rc == 0 and err == "", f"progress printed to a non-terminal stderr: {err!r}")
rc, so, err = c.run(["spectrum"] + data + ["--checkpoint", "/nonexistent/dir/x.ckpt"])
c.one_line_error(rc, err, ["/nonexistent/dir"], "checkpoint in a missing directory")

# --- the default data set (Fashion-MNIST) when installed
fm = os.environ.get("RECALIGN_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
ti, tl = os.path.join(fm, "train-images-idx3-ubyte.gz"), os.path.join(fm, "train-labels-idx1-ubyte.gz")
if os.path.exists(ti) and os.path.exists(tl):
    n = 1500
    with gzip.open(ti) as f:
        f.read(16)
        Xf = np.frombuffer(f.read(n * 784), dtype=np.uint8).reshape(n, 784) * (1.0 / 255.0)
    with gzip.open(tl) as f:
        f.read(8)
        Yf = np.frombuffer(f.read(n), dtype=np.uint8).astype(np.int64)
    j = c.run_json(["align", "--limit", n])
    if j:
        lam, curve = c.alignment_oracle(Xf, Yf, 10)
        c.check(j["n"] == n and j["d"] == 784 and j["classes"] == 10 and j["centered"] is False, "default data fields")
        c.check(abs(j["scale"] - 1 / 255) < 1e-18, f"default scale {j['scale']}")
        c.close(j["eigenvalues"][:len(lam)], lam, 1e-8, "Fashion-MNIST eigenvalues", atol=1e-9 * lam[0])
        c.close(j["alignment"], curve, 1e-7, "Fashion-MNIST alignment curve", atol=1e-9)
    s = c.run_json(["spectrum", "--limit", n])
    if s:
        c.check(s["centered"] is True and s["input"][0]["labels"] is None, "spectrum default: centered, no labels")
    rc, so, err = c.run(["align", "--limit", 500])
    c.check(rc == 0 and "alignment" in so and "784" in so, f"align text output: {rc} {so}")
else:
    print("Fashion-MNIST not installed: default-data checks skipped")

c.finish("cli_outputs")
