#!/usr/bin/python3
"""Issue 13: reading a folder of JPEGs, recalign's readers against torchvision's pipeline and
against decoding alone.

One command (after `ninja -C build`), from the repository root, on a quiet machine:

    /usr/bin/python3 tools/bench/bench_images.py [--images 10000] [--cache /tmp/recalign_bench_images]
                                                 [--threads 2] [--reps 1] [--configs 64,224]

--images N JPEGs of about 500x375 (sizes drawn around ImageNet's, quality 90, 10 classes,
smooth random content) are generated once into --cache/N (reused by later runs). Two
configurations, as in the issue:

  64:  Resize(64) + CenterCrop(64)   -> exact moments (MomentAccumulator, D = 12,288, labels)
  224: Resize(256) + CenterCrop(224) -> Nyström sketch (NystromSketch, D = 150,528, rank --rank)

and for each, in its own child process (wall time around the child, peak RSS from wait4):

  recalign     recalign.ImageFolder(..., threads=--threads) batches -> the accumulator's update
  torchvision  torchvision ImageFolder + the same transforms (PILToTensor, uint8 HWC rows) +
               DataLoader(num_workers=2, batch) -> the same update
  recalign-f32k the same with float32_kernels=True (64: MomentAccumulator's exact
               integer SSYRK path for uint8 pixels; 224: NystromSketch's SGEMM products)
  torchvision-f32k  the torchvision pipeline feeding the float32_kernels accumulator
  decode-only  recalign.ImageFolder alone, the batches dropped (the ceiling of the readers)
  cli          (224 only) `recalign spectrum --images DIR --resize 256 --crop 224,224
               --method nystrom --rank K`, the whole command (its eigensolve included)

Images/s and peak RSS are printed per side, with the ratios recalign/torchvision and
recalign/decode-only (goals: >= 2 and >= 0.8). The finishing eigendecomposition is not
timed in the Python sides (D = 12,288 would dominate). Peak RSS independent of the number of
images: run with two --images values and compare.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "build", "tools", "recalign", "recalign")
PYPATH = os.path.join(ROOT, "build", "python")
ME = os.path.abspath(__file__)
CONFIGS = {"64": dict(resize=64, crop=64), "224": dict(resize=256, crop=224)}
BATCH = 256


def generate(cache, n):
    """n JPEGs in cache/n/<class>/<i>.jpg, written once (a marker file says it is complete)."""
    from PIL import Image
    d = os.path.join(cache, str(n))
    if os.path.exists(os.path.join(d, ".complete")):
        return d
    rng = np.random.default_rng(13)
    t0 = time.monotonic()
    for i in range(n):
        cls = os.path.join(d, f"class_{i % 10:02d}")
        os.makedirs(cls, exist_ok=True)
        h, w = (375, 500) if rng.random() < 0.7 else (int(rng.integers(300, 500)), int(rng.integers(300, 500)))
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        chans = [127 + 90 * np.sin(a * x + b * y + p) for a, b, p in rng.uniform(0.005, 0.05, (3, 3))]
        img = np.stack(chans, -1) + rng.normal(0, 12, (h, w, 3)).astype(np.float32)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(cls, f"{i:06d}.jpg"), quality=90)
    open(os.path.join(d, ".complete"), "w").close()
    print(f"generated {n} JPEGs in {d} ({time.monotonic() - t0:.0f} s)", flush=True)
    return d


def accumulator(config, dim, classes, rank, kernels=False):
    import recalign
    if config == "64":
        return recalign.MomentAccumulator(dim, classes=classes, float32_kernels=kernels)
    return recalign.NystromSketch(dim, rank, seed=1, float32_kernels=kernels)


def update(acc, config, x, y):
    if config == "64":
        acc.update(x, y)
    else:
        acc.update(x)


def side(args):
    """Runs one side in this (child) process; prints {"images": n} as JSON."""
    sys.path.insert(0, PYPATH)
    import recalign
    g = CONFIGS[args.config]
    n = 0
    if args.side in ("recalign", "recalign-f32k", "decode-only"):
        data = recalign.ImageFolder(args.dir, resize=g["resize"], crop=g["crop"], batch=BATCH, threads=args.threads)
        acc = (accumulator(args.config, data.dim, len(data.classes), args.rank, args.side == "recalign-f32k")
               if args.side != "decode-only" else None)
        for x, y in data:
            if acc is not None:
                update(acc, args.config, x, y)
            n += len(x)
    else:
        import torch
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms
        torch.set_num_threads(1)
        tf = transforms.Compose([transforms.Resize(g["resize"]), transforms.CenterCrop(g["crop"]),
                                 transforms.PILToTensor(), HWCRows()])
        loader = DataLoader(datasets.ImageFolder(args.dir, tf), batch_size=BATCH, num_workers=2)
        acc = accumulator(args.config, g["crop"] * g["crop"] * 3, 10, args.rank, args.side == "torchvision-f32k")
        for x, y in loader:
            update(acc, args.config, x.numpy(), y.numpy())
            n += len(x)
    print(json.dumps({"images": n}))


class HWCRows:
    """CHW uint8 tensor -> flat HWC row (recalign's default layout); picklable for workers."""

    def __call__(self, t):
        return t.permute(1, 2, 0).reshape(-1)


def measure(cmd, env=None):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed: {err.decode(errors='replace')}")
    return wall, usage.ru_maxrss / 1024.0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--cache", default="/tmp/recalign_bench_images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rank", type=int, default=100)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--configs", default="64,224")
    ap.add_argument("--side")
    ap.add_argument("--config")
    ap.add_argument("--dir")
    args = ap.parse_args()
    if args.side:
        return side(args)
    d = generate(args.cache, args.images)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", PYTHONPATH=PYPATH)
    for config in args.configs.split(","):
        g = CONFIGS[config]
        sides = (["recalign", "recalign-f32k", "torchvision", "torchvision-f32k", "decode-only"] +
                 (["cli"] if config == "224" else []))
        rate = {}
        for s in sides:
            best = None
            for _ in range(args.reps):
                if s == "cli":
                    cmd = [CLI, "spectrum", "--images", d, "--resize", str(g["resize"]), "--crop", f"{g['crop']},{g['crop']}",
                           "--method", "nystrom", "--rank", str(args.rank), "--threads", str(args.threads),
                           "--batch", str(BATCH), "--json", "--quiet"]
                    wall, rss, _ = measure(cmd, env)
                    n = args.images
                else:
                    cmd = [sys.executable, ME, "--side", s, "--config", config, "--dir", d, "--threads", str(args.threads),
                           "--rank", str(args.rank)]
                    wall, rss, out = measure(cmd, env)
                    n = json.loads(out)["images"]
                if best is None or wall < best[0]:
                    best = (wall, rss, n)
            wall, rss, n = best
            rate[s] = n / wall
            print(f"config {config:>3}  {s:<12} {n:6d} images  {wall:7.2f} s  {n / wall:8.1f} images/s  "
                  f"peak RSS {rss:7.1f} MB", flush=True)
        print(f"config {config:>3}  recalign / torchvision = {rate['recalign'] / rate['torchvision']:.2f}x, "
              f"recalign / decode-only = {rate['recalign'] / rate['decode-only']:.2f}x", flush=True)
        if "recalign-f32k" in rate:
            print(f"config {config:>3}  recalign-f32k / torchvision-f32k = "
                  f"{rate['recalign-f32k'] / rate['torchvision-f32k']:.2f}x (the same accumulator on both sides), "
                  f"recalign-f32k / torchvision = {rate['recalign-f32k'] / rate['torchvision']:.2f}x, "
                  f"recalign-f32k / decode-only = {rate['recalign-f32k'] / rate['decode-only']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
