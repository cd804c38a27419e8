#!/usr/bin/env python3
"""Stream Fashion-MNIST through a torch DataLoader (2 workers) into a recalign
AlignmentTracker, with periodic atomic checkpoints and progress reports.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/stream_fashion_mnist.py \
        [--limit 60000] [--checkpoint run.ckpt] [--resume]

Kill it at any moment and run it again with --resume: it continues from the last
checkpoint and ends with the same numbers (bit for bit) as an uninterrupted run.
"""
import argparse
import os
import sys
import time

import numpy as np
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recalign  # noqa: E402
from fashion_data import FashionMNIST  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=60000, help="training images to read")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--checkpoint", default=None, help="checkpoint file (written every --every batches)")
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()

    data = FashionMNIST("train", limit=args.limit)
    # shuffle=False: a resumed run must see the batches in the same order
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=False, num_workers=args.workers)
    tracker = recalign.AlignmentTracker(
        784, 10, shape=(28, 28),
        noises=["gaussian:sigma=0.2", "mask:patch=4x4,ratio=0.75,scheme=fixed"])

    def progress(report, batches):
        print(f"  {report.n:6d} images: alignment at k=10 {report.clean.curve[9]:.4f}, "
              f"max change since last report {report.clean_change:.2e}", flush=True)

    t0 = time.perf_counter()
    tracker = recalign.track(loader, tracker, checkpoint=args.checkpoint, every=args.every,
                             resume=args.resume, report_every=40, on_report=progress)
    elapsed = time.perf_counter() - t0
    r = tracker.report()
    if args.resume:
        print(f"{r.n} images in all, this run took {elapsed:.1f} s (resumed from {args.checkpoint})")
    else:
        print(f"{r.n} images in {elapsed:.1f} s ({r.n / elapsed:.0f} images/s)")
    c = r.clean
    print(f"clean alignment ({c.measure}, {c.center}): " +
          ", ".join(f"k={k}: {c.curve[k - 1]:.4f}" for k in (1, 10, 50, 100, 300)))
    spec = recalign.exact_spectrum(tracker.moments, "centered")
    print(f"principal directions explaining 75% / 90% / 99% of the variance: "
          f"{spec.k_for_fraction(0.75)} / {spec.k_for_fraction(0.9)} / {spec.k_for_fraction(0.99)}")
    for nr in r.noises:
        d = nr.denoising
        ks = [k for k in (10, 50, 100) if k <= d.max_k]
        rel = ", ".join(f"k={k}: {d.relative_difference[k - 1]:+.3f}" for k in ks)
        print(f"{nr.spec}: denoising vs clean alignment (relative) {rel}; "
              f"noise impact (mean sin^2) at k=10 {nr.impact.normalised[9]:.3f}")
    if args.checkpoint:
        print(f"checkpoint: {args.checkpoint} ({os.path.getsize(args.checkpoint)} bytes)")
    assert np.all(np.diff(c.curve[: c.max_k]) >= -1e-12)  # the cumulative curve never decreases


if __name__ == "__main__":
    main()
