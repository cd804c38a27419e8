#!/usr/bin/python3
"""Side-by-side driver of the sketch benchmark (BENCHMARKS.md, section "Sketches").

    /usr/bin/python3 tools/bench/bench_sketch_compare.py --bench build-sketch/tools/bench/bench_sketch \
        --dim 4096 --rows 50000 --workdir /tmp/sketch-bench [--reference exact|nystrom] \
        [--ipca-fit-rows M] [--skip rsvd,...]

Generates the synthetic power-law stream once (float32 file, chunk by chunk), then runs every
method in its own process, one after the other (same machine state, ratios side by side):
scikit-learn IncrementalPCA (streaming) and randomized_svd (in memory), Frequent Directions and
Nyström (1, 2, 3 passes). Then one `bench_sketch eval` reads the data twice and measures the
captured variance tr(V_kᵀ M V_k) of every basis on the same centered data. The exact top-k
sum comes from the reference run: the exact moments (D x D scatter + full eigendecomposition)
or, where that is too slow, a high-accuracy Nyström run (p = 2k, 4 passes); its captured
variance is a lower bound of the exact top-k sum (Ky Fan), so errors against it are lower
bounds as well, and at D = 4096 both references are run to measure the gap.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(out, file=sys.stderr, flush=True)
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--rows", type=int, default=50000)
    ap.add_argument("--rank", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--reference", default="exact", help="comma list of exact, nystrom")
    ap.add_argument("--ipca-fit-rows", type=int, default=0)
    ap.add_argument("--skip", default="")
    ap.add_argument("--reuse", action="store_true", help="reuse results of earlier runs kept in --workdir")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    d, n, k = a.dim, a.rows, a.rank
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
    results = {}
    for label, key, cmd in methods + refs:
        if key in skip:
            continue
        basis = os.path.join(a.workdir, f"basis_{key}_d{d}.f64")
        cached = os.path.join(a.workdir, f"result_{key}_d{d}.json")
        if a.reuse and os.path.exists(cached) and os.path.exists(basis):
            with open(cached) as f:
                r = json.load(f)
            print(f"(reusing {cached})", file=sys.stderr)
        else:
            r = run(cmd + ["--basis-out", basis])
            with open(cached, "w") as f:
                json.dump(r, f)
        results[key] = (label, r, basis)
    eval_cmd = [a.bench, "eval", "--data", data, "--dim", str(d), "--rows", str(n), "--rank", str(k)] + \
        [b for (_, _, b) in results.values()]
    cached = os.path.join(a.workdir, f"eval_d{d}.json")
    ev = None
    if a.reuse and os.path.exists(cached):
        with open(cached) as f:
            ev = json.load(f)
        if set(ev["captured"]) != set(b for (_, _, b) in results.values()):
            ev = None
        else:
            print(f"(reusing {cached})", file=sys.stderr)
    if ev is None:
        ev = run(eval_cmd)
        with open(cached, "w") as f:
            json.dump(ev, f)
    cap = {key: ev["captured"][b] for key, (_, _, b) in results.items()}
    ref_key = "exact" if "exact" in results else "nyref"
    best = cap[ref_key]
    base = results.get("ipca")
    print(f"\nD = {d}, n = {n}, k = {k}, batch {a.batch}; total variance {ev['total']:.6g}; "
          f"reference top-{k} sum = captured variance of the '{ref_key}' basis = {best:.10g}\n")
    # IncrementalPCA's time for all n rows (scaled linearly when it was fed fewer: its cost per batch is constant).
    scale = n / base[1].get("fit_rows", n) if base else float("nan")
    base_wall = base[1]["seconds"] * scale if base else float("nan")
    base_cpu = base[1]["cpu_seconds"] * scale if base else float("nan")
    print("| method | wall s | CPU s | peak RSS MB | state bytes | captured-variance error | speed-up vs IPCA, wall | "
          "speed-up vs IPCA, CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, (label, r, _) in results.items():
        err = (best - cap[key]) / best
        wall, cpu = r["seconds"], r.get("cpu_seconds", float("nan"))
        if key == "ipca" and scale != 1:
            label += f" (fed {base[1]['fit_rows']} rows; times x{scale:g})"
            wall, cpu = base_wall, base_cpu
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {r['peak_rss_mb']:.0f} | {r['state_bytes']} | {err:.2e} | "
              f"{base_wall / wall:.1f}x | {base_cpu / cpu:.1f}x |")
    if base and base[1].get("fit_rows", n) != n:
        print(f"\nIncrementalPCA was fed only the first {base[1]['fit_rows']} rows; its times are scaled linearly "
              f"to n = {n} (its cost per batch is constant); its error is that of the basis fitted on those rows, "
              f"judged on all n rows.")


if __name__ == "__main__":
    main()
