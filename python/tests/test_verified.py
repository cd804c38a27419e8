"""The verified sketch analyses (recalign.verified, issue 14 item 5): multi-pass states driven
by track() (resume inside any pass, pickling, merges of shards, refusals, older formats).
Their numbers against the CLI's JSON: test_verified_cli.py."""
import json
import math
import pickle
import struct

import numpy as np
import pytest

import recalign

from _verified_data import synthetic_batches


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
    # the CLI's default --passes: two Nyström sketch passes where a masking noise is refined, else one
    mask, img = ["mask:patch=2x2,ratio=0.5"], (8, 8, 3)
    assert recalign.VerifiedDenoising(192, 5, mask, shape=img, rank=20, refine=2).total_passes == 2 + 1 + 2
    assert recalign.VerifiedDenoising(192, 5, mask, shape=img, rank=20, refine=0).total_passes == 1 + 1
    assert recalign.VerifiedDenoising(192, 5, mask, shape=img, rank=20, refine=2, passes=1).total_passes == 1 + 1 + 2
    assert recalign.VerifiedDenoising(192, 5, mask, shape=img, method="fd", rank=20, refine=2).total_passes == 1 + 1 + 2
    assert recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5,draws=2"], shape=img, rank=20).total_passes == 2
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


def test_the_first_restart_solves_with_the_first_basis_factors():
    """As the CLI's denoise: the first basis records every masking noise's preconditioner factors
    (GramSolveCache, in $TMPDIR), the first restart solves with them, and the state's bytes and
    report are those of the same state loaded between the two (no cache: its first restart forms
    them again). The cache is not saved, and is dropped after the first restart."""
    data = synthetic_batches()
    noises = ["mask:patch=2x2,ratio=0.5", "mask:patch=2x2,ratio=0.5,scheme=fixed", "gaussian:sigma=0.3"]
    st = recalign.VerifiedDenoising(192, 5, noises, shape=(8, 8, 3), rank=20, refine=2)
    assert st.total_passes == 2 + 1 + 2
    for p in range(2):  # the two sketch passes
        if p:
            st.next_pass()
        for xb, yb in data:
            st.update(xb, yb)
    st.next_pass()  # the first basis: span(U, V_1, V_2), the factors recorded on the way
    assert len(st._factors) == 2, "one entry per masking noise"
    factors = st._factors
    loaded = recalign.VerifiedDenoising.from_bytes(st.to_bytes())
    assert loaded._factors is None
    for state in (st, loaded):
        for xb, yb in data:
            state.update(xb, yb)
        state.next_pass()  # the first restart
    assert st._factors is None, "the first restart's only"
    assert len(factors) == 2, "the restart found both entries (a miss forms and adds its own)"
    assert st.to_bytes() == loaded.to_bytes()
    for state in (st, loaded):
        recalign.track(data, state)
    assert st.to_bytes() == loaded.to_bytes()
    assert json.dumps(st.report().to_dict()) == json.dumps(loaded.report().to_dict())
    bare = recalign.VerifiedDenoising(192, 5, noises, shape=(8, 8, 3), rank=20, refine=0)
    for xb, yb in data:
        bare.update(xb, yb)
    bare.next_pass()  # its basis: nothing to refine after the pass, no factors kept
    assert bare._factors is None


def test_finished_is_a_pure_query():
    """Reading `finished` changes nothing: on a complete verification pass that is not the last,
    the state's bytes before and after are equal (the restart, and its adaptive stop, are
    next_pass()'s work: a checkpoint taken after the read is the one taken before it), and the
    passes then run to the same bytes as without the read."""
    data = synthetic_batches()
    make = lambda: recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5"], shape=(8, 8, 3), rank=20,  # noqa: E731
                                              passes=1, refine=2)
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


def _statistics_end(data, at):
    """Where DenoisingRefinement statistics starting at `at` end: the five matrices, then the
    cross block (has cross; center, n, Sxy, Syy, class counts)."""
    *_, (last, rows, cols) = _statistics_matrices(data, at)
    at = last + 16 + 8 * rows * cols
    (cross,) = struct.unpack_from("<Q", data, at)
    at += 8
    if cross:
        at += 16
        for _ in range(2):
            rows, cols = struct.unpack_from("<QQ", data, at)
            at += 16 + 8 * rows * cols
        (n,) = struct.unpack_from("<Q", data, at)
        at += 8 + 8 * n
    return at


def _refinement_layout(data):
    """Offsets in DenoisingRefinement bytes (version 3): the pass being read's statistics (or
    None), the result's (or None), the estimate, the two known-blocks lists and the history
    (every restart's changes, then estimates)."""
    (curves,) = struct.unpack_from("<Q", data, 32)  # after version, passes, stopped, change
    at = 40 + 8 * curves
    out = {"has_next": at}
    nxt = fin = None
    if struct.unpack_from("<Q", data, at)[0]:
        nxt = at + 16  # has next, carried
        at = _statistics_end(data, nxt)
    else:
        at += 8
    out["has_final"] = at
    if struct.unpack_from("<Q", data, at)[0]:
        fin = at + 8
        at = _statistics_end(data, fin)
    else:
        at += 8
    out.update(next=nxt, final=fin, estimate=at, known_next=at + 8)
    at += 8
    for name in ("known_next", "known_final"):
        out[name] = at
        (count,) = struct.unpack_from("<Q", data, at)
        at += 8
        for _ in range(count):
            rows, cols = struct.unpack_from("<QQ", data, at + 24)
            at += 24 + 16 + 8 * rows * cols
    for name in ("changes", "estimates"):
        out[name] = at
        at += 8 + 8 * struct.unpack_from("<Q", data, at)[0]
    assert at == len(data)
    return out


def _in_first_refinement_pass():
    """Synthetic batches and a VerifiedDenoising (one 2x2 mask, --refine 2) that has read its
    first verification pass and stands at its first refinement pass: R carried, T to read."""
    data = synthetic_batches()
    st = recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5"], shape=(8, 8, 3), rank=20, passes=1, refine=2)
    for p in range(2):
        if p:
            st.next_pass()
        for xb, yb in data:
            st.update(xb, yb)
    st.next_pass()
    return data, st


def test_refinement_bytes_of_inconsistent_shapes_are_refused():
    """DenoisingRefinement.from_bytes (a VerifiedDenoising's carried part: no checksum) refuses
    statistics whose matrices do not fit their basis (a FileError at the matrix's offset), as the
    analyses and complete_pass index them by the basis's K without checking: Vᵀ Sxx V, the Gram
    matrix or (Sxx V)ᵀ(Sxx V) of another size, or a cross block of other rows, were accepted; so
    was a pass being read with all of its basis carried (nothing new to read)."""
    data, st = _in_first_refinement_pass()
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
    e = _refinement_layout(ended)
    # after the result: the stop's estimate (a double), then what each statistics know of Vᵀ Bd V
    head, stats, rest = ended[:e["has_next"]], ended[e["final"]:e["estimate"]], ended[e["estimate"]:]
    assert struct.unpack_from("<QQ", ended, e["has_next"]) == (0, 1)  # no pass being read, a result
    _, _, k = _statistics_matrices(stats, 0)[0]
    bad = head + struct.pack("<QQ", 1, k) + stats + struct.pack("<Q", 0) + rest
    with pytest.raises(recalign.FileError, match="a pass being read has new directions"):
        recalign._recalign.DenoisingRefinement.from_bytes(bad, "carried")
    g = _refinement_layout(good)
    assert good[g["has_final"]:g["estimate"]] == struct.pack("<Q", 0)  # reading, no result yet: both is no state close() leaves
    with pytest.raises(recalign.FileError, match="both a pass being read and the result"):
        recalign._recalign.DenoisingRefinement.from_bytes(
            good[:g["has_final"]] + struct.pack("<Q", 1) + stats + good[g["estimate"]:], "carried")


def test_refinement_bytes_carry_the_known_blocks():
    """A restart hands Rᵀ Bd R (carried x carried) on to the pass being read, and the bytes hold it
    (version 3): the next restart sweeps the blocks over the new directions only, so a state
    resumed from its bytes must know it too to round as one that did not stop. A list that does
    not fit its statistics is refused at its offset; version-2 bytes (without the lists) load
    with nothing known."""
    data, st = _in_first_refinement_pass()
    good = st._refinement.to_bytes()
    g = _refinement_layout(good)
    (carried,) = struct.unpack_from("<Q", good, g["has_next"] + 8)
    at = g["known_next"]
    assert struct.unpack_from("<Q", good, at)[0] == 1  # one set of blocks (the 2x2 mask's)
    geometry, dim, n, rows, cols = struct.unpack_from("<QQQQQ", good, at + 8)
    assert (dim, rows, cols) == (192, carried, carried) and n == sum(len(x) for x, _ in data)
    leading = np.frombuffer(good, "<f8", rows * cols, at + 48).reshape(rows, cols)
    assert np.array_equal(leading, leading.T)
    assert good[g["known_final"]:g["changes"]] == struct.pack("<Q", 0)
    assert recalign._recalign.DenoisingRefinement.from_bytes(good).to_bytes() == good
    # resumed from its bytes in the first refinement pass, the rest gives the bits of the run that
    # did not stop: its second restart and the analyses read the carried Rᵀ Bd R
    again = recalign.VerifiedDenoising.from_bytes(st.to_bytes())
    for s in (st, again):
        for p in range(2):
            if p:
                s.next_pass()
            for xb, yb in data:
                s.update(xb, yb)
    assert again.to_bytes() == st.to_bytes()
    assert again.report().to_dict() == st.report().to_dict()
    for what, edit in (("rows", lambda b: b[:at + 32] + struct.pack("<Q", carried + 1) + b[at + 40:]),
                       ("n", lambda b: b[:at + 24] + struct.pack("<Q", n + 1) + b[at + 32:])):
        bad = edit(good)
        with pytest.raises(recalign.FileError, match="do not fit|truncated") as e:
            recalign._recalign.DenoisingRefinement.from_bytes(bad, "carried")
        assert e.value.file == "carried" and 0 < e.value.offset <= len(bad), what
    # and the history: the one restart so far, which compared nothing (inf) and so estimated nothing
    r = recalign._recalign.DenoisingRefinement.from_bytes(good)
    assert r.passes == 1 and list(r.changes) == [math.inf] and list(r.estimates) == [math.inf]
    old = struct.pack("<Q", 2) + good[8:g["known_next"]]
    empty = recalign._recalign.DenoisingRefinement.from_bytes(old, "version 2")
    assert empty.to_bytes() == struct.pack("<Q", 3) + old[8:] + struct.pack("<QQ", 0, 0) + \
        struct.pack("<Qd", 1, math.nan) * 2  # the restart before as NaN: not known
    assert np.isnan(empty.changes).all() and len(empty.changes) == 1


def test_refinement_close_refused_changes_nothing():
    """DenoisingRefinement.close is all or nothing (strong guarantee): a pass it refuses (blocks of
    other rows, an accumulator that did not read fresh(), a sketch whose U does not start the
    basis) leaves both the state and the accumulator as they were (before the fix they were spent,
    V and Sxx V moved out, before the restart's own checks refused)."""
    data = synthetic_batches()
    noise = "mask:patch=2x2,ratio=0.5"
    st = recalign.VerifiedDenoising(192, 5, [noise], shape=(8, 8, 3), rank=20, passes=1, refine=2)
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
    st = recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5"], shape=(8, 8, 3), rank=20, passes=1, refine=2)
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
    # Loading a state whose pass is being read spills it too: without the directory that is an
    # error of the directory, not of the bytes (no offset), raised as it is.
    monkeypatch.setenv("TMPDIR", missing)
    with pytest.raises(recalign.FileError, match="no-such-dir") as e:
        recalign.VerifiedDenoising.from_bytes(st.to_bytes())
    assert e.value.offset is None and "byte offset" not in str(e.value), str(e.value)


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


def test_save_to_a_pipe_or_device_writes_in_place(tmp_path):
    """save() to an existing FIFO or device (a consumer's FIFO, /dev/null) writes it in place:
    renaming a temporary onto it, as before, replaced the node itself (as root, /dev/null)."""
    import os
    import stat
    import threading
    rng = np.random.default_rng(3)
    state = recalign.VerifiedSpectrum(16, rank=2)
    state.update(rng.normal(size=(40, 16)))
    fifo = tmp_path / "state.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    state.save(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced by a regular file"
    reader.join(timeout=60)
    assert got == [state.to_bytes()]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["state.fifo"], "a temporary file was left"
    null = tmp_path / "null"  # a null device node of our own: a regression replaces it, not /dev/null
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        return
    state.save(null)
    assert stat.S_ISCHR(os.stat(null).st_mode)


def test_save_through_a_symbolic_link_keeps_the_link(tmp_path):
    """save() to a symbolic link replaces the file it names (atomically, the temporary beside
    that file) and leaves the link a link; it used to replace the link with a regular file."""
    import os
    rng = np.random.default_rng(4)
    state = recalign.VerifiedSpectrum(16, rank=2)
    state.update(rng.normal(size=(40, 16)))
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "s.ckpt").write_bytes(b"old")
    link = tmp_path / "s.ckpt"
    link.symlink_to("real/s.ckpt")
    state.save(link)
    assert link.is_symlink()
    assert (tmp_path / "real" / "s.ckpt").read_bytes() == state.to_bytes()
    assert recalign.VerifiedSpectrum.load(link).to_bytes() == state.to_bytes()
    assert sorted(os.listdir(tmp_path / "real")) == ["s.ckpt"], "a temporary file was left"
