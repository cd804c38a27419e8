"""The bad-input policy (README "Bad-input policy"), Python surface: every row of the table.

Bad arrays and incompatible merges raise ValueError naming the row / column / both values;
the object's checkpoint bytes are identical afterwards and it continues to the same bytes as
an object that never saw the bad input. Bad checkpoint bytes, files and pickles raise
recalign.FileError (an OSError) with .file and .offset."""
import pickle
import struct
import zlib

import numpy as np
import pytest

import recalign

D, C, N, B = 12, 3, 96, 16
HALF = N // 2
RNG = np.random.default_rng(5)
X = RNG.normal(size=(N, D)) * (1.0 + np.arange(D)) + 2.0
Y = RNG.integers(0, C, size=N).astype(np.int64)
T = RNG.normal(size=(N, 2))
MC_SPEC = "dropout:ratio=0.25,draws=4,seed=9"
SHAPE = (3, 4, 1)


def feed(obj, lo, hi, kind):
    for r in range(lo, hi, B):
        if kind == "labels":
            obj.update(X[r:r + B], Y[r:r + B], first_row=r)
        elif kind == "dense":
            obj.update(X[r:r + B], T[r:r + B], first_row=r)
        else:
            obj.update(X[r:r + B], first_row=r)
    return obj


# Each kind of state: a constructor, how it is fed, and how it is rebuilt from bytes.
STATES = {
    "moments": (lambda: recalign.MomentAccumulator(D, classes=C), "labels", recalign.MomentAccumulator.from_bytes),
    "moments_dense": (lambda: recalign.MomentAccumulator(D, classes=2, targets="dense"), "dense",
                      recalign.MomentAccumulator.from_bytes),
    "frequent_directions": (lambda: recalign.FrequentDirections(D, 4), "none", recalign.FrequentDirections.from_bytes),
    "nystrom": (lambda: recalign.NystromSketch(D, 3, oversampling=2, probes=2, seed=5), "none",
                recalign.NystromSketch.from_bytes),
    "tracker": (lambda: recalign.AlignmentTracker(D, C, shape=SHAPE, noises=["gaussian:sigma=0.5", MC_SPEC]), "labels",
                recalign.AlignmentTracker.from_bytes),
    "monte_carlo": (lambda: recalign.MonteCarloNoise(D, MC_SPEC), "none",
                    lambda b: recalign.MonteCarloNoise.from_bytes(b, MC_SPEC)),
    "monte_carlo_sketch": (lambda: recalign.MonteCarloSketch(recalign.gaussian_test_matrix(D, 5, 9), MC_SPEC), "none",
                           lambda b: recalign.MonteCarloSketch.from_bytes(b, MC_SPEC)),
}


def make(name):
    ctor, kind, _ = STATES[name]
    return feed(ctor(), 0, HALF, kind)


def refused_then_continues(name, bad, match, error=ValueError, good=None):
    """bad(obj) raises `error` matching every pattern of `match`; the bytes are unchanged and the
    object continues bit-identically to one that never saw the bad input."""
    _, kind, _ = STATES[name]
    obj = make(name)
    before = obj.to_bytes()
    with pytest.raises(error) as e:
        bad(obj)
    for m in ([match] if isinstance(match, str) else match):
        assert m in str(e.value), f"{str(e.value)!r} does not mention {m!r}"
    assert obj.to_bytes() == before
    good = good or (lambda o: feed(o, HALF, N, kind))
    good(obj)
    reference = make(name)
    good(reference)
    assert obj.to_bytes() == reference.to_bytes()
    return e.value


def targets_for(name, lo, hi):
    _, kind, _ = STATES[name]
    return {"labels": Y[lo:hi], "dense": T[lo:hi], "none": None}[kind]


def update(obj, name, x, y=None, first_row=HALF):
    _, kind, _ = STATES[name]
    if kind == "none":
        return obj.update(x, first_row=first_row)
    return obj.update(x, targets_for(name, HALF, HALF + len(x)) if y is None else y, first_row=first_row)


# ---- wrong width, NaN/Inf, wrong dtype: every state -------------------------------------------


@pytest.mark.parametrize("name", list(STATES))
def test_negative_first_row(name):
    """first_row=-1 is a ValueError naming first_row and the value (it was pybind11's TypeError
    listing the whole call, the batch's values with it)."""
    x = X[HALF:HALF + B]
    e = refused_then_continues(name, lambda o: update(o, name, x, first_row=-1), ["first_row must be >= 0", "got -1"])
    assert "array" not in str(e) and len(str(e)) < 200


@pytest.mark.parametrize("name", list(STATES))
def test_none_in_an_object_batch(name):
    """A None among the values is named as None at its row and column (NumPy's conversion made it a
    NaN, reported as "value nan")."""
    x = X[HALF:HALF + B].astype(object)
    x[1, 3] = None
    refused_then_continues(name, lambda o: update(o, name, x), [f"row {HALF + 1}, column 3", "value None"])


@pytest.mark.parametrize("name", list(STATES))
def test_wrong_width(name):
    x = np.ones((B, D + 1))
    refused_then_continues(name, lambda o: update(o, name, x), ["13 columns", "expected 12", f"row {HALF}"])


@pytest.mark.parametrize("name", list(STATES))
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_finite_values_name_row_and_column(name, value, dtype):
    x = X[HALF:HALF + B].astype(dtype)
    x[5, 7] = value
    refused_then_continues(name, lambda o: update(o, name, x), [f"row {HALF + 5}", "column 7", "not finite"])


@pytest.mark.parametrize("name", ["tracker", "monte_carlo"])
def test_rows_count_from_n_without_first_row(name):
    """Where first_row defaults to n (the tracker, Monte Carlo), rows count from n for every
    refusal that names a row: in the conversion of the array as in the C++ checks."""
    x = X[HALF:HALF + B].astype(object)
    x[3, 2] = "not a number"
    y = targets_for(name, HALF, HALF + B)
    bad = (lambda o: o.update(x, y)) if y is not None else (lambda o: o.update(x))
    refused_then_continues(name, bad, f"row {HALF + 3}")
    x = X[HALF:HALF + B].copy()
    x[4, 1] = np.nan
    bad = (lambda o: o.update(x, y)) if y is not None else (lambda o: o.update(x))
    refused_then_continues(name, bad, f"row {HALF + 4}")


@pytest.mark.parametrize("name", list(STATES))
@pytest.mark.parametrize("case", ["complex", "object", "object_none", "string", "numeric_string", "bytes", "datetime",
                                  "timedelta", "structured", "one_dimension"])
def test_wrong_dtype(name, case):
    x = X[HALF:HALF + B]
    if case == "complex":
        bad, match = x.astype(np.complex128), "complex"
    elif case == "object":
        bad = x.astype(object)
        bad[9, 4] = "eleven"
        match = [f"row {HALF + 9}", "convert"]
    elif case == "object_none":  # None converts to NaN: refused as a non-finite value, row and column named
        bad = x.astype(object)
        bad[9, 4] = None
        match = [f"row {HALF + 9}", "column 4"]
    elif case == "string":
        bad, match = x.astype(str), "not numeric"
    elif case == "numeric_string":  # NumPy would cast "1.5" to 1.5; the CLI refuses such a .npy too
        bad, match = np.full((B, D), "1.5"), "not numeric"
    elif case == "bytes":
        bad, match = np.full((B, D), b"1"), "not numeric"
    elif case == "datetime":
        bad, match = np.zeros((B, D), "M8[s]"), "not numeric"
    elif case == "timedelta":
        bad, match = np.zeros((B, D), "m8[s]"), "not numeric"
    elif case == "structured":
        bad, match = np.zeros((B, D), [("a", "<f8")]), "not numeric"
    else:
        bad, match = x[0], "dimension"
    refused_then_continues(name, lambda o: update(o, name, bad, y=targets_for(name, HALF, HALF + B)), match)


# ---- labels and targets ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["moments", "tracker"])
@pytest.mark.parametrize("label,dtype", [(C, np.int64), (-1, np.int32), (255, np.uint8), (-5, np.int16),
                                         (2 ** 63, np.uint64), (C, np.uint16)])
def test_label_out_of_range(name, label, dtype):
    y = Y[HALF:HALF + B].astype(dtype)
    y[6] = label
    match = [f"row {HALF + 6}"] + ([f"label {label}"] if label < 2 ** 62 else [f"class id {label} is out of range"])
    refused_then_continues(name, lambda o: o.update(X[HALF:HALF + B], y, first_row=HALF), match)


@pytest.mark.parametrize("name", ["moments", "tracker"])
@pytest.mark.parametrize("case", ["float", "complex", "string", "object"])
def test_labels_of_a_wrong_dtype(name, case):
    y = Y[HALF:HALF + B]
    bad, match = {
        "float": (y.astype(np.float64), "integer"),
        "complex": (y.astype(np.complex64), "integer"),
        "string": (y.astype(str), "integer"),
        "object": (np.array(list(y[:10]) + [None] + list(y[11:]), dtype=object), f"row {HALF + 10}"),
    }[case]
    refused_then_continues(name, lambda o: o.update(X[HALF:HALF + B], bad, first_row=HALF), match)


@pytest.mark.parametrize("name", ["moments", "moments_dense", "tracker"])
@pytest.mark.parametrize("rows", [B - 1, B + 1])
def test_target_row_count_mismatch(name, rows):
    y = targets_for(name, HALF, HALF + rows)
    match = [f"{rows}", f"{B}", f"row {HALF}"]
    refused_then_continues(name, lambda o: o.update(X[HALF:HALF + B], y, first_row=HALF), match)


def test_dense_targets_nan_and_width():
    t = T[HALF:HALF + B].copy()
    t[6, 1] = np.inf
    refused_then_continues("moments_dense", lambda o: o.update(X[HALF:HALF + B], t, first_row=HALF),
                           [f"row {HALF + 6}", "column 1"])
    refused_then_continues("moments_dense", lambda o: o.update(X[HALF:HALF + B], np.zeros((B, 3)), first_row=HALF),
                           ["3 columns", "expected 2"])


def test_missing_targets():
    refused_then_continues("moments", lambda o: o.update(X[HALF:HALF + B], first_row=HALF), "targets")


def test_a_bad_first_batch_leaves_an_empty_state_empty():
    acc = recalign.MomentAccumulator(D, classes=C)
    x = X[:B].copy()
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"row 0, column 0"):
        acc.update(x, Y[:B])
    assert acc.empty and acc.to_bytes() == recalign.MomentAccumulator(D, classes=C).to_bytes()
    feed(acc, 0, N, "labels")
    assert acc.to_bytes() == feed(recalign.MomentAccumulator(D, classes=C), 0, N, "labels").to_bytes()


# ---- checkpoints --------------------------------------------------------------------------------


def with_field(blob, offset, fmt, value):
    """A header field rewritten and the header CRC-32 (bytes 0..59, stored at 60) recomputed,
    as a newer build, another kind or another configuration would write it (lib/core/serial.cpp)."""
    b = bytearray(blob)
    struct.pack_into(fmt, b, offset, value)
    struct.pack_into("<I", b, 60, zlib.crc32(bytes(b[:60])))
    return bytes(b)


def bad_framings(good):
    version = struct.unpack_from("<I", good, 8)[0]
    kind = struct.unpack_from("<I", good, 16)[0]
    config_hash = struct.unpack_from("<Q", good, 40)[0]
    flipped = bytearray(good)
    flipped[len(good) // 2 + 32] ^= 0x10
    return [
        ("empty", b"", 0, "truncated"),
        ("truncated header", good[:40], 40, "truncated"),
        ("truncated payload", good[:-9], len(good) - 9, "truncated"),
        ("not a checkpoint", b"x" * 100, 0, "magic"),
        ("corrupt header byte", good[:25] + bytes([good[25] ^ 1]) + good[26:], 60, "header checksum"),
        ("corrupt payload byte", bytes(flipped), 64, "checksum"),
        ("newer format version", with_field(good, 8, "<I", version + 1), 8, f"version {version + 1}"),
        ("older format version", with_field(good, 8, "<I", 0), 8, "version 0"),
        ("another kind", with_field(good, 16, "<I", 1 if kind != 1 else 2), 16, "expected a"),
        ("another build's configuration hash", with_field(good, 40, "<Q", config_hash ^ 0x9E3779B97F4A7C15), 64, "hash"),
        ("absurd payload size", with_field(good, 48, "<Q", 1 << 62), 48, "absurd"),
    ]


@pytest.mark.parametrize("name", [n for n in STATES if n != "moments_dense"])
def test_every_bad_framing_is_a_file_error_with_file_and_offset(name, tmp_path):
    _, _, from_bytes = STATES[name]
    good = make(name).to_bytes()
    for what, blob, offset, match in bad_framings(good):
        with pytest.raises(recalign.FileError) as e:
            from_bytes(blob)
        assert isinstance(e.value, OSError)
        assert e.value.file == "<bytes>" and e.value.offset == offset, (what, str(e.value))
        assert str(e.value).startswith(f"<bytes>: byte offset {offset}: ") and match in str(e.value), (what, str(e.value))
        p = tmp_path / f"{name}.ckpt"
        p.write_bytes(blob)
        cls = type(make(name))
        with pytest.raises(recalign.FileError) as e:
            cls.load(str(p))
        assert e.value.file == str(p) and e.value.offset == offset, (what, str(e.value))
        assert str(e.value).startswith(f"{p}: byte offset {offset}: ")
        assert p.read_bytes() == blob  # a failed load does not touch the file


@pytest.mark.parametrize("name", [n for n in STATES if n != "moments_dense"])
def test_from_bytes_takes_any_bytes_like_object(name):
    _, _, from_bytes = STATES[name]
    good = make(name).to_bytes()
    for blob in (bytearray(good), memoryview(good), memoryview(bytearray(good))):
        assert from_bytes(blob).to_bytes() == good, type(blob)
    with pytest.raises(TypeError, match="str"):
        from_bytes(good.decode("latin-1"))


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(recalign.FileError) as e:
        recalign.MomentAccumulator.load(str(tmp_path / "missing.ckpt"))
    # no byte of it to name: offset None, and the message does not invent one
    assert e.value.file.endswith("missing.ckpt") and e.value.offset is None, e.value.offset
    assert str(e.value) == f"{e.value.file}: cannot open checkpoint for reading", str(e.value)
    with pytest.raises(recalign.FileError) as e:
        recalign.MomentAccumulator.load(str(tmp_path))
    assert e.value.offset is None and str(e.value) == f"{tmp_path}: is a directory, not a checkpoint file"


@pytest.mark.parametrize("name", [n for n in STATES if n != "moments_dense"])
def test_pickle_of_a_corrupted_blob_is_a_file_error(name):
    obj = make(name)
    data = bytearray(pickle.dumps(obj))
    at = data.find(b"RECALIGN")  # the checkpoint bytes travel verbatim in the pickle
    assert at >= 0
    size = struct.unpack_from("<Q", data, at + 48)[0]
    corrupt = bytearray(data)
    corrupt[at + 64 + size // 2] ^= 0x01
    with pytest.raises(recalign.FileError) as e:
        pickle.loads(bytes(corrupt))
    assert e.value.file == "<pickle>" and e.value.offset == 64 and "checksum" in str(e.value)
    newer = bytearray(data)
    newer[at:at + 64] = with_field(bytes(data[at:at + 64]), 8, "<I", 2)
    with pytest.raises(recalign.FileError) as e:
        pickle.loads(bytes(newer))
    assert e.value.file == "<pickle>" and e.value.offset == 8 and "version 2" in str(e.value)
    # and the object pickled is fine: the good pickle still loads to the same bytes
    assert pickle.loads(bytes(data)).to_bytes() == obj.to_bytes()


# ---- merging incompatible states ---------------------------------------------------------------

MERGES = [
    ("moments", lambda: recalign.MomentAccumulator(D + 1, classes=C), ["dimension 12 and 13"]),
    ("moments", lambda: recalign.MomentAccumulator(D), ["class ids", "none"]),
    ("moments", lambda: recalign.MomentAccumulator(D, classes=C, targets="dense"), ["class ids", "dense"]),
    ("moments", lambda: recalign.MomentAccumulator(D, classes=C + 1), ["x 3", "x 4"]),
    ("frequent_directions", lambda: recalign.FrequentDirections(D + 1, 4), ["12 and 13"]),
    ("frequent_directions", lambda: recalign.FrequentDirections(D, 5), ["ell 4 and 5"]),
    ("frequent_directions", lambda: recalign.FrequentDirections(D, 4, center="uncentered"), ["centered", "uncentered"]),
    ("nystrom", lambda: recalign.NystromSketch(D + 1, 3, oversampling=2, probes=2, seed=5), ["dimension 12 and 13"]),
    ("nystrom", lambda: recalign.NystromSketch(D, 4, oversampling=2, probes=2, seed=5), ["3 + 2", "4 + 2"]),
    ("nystrom", lambda: recalign.NystromSketch(D, 3, oversampling=2, probes=2, seed=6), ["seed 5 and 6"]),
    ("nystrom", lambda: recalign.NystromSketch(D, 3, oversampling=2, probes=2, seed=5, center="uncentered"),
     ["centered and uncentered"]),
    ("tracker", lambda: recalign.AlignmentTracker(D, C + 1, shape=SHAPE, noises=["gaussian:sigma=0.5", MC_SPEC]),
     ["classes 3", "classes 4"]),
    ("tracker", lambda: recalign.AlignmentTracker(D, C, shape=SHAPE, noises=["gaussian:sigma=0.5"]), ["draws=4"]),
    ("monte_carlo", lambda: recalign.MonteCarloNoise(D, "dropout:ratio=0.25,draws=4,seed=10"), ["seed 9", "seed 10"]),
    ("monte_carlo", lambda: recalign.MonteCarloNoise(D, "dropout:ratio=0.25,draws=8,seed=9"), ["draws 4", "draws 8"]),
]


@pytest.mark.parametrize("name,other,match", MERGES)
def test_merging_incompatible_states(name, other, match):
    incompatible = other()
    refused_then_continues(name, lambda o: o.merge(incompatible), match, good=lambda o: o.merge(make(name)))


def test_merging_a_later_nystrom_pass():
    later = make("nystrom")
    later.next_pass()
    refused_then_continues("nystrom", lambda o: o.merge(later), "pass 0 and 1", good=lambda o: o.merge(make("nystrom")))


def test_merging_another_type_is_a_type_error():
    with pytest.raises(TypeError):
        make("moments").merge(make("frequent_directions"))


@pytest.mark.parametrize("make, name", [
    (lambda: recalign.MomentAccumulator(-1), "dim"),
    (lambda: recalign.MomentAccumulator(4, classes=-2), "classes"),
    (lambda: recalign.FrequentDirections(-1, 5), "dim"),
    (lambda: recalign.FrequentDirections(10, -5), "ell"),
    (lambda: recalign.NystromSketch(10, -3), "rank"),
    (lambda: recalign.NystromSketch(10, 3, oversampling=-1), "oversampling"),
    (lambda: recalign.ClassMoments(-1, 3), "dim"),
    (lambda: recalign.RestrictedMoments(np.eye(4)[:, :2], classes=-1), "classes"),
    (lambda: recalign.AlignmentTracker(-4, 3), "dim"),
    (lambda: recalign.AlignmentTracker(4, 3, replicates=-1), "replicates"),
    (lambda: recalign.MonteCarloNoise(4, "dropout:ratio=0.5", draws=-2), "draws"),
    (lambda: recalign.PatchBlocks((4, 4), (-1, 2)), "patch height"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_negative_sizes_are_value_errors_naming_the_argument(make, name):
    """A negative size or count is a bad value, named as such (it was pybind11's TypeError of no
    matching constructor, listing the signatures)."""
    with pytest.raises(ValueError, match=f"^{name} must be >= 0, got -"):
        make()
