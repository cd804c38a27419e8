"""AlignmentTracker: its curves equal the standalone analyses; a pickled mid-run state
continued in another process ends bit-identical to an uninterrupted run; track() with
periodic atomic checkpoints resumes bit-identically after a crash."""
import multiprocessing
import os
import pickle

import numpy as np
import pytest

import recalign
from conftest import batches
import _workers

N = 1200
SIZE = 100
NOISES = ["gaussian:sigma=0.2", "mask:patch=4x4,ratio=0.5,scheme=fixed", "dropout:ratio=0.3,draws=4,seed=11"]


def make_tracker():
    return recalign.AlignmentTracker(196, 10, shape=(14, 14), noises=NOISES)


def run(tracker, x, y, lo=0, hi=None, report_at=()):
    hi = len(x) if hi is None else hi
    for a in range(lo, hi, SIZE):
        tracker.update(x[a:a + SIZE], y[a:a + SIZE])
        if a in report_at:
            tracker.report()
    return tracker


@pytest.fixture(scope="module")
def data(fashion):
    # 2x2 average pooling to 14 x 14 keeps the suite fast (every report solves 196 x 196
    # eigenproblems per noise instead of 784 x 784 ones)
    images, labels = fashion
    pooled = images[:N].reshape(N, 14, 2, 14, 2).mean(axis=(2, 4)) / 255.0
    return pooled.reshape(N, 196).astype(np.float32), labels[:N]


def test_tracker_curves_equal_the_analyses(data):
    x, y = data
    t = run(make_tracker(), x, y)
    r = t.report()
    assert r.n == N and r.reports == 0 and np.isnan(r.clean_change)
    acc = t.moments
    assert acc.n == N
    clean = acc.finish("uncentered")
    want = recalign.alignment_curve(clean, measure="paper")
    assert np.array_equal(r.clean.curve, want.curve)
    assert [n.spec for n in r.noises] == t.noises and len(r.noises) == 3
    for i, spec in enumerate(NOISES[:2]):
        noisy = recalign.closed_form_noise(spec, acc, shape=(14, 14))
        d = recalign.denoising_alignment(clean, noisy)
        if spec.startswith("gaussian"):
            # The tracker takes Corollary 3.1's closed form (V* = U, no D x D solve); the
            # general generalized eigenproblem agrees to its rounding, not bit for bit (measured
            # largest relative difference: 1.8e-10 with OpenBLAS's Haswell kernels, 3.1e-9 with
            # its SkylakeX kernels).
            np.testing.assert_allclose(r.noises[i].denoising.curve, d.curve, rtol=2e-8, atol=1e-12)
        else:
            np.testing.assert_array_equal(r.noises[i].denoising.curve, d.curve)
    assert r.noises[2].monte_carlo and r.noises[2].g_stderr_fro > 0
    assert np.max(np.abs(r.noises[0].impact.normalised[:50])) < 1e-6  # Gaussian: no impact
    assert np.max(r.noises[1].impact.normalised[:50]) > 1e-3
    r2 = t.report()
    assert r2.reports == 1 and r2.clean_change == 0.0


def test_pickled_mid_run_state_continues_bit_identically_in_another_process(data):
    x, y = data
    whole = run(make_tracker(), x, y, report_at=(500,))
    whole.report()
    half = run(make_tracker(), x, y, 0, 600, report_at=(500,))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        pid, back = pool.apply(_workers.continue_tracker, (pickle.dumps(half), x[600:], y[600:], SIZE))
    assert pid != os.getpid()
    resumed = pickle.loads(back)
    assert resumed.n == N
    assert resumed.to_bytes() == whole.to_bytes()


def test_track_checkpoints_and_resumes_after_a_crash(data, tmp_path):
    x, y = data
    ckpt = str(tmp_path / "run.ckpt")
    pairs = [(x[a:a + SIZE], y[a:a + SIZE]) for a in range(0, N, SIZE)]
    noop = lambda report, batches: None
    # reports are part of the state: the resumed run must report after the same batches
    whole = recalign.track(pairs, make_tracker(), report_every=4, on_report=noop)

    class Crash(Exception):
        pass

    def crashing():
        for i, p in enumerate(pairs):
            if i == 7:
                raise Crash()
            yield p

    with pytest.raises(Crash):
        recalign.track(crashing(), make_tracker(), checkpoint=ckpt, every=3, report_every=4, on_report=noop)
    # the last checkpoint is the one after batch 6 (every 3 batches)
    assert recalign.AlignmentTracker.load(ckpt).n == 6 * SIZE
    resumed = recalign.track(pairs, make_tracker(), checkpoint=ckpt, every=3, resume=True, report_every=4,
                             on_report=noop)
    assert resumed.to_bytes() == whole.to_bytes()
    assert recalign.AlignmentTracker.load(ckpt).to_bytes() == whole.to_bytes()
    # a resume over differently cut batches is refused
    odd = [(x[a:a + 250], y[a:a + 250]) for a in range(0, N, 250)]
    recalign.track(pairs[:4], make_tracker(), checkpoint=ckpt)
    with pytest.raises(ValueError, match="row 400"):
        recalign.track(odd, make_tracker(), checkpoint=ckpt, resume=True)
    seen = []
    recalign.track(pairs[:4], make_tracker(), report_every=2, on_report=lambda r, k: seen.append((r.n, k)))
    assert seen == [(200, 2), (400, 4)]


def test_track_resume_refuses_another_configuration_and_numbers_rows_in_the_stream(data, tmp_path):
    """Resuming is exact or refused: track(..., resume=True) with a state configured otherwise
    than the checkpoint's (classes, D, noises; a verified state's rank) raises ValueError naming
    both, before any batch is read and with the checkpoint untouched; before, it went on with
    the checkpoint's configuration and returned it silently. And every state's rows are numbered
    in the stream (an accumulator's update numbers from 0 by default: track says where a batch
    starts), also when the state held rows before."""
    x, y = data
    pairs = [(x[a:a + SIZE], y[a:a + SIZE]) for a in range(0, 400, SIZE)]
    ckpt = str(tmp_path / "m.ckpt")
    recalign.track(pairs, recalign.MomentAccumulator(196, classes=10), checkpoint=ckpt)
    saved = open(ckpt, "rb").read()

    def never():
        raise AssertionError("a batch was read")
        yield

    for other, words in ((recalign.MomentAccumulator(196, classes=5), ["classes=5", "classes=10"]),
                         (recalign.MomentAccumulator(195, classes=10), ["dim=195", "dim=196"]),
                         (recalign.MomentAccumulator(196), ["another configuration"])):
        with pytest.raises(ValueError, match="another configuration") as e:
            recalign.track(never(), other, checkpoint=ckpt, resume=True)
        assert all(w in str(e.value) for w in words), str(e.value)
        assert open(ckpt, "rb").read() == saved
    same = recalign.track(pairs, recalign.MomentAccumulator(196, classes=10), checkpoint=ckpt, resume=True)
    assert same.n == 400
    t = str(tmp_path / "t.ckpt")
    recalign.track(pairs, make_tracker(), checkpoint=t)
    other = recalign.AlignmentTracker(196, 10, shape=(14, 14), noises=NOISES[:1])
    with pytest.raises(ValueError, match="another configuration"):
        recalign.track(never(), other, checkpoint=t, resume=True)
    v = str(tmp_path / "v.ckpt")
    recalign.track(pairs, recalign.VerifiedAlignment(196, 10, rank=8), checkpoint=v, passes=1)
    with pytest.raises(ValueError, match="rank: 8 in the checkpoint, 9 given"):
        recalign.track(never(), recalign.VerifiedAlignment(196, 10, rank=9), checkpoint=v, resume=True)
    vd = str(tmp_path / "vd.ckpt")
    recalign.track(pairs, recalign.VerifiedDenoising(196, 10, ["mask:patch=2x2,ratio=0.5"], shape=(14, 14), rank=8),
                   checkpoint=vd, passes=1)
    with pytest.raises(ValueError, match="noises: .*ratio=0.5.* in the checkpoint, .*ratio=0.75.* given"):
        recalign.track(never(), recalign.VerifiedDenoising(196, 10, ["mask:patch=2x2,ratio=0.75"], shape=(14, 14),
                                                           rank=8), checkpoint=vd, resume=True)
    # Rows in the stream: a bad label in the third batch is row 200 + 7, for an accumulator too,
    # and a state that held 400 rows before numbers its next batches from 400.
    bad = [(xb, yb.copy()) for xb, yb in pairs]
    bad[2][1][7] = 10
    for state in (recalign.MomentAccumulator(196, classes=10), recalign.ClassMoments(196, 10), make_tracker()):
        with pytest.raises(ValueError, match="row 207: label 10"):
            recalign.track(bad, state)
    fd = recalign.FrequentDirections(196, 20)
    recalign.track([p[0] for p in pairs], fd)
    nan = x[:SIZE].copy()
    nan[5, 3] = np.nan
    with pytest.raises(ValueError, match="row 405, column 3"):
        recalign.track([nan], fd)
    assert fd.n == 400


def test_tracker_bad_batches_name_global_rows_and_change_nothing(data):
    x, y = data
    t = run(make_tracker(), x, y, 0, 300)
    before = t.to_bytes()
    bad = x[300:400].copy()
    bad[9, 100] = np.nan
    with pytest.raises(ValueError, match=r"row 309\b"):
        t.update(bad, y[300:400])  # first_row defaults to n = 300
    labels = y[300:400].astype(np.int32)
    labels[2] = 12
    with pytest.raises(ValueError, match=r"row 302\b"):
        t.update(x[300:400], labels)
    with pytest.raises(ValueError):
        t.update(x[300:400, :150], y[300:400])
    assert t.to_bytes() == before
    other = recalign.AlignmentTracker(196, 10, shape=(14, 14), noises=NOISES[:2])
    with pytest.raises(ValueError):
        t.merge(other)
    assert t.to_bytes() == before


def test_update_reads_native_arrays_without_a_copy(data):
    import tracemalloc
    x = np.random.default_rng(0).random((4000, 784))  # 25 MB of float64
    y = np.zeros(4000, dtype=np.int64)
    acc = recalign.MomentAccumulator(784, classes=10)
    acc.update(x[:10], y[:10])  # scratch buffers grow on the first batch
    tracemalloc.start()
    acc.update(x, y)
    _, native_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    acc.update(np.asfortranarray(x), y)
    _, converted_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert native_peak < x.nbytes / 20, native_peak
    assert converted_peak >= x.nbytes, converted_peak  # the conversion really is one copy


def test_update_releases_the_gil_and_serialises_threads():
    import threading
    rng = np.random.default_rng(1)
    x = rng.random((20000, 784))
    y = rng.integers(0, 10, 20000)
    import time
    acc = recalign.MomentAccumulator(784, classes=10)
    done = threading.Event()
    took = []

    def work():
        t0 = time.perf_counter()
        acc.update(x, y)
        took.append(time.perf_counter() - t0)
        done.set()

    th = threading.Thread(target=work)
    last, gap = time.perf_counter(), 0.0
    th.start()
    while not done.is_set():
        now = time.perf_counter()
        gap, last = max(gap, now - last), now
    th.join()
    # holding the GIL the whole update would stall this loop for all of it
    assert took[0] > 0.05 and gap < 0.5 * took[0], (gap, took)
    # two threads on one object: the lock serialises them, nothing is lost
    acc2 = recalign.MomentAccumulator(784, classes=10)
    threads = [threading.Thread(target=acc2.update, args=(x[i::4], y[i::4])) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert acc2.n == 20000
    assert np.max(np.abs(acc2.sxx("centered") - acc.sxx("centered"))) <= 1e-11 * np.max(np.abs(acc.sxx("centered")))


def test_exact_route_that_will_not_fit_is_refused_before_anything_is_allocated():
    """AlignmentTracker refuses, as the CLI's denoise --method exact does (--memory), a tracker whose
    exact route would not fit, before its D x D moments are allocated, from the same model: 3 D x D
    (run_memory) and a Monte-Carlo noise's replicate sums and their per-batch copy (1 + 4 R D x D in
    all per such noise, R = replicates: exact_denoise_extra)."""
    d, c = 256, 5
    mc = ["mask:patch=4x4,ratio=0.5", "dropout:ratio=0.3,draws=4,seed=11"]
    matrix = 8 * d * d
    for noises, extra in ((mc[:1], 0), (mc, (4 * 2 - 2) * matrix)):
        need = recalign._recalign.run_memory("exact", d, c, 0, extra)
        assert need == 8 * (3 * d * d + 2 * (d + 1) * c + c * c) + extra
        # Beside what this process holds already (the model is of a recalign process): a budget
        # with room for the run alone is refused, one with room for both (and drift) is not.
        held = recalign._recalign.resident_memory()
        assert held > 2**24
        below, above = (need + held / 2) / 2**30, (need + held + 2**24) / 2**30
        with pytest.raises(ValueError, match=r"needs about .* GiB for D = 256 and C = 5 \(.* GiB of it held by this "
                                             r"process already; memory is .* GiB\)"):
            recalign.AlignmentTracker(d, c, shape=(16, 16), noises=noises, memory=below)
        recalign.AlignmentTracker(d, c, shape=(16, 16), noises=noises, memory=above)
    # Three replicate groups: 4 R - 2 = 10 more D x D.
    need = recalign._recalign.run_memory("exact", d, c, 0, 10 * matrix)
    with pytest.raises(ValueError, match="needs about"):
        recalign.AlignmentTracker(d, c, shape=(16, 16), noises=["dropout:ratio=0.3,draws=6"], replicates=3,
                                  memory=need / 2**30 * (1 - 1e-9))
    # This machine's memory by default: a D whose 3 D x D cannot fit any machine is refused at once
    # (no 32 TB allocation tried); memory=inf checks nothing.
    with pytest.raises(ValueError, match="this machine has"):
        recalign.AlignmentTracker(2_000_000, c, noises=["dropout:ratio=0.3"])
    with pytest.raises(ValueError, match="GiB > 0"):
        recalign.AlignmentTracker(d, c, memory=0)
    recalign.AlignmentTracker(d, c, memory=float("inf"))
