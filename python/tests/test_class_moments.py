"""ClassMoments from Python: agreement with MomentAccumulator's cross statistics (both
centerings) and with NumPy class means, merge, pickle and checkpoints, and the strong
guarantee on bad input."""
import copy
import pickle

import numpy as np
import pytest

import recalign
from conftest import batches


def rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def stream(x, labels, size=250):
    cm = recalign.ClassMoments(x.shape[1], 10)
    acc = recalign.MomentAccumulator(x.shape[1], classes=10)
    for lo, hi in batches(x, size):
        cm.update(x[lo:hi], labels[lo:hi], first_row=lo)
        acc.update(x[lo:hi], labels[lo:hi], first_row=lo)
    return cm, acc


def test_cross_equals_moment_accumulator_on_fashion(fashion):
    images, labels = fashion
    for x in (images, images / 255.0, (images / 255.0).astype(np.float32)):
        cm, acc = stream(x, labels)
        assert cm.n == len(x) and cm.dim == 784 and cm.classes == 10 and not cm.empty
        for center in ("uncentered", "centered"):
            a, b = cm.cross(center), acc.cross(center)
            assert isinstance(a, recalign.CrossMoments)
            assert a.center == center and a.n == b.n == len(x)
            assert rel(a.sxy, b.sxy) < 1e-12
            assert rel(a.syy, b.syy) < 1e-12
            assert a.class_counts is not None and b.class_counts is None  # counts kept, not C x C
        assert rel(cm.mean, acc.mean_x()) < 1e-12
        xd = x.astype(np.float64)
        counts = np.bincount(labels, minlength=10)
        assert cm.counts.dtype == np.uint64 and np.array_equal(cm.counts, counts)
        want = np.stack([xd[labels == c].mean(0) for c in range(10)])
        assert cm.means.shape == (10, 784) and rel(cm.means, want) < 1e-13


def test_merge_equals_one_pass_and_pickle_round_trips(fashion):
    images, labels = fashion
    x = images[:1200] / 255.0
    y = labels[:1200]
    whole, _ = stream(x, y)
    a, _ = stream(x[:500], y[:500])
    b = recalign.ClassMoments(784, 10)
    b.update(x[500:], y[500:], first_row=500)
    a.merge(b)
    assert a.n == whole.n and np.array_equal(a.counts, whole.counts)
    assert rel(a.means, whole.means) < 1e-13
    for center in ("uncentered", "centered"):
        assert rel(a.cross(center).sxy, whole.cross(center).sxy) < 1e-12

    blob = whole.to_bytes()
    for back in (pickle.loads(pickle.dumps(whole)), recalign.ClassMoments.from_bytes(blob),
                 copy.deepcopy(whole), whole.copy()):
        assert isinstance(back, recalign.ClassMoments) and back.to_bytes() == blob
    # A copy is independent.
    c = whole.copy()
    c.update(x[:10], y[:10])
    assert whole.to_bytes() == blob and c.n == whole.n + 10
    # Merging with an empty state or with itself.
    empty = recalign.ClassMoments(784, 10)
    c = whole.copy()
    c.merge(empty)
    assert c.to_bytes() == blob
    c.merge(c)
    assert c.n == 2 * whole.n and np.array_equal(c.means, whole.means)


def test_save_load_file(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(90, 7))
    y = rng.integers(0, 3, size=90)
    cm = recalign.ClassMoments(7, 3)
    cm.update(x, y)
    path = str(tmp_path / "classes.ckpt")
    cm.save(path)
    back = recalign.ClassMoments.load(path)
    assert back.to_bytes() == cm.to_bytes()
    assert "ClassMoments(dim=7, classes=3, n=90)" == repr(back)
    with pytest.raises(recalign.FileError) as e:
        recalign.MomentAccumulator.load(path)
    assert "class_moments" in str(e.value) and e.value.offset == 16
    with pytest.raises(recalign.FileError) as e:
        recalign.ClassMoments.from_bytes(cm.to_bytes()[:-3])
    assert e.value.file == "<bytes>"


@pytest.mark.parametrize("case", ["nan", "inf", "label_high", "label_negative", "width", "count", "float_labels",
                                  "one_dim"])
def test_bad_input_is_a_value_error_naming_the_row_and_changes_nothing(case):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 6))
    y = rng.integers(0, 4, size=64)
    cm = recalign.ClassMoments(6, 4)
    cm.update(x[:32], y[:32])
    before = cm.to_bytes()
    bx, by = x[32:48].copy(), y[32:48].copy()
    expect = None
    if case == "nan":
        bx[5, 2] = np.nan
        expect = ["row 37", "column 2", "not finite"]
    elif case == "inf":
        bx[0, 0] = -np.inf
        expect = ["row 32", "column 0"]
    elif case == "label_high":
        by[7] = 4
        expect = ["row 39", "label 4", "[0, 4)"]
    elif case == "label_negative":
        by[2] = -1
        expect = ["row 34", "label -1"]
    elif case == "width":
        bx = np.ones((16, 7))
        expect = ["row 32", "7 columns", "expected 6"]
    elif case == "count":
        by = by[:15]
        expect = ["15 rows", "row 32 has 16"]
    elif case == "float_labels":
        by = by.astype(np.float64)
        expect = ["integers"]
    elif case == "one_dim":
        bx = bx[0]
        expect = []
    with pytest.raises(ValueError) as e:
        cm.update(bx, by, first_row=32)
    for part in expect:
        assert part in str(e.value)
    assert cm.to_bytes() == before
    # The run continues to the bits of one that never saw the bad batch.
    ref = recalign.ClassMoments(6, 4)
    ref.update(x[:32], y[:32])
    for s in (cm, ref):
        s.update(x[32:], y[32:], first_row=32)
    assert cm.to_bytes() == ref.to_bytes()


def test_merge_refusals_name_both_values():
    a = recalign.ClassMoments(5, 3)
    a.update(np.ones((4, 5)), np.array([0, 1, 2, 1]))
    before = a.to_bytes()
    with pytest.raises(ValueError, match="dimension 5 and 6"):
        a.merge(recalign.ClassMoments(6, 3))
    with pytest.raises(ValueError, match="3 and 4 classes"):
        a.merge(recalign.ClassMoments(5, 4))
    with pytest.raises(TypeError):
        a.merge(recalign.MomentAccumulator(5, classes=3))
    assert a.to_bytes() == before
    with pytest.raises(ValueError):
        recalign.ClassMoments(0, 3)
    with pytest.raises(ValueError):
        recalign.ClassMoments(3, 0)
