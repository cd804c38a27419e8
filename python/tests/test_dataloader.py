"""A real torch.utils.data.DataLoader (Debian python3-torch) over Fashion-MNIST:
batches streamed from 2 workers into one tracker; one tracker per worker, pickled back and
merged; the projection transform running inside workers."""
import functools

import numpy as np
import pytest

import recalign
torch = pytest.importorskip("torch", reason="torch is not importable: install Debian's python3-torch")
from torch.utils.data import DataLoader, Dataset  # noqa: E402

N = 2000
NOISES = ["mask:patch=2x2,ratio=0.5,scheme=fixed", "dropout:ratio=0.3,draws=2,seed=5"]


def pooled(images, n):
    return (images[:n].reshape(n, 14, 2, 14, 2).mean(axis=(2, 4)) / 255.0).reshape(n, 196).astype(np.float32)


class Images(Dataset):
    """Map-style dataset of (image tensor 1 x 14 x 14, label), with an optional transform."""

    def __init__(self, x, y, transform=None):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        img = torch.from_numpy(self.x[i].reshape(1, 14, 14))
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.y[i])


@pytest.fixture(scope="module")
def data(fashion):
    images, labels = fashion
    return pooled(images, N), labels[:N].astype(np.int64)


def make_tracker():
    return recalign.AlignmentTracker(196, 10, shape=(14, 14), noises=NOISES)


def test_stream_through_a_dataloader_with_two_workers_equals_numpy_loop(data):
    x, y = data
    loader = DataLoader(Images(x, y), batch_size=100, shuffle=False, num_workers=2)
    via_loader = recalign.track(loader, make_tracker())
    direct = make_tracker()
    for lo in range(0, N, 100):
        direct.update(x[lo:lo + 100], y[lo:lo + 100])
    # same batches in the same order: bit-identical
    assert via_loader.n == N
    assert via_loader.to_bytes() == direct.to_bytes()


@pytest.mark.parametrize("make", [
    lambda: recalign.NystromSketch(196, rank=8, seed=3),
    lambda: recalign.FrequentDirections(196, 12),
    lambda: recalign.MomentAccumulator(196),
    lambda: recalign.MonteCarloNoise(196, "dropout:ratio=0.3,draws=2,seed=5"),
], ids=["nystrom", "fd", "moments without targets", "monte carlo"])
def test_one_loader_of_images_and_labels_serves_the_label_free_states(data, make):
    """track() leaves the labels of (images, labels) batches out for a state that reads none:
    the state equals one fed the images alone, bit for bit (it once raised TypeError)."""
    x, y = data
    loader = DataLoader(Images(x, y), batch_size=100, shuffle=False)
    via_loader = recalign.track(loader, make())
    direct = make()
    for lo in range(0, N, 100):
        direct.update(x[lo:lo + 100])
    assert via_loader.n == N and via_loader.to_bytes() == direct.to_bytes()
    sharded = recalign.merge_all(DataLoader(recalign.hooks.ShardedUpdates(x, y, make, batch_size=100),
                                            batch_size=None, num_workers=0))
    assert sharded.n == N


def test_one_tracker_per_worker_merged_equals_single_pass(data):
    x, y = data
    dataset = recalign.hooks.ShardedUpdates(x, y, make_tracker, batch_size=100)
    loader = DataLoader(dataset, batch_size=None, num_workers=2)
    states = list(loader)  # each worker's tracker, pickled through the worker queue
    assert len(states) == 2 and sorted(s.n for s in states) == [N // 2, N // 2]
    merged = recalign.merge_all(states)

    single = make_tracker()
    for lo in range(0, N, 100):
        single.update(x[lo:lo + 100], y[lo:lo + 100])
    # to rounding against the uninterrupted single pass
    for c in ("centered", "uncentered"):
        a, b = merged.moments.sxx(c), single.moments.sxx(c)
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b))
    ra, rb = merged.report(), single.report()
    assert np.max(np.abs(ra.clean.curve - rb.clean.curve)) < 1e-10
    for na, nb in zip(ra.noises, rb.noises):
        assert np.max(np.abs(na.denoising.curve[:100] - nb.denoising.curve[:100])) < 1e-8
    # the Monte-Carlo noise is keyed by global rows: same draws as the single pass
    ea, eb = merged.noise_expectations(1), single.noise_expectations(1)
    assert np.max(np.abs(ea.g - eb.g)) <= 1e-12 * np.max(np.abs(eb.g))
    # bit-identical to the same shards merged in this process, in the same order
    replica = []
    for lo_b, hi_b in ((0, 10), (10, 20)):
        t = make_tracker()
        for b in range(lo_b, hi_b):
            t.update(x[b * 100:(b + 1) * 100], y[b * 100:(b + 1) * 100], first_row=b * 100)
        replica.append(t)
    by_first = sorted(states, key=lambda s: s.to_bytes() != replica[0].to_bytes())
    assert by_first[0].to_bytes() == replica[0].to_bytes()
    assert by_first[1].to_bytes() == replica[1].to_bytes()
    assert recalign.merge_all(replica).to_bytes() == recalign.merge_all(by_first).to_bytes()


def test_moment_accumulators_per_worker(data):
    x, y = data
    make = functools.partial(recalign.MomentAccumulator, 196, 10)
    loader = DataLoader(recalign.hooks.ShardedUpdates(x, y, make, batch_size=128), batch_size=None, num_workers=2)
    merged = recalign.merge_all(loader)
    xd = x.astype(np.float64)
    xc = xd - xd.mean(0)
    assert merged.n == N
    assert np.max(np.abs(merged.sxx("centered") - xc.T @ xc)) <= 1e-11 * np.max(np.abs(xc.T @ xc))


def test_projection_transform_in_dataloader_workers(data):
    x, y = data
    acc = recalign.MomentAccumulator(196, classes=10)
    acc.update(x, y)
    transform = recalign.ProjectionTransform.from_moments(acc, fraction=0.9, part="bottom")
    loader = DataLoader(Images(x[:300], y[:300], transform), batch_size=50, num_workers=2)
    got = torch.cat([b for b, _ in loader]).numpy()
    assert got.shape == (300, 1, 14, 14) and got.dtype == np.float32
    want = transform.projector.project(x[:300]).astype(np.float32).reshape(300, 1, 14, 14)
    np.testing.assert_array_equal(got, want)
    # the bottom part removes the top directions: no energy left along them
    U = transform.projector.basis
    resid = (got.reshape(300, 196) - acc.mean_x()) @ U
    assert np.max(np.abs(resid)) < 1e-4
    # a batch transform on a torch tensor keeps type and shape; image batches need the sample
    # shape (a (8, 1, 14, 14) batch could be one 8-channel image)
    with pytest.raises(ValueError, match="shape="):
        transform(torch.from_numpy(x[:8]).reshape(8, 1, 14, 14))
    shaped = recalign.ProjectionTransform(transform.projector, shape=(1, 14, 14))
    batch = shaped(torch.from_numpy(x[:8]).reshape(8, 1, 14, 14))
    assert isinstance(batch, torch.Tensor) and tuple(batch.shape) == (8, 1, 14, 14)
    np.testing.assert_array_equal(batch.reshape(8, 196).numpy(), transform(torch.from_numpy(x[:8])).numpy())
