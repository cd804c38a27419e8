#!/usr/bin/python3
"""Side-by-side driver of the sketch benchmark (docs/benchmarks-log.md, section "Sketches").

    /usr/bin/python3 tools/bench/bench_sketch_compare.py --bench build-bench/tools/bench/bench_sketch \
        --dim 4096 --rows 50000 --workdir /tmp/sketch-bench [--reps 5] [--ref-reps 1] \
        [--reference exact|nystrom] [--ipca-fit-rows M] [--skip rsvd,...] [--reuse]

Generates the synthetic power-law stream once (float32 file, chunk by chunk), then runs every
method in its own process: scikit-learn IncrementalPCA (streaming) and randomized_svd (in
memory), Frequent Directions and Nyström (1, 2, 3 passes). Each method is run --reps times,
round-robin (repetition 1 runs every method once, then repetition 2, ...), so a change of the
machine's load hits every side alike; the table shows the median wall and CPU time per method
with the min-max range, the peak RSS as the maximum over the runs, and speed-ups computed from
the medians. The reference runs (--reference) are run --ref-reps times (default 1).

Every run is seeded, so its basis is the same in every repetition (checked: the bases of later
repetitions are compared with the first and the largest difference is printed); one `bench_sketch
eval` then reads the data twice and measures the captured variance tr(V_kᵀ M V_k) of every
first-repetition basis on the same centered data. The exact top-k sum comes from the reference
run: the exact moments (D x D scatter + full eigendecomposition) or, where that is too slow, a
high-accuracy Nyström run (p = 2k, 4 passes); its captured variance is a lower bound of the exact
top-k sum (Ky Fan), so errors against it are lower bounds as well.

Every run's JSON is appended to WORKDIR/runs_d{D}.jsonl as it finishes; --reuse takes the runs
already there (same method, repetition and command) instead of running them again.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(out, file=sys.stderr, flush=True)
    return json.loads(out)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--rows", type=int, default=50000)
    ap.add_argument("--rank", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--reps", type=int, default=5, help="runs per method, round-robin over the methods")
    ap.add_argument("--ref-reps", type=int, default=1, help="runs of the reference method(s)")
    ap.add_argument("--reference", default="exact", help="comma list of exact, nystrom")
    ap.add_argument("--ipca-fit-rows", type=int, default=0,
                    help="feed IncrementalPCA only the first M rows in the repetitions (times scaled by n/M)")
    ap.add_argument("--ipca-full-runs", type=int, default=0,
                    help="with --ipca-fit-rows: also run IncrementalPCA on all n rows this many times, after the "
                         "repetitions; its basis then gives IncrementalPCA's captured-variance error")
    ap.add_argument("--skip", default="")
    ap.add_argument("--reuse", action="store_true", help="reuse runs recorded in WORKDIR/runs_d{D}.jsonl")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    d, n, k = a.dim, a.rows, a.rank
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC] load average before: {loadavg()}", flush=True)
    print("command: /usr/bin/python3 " + " ".join(sys.argv), flush=True)
    data = os.path.join(a.workdir, f"powerlaw_d{d}_n{n}.f32")
    if not os.path.exists(data) or os.path.getsize(data) != 4 * d * n:
        run([a.bench, "generate", "--dim", str(d), "--rows", str(n), "--alpha", "1.0", "--seed", "1", "--out", data])
    common = ["--data", data, "--dim", str(d), "--rows", str(n), "--rank", str(k), "--batch", str(a.batch)]
    peers = os.path.join(HERE, "bench_sketch_peers.py")
    skip = set(filter(None, a.skip.split(",")))
    methods = [
        ("IncrementalPCA (sklearn)", "ipca", [sys.executable, peers, "--method", "ipca"] + common +
         (["--fit-rows", str(a.ipca_fit_rows)] if a.ipca_fit_rows else [])),
        ("randomized_svd (sklearn, in memory, n_iter=4)", "rsvd", [sys.executable, peers, "--method", "rsvd"] + common),
        ("frequent_directions l=2k", "fd", [a.bench, "run", "--method", "fd", "--ell", str(2 * k)] + common),
        ("frequent_directions l=2k f32 shrinks", "fd32", [a.bench, "run", "--method", "fd", "--ell", str(2 * k),
                                                          "--float32", "1"] + common),
        ("nystrom 1 pass p=20 f32", "ny1", [a.bench, "run", "--method", "nystrom", "--passes", "1",
                                           "--oversampling", "20", "--float32", "1"] + common),
        ("nystrom 2 passes p=100 f32", "ny2", [a.bench, "run", "--method", "nystrom", "--passes", "2",
                                              "--oversampling", "100", "--float32", "1"] + common),
        ("nystrom 3 passes p=50 f32", "ny3", [a.bench, "run", "--method", "nystrom", "--passes", "3",
                                             "--oversampling", "50", "--float32", "1"] + common),
    ]
    refs = []
    for r in a.reference.split(","):
        if r == "exact":
            refs.append(("reference: exact moments + eigendecomposition", "exact",
                         [a.bench, "run", "--method", "exact"] + common))
        elif r == "nystrom":
            refs.append(("reference: nystrom p=2k, 4 passes, f32 kernels", "nyref",
                         [a.bench, "run", "--method", "nystrom", "--passes", "4", "--oversampling", str(2 * k),
                          "--float32", "1"] + common))
    ref_keys = {key for (_, key, _) in refs}
    todo = [(label, key, cmd) for (label, key, cmd) in methods + refs if key not in skip]
    if a.ipca_fit_rows and a.ipca_full_runs and "ipca" not in skip:
        todo.append(("IncrementalPCA (sklearn), all n rows", "ipcafull",
                     [sys.executable, peers, "--method", "ipca"] + common))

    log = os.path.join(a.workdir, f"runs_d{d}.jsonl")
    done = {}
    if a.reuse and os.path.exists(log):
        with open(log) as f:
            for line in f:
                e = json.loads(line)
                done[(e["key"], e["rep"], " ".join(e["cmd"]))] = e["result"]
    elif os.path.exists(log):
        os.remove(log)

    def basis_path(key, rep):
        return os.path.join(a.workdir, f"basis_{key}_d{d}" + (f"_r{rep}" if rep else "") + ".f64")

    runs = {key: [] for (_, key, _) in todo}
    # Round-robin: repetition i runs every method once, in the same order.
    for rep in range(max(a.reps, a.ref_reps)):
        for label, key, cmd in todo:
            if key == "ipcafull":
                continue
            if rep >= (a.ref_reps if key in ref_keys else a.reps):
                continue
            tag = (key, rep, " ".join(cmd))
            if tag in done and os.path.exists(basis_path(key, 0)):
                r = done[tag]
                print(f"(reusing {key} repetition {rep + 1} from {log})", file=sys.stderr)
            else:
                r = run(cmd + ["--basis-out", basis_path(key, rep)])
                with open(log, "a") as f:
                    f.write(json.dumps({"key": key, "rep": rep, "cmd": cmd, "result": r,
                                        "utc": time.strftime('%H:%M:%S', time.gmtime()), "load": loadavg()}) + "\n")
            runs[key].append(r)
        print(f"[{time.strftime('%H:%M:%S', time.gmtime())} UTC] repetition {rep + 1} done, load average {loadavg()}",
              flush=True)

    # The full-stream IncrementalPCA runs, after the repetitions (one method, nothing to alternate with).
    for label, key, cmd in todo:
        if key != "ipcafull":
            continue
        for rep in range(a.ipca_full_runs):
            tag = (key, rep, " ".join(cmd))
            if tag in done and os.path.exists(basis_path(key, 0)):
                r = done[tag]
            else:
                r = run(cmd + ["--basis-out", basis_path(key, rep)])
                with open(log, "a") as f:
                    f.write(json.dumps({"key": key, "rep": rep, "cmd": cmd, "result": r,
                                        "utc": time.strftime('%H:%M:%S', time.gmtime()), "load": loadavg()}) + "\n")
            runs[key].append(r)
        print(f"[{time.strftime('%H:%M:%S', time.gmtime())} UTC] full-stream IncrementalPCA done, load average {loadavg()}",
              flush=True)

    # Determinism: the bases of later repetitions against the first.
    size = d * k
    maxdiff = {}
    for _, key, _ in todo:
        b0 = np.fromfile(basis_path(key, 0), dtype=np.float64, count=size)
        maxdiff[key] = max([0.0] + [float(np.max(np.abs(np.fromfile(basis_path(key, i), dtype=np.float64, count=size) - b0)))
                                    for i in range(1, len(runs[key])) if os.path.exists(basis_path(key, i))])

    bases = [basis_path(key, 0) for (_, key, _) in todo]
    ev = run([a.bench, "eval", "--data", data, "--dim", str(d), "--rows", str(n), "--rank", str(k)] + bases)
    cap = {key: ev["captured"][basis_path(key, 0)] for (_, key, _) in todo}
    ref_key = "exact" if "exact" in cap else "nyref"
    best = cap[ref_key]

    def stats(key, field):
        v = [r.get(field, float("nan")) for r in runs[key]]
        return statistics.median(v), min(v), max(v)

    base = runs.get("ipca")
    fit_rows = base[0].get("fit_rows", n) if base else n
    scale = n / fit_rows
    base_wall = stats("ipca", "seconds")[0] * scale if base else float("nan")
    base_cpu = stats("ipca", "cpu_seconds")[0] * scale if base else float("nan")
    print(f"\nD = {d}, n = {n}, k = {k}, batch {a.batch}; total variance {ev['total']:.6g}; "
          f"reference top-{k} sum = captured variance of the '{ref_key}' basis = {best:.10g}")
    print(f"medians over the runs (min-max in brackets), methods run round-robin; peak RSS = max over the runs; "
          f"speed-ups = IncrementalPCA's median / the method's median\n")
    print("| method | runs | wall s, median (min-max) | CPU s, median (min-max) | peak RSS MB | state bytes | "
          "captured-variance error | speed-up vs IPCA, wall | speed-up vs IPCA, CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, key, _ in todo:
        err = (best - cap[key]) / best
        w, wmin, wmax = stats(key, "seconds")
        c, cmin, cmax = stats(key, "cpu_seconds")
        s = 1.0
        if key == "ipca" and scale != 1:
            label += f" (fed {fit_rows} rows; times x{scale:g})"
            s = scale
        rss = max(r["peak_rss_mb"] for r in runs[key])
        print(f"| {label} | {len(runs[key])} | {w * s:.2f} ({wmin * s:.2f}-{wmax * s:.2f}) | "
              f"{c * s:.2f} ({cmin * s:.2f}-{cmax * s:.2f}) | {rss:.0f} | {runs[key][0]['state_bytes']} | {err:.2e} | "
              f"{base_wall / (w * s):.1f}x | {base_cpu / (c * s):.1f}x |")
    print("\nlargest |basis entry difference| of a later repetition against the first: " +
          ", ".join(f"{key} {maxdiff[key]:.1e}" for (_, key, _) in todo))
    if base and fit_rows != n:
        print(f"IncrementalPCA was fed only the first {fit_rows} rows; its times are scaled linearly "
              f"to n = {n} (its cost per batch is constant); its error is that of the basis fitted on those rows, "
              f"judged on all n rows.")
    if runs.get("ipcafull"):
        fw, fc = stats("ipcafull", "seconds")[0], stats("ipcafull", "cpu_seconds")[0]
        print(f"IncrementalPCA on all {n} rows ({len(runs['ipcafull'])} run(s), after the repetitions): wall {fw:.2f} s, "
              f"CPU {fc:.2f} s, against the scaled fit-rows medians {base_wall:.2f} s / {base_cpu:.2f} s "
              f"(ratio full / scaled: wall {fw / base_wall:.2f}, CPU {fc / base_cpu:.2f}); its error is the like-for-like "
              f"accuracy of IncrementalPCA.")
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC] load average after: {loadavg()}", flush=True)


if __name__ == "__main__":
    main()
