"""Crash and resume through a shuffled torch DataLoader: track(..., resume=True) replays the
exact order of a seeded sampler (bit-identical to an uninterrupted run) and refuses, before
reading anything, an order it cannot replay (a shuffle without a seeded generator, a
generator in another state). Before this, the unseeded resume silently counted some rows
twice and others never (issue 16). Also tuple batches by position (index=2)."""
import numpy as np
import pytest

import recalign
from recalign.hooks import ResumableSampler

torch = pytest.importorskip("torch", reason="torch is not importable: install Debian's python3-torch")
from torch.utils.data import DataLoader, Dataset  # noqa: E402

N, D, C, B = 4096, 16, 3, 128
CRASH = 2048 + 64  # inside batch 17; the last checkpoint (every 4 batches) holds 2048 rows


class Rows(Dataset):
    """(x, label) rows, (x, label, index) with with_index; raises once `crash_after` rows
    have been read."""

    def __init__(self, crash_after=None, with_index=False):
        rng = np.random.RandomState(0)
        self.x = rng.randn(N, D) + np.arange(D)
        self.y = rng.randint(0, C, N)
        self.reads, self.crash_after, self.with_index = 0, crash_after, with_index

    def __len__(self):
        return N

    def __getitem__(self, i):
        self.reads += 1
        if self.crash_after is not None and self.reads > self.crash_after:
            raise RuntimeError("simulated crash")
        return (torch.from_numpy(self.x[i]), int(self.y[i])) + ((i,) if self.with_index else ())


def run(loader, ckpt=None, resume=False):
    return recalign.track(loader, recalign.MomentAccumulator(D, classes=C), checkpoint=ckpt, every=4, resume=resume)


def crash(loader, ckpt):
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(loader, ckpt, resume=True)
    assert recalign.MomentAccumulator.load(str(ckpt)).n == 2048


def test_unseeded_shuffle_is_refused(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(ValueError, match="without a seeded generator"):  # before anything is read
        run(DataLoader(Rows(CRASH), batch_size=B, shuffle=True), ckpt, resume=True)
    assert not ckpt.exists()
    # a crashed run of the same loader without resume=True cannot be resumed either
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(DataLoader(Rows(CRASH), batch_size=B, shuffle=True), ckpt)
    data = Rows()
    with pytest.raises(ValueError, match="without a seeded generator"):
        run(DataLoader(data, batch_size=B, shuffle=True), ckpt, resume=True)
    assert data.reads == 0 and recalign.MomentAccumulator.load(str(ckpt)).n == 2048


def test_seeded_generator_resumes_exactly(tmp_path):
    whole = run(DataLoader(Rows(), batch_size=B, shuffle=True, generator=torch.Generator().manual_seed(5)))
    ckpt = tmp_path / "run.ckpt"
    crash(DataLoader(Rows(CRASH), batch_size=B, shuffle=True, generator=torch.Generator().manual_seed(5)), ckpt)
    resumed = run(DataLoader(Rows(), batch_size=B, shuffle=True, generator=torch.Generator().manual_seed(5)), ckpt,
                  resume=True)
    assert resumed.n == N and resumed.to_bytes() == whole.to_bytes()
    rows = Rows()
    np.testing.assert_allclose(resumed.mean_x(), rows.x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(resumed.mean_y(), np.bincount(rows.y, minlength=C) / N, rtol=1e-13)
    # another seed, or the same generator object already used for a pass: refused, unread
    for g in (torch.Generator().manual_seed(6), None):
        ckpt2 = tmp_path / "again.ckpt"
        gen = torch.Generator().manual_seed(5)
        crash(DataLoader(Rows(CRASH), batch_size=B, shuffle=True, generator=gen), ckpt2)
        data = Rows()
        with pytest.raises(ValueError, match="cannot resume"):
            run(DataLoader(data, batch_size=B, shuffle=True, generator=g or gen), ckpt2, resume=True)
        assert data.reads == 0


def test_resumable_sampler(tmp_path):
    def loader(data, seed=3, epoch=0):
        return DataLoader(data, batch_size=B, sampler=ResumableSampler(data, seed=seed, epoch=epoch))
    whole = run(loader(Rows()))
    order = list(ResumableSampler(N, seed=3))
    assert sorted(order) == list(range(N)) and order != list(range(N))
    ckpt = tmp_path / "run.ckpt"
    crash(loader(Rows(CRASH)), ckpt)
    assert "seed=3" in (tmp_path / "run.ckpt.order").read_text()
    with pytest.raises(ValueError, match="cannot resume"):
        run(loader(Rows(), epoch=1), ckpt, resume=True)
    assert run(loader(Rows()), ckpt, resume=True).to_bytes() == whole.to_bytes()


def test_tuples_by_position():
    data = Rows(with_index=True)
    ordered = DataLoader(data, batch_size=B)
    # (x, label, idx): the third element is ignored unless index=2 names it
    plain = recalign.track(ordered, recalign.MomentAccumulator(D, classes=C))
    indexed = recalign.track(ordered, recalign.MomentAccumulator(D, classes=C), index=2)
    assert plain.to_bytes() == indexed.to_bytes() and plain.n == N
    with pytest.raises(ValueError, match="not consecutive"):
        recalign.track(DataLoader(data, batch_size=B, shuffle=True), recalign.MomentAccumulator(D, classes=C), index=2)
    with pytest.raises(ValueError, match="index must be"):
        recalign.track(ordered, recalign.MomentAccumulator(D, classes=C), index=0)
