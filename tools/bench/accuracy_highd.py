#!/usr/bin/env python3
"""Issue 14, "Accuracy": the sketch route (`--method nystrom --rank 256 --passes 2`, verified)
against the exact route on one data set, every patch size 1, 2, 4, 8 x ratio .25, .5, .75, .9
(Bernoulli masks) plus Gaussian noise: the largest |Δ| of Figure 7's relative differences and
of the normalised noise impact for K <= 64, sign flips where |exact| > 5e-3, the Gaussian
impact, and the trade-off losses for λ = 0, 1, 10 at K = 64 (upper bounds: sketch / exact − 1).

The exact route runs once for all the noises not yet in the cache; each noise's result is
cached on its own (exact: per data set; sketch: per build, rank, refine), so a rerun, or a run
with more --noises, resumes. The sketch route runs one noise at a time by default
(`--together`: all in one command): each command's verification space is span(U) plus 256 +
64 directions per masking noise, so with many noises at once it covers R^D at these D and
agrees trivially; one at a time is the test of the method.

    tools/bench/accuracy_highd.py fashion [--rows 20000]               # D = 784 (Fashion-MNIST)
    tools/bench/accuracy_highd.py synth --side 32 [--rows 12000]       # D = 3,072 (recalign-synth)
    tools/bench/accuracy_highd.py synth --side 64 --size 224 --rows 20000 --noises 16x16:0.75,2x2:0.5
        # D = 12,288, the demo's 224x224 images box-averaged by 3.5; exact route ~9 GB: run it alone
    tools/bench/accuracy_highd.py fashion --rank 64 --draws 4 --noises 4x4:0.75 --skip-tradeoff
        # Monte-Carlo noises (draws=4): sketch route against the exact route of the same draws
    tools/bench/accuracy_highd.py synth --side 64 --size 224 --rows 20000 --oracle --noises 16x16:0.75:fixed
        # exact side from tools/bench/denoise_oracle.py (NumPy/SciPy; ~3 D x D, minutes where
        # recalign's exact route takes hours); PxP:ratio:fixed is the fixed-count scheme
    tools/bench/accuracy_highd.py synth --side 32 --size 224 --rows 20000 --passes 1 --noises 16x16:0.75:fixed,16x16:0.75 [--together]
        # the 224 demo's three noises and sketch route (the CLI's --passes 1) on its images box-averaged by 7

Synthetic images: --size x --size (default 4·side) box-averaged to side x side by
recalign-synth, cached in --cache. Prints one line per noise, a Markdown row per noise
(--markdown) and the CPU time, wall time and peak RSS of every command (/usr/bin/time),
with the wall time of each of its passes (the CLI's stderr).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", choices=["fashion", "synth"])
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--side", type=int, default=32)
    ap.add_argument("--size", type=int, default=None, help="side of the generated images (default 4·side)")
    ap.add_argument("--build", default="build")
    ap.add_argument("--cache", default="/tmp/recalign-accuracy")
    ap.add_argument("--noises", default=None, help="PxP:ratio,... (default: all 16)")
    ap.add_argument("--rank", type=int, default=256)
    ap.add_argument("--passes", type=int, default=2, help="--passes of the sketch route (the demo's command: the CLI's 1)")
    ap.add_argument("--refine", type=int, default=None, help="--refine N of the sketch route (default: the CLI's)")
    ap.add_argument("--draws", type=int, default=0, help="Monte-Carlo masks with S draws (both routes)")
    ap.add_argument("--no-gaussian", action="store_true")
    ap.add_argument("--together", action="store_true")
    ap.add_argument("--skip-tradeoff", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--oracle", action="store_true",
                    help="exact side from tools/bench/denoise_oracle.py (NumPy/SciPy) instead of recalign's exact route")
    ap.add_argument("--only", choices=["exact", "sketch", "report"],
                    help="run one route (sketch: compare where exact is cached), or only report what is cached")
    a = ap.parse_args()
    recalign = os.path.join(a.build, "tools/recalign/recalign")
    os.makedirs(a.cache, exist_ok=True)
    if a.data == "fashion":
        rows = a.rows or 20000
        args, shape, tag = ["--limit", rows], ["--image-shape", "28,28,1"], f"fashion{rows}"
    else:
        rows = a.rows or 12000
        side = a.side
        size = a.size or 4 * side
        tag = f"synth{side}_{rows}" if size == 4 * side else f"synth{side}from{size}_{rows}"
        images, labels = os.path.join(a.cache, tag + ".u8"), os.path.join(a.cache, tag + ".idx")
        if not os.path.exists(images):
            subprocess.run([os.path.join(a.build, "tools/synth/recalign-synth"), "--rows", str(rows), "--height",
                            str(size), "--width", str(size), "--downsample", str(size / side), "--classes", "10",
                            "--seed", "1", "--output", images, "--labels", labels], check=True, capture_output=True)
        args = ["--images", images, "--format", "raw", "--raw-shape", f"{rows},{side * side * 3}", "--raw-dtype", "u8",
                "--labels", labels]
        shape = ["--image-shape", f"{side},{side},3"]
    pairs = ([p.split(":") for p in a.noises.split(",")] if a.noises else
             [(f"{p}x{p}", r) for p in (1, 2, 4, 8) for r in ("0.25", "0.5", "0.75", "0.9")])
    draws = f",draws={a.draws}" if a.draws else ""
    masks = [f"mask:patch={x[0]},ratio={x[1]}" + (f",scheme={x[2]}" if len(x) > 2 else "") + draws for x in pairs]
    noises = masks + ([] if a.no_gaussian else ["gaussian:sigma=0.1"])
    method = ["--method", "nystrom", "--rank", str(a.rank), "--passes", str(a.passes), "--seed", "1"]
    sketch = method + ([] if a.refine is None else ["--refine", str(a.refine)])
    times = []

    def run(what, cmd):
        with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
            p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", tf.name, recalign] + [str(c) for c in cmd] +
                               ["--json"], capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"{what}: exit {p.returncode}: {p.stderr.strip()}")
            wall, user, system, rss = tf.read().split()[-4:]
        t = {"wall": float(wall), "cpu": float(user) + float(system), "rss_mib": int(rss) / 1024}
        # The CLI's stderr line "wall seconds per pass (...): a, b, ...": the time split by pass.
        per_pass = [ln.split("): ", 1)[1] for ln in p.stderr.splitlines() if "wall seconds per pass" in ln]
        if per_pass:
            t["passes"] = [float(x) for x in per_pass[0].split(", ")]
        print(f"  ({what}: {t['cpu']:.0f} s CPU, {t['wall']:.0f} s wall, {t['rss_mib']:.0f} MiB)", file=sys.stderr)
        return json.loads(p.stdout), t

    stamp = int(os.path.getmtime(recalign))  # sketch results are of this build

    def path(name):
        return os.path.join(a.cache, f"{tag}_{name}.json".replace(":", "-").replace(",", "-").replace("=", ""))

    def cached(name, cmd):
        f = path(name)
        if not os.path.exists(f):
            if a.only == "report":
                return None
            doc, t = run(name, cmd)
            with open(f + ".tmp", "w") as o:
                json.dump({"doc": doc, "time": t}, o)
            os.replace(f + ".tmp", f)
        with open(f) as i:
            c = json.load(i)
        times.append((name, c["time"]))
        return c["doc"]

    def flags(ns):
        return [x for n in ns for x in ("--noise", n)]

    # The exact route: one command for every noise not cached yet, one cache file per noise.
    # --oracle: denoise_oracle.py instead (masks only; cached as oracle_*; validated against the
    # exact route wherever both are cached: the report prints their largest difference).
    ex = "oracle_" if a.oracle else "exact_"
    missing = [n for n in noises if not os.path.exists(path(ex + n)) and not (a.oracle and n.startswith("gaussian"))]
    if missing and a.oracle and a.only not in ("sketch", "report"):
        if a.data == "fashion" or a.draws:
            sys.exit("--oracle: recalign-synth data and closed-form masks only")
        oracle = [sys.executable if sys.executable.startswith("/usr/bin") else "/usr/bin/python3",
                  os.path.join(os.path.dirname(os.path.abspath(__file__)), "denoise_oracle.py")]
        cmd = oracle + ["--images", images, "--labels", labels, "--raw-shape", f"{rows},{side * side * 3}",
                        "--image-shape", f"{side},{side},3", "--cache", a.cache] + [x for n in missing for x in ("--noise", n)]
        with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
            p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", tf.name] + cmd, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"oracle: exit {p.returncode}: {p.stderr.strip()}")
            wall, user, system, rss = tf.read().split()[-4:]
        t = {"wall": float(wall), "cpu": float(user) + float(system), "rss_mib": int(rss) / 1024}
        print(f"  (oracle {' '.join(missing)}: {t['cpu']:.0f} s CPU, {t['wall']:.0f} s wall, {t['rss_mib']:.0f} MiB)",
              file=sys.stderr)
        doc = json.loads(p.stdout)
        for n, e in zip(missing, doc["noises"]):
            t["stages"] = doc["time"]
            with open(path(ex + n) + ".tmp", "w") as o:
                json.dump({"n": doc["n"], "d": doc["d"], "noise": e, "time": t, "with": ["oracle"] + missing}, o)
            os.replace(path(ex + n) + ".tmp", path(ex + n))
    elif missing and a.only not in ("sketch", "report"):
        seed = ["--seed", "1"] if a.draws else []  # the sketch route's draws
        doc, t = run("exact " + " ".join(missing), ["denoise"] + args + shape + flags(missing) + seed)
        for n, e in zip(missing, doc["noises"]):  # in the order given (their "spec" is canonical)
            with open(path("exact_" + n) + ".tmp", "w") as o:
                json.dump({"n": doc["n"], "d": doc["d"], "noise": e, "time": t, "with": missing}, o)
            os.replace(path("exact_" + n) + ".tmp", path("exact_" + n))
    if a.only == "exact":
        return
    by_spec, exact_runs, source, agree = {}, {}, {}, {}
    for n in noises:  # the exact route where cached, else the oracle; both: how far apart
        found = [(w, path(w + n)) for w in ("exact_", "oracle_") if os.path.exists(path(w + n))]
        for w, f in reversed(found):
            with open(f) as i:
                c = json.load(i)
            by_spec[n], source[n] = c["noise"], w[:-1]
            exact_runs[" ".join(c["with"])] = c["time"]
        if len(found) == 2:
            with open(found[1][1]) as i:
                o = json.load(i)["noise"]
            agree[n] = max(max(abs(x - y) for x, y in zip(by_spec[n][q][:64], o[q][:64]))
                           for q in ("relative", "impact_normalised"))
    times.extend(("exact " + k if not k.startswith("oracle") else k, t) for k, t in exact_runs.items())
    rp = f"r{a.rank}" + ("" if a.passes == 2 else f"_p{a.passes}")
    sk = f"sketch{stamp}_{rp}" + ("" if a.refine is None else f"_refine{a.refine}")
    if a.together:
        docs = [cached(sk + "_together_" + "_".join(noises), ["denoise"] + args + shape + flags(noises) + sketch)]
        got = docs[0]["noises"]
    else:
        docs = [cached(f"{sk}_{n}", ["denoise"] + args + shape + flags([n]) + sketch) for n in noises]
        noises = [n for n, x in zip(noises, docs) if x]  # report: the cached ones
        docs = [x for x in docs if x]
        got = [x["noises"][0] for x in docs]
    if not docs:
        sys.exit(f"{tag}: no sketch result of this build ({sk}) cached: run without --only report")
    doc0 = docs[0]
    refine = "CLI default" if a.refine is None else a.refine
    print(f"{tag}: D = {doc0['d']}, n = {doc0['n']}; sketch nystrom {a.rank}, {a.passes} passes, verified, refine {refine}; "
          f"{'all noises in one command' if a.together else 'one noise per command'}; K <= 64")
    worst_rel = worst_imp = 0.0
    by_patch, gauss, trade = {}, None, []  # the Markdown table: one row per patch size
    for i, (n, s) in enumerate(zip(noises, got)):
        r = docs[0 if a.together else i].get("sketch_error", {}).get("refinement") or {}
        ref = f", refined {r['passes']}/{r['budget']} ({r['stopped']})" if "passes" in r else ""
        if s["spec"].startswith("gaussian"):  # Corollary 3.1: impact 0, no exact route needed
            gauss = max(abs(v) for v in s["impact"])
            print(f"  {s['spec']:40s} impact (sketch) <= {gauss:.1e}")
            continue
        if n not in by_spec:
            print(f"  {s['spec']:40s} (exact route not run)")
            continue
        e = by_spec[n]
        k = min(64, len(e["relative"]), len(s["relative"]))
        dr = max(abs(x - y) for x, y in zip(e["relative"][:k], s["relative"][:k]))
        flips = sum(1 for x, y in zip(e["relative"][:k], s["relative"][:k]) if abs(x) > 5e-3 and (x > 0) != (y > 0))
        di = max(abs(x - y) for x, y in zip(e["impact_normalised"][:k], s["impact_normalised"][:k]))
        big = max(abs(x) for x in e["relative"][:k])
        worst_rel, worst_imp = max(worst_rel, dr), max(worst_imp, di)
        miss = " MISSED" if dr > 2e-3 or di > 1e-2 or flips else ""
        print(f"  {s['spec']:40s} K = {k}: |Δ relative| {dr:.1e} (max |exact| {big:.1e}), sign flips {flips}, "
              f"|Δ impact/K| {di:.1e}{miss}{ref} [{source[n]}"
              + (f"; exact route and oracle within {agree[n]:.0e}]" if n in agree else "]"))
        closed = path("exact_" + n.replace(draws, ""))
        if a.draws and os.path.exists(closed):  # the Monte-Carlo error of the exact route itself, for scale
            with open(closed) as i:
                c = json.load(i)["noise"]
            print(f"    exact route, {a.draws} draws against the closed form: |Δ relative| "
                  f"{max(abs(x - y) for x, y in zip(e['relative'][:k], c['relative'][:k])):.1e}, |Δ impact/K| "
                  f"{max(abs(x - y) for x, y in zip(e['impact_normalised'][:k], c['impact_normalised'][:k])):.1e}")
        patch, ratio = n.split("patch=")[1].split(",")[0], n.split("ratio=")[1].split(",")[0]
        patch += " fixed" if "scheme=fixed" in n else ""
        by_patch.setdefault(patch, []).append((ratio, dr, di, flips))
    print(f"  worst: |Δ relative| {worst_rel:.1e}, |Δ impact/K| {worst_imp:.1e}")
    if not a.skip_tradeoff:
        t = ["tradeoff"] + args + ["--lambda", "0,1,10", "--k", "64"]
        te = cached("tradeoff_exact", t)
        ts = cached(f"tradeoff_sketch{stamp}_{rp}", t + method)
        for x, y in zip(te or [], ts or []):
            r = y['loss'] / x['loss'] - 1
            print(f"  tradeoff λ = {x['lambda']:g}, K = 64: sketch / exact − 1 = {r:.1e}")
            trade.append(f"λ = {x['lambda']:g}: {r:+.1e}")
    if a.markdown:
        print("| data (n) | D | patch | ratios | \\|Δ relative\\| | \\|Δ impact/K\\| | sign flips |")
        print("|---|---|---|---|---|---|---|")
        for patch, r in by_patch.items():
            print(f"| {tag} ({doc0['n']}) | {doc0['d']:,} | {patch} | {' / '.join(x[0].removeprefix('0') for x in r)} | "
                  f"{' / '.join(f'{x[1]:.1e}' for x in r)} | {' / '.join(f'{x[2]:.1e}' for x in r)} | "
                  f"{sum(x[3] for x in r)} |")
        if gauss is not None:
            print(f"| {tag} ({doc0['n']}) | {doc0['d']:,} | Gaussian σ = 0.1 | | | impact {gauss:.1e} | |")
        if trade:
            print(f"| {tag} ({doc0['n']}) | {doc0['d']:,} | trade-off K = 64, sketch / exact − 1 | | "
                  f"{', '.join(trade)} | | |")
    cpu = sum(t[1]["cpu"] for t in times)
    print(f"  commands: {len(times)}, CPU {cpu:.0f} s in all (cached results count their first run)")
    for t in times:
        print(f"    {t[0][:90]:90s} {t[1]['cpu']:7.0f} s CPU {t[1]['wall']:7.0f} s wall {t[1]['rss_mib']:6.0f} MiB")
        if "passes" in t[1]:
            print(f"      wall s per pass: {', '.join(f'{x:.1f}' for x in t[1]['passes'])}")


if __name__ == "__main__":
    main()
