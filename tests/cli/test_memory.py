"""`--memory`'s estimate bounds what a sketch route really holds. Every route refuses before
reading a run whose estimate exceeds `--memory GIB` (default: the machine's memory); an estimate
below the real peak lets a run start that the machine cannot finish. Each case runs once to
measure its peak RSS above a tiny run's (the process, its libraries, OpenBLAS), then again with
`--memory` 3 % under that: it must be refused (exit 2, "needs about"), and the estimate it names
must not exceed 2.5 times the peak (an estimate that refuses what fits is wrong too).

At 112x112x3 (D = 37,632) with 1,000 rows, and a folder of 40 camera-sized JPEGs cropped to
112x112 (whose decoding threads' images the estimate did not count before the thirty-third
session: 0.6-0.8 of the peak at 3000x2000). The build before this test failed six of the twelve
(the three FD cases, `tradeoff`, Nyström's sparse and float32-input cases): FD's estimates were
about a quarter of its peaks (it widened each batch to float64, rotated into a second array and
copied its sketch three times to finish), and no sketch route counted its batch (BENCHMARKS.md,
"Memory"). Skipped under AddressSanitizer (its shadow memory is in every RSS)."""
import json
import os
import re
import subprocess

import numpy as np
import pytest

import cli_common as c

SYNTH = os.environ.get("RECALIGN_SYNTH", "build/tools/synth/recalign-synth")
ROWS, SIDE = 1000, 112
D = SIDE * SIDE * 3

CASES = {
    "nystrom": ["spectrum", "--method", "nystrom", "--rank", 64],
    "nystrom-align": ["align", "--method", "nystrom", "--rank", 64],
    "nystrom-2-passes": ["align", "--method", "nystrom", "--rank", 64, "--passes", 2],
    "nystrom-sparse": ["spectrum", "--method", "nystrom", "--rank", 64, "--test-matrix", "sparse"],
    "nystrom-unverified": ["align", "--method", "nystrom", "--rank", 64, "--no-verify"],
    "nystrom-float32-input": ["spectrum", "--method", "nystrom", "--rank", 64, "--batch", 700],
    "fd": ["align", "--method", "fd", "--rank", 64],
    "fd-f32-kernels": ["spectrum", "--method", "fd", "--rank", 64, "--precision", "f32-kernels"],
    "fd-float32-input": ["spectrum", "--method", "fd", "--rank", 64, "--batch", 700],
    "tradeoff": ["tradeoff", "--method", "nystrom", "--rank", 32, "--k", 16, "--lambda", 1, "--refine", 3],
    "denoise-mask": ["denoise", "--method", "nystrom", "--rank", 64, "--image-shape", f"{SIDE},{SIDE},3",
                     "--noise", "mask:patch=8x8,ratio=0.75", "--refine", 1],
    "denoise-gaussian": ["denoise", "--method", "nystrom", "--rank", 64, "--image-shape", f"{SIDE},{SIDE},3",
                         "--noise", "gaussian:sigma=0.1"],
    # Camera-sized JPEGs cropped to 112x112: each decoding thread holds a 2400x1600 image (11.5 MB)
    # and its scratch, far more than the 10-row batch.
    "folder-large-images": ["spectrum", "--method", "nystrom", "--rank", 8, "--no-verify", "--resize", SIDE,
                            "--crop", SIDE, "--batch", 10],
}


@pytest.fixture(scope="module")
def data(tmp):
    if c.sanitized():
        pytest.skip("AddressSanitizer's shadow memory is in every RSS")
    images, labels = os.path.join(tmp, "m.u8"), os.path.join(tmp, "m.idx")
    subprocess.run([SYNTH, "--rows", str(ROWS), "--height", str(SIDE), "--width", str(SIDE), "--seed", "5",
                    "--output", images, "--labels", labels], check=True, capture_output=True)
    floats = os.path.join(tmp, "m.f32")
    np.fromfile(images, dtype=np.uint8).astype(np.float32).tofile(floats)
    tiny = os.path.join(tmp, "tiny.u8")
    np.arange(16 * 20, dtype=np.uint8).tofile(tiny)
    rc, _, err, base_kb = c.run_rss(["spectrum", "--method", "nystrom", "--rank", 2, "--images", tiny,
                                     "--format", "raw", "--raw-shape", "20,16", "--raw-dtype", "u8", "--json"])
    assert rc == 0, err
    u8 = ["--images", images, "--format", "raw", "--raw-shape", f"{ROWS},{D}", "--raw-dtype", "u8",
          "--labels", labels]
    f32 = ["--images", floats, "--format", "raw", "--raw-shape", f"{ROWS},{D}", "--raw-dtype", "f4",
           "--labels", labels]
    from PIL import Image
    folder = os.path.join(tmp, "photos")
    pixels = np.fromfile(images, dtype=np.uint8, count=40 * D).reshape(40, SIDE, SIDE, 3)
    for i in range(40):
        os.makedirs(os.path.join(folder, f"c{i % 2}"), exist_ok=True)
        Image.fromarray(pixels[i]).resize((2400, 1600)).save(os.path.join(folder, f"c{i % 2}", f"{i:02d}.jpg"), quality=90)
    return {"u8": u8, "f32": f32, "folder": ["--images", folder, "--format", "folder"], "base_kb": base_kb}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_estimate_bounds_the_peak(data, case):
    kind = "f32" if "float32-input" in case else "folder" if case.startswith("folder") else "u8"
    args = CASES[case] + data[kind] + ["--json"]
    rc, _, err, peak_kb = c.run_rss(args)  # the process alone (cli_common.peak_rss_run)
    assert rc == 0, err
    used = (peak_kb - data["base_kb"]) * 1024
    assert used > 20 * 2**20, f"{case}: {used} bytes above the tiny run: not a measurement of this route"
    budget = 0.97 * used / 2**30
    rc, _, err = c.run(args + ["--memory", f"{budget:.6f}"])
    assert rc == 2 and "needs about" in err, (
        f"{case}: peak {peak_kb} KiB ({used / 2**20:.0f} MiB above the tiny run's {data['base_kb']} KiB), yet "
        f"--memory {budget:.4f} GiB was not refused: exit {rc}\n{err}")
    need = float(re.search(r"needs about ([0-9.]+) GiB", err).group(1)) * 2**30
    assert need <= 2.5 * peak_kb * 1024, f"{case}: estimate {need / 2**20:.0f} MiB for a peak of {peak_kb // 1024} MiB"


@pytest.mark.parametrize("command", ["align", "tradeoff"])
def test_the_finished_sketch_waits_on_disk_through_the_verification_pass(tmp, data, command):
    """Once the sketch is finished, a verified run reads only its finished statistics: the FD
    state (the 2l x D buffer, l = 3K) and the D x K basis wait in unlinked files in $TMPDIR
    through the verification passes, the same answers to the bit. A $TMPDIR without room keeps
    them in memory (and the estimate counts them then). At 224x224x3 and rank 100 this took the
    peak from 1.30 to 1.02 GB (BENCHMARKS.md). Measured where the verification pass begins
    (RECALIGN_MEMORY_TRACE's "basis construction" mark: the resident set, not a peak)."""
    rank = 64 if command == "align" else 32
    args = [command, "--method", "fd", "--rank", rank] + data["u8"] + ["--json"]
    if command == "tradeoff":  # its passes are many: fewer rows (still more than the 2l = 192 the buffer holds)
        args += ["--k", 8, "--lambda", 1, "--refine", 1, "--limit", 400]
    resident = {}
    outputs = {}
    estimates = {}
    for where in ("parked", "kept"):
        env = {"RECALIGN_MEMORY_TRACE": "1"}
        if where == "kept":
            env["TMPDIR"] = os.path.join(tmp, "no such directory")
        rc, out, err = c.run(args, env=env)
        assert rc == 0, err
        outputs[where] = out
        marks = re.findall(r"memory: basis construction: VmRSS (\d+) kB", err)
        assert marks, err
        resident[where] = int(marks[0]) * 1024
        if command == "align":  # the last of the refusals runs the whole command: once is enough
            estimates[where] = binding_estimate(args, {"TMPDIR": env.get("TMPDIR", tmp)})
    assert outputs["parked"] == outputs["kept"], "parking the sketch changed the answers"
    state = 8 * (2 * 3 * rank * D + rank * D)  # the FD buffer (l = 3K) and the basis
    assert resident["kept"] - resident["parked"] >= 0.9 * state, (resident, state)
    assert command != "align" or estimates["parked"] < estimates["kept"], estimates


def binding_estimate(args, env):
    """The largest of a run's refusals (GiB): --memory raised past each "needs about" until none."""
    need = 0.0
    for _ in range(8):
        rc, _, err = c.run(args + ["--memory", f"{need + 0.006:.6f}"], env=env)
        found = re.search(r"needs about ([0-9.]+) GiB", err)
        if rc != 2 or not found:
            return need
        need = float(found.group(1))
    raise AssertionError(f"no end to the refusals: {err}")


def test_a_checkpoint_adds_only_its_buffers_to_the_peak(tmp, data):
    """The final checkpoint of a finished refinement copied its result statistics (verified_state's
    `c ? *final_ : restricted_statistics()`): 40 MB over the run's peak here, 0.9 GB at 224x224x3.
    A checkpoint may add its buffers (state_io.hpp's checkpoint_buffer_bytes, 12 MiB), no more."""
    args = CASES["denoise-mask"] + data["u8"] + ["--json"]
    rc, _, err, alone = c.run_rss(args)
    assert rc == 0, err
    rc, _, err, checkpointed = c.run_rss(args + ["--checkpoint", os.path.join(tmp, "refined.ckpt")])
    assert rc == 0, err
    assert (checkpointed - alone) * 1024 <= 12 * 2**20, f"{checkpointed} KiB with a checkpoint, {alone} KiB without"


def test_a_resume_holds_no_more_than_the_run(tmp, data):
    """A run resumed past its sketch passes finishes its sketch as it loads it, while that is the only
    large part read, then parks it as the run that wrote the checkpoint did. Before, the finish came
    at the next restart or at the analyses, on top of the verification pass's own state: a finished
    5,000-row checkpoint of the 224 demo, resumed, peaked 494 MB above the run (3,254,440 kB
    against 2,759,964), and here 37 MB. A finished checkpoint, resumed, holds no more than the run
    that wrote it (plus a checkpoint's buffers) and prints its bytes."""
    args = CASES["denoise-mask"] + data["u8"] + ["--json", "--quiet"]
    ck = os.path.join(tmp, "resumed.ckpt")
    rc, out, err, run = c.run_rss(args + ["--checkpoint", ck])
    assert rc == 0, err
    rc, again, err, resumed = c.run_rss(args + ["--checkpoint", ck, "--resume"])
    assert rc == 0 and again == out, f"exit {rc}, the same output: {again == out} {err}"
    assert (resumed - run) * 1024 <= 12 * 2**20, f"{resumed} KiB resumed, {run} KiB for the run"


def test_a_verified_curve_finishes_its_sketch_without_sxy(tmp, data):
    """A verified `align` reads its labels in the verification pass (Vᵀ Sxy): the sketch is
    finished without the C x D Sxy, which was formed beside the C x D class sums before (600 rows
    of 224x224x3 with 1,000 classes: 2,487,476 KiB at the peak against 1,368,904 now, the same
    JSON; docs/benchmarks-log.md "The fiftieth session"). Here 1,000 classes at 112x112x3: each
    C x D array is 301 MB. Measured at RECALIGN_MEMORY_TRACE's marks: the resident set where the
    sketch passes end and where the sketch is finished."""
    labels = os.path.join(tmp, "many.npy")
    np.save(labels, np.arange(ROWS, dtype=np.int64) % 1000)
    images = data["u8"][:data["u8"].index("--labels")]
    args = ["align", "--method", "nystrom", "--rank", 16] + images + ["--labels", labels, "--json"]
    rc, out, err = c.run(args, env={"RECALIGN_MEMORY_TRACE": "1"})
    assert rc == 0, err
    assert json.loads(out)["classes"] == 1000
    passes = int(re.search(r"memory: sketch passes: VmRSS (\d+) kB", err).group(1)) * 1024
    finished = int(re.search(r"memory: sketch finished: VmRSS (\d+) kB", err).group(1)) * 1024
    sxy = 8 * 1000 * D
    assert finished - passes < 0.25 * sxy, f"finishing the sketch added {(finished - passes) >> 20} MiB: Sxy formed"
