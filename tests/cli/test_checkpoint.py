"""Checkpoint, resume and merge end to end: SIGKILL in the middle of a checkpointed run,
then --resume, gives byte-identical JSON to an uninterrupted run (also after SIGINT, which
writes a last checkpoint and exits 130); --resume refuses a different input or batch size;
merging the checkpoints of two halves of a file equals one run over the whole file; info
reports the header and the input position."""
import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

import cli_common as c

rng = np.random.default_rng(11)
N, D, C = 20000, 40, 7
X = rng.normal(size=(N, D)) + rng.normal(size=D) * 3
Y = rng.integers(0, C, size=N)
X[np.arange(N), Y % D] += 2.0  # labels carry signal


@pytest.fixture(scope="module")
def data(tmp):
    return c.write_data(tmp, X, Y.astype("<i4"), "--batch", "100")


def align_json(data, extra):
    rc, out, err = c.run(["align"] + data + extra + ["--json", "--quiet"])
    assert rc == 0, f"align {extra}: exit {rc} {err}"
    return out


def info(path):
    rc, out, err = c.run(["info", path, "--json"])
    assert rc == 0, f"info {path}: exit {rc} {err}"
    return json.loads(out)


@pytest.fixture(scope="module")
def reference(data):
    """The JSON text of one uninterrupted run."""
    return align_json(data, [])


def test_reference_matches_the_oracle(reference):
    lam, curve = c.alignment_oracle(X, Y, C)
    c.assert_close(json.loads(reference)["alignment"], curve, 1e-8, "reference run vs NumPy oracle", atol=1e-10)


class slow_run:
    """A checkpointed run slowed down per batch; killed on leaving the block if still alive."""

    def __init__(self, data, ck):
        self.p = subprocess.Popen([c.RECALIGN, "align"] + data + ["--checkpoint", ck, "--checkpoint-every", "500",
                                                                  "--json", "--quiet", "--test-batch-delay-ms", "4"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def __enter__(self):
        return self.p

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
        self.p.communicate()


def wait_for_checkpoint(ck, p, min_rows):
    deadline = time.time() + 30
    while time.time() < deadline and p.poll() is None:
        if os.path.exists(ck):
            j = info(ck)  # the checkpoint is replaced atomically: always readable
            if j.get("segments") and j["segments"][0]["rows_done"] >= min_rows:
                return True
        time.sleep(0.02)
    return False


def test_sigkill_then_resume(tmp, data, reference):
    ck = os.path.join(tmp, "kill.ckpt")
    with slow_run(data, ck) as p:
        assert wait_for_checkpoint(ck, p, 3000), "no checkpoint with >= 3000 rows appeared"
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert p.returncode == -signal.SIGKILL, f"run was not killed (exit {p.returncode})"
    j = info(ck)
    done = j["segments"][0]["rows_done"]
    assert 0 < done < N and done % 100 == 0, f"killed checkpoint holds {done} rows"
    assert j["kind"] == "cli_run" and j["n"] == done and not j["complete"], f"info after kill: {j}"
    rc, out, err = c.run(["align"] + data + ["--checkpoint", ck, "--resume", "--json"])
    assert rc == 0, f"resume: exit {rc} {err}"
    assert f"resuming {ck} at row {done}" in err, f"resume did not say where it resumed: {err!r}"
    assert out == reference, "JSON after SIGKILL + --resume differs from the uninterrupted run"
    j = info(ck)
    assert j["complete"] and j["n"] == N, f"final checkpoint: {j}"
    # resuming a finished run reads nothing and prints the same
    assert align_json(data, ["--checkpoint", ck, "--resume"]) == reference, "resume of a finished checkpoint differs"


def test_sigint_writes_the_checkpoint_and_exits_130(tmp, data, reference):
    ck2 = os.path.join(tmp, "int.ckpt")
    with slow_run(data, ck2) as p:
        assert wait_for_checkpoint(ck2, p, 1000), "no checkpoint before SIGINT"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate()
    assert p.returncode == 130, f"SIGINT: exit {p.returncode}"
    assert b"--resume" in err, f"SIGINT message: {err!r}"
    assert 0 < info(ck2)["segments"][0]["rows_done"] < N, "SIGINT checkpoint position"
    assert align_json(data, ["--checkpoint", ck2, "--resume"]) == reference, "JSON after SIGINT + --resume differs"


# --- refusals
def test_existing_checkpoint_without_resume(tmp, data):
    ck = os.path.join(tmp, "existing.ckpt")
    c.run(["align"] + data + ["--checkpoint", ck, "--quiet"], check_rc=0)
    rc, out, err = c.run(["align"] + data + ["--checkpoint", ck, "--quiet"])
    c.assert_one_line_error(rc, err, [ck, "--resume"], "existing checkpoint without --resume")


@pytest.fixture(scope="module")
def partial(tmp, data):
    """The checkpoint of a run killed after >= 1000 rows."""
    ck3 = os.path.join(tmp, "partial.ckpt")
    with slow_run(data, ck3) as p:
        assert wait_for_checkpoint(ck3, p, 1000), "no partial checkpoint"
        p.send_signal(signal.SIGKILL)
        p.wait()
    return ck3


def test_resume_refuses_another_images_file(tmp, data, partial):
    other = os.path.join(tmp, "x_other.npy")
    X2 = X.copy()
    X2[-1, -1] += 1.0
    c.write_npy(other, X2)
    rc, out, err = c.run(["align", "--images", other, "--labels", data[3], "--batch", "100", "--checkpoint", partial,
                          "--resume"])
    c.assert_one_line_error(rc, err, [partial, "different", "x.npy"], "resume with another images file")


@pytest.mark.parametrize("options,mentions,what", [
    (lambda data: data[:4] + ["--batch", "200"], ["--batch"], "resume with another batch size"),
    (lambda data: data + ["--scale", "2"], ["--scale"], "resume with another scale"),
    (lambda data: data + ["--skip", "100"], ["rows"], "resume with another range"),
], ids=["batch", "scale", "range"])
def test_resume_refuses_another_option(data, partial, options, mentions, what):
    rc, out, err = c.run(["align"] + options(data) + ["--checkpoint", partial, "--resume"])
    c.assert_one_line_error(rc, err, [partial] + mentions, what)


def test_resume_refuses_a_touched_input(data, partial):
    # Runs after the other refusals of `partial` (pytest keeps the file's order): they must
    # be refused for their own option, not for the new modification time.
    os.utime(data[1], None)  # same content, new modification time
    rc, out, err = c.run(["align"] + data + ["--checkpoint", partial, "--resume"])
    c.assert_one_line_error(rc, err, [partial, "modif"], "resume after the input was touched")


def test_resume_without_a_checkpoint_file_starts_afresh(tmp, data, reference):
    ck4 = os.path.join(tmp, "fresh.ckpt")
    assert align_json(data, ["--checkpoint", ck4, "--resume"]) == reference, "fresh --resume run differs"


# --- merge of two halves equals the whole file
@pytest.fixture(scope="module")
def merged(tmp, data):
    h = N // 2
    a, b = os.path.join(tmp, "a.ckpt"), os.path.join(tmp, "b.ckpt")
    c.run(["align"] + data + ["--limit", h, "--checkpoint", a, "--quiet"], check_rc=0)
    c.run(["align", "--images", data[1], "--labels", data[3], "--batch", "300", "--skip", h, "--checkpoint", b,
           "--quiet"], check_rc=0)
    m = os.path.join(tmp, "merged.ckpt")
    rc, out, err = c.run(["merge", a, b, "-o", m])
    assert rc == 0, f"merge: exit {rc} {err}"
    return a, m


def test_merge_info(merged):
    j = info(merged[1])
    assert j.get("n") == N and len(j.get("segments", [])) == 2 and j.get("complete"), f"info of merge: {j}"


def test_merge_align_equals_the_whole(merged, reference):
    ref = json.loads(reference)
    mj = c.run_json(["align", "--from", merged[1]])
    assert mj["n"] == N and mj["d"] == D and mj["classes"] == C, "merged align n/d/classes"
    c.assert_close(mj["eigenvalues"], ref["eigenvalues"], 1e-11, "merged vs whole: eigenvalues",
                   atol=1e-11 * ref["eigenvalues"][0])
    c.assert_close(mj["alignment"], ref["alignment"], 1e-10, "merged vs whole: alignment", atol=1e-12)


@pytest.mark.parametrize("centered", [True, False], ids=["centered", "uncentered"])
def test_merge_spectrum_equals_the_whole(data, merged, centered):
    flag = [] if centered else ["--no-center"]
    s1 = c.run_json(["spectrum", "--from", merged[1]] + flag)
    s2 = c.run_json(["spectrum"] + data + flag)
    c.assert_close(s1["eigenvalues"], s2["eigenvalues"], 1e-11, f"merged vs whole spectrum (centered={centered})",
                   atol=1e-11 * s2["eigenvalues"][0])


def test_merge_refuses_overlapping_rows(tmp, merged):
    a = merged[0]
    rc, out, err = c.run(["merge", a, a, "-o", os.path.join(tmp, "twice.ckpt")])
    c.assert_one_line_error(rc, err, ["overlap"], "merge of overlapping rows")


def test_merge_refuses_different_scales(tmp, data, merged):
    sc = os.path.join(tmp, "scaled.ckpt")
    c.run(["align"] + data + ["--skip", N // 2, "--scale", "2", "--checkpoint", sc, "--quiet"], check_rc=0)
    rc, out, err = c.run(["merge", merged[0], sc, "-o", os.path.join(tmp, "bad.ckpt")])
    c.assert_one_line_error(rc, err, ["--scale"], "merge of different scales")


def test_resume_refuses_a_merged_checkpoint(data, merged):
    rc, out, err = c.run(["align"] + data + ["--checkpoint", merged[1], "--resume"])
    c.assert_one_line_error(rc, err, ["merge"], "resume of a merged checkpoint")


def test_info_text_output(merged):
    rc, out, err = c.run(["info", merged[1]])
    assert rc == 0 and "cli_run" in out and "samples" in out and "x.npy" in out, f"info text: {out}"


# --- what a checkpoint costs in memory (docs/benchmarks-log.md "ckpt10"): a write and a --resume stream the
# state, so neither holds a copy of it beside it (fix9 measured 0.85-1.23 times the file for a write
# and 3-4 times for a load), and --memory counts the buffers they keep.
def trace(err):
    """RECALIGN_MEMORY_TRACE's lines: [(phase, VmRSS kB, peak since the previous mark kB)]."""
    return [(m.group(1), int(m.group(2)), int(m.group(3)))
            for m in re.finditer(r"memory: (.+?): VmRSS (\d+) kB, peak since the last mark (\d+) kB", err)]


def growth(lines, before, after):
    """For each `before` mark followed by `after`: the peak between them less the RSS at `before` (kB)."""
    return [p[2] - b[1] for b, p in zip(lines, lines[1:]) if b[0] == before and p[0] == after]


def test_checkpoint_write_and_resume_hold_no_copy_of_the_state(tmp):
    d = 2048  # an exact state of D x D doubles: a 33.6 MB checkpoint
    xp = os.path.join(tmp, "wide.npy")
    c.write_npy(xp, np.random.default_rng(5).normal(size=(256, d)).astype("<f4"))
    ck = os.path.join(tmp, "wide.ckpt")
    base = ["spectrum", "--images", xp, "--method", "exact", "--batch", "64", "--json", "--quiet"]
    # MALLOC_PERTURB_ (meson test sets it) makes glibc write every block it hands out or takes
    # back, so memory the program reserves and never touches counts in its RSS: measured without.
    env = {"RECALIGN_MEMORY_TRACE": "1", "MALLOC_PERTURB_": "0"}
    # Under ASan, freed blocks wait in its quarantine (16 MiB, scripts/test_sanitized.sh) and the
    # state's shadow is 1/8 of it: allowed for above the bounds (the release build checks them).
    slack = 0.0
    rc, reference, _ = c.run(base, check_rc=0)
    rc, out, err = c.run(base + ["--checkpoint", ck, "--checkpoint-every", "128"], env=env, check_rc=0)
    assert out == reference, "a checkpointed run prints other bytes"
    file_kb = os.path.getsize(ck) / 1024
    assert file_kb > 32 * 1024, f"the checkpoint is only {file_kb:.0f} kB"
    if c.sanitized():
        slack = 16 * 1024 + file_kb / 8 + 4 * 1024
    writes = growth(trace(err), "before a checkpoint", "checkpoint written")
    assert len(writes) >= 2, f"expected the checkpoint writes in the trace: {err!r}"
    # A write's transient: the 64 KiB gathering buffers (fix9: the whole file beside the state).
    assert max(writes) < 0.25 * file_kb + slack, f"a checkpoint write grew the RSS by {writes} kB ({file_kb:.0f} kB file)"
    rc, out, err = c.run(base + ["--checkpoint", ck, "--resume"], env=env, check_rc=0)
    assert out == reference, "the resumed run prints other bytes"
    loads = growth(trace(err), "before resuming", "checkpoint loaded")
    assert len(loads) == 1, f"expected the load in the trace: {err!r}"
    # The state itself (the file's size) and the load's buffers (at most 12 MiB; about 5 here).
    assert loads[0] < 1.5 * file_kb + slack, f"a --resume load grew the RSS by {loads[0]} kB ({file_kb:.0f} kB file)"


def test_memory_counts_the_checkpoint_buffers(tmp, data):
    # A budget the run fits in without --checkpoint, not with the buffers of its checkpoints:
    # refused before the first byte is read (no checkpoint, nothing on stdout).
    budget = ["--memory", str(4.0 / 1024)]  # 4 MiB
    c.run(["align"] + data + budget + ["--quiet"], check_rc=0)
    ck = os.path.join(tmp, "budget.ckpt")
    rc, out, err = c.run(["align"] + data + budget + ["--checkpoint", ck, "--quiet"])
    c.assert_one_line_error(rc, err, ["--memory is", "--checkpoint", "MiB"], "--memory below the checkpoint buffers")
    assert out == "" and not os.path.exists(ck), "the refused run wrote something"
