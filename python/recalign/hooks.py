"""Data-loader hooks: drive accumulators from any iterable of batches (a torch DataLoader,
a generator over files, ...), with periodic atomic checkpoints; a picklable top/bottom
subspace projection for DataLoader transforms; sharding helpers for DataLoader workers.

Pure Python on top of the extension; torch is optional (imported only when used).
"""
import functools
import inspect
import os

import numpy as np

from . import _recalign
from ._order import ResumableSampler, _check_order, _order_of, _permutation, _write_atomic

__all__ = ["track", "merge_all", "ProjectionTransform", "ResumableSampler", "worker_shard", "ShardedUpdates"]


def _split(item, index):
    """(images, labels, first_row) of one batch, by position: item[0] images, item[1] labels,
    item[index] the row index when index is given; other elements are ignored. A bare
    array or tensor is images alone."""
    if not isinstance(item, (tuple, list)):
        return item, None, None
    if len(item) == 0:
        raise ValueError("track: an empty batch tuple")
    if index is not None and index >= len(item):
        raise ValueError(f"track: index={index} but a batch has {len(item)} elements")
    labels = item[1] if len(item) > 1 and index != 1 else None
    return item[0], labels, None if index is None else _first_row(item[index])


def _takes_labels(state):
    """Whether `state.update` reads labels: a MomentAccumulator when it collects targets, any
    other state when its update has a labels (or y, targets) parameter. Labels in the batches
    are left out for the others (a sketch, the spectrum alone), as the docs of track say."""
    has = getattr(state, "has_targets", None)
    if has is not None:
        return bool(has)
    try:
        params = inspect.signature(state.update).parameters
    except (TypeError, ValueError):
        return True  # cannot tell: give them, and the state's own error says what it takes
    return any(p in params for p in ("labels", "y", "targets"))


def _first_row(idx):
    """The first global row of a batch from its index element: an int, or one index per
    row that must be consecutive (first_row names a contiguous block of rows)."""
    a = np.asarray(idx.numpy() if type(idx).__module__.startswith("torch") else idx).reshape(-1)
    if a.size == 0 or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"track: the index element must hold integer row numbers, got {a.dtype} of size {a.size}")
    if a.size > 1 and not np.array_equal(a, a[0] + np.arange(a.size)):
        raise ValueError(f"track: the row indices of a batch are not consecutive (from {int(a[0])}): a shuffled "
                         "order has no first_row; drop index= or read the rows in order")
    return int(a[0])


def _rows(x):
    shape = getattr(x, "shape", None)
    if shape is None:
        return len(x)
    return int(shape[0])


def _passes_iterable(batches, total):
    """A fresh iterable of the batches for each of `total` passes: `batches` itself when it is
    re-iterable (a list, a DataLoader), `batches()` when it is a callable returning one. An
    iterator (a generator) is read once, so more than one pass over it is refused."""
    if callable(batches) and not hasattr(batches, "__iter__"):
        return batches()
    if total > 1 and iter(batches) is batches:
        raise ValueError(f"track: {total} passes read the data {total} times, and {type(batches).__name__} is an "
                         "iterator, read once: pass a re-iterable (a list, a DataLoader) or a callable returning a "
                         "fresh iterable of the same batches")
    return batches


def track(batches, tracker, checkpoint=None, every=100, resume=False, report_every=0, on_report=None, index=None,
          passes=None):
    """Feed every (images, labels) batch of `batches` into `tracker` and return the tracker.

    batches: any iterable of tuples (images, labels, ...) read by position -- e.g. a torch
        DataLoader (CPU tensors are read in place); elements after the labels are ignored
        -- or of bare image batches for accumulators without labels (MomentAccumulator
        without targets, the sketches, MonteCarloNoise), which also leave out the labels
        of (images, labels) batches (one DataLoader serves every state).
    index: the position of a row-index element (e.g. index=2 for a dataset yielding
        (img, label, idx)): an int first row, or one index per row, which must be
        consecutive; it becomes the batch's first_row (error messages, Monte-Carlo draws).
    tracker: an AlignmentTracker, MomentAccumulator, FrequentDirections, NystromSketch...
    checkpoint: a path; the state is saved there atomically (temp file, fsync, rename) every
        `every` batches and once at the end, so a crash leaves the previous checkpoint.
        The run holds the checkpoint's advisory lock (recalign.CheckpointLock: C++
        io/lock.hpp, the sidecar PATH.lock) from before it resumes until it returns or
        raises: a second run on the same checkpoint, in this or another process, raises
        recalign.LockError naming the first's pid before touching anything.
    resume: if True and `checkpoint` exists, the state is loaded from it (replacing
        `tracker`, whose type and configuration it must have: another configuration, e.g.
        other classes or noises, is refused with ValueError before any batch is read) and
        the rows it has already seen are skipped,
        so the iterable must yield the same batches in the same order as before. A batch
        straddling the checkpoint raises ValueError (the batching changed). For a torch
        DataLoader the order is checked before anything is read: a shuffling sampler
        without a seeded generator is refused (ValueError: its order cannot be replayed);
        a seeded one (DataLoader(generator=torch.Generator().manual_seed(S)), or
        sampler=ResumableSampler(...)) has its state at the start of the pass recorded
        beside the checkpoint (PATH.order, written atomically) and a resume whose sampler
        is not in that state (another seed, a generator already used for a pass) is
        refused. Other iterables are trusted to repeat their order.
    report_every / on_report: call on_report(tracker.report(), batches_done) every
        `report_every` batches (trackers only); report() is part of the state, so it is
        checkpointed with it. Batches are counted from the start of the iterable, skipped
        ones included, so a resumed run reports and checkpoints after the same batches as
        an uninterrupted one and ends with the same bytes.

    passes: how many times to read the data (default: the state's `total_passes`, e.g. a
        recalign.VerifiedDenoising's sketch and verification passes, else 1), calling
        tracker.next_pass() between reads (NystromSketch power iterations too; a verified
        state whose `tolerance` is met skips to its verification: pass_index says). `batches`
        must then yield the same batches in every pass: a re-iterable, or a callable
        returning a fresh iterable. Reports and checkpoints count batches within each pass;
        a resume continues in the checkpoint's pass (state.pass_index) after its rows
        (state.n counts the rows of the current pass). A shuffling DataLoader is refused for
        more than one pass with a checkpoint (its order record covers one pass).

    Returns the tracker that holds the result (the loaded one when resuming).
    """
    if every is not None and every < 0:
        raise ValueError(f"track: every must be >= 0, got {every}")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 1):
        raise ValueError(f"track: index must be a tuple position >= 1 (e.g. 2), got {index!r}")
    kind, order = _order_of(batches)
    if resume and kind == "unseeded":
        raise ValueError("track: resume=True over a DataLoader that shuffles without a seeded generator: a resumed "
                         "run would read the rows in another order (some counted twice, some never). Pass "
                         "generator=torch.Generator().manual_seed(SEED) to the DataLoader or "
                         "sampler=recalign.hooks.ResumableSampler(dataset, seed=SEED)")
    total = int(getattr(tracker, "total_passes", 1) if passes is None else passes)
    if total < 1:
        raise ValueError(f"track: passes must be >= 1, got {passes}")
    if total > 1 and checkpoint is not None and kind in ("seeded", "unseeded"):
        raise ValueError("track: a shuffling DataLoader read in several passes with a checkpoint: the order record "
                         "covers one pass; read the rows in a fixed order (shuffle=False)")
    if checkpoint is None:
        return _track(batches, tracker, None, every, resume, report_every, on_report, index, order, total)
    # Taken before the resume reads the checkpoint, so two runs never both continue one file.
    with _recalign.CheckpointLock(os.fspath(checkpoint)):
        return _track(batches, tracker, checkpoint, every, resume, report_every, on_report, index, order, total)


def _track(batches, tracker, checkpoint, every, resume, report_every, on_report, row_index, order, total):
    skip, first_pass = 0, 0
    if checkpoint is not None:
        order_file = os.fspath(checkpoint) + ".order"
        if resume and os.path.exists(checkpoint):
            _check_order(order_file, order)
            # A verified state's Python corruptions are code, not state: the loaded one gets them again.
            corruptions = getattr(tracker, "corruptions", None)
            loaded = type(tracker).load(os.fspath(checkpoint), *([corruptions] if corruptions else []))
            _check_same_run(checkpoint, tracker, loaded)
            tracker = loaded
            skip, first_pass = int(tracker.n), int(getattr(tracker, "pass_index", 0))
        elif order is not None:
            _write_atomic(order_file, order)
        elif os.path.exists(order_file):
            os.remove(order_file)  # a fresh run in a fixed order: no stale record
    p = first_pass
    while True:
        if not getattr(tracker, "finished", False):  # a resumed finished state has nothing to read
            _track_pass(_passes_iterable(batches, total), tracker, checkpoint, every, report_every, on_report,
                        row_index, skip)
        if p + 1 >= total or getattr(tracker, "finished", False):  # a verified state's adaptive stop
            break
        before = getattr(tracker, "pass_index", None)
        tracker.next_pass()
        if getattr(tracker, "finished", False):  # next_pass's restart ended the passes (VerifiedDenoising's stop)
            break
        # A state may skip passes (a verified state's tolerance met): it says where it is.
        p += 1 if before is None else max(1, int(tracker.pass_index) - int(before))
        skip = 0
        if checkpoint is not None:
            tracker.save(os.fspath(checkpoint))
    if checkpoint is not None:
        tracker.save(os.fspath(checkpoint))
    return tracker


def _check_same_run(checkpoint, given, loaded):
    """Resuming is exact or refused: the state given must be configured as the checkpoint's
    (a resume that took the checkpoint's configuration instead would analyse something else
    than asked, silently). Python's verified states compare the arguments their bytes
    record (_args: what load rebuilds them from); the library's, what their checkpoint header
    records of it (_configuration: D, auxiliary size such as classes, configuration hash).
    `loaded` is of given's type (load is type(given)'s)."""
    if hasattr(given, "_args"):
        mine, theirs = given._args(), loaded._args()
        differ = [k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
        if differ:
            raise ValueError(f"track: resume=True: {os.fspath(checkpoint)} holds a run of another configuration "
                             "than the state given (" + "; ".join(f"{k}: {theirs.get(k)!r} in the checkpoint, "
                                                                  f"{mine.get(k)!r} given" for k in differ) +
                             "): resume with the checkpoint's configuration, or start a new checkpoint")
        return
    if given._configuration != loaded._configuration:
        raise ValueError(f"track: resume=True: {os.fspath(checkpoint)} holds {loaded!r}, another configuration than "
                         f"the state given, {given!r}: resume with the checkpoint's configuration, or start a new "
                         "checkpoint")


def _track_pass(batches, tracker, checkpoint, every, report_every, on_report, row_index, skip):
    index = 0  # batches so far, skipped ones included: reports and checkpoints fall on the
    seen_rows = 0  # same batches in a resumed run as in an uninterrupted one
    # Rows are numbered in the stream (error messages, Monte-Carlo draws) unless the batches
    # carry their index: from the rows the state held before this pass (its n, less the rows
    # a resume skips again), so every state numbers them alike, whatever its update's default.
    base = int(getattr(tracker, "n", 0)) - skip
    takes_labels = _takes_labels(tracker)
    for item in batches:
        images, labels, first_row = _split(item, row_index)
        rows = _rows(images)
        index += 1
        if seen_rows < skip:
            if seen_rows + rows > skip:
                raise ValueError(f"track: the checkpoint ends at row {skip}, inside a batch of rows "
                                 f"{seen_rows}..{seen_rows + rows - 1}: the batches differ from the first run")
            seen_rows += rows
            continue
        kwargs = {"first_row": int(base + seen_rows if first_row is None else first_row)}
        if labels is None or not takes_labels:
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

    shape: the shape of one sample (e.g. (1, 28, 28)), whose values must number `dim`. With
    it, an input is one sample (exactly that shape) or a batch (N, *shape); without it, one
    sample is anything holding exactly `dim` values and a batch must be 2-D (N, dim).
    Anything else is refused (ValueError): a (3, 28, 28) tensor given to a 784-wide
    transform is not read as 3 samples. Returns the same type (torch tensor or NumPy
    array) and shape as the input.
    Floating inputs keep their dtype; integer inputs (uint8 pixels) become float32.
    Picklable, so it works in DataLoader workers (num_workers > 0).

        t = ProjectionTransform.from_moments(acc, fraction=0.75, part="bottom")
        dataset = MyDataset(transform=t)
    """

    def __init__(self, projector, clip=None, shape=None):
        if not isinstance(projector, _recalign.SubspaceProjector):
            raise TypeError(f"ProjectionTransform needs a recalign.SubspaceProjector, got {type(projector).__name__}")
        if shape is not None:
            shape = tuple(int(s) for s in shape)
            if int(np.prod(shape)) != projector.dim:
                raise ValueError(f"ProjectionTransform: a sample of shape {shape} holds {int(np.prod(shape))} values, "
                                 f"the projection {projector.dim}")
        self.projector = projector
        self.clip = clip
        self.shape = shape

    @classmethod
    def from_moments(cls, moments, fraction=0.75, part="top", center="centered", clip=None, shape=None):
        """Projection from the exact spectrum of a MomentAccumulator's second moment."""
        return cls.from_statistics(moments.finish(center), fraction, part, clip=clip, shape=shape)

    @classmethod
    def from_statistics(cls, statistics, fraction=0.75, part="top", clip=None, shape=None):
        """Projection from finished statistics of any route (acc.finish(center), sketch.finish())."""
        return cls(_recalign.SubspaceProjector.from_statistics(statistics, fraction, part), clip=clip, shape=shape)

    @classmethod
    def from_spectrum(cls, spectrum, mean=None, fraction=0.75, part="top", clip=None, shape=None):
        """Projection from any spectrum (exact, FrequentDirections.spectrum(), NystromSketch.spectrum())."""
        return cls(_recalign.SubspaceProjector(spectrum, mean, fraction, part), clip=clip, shape=shape)

    @property
    def k(self):
        """Dimension of the top subspace (SubspaceProjector.k)."""
        return self.projector.k

    @property
    def part(self):
        """'top' or 'bottom' (SubspaceProjector.part)."""
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
        if self.shape is not None:
            if shape == self.shape:
                rows = 1
            elif shape[1:] == self.shape:
                rows = shape[0]
            else:
                raise ValueError(f"ProjectionTransform: input of shape {shape} is neither one sample of shape "
                                 f"{self.shape} nor a batch (N, *{self.shape})")
        elif size == dim:
            rows = 1
        elif len(shape) == 2 and shape[1] == dim:
            rows = shape[0]
        else:
            raise ValueError(f"ProjectionTransform: input of shape {shape} is neither one sample of {dim} values nor "
                             f"a (N, {dim}) batch; to read image batches give the sample shape, e.g. "
                             f"ProjectionTransform(..., shape=(1, 28, 28)) for (N, 1, 28, 28)")
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
        return f"ProjectionTransform({self.projector!r}, clip={self.clip!r}, shape={self.shape!r})"


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
        def __init__(self, data, labels, make_state, batch_size, shuffle, seed, epoch):
            super().__init__()
            self.data, self.labels = data, labels
            self.make_state, self.batch_size = make_state, batch_size
            self.shuffle, self.seed, self.epoch = shuffle, seed, epoch

        def __iter__(self):
            state = self.make_state()
            takes_labels = _takes_labels(state)
            for first_row, images, labels in self._batches():
                if labels is None or not takes_labels:
                    state.update(images, first_row=first_row)
                else:
                    state.update(images, labels, first_row=first_row)
            yield state  # pickled through the worker queue by the state's checkpoint bytes

        def _batches(self):
            """(first_row, images, labels) of this worker's batches."""
            bs, data = self.batch_size, self.data
            if isinstance(data, torch.utils.data.IterableDataset):
                # Every worker reads the whole stream and keeps every num_workers-th batch.
                info = torch.utils.data.get_worker_info()
                workers, me = (1, 0) if info is None else (info.num_workers, info.id)
                items, b = [], 0
                for item in data:
                    items.append(item)
                    if len(items) == bs:
                        if b % workers == me:
                            yield (b * bs,) + _collate(items)
                        items, b = [], b + 1
                if items and b % workers == me:
                    yield (b * bs,) + _collate(items)
                return
            order = _permutation(len(data), self.seed, self.epoch, self.shuffle)
            b0, b1 = worker_shard((len(order) + bs - 1) // bs)
            for b in range(b0, b1):
                rows = order[b * bs:(b + 1) * bs]
                if self.labels is not None or hasattr(data, "shape"):  # arrays
                    if not self.shuffle:
                        rows = slice(b * bs, b * bs + len(rows))
                    yield b * bs, data[rows], None if self.labels is None else self.labels[rows]
                else:
                    yield (b * bs,) + _collate([data[int(i)] for i in rows])

    # Found again by pickle (spawn start method) through the module __getattr__ below.
    _ShardedUpdates.__module__ = __name__
    _ShardedUpdates.__qualname__ = "_ShardedUpdates"
    return _ShardedUpdates


def __getattr__(name):
    if name == "_ShardedUpdates":
        return _sharded_updates_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _collate(items):
    """(images, labels) of a list of dataset items read by position: (x, label, ...) or x."""
    def stack(values):
        if type(values[0]).__module__.startswith("torch"):
            return _torch().stack(values)
        return np.stack([np.asarray(v) for v in values])
    if isinstance(items[0], (tuple, list)):
        return stack([it[0] for it in items]), (stack([it[1] for it in items]) if len(items[0]) > 1 else None)
    return stack(items), None


def ShardedUpdates(data, labels=None, make_state=None, batch_size=256, *, shuffle=False, seed=0, epoch=0):
    """A torch IterableDataset whose every DataLoader worker builds one state with
    `make_state()` (a picklable callable, e.g. functools.partial(AlignmentTracker, 784, 10)),
    feeds it its share of the batches with their global first_row, and yields it once.
    Merge what DataLoader(..., batch_size=None, num_workers=N) yields with merge_all().

    data: arrays (images, with `labels` beside them or None), a map-style Dataset of
        (x, label, ...) items or bare x (read by position, labels=None), or an
        IterableDataset (every worker reads the whole stream and keeps every num_workers-th
        batch: it must not shard itself).
    batch_size: rows per update. shuffle: map-style data and arrays are read in the order
        np.random.default_rng([seed, epoch]).permutation(len(data)) (ResumableSampler's),
        cut into contiguous shares per worker; rows are numbered (first_row) by their
        position in that order. An IterableDataset cannot be shuffled here (ValueError).
    """
    if make_state is None or not callable(make_state):
        raise TypeError(f"ShardedUpdates: make_state must be a callable returning a state, got {type(make_state).__name__}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"ShardedUpdates: batch_size must be an integer >= 1, got {batch_size!r}")
    torch = _torch()
    if torch is not None and isinstance(data, torch.utils.data.IterableDataset):
        if shuffle:
            raise ValueError("ShardedUpdates: an IterableDataset has no positions to shuffle; shuffle inside it "
                             "(with a seed) or use a map-style Dataset")
        if labels is not None:
            raise ValueError("ShardedUpdates: labels come from the dataset's items; pass labels=None")
    elif not hasattr(data, "shape") and labels is not None:
        raise ValueError("ShardedUpdates: labels come from the dataset's items; pass labels=None")
    return _sharded_updates_class()(data, labels, make_state, batch_size, bool(shuffle), int(seed), int(epoch))
