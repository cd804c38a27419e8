"""The verified sketch analyses (recalign.verified, issue 14 item 5): multi-pass states driven
by track() (resume inside any pass, pickling, merges of shards, refusals) and their numbers
against the CLI's JSON on the same data in the same batches, bit for bit (recalign-synth images
at D = 3,072 and a Fashion-MNIST subset)."""
import json
import os
import pickle
import struct
import subprocess

import numpy as np
import pytest

import recalign

RNG = np.random.default_rng(5)


def synthetic_batches(n=300, size=64):
    x = RNG.integers(0, 256, size=(n, 8 * 8 * 3), dtype=np.uint8)
    y = RNG.integers(0, 5, n)
    x[:, :5] = (y[:, None] * 40).astype(np.uint8)
    return [(x[i:i + size], y[i:i + size]) for i in range(0, n, size)]


def test_verified_state_resume_pickle_merge_and_refusals(tmp_path):
    data = synthetic_batches()
    noises = ["mask:patch=2x2,ratio=0.5", "dropout:ratio=0.25", "gaussian:sigma=3"]
    # two sketch passes, the verification pass, one refinement pass (the masking noises)
    make = lambda: recalign.VerifiedDenoising(192, 5, noises, shape=(8, 8, 3), rank=20, passes=2, refine=1)  # noqa: E731
    whole = recalign.track(data, make())
    whole_bytes = whole.to_bytes()  # report() joins the last pass in place: other bytes, the same state
    assert whole.total_passes == 4 and whole.pass_index == 3 and whole.report().sketch_error.verification_passes == 2
    assert whole.report().to_dict() == recalign.VerifiedDenoising.from_bytes(whole_bytes).report().to_dict()
    assert whole.finished and recalign.VerifiedDenoising.from_bytes(whole.to_bytes()).report().to_dict() == \
        whole.report().to_dict()
    want = whole.report()
    assert want.exact_for == "returned subspaces" and want.sketch_error.verified
    assert np.max(np.abs(want.noises[2].impact)) < 1e-10  # Gaussian noise keeps U
    # stop in each pass, go through pickle, continue: the same bytes and numbers
    for stop in (2, 6, 12, 17):
        st, done = make(), 0
        for p in range(4):
            if p:
                st.next_pass()
            for xb, yb in data:
                if done == stop:
                    st = pickle.loads(pickle.dumps(st))
                st.update(xb, yb)
                done += 1
        assert st.to_bytes() == whole_bytes, stop
    # checkpoint + resume through track in the verification pass
    ck = str(tmp_path / "v.ckpt")
    st = make()
    seen = []

    def cut(batches):
        for i, b in enumerate(batches):
            seen.append(i)
            if len(seen) == 18:  # in the refinement pass
                raise KeyboardInterrupt
            yield b
    with pytest.raises(KeyboardInterrupt):
        recalign.track(lambda: cut(data), st, checkpoint=ck, every=1)
    resumed = recalign.track(lambda: iter(data), make(), checkpoint=ck, every=1, resume=True)
    assert resumed.to_bytes() == whole_bytes
    # shards of each pass merge into the one stream's state (later passes start from the merged state)
    a = make()
    for p in range(4):
        if p:
            a.next_pass()
        b = a.copy()
        for i, (xb, yb) in enumerate(data):
            (a if i < 2 else b).update(xb, yb, i * 64)
        a.merge(b)
        if p == 0:
            with pytest.raises(ValueError, match="configuration"):
                a.merge(recalign.VerifiedDenoising(192, 5, noises[:1], shape=(8, 8, 3), rank=20, passes=2, refine=1))
    assert a.n == 300
    np.testing.assert_allclose(a.report().noises[0].alignment, want.noises[0].alignment, rtol=1e-6)
    # refusals: a bad batch changes nothing; a generator cannot be read 3 times; report too early
    st = make()
    st.update(*data[0])
    before = st.to_bytes()
    with pytest.raises(ValueError, match="out of range"):
        st.update(data[1][0], data[1][1] + 5)
    assert st.to_bytes() == before
    with pytest.raises(RuntimeError, match="passes"):
        st.report()
    with pytest.raises(ValueError, match="iterator"):
        recalign.track(iter(data), make())
    with pytest.raises(ValueError, match="draws >= 2"):
        recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5,draws=1"], shape=(8, 8, 3), rank=20)
    with pytest.raises(ValueError, match="rank"):
        recalign.VerifiedAlignment(192, 5, rank=500)
    with pytest.raises(ValueError, match="refine"):
        recalign.VerifiedDenoising(192, 5, noises, shape=(8, 8, 3), rank=20, refine=21)
    with pytest.raises(ValueError, match="nystrom"):
        recalign.VerifiedAlignment(192, 5, method="fd", rank=20, tolerance=0.5)
    with pytest.raises(ValueError, match="passes"):
        recalign.VerifiedAlignment(192, 5, rank=20, tolerance=0.5)
    assert recalign.VerifiedDenoising(192, 5, noises[2:], rank=20).total_passes == 2  # Gaussian: nothing to refine
    with pytest.raises(recalign.FileError):
        recalign.VerifiedDenoising.from_bytes(whole.to_bytes()[:-9])
    with pytest.raises(ValueError, match="published"):
        recalign.VerifiedAlignment(192, 5, rank=20, measure="published")
    # in a verification pass too: a refused batch leaves the bytes as they were
    st = make()
    recalign.track(data, st, passes=3)
    assert st.pass_index == 2
    st = pickle.loads(pickle.dumps(recalign.VerifiedDenoising.from_bytes(whole_bytes)))
    before = st.to_bytes()
    with pytest.raises(ValueError, match="columns"):
        st.update(data[0][0][:, :100], data[0][1])
    assert st.to_bytes() == before
    with pytest.raises(ValueError, match="passes are done"):
        st.next_pass()


def _with_header(data, version, edit):
    """Checkpoint bytes of a verified state with another format version and header (edit(head))."""
    size = struct.unpack_from("<I", data, 12)[0]
    head = json.loads(data[16:16 + size])
    edit(head)
    h = json.dumps(head).encode()
    return data[:8] + struct.pack("<II", version, len(h)) + h + data[16 + size:]


def test_finished_is_a_pure_query():
    """Reading `finished` changes nothing: on a complete verification pass that is not the last,
    the state's bytes before and after are equal (the restart, and its adaptive stop, are
    next_pass()'s work: a checkpoint taken after the read is the one taken before it), and the
    passes then run to the same bytes as without the read."""
    data = synthetic_batches()
    make = lambda: recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5"], shape=(8, 8, 3), rank=20,  # noqa: E731
                                              refine=2)
    plain, asked = make(), make()
    for p in range(3):  # the sketch pass, the verification pass, the first refinement pass
        for st in (plain, asked):
            if p:
                st.next_pass()
            for xb, yb in data:
                st.update(xb, yb)
        before = asked.to_bytes()
        assert not asked.finished
        assert asked.to_bytes() == before == plain.to_bytes(), p
        if p:
            with pytest.raises(RuntimeError, match="it is complete: next_pass()"):
                asked.report()
            assert asked.to_bytes() == before
    for st in (plain, asked):
        st.next_pass()
        for xb, yb in data:
            st.update(xb, yb)
    assert asked.finished and plain.finished
    assert asked.to_bytes() == plain.to_bytes()
    asked.report()  # joins the last pass: the passes have ended, no row is taken
    with pytest.raises(ValueError, match="the passes have ended there"):
        asked.update(*data[0])


def test_resuming_a_finished_state_reads_nothing(tmp_path):
    """track(..., resume=True) of a checkpoint whose state is finished (all passes read, or the
    adaptive stop) reads no batch: it iterated the whole last pass to skip its rows."""
    data = synthetic_batches()
    read = []

    def source():
        for b in data:
            read.append(1)
            yield b
    ck = str(tmp_path / "done.ckpt")
    make = lambda: recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5"], shape=(8, 8, 3), rank=20,  # noqa: E731
                                              refine=1)
    done = recalign.track(source, make(), checkpoint=ck)
    assert done.finished and len(read) == done.total_passes * len(data)
    read.clear()
    again = recalign.track(source, make(), checkpoint=ck, resume=True)
    assert read == [] and again.to_bytes() == done.to_bytes()


def _statistics_matrices(data, at):
    """Offsets of the five matrices (basis, sv, vsv, gram, svsv) of DenoisingRefinement statistics
    starting at `at` (center, n, then rows, cols and the doubles of each)."""
    at += 16
    out = []
    for _ in range(5):
        rows, cols = struct.unpack_from("<QQ", data, at)
        out.append((at, rows, cols))
        at += 16 + 8 * rows * cols
    return out


def test_refinement_bytes_of_inconsistent_shapes_are_refused():
    """DenoisingRefinement.from_bytes (a VerifiedDenoising's carried part: no checksum) refuses
    statistics whose matrices do not fit their basis (a FileError at the matrix's offset), as the
    analyses and complete_pass index them by the basis's K without checking: Vᵀ Sxx V, the Gram
    matrix or (Sxx V)ᵀ(Sxx V) of another size, or a cross block of other rows, were accepted; so
    was a pass being read with all of its basis carried (nothing new to read)."""
    data = synthetic_batches()
    st = recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5"], shape=(8, 8, 3), rank=20, refine=2)
    for p in range(2):
        if p:
            st.next_pass()
        for xb, yb in data:
            st.update(xb, yb)
    st.next_pass()  # the first refinement pass: R carried, T read
    good = st._refinement.to_bytes()
    assert recalign._recalign.DenoisingRefinement.from_bytes(good).to_bytes() == good
    (curves,) = struct.unpack_from("<Q", good, 32)  # after version, passes, stopped, change
    start = 40 + 8 * curves + 16  # has next, carried
    for which in (2, 3, 4):  # vsv, gram, svsv: 1 x 1 instead of K x K
        at, rows, cols = _statistics_matrices(good, start)[which]
        assert rows == cols > 1
        bad = good[:at] + struct.pack("<QQd", 1, 1, 1.0) + good[at + 16 + 8 * rows * cols:]
        with pytest.raises(recalign.FileError, match="do not fit") as e:
            recalign._recalign.DenoisingRefinement.from_bytes(bad, "carried")
        assert e.value.file == "carried" and 0 < e.value.offset <= len(bad)
    # all of the basis carried: nothing for the pass to read (fresh() and complete_pass would index
    # an empty D x 0 matrix's null data)
    for xb, yb in data:
        st.update(xb, yb)
    st.next_pass()
    for xb, yb in data:
        st.update(xb, yb)
    st.report()  # the last pass joined: the result's statistics, K x K products
    ended = st._refinement.to_bytes()
    (curves,) = struct.unpack_from("<Q", ended, 32)
    # after the result: the stop's estimate (a double), the last field
    head, stats, estimate = ended[:40 + 8 * curves], ended[40 + 8 * curves + 16:-8], ended[-8:]
    assert struct.unpack_from("<QQ", ended, 40 + 8 * curves) == (0, 1)  # no pass being read, a result
    _, _, k = _statistics_matrices(stats, 0)[0]
    bad = head + struct.pack("<QQ", 1, k) + stats + struct.pack("<Q", 0) + estimate
    with pytest.raises(recalign.FileError, match="a pass being read has new directions"):
        recalign._recalign.DenoisingRefinement.from_bytes(bad, "carried")
    assert good[-16:-8] == struct.pack("<Q", 0)  # reading, no result yet: both is no state close() leaves
    with pytest.raises(recalign.FileError, match="both a pass being read and the result"):
        recalign._recalign.DenoisingRefinement.from_bytes(good[:-16] + struct.pack("<Q", 1) + stats + good[-8:], "carried")


def test_refinement_close_refused_changes_nothing():
    """DenoisingRefinement.close is all or nothing (strong guarantee): a pass it refuses (blocks of
    other rows, an accumulator that did not read fresh(), a sketch whose U does not start the
    basis) leaves both the state and the accumulator as they were (before the fix they were spent,
    V and Sxx V moved out, before the restart's own checks refused)."""
    data = synthetic_batches()
    noise = "mask:patch=2x2,ratio=0.5"
    st = recalign.VerifiedDenoising(192, 5, [noise], shape=(8, 8, 3), rank=20, refine=2)
    for p in range(3):  # the sketch pass, the verification pass, the first refinement pass
        if p:
            st.next_pass()
        for xb, yb in data:
            st.update(xb, yb)
    ref, acc, sketch = st._refinement, st._verify, st.sketch().spectrum
    assert ref.reading and acc.n == st._sketch.n
    fresh = ref.fresh()
    other_rows = recalign._recalign.PatchBlocks((8, 8, 3), (2, 2), "hwc")
    other_rows.update(data[0][0])
    off = recalign._recalign.RestrictedMoments(np.flip(fresh, axis=1).copy(), 5)
    for xb, yb in data:
        off.update(xb, yb)
    other_sketch = recalign.NystromSketch(192, 20, oversampling=10, probes=10, seed=7, center="uncentered")
    for xb, _ in data:
        other_sketch.update(xb)
    labels = recalign._recalign.ClassMoments(192, 5)
    for xb, yb in data:
        labels.update(xb, yb)
    other_u = other_sketch.finish(labels=labels, rank=20).spectrum
    cases = [(sketch, acc, [other_rows], "not of this data"), (sketch, off, st._blocks, "new directions"),
             (other_u, acc, st._blocks, "start with the sketch")]
    for u, a, blocks, match in cases:
        before, spent = ref.to_bytes(), a.to_bytes()
        with pytest.raises(ValueError, match=match):
            ref.close(u, a, "uncentered", [recalign._recalign.NoiseSpec(noise)], blocks, 20)
        assert ref.to_bytes() == before and a.to_bytes() == spent, match
    assert ref.close(sketch, acc, "uncentered", [recalign._recalign.NoiseSpec(noise)], st._blocks, 20) in (True, False)


def test_refinement_close_failing_disk_changes_nothing(tmp_path, monkeypatch):
    """DenoisingRefinement.close is all or nothing when the disk fails midway too: with $TMPDIR
    gone (no spill file can be made there) the first close (after the verification pass) fails
    spilling Sxx Q, the next one (after a refinement pass) spilling the next pass's [R, T] once the
    restart has run; next_pass() raises FileError naming the directory and the whole state (the
    refinement, the accumulator) is as it was, so next_pass() succeeds once the directory is back,
    with the bytes of a state that never failed."""
    data = synthetic_batches()
    spill, missing = tmp_path / "spill", str(tmp_path / "no-such-dir")
    spill.mkdir()
    monkeypatch.setenv("TMPDIR", str(spill))
    st = recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5"], shape=(8, 8, 3), rank=20, refine=2)
    for p in range(3):  # the sketch pass, the verification pass, the first refinement pass
        for xb, yb in data:
            st.update(xb, yb)
        if p == 0:  # the sketch pass ends without a close; the verification and refinement passes' do
            st.next_pass()
            continue
        assert st._refinement.reading == (p == 2)
        want = st.copy()
        want.next_pass()
        before = st.to_bytes()
        monkeypatch.setenv("TMPDIR", missing)
        with pytest.raises(recalign.FileError, match="no-such-dir"):
            st.next_pass()
        monkeypatch.setenv("TMPDIR", str(spill))
        assert st.to_bytes() == before, p
        st.next_pass()
        assert st._refinement.reading and st.to_bytes() == want.to_bytes(), p


def test_older_formats_load_or_are_refused_as_older():
    """Format version 2 (the trade-off's CG passes, a trailing part for what a state carries between
    passes): a version-1 VerifiedTradeoff of before them (no
    `refine` in its header, 1x1 diagonal blocks) is refused as of an older format, not as "another
    configuration"; version-1 files of the current layout (other kinds, trade-offs with `refine`)
    load to the same state; a newer version is refused."""
    data = synthetic_batches(n=128)
    t = recalign.track(data, recalign.VerifiedTradeoff(192, 5, [0, 1], 3, rank=10, refine=1))
    a = recalign.track(data, recalign.VerifiedAlignment(192, 5, rank=10))
    for state in (t, a):  # version 1 had no trailing part for what a state carries (here none: 8 zero bytes)
        assert state.to_bytes()[-8:] == bytes(8)
        assert type(state).from_bytes(_with_header(state.to_bytes()[:-8], 1, lambda h: None)).to_bytes() == state.to_bytes()
    # a state of before any row in the old layout: the exact diagonal of Sxx as 1x1 blocks
    old = _with_header(recalign.VerifiedTradeoff(192, 5, [0, 1], 3, rank=10).to_bytes()[:-8], 1,
                       lambda h: h["args"].pop("refine"))
    fresh, diagonal = (recalign.PatchBlocks((192, 1, 1), patch, "hwc").to_bytes() for patch in ((192, 1), (1, 1)))
    assert old.count(fresh) == 1
    old = old.replace(struct.pack("<Q", len(fresh)) + fresh, struct.pack("<Q", len(diagonal)) + diagonal)
    with pytest.raises(recalign.FileError, match="older format version 1") as e:
        recalign.VerifiedTradeoff.from_bytes(old, "old.ckpt")
    assert e.value.offset == 8 and e.value.file == "old.ckpt"
    with pytest.raises(recalign.FileError, match="version 3 is not supported") as e:
        recalign.VerifiedTradeoff.from_bytes(_with_header(t.to_bytes(), 3, lambda h: None))
    assert e.value.offset == 8

def test_tolerance_skips_sketch_passes(tmp_path):
    """tolerance (the CLI's --tolerance): once the Nyström estimate of ‖C − Ĉ‖_F / tr C meets T
    after a sketch pass, next_pass() starts the verification; track() follows it, a checkpoint
    resumes there, and the numbers are those of a run with that many passes."""
    data = synthetic_batches(200, 50)
    make = lambda passes, t=None: recalign.VerifiedAlignment(192, 5, rank=12, passes=passes, seed=1,  # noqa: E731
                                                             tolerance=t)
    # The estimate is about 2e-3 here (uint8 rows, uncentered): 0.99 is met after the first
    # pass, 1e-9 never.
    met = recalign.track(data, make(3, 0.99))
    e = met.report().sketch_error
    assert met.pass_index == 3 and (e.sketch_passes, e.max_passes, e.tolerance, e.tolerance_met) == (1, 3, 0.99, True)
    assert 0 < e.relative_estimate < 0.99
    # Stopped after its first pass, a run has the numbers of any multi-pass run stopped there
    # (the first pass of block Krylov, rank + max(rank, 10) columns; passes=1 has rank + 10).
    np.testing.assert_array_equal(met.report().alignment, recalign.track(data, make(2, 0.99)).report().alignment)
    one = recalign.track(data, make(1)).report()
    assert one.sketch_error.tolerance_met is None and one.to_dict()["sketch_error"]["tolerance"] is None
    unmet = recalign.track(data, make(3, 1e-9)).report()
    assert (unmet.sketch_error.sketch_passes, unmet.sketch_error.tolerance_met) == (3, False)
    np.testing.assert_array_equal(unmet.alignment, recalign.track(data, make(3)).report().alignment)
    # interrupted in the verification pass (after 4 + 1 batches), resumed from the checkpoint
    ck, seen = str(tmp_path / "t.ckpt"), []

    def cut(batches):
        for b in batches:
            seen.append(1)
            if len(seen) == 6:
                raise KeyboardInterrupt
            yield b
    with pytest.raises(KeyboardInterrupt):
        recalign.track(lambda: cut(data), make(3, 0.99), checkpoint=ck, every=1)
    assert recalign.VerifiedAlignment.load(ck).pass_index == 3
    resumed = recalign.track(lambda: iter(data), make(3, 0.99), checkpoint=ck, every=1, resume=True)
    assert resumed.to_bytes() == met.to_bytes()


def test_track_drives_nystrom_power_iterations():
    data = synthetic_batches(200, 50)
    manual = recalign.NystromSketch(192, 10, seed=2)
    for p in range(3):
        if p:
            manual.next_pass()
        for xb, _ in data:
            manual.update(xb)
    driven = recalign.track([xb for xb, _ in data], recalign.NystromSketch(192, 10, seed=2), passes=3)
    assert driven.pass_index == 2 and driven.to_bytes() == manual.to_bytes()


CLI = os.environ.get("RECALIGN_CLI")
SYNTH = os.environ.get("RECALIGN_SYNTH")


def cli_json(*args):
    if not CLI or not os.path.exists(CLI):
        pytest.skip("RECALIGN_CLI is not set (the python suite sets it when tools are built)")
    out = subprocess.run([CLI] + [str(a) for a in args] + ["--json", "--quiet"], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)


def same_document(cli, py, what):
    """The CLI's JSON document and the Python result's to_dict(), equal bit for bit (but for
    the CLI's description of its input files)."""
    if isinstance(cli, dict):
        cli = {k: v for k, v in cli.items() if k not in ("input", "scale")}
    assert cli == py.to_dict(), what


def test_cli_parity_synthetic_3072(tmp_path):
    """recalign-synth output at D = 3,072 (32x32x3, 1/f² images): denoise (its refinement ended by
    the budget), align and tradeoff through the CLI and through Python on the same batches give
    the same documents bit for bit."""
    if not SYNTH or not os.path.exists(SYNTH):
        pytest.skip("RECALIGN_SYNTH is not set (the python suite sets it when tools are built)")
    images, labels = str(tmp_path / "s.u8"), str(tmp_path / "s.npy")
    subprocess.run([SYNTH, "--rows", "400", "--height", "32", "--width", "32", "--seed", "5", "--output", images,
                    "--labels", labels], check=True, capture_output=True)
    x = np.fromfile(images, dtype=np.uint8).reshape(400, 3072)
    y = np.load(labels)
    data = [(x[i:i + 100], y[i:i + 100]) for i in range(0, 400, 100)]
    common = ["--images", images, "--raw-shape", "400,3072", "--labels", labels, "--classes", 10, "--batch", 100,
              "--method", "nystrom", "--rank", 48, "--passes", 2, "--seed", 3]
    # One masking noise: each of the 8 default --refine passes costs about 0.5 s of CPU per masking
    # noise here (two noise geometries in one span: test_cli_parity_fashion).
    noises = ["mask:patch=4x4,ratio=0.75,scheme=fixed", "gaussian:sigma=10"]
    cli = cli_json("denoise", *common, "--image-shape", "32,32,3", *[a for n in noises for a in ("--noise", n)])
    py = recalign.verified_denoise(data, noises, 10, shape=(32, 32, 3), rank=48, passes=2, seed=3)
    assert cli["exact_for"] == "returned subspaces" and cli["sketch_error"]["verified"] and cli["n"] == 400
    assert cli["sketch_error"]["verification_passes"] == 9  # the default --refine 8
    assert cli["sketch_error"]["refinement"]["stopped"] == "budget"  # the budget ends it here
    same_document(cli, py, "denoise")
    cli = cli_json("align", *common)
    same_document(cli, recalign.verified_align(data, 10, rank=48, passes=2, seed=3), "align")
    cli = cli_json("align", *common, "--tolerance", 0.99)
    assert cli["sketch_error"]["sketch_passes"] == 1 and cli["sketch_error"]["tolerance_met"]
    same_document(cli, recalign.verified_align(data, 10, rank=48, passes=2, seed=3, tolerance=0.99), "align tolerance")
    cli = cli_json("tradeoff", *common, "--lambda", "0,1", "--k", 5)
    same_document(cli, recalign.verified_tradeoff(data, [0, 1], 5, 10, rank=48, passes=2, seed=3), "tradeoff")


def test_cli_parity_fashion(fashion, tmp_path):
    """A Fashion-MNIST subset (1,000 images): align and tradeoff with FD, denoise with Nyström,
    CLI JSON against Python, bit for bit."""
    images, labels = fashion
    x, y = images[:1000], labels[:1000]
    xi, yi = str(tmp_path / "x.npy"), str(tmp_path / "y.npy")
    np.save(xi, x)
    np.save(yi, y)
    data = [(x[i:i + 250], y[i:i + 250]) for i in range(0, 1000, 250)]
    common = ["--images", xi, "--labels", yi, "--classes", 10, "--batch", 250]
    cli = cli_json("align", *common, "--method", "fd", "--rank", 30)
    same_document(cli, recalign.verified_align(data, 10, method="fd", rank=30), "align fd")
    cli = cli_json("tradeoff", *common, "--method", "fd", "--rank", 30, "--lambda", "0,1,10", "--k", 10)
    assert all(p["bound"] == "upper" and p["exact_for"] == "returned encoder" for p in cli)
    same_document(cli, recalign.verified_tradeoff(data, [0, 1, 10], 10, 10, method="fd", rank=30), "tradeoff fd")
    cli = cli_json("denoise", *common, "--image-shape", "28,28,1", "--method", "nystrom", "--rank", 40,
                   "--noise", "mask:patch=4x4,ratio=0.5", "--noise", "dropout:ratio=0.3", "--center")
    py = recalign.verified_denoise(data, ["mask:patch=4x4,ratio=0.5", "dropout:ratio=0.3"], 10, shape=(28, 28, 1),
                                   rank=40, center="centered")
    same_document(cli, py, "denoise centered")


def test_torch_dataloader_drives_every_pass(tmp_path):
    """A torch DataLoader is re-iterable: track() reads it once per pass and ends where the same
    batches as NumPy arrays end; a shuffling one with a checkpoint is refused before any row."""
    from conftest import torch_or_skip
    torch = torch_or_skip()
    data = synthetic_batches(240, 60)
    x = np.concatenate([b[0] for b in data])
    y = np.concatenate([b[1] for b in data])
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(ds, batch_size=60, shuffle=False)
    make = lambda: recalign.VerifiedAlignment(192, 5, method="nystrom", rank=12, passes=2)  # noqa: E731
    got = recalign.track(loader, make())
    assert got.pass_index == 2 and got.to_bytes() == recalign.track(data, make()).to_bytes()
    shuffled = torch.utils.data.DataLoader(ds, batch_size=60, shuffle=True,
                                           generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="several passes"):
        recalign.track(shuffled, make(), checkpoint=str(tmp_path / "a.ckpt"))
    assert not os.path.exists(tmp_path / "a.ckpt")


def test_tradeoff_adaptive_stop_as_the_cli(tmp_path):
    """400 synthetic 16x16x3 images (D = 768: two preconditioner blocks of 384, Sxx singular): the CG
    passes stop early, after the same pass as the CLI's --refine 8, to the same document bit for
    bit; the stopped state is `finished`, refuses next_pass(), and a checkpoint of it loads and
    resumes to the same result."""
    if not SYNTH or not os.path.exists(SYNTH):
        pytest.skip("RECALIGN_SYNTH is not set (the python suite sets it when tools are built)")
    images, labels = str(tmp_path / "s.u8"), str(tmp_path / "s.npy")
    subprocess.run([SYNTH, "--rows", "400", "--height", "16", "--width", "16", "--seed", "5", "--output", images,
                    "--labels", labels], check=True, capture_output=True)
    x = np.fromfile(images, dtype=np.uint8).reshape(400, 768)
    y = np.load(labels)
    data = [(x[i:i + 100], y[i:i + 100]) for i in range(0, 400, 100)]
    cli = cli_json("tradeoff", "--images", images, "--raw-shape", "400,768", "--labels", labels, "--classes", 10,
                   "--batch", 100, "--method", "nystrom", "--rank", 40, "--seed", 3, "--lambda", "0,1", "--k", 5,
                   "--refine", 8)
    done = cli[0]["refinement"]
    assert done["stopped"] and done["passes"] < done["max_passes"] == 9
    checkpoint = tmp_path / "state.ckpt"
    state = recalign.track(data, recalign.VerifiedTradeoff(768, 10, [0, 1], 5, rank=40, seed=3, refine=8),
                           checkpoint=checkpoint)
    same_document(cli, state.report(), "tradeoff stopped")
    assert state.finished and state.pass_index == done["passes"] < state.total_passes - 1
    with pytest.raises(ValueError, match="adaptive stop"):
        state.next_pass()
    assert recalign.VerifiedTradeoff.load(checkpoint).report().to_dict() == state.report().to_dict()
    resumed = recalign.track(data, recalign.VerifiedTradeoff(768, 10, [0, 1], 5, rank=40, seed=3, refine=8),
                             checkpoint=checkpoint, resume=True)
    assert resumed.to_bytes() == state.to_bytes()


def test_denoise_adaptive_stop_as_the_cli(tmp_path):
    """500 synthetic 12x12x3 images (D = 432), rank 128: the incremental refinement passes stop
    adaptively after the same pass as the CLI's, to the same document bit for bit (and with rank
    96 on 8x8x3 the first restart has nothing new to read). The stopped state is `finished`,
    refuses next_pass(); checkpoints taken inside a refinement pass resume to the same bytes; a
    version 1 state (whose refinement passes re-read the whole span) loads before its refinement
    passes and is refused inside them."""
    if not SYNTH or not os.path.exists(SYNTH):
        pytest.skip("RECALIGN_SYNTH is not set (the python suite sets it when tools are built)")
    runs = {}
    # rank 128, not 160: with the clean top refined too (3 x 64 more columns) rank 160's span is
    # all of R^432 after one refinement pass, which ends the passes before any estimate
    for h, rank in ((12, 128), (8, 96)):
        images, labels = str(tmp_path / f"s{h}.u8"), str(tmp_path / f"s{h}.npy")
        subprocess.run([SYNTH, "--rows", "500", "--height", str(h), "--width", str(h), "--seed", "5", "--output", images,
                        "--labels", labels], check=True, capture_output=True)
        x = np.fromfile(images, dtype=np.uint8).reshape(500, h * h * 3)
        y = np.load(labels)
        data = [(x[i:i + 100], y[i:i + 100]) for i in range(0, 500, 100)]
        cli = cli_json("denoise", "--images", images, "--raw-shape", f"500,{h * h * 3}", "--labels", labels, "--classes",
                       10, "--batch", 100, "--method", "nystrom", "--rank", rank, "--passes", 2, "--seed", 3,
                       "--image-shape", f"{h},{h},3", "--noise", "mask:patch=2x2,ratio=0.75")
        make = lambda h=h, rank=rank: recalign.VerifiedDenoising(  # noqa: E731
            h * h * 3, 10, ["mask:patch=2x2,ratio=0.75"], shape=(h, h, 3), rank=rank, passes=2, seed=3)
        state = recalign.track(data, make())
        same_document(cli, state.report(), f"denoise {h}x{h}")
        runs[h] = cli["sketch_error"]["refinement"], data, make, state
    done, data, make, whole = runs[12]
    assert done["stopped"] == "converged" and 0 < done["passes"] < done["budget"] == 8
    assert done["change"] <= done["estimate"] < done["threshold"] == recalign._recalign.REFINEMENT_STOP == 5e-4
    assert runs[8][0]["stopped"] == "converged" and runs[8][0]["passes"] == 0 and runs[8][0]["change"] is None
    assert whole.finished and whole.pass_index == 2 + done["passes"] < whole.total_passes - 1
    with pytest.raises(ValueError, match="adaptive stop"):
        whole.next_pass()
    # interrupted in the second refinement pass (pass 4, after its 2nd batch), resumed
    ck, seen = str(tmp_path / "d.ckpt"), []

    def cut(batches):
        for b in batches:
            seen.append(1)
            if len(seen) == 4 * 5 + 3:
                raise KeyboardInterrupt
            yield b
    with pytest.raises(KeyboardInterrupt):
        recalign.track(lambda: cut(data), make(), checkpoint=ck, every=1)
    inside = recalign.VerifiedDenoising.load(ck)
    assert (inside.pass_index, inside.n) == (4, 200)
    resumed = recalign.track(lambda: iter(data), make(), checkpoint=ck, every=1, resume=True)
    assert resumed.to_bytes() == whole.to_bytes()
    assert recalign.VerifiedDenoising.load(ck).report().to_dict() == whole.report().to_dict()

    def version_1(state):  # the same state as this build's version 1 wrote it (no carried part)
        data_ = state.to_bytes()
        carried = len(state._refinement.to_bytes())
        return data_[:8] + (1).to_bytes(4, "little") + data_[12:len(data_) - 8 - carried]
    first = make()
    recalign.track(data, first, passes=3)  # in the first verification pass: the same in both versions
    assert recalign.VerifiedDenoising.from_bytes(version_1(first)).to_bytes() == first.to_bytes()
    with pytest.raises(recalign.FileError, match="version 1 state in refinement pass 2"):
        recalign.VerifiedDenoising.from_bytes(version_1(inside))


@pytest.mark.parametrize("refine", [0, 2])
def test_denoise_refine_budgets_as_the_cli(tmp_path, refine):
    """FD, two masking noises (one span for both) and a Gaussian one at D = 192: with no
    refinement pass (refine=0: the report still has its `refinement` object, budget 0) and with
    a budget of 2, the document is the CLI's bit for bit."""
    if not SYNTH or not os.path.exists(SYNTH):
        pytest.skip("RECALIGN_SYNTH is not set (the python suite sets it when tools are built)")
    images, labels = str(tmp_path / "s.u8"), str(tmp_path / "s.npy")
    subprocess.run([SYNTH, "--rows", "300", "--height", "8", "--width", "8", "--seed", "5", "--output", images,
                    "--labels", labels], check=True, capture_output=True)
    x = np.fromfile(images, dtype=np.uint8).reshape(300, 192)
    data = [(x[i:i + 100], np.load(labels)[i:i + 100]) for i in range(0, 300, 100)]
    noises = ["mask:patch=2x2,ratio=0.5", "dropout:ratio=0.3", "gaussian:sigma=5"]
    cli = cli_json("denoise", "--images", images, "--raw-shape", "300,192", "--labels", labels, "--classes", 10,
                   "--batch", 100, "--method", "fd", "--rank", 30, "--image-shape", "8,8,3", "--refine", refine,
                   *[a for n in noises for a in ("--noise", n)])
    assert cli["sketch_error"]["refinement"]["budget"] == refine
    same_document(cli, recalign.verified_denoise(data, noises, 10, shape=(8, 8, 3), method="fd", rank=30,
                                                 refine=refine), f"denoise refine={refine}")


def test_fd_state_of_the_earlier_ell_resumes_with_it():
    """FD's ell went from min(2 rank, D) to min(3 rank, D) (frequent_directions_default_ell, as
    the CLI's): a state begun with the earlier ell continues with it. Rank 4's sketch (ell = 12)
    is the one an older build began for rank 6 (ell = 2 · 6): spliced into a rank-6 state, it
    loads, keeps ell = 12 to the end of the sketch pass (rank 4's shrinkage) and is verified."""
    data = synthetic_batches()
    assert recalign._recalign.frequent_directions_default_ell(6, 192) == 18
    assert recalign._recalign.frequent_directions_legacy_ell(6, 192) == 12
    six, four = (recalign.VerifiedAlignment(192, 5, method="fd", rank=r) for r in (6, 4))
    for st in (six, four):
        for xb, yb in data[:2]:
            st.update(xb, yb)

    def parts(b):  # (offset of part 0's u64 length, part 0's bytes)
        at = 16 + struct.unpack_from("<I", b, 12)[0]
        return at, b[at + 8:at + 8 + struct.unpack_from("<Q", b, at)[0]]

    b6, b4 = six.to_bytes(), four.to_bytes()
    at, fresh = parts(b6)
    _, legacy = parts(b4)
    forged = b6[:at] + struct.pack("<Q", len(legacy)) + legacy + b6[at + 8 + len(fresh):]
    st = recalign.VerifiedAlignment.from_bytes(forged)
    assert st._sketch.ell == 12 and six._sketch.ell == 18
    for xb, yb in data[2:]:
        st.update(xb, yb)
        four.update(xb, yb)
    assert st._sketch.shrinkage == four._sketch.shrinkage and st._sketch.n == four._sketch.n
    st.next_pass()
    for xb, yb in data:
        st.update(xb, yb)
    assert st.finished and st.report().sketch_error.verified
    # Any other ell (rank 5's 15) is refused as before.
    five = recalign.VerifiedAlignment(192, 5, method="fd", rank=5)
    other = parts(five.to_bytes())[1]
    with pytest.raises(recalign.FileError, match="another configuration"):
        recalign.VerifiedAlignment.from_bytes(b6[:at] + struct.pack("<Q", len(other)) + other + b6[at + 8 + len(fresh):])
