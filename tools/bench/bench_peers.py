#!/usr/bin/python3
"""Issue 9: recalign against its peers and the hardware ceiling, and its scaling.

One command (after `ninja -C build`), from the repository root:

    /usr/bin/python3 tools/bench/bench_peers.py [--reps 5] [--parts 123|p] [--cli PATH] [--tmp /tmp/recalign_bench]

Every side runs in its own child process (this script re-invoked with --side ..., or the
recalign CLI); wall time is measured around the child, peak RSS from os.wait4 (the child's
own ru_maxrss). Sides of one comparison alternate, medians of --reps runs, ratios printed.

1. `recalign align --json --quiet` (full Fashion-MNIST, from the .gz files) against
   NumPy in memory (gzip + frombuffer, X/255 float64, one-hot Y, X^T X, eigh, the moment
   form of MATH.md section 2), against the bare ceiling (np.dot(X.T, X) + eigh on X already in
   memory; its compute time is reported separately from loading) and against the paper's
   Section 6.8 `alignment_sweep` at growing n (as written, with multi_dot, and evaluated
   left to right, which forms the N x N matrix Y^T Y: stopped where 8 N^2 bytes exceed
   --nn-budget-gb), each n alternating with `recalign align --limit n`, medians of
   --paper-reps runs (--paper-big-reps at n = 60000). `--parts p` runs only this sweep;
   `--cli` picks the recalign binary (e.g. build-bench/tools/recalign/recalign).
2. Scaling in n (recalign spectrum on a synthetic raw u8 file, D = 784, 6,000 / 60,000 /
   600,000 rows, generated in chunks and deleted afterwards) and in D (raw f4, D in
   {256, 1024, 2048}, fixed n) against the n D^2 (update) and D^3 (eigendecomposition) models.
3. Checkpoint write (align --checkpoint F minus plain align) vs `cp` of the same bytes, and
   checkpoint read (`recalign info F`) vs `cat F > /dev/null`; and, in process, the Python
   module's MomentAccumulator.save / .load (from build/python) vs shutil.copyfile / reading
   the bytes.
"""
import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.path.join(ROOT, "build", "tools", "recalign", "recalign")
IMAGES = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
LABELS = "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"
PY = sys.executable
ME = os.path.abspath(__file__)


# ---------------------------------------------------------------- child sides
def load_fashion(n=0):
    with gzip.open(IMAGES, "rb") as f:
        raw = f.read()
    x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(LABELS, "rb") as f:
        lab = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    if n:
        x, lab = x[:n], lab[:n]
    X = x.astype(np.float64) / 255.0
    Y = np.zeros((X.shape[0], 10))
    Y[np.arange(X.shape[0]), lab] = 1.0
    return X, Y


def moment_curve(X, Y):
    sxx = np.dot(X.T, X)
    sxy = X.T @ Y
    syy = Y.T @ Y
    lam, U = np.linalg.eigh(sxx)
    lam, U = lam[::-1], U[:, ::-1]
    A = U.T @ sxy                         # rows a_i^T
    keep = lam > 1e-12 * lam[0]          # the CLI's default tolerance is checked below
    contrib = np.where(keep, np.einsum("ic,cd,id->i", A, syy, A) / np.where(keep, lam, 1), 0)
    return lam, np.cumsum(contrib) / np.sum(syy * syy)


def side_numpy(a):
    t0 = time.perf_counter()
    X, Y = load_fashion()
    t1 = time.perf_counter()
    lam, curve = moment_curve(X, Y)
    t2 = time.perf_counter()
    np.save(a.out, np.vstack([lam, curve]))
    return {"load_s": t1 - t0, "compute_s": t2 - t1}


def side_ceiling(a):
    X, _ = load_fashion()
    t0 = time.perf_counter()
    s = np.dot(X.T, X)
    t1 = time.perf_counter()
    np.linalg.eigh(s)
    t2 = time.perf_counter()
    return {"syrk_s": t1 - t0, "eigh_s": t2 - t1, "compute_s": t2 - t0}


def side_paper(a):
    X, Y = load_fashion(a.n)
    Xc, Yc = X.T.copy(), Y.T.copy()       # paper layout: D x N, C x N
    del X, Y
    t0 = time.perf_counter()
    U, S, Vh = np.linalg.svd(Xc, full_matrices=False)
    denom = np.square(np.linalg.norm(Yc @ Yc.T))
    if a.order == "multidot":            # as written in Section 6.8 (multi_dot picks the order)
        numer = np.linalg.multi_dot([Yc.T, Yc, Vh.T])
    else:                                # left to right: Y^T Y is N x N
        numer = (Yc.T @ Yc) @ Vh.T
    curve = np.cumsum(np.linalg.norm(numer, axis=0) ** 2) / denom
    t1 = time.perf_counter()
    np.save(a.out, curve)
    return {"compute_s": t1 - t0}


def side_gen(a):
    """Write a synthetic raw file in chunks: u8 (clipped Fashion-like noise) or f4."""
    rng = np.random.default_rng(a.seed)
    chunk = 20000
    with open(a.out, "wb") as f:
        for r0 in range(0, a.n, chunk):
            r = min(chunk, a.n - r0)
            if a.dtype == "u8":
                z = rng.integers(0, 256, size=(r, a.d), dtype=np.uint8)
            else:
                scale = (np.arange(1, a.d + 1, dtype=np.float32)) ** -0.5
                z = (rng.standard_normal((r, a.d), dtype=np.float32) * scale)
            z.tofile(f)
    return {}


# ---------------------------------------------------------------- parent
def run(cmd, stdout=subprocess.DEVNULL):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    out = p.stdout.read() if stdout == subprocess.PIPE else b""
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"{cmd} failed: {err.decode()[-2000:]}")
    return wall, ru.ru_maxrss / 1024.0, out


def py_side(side, **kw):
    cmd = [PY, ME, "--side", side]
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    wall, rss, out = run(cmd, stdout=subprocess.PIPE)
    info = json.loads(out.decode().strip().splitlines()[-1])
    return wall, rss, info


def med(v):
    return statistics.median(v)


def machine(label):
    with open("/proc/loadavg") as f:
        la = f.read().split()[:3]
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC] load average {label}: {' '.join(la)}", flush=True)


def describe():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    print(f"machine: nproc {os.cpu_count()}, memory {mem:.1f} GiB, CPU {cpu}; numpy {np.__version__}")
    print("command: /usr/bin/python3 tools/bench/bench_peers.py " + " ".join(sys.argv[1:]))


def part1(a):
    print("\n== 1. align on full Fashion-MNIST (n = 60000, D = 784) vs NumPy, ceiling, paper ==", flush=True)
    tmp = a.tmp
    acmd = [CLI, "align", "--json", "--quiet"]
    r = {"recalign": [], "numpy": [], "ceiling": []}
    extra = {"numpy": [], "ceiling": []}
    for i in range(a.reps):
        w, rss, out = run(acmd, stdout=subprocess.PIPE)
        r["recalign"].append((w, rss))
        if i == 0:
            ours = json.loads(out)
        w, rss, info = py_side("numpy", out=os.path.join(tmp, "np_curve.npy"))
        r["numpy"].append((w, rss)); extra["numpy"].append(info)
        w, rss, info = py_side("ceiling")
        r["ceiling"].append((w, rss)); extra["ceiling"].append(info)
    ref = np.load(os.path.join(tmp, "np_curve.npy"))
    ev, cv = np.array(ours["eigenvalues"]), np.array(ours["alignment"])
    print(f"agreement recalign vs NumPy: max |curve diff| {np.max(np.abs(cv - ref[1])):.2e}, "
          f"max rel eigenvalue diff (top 100) {np.max(np.abs(ev[:100] - ref[0][:100]) / ref[0][:100]):.2e}, "
          f"curve end {cv[-1]:.6f}, skipped {ours['skipped']}")
    tw = {k: med([x[0] for x in v]) for k, v in r.items()}
    tr = {k: max(x[1] for x in v) for k, v in r.items()}
    nc = med([e["compute_s"] for e in extra["numpy"]]); nl = med([e["load_s"] for e in extra["numpy"]])
    cs = med([e["syrk_s"] for e in extra["ceiling"]]); ce = med([e["eigh_s"] for e in extra["ceiling"]])
    print(f"medians of {a.reps} alternating runs, wall of each child process (startup + reading the .gz included):")
    print(f"  {'side':<44}{'wall s':>9}{'peak RSS MB':>13}")
    print(f"  {'recalign align --json --quiet':<44}{tw['recalign']:>9.3f}{tr['recalign']:>13.1f}")
    print(f"  {'NumPy in memory (load + XtX + eigh + curve)':<44}{tw['numpy']:>9.3f}{tr['numpy']:>13.1f}"
          f"   (inside: load {nl:.3f} s, compute {nc:.3f} s)")
    print(f"  {'ceiling process (load + np.dot(X.T,X) + eigh)':<44}{tw['ceiling']:>9.3f}{tr['ceiling']:>13.1f}"
          f"   (inside: dot {cs:.3f} s, eigh {ce:.3f} s)")
    print(f"  ratio NumPy wall / recalign wall: {tw['numpy'] / tw['recalign']:.2f}x; RSS {tr['numpy'] / tr['recalign']:.1f}x")
    print(f"  ratio recalign wall / bare SYRK+eigh compute ({cs + ce:.3f} s, X already in memory): "
          f"{tw['recalign'] / (cs + ce):.2f}  (goal <= 2)")
    print(f"  ratio recalign wall / NumPy in-memory compute ({nc:.3f} s): {tw['recalign'] / nc:.2f}")
    print(f"  recalign peak RSS {tr['recalign']:.1f} MB (goal < 100 MB)", flush=True)

    return tw


def paper(a):
    """The paper's Section 6.8 procedure against `recalign align --limit n` at the same n: per n,
    --paper-reps repetitions (--paper-big-reps at n = 60000), each running recalign, multi_dot and
    left to right once, in that order (sides alternate, so load drifts hit all of them)."""
    tmp = a.tmp
    budget = a.nn_budget_gb * 1e9
    ns = [int(v) for v in a.paper_ns.split(",")]
    print(f"\n-- paper's Section 6.8 alignment_sweep (svd of the D x N matrix) vs recalign align --limit n; "
          f"per n, {a.paper_reps} alternating repetitions ({a.paper_big_reps} at n >= 60000) of recalign, multidot, "
          f"lefttoright; left-to-right Y^T Y stops where 8 N^2 > {a.nn_budget_gb} GB --", flush=True)
    print(f"  {'n':>6}{'side':>14}{'runs':>5}{'wall s med':>11}{'(min-max)':>16}{'compute s':>11}{'RSS MB':>8}"
          f"{'/recalign':>10}{'|diff| vs recalign':>20}")
    for n in ns:
        sides = ["recalign", "multidot", "lefttoright"]
        skipped = {}
        if 8.0 * n * n > budget:
            skipped["lefttoright"] = (f"not run: Y^T Y alone is 8 N^2 = {8.0 * n * n / 1e9:.1f} GB > {a.nn_budget_gb} GB budget"
                                      f" (machine has {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1e9:.0f} GB)")
        elif n > a.nn_max_n:
            skipped["lefttoright"] = (f"not run: N^2 D = {n * n * 784 * 2 / 1e12:.1f} Tflop for (Y^T Y) Vh^T, over the time "
                                      f"budget (--nn-max-n {a.nn_max_n})")
        reps = a.paper_big_reps if n >= 60000 else a.paper_reps
        res = {s_: [] for s_ in sides}
        diff = {}
        ours_n = None
        for i in range(reps):
            for side in sides:
                if side in skipped:
                    continue
                if side == "recalign":
                    w, rss, out = run([CLI, "align", "--json", "--quiet", "--limit", str(n)], stdout=subprocess.PIPE)
                    res[side].append((w, rss, float("nan")))
                    if ours_n is None:
                        ours_n = np.array(json.loads(out)["alignment"])
                    continue
                pc = os.path.join(tmp, "paper.npy")
                w, rss, info = py_side("paper", n=n, order=side, out=pc)
                res[side].append((w, rss, info["compute_s"]))
                if side not in diff:
                    p = np.load(pc)
                    m = min(len(p), len(ours_n))
                    diff[side] = np.max(np.abs(p[:m] - ours_n[:m]))
        rw = med([x[0] for x in res["recalign"]])
        for side in sides:
            if side in skipped:
                print(f"  {n:>6}{side:>14}   {skipped[side]}", flush=True)
                continue
            v = res[side]
            w = med([x[0] for x in v])
            rng_ = f"({min(x[0] for x in v):.2f}-{max(x[0] for x in v):.2f})"
            comp = f"{med([x[2] for x in v]):.2f}" if side != "recalign" else "-"
            dd = f"{diff[side]:.2e}" if side in diff else "-"
            print(f"  {n:>6}{side:>14}{len(v):>5}{w:>11.2f}{rng_:>16}{comp:>11}{max(x[1] for x in v):>8.0f}"
                  f"{w / rw:>9.1f}x{dd:>20}", flush=True)


def part2(a):
    print("\n== 2. scaling: recalign spectrum --json --quiet on synthetic raw data ==", flush=True)
    tmp = a.tmp
    big = os.path.join(tmp, "u8_600k.raw")
    w, _, _ = py_side("gen", n=600000, d=784, dtype="u8", out=big)
    print(f"generated {big}: 600000 x 784 u8, {os.path.getsize(big) / 1e6:.0f} MB in {w:.1f} s")
    ns = [6000, 60000, 600000]
    res = {n: [] for n in ns}
    for i in range(a.reps):
        for n in ns:
            if n == 600000 and i >= a.big_reps:
                continue
            res[n].append(run([CLI, "spectrum", "--json", "--quiet", "--images", big, "--format", "raw",
                               "--raw-shape", "0,784", "--raw-dtype", "u8", "--limit", str(n)])[:2])
    os.remove(big)
    print(f"  n growing x10 (D = 784, u8; medians of {a.reps} runs, {a.big_reps} at 600000):")
    print(f"  {'n':>8}{'wall s':>9}{'us/sample':>11}{'min us/sample':>15}{'peak RSS MB':>13}")
    for n in ns:
        w = med([x[0] for x in res[n]]); rss = max(x[1] for x in res[n])
        wm = min(x[0] for x in res[n])
        print(f"  {n:>8}{w:>9.3f}{w / n * 1e6:>11.2f}{wm / n * 1e6:>15.2f}{rss:>13.1f}")
    w6, w60, w600 = (med([x[0] for x in res[n]]) for n in ns)
    print(f"  per-sample time ratio 600000/60000: {(w600 / 600000) / (w60 / 60000):.2f} (flat = 1), "
          f"60000/6000: {(w60 / 60000) / (w6 / 6000):.2f} (fixed costs: startup, eigh)", flush=True)

    n = a.d_rows
    ds = [256, 1024, 2048]
    files = {}
    for d in ds:
        files[d] = os.path.join(tmp, f"f4_{d}.raw")
        py_side("gen", n=n, d=d, dtype="f4", out=files[d])
    rd = {d: [] for d in ds}
    eig = {d: [] for d in ds}
    for i in range(a.reps):
        for d in ds:
            rd[d].append(run([CLI, "spectrum", "--json", "--quiet", "--images", files[d], "--format", "raw",
                              "--raw-shape", f"0,{d}", "--raw-dtype", "f4"])[:2])
    for d in ds:
        os.remove(files[d])
    print(f"  D growing (n = {n}, raw f4; medians of {a.reps} runs); models relative to D = 256:")
    print(f"  {'D':>6}{'wall s':>9}{'us/sample':>11}{'RSS MB':>9}{'t/t256':>9}{'(D/256)^2':>11}{'(D/256)^3':>11}")
    t0 = med([x[0] for x in rd[256]])
    for d in ds:
        w = med([x[0] for x in rd[d]]); rss = max(x[1] for x in rd[d])
        print(f"  {d:>6}{w:>9.3f}{w / n * 1e6:>11.2f}{rss:>9.1f}{w / t0:>9.2f}{(d / 256) ** 2:>11.0f}{(d / 256) ** 3:>11.0f}")
    sys.stdout.flush()


def durable_copy(src, dst):
    """What a crash-safe save must do with the bytes: temporary file, fsync, rename, fsync
    of the directory (the same steps as checkpoint::write_file_atomic)."""
    tmp = dst + ".tmp"
    with open(src, "rb") as f:
        data = f.read()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dst)
    dfd = os.open(os.path.dirname(dst) or ".", os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# durable_copy as a stand-alone script (no NumPy import: its start is measured and subtracted)
DURABLE_COPY = """import os, sys
src, dst = sys.argv[1], sys.argv[2]
tmp = dst + ".tmp"
data = open(src, "rb").read()
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data); os.fsync(fd); os.close(fd)
os.replace(tmp, dst)
dfd = os.open(os.path.dirname(dst) or ".", os.O_RDONLY); os.fsync(dfd); os.close(dfd)
"""


def part3(a):
    print("\n== 3. checkpoint write and read (full Fashion-MNIST align state) ==", flush=True)
    ck = os.path.join(a.tmp, "ck.bin"); out = os.path.join(a.tmp, "ck_out.bin"); cp = os.path.join(a.tmp, "ck_copy.bin")
    ck2 = os.path.join(a.tmp, "ck2.bin")
    for f in (ck, ck2):
        if os.path.exists(f):
            os.remove(f)
    # two halves of the training set: merge reads both and writes their merged state
    run([CLI, "align", "--json", "--quiet", "--limit", "30000", "--checkpoint", ck])
    run([CLI, "align", "--json", "--quiet", "--skip", "30000", "--checkpoint", ck2])
    size = os.path.getsize(ck)
    merge, copy, dcopy, info, cat = [], [], [], [], []
    for i in range(a.reps):
        for f in (out, cp):
            if os.path.exists(f):
                os.remove(f)
        # merge of one file: read, validate, load, save atomically and durably
        merge.append(run([CLI, "merge", ck, ck2, "-o", out])[0])
        copy.append(run(["cp", ck, cp])[0])
        os.remove(cp)
        dcopy.append(run([sys.executable, "-c", DURABLE_COPY, ck, cp])[0])
        info.append(run([CLI, "info", ck])[0])
        cat.append(run(["cat", ck, ck2])[0])
    py0 = med([run([sys.executable, "-c", "import os, sys"])[0] for _ in range(a.reps)])
    cli0 = med([run([CLI, "--help"])[0] for _ in range(a.reps)])
    wm, wcp, wdc, wi, wcat = med(merge), med(copy), med(dcopy) - py0, med(info), med(cat)
    print(f"  checkpoint {size} bytes; medians of {a.reps} alternating runs, each a process (start included), page cache warm")
    print(f"  recalign merge A B -o C (read and validate both, load, merge, atomic durable save): {wm * 1e3:.1f} ms")
    print(f"  cp A B: {wcp * 1e3:.1f} ms;  durable copy (temp, fsync, rename, fsync dir; python start of "
          f"{py0 * 1e3:.1f} ms subtracted): {wdc * 1e3:.1f} ms")
    print(f"  ratio merge / (cat A B + cp): {wm / (wcat + wcp):.2f};  merge / (cat A B + durable copy): {wm / (wcat + wdc):.2f}")
    print(f"  recalign's own process start (recalign --help): {cli0 * 1e3:.1f} ms; without it merge takes "
          f"{(wm - cli0) * 1e3:.1f} ms and info {(wi - cli0) * 1e3:.1f} ms")
    print(f"  read: recalign info A (loads and validates the whole state) {wi * 1e3:.1f} ms, cat A B > /dev/null "
          f"{wcat * 1e3:.1f} ms; ratio info / (cat / 2): {wi / (wcat / 2):.2f}")
    for f in (ck, ck2, out, cp):
        if os.path.exists(f):
            os.remove(f)

    sys.path.insert(0, os.path.join(ROOT, "build", "python"))
    import recalign
    acc = recalign.MomentAccumulator(784, 10)
    rng = np.random.default_rng(0)
    acc.update(rng.random((2000, 784)), rng.integers(0, 10, 2000).astype(np.int64))
    f1 = os.path.join(a.tmp, "acc.bin"); f2 = os.path.join(a.tmp, "acc_copy.bin"); f3 = os.path.join(a.tmp, "acc_d.bin")
    t = {k: [] for k in ("save", "copyfile", "durable", "load", "read", "to_bytes", "from_bytes", "bytes_copy")}
    for i in range(max(a.reps, 7)):
        t0 = time.perf_counter(); acc.save(f1); t1 = time.perf_counter()
        shutil.copyfile(f1, f2); t2 = time.perf_counter()
        durable_copy(f1, f3); t3 = time.perf_counter()
        recalign.MomentAccumulator.load(f1); t4 = time.perf_counter()
        with open(f1, "rb") as f:
            data = f.read()
        t5 = time.perf_counter()
        b = acc.to_bytes(); t6 = time.perf_counter()
        recalign.MomentAccumulator.from_bytes(b); t7 = time.perf_counter()
        bytearray(b); t8 = time.perf_counter()
        for k, v in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t8 - t7)):
            t[k].append(v)
        os.remove(f2); os.remove(f3)
    size = os.path.getsize(f1)
    os.remove(f1)
    m = {k: med(v) for k, v in t.items()}
    print(f"  Python module, in process (PYTHONPATH=build/python), MomentAccumulator(784, 10) state of {size} bytes, "
          f"medians of {len(t['save'])} alternating runs:")
    print(f"  save {m['save'] * 1e3:.2f} ms ({size / m['save'] / 1e6:.0f} MB/s) vs shutil.copyfile {m['copyfile'] * 1e3:.2f} ms "
          f"(ratio {m['save'] / m['copyfile']:.2f}) vs a durable copy {m['durable'] * 1e3:.2f} ms "
          f"(ratio {m['save'] / m['durable']:.2f})")
    print(f"  load {m['load'] * 1e3:.2f} ms ({size / m['load'] / 1e6:.0f} MB/s) vs reading the bytes {m['read'] * 1e3:.2f} ms "
          f"(ratio {m['load'] / m['read']:.2f})")
    print(f"  to_bytes {m['to_bytes'] * 1e3:.2f} ms, from_bytes {m['from_bytes'] * 1e3:.2f} ms vs copying the bytes "
          f"{m['bytes_copy'] * 1e3:.2f} ms (ratios {m['to_bytes'] / m['bytes_copy']:.2f}, "
          f"{m['from_bytes'] / m['bytes_copy']:.2f})")


def main():
    global CLI
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", default="")
    ap.add_argument("--out", default="")
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--d", type=int, default=784)
    ap.add_argument("--dtype", default="u8")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--order", default="multidot")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--big-reps", type=int, default=3)
    ap.add_argument("--d-rows", type=int, default=20000)
    ap.add_argument("--nn-budget-gb", type=float, default=8.0)
    ap.add_argument("--nn-max-n", type=int, default=20000)
    ap.add_argument("--parts", default="123", help="1 = align vs NumPy/ceiling + paper, p = paper only, 2, 3")
    ap.add_argument("--paper-ns", default="2000,5000,10000,20000,60000")
    ap.add_argument("--paper-reps", type=int, default=5)
    ap.add_argument("--paper-big-reps", type=int, default=5, help="repetitions at n >= 60000")
    ap.add_argument("--cli", default=CLI, help="recalign CLI (default build/tools/recalign/recalign)")
    ap.add_argument("--tmp", default="/tmp/recalign_bench")
    a = ap.parse_args()
    CLI = os.path.abspath(a.cli)
    if a.side:
        info = {"numpy": side_numpy, "ceiling": side_ceiling, "paper": side_paper, "gen": side_gen}[a.side](a)
        print(json.dumps(info))
        return
    os.makedirs(a.tmp, exist_ok=True)
    describe()
    machine("before")
    if "1" in a.parts:
        part1(a)
    if "1" in a.parts or "p" in a.parts:
        paper(a)
    if "2" in a.parts:
        part2(a)
    if "3" in a.parts:
        part3(a)
    machine("after")


if __name__ == "__main__":
    main()
