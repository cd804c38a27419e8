#!/usr/bin/env python3
"""Sums a blas_calls.cpp log (recalign's BLAS and LAPACK calls, LD_PRELOAD) by operation and shape,
over the whole run or over windows between RECALIGN_MEMORY_TRACE marks of the same run:

    tools/bench/blas_calls.py calls.log --trace trace.err --start "pass completed" --end "basis built"

Each window runs from a `start` mark to the next `end` mark (the refinement's restarts, above); the
report gives each window's wall time and the part of it inside the logged calls, then the calls
of all windows by shape, largest total first, with the recalign function that made them (with
--by caller: by that function alone). Shapes
are BLAS's (m n k for a GEMM; n k for a SYRK; m n for a TRSM; n n for POTRF, SYEVD); with
--fold D, every extent >= D is printed as "D" (the row count of D-sized products)."""
import argparse
import collections
import re
import shutil
import subprocess


def marks(path):
    """(name, seconds) of every `memory:` line of a RECALIGN_MEMORY_TRACE stderr."""
    out = []
    for line in open(path, errors="replace"):
        m = re.match(r"memory: (.*?): VmRSS .* at ([0-9.]+) s", line)
        if m:
            out.append((m.group(1), float(m.group(2))))
    return out


def windows(trace, start, end):
    found, opened = [], None
    for name, t in marks(trace):
        if name == start and opened is None:
            opened = t
        elif name == end and opened is not None:
            found.append((opened, t))
            opened = None
    return found


def demangle(names):
    if not names or not shutil.which("c++filt"):
        return {n: n for n in names}
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    return dict(zip(names, out))


def caller(chain):
    """The first named frame above the BLAS wrapper (recalign::blas::...): functions in anonymous
    namespaces export no name, so their named caller stands for them ("?" when none of the four
    frames logged has a name)."""
    frames = [re.sub(r"\+[0-9a-f]+$", "", f) for f in chain.split(";") if f and f != "-"]
    for f in frames:
        if f != "?" and "4blas" not in f:
            return f
    return frames[-1] if frames else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log")
    ap.add_argument("--trace", help="the run's stderr with RECALIGN_MEMORY_TRACE=1")
    ap.add_argument("--start", default="pass completed")
    ap.add_argument("--end", default="basis built")
    ap.add_argument("--fold", type=int, default=100000)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--by", choices=("shape", "caller"), default="shape",
                    help="sum by operation and shape (default), or by the calling recalign function alone")
    a = ap.parse_args()
    calls = []
    for line in open(a.log):
        p = line.split()
        if len(p) < 5:
            continue
        calls.append((float(p[0]), float(p[1]), p[2], [int(x) for x in p[3:-1]], p[-1]))
    wins = windows(a.trace, a.start, a.end) if a.trace else [(float("-inf"), float("inf"))]
    inside = [c for c in calls if any(lo <= c[0] <= hi for lo, hi in wins)]
    if a.trace:
        for lo, hi in wins:
            spent = sum(c[1] for c in inside if lo <= c[0] <= hi)
            print(f"window {lo:9.2f} - {hi:9.2f} s: {hi - lo:7.2f} s wall, {spent:7.2f} s in the calls "
                  f"({spent / (hi - lo):.0%})")
    by = collections.defaultdict(lambda: [0, 0.0])
    for _, took, op, dims, chain in inside:
        shape = " ".join("D" if x >= a.fold else str(x) for x in dims)
        key = (op, shape, caller(chain)) if a.by == "shape" else ("", "", caller(chain))
        by[key][0] += 1
        by[key][1] += took
    total = sum(v[1] for v in by.values())
    print(f"{len(inside)} calls, {total:.2f} s; by " + ("operation and shape:" if a.by == "shape" else "caller:"))
    top = sorted(by.items(), key=lambda kv: -kv[1][1])[:a.top]
    names = demangle(sorted({k[2] for k, _ in top}))
    for (op, shape, who), (n, took) in top:
        print(f"  {took:8.2f} s {n:7d}x  {op:8s} {shape:22s} {names.get(who, who)[:100]}")


if __name__ == "__main__":
    main()
