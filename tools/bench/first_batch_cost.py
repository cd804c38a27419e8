"""(docs/benchmarks-log.md, "The twenty-sixth session") Cost of the first batch's pre-pass: update() of a fresh MomentAccumulator (first batch:
column mean found in a pre-pass) against update() of one that has seen rows (running-mean
shift), the same float64 batch, alternating, medians of 15; and the whole 10,000-row stream."""
import os
import statistics
import sys
import time
import numpy as np
import recalign
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python", "tests"))
import conftest
images, _ = conftest._load(10000)
x = np.ascontiguousarray(images.astype(np.float64) / 255.0)
for b in (256, 1000, 4096):
    first, later = [], []
    for _ in range(15):
        a = recalign.MomentAccumulator(784)
        t = time.perf_counter(); a.update(x[:b]); first.append(time.perf_counter() - t)
        t = time.perf_counter(); a.update(x[b:2 * b]); later.append(time.perf_counter() - t)
    f, l = statistics.median(first), statistics.median(later)
    stream = []
    for _ in range(5):
        a = recalign.MomentAccumulator(784)
        t = time.perf_counter()
        for lo in range(0, len(x), b):
            a.update(x[lo:lo + b])
        stream.append(time.perf_counter() - t)
    s = statistics.median(stream)
    print(f"batch {b:5d}: first update {f*1e3:7.2f} ms, a later one {l*1e3:7.2f} ms; extra {1e3*(f-l):6.2f} ms "
          f"= {100*(f-l)/s:.2f} % of the 10,000-row stream ({s*1e3:.0f} ms)")

# Run: PYTHONPATH=build/python /usr/bin/python3 tools/bench/first_batch_cost.py
