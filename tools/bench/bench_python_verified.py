#!/usr/bin/python3
"""The Python verified sketch denoise (recalign.verified_denoise) against the CLI's
`recalign denoise --method nystrom --rank R --passes 2` on the same recalign-synth images in
the same batches: wall time and peak RSS of each in its own child process, alternating, and
whether the documents are identical (they must be: the CLI's --json less its input description
against to_dict()). Both sides single-threaded OpenBLAS.

    /usr/bin/python3 tools/bench/bench_python_verified.py --rows 2000 --size 32 --rank 256 --reps 2 \
        [--cli build/tools/recalign/recalign --synth build/tools/synth/recalign-synth --pythonpath build/python]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

NOISES = ["mask:patch=4x4,ratio=0.75,scheme=fixed", "mask:patch=8x8,ratio=0.5", "gaussian:sigma=10"]

PYTHON_SIDE = r'''
import json, sys, numpy as np, recalign
images, labels, rows, size, rank, batch, out = sys.argv[1:8]
rows, size, rank, batch = int(rows), int(size), int(rank), int(batch)
x = np.memmap(images, dtype=np.uint8, mode="r").reshape(rows, size * size * 3)
y = np.load(labels)
data = lambda: ((np.asarray(x[i:i + batch]), y[i:i + batch]) for i in range(0, rows, batch))
r = recalign.verified_denoise(data, json.loads(sys.argv[8]), 10, shape=(size, size, 3), rank=rank, passes=2)
json.dump(r.to_dict(), open(out, "w"))
'''


def child(cmd, env, stdout_path):
    """Wall seconds and peak RSS (MiB) of one child process (os.wait4: its own rusage)."""
    with open(stdout_path, "w") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{cmd[0]} failed (status {status})")
    return wall, usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--rank", type=int, default=256)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--cli", default="build/tools/recalign/recalign")
    ap.add_argument("--synth", default="build/tools/synth/recalign-synth")
    ap.add_argument("--pythonpath", default="build/python")
    a = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.path.abspath(a.pythonpath))
    with tempfile.TemporaryDirectory() as tmp:
        images, labels = os.path.join(tmp, "x.u8"), os.path.join(tmp, "y.npy")
        subprocess.run([a.synth, "--rows", str(a.rows), "--height", str(a.size), "--width", str(a.size), "--seed", "1",
                        "--output", images, "--labels", labels], check=True, capture_output=True)
        d = a.size * a.size * 3
        cli = [a.cli, "denoise", "--images", images, "--raw-shape", f"{a.rows},{d}", "--labels", labels, "--classes",
               "10", "--batch", str(a.batch), "--image-shape", f"{a.size},{a.size},3", "--method", "nystrom", "--rank",
               str(a.rank), "--passes", "2", "--quiet", "--json"] + [x for n in NOISES for x in ("--noise", n)]
        out = os.path.join(tmp, "py.json")
        py = [sys.executable, "-c", PYTHON_SIDE, images, labels, str(a.rows), str(a.size), str(a.rank), str(a.batch),
              out, json.dumps(NOISES)]
        runs = {"cli": [], "python": []}
        for _ in range(a.reps):
            for name, cmd in (("cli", cli), ("python", py)):
                runs[name].append(child(cmd, env, os.path.join(tmp, name + ".out")))
        want = json.load(open(os.path.join(tmp, "cli.out")))
        got = json.load(open(out))
        same = {k: v for k, v in want.items() if k not in ("input", "scale")} == got  # the whole document
        reads = 2 + want["sketch_error"]["verification_passes"]  # 2 sketch passes, then the verification and refinement
        cw, cr = min(t for t, _ in runs["cli"]), max(r for _, r in runs["cli"])
        pw, pr = min(t for t, _ in runs["python"]), max(r for _, r in runs["python"])
        print(f"D = {d}, n = {a.rows}, rank {a.rank}, {reads} reads of the data, best of {a.reps}: cli {cw:.2f} s "
              f"{cr:.0f} MiB, python {pw:.2f} s {pr:.0f} MiB, python/cli {pw / cw:.2f} (time), {pr / cr:.2f} (RSS); "
              f"identical numbers: {same}; load average {os.getloadavg()[0]:.1f}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
