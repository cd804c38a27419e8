"""Checkpoint, resume and merge end to end: SIGKILL in the middle of a checkpointed run,
then --resume, gives byte-identical JSON to an uninterrupted run (also after SIGINT, which
writes a last checkpoint and exits 130); --resume refuses a different input or batch size;
merging the checkpoints of two halves of a file equals one run over the whole file; info
reports the header and the input position."""
import json
import os
import signal
import subprocess
import time

import numpy as np

import cli_common as c

tmp = c.init()
rng = np.random.default_rng(11)
N, D, C = 20000, 40, 7
X = rng.normal(size=(N, D)) + rng.normal(size=D) * 3
Y = rng.integers(0, C, size=N)
X[np.arange(N), Y % D] += 2.0  # labels carry signal
xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
c.write_npy(xp, X)
c.write_npy(yp, Y.astype("<i4"))
data = ["--images", xp, "--labels", yp, "--batch", "100"]


def align_json(extra, env=None):
    rc, out, err = c.run(["align"] + data + extra + ["--json", "--quiet"], env=env)
    c.check(rc == 0, f"align {extra}: exit {rc} {err}")
    return out


def info(path):
    rc, out, err = c.run(["info", path, "--json"])
    c.check(rc == 0, f"info {path}: exit {rc} {err}")
    return json.loads(out) if rc == 0 else {}


reference = align_json([])
ref = json.loads(reference)
lam, curve = c.alignment_oracle(X, Y, C)
c.close(ref["alignment"], curve, 1e-8, "reference run vs NumPy oracle", atol=1e-10)


def start_slow(ck, extra=()):
    return subprocess.Popen([c.RECALIGN, "align"] + data + ["--checkpoint", ck, "--checkpoint-every", "500",
                                                             "--json", "--quiet"] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, RECALIGN_TEST_BATCH_DELAY_MS="4"))


def wait_for_checkpoint(ck, p, min_rows):
    deadline = time.time() + 30
    while time.time() < deadline and p.poll() is None:
        if os.path.exists(ck):
            try:
                j = info(ck)
                if j.get("segments") and j["segments"][0]["rows_done"] >= min_rows:
                    return True
            except Exception:
                pass
        time.sleep(0.02)
    return False


# --- SIGKILL mid-run, then --resume
ck = os.path.join(tmp, "kill.ckpt")
p = start_slow(ck)
c.check(wait_for_checkpoint(ck, p, 3000), "no checkpoint with >= 3000 rows appeared")
p.send_signal(signal.SIGKILL)
p.wait()
c.check(p.returncode == -signal.SIGKILL, f"run was not killed (exit {p.returncode})")
j = info(ck)
done = j["segments"][0]["rows_done"]
c.check(0 < done < N and done % 100 == 0, f"killed checkpoint holds {done} rows")
c.check(j["kind"] == "cli_run" and j["n"] == done and not j["complete"], f"info after kill: {j}")
rc, out, err = c.run(["align"] + data + ["--checkpoint", ck, "--resume", "--json"])
c.check(rc == 0, f"resume: exit {rc} {err}")
c.check(f"resuming {ck} at row {done}" in err, f"resume did not say where it resumed: {err!r}")
c.check(out == reference, "JSON after SIGKILL + --resume differs from the uninterrupted run")
j = info(ck)
c.check(j["complete"] and j["n"] == N, f"final checkpoint: {j}")
# resuming a finished run reads nothing and prints the same
c.check(align_json(["--checkpoint", ck, "--resume"]) == reference, "resume of a finished checkpoint differs")

# --- SIGINT: writes the checkpoint and exits 130
ck2 = os.path.join(tmp, "int.ckpt")
p = start_slow(ck2)
c.check(wait_for_checkpoint(ck2, p, 1000), "no checkpoint before SIGINT")
p.send_signal(signal.SIGINT)
out, err = p.communicate()
c.check(p.returncode == 130, f"SIGINT: exit {p.returncode}")
c.check(b"--resume" in err, f"SIGINT message: {err!r}")
c.check(0 < info(ck2)["segments"][0]["rows_done"] < N, "SIGINT checkpoint position")
c.check(align_json(["--checkpoint", ck2, "--resume"]) == reference, "JSON after SIGINT + --resume differs")

# --- refusals
rc, out, err = c.run(["align"] + data + ["--checkpoint", ck2, "--quiet"])
c.one_line_error(rc, err, [ck2, "--resume"], "existing checkpoint without --resume")
ck3 = os.path.join(tmp, "partial.ckpt")
p = start_slow(ck3)
c.check(wait_for_checkpoint(ck3, p, 1000), "no partial checkpoint")
p.send_signal(signal.SIGKILL)
p.wait()
other = os.path.join(tmp, "x_other.npy")
X2 = X.copy()
X2[-1, -1] += 1.0
c.write_npy(other, X2)
rc, out, err = c.run(["align", "--images", other, "--labels", yp, "--batch", "100", "--checkpoint", ck3, "--resume"])
c.one_line_error(rc, err, [ck3, "different", "x.npy"], "resume with another images file")
rc, out, err = c.run(["align", "--images", xp, "--labels", yp, "--batch", "200", "--checkpoint", ck3, "--resume"])
c.one_line_error(rc, err, [ck3, "--batch"], "resume with another batch size")
rc, out, err = c.run(["align"] + data + ["--scale", "2", "--checkpoint", ck3, "--resume"])
c.one_line_error(rc, err, [ck3, "--scale"], "resume with another scale")
rc, out, err = c.run(["align"] + data + ["--skip", "100", "--checkpoint", ck3, "--resume"])
c.one_line_error(rc, err, [ck3, "rows"], "resume with another range")
os.utime(xp, None)  # same content, new modification time
rc, out, err = c.run(["align"] + data + ["--checkpoint", ck3, "--resume"])
c.one_line_error(rc, err, [ck3, "modif"], "resume after the input was touched")
# --resume without a checkpoint file starts afresh
ck4 = os.path.join(tmp, "fresh.ckpt")
c.check(align_json(["--checkpoint", ck4, "--resume"]) == reference, "fresh --resume run differs")

# --- merge of two halves equals the whole file
h = N // 2
a, b = os.path.join(tmp, "a.ckpt"), os.path.join(tmp, "b.ckpt")
c.run(["align"] + data + ["--limit", h, "--checkpoint", a, "--quiet"], check_rc=0)
c.run(["align", "--images", xp, "--labels", yp, "--batch", "300", "--skip", h, "--checkpoint", b, "--quiet"], check_rc=0)
m = os.path.join(tmp, "merged.ckpt")
rc, out, err = c.run(["merge", a, b, "-o", m])
c.check(rc == 0, f"merge: exit {rc} {err}")
j = info(m)
c.check(j.get("n") == N and len(j.get("segments", [])) == 2 and j.get("complete"), f"info of merge: {j}")
mj = c.run_json(["align", "--from", m])
if mj:
    c.check(mj["n"] == N and mj["d"] == D and mj["classes"] == C, "merged align n/d/classes")
    c.close(mj["eigenvalues"], ref["eigenvalues"], 1e-11, "merged vs whole: eigenvalues", atol=1e-11 * ref["eigenvalues"][0])
    c.close(mj["alignment"], ref["alignment"], 1e-10, "merged vs whole: alignment", atol=1e-12)
for centered in (True, False):
    flag = [] if centered else ["--no-center"]
    s1 = c.run_json(["spectrum", "--from", m] + flag)
    s2 = c.run_json(["spectrum"] + data + flag)
    if s1 and s2:
        c.close(s1["eigenvalues"], s2["eigenvalues"], 1e-11, f"merged vs whole spectrum (centered={centered})",
                atol=1e-11 * s2["eigenvalues"][0])
rc, out, err = c.run(["merge", a, a, "-o", os.path.join(tmp, "twice.ckpt")])
c.one_line_error(rc, err, ["overlap"], "merge of overlapping rows")
sc = os.path.join(tmp, "scaled.ckpt")
c.run(["align"] + data + ["--skip", h, "--scale", "2", "--checkpoint", sc, "--quiet"], check_rc=0)
rc, out, err = c.run(["merge", a, sc, "-o", os.path.join(tmp, "bad.ckpt")])
c.one_line_error(rc, err, ["--scale"], "merge of different scales")
rc, out, err = c.run(["align"] + data + ["--checkpoint", m, "--resume"])
c.one_line_error(rc, err, ["merge"], "resume of a merged checkpoint")

# --- info text output
rc, out, err = c.run(["info", m])
c.check(rc == 0 and "cli_run" in out and "samples" in out and "x.npy" in out, f"info text: {out}")

c.finish("cli_checkpoint")
