#!/usr/bin/env python3
"""Issue 14, "Accuracy": the sketch route (`--method nystrom --rank 256 --passes 2`, verified)
against the exact route on one data set, every patch size 1, 2, 4, 8 x ratio .25, .5, .75, .9
(Bernoulli masks) plus Gaussian noise: the largest |Δ| of Figure 7's relative differences and
of the normalised noise impact for K <= 64, sign flips where |exact| > 5e-3, the Gaussian
impact, and the trade-off losses for λ = 0, 1, 10 at K = 64 (upper bounds: sketch / exact − 1).

The exact route runs once with all noises. The sketch route runs one noise at a time by
default (`--together`: all in one command): each command's verification space is span(U) plus
256 + 64 directions per masking noise, so with many noises at once it covers R^D at these D and
agrees trivially; one at a time is the test of the method.

    tools/bench/accuracy_highd.py fashion [--rows 20000]               # D = 784 (Fashion-MNIST)
    tools/bench/accuracy_highd.py synth --side 32 [--rows 12000]       # D = 3,072 (recalign-synth)
    tools/bench/accuracy_highd.py synth --side 64 --rows 20000 --noises 4x4:0.25,8x8:0.75   # D = 12,288

Synthetic images: 4·side x 4·side box-averaged by 4, cached in --cache. The exact route at
D = 12,288 needs ~5 GB and many minutes: run it alone. Prints one line per noise and writes
the JSON documents to --cache.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", choices=["fashion", "synth"])
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--side", type=int, default=32)
    ap.add_argument("--build", default="build")
    ap.add_argument("--cache", default="/tmp/recalign-accuracy")
    ap.add_argument("--noises", default=None, help="PxP:ratio,... (default: all 16)")
    ap.add_argument("--together", action="store_true")
    ap.add_argument("--skip-tradeoff", action="store_true")
    a = ap.parse_args()
    recalign = os.path.join(a.build, "tools/recalign/recalign")
    os.makedirs(a.cache, exist_ok=True)
    if a.data == "fashion":
        rows = a.rows or 20000
        args, shape, tag = ["--limit", rows], ["--image-shape", "28,28,1"], f"fashion{rows}"
    else:
        rows = a.rows or 12000
        side = a.side
        tag = f"synth{side}_{rows}"
        images, labels = os.path.join(a.cache, tag + ".u8"), os.path.join(a.cache, tag + ".idx")
        if not os.path.exists(images):
            subprocess.run([os.path.join(a.build, "tools/synth/recalign-synth"), "--rows", str(rows), "--height",
                            str(4 * side), "--width", str(4 * side), "--downsample", "4", "--seed", "1",
                            "--output", images, "--labels", labels], check=True, capture_output=True)
        args = ["--images", images, "--format", "raw", "--raw-shape", f"{rows},{side * side * 3}", "--raw-dtype", "u8",
                "--labels", labels]
        shape = ["--image-shape", f"{side},{side},3"]
    pairs = ([p.split(":") for p in a.noises.split(",")] if a.noises else
             [(f"{p}x{p}", r) for p in (1, 2, 4, 8) for r in ("0.25", "0.5", "0.75", "0.9")])
    masks = [f"mask:patch={p},ratio={r}" for p, r in pairs]
    noises = masks + ["gaussian:sigma=0.1"]
    sketch = ["--method", "nystrom", "--rank", "256", "--passes", "2", "--seed", "1"]

    def run(what, cmd):
        t = time.time()
        p = subprocess.run([recalign] + [str(c) for c in cmd] + ["--json", "--quiet"], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"{what}: exit {p.returncode}: {p.stderr.strip()}")
        print(f"  ({what}: {time.time() - t:.0f} s wall)", file=sys.stderr)
        return json.loads(p.stdout)

    stamp = int(os.path.getmtime(recalign))  # sketch results are of this build

    def cached(name, cmd):
        f = os.path.join(a.cache, f"{tag}_{name}.json".replace(":", "-").replace(",", "-"))
        if not os.path.exists(f):
            doc = run(name, cmd)
            with open(f, "w") as o:
                json.dump(doc, o)
        with open(f) as i:
            return json.load(i)

    def flags(ns):
        return [x for n in ns for x in ("--noise", n)]

    exact = cached("exact_" + "_".join(noises) if a.noises else "exact",
                   ["denoise"] + args + shape + flags(noises))
    by_spec = {n["spec"]: n for n in exact["noises"]}
    if a.together:
        got = run("sketch", ["denoise"] + args + shape + flags(noises) + sketch)["noises"]
    else:
        got = [cached(f"sketch{stamp}_{n}", ["denoise"] + args + shape + flags([n]) + sketch)["noises"][0]
               for n in noises]
    print(f"{tag}: D = {exact['d']}, n = {exact['n']}; sketch nystrom 256, 2 passes, verified; K <= 64")
    worst_rel = worst_imp = 0.0
    for s in got:
        e = by_spec[s["spec"]]
        if s["spec"].startswith("gaussian"):
            print(f"  {s['spec']:40s} impact (sketch) <= {max(abs(v) for v in s['impact']):.1e}")
            continue
        k = min(64, len(e["relative"]), len(s["relative"]))
        d = max(abs(x - y) for x, y in zip(e["relative"][:k], s["relative"][:k]))
        flips = sum(1 for x, y in zip(e["relative"][:k], s["relative"][:k]) if abs(x) > 5e-3 and (x > 0) != (y > 0))
        i = max(abs(x - y) for x, y in zip(e["impact_normalised"][:k], s["impact_normalised"][:k]))
        big = max(abs(x) for x in e["relative"][:k])
        worst_rel, worst_imp = max(worst_rel, d), max(worst_imp, i)
        print(f"  {s['spec']:40s} K = {k}: |Δ relative| {d:.1e} (max |exact| {big:.1e}), sign flips {flips}, "
              f"|Δ impact/K| {i:.1e}")
    print(f"  worst: |Δ relative| {worst_rel:.1e}, |Δ impact/K| {worst_imp:.1e}")
    if not a.skip_tradeoff:
        t = ["tradeoff"] + args + ["--lambda", "0,1,10", "--k", "64"]
        te, ts = cached("tradeoff_exact", t), cached(f"tradeoff_sketch{stamp}", t + sketch)
        for x, y in zip(te, ts):
            print(f"  tradeoff λ = {x['lambda']:g}, K = 64: sketch / exact − 1 = {y['loss'] / x['loss'] - 1:.1e}")


if __name__ == "__main__":
    main()
