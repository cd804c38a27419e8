"""Data-loader hooks: drive accumulators from any iterable of batches (a torch DataLoader,
a generator over files, ...), with periodic atomic checkpoints; a picklable top/bottom
subspace projection for DataLoader transforms; sharding helpers for DataLoader workers.

Pure Python on top of the extension; torch is optional (imported only when used).
"""
import functools
import os

import numpy as np

from . import _recalign

__all__ = ["track", "merge_all", "ProjectionTransform", "worker_shard", "ShardedUpdates"]


def _split(item):
    """(images, labels[, first_row]) or images alone."""
    if isinstance(item, (tuple, list)):
        if len(item) == 2:
            return item[0], item[1], None
        if len(item) == 3:
            return item[0], item[1], item[2]
        if len(item) == 1:
            return item[0], None, None
        raise ValueError(f"track: a batch must be (images, labels) or (images, labels, first_row), got {len(item)} items")
    return item, None, None


def _rows(x):
    shape = getattr(x, "shape", None)
    if shape is None:
        return len(x)
    return int(shape[0])


def track(batches, tracker, checkpoint=None, every=100, resume=False, report_every=0, on_report=None):
    """Feed every (images, labels) batch of `batches` into `tracker` and return the tracker.

    batches: any iterable of (images, labels) or (images, labels, first_row) -- e.g. a
        torch DataLoader (CPU tensors are read in place) -- or of bare image batches for
        accumulators without labels (MomentAccumulator without targets, the sketches).
    tracker: an AlignmentTracker, MomentAccumulator, FrequentDirections, NystromSketch...
    checkpoint: a path; the state is saved there atomically (temp file, fsync, rename) every
        `every` batches and once at the end, so a crash leaves the previous checkpoint.
        The run holds the checkpoint's advisory lock (recalign.CheckpointLock: C++
        io/lock.hpp, the sidecar PATH.lock) from before it resumes until it returns or
        raises: a second run on the same checkpoint, in this or another process, raises
        recalign.LockError naming the first's pid before touching anything.
    resume: if True and `checkpoint` exists, the state is loaded from it (replacing
        `tracker`, whose type it must have) and the rows it has already seen are skipped,
        so the iterable must yield the same batches in the same order as before. A batch
        straddling the checkpoint raises ValueError (the batching changed).
    report_every / on_report: call on_report(tracker.report(), batches_done) every
        `report_every` batches (trackers only); report() is part of the state, so it is
        checkpointed with it. Batches are counted from the start of the iterable, skipped
        ones included, so a resumed run reports and checkpoints after the same batches as
        an uninterrupted one and ends with the same bytes.

    Returns the tracker that holds the result (the loaded one when resuming).
    """
    if every is not None and every < 0:
        raise ValueError(f"track: every must be >= 0, got {every}")
    if checkpoint is None:
        return _track(batches, tracker, None, every, resume, report_every, on_report)
    # Taken before the resume reads the checkpoint, so two runs never both continue one file.
    with _recalign.CheckpointLock(os.fspath(checkpoint)):
        return _track(batches, tracker, checkpoint, every, resume, report_every, on_report)


def _track(batches, tracker, checkpoint, every, resume, report_every, on_report):
    skip = 0
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        tracker = type(tracker).load(os.fspath(checkpoint))
        skip = int(tracker.n)
    index = 0  # batches so far, skipped ones included: reports and checkpoints fall on the
    seen_rows = 0  # same batches in a resumed run as in an uninterrupted one
    for item in batches:
        images, labels, first_row = _split(item)
        rows = _rows(images)
        index += 1
        if seen_rows < skip:
            if seen_rows + rows > skip:
                raise ValueError(f"track: the checkpoint ends at row {skip}, inside a batch of rows "
                                 f"{seen_rows}..{seen_rows + rows - 1}: the batches differ from the first run")
            seen_rows += rows
            continue
        kwargs = {} if first_row is None else {"first_row": int(first_row)}
        if labels is None:
            tracker.update(images, **kwargs)
        else:
            tracker.update(images, labels, **kwargs)
        seen_rows += rows
        if report_every and on_report is not None and index % report_every == 0:
            on_report(tracker.report(), index)
        if checkpoint is not None and every and index % every == 0:
            tracker.save(os.fspath(checkpoint))
    if seen_rows < skip:
        raise ValueError(f"track: the checkpoint has {skip} rows but the batches hold only {seen_rows}")
    if checkpoint is not None:
        tracker.save(os.fspath(checkpoint))
    return tracker


def merge_all(states):
    """Merge an iterable of states of one kind (e.g. what DataLoader workers or a
    multiprocessing pool returned, unpickled) into a new state, in the order given."""
    it = iter(states)
    try:
        total = next(it).copy()
    except StopIteration:
        raise ValueError("merge_all: no states") from None
    for s in it:
        total.merge(s)
    return total


def _torch():
    try:
        import torch  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the machine
        return None
    return torch


class ProjectionTransform:
    """Top / bottom principal-subspace projection as a callable transform (the paper's
    Figure 1: train on images filtered to one part of the spectrum).

    Works on one sample (any shape holding `dim` values, e.g. (1, 28, 28)) or a batch (first
    dimension = samples); returns the same type (torch tensor or NumPy array) and shape.
    Floating inputs keep their dtype; integer inputs (uint8 pixels) become float32.
    Picklable, so it works in DataLoader workers (num_workers > 0).

        t = ProjectionTransform.from_moments(acc, fraction=0.75, part="bottom")
        dataset = MyDataset(transform=t)
    """

    def __init__(self, projector, clip=None):
        if not isinstance(projector, _recalign.SubspaceProjector):
            raise TypeError("ProjectionTransform needs a recalign.SubspaceProjector")
        self.projector = projector
        self.clip = clip

    @classmethod
    def from_moments(cls, moments, fraction=0.75, part="top", center="centered", clip=None):
        """Projection from the exact spectrum of a MomentAccumulator's second moment."""
        return cls.from_statistics(moments.finish(center), fraction, part, clip=clip)

    @classmethod
    def from_statistics(cls, statistics, fraction=0.75, part="top", clip=None):
        """Projection from finished statistics of any route (acc.finish(center), sketch.finish())."""
        return cls(_recalign.SubspaceProjector.from_statistics(statistics, fraction, part), clip=clip)

    @classmethod
    def from_spectrum(cls, spectrum, mean=None, fraction=0.75, part="top", clip=None):
        """Projection from any spectrum (exact, FrequentDirections.spectrum(), NystromSketch.spectrum())."""
        return cls(_recalign.SubspaceProjector(spectrum, mean, fraction, part), clip=clip)

    @property
    def k(self):
        return self.projector.k

    @property
    def part(self):
        return self.projector.part

    def __call__(self, x):
        torch = None
        if type(x).__module__.startswith("torch"):
            torch = _torch()
        elif not isinstance(x, np.ndarray):
            x = np.asarray(x)  # PIL images, lists
        shape = tuple(x.shape)
        dim = self.projector.dim
        size = int(np.prod(shape)) if shape else 1
        if size == dim:
            rows = 1
        elif shape and size == shape[0] * dim:
            rows = shape[0]
        else:
            raise ValueError(f"ProjectionTransform: input of shape {shape} holds neither one sample "
                             f"nor a batch of samples of {dim} values")
        flat = x.reshape(rows, dim)
        out = self.projector.project(flat)
        if self.clip is not None:
            np.clip(out, self.clip[0], self.clip[1], out=out)
        if torch is not None:
            dtype = x.dtype if x.is_floating_point() else torch.float32
            return torch.from_numpy(out.reshape(shape)).to(dtype)
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        return out.reshape(shape).astype(dtype, copy=False)

    def __repr__(self):
        return f"ProjectionTransform({self.projector!r}, clip={self.clip!r})"


def worker_shard(count):
    """(start, stop) of the contiguous share of `count` items of the current torch
    DataLoader worker ((0, count) outside a worker). Contiguous shares keep global row
    indices meaningful (first_row), so Monte-Carlo noise draws match a single pass."""
    torch = _torch()
    info = torch.utils.data.get_worker_info() if torch is not None else None
    if info is None:
        return 0, count
    per, extra = divmod(count, info.num_workers)
    start = info.id * per + min(info.id, extra)
    return start, start + per + (1 if info.id < extra else 0)


@functools.lru_cache(maxsize=None)
def _sharded_updates_class():
    torch = _torch()
    if torch is None:
        raise ImportError("ShardedUpdates needs torch (Debian: python3-torch)")

    class _ShardedUpdates(torch.utils.data.IterableDataset):
        def __init__(self, images, labels, make_state, batch_size):
            super().__init__()
            self.images, self.labels = images, labels
            self.make_state, self.batch_size = make_state, batch_size

        def __iter__(self):
            batches = (len(self.images) + self.batch_size - 1) // self.batch_size
            b0, b1 = worker_shard(batches)
            state = self.make_state()
            for b in range(b0, b1):
                lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, len(self.images))
                if self.labels is None:
                    state.update(self.images[lo:hi], first_row=lo)
                else:
                    state.update(self.images[lo:hi], self.labels[lo:hi], first_row=lo)
            yield state  # pickled through the worker queue by the state's checkpoint bytes

    # Found again by pickle (spawn start method) through the module __getattr__ below.
    _ShardedUpdates.__module__ = __name__
    _ShardedUpdates.__qualname__ = "_ShardedUpdates"
    return _ShardedUpdates


def __getattr__(name):
    if name == "_ShardedUpdates":
        return _sharded_updates_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def ShardedUpdates(images, labels, make_state, batch_size=256):
    """A torch IterableDataset whose every DataLoader worker builds one state with
    `make_state()` (a picklable callable, e.g. functools.partial(AlignmentTracker, 784, 10)),
    feeds it its contiguous share of the batches of (images, labels) with their global
    first_row, and yields it once. Merge what DataLoader(..., batch_size=None,
    num_workers=N) yields with merge_all()."""
    return _sharded_updates_class()(images, labels, make_state, batch_size)
