"""Fault injection into checkpoint writes of `recalign align`, through fault_shim.so
(LD_PRELOAD; see README.md): write (ENOSPC, also after a short write), fsync (EIO),
close (EIO) and rename (EIO) of the temporary file fail at the 2nd or 3rd checkpoint, and
the fsync of the directory fails after a rename.

For each: the CLI exits 2 with one line naming the checkpoint path, the operation and the
error; prints no results; the checkpoint file is byte for byte what it was when the failing
call was reached (the shim stops the process there with SIGSTOP so that the test can copy
it) and loads; no temporary file remains; the log of the shim shows which calls were made
on the failing temporary file: a failed fsync was attempted exactly once and the file was
not renamed afterwards, nor another checkpoint begun. Resuming without the shim completes
with exactly the output of an uninterrupted run.

usage: checkpoint_faults.py path/to/recalign path/to/fault_shim.so"""
import glob
import json
import os
import signal
import subprocess
import sys

import cli_common as c
from data_sets import fashion_mnist_or_skip

if len(sys.argv) < 3:
    sys.exit(__doc__)
SHIM = os.path.abspath(sys.argv.pop(2))
FASHION_IMAGES, FASHION_LABELS = fashion_mnist_or_skip("checkpoint_faults")
tmp = c.init()
N, BATCH, EVERY = 2000, 100, 400  # checkpoints at rows 400, 800, 1200, 1600, 2000, then the final one
data = ["--images", FASHION_IMAGES, "--labels", FASHION_LABELS,
        "--scale", "1/255", "--limit", str(N), "--batch", str(BATCH)]
# One BLAS thread: fast on a busy machine, and the same bits in every run (kill_resume.py).
env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
for k in list(env):
    if k.startswith("RECALIGN_FAULT_") or k == "LD_PRELOAD":
        del env[k]
STRERROR = {"EIO": os.strerror(5), "ENOSPC": os.strerror(28)}


def command(ck, resume=False):
    return ([c.RECALIGN, "align"] + data + ["--checkpoint", ck, "--checkpoint-every", str(EVERY), "--json"] +
            (["--resume"] if resume else []))


def shim_env(**fault):
    e = dict(env, LD_PRELOAD=SHIM)
    # An ASan build refuses to start with another library preloaded before its runtime.
    e["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))
    for k, v in fault.items():
        e["RECALIGN_FAULT_" + k.upper()] = str(v)
    return e


def temps(ck):
    return sorted(glob.glob(glob.escape(ck) + ".tmp.*"))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def info(ck):
    p = subprocess.run([c.RECALIGN, "info", ck, "--json"], capture_output=True, env=env)
    if not c.check(p.returncode == 0, f"info {ck}: exit {p.returncode}: {p.stderr!r}"):
        return None
    return json.loads(p.stdout)


def parse_log(path):
    """[(op, path, result)] in call order."""
    calls = []
    if os.path.exists(path):
        for line in read(path).decode().splitlines():
            op, rest = line.split(" ", 1)
            p, result = rest.split(" ", 1)
            calls.append((op, p, result))
    return calls


def fresh(name):
    d = os.path.join(tmp, name)
    os.mkdir(d)
    return d, os.path.join(d, "run.ckpt")


# --- the uninterrupted run, and the same run with the shim loaded but injecting nothing
p = subprocess.run([c.RECALIGN, "align"] + data + ["--json", "--quiet"], capture_output=True, env=env)
c.check(p.returncode == 0, f"plain run: exit {p.returncode} {p.stderr!r}")
reference = p.stdout
d, ck = fresh("dry")
log = os.path.join(d, "shim.log")
p = subprocess.run(command(ck), capture_output=True, env=shim_env(match=ck + ".tmp.", log=log))
c.check(p.returncode == 0 and p.stdout == reference, f"run under the inert shim: exit {p.returncode}, "
        f"same output: {p.stdout == reference}, {p.stderr!r}")
dry = parse_log(log)
files = []  # temporary files in the order the checkpoints were written
for op, path, result in dry:
    if path not in files:
        files.append(path)
c.check(len(files) >= 4, f"the shim saw {len(files)} checkpoint writes: {dry}")
for f in files:
    ops = [(op, r.split()[0]) for op, path, r in dry if path == f]
    kinds = [op for op, _ in ops]
    c.check(kinds.count("fsync") == 1 and kinds.count("close") == 1 and kinds.count("rename") == 1 and
            kinds[0] == "write" and kinds[-3:] == ["fsync", "close", "rename"] and
            all(r == "ok" for _, r in ops), f"{f}: calls {ops}")
c.check(not temps(ck), "the inert-shim run left temporary files")


def nth_call(op, checkpoint):
    """Index (1-based) among the matching `op` calls of the first `op` call on the temporary
    file of the given checkpoint (1-based), from the dry run's log."""
    target = files[checkpoint - 1]
    n = 0
    for o, path, _ in dry:
        if o == op:
            n += 1
            if path == target:
                return n
    raise AssertionError(f"no {op} on checkpoint {checkpoint}")


def run_paused(cmd, e):
    """Runs cmd; when the shim stops it (SIGSTOP before the injected failure) calls
    snapshot() once, then continues it. Returns (rc, stdout, stderr, snapshot or None)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    snap = None
    _, status = os.waitpid(p.pid, os.WUNTRACED)
    if os.WIFSTOPPED(status):
        snap = snapshot_of[0]()
        os.kill(p.pid, signal.SIGCONT)
        out, err = p.communicate()
        rc = p.returncode
    else:  # already reaped here: read the pipes ourselves
        out, err = p.stdout.read(), p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        rc = os.waitstatus_to_exitcode(status)
        p.returncode = rc
    return rc, out, err.decode(errors="replace"), snap


snapshot_of = [None]


def scenario(name, op, err_name, checkpoint, words, short=False):
    """The `op` call on the temporary file of checkpoint number `checkpoint` fails."""
    d, ck = fresh(name)
    log = os.path.join(d, "shim.log")
    nth = nth_call(op, checkpoint)
    e = shim_env(match=ck + ".tmp.", op=op, nth=nth, errno=err_name, log=log, pause=1,
                 **({"short": 1} if short else {}))

    def snapshot():
        return {"ckpt": read(ck) if os.path.exists(ck) else None, "temps": temps(ck)}

    snapshot_of[0] = snapshot
    rc, out, err, snap = run_paused(command(ck), e)
    what = f"{name} ({op} {err_name} at checkpoint {checkpoint})"
    if not c.check(snap is not None, f"{what}: the shim never reached the failing call (exit {rc}, {err!r})"):
        return
    c.one_line_error(rc, err, [ck, words, STRERROR[err_name]], what)
    c.check(out == b"", f"{what}: printed results after a failed checkpoint: {out[:200]!r}")
    # The previous checkpoint: present before the failing call, the same bytes after, loads.
    c.check(snap["ckpt"] is not None, f"{what}: no previous checkpoint when the failure came")
    c.check(len(snap["temps"]) == 1, f"{what}: temporary files at the failing call: {snap['temps']}")
    c.check(read(ck) == snap["ckpt"], f"{what}: the previous checkpoint changed")
    j = info(ck)
    c.check(j is not None and j["segments"][0]["rows_done"] == (checkpoint - 1) * EVERY and not j["complete"],
            f"{what}: previous checkpoint {j}")
    c.check(not temps(ck), f"{what}: temporary files left: {temps(ck)}")
    # What the shim saw on the failing temporary file.
    calls = parse_log(log)
    failed = [(o, pth) for o, pth, r in calls if r.startswith("fail")]
    c.check(len(failed) == 1 and failed[0][0] == op, f"{what}: failing calls {failed}")
    if failed:
        bad = failed[0][1]
        on_bad = [o for o, pth, _ in calls if pth == bad]
        c.check(bad == snap["temps"][0] if snap["temps"] else False, f"{what}: failed on {bad}, not {snap['temps']}")
        c.check(on_bad.count("fsync") == (0 if op == "write" else 1),
                f"{what}: fsync calls on the failing file: {on_bad}")
        c.check(on_bad.count("rename") == (1 if op == "rename" else 0), f"{what}: rename calls on {bad}: {on_bad}")
        if short:
            c.check([r.split()[0] for o, pth, r in calls if pth == bad and o == "write"][-2:] == ["short", "fail"],
                    f"{what}: expected a short write then the failing one: {calls}")
        # Nothing after the failure but the cleanup: no other checkpoint was begun.
        c.check(calls[-1][1] == bad, f"{what}: calls on other files after the failure: {calls[-3:]}")
        later = [o for o, pth, r in calls[[i for i, x in enumerate(calls) if x[2].startswith('fail')][0] + 1:]]
        c.check(set(later) <= {"close"}, f"{what}: calls after the failure: {later}")
    # Resume without the shim: completes and prints the uninterrupted run's bytes.
    p = subprocess.run(command(ck, resume=True), capture_output=True, env=env)
    c.check(p.returncode == 0 and p.stdout == reference,
            f"{what}: resume exit {p.returncode}, same output: {p.stdout == reference}, {p.stderr!r}")
    c.check(f"resuming {ck} at row {(checkpoint - 1) * EVERY} of {N}".encode() in p.stderr,
            f"{what}: resume note {p.stderr!r}")
    print(f"{what}: {err.strip()}")


for k in (2, 3):
    scenario(f"write_enospc_{k}", "write", "ENOSPC", k, "cannot write")
    scenario(f"fsync_eio_{k}", "fsync", "EIO", k, "fsync")
    scenario(f"rename_eio_{k}", "rename", "EIO", k, "rename")
scenario("write_short_enospc_3", "write", "ENOSPC", 3, "cannot write", short=True)
scenario("close_eio_2", "close", "EIO", 2, "close")

# --- the directory's fsync fails after the 2nd rename: the new checkpoint is in place and
# complete (its data was fsynced before the rename), only the rename's durability is in
# doubt; the run stops with the error and a resume continues from that checkpoint.
d, ck = fresh("dir_fsync_eio_2")
log = os.path.join(d, "shim.log")
rc, out, err, snap = run_paused(command(ck), shim_env(match=d, exact=1, op="fsync", nth=2, errno="EIO", log=log))
c.one_line_error(rc, err, [ck, "fsync of the directory", STRERROR["EIO"]], "directory fsync EIO")
c.check(out == b"", "directory fsync EIO: printed results")
c.check([(o, r.split()[0]) for o, _, r in parse_log(log) if o == "fsync"] == [("fsync", "ok"), ("fsync", "fail")],
        f"directory fsync EIO: shim log {parse_log(log)}")
j = info(ck)
c.check(j is not None and j["segments"][0]["rows_done"] == 2 * EVERY, f"directory fsync EIO: checkpoint {j}")
c.check(not temps(ck), f"directory fsync EIO: temporary files left: {temps(ck)}")
p = subprocess.run(command(ck, resume=True), capture_output=True, env=env)
c.check(p.returncode == 0 and p.stdout == reference, f"directory fsync EIO: resume exit {p.returncode} {p.stderr!r}")

c.finish("checkpoint_faults")
