"""Crash injection: a checkpointed `recalign align` run is killed with SIGKILL at >= 20
seeded random moments (chains of 2-5 kills, each run resumed with --resume, the last one to
completion). Every completed chain must print exactly the bytes of the uninterrupted run.

After every kill: the checkpoint, if there is one, loads (`recalign info`), is a state the
run really passed through (rows_done a multiple of --checkpoint-every, never behind the
previous one) and the kill left at most one temporary file (the write it interrupted).
A completing run leaves no temporary file of its own. A kill before the first checkpoint
existed is followed by a fresh start (`--resume` continues FILE only "if it exists").
The kills are classified (before the first checkpoint / during a checkpoint write /
between writes); each class must have happened, with targeted kills (at the moment a
temporary file appears) added if the random ones missed one.

usage: kill_resume.py path/to/recalign"""
import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

import cli_common as c
from data_sets import fashion_mnist_or_skip

SEED = int(os.environ.get("RECALIGN_KILL_SEED", "20261127"))
MIN_KILLS = 20
N, BATCH, EVERY = 4000, 20, 200  # 200 batches, 20 checkpoints of ~5 MB (D = 784)

FASHION_IMAGES, FASHION_LABELS = fashion_mnist_or_skip("kill_resume")
tmp = c.init()
data = ["--images", FASHION_IMAGES, "--labels", FASHION_LABELS,
        "--scale", "1/255", "--limit", str(N), "--batch", str(BATCH)]
# One BLAS thread: on a busy 2-core machine OpenBLAS's spinning worker threads stretch a
# 1.5 s run to 20 s. Bits depend on the thread count, so every run here uses the same one.
env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
rng = random.Random(SEED)
t_start = time.monotonic()


def command(ck):
    return [c.RECALIGN, "align"] + data + ["--checkpoint", ck, "--checkpoint-every", str(EVERY), "--resume", "--json"]


def temps(ck):
    return set(glob.glob(glob.escape(ck) + ".tmp.*"))


def info(ck):
    p = subprocess.run([c.RECALIGN, "info", ck, "--json"], capture_output=True, env=env)
    if p.returncode != 0:
        c.fail(f"info {ck}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
        return None
    return json.loads(p.stdout)


def rows_done(ck):
    j = info(ck)
    if not j:
        return None
    c.check(j.get("kind") == "cli_run" and len(j.get("segments", [])) == 1, f"{ck}: info {j}")
    return j["segments"][0]["rows_done"]


# --- the uninterrupted runs: without and with checkpoints, same bytes
p = subprocess.run([c.RECALIGN, "align"] + data + ["--json", "--quiet"], capture_output=True, env=env)
c.check(p.returncode == 0, f"plain run: exit {p.returncode} {p.stderr!r}")
reference = p.stdout
t0 = time.monotonic()
ref_ck = os.path.join(tmp, "reference.ckpt")
p = subprocess.run(command(ref_ck), capture_output=True, env=env)
t_full = time.monotonic() - t0
c.check(p.returncode == 0, f"checkpointed run: exit {p.returncode} {p.stderr!r}")
c.check(p.stdout == reference, "an uninterrupted checkpointed run prints other bytes than a run without checkpoints")
c.check(b"resuming" not in p.stderr, f"a run without a checkpoint file claims to resume: {p.stderr!r}")
c.check(not temps(ref_ck), "an uninterrupted run left a temporary file")
j = info(ref_ck)
c.check(j is not None and j["complete"] and j["n"] == N, f"final checkpoint of the uninterrupted run: {j}")
print(f"uninterrupted checkpointed run: {t_full:.2f} s ({N // EVERY} checkpoints)")
if c.FAILURES:
    c.finish("kill_resume")

counts = {"before_first": 0, "mid_write": 0, "between": 0}
kills = 0
random_kills = 0


def wait_for_temp(ck, p, before, limit):
    """Polls until a new temporary file appears (a checkpoint write is under way)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and p.poll() is None:
        if temps(ck) - before:
            return True
        time.sleep(0.0005)
    return False


def attempt(ck, how, prev_rows):
    """Starts (or resumes) the run on ck. how: ('delay', seconds), or ('temp', seconds): that
    long after a temporary file appears, to kill it; None to let it finish. Returns (killed, rows_done after) and checks everything."""
    global kills, random_kills
    existed = os.path.exists(ck)
    before = temps(ck)
    p = subprocess.Popen(command(ck), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if how is not None:
        if how[0] == "delay":
            try:
                p.wait(timeout=how[1])
            except subprocess.TimeoutExpired:
                pass
        elif wait_for_temp(ck, p, before, 4 * t_full + 5):
            time.sleep(how[1])  # a random moment within the write (a few ms: write, fsync)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
    out, err = p.communicate()
    err = err.decode(errors="replace")
    if not existed:
        c.check("resuming" not in err, f"{ck}: no checkpoint existed, yet the run claims to resume: {err!r}")
    after = temps(ck)
    if p.returncode == -signal.SIGKILL:
        kills += 1
        if how[0] == "delay":
            random_kills += 1
        new = after - before
        c.check(len(new) <= 1, f"{ck}: one kill left {len(new)} temporary files: {sorted(new)}")
        # (files from before may be gone: a restarted run removes what killed writes left)
        if not os.path.exists(ck):
            counts["before_first"] += 1
            c.check(not existed, f"{ck}: the checkpoint disappeared")
        elif new:
            pass
        else:
            counts["between"] += 1
        if new:
            counts["mid_write"] += 1
        rows = prev_rows
        if os.path.exists(ck):
            rows = rows_done(ck)
            if rows is not None:
                c.check(rows % EVERY == 0 or rows == N, f"{ck}: killed checkpoint at row {rows}")
                c.check(rows >= prev_rows, f"{ck}: checkpoint went back from row {prev_rows} to {rows}")
        return True, rows
    # The run finished (the last attempt of a chain, or one that beat its kill).
    c.check(p.returncode == 0, f"{ck}: exit {p.returncode}: {err!r}")
    if existed:
        c.check(f"resuming {ck} at row {prev_rows} of {N}" in err,
                f"{ck}: the resumed run did not say 'resuming ... at row {prev_rows}': {err!r}")
    c.check(out == reference, f"{ck}: output after kills and --resume differs from the uninterrupted run")
    c.check(not after, f"{ck}: a completed run left temporary files: {sorted(after)}")
    if before:  # what earlier killed writes left is removed when the run starts, and said
        c.check(f"removed {len(before)} temporary file(s) of an interrupted checkpoint write" in err,
                f"{ck}: {len(before)} stale temporary files were not reported removed: {err!r}")
    j = info(ck)
    c.check(j is not None and j["complete"] and j["n"] == N, f"{ck}: final checkpoint {j}")
    for t in after:  # what a killed write leaves: a prefix of a checkpoint, never read again
        c.check(os.path.getsize(t) <= os.path.getsize(ref_ck), f"{t}: larger than a checkpoint")
    return False, N


def chain(name, plan):
    """Kills according to plan (a list of 'hows'), then resumes to completion."""
    d = os.path.join(tmp, name)
    os.mkdir(d)
    ck = os.path.join(d, "run.ckpt")
    rows = 0
    for how in plan:
        if how[0] == "delay":  # a random moment within what is left of the run
            left = t_full * max(N - rows, EVERY) / N
            how = ("delay", how[1] * left)
        killed, rows = attempt(ck, how, rows)
        if not killed:
            return  # it finished before the kill: already checked
    attempt(ck, None, rows)


# --- random kills
n_chain = 0
while random_kills < MIN_KILLS and n_chain < 4 * MIN_KILLS:  # (each chain has >= 2 kill attempts)
    n_chain += 1
    chain(f"chain{n_chain}", [("delay", rng.random()) for _ in range(rng.randint(2, 5))])
print(f"random phase: {random_kills} kills in {n_chain} chains; classes {counts}")

# --- targeted kills for classes the random moments missed
for tries in range(6):
    if counts["before_first"] and counts["mid_write"]:
        break
    n_chain += 1
    # killed as the first checkpoint is being written: a temporary file, no checkpoint yet
    chain(f"targeted{n_chain}", [("temp", rng.uniform(0, 0.004))])
for tries in range(6):
    if counts["between"]:
        break
    n_chain += 1
    chain(f"targeted{n_chain}", [("temp", 0), ("delay", 0.5)])
for tries in range(6):
    if counts["mid_write"] >= 2:
        break
    n_chain += 1
    chain(f"targeted{n_chain}", [("delay", rng.random()), ("temp", rng.uniform(0, 0.004))])

c.check(random_kills >= MIN_KILLS, f"only {random_kills} random kills landed (need {MIN_KILLS})")
for k, v in counts.items():
    c.check(v > 0, f"no kill landed {k.replace('_', ' ')} (classes: {counts})")
left = sum(len(glob.glob(os.path.join(tmp, ch, "run.ckpt.tmp.*"))) for ch in os.listdir(tmp)
           if os.path.isdir(os.path.join(tmp, ch)))
c.check(left == 0, f"{left} temporary files left after every chain completed ({counts['mid_write']} kills during a write)")
print(f"kill_resume: {kills} kills ({random_kills} at random moments) in {n_chain} chains, classes {counts}, "
      f"the temporary files of interrupted writes removed by the runs after them, {time.monotonic() - t_start:.1f} s")
c.finish("kill_resume")
