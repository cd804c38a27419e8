#!/usr/bin/env python3
"""Training-set filtering with the top / bottom principal-subspace projection as a
DataLoader transform (the paper's Figure 1): keep only the directions explaining the top
`fraction` of the pixel variance, or only the rest, train the same linear classifier on
each, and compare test accuracy.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/filter_training_set.py \
        [--fraction 0.75] [--train 20000] [--epochs 3]

The moments come from one streamed pass; the transform is picklable, so it runs inside
the DataLoader's worker processes.
"""
import argparse
import os
import sys
import time

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recalign  # noqa: E402
from fashion_data import FashionMNIST  # noqa: E402


def train_and_test(transform, args):
    torch.manual_seed(0)
    train = DataLoader(FashionMNIST("train", args.train, transform), batch_size=256, shuffle=True,
                       num_workers=args.workers)
    test = DataLoader(FashionMNIST("test", None, transform), batch_size=1000, num_workers=args.workers)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(args.epochs):
        for x, y in train:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    correct = total = 0
    with torch.no_grad():
        for x, y in test:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fraction", type=float, default=0.75)
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(2)

    # One streamed pass for the moments (labels not needed for the projection).
    acc = recalign.MomentAccumulator(784)
    stats_loader = DataLoader(FashionMNIST("train", args.train), batch_size=1000, num_workers=args.workers)
    recalign.track(((x, None) for x, _ in stats_loader), acc)

    for part in ("none", "top", "bottom"):
        t0 = time.perf_counter()
        transform = None
        if part != "none":
            transform = recalign.ProjectionTransform.from_moments(acc, fraction=args.fraction, part=part)
        acc_test = train_and_test(transform, args)
        what = "unfiltered images" if transform is None else \
            f"{part} subspace (k = {transform.k} of 784 directions, {args.fraction:.0%} of the variance in the top)"
        print(f"{what:78s} test accuracy {acc_test:.4f}  ({time.perf_counter() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
