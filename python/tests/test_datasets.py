"""ShardedUpdates over map-style and iterable torch Datasets (shuffled, batched, 2 workers)
against NumPy sums over the same rows; ProjectionTransform's sample shape (issue 16 item 5)."""
import functools

import numpy as np
import pytest

import recalign
from recalign.hooks import ResumableSampler, ShardedUpdates

torch = pytest.importorskip("torch", reason="torch is not importable: install Debian's python3-torch")
from torch.utils.data import DataLoader, Dataset, IterableDataset  # noqa: E402

N, D, C = 1000, 12, 4
RNG = np.random.RandomState(2)
X = (RNG.rand(N, D) * 3 + np.arange(D)).astype(np.float32)
Y = RNG.randint(0, C, N)


class MapRows(Dataset):
    def __len__(self):
        return N

    def __getitem__(self, i):  # an image-shaped tensor, a label, an index (ignored)
        return torch.from_numpy(X[i].reshape(3, 4)), int(Y[i]), i


class StreamRows(IterableDataset):
    def __iter__(self):
        for i in range(N):
            yield X[i], Y[i]


def reference():
    acc = recalign.MomentAccumulator(D, classes=C)
    acc.update(X, Y)
    return acc


def close(a, b):
    for c in ("centered", "uncentered"):
        for f in ("sxx", "sxy"):
            u, v = getattr(a, f)(c), getattr(b, f)(c)
            assert np.max(np.abs(u - v)) <= 1e-12 * np.max(np.abs(v)), (f, c)


@pytest.mark.parametrize("source", ["map", "map_shuffled", "iterable", "arrays_shuffled"])
def test_sharded_updates_over_datasets(source):
    make = functools.partial(recalign.MomentAccumulator, D, C)
    if source == "map":
        ds = ShardedUpdates(MapRows(), make_state=make, batch_size=64)
    elif source == "map_shuffled":
        ds = ShardedUpdates(MapRows(), make_state=make, batch_size=64, shuffle=True, seed=4)
    elif source == "iterable":
        ds = ShardedUpdates(StreamRows(), make_state=make, batch_size=64)
    else:
        ds = ShardedUpdates(X, Y, make, batch_size=64, shuffle=True, seed=4)
    states = list(DataLoader(ds, batch_size=None, num_workers=2))
    assert len(states) == 2 and sum(s.n for s in states) == N and min(s.n for s in states) > 0
    merged = recalign.merge_all(states)
    close(merged, reference())
    if source.endswith("shuffled"):  # the rows of each share are those of ResumableSampler's order
        order = np.array(list(ResumableSampler(N, seed=4)))
        first = recalign.MomentAccumulator(D, classes=C)
        first.update(X[order[:512]], Y[order[:512]])
        assert any(np.allclose(s.mean_x(), first.mean_x(), rtol=1e-12) for s in states)


def test_sharded_updates_refusals():
    make = functools.partial(recalign.MomentAccumulator, D, C)
    with pytest.raises(ValueError, match="no positions to shuffle"):
        ShardedUpdates(StreamRows(), make_state=make, shuffle=True)
    with pytest.raises(ValueError, match="labels come from the dataset"):
        ShardedUpdates(MapRows(), Y, make)
    with pytest.raises(TypeError, match="make_state"):
        ShardedUpdates(MapRows())


def test_projection_transform_sample_shape():
    acc = recalign.MomentAccumulator(784)
    acc.update(np.random.RandomState(0).rand(50, 784))
    flat = recalign.ProjectionTransform.from_moments(acc, fraction=0.5)
    gray = recalign.ProjectionTransform.from_moments(acc, fraction=0.5, shape=(1, 28, 28))
    rgb = torch.rand(3, 28, 28)  # one 3-channel image: not 3 samples of 784 values
    for t in (flat, gray):
        with pytest.raises(ValueError, match=r"\(3, 28, 28\)"):
            t(rgb)
    one = np.random.RandomState(1).rand(1, 28, 28)
    np.testing.assert_allclose(gray(one).reshape(-1), flat(one.reshape(784)), atol=1e-12)
    batch = np.random.RandomState(2).rand(5, 1, 28, 28)
    np.testing.assert_allclose(gray(batch).reshape(5, 784), flat(batch.reshape(5, 784)), atol=1e-12)
    assert recalign.ProjectionTransform.from_moments(acc, shape=(28, 28))(rgb).shape == (3, 28, 28)
    with pytest.raises(ValueError, match="holds 783 values"):
        recalign.ProjectionTransform.from_moments(acc, shape=(27, 29))
