"""MomentAccumulator from Python: NumPy oracles, every input dtype, merge, pickle and
checkpoints, and the strong guarantee on bad arrays."""
import os
import pickle

import numpy as np
import pytest

import recalign
from conftest import batches


def direct_moments(x, labels, classes):
    """Two-pass NumPy sums (the definitions in MATH.md §1)."""
    x = x.astype(np.float64)
    y = np.eye(classes)[labels]
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    return dict(n=len(x), mean_x=mx, mean_y=my, mxx=xc.T @ xc, mxy=xc.T @ yc, myy=yc.T @ yc,
                sxx=x.T @ x, sxy=x.T @ y, syy=y.T @ y)


def rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def stream(x, labels, size=250, **kw):
    acc = recalign.MomentAccumulator(x.shape[1] if x.ndim == 2 else int(np.prod(x.shape[1:])), classes=10, **kw)
    for lo, hi in batches(x, size):
        acc.update(x[lo:hi], labels[lo:hi])
    return acc


def test_moments_equal_direct_sums_for_every_dtype(fashion):
    images, labels = fashion
    want = direct_moments(images / 255.0, labels, 10)
    for x in (images / 255.0, (images / 255.0).astype(np.float32)):
        acc = stream(x, labels)
        want_x = direct_moments(x, labels, 10)
        assert acc.n == len(x) and acc.dim == 784 and acc.classes == 10
        assert rel(acc.mean_x(), want_x["mean_x"]) < 1e-13
        assert rel(acc.sxx("centered"), want_x["mxx"]) < 1e-11
        assert rel(acc.sxx("uncentered"), want_x["sxx"]) < 1e-12
        assert rel(acc.sxy("centered"), want_x["mxy"]) < 1e-11
        assert rel(acc.syy("uncentered"), want_x["syy"]) < 1e-13
        assert rel(acc.sxx("centered"), want["mxx"]) < 1e-6  # float32 pixels vs float64
    # uint8 pixels: exact integers, so the scatter equals the integer sums to rounding
    acc = stream(images, labels)
    want_u8 = direct_moments(images, labels, 10)
    assert rel(acc.sxx("centered"), want_u8["mxx"]) < 1e-12
    assert rel(acc.mean_y(), want_u8["mean_y"]) < 1e-15
    cross = acc.cross("uncentered")
    assert cross.center == "uncentered" and cross.n == len(images)
    assert rel(cross.sxy, want_u8["sxy"]) < 1e-12


@pytest.mark.parametrize("outlier", [False, True], ids=["fashion", "outlier first row"])
def test_scatter_is_as_accurate_as_numpy_two_pass_at_any_batch_size(fashion, outlier):
    """The centered scatter of float64 rows against a long-double two-pass reference: no worse
    than NumPy's own float64 two-pass, for small batches and for one batch of every row. (The
    first batch was once scattered about its first row: the error then grew with the batch,
    350x NumPy's at 10,000 Fashion-MNIST rows, 40,000x after an outlier first row.)"""
    images, _ = fashion
    x = images.astype(np.float64) / 255.0
    if outlier:
        x[0] = 1e3
    xl = x.astype(np.longdouble)
    cl = xl - xl.mean(axis=0)
    ref = cl.T @ cl
    c = x - x.mean(axis=0)
    numpy_error = float(np.max(np.abs(c.T @ c - ref)))
    for size in (250, len(x)):
        acc = recalign.MomentAccumulator(784)
        for lo, hi in batches(x, size):
            acc.update(x[lo:hi])
        error = float(np.max(np.abs(acc.sxx("centered") - ref)))
        assert error <= 2.0 * numpy_error, (size, error, numpy_error)


def test_converted_inputs_equal_native_ones(fashion):
    images, labels = fashion
    x = images[:600] / 255.0
    base = stream(x, labels[:600]).to_bytes()
    # Fortran order, non-contiguous views, big-endian, int16 labels, nested lists, (N, 28, 28)
    assert stream(np.asfortranarray(x), labels[:600]).to_bytes() == base
    assert stream(x.astype(">f8"), labels[:600].astype(np.int16)).to_bytes() == base
    assert stream(x.reshape(600, 28, 28), labels[:600].astype(np.int64)).to_bytes() == base
    wide = np.zeros((600, 784 * 2))
    wide[:, ::2] = x
    assert stream(wide[:, ::2], labels[:600].astype(np.int32)).to_bytes() == base
    small = recalign.MomentAccumulator(3, classes=2)
    small.update([[1, 2, 3], [4, 5, 6]], [0, 1])
    ref = recalign.MomentAccumulator(3, classes=2)
    ref.update(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float64), np.array([0, 1], dtype=np.uint8))
    assert small.to_bytes() == ref.to_bytes()


def test_merge_of_shards_equals_one_pass(fashion):
    images, labels = fashion
    x = images / 255.0
    whole = stream(x, labels)
    a, b = stream(x[:1100], labels[:1100]), stream(x[1100:], labels[1100:])
    a.merge(b)
    assert a.n == whole.n
    assert rel(a.sxx("centered"), whole.sxx("centered")) < 1e-12
    assert rel(a.sxy("centered"), whole.sxy("centered")) < 1e-12
    empty = recalign.MomentAccumulator(784, classes=10)
    before = a.to_bytes()
    a.merge(empty)
    assert a.to_bytes() == before
    with pytest.raises(ValueError, match="784.*783|783.*784"):
        a.merge(recalign.MomentAccumulator(783, classes=10))
    assert a.to_bytes() == before


def test_pickle_bytes_and_files_round_trip(fashion, tmp_path):
    images, labels = fashion
    acc = stream(images[:500], labels[:500])
    data = acc.to_bytes()
    assert pickle.loads(pickle.dumps(acc)).to_bytes() == data
    assert recalign.MomentAccumulator.from_bytes(data).to_bytes() == data
    path = str(tmp_path / "m.ckpt")
    acc.save(path)
    assert recalign.MomentAccumulator.load(path).to_bytes() == data
    assert open(path, "rb").read() == data
    # the copy is independent
    c = acc.copy()
    c.update(images[500:600], labels[500:600])
    assert acc.to_bytes() == data and c.n == 600


def test_corrupt_and_truncated_checkpoints_raise_file_error(fashion, tmp_path):
    images, labels = fashion
    data = stream(images[:100], labels[:100]).to_bytes()
    with pytest.raises(recalign.FileError) as e:
        recalign.MomentAccumulator.from_bytes(data[:-7])
    assert isinstance(e.value, OSError) and "<bytes>" in str(e.value) and "byte offset" in str(e.value)
    assert e.value.file == "<bytes>" and isinstance(e.value.offset, int)
    flipped = bytearray(data)
    flipped[200] ^= 1
    with pytest.raises(recalign.FileError):
        recalign.MomentAccumulator.from_bytes(bytes(flipped))
    path = tmp_path / "bad.ckpt"
    path.write_bytes(data[:40])
    with pytest.raises(OSError, match="bad.ckpt"):
        recalign.MomentAccumulator.load(str(path))
    with pytest.raises(recalign.FileError):
        recalign.MomentAccumulator.load(str(tmp_path / "missing.ckpt"))
    with pytest.raises(OSError):
        recalign.MomentAccumulator.from_bytes(data).save(str(tmp_path / "no" / "such" / "dir.ckpt"))
    # a state of another kind is refused
    fd = recalign.FrequentDirections(784, 8)
    with pytest.raises(recalign.FileError):
        recalign.MomentAccumulator.from_bytes(fd.to_bytes())


def test_bad_arrays_raise_value_error_with_row_and_leave_state_unchanged(fashion):
    images, labels = fashion
    acc = stream(images[:300] / 255.0, labels[:300])
    before = acc.to_bytes()
    x = images[300:400] / 255.0
    y = labels[300:400]

    bad = x.copy()
    bad[37, 5] = np.nan
    with pytest.raises(ValueError, match=r"row 37\b"):
        acc.update(bad, y)
    with pytest.raises(ValueError, match=r"row 1037\b"):
        acc.update(bad, y, first_row=1000)
    inf32 = x.astype(np.float32)
    inf32[99, 0] = np.inf
    with pytest.raises(ValueError, match=r"row 99\b"):
        acc.update(inf32, y)
    with pytest.raises(ValueError, match="783|columns"):
        acc.update(x[:, :783], y)
    with pytest.raises(ValueError):
        acc.update(x[0], y[:1])  # one dimension: ambiguous
    obj = x.astype(object)
    obj[12, 3] = "not a number"
    with pytest.raises(ValueError, match=r"row 12\b"):
        acc.update(obj, y)
    with pytest.raises(ValueError, match="complex"):
        acc.update(x.astype(np.complex128), y)
    bad_labels = y.astype(np.int64)
    bad_labels[64] = 10
    with pytest.raises(ValueError, match=r"row 64\b"):
        acc.update(x, bad_labels)
    bad_labels[64] = -1
    with pytest.raises(ValueError, match=r"row 64\b"):
        acc.update(x, bad_labels)
    with pytest.raises(ValueError, match="integer"):
        acc.update(x, y.astype(np.float64))
    with pytest.raises(ValueError):
        acc.update(x, y[:99])  # row counts differ
    with pytest.raises(ValueError):
        acc.update(x)  # targets configured but missing
    assert acc.to_bytes() == before
    acc.update(x, y)  # and the state still works
    assert acc.n == 400


def test_dense_targets_and_no_targets(fashion):
    images, labels = fashion
    x = images[:400] / 255.0
    t = np.eye(10)[labels[:400]] * 2.0 - 0.5
    acc = recalign.MomentAccumulator(784, classes=10, targets="dense")
    acc.update(x, t)
    xc, tc = x - x.mean(0), t - t.mean(0)
    assert rel(acc.sxy("centered"), xc.T @ tc) < 1e-11
    plain = recalign.MomentAccumulator(784)
    plain.update(x)
    assert not plain.has_targets
    assert rel(plain.sxx("centered"), xc.T @ xc) < 1e-11
    with pytest.raises(ValueError, match="(?i)target"):
        plain.update(x, labels[:400])


def test_torch_tensors_are_read_in_place(fashion):
    from conftest import torch_or_skip
    torch = torch_or_skip()
    images, labels = fashion
    a = recalign.MomentAccumulator(784, classes=10)
    b = recalign.MomentAccumulator(784, classes=10)
    for lo, hi in batches(images[:1000], 200):
        a.update(images[lo:hi], labels[lo:hi])
        b.update(torch.from_numpy(images[lo:hi]).reshape(-1, 1, 28, 28), torch.from_numpy(labels[lo:hi]).long())
    assert a.to_bytes() == b.to_bytes()
    f = torch.from_numpy(images[:100] / 255.0).float().requires_grad_(True)
    c = recalign.MomentAccumulator(784, classes=10)
    c.update(f, torch.from_numpy(labels[:100]))  # detached, not copied
    d = recalign.MomentAccumulator(784, classes=10)
    d.update((images[:100] / 255.0).astype(np.float32), labels[:100])
    assert c.to_bytes() == d.to_bytes()


def test_torch_tensors_are_not_copied():
    import tracemalloc
    torch = pytest.importorskip("torch", reason="torch is not importable: install Debian's python3-torch")
    t = torch.rand(3000, 784, dtype=torch.float64)
    acc = recalign.MomentAccumulator(784)
    acc.update(t[:10])
    tracemalloc.start()
    acc.update(t)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < t.numel() * 8 / 20, peak
    tracemalloc.start()
    acc.update(t.t().contiguous().t())  # a column-major view: converted once, by NumPy
    _, converted = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert converted >= t.numel() * 8, converted
