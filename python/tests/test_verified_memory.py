"""What verified states (recalign.verified) hold in memory beyond themselves. Checkpoints are
written and read in parts: save() hands each part's bytes to the file as the part makes them, and
load() reads each part where it lies, so a checkpoint holds no copy of the state in memory beside
it (at 224x224x3 a save used to build the whole state as bytes three times over: 6.2 GB peak for a
2.1 GB checkpoint). And the first verification basis is built in place, as the CLI's (3.6 GB
peak at 224x224x3 before, 2.4 GB after, for the README's two noises). And the sketch is finished
once, with only what its analysis reads (VerifiedAlignment: no Sxy)."""
import math
import os
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest

import recalign
from recalign import _recalign


def _in_refinement_pass():
    """A VerifiedDenoising (a 2x2 mask and dropout, refine=2) standing in its first refinement
    pass, two batches read: the pass's D x K matrices are in spill files. Its own rows (not
    _verified_data's shared generator, whose draws the other files' tests count on)."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 5, 240)
    x = rng.integers(0, 256, size=(240, 192), dtype=np.uint8)
    x[:, :4] = (y[:, None] * 50).astype(np.uint8)
    data = [(x[i:i + 60], y[i:i + 60]) for i in range(0, 240, 60)]
    st = recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5", "dropout:ratio=0.25"], shape=(8, 8, 3),
                                    rank=20, passes=1, refine=2)
    while st.pass_index < 2:
        for xb, yb in data:
            st.update(xb, yb)
        st.next_pass()
    for xb, yb in data[:2]:
        st.update(xb, yb)
    assert st._refinement is not None and st._refinement.reading
    return data, st


def _parts(data):
    """(offset, length) of each part of a verified state's bytes, the carried part last."""
    (size,) = struct.unpack_from("<I", data, 12)
    at, out = 16 + size, []
    while at < len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        out.append((at + 8, length))
        at += 8 + length
    assert at == len(data)
    return out


def test_save_writes_to_bytes_part_by_part_and_load_reads_them_where_they_lie(tmp_path):
    data, st = _in_refinement_pass()
    want = st.to_bytes()
    ck = tmp_path / "d.ckpt"
    st.save(ck)
    assert ck.read_bytes() == want
    loaded = recalign.VerifiedDenoising.load(ck)
    assert loaded.to_bytes() == want
    assert recalign.VerifiedDenoising.from_bytes(want).to_bytes() == want
    # every part's length is counted without its bytes, the carried refinement's too
    parts = [p for p in st._parts() + [st._carried()] if p is not None]
    assert [p._framed_size for p in parts] == [len(p.to_bytes()) for p in parts]
    # and the loaded state reads on to the same end as the one that was saved
    for s in (st, loaded):
        for xb, yb in data[2:]:
            s.update(xb, yb)
        while not s.finished:
            s.next_pass()
            for xb, yb in data:
                s.update(xb, yb)
    assert loaded.to_bytes() == st.to_bytes()
    assert loaded.report().to_dict() == st.report().to_dict()


def test_a_bad_part_is_named_at_its_offset_in_the_file(tmp_path):
    """Each part is validated where it lies: a corrupt byte inside a part is a FileError naming the
    file and an offset inside that part (load used to name "<bytes>" and the part's own offsets)."""
    _, st = _in_refinement_pass()
    good = st.to_bytes()
    parts = _parts(good)
    ck = str(tmp_path / "bad.ckpt")
    for i in (0, 2, len(parts) - 2, len(parts) - 1):  # the sketch, the blocks, the verification, the refinement
        at, length = parts[i]
        assert length > 64
        bad = bytearray(good)
        if i == len(parts) - 1:  # the refinement has no checksum: a matrix of another shape
            bad[at + 32:at + 40] = struct.pack("<Q", 10 ** 12)  # the curves' length: more than there is
        else:
            bad[at + length // 2] ^= 0xFF  # inside the payload: its checksum fails
        with open(ck, "wb") as f:
            f.write(bad)
        with pytest.raises(recalign.FileError) as e:
            recalign.VerifiedDenoising.load(ck)
        assert e.value.file == ck and at <= e.value.offset <= at + length, (i, str(e.value))
    # a file cut inside the refinement's matrices
    at, length = parts[-1]
    with open(ck, "wb") as f:
        f.write(good[:at + length // 2])
    with pytest.raises(recalign.FileError, match="truncated") as e:
        recalign.VerifiedDenoising.load(ck)
    assert e.value.file == ck and e.value.offset == at


def test_load_from_a_pipe_reads_it_whole(tmp_path):
    _, st = _in_refinement_pass()
    fifo = tmp_path / "state.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: open(fifo, "wb").write(st.to_bytes()), daemon=True)
    writer.start()
    assert recalign.VerifiedDenoising.load(fifo).to_bytes() == st.to_bytes()
    writer.join(timeout=60)


def test_a_write_that_fails_midway_leaves_the_old_checkpoint_and_the_state(tmp_path):
    _, st = _in_refinement_pass()
    ck = tmp_path / "d.ckpt"
    ck.write_bytes(b"the old checkpoint")
    want = st.to_bytes()
    for part in [p for p in st._parts() + [st._carried()] if p is not None]:
        calls, size = [], part._framed_size  # (not asked inside write: _write_to holds the part's lock)

        def failing(piece):  # at the second piece, or the last (a parked sketch: one 4 MiB block here)
            calls.append(len(piece))
            if len(calls) == 2 or sum(calls) == size:
                raise OSError(28, "No space left on device")
        with pytest.raises(OSError, match="No space left"):
            part._write_to(failing)
    original = st._write

    def write_then_fail(write):
        write(b"x" * 100)
        raise OSError(28, "No space left on device")
    st._write = write_then_fail
    with pytest.raises(OSError, match="No space left"):
        st.save(ck)
    st._write = original
    assert ck.read_bytes() == b"the old checkpoint"
    assert os.listdir(tmp_path) == ["d.ckpt"], "a temporary file was left"
    assert st.to_bytes() == want


# Each measuring script's own peak RSS in bytes: VmHWM, whose count starts at the exec. ru_maxrss
# starts at the parent's (Linux carries it across exec): from a pytest that has grown past the
# script's own peak, every growth read 0 and a bound could not fail (the fiftieth session).
_PEAK = r"""
def peak():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) * 1024
"""


_MEASURE = _PEAK + r"""
import os, sys, numpy as np, recalign
path, what = sys.argv[1], sys.argv[2]
if what == "save":
    rng = np.random.default_rng(0)
    st = recalign.VerifiedDenoising(64 * 64 * 3, 5, ["mask:patch=16x16,ratio=0.5"], shape=(64, 64, 3), rank=8,
                                    passes=1, refine=1, memory=float("inf"))
    for _ in range(2):
        st.update(rng.integers(0, 256, size=(20, 64 * 64 * 3), dtype=np.uint8), rng.integers(0, 5, 20))
    before = peak()
    st.save(path)
elif what == "load":
    before = peak()
    st = recalign.VerifiedDenoising.load(path)
else:
    data = open(path, "rb").read()
    before = peak()
    st = recalign.VerifiedDenoising.from_bytes(data)
print(peak() - before, os.path.getsize(path))
"""


def test_save_and_load_hold_no_copy_of_the_state(tmp_path):
    """Peak RSS of a save and of a load, each in a process of its own (the patch blocks of a 16x16
    mask at 64x64x3, their upper triangles, make up most of the state's 41 MB): a save adds a small fraction of the file
    to the peak (it used to add three times the state), a load the state itself and little more (it
    used to read the whole file, then copy each part out of it); from_bytes of the file's bytes
    likewise the state alone (it copied each part out of them)."""
    path = str(tmp_path / "big.ckpt")
    env = dict(os.environ)
    runs = {}
    for what in ("save", "load", "from_bytes"):
        out = subprocess.run([sys.executable, "-c", _MEASURE, path, what], check=True, capture_output=True, text=True,
                             env=env).stdout.split()
        runs[what] = int(out[0]), int(out[1])
    grew, size = runs["save"]
    assert size > 35e6
    assert grew < 0.25 * size, runs
    for what in ("load", "from_bytes"):  # from_bytes reads each part in place too (it copied each out)
        grew, size = runs[what]
        assert grew < 1.3 * size, runs


_BASIS = _PEAK + r"""
import numpy as np, recalign
rng = np.random.default_rng(0)
d = 64 * 64 * 3
st = recalign.VerifiedDenoising(d, 5, ["mask:patch=8x8,ratio=0.5", "gaussian:sigma=0.1"], shape=(64, 64, 3), rank=300,
                                passes=1, refine=0, memory=float("inf"))
for _ in range(8):
    st.update(rng.normal(size=(50, d)), rng.integers(0, 5, 50))
before = peak()
st.next_pass()  # the sketch's subspaces found, the verification basis built, its accumulator made
grew = peak() - before
print(grew / (d * st._verify.k * 8))
"""


def test_the_verification_basis_is_built_without_copies():
    """Peak RSS added by the next_pass() that starts the verification, in D x K matrices (K = 600
    here): the extension works in place and the sketch's own state is parked before the basis is
    built, as the CLI's (3.16 and 3.22 measured). Parked after the accumulator was made, 3.74;
    extending out of place, with the Gaussian noise's U extending U again, 6.7. An accumulator
    whose Sxx V waited for its first batch measured the same 3.21 (the forty-eighth session): the
    zeroed Sxx V is not what the peak holds."""
    out = subprocess.run([sys.executable, "-c", _BASIS], check=True, capture_output=True, text=True)
    assert float(out.stdout) < 3.45, out.stdout


_FINISH = _PEAK + r"""
import sys, numpy as np, recalign
rng = np.random.default_rng(0)
d, classes = 64 * 64 * 3, 500
kind = getattr(recalign, sys.argv[1])
extra = {"k": 4, "lambdas": [1.0]} if sys.argv[1] == "VerifiedTradeoff" else {}
st = kind(d, classes, rank=8, passes=1, memory=float("inf"), **extra)
for i in range(4):
    st.update(rng.integers(0, 256, size=(250, d), dtype=np.uint8), np.arange(250 * i, 250 * (i + 1)) % classes)
before = peak()
st.next_pass()  # the sketch finished, the verification basis built
print((peak() - before) / (8 * d * classes))
"""


def test_an_alignment_finishes_its_sketch_without_sxy():
    """Peak RSS added by the next_pass() that finishes the sketch, in C x D matrices (500 classes at
    64x64x3: 49 MB each). VerifiedAlignment reads its labels in the verification pass (Vᵀ Sxy), so
    its sketch is finished without Sxy, as the CLI's (with 2,000 classes: 0.01 C x D against 2.18
    before, Sxy and a copy). VerifiedTradeoff's basis orth([U, Sxy]) reads it and is C columns wider
    than the rank: the control that the measurement sees such arrays (7.4 C x D)."""
    grew = {}
    for kind in ("VerifiedAlignment", "VerifiedTradeoff"):
        out = subprocess.run([sys.executable, "-c", _FINISH, kind], check=True, capture_output=True, text=True)
        grew[kind] = float(out.stdout)
    assert grew["VerifiedAlignment"] < 0.25 and grew["VerifiedTradeoff"] > 0.75, grew


def test_a_loaded_alignment_finishes_its_sketch_as_the_run_did():
    """A VerifiedAlignment loaded past its sketch passes finishes the sketch as it is read, without
    Sxy as the run did (the load has its own finish: _verified_io); the report is the run's."""
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 256, size=(300, 192), dtype=np.uint8), rng.integers(0, 7, 300)
    st = recalign.VerifiedAlignment(192, 7, rank=8, passes=1, memory=float("inf"))
    st.update(x, y)
    st.next_pass()
    st.update(x[:100], y[:100])
    loaded = recalign.VerifiedAlignment.from_bytes(st.to_bytes())
    assert st.sketch().cross is None and loaded.sketch().cross is None
    for s in (st, loaded):
        s.update(x[100:], y[100:])
    assert loaded.report().to_dict() == st.report().to_dict()


def test_merge_compares_earlier_passes_by_digest():
    """Shards of a later pass must start from one merged state: merge() compares the parts of the
    earlier passes (and what the state carries) through a digest made as each part writes its
    bytes, no longer through to_bytes() of both, and still refuses parts that differ."""
    data, st = _in_refinement_pass()
    twin = st.copy()
    twin.merge(st.copy())  # the same earlier passes: merged
    other = recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5", "dropout:ratio=0.25"], shape=(8, 8, 3),
                                       rank=20, passes=1, refine=2)
    while other.pass_index < 2:  # other rows in the earlier passes
        for xb, yb in data[::-1]:
            other.update(xb[::-1], yb[::-1])
        other.next_pass()
    before = st.to_bytes()
    with pytest.raises(ValueError, match="what the states carry from earlier passes differs"):
        st.merge(other)
    # the same carried state, another sketch
    swapped = st.copy()
    swapped._sketch = other._sketch.copy()
    with pytest.raises(ValueError, match="the NystromSketch of earlier passes differs"):
        st.merge(swapped)
    assert st.to_bytes() == before


_FINISHED = _PEAK + r"""
import os, sys, numpy as np, recalign
rng = np.random.default_rng(0)
d = 64 * 64 * 3
st = recalign.VerifiedDenoising(d, 5, ["mask:patch=8x8,ratio=0.5"], shape=(64, 64, 3), rank=300, passes=1, refine=1,
                                memory=float("inf"))
batches = [(rng.normal(size=(50, d)), rng.integers(0, 5, 50)) for _ in range(8)]
while True:
    for x, y in batches:
        st.update(x, y)
    if st.finished:
        break
    st.next_pass()
st.report()  # the last pass joined: the refinement's result statistics (D x K) in memory
before = peak()
st.save(sys.argv[1])
print(peak() - before, os.path.getsize(sys.argv[1]))
"""


def test_saving_a_finished_refinement_copies_nothing(tmp_path):
    """The refinement's bytes named its statistics through `c ? stats : restricted_statistics()`,
    which copied them (D x K matrices; 0.9 GB at 224x224x3) each time they were counted and
    written; the CLI's checkpoint did the same."""
    path = str(tmp_path / "finished.ckpt")
    out = subprocess.run([sys.executable, "-c", _FINISHED, path], check=True, capture_output=True, text=True)
    grew, size = map(int, out.stdout.split())
    assert size > 100e6 and grew < 0.1 * size, (grew, size)


class _CountingSketch:
    """A sketch part that counts its finish() calls and is otherwise the part itself."""

    def __init__(self, part):
        self._part, self.finished = part, 0

    def finish(self, **options):
        self.finished += 1
        return self._part.finish(**options)

    def __getattr__(self, name):
        return getattr(self._part, name)


def test_the_sketch_is_finished_once_when_its_passes_end():
    """The restarts and the report share one finished sketch, as the CLI's (at 224x224x3 and rank
    256 each finish took 2.5-3.3 s, and Python finished it again at every restart); while the
    sketch passes go on, sketch() is finished as it stands (more rows change it)."""
    data, _ = _in_refinement_pass()
    reference = recalign.verified_denoise(data, ["mask:patch=2x2,ratio=0.5", "dropout:ratio=0.25"], 5,
                                          shape=(8, 8, 3), rank=20, passes=2, refine=2)
    st = recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5", "dropout:ratio=0.25"], shape=(8, 8, 3),
                                    rank=20, passes=2, refine=2)
    counting = st._sketch = _CountingSketch(st._sketch)
    for xb, yb in data[:2]:
        st.update(xb, yb)
    early = st.sketch().spectrum.eigenvalues
    for xb, yb in data[2:]:
        st.update(xb, yb)
    assert not np.array_equal(st.sketch().spectrum.eigenvalues, early)  # not kept from before the rows
    st.next_pass()
    counting.finished = 0
    while not st.finished:
        for xb, yb in data:
            st.update(xb, yb)
        if not st.finished:
            st.next_pass()
    result = st.report()
    assert st.pass_index >= 3 and counting.finished == 1  # the first basis; the restarts and report share it
    assert result.to_dict() == reference.to_dict()


def test_a_failed_start_of_the_verification_keeps_the_sketch_open():
    """next_pass() into the verification finishes the sketch once; if the basis then fails, the
    state stays in the sketch's last pass (strong guarantee: the same bytes, the sketch parked
    before the basis read back from its file) and sketch() follows later rows."""
    data, _ = _in_refinement_pass()
    st = recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5"], shape=(8, 8, 3), rank=20, passes=1)
    for xb, yb in data[:3]:
        st.update(xb, yb)
    saved = st.to_bytes()

    def fail(*args):
        from recalign._verified_io import _ParkedPart
        assert isinstance(st._sketch, _ParkedPart)  # parked before the basis, as the CLI's
        raise MemoryError("no room for the basis")
    st._basis = fail
    with pytest.raises(MemoryError):
        st.next_pass()
    del st._basis
    assert st.pass_index == 0 and st._verify is None and st.to_bytes() == saved
    before = st.sketch().spectrum.eigenvalues
    st.update(*data[3])
    assert not np.array_equal(st.sketch().spectrum.eigenvalues, before)
    st.next_pass()
    assert st.pass_index == 1


def _alignment_passes(st, data, upto):
    while st.pass_index < upto:
        for xb, yb in data:
            st.update(xb, yb)
        st.next_pass()


def test_the_sketch_waits_on_disk_through_the_verification(tmp_path, monkeypatch):
    """Once the verification begins the sketch reads no more rows: it is parked in an unlinked file
    in $TMPDIR, as the CLI's (a D x (rank + p) state: 0.33 GB at 224x224x3 and rank 256), with room
    for it there, and kept in memory without; the bytes, the copies, merges, checkpoints and the
    report are the same either way."""
    from recalign._verified_io import _ParkedPart
    data, _ = _in_refinement_pass()
    states = []
    for tmpdir in (tmp_path, tmp_path / "not a directory"):
        monkeypatch.setenv("TMPDIR", str(tmpdir))
        st = recalign.VerifiedAlignment(192, 5, rank=20, passes=2)
        _alignment_passes(st, data, 2)
        states.append(st)
    parked, kept = states
    assert isinstance(parked._sketch, _ParkedPart) and not isinstance(kept._sketch, _ParkedPart)
    assert parked.to_bytes() == kept.to_bytes() and parked.sketch_passes == kept.sketch_passes == 2
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    loaded = recalign.VerifiedAlignment.from_bytes(kept.to_bytes())
    assert isinstance(loaded._sketch, _ParkedPart)  # a loaded state in its verification parks it again
    assert loaded.sketch().spectrum.eigenvalues.tolist() == kept.sketch().spectrum.eigenvalues.tolist()
    merged = []
    for shards in ([parked.copy(), loaded.copy()], [kept.copy(), kept.copy()]):  # parked, then in memory
        for shard, (xb, yb) in zip(shards * 2, data):
            shard.update(xb, yb)
        shards[0].merge(shards[1])
        merged.append(shards[0])
    assert merged[0].to_bytes() == merged[1].to_bytes()
    for st in (parked, kept):
        for xb, yb in data:
            st.update(xb, yb)
    assert parked.to_bytes() == kept.to_bytes()
    assert parked.report().to_dict() == kept.report().to_dict()
    assert merged[0].report().to_dict() == merged[1].report().to_dict()


def test_parking_leaves_room_for_the_refinement(tmp_path, monkeypatch):
    """The sketch is parked only beside what the refinement passes keep in $TMPDIR: a directory with
    room for those alone keeps the sketch in memory."""
    from recalign._verified_io import _ParkedPart
    data, _ = _in_refinement_pass()
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    st = recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5"], shape=(8, 8, 3), rank=20, passes=1,
                                    refine=2)
    spill, sketch = st._spill(), st._sketch._framed_size
    for xb, yb in data:
        st.update(xb, yb)
    seen = []

    def shortfall(directory, size):
        seen.append(size)
        return "too little room" if size > spill else ""
    monkeypatch.setattr(_recalign, "spill_shortfall", shortfall)
    st.next_pass()
    assert seen[-1] == sketch + math.ceil(spill) and not isinstance(st._sketch, _ParkedPart)


_RESUME = _PEAK + r"""
import sys, numpy as np, recalign
path, what, d = sys.argv[1], sys.argv[2], 112 * 112 * 3
if what == "run":
    st = recalign.VerifiedDenoising(d, 5, ["mask:patch=8x8,ratio=0.5"], shape=(112, 112, 3), rank=64, passes=1,
                                    refine=0, memory=float("inf"))
    while True:
        rng = np.random.default_rng(0)
        for _ in range(6):
            st.update(rng.integers(0, 256, size=(100, d), dtype=np.uint8), rng.integers(0, 5, 100))
        if st.finished:
            break
        st.next_pass()
    st.save(path)
else:
    st = recalign.VerifiedDenoising.load(path)
result = st.report().to_dict()
print(peak() // 1024, repr(result))
"""


def test_a_loaded_state_holds_no_more_than_the_run(tmp_path):
    """A state loaded past its sketch passes finishes the sketch as it reads it, while the sketch
    and the class statistics are all it holds, then parks it, as the run did when its verification
    began (and the CLI's resume). Before, the finish came at the next restart or at the report, on
    top of the verification pass's state: here a finished state, loaded and reported, peaked 38 MB
    above the run that saved it (304,632 against 266,400 KiB; 273,472 after). Peaks in processes of
    their own (VmHWM, KiB); the same report either way."""
    path = str(tmp_path / "finished.ckpt")
    runs = [subprocess.run([sys.executable, "-c", _RESUME, path, what], check=True, capture_output=True,
                           text=True).stdout.split(" ", 1) for what in ("run", "load")]
    (run, result), (loaded, again) = runs
    assert again == result
    assert int(loaded) - int(run) <= 16 * 1024, f"{loaded} KiB loaded, {run} KiB for the run"


def _to_the_end(st, data, done):
    """Reads the rest of st's current pass (`done` batches read) and its passes left; the report."""
    for xb, yb in data[done:]:
        st.update(xb, yb)
    while not st.finished:
        st.next_pass()
        for xb, yb in data:
            st.update(xb, yb)
    return st.report().to_dict()


def test_a_loaded_state_finishes_its_sketch_once_and_its_copies_share_it(monkeypatch):
    """A state loaded in its refinement passes finishes the sketch as it is read, and only then:
    its restarts and report use that one, and a copy shares it (nothing changes it). The report is
    the run's."""
    data, st = _in_refinement_pass()
    saved = st.to_bytes()
    reference = _to_the_end(st, data, 2)
    calls = []
    finish = _recalign.NystromSketch.finish
    monkeypatch.setattr(_recalign.NystromSketch, "finish", lambda part, **o: calls.append(o) or finish(part, **o))
    loaded = recalign.VerifiedDenoising.from_bytes(saved)
    assert len(calls) == 1
    twin = loaded.copy()
    assert len(calls) == 1 and twin.sketch() is loaded.sketch()
    assert _to_the_end(loaded, data, 2) == _to_the_end(twin, data, 2) == reference
    assert len(calls) == 1


def test_a_close_that_took_the_accumulator_and_fails_reads_it_back(tmp_path, monkeypatch):
    """VerifiedDenoising's close() takes the pass accumulator's V and Sxx V instead of copying them
    (as the CLI's) once the accumulator's bytes wait in $TMPDIR: a close that then fails midway
    (here $TMPDIR goes missing right after the accumulator is parked: the restart's own spill file
    cannot be made) reads the accumulator back from its file, so the state's bytes are as before
    and next_pass() gives the state of a run that never failed, in both kinds of close."""
    from recalign import verified as _verified  # where _lent parks the accumulator
    data, _ = _in_refinement_pass()
    spill, missing = tmp_path / "spill", str(tmp_path / "no-such-dir")
    spill.mkdir()
    monkeypatch.setenv("TMPDIR", str(spill))
    parked = _verified._parked

    def park_then_lose_the_directory(part, size):
        out = parked(part, size)
        if isinstance(part, recalign._recalign.RestrictedMoments):
            assert out is not part  # parked: close() takes the accumulator's matrices
            monkeypatch.setenv("TMPDIR", missing)
        return out
    st = recalign.VerifiedDenoising(192, 5, ["mask:patch=2x2,ratio=0.5"], shape=(8, 8, 3), rank=20, passes=1, refine=2)
    for p in range(3):  # the sketch pass, the verification pass, the first refinement pass
        for xb, yb in data:
            st.update(xb, yb)
        if p == 0:
            st.next_pass()
            continue
        want = st.copy()
        want.next_pass()
        before, accumulator = st.to_bytes(), st._verify
        monkeypatch.setattr(_verified, "_parked", park_then_lose_the_directory)
        with pytest.raises(recalign.FileError, match="no-such-dir"):
            st.next_pass()
        monkeypatch.setattr(_verified, "_parked", parked)
        monkeypatch.setenv("TMPDIR", str(spill))
        assert st._verify is not accumulator and st.to_bytes() == before, p  # read back, the same bytes
        st.next_pass()
        assert st.to_bytes() == want.to_bytes(), p


def test_the_report_takes_the_pass_statistics_without_a_copy(tmp_path, monkeypatch):
    """report() (and the trade-off's excess estimate) take the last pass's statistics from the
    accumulator, its V and Sxx V moved instead of copied, as the CLI's take_verified, while the
    accumulator's bytes wait in $TMPDIR, read back after: no finish() copy, the same report as the
    copy's (made here with $TMPDIR missing), the state's bytes as they were and report() the same
    when asked again. At 224x224x3 (40 rows, rank 100, refine 3) verified_tradeoff peaked at
    1,538,652 KiB with the copies, 1,262,604 KiB without (/usr/bin/time)."""
    data, _ = _in_refinement_pass()
    rows = [x for x, _ in data]
    made = [lambda: recalign.track(data, recalign.VerifiedTradeoff(192, 5, [0, 1], 4, rank=20, refine=2)),
            lambda: recalign.track(data, recalign.VerifiedAlignment(192, 5, rank=20, passes=2)),
            lambda: recalign.track(rows, recalign.VerifiedSpectrum(192, rank=20)),
            # A Monte-Carlo noise: full verification passes (incremental ones join the last pass to
            # what they carry, in place, as the CLI's, and report from that: no accumulator left).
            lambda: recalign.track(data, recalign.VerifiedDenoising(192, 5, ["dropout:ratio=0.25,draws=4,seed=9"],
                                                                    shape=(8, 8, 3), rank=20))]
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))  # no room: the copy
    copied = [make().report().to_dict() for make in made]
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    states = [make() for make in made]
    finish = _recalign.RestrictedMoments.finish

    def no_copy(accumulator, *args, **options):
        raise AssertionError(f"report() copied {accumulator!r}")
    monkeypatch.setattr(_recalign.RestrictedMoments, "finish", no_copy)
    for st, want in zip(states, copied):
        before = st.to_bytes()
        assert st.report().to_dict() == want, type(st).__name__
        assert st.to_bytes() == before and st.report().to_dict() == want, type(st).__name__
    monkeypatch.setattr(_recalign.RestrictedMoments, "finish", finish)


def test_take_moves_the_statistics_out_and_leaves_the_accumulator_spent():
    """RestrictedMoments.take(): finish()'s statistics to the bit, V and Sxx V moved instead of
    copied; the accumulator is spent after, and update, merge and finish say so (RuntimeError)."""
    rng = np.random.default_rng(11)
    basis = np.linalg.qr(rng.normal(size=(30, 4)))[0]
    acc = recalign.RestrictedMoments(basis, 3)
    acc.update(rng.normal(size=(50, 30)), rng.integers(0, 3, 50))
    want = acc.finish("centered")
    got = acc.take("centered")
    for name in ("basis", "sv", "vsv"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    fresh = recalign.RestrictedMoments(basis, 3)
    for spend in (lambda: acc.update(rng.normal(size=(5, 30)), rng.integers(0, 3, 5)), lambda: acc.finish(),
                  lambda: acc.take(), lambda: fresh.merge(acc), lambda: acc.merge(fresh)):
        with pytest.raises(RuntimeError, match="spent"):
            spend()
