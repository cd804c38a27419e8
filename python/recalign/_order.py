"""The row order of a pass, for exact resumes: ResumableSampler (an order that is a pure
function of (n, seed, epoch)), what track() records of a torch DataLoader's sampler beside a
checkpoint (PATH.order, written atomically) and the check a resume makes against it."""
import hashlib
import os
import stat
import tempfile

import numpy as np


def _order_of(batches):
    """How a torch DataLoader orders its rows: ("fixed", None) sequential; ("seeded", record)
    where record names the sampler's state at the start of the pass; ("unseeded", None) a
    shuffling sampler without a generator; ("unknown", None) anything else."""
    sampler = getattr(batches, "sampler", None)
    batch_sampler = getattr(batches, "batch_sampler", None)
    inner = getattr(batch_sampler, "sampler", None)
    if inner is None:
        inner = sampler
    if inner is None or not hasattr(batches, "dataset"):
        return "unknown", None
    if isinstance(inner, ResumableSampler):
        return "seeded", inner.record()
    name = type(inner).__name__
    if name == "SequentialSampler":
        return "fixed", None
    if hasattr(inner, "generator"):  # RandomSampler, SubsetRandomSampler, WeightedRandomSampler
        if inner.generator is None:
            return "unseeded", None
        digest = hashlib.sha256(inner.generator.get_state().numpy().tobytes()).hexdigest()
        return "seeded", f"{name} generator state sha256 {digest}"
    if all(hasattr(inner, a) for a in ("seed", "epoch", "shuffle")):  # DistributedSampler
        return "seeded", f"{name}(seed={inner.seed}, epoch={inner.epoch}, shuffle={inner.shuffle})"
    return "unknown", None


def _check_order(path, order):
    if order is None:
        return
    try:
        with open(path, encoding="utf-8") as f:
            recorded = f.read()
    except FileNotFoundError:
        recorded = None
    if recorded != order:
        raise ValueError(f"track: cannot resume: the checkpoint's run read its rows in the order of "
                         f"{recorded or 'an unrecorded sampler'} ({path}), this loader's sampler is {order}: "
                         "another seed, or a generator already used for an earlier pass; resuming would count "
                         "rows twice or never. Recreate the generator with the first run's seed")


def _write_atomic(path, text):
    """Written to a temporary file in the same directory, fsynced, renamed (as the checkpoints);
    `text` is a str (UTF-8), bytes, or a callable given the file's write (binary) to write with
    (a state written as it makes its bytes: recalign.VerifiedAlignment & co.). An existing pipe,
    FIFO, socket or device (/dev/null, a consumer's FIFO) is written in place, as the library's
    atomic_writer does: renaming onto it would replace the device node itself. A symbolic link
    stays a link: the file it names is replaced."""
    binary = isinstance(text, (bytes, bytearray)) or callable(text)
    fill = text if callable(text) else lambda write: write(text)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode):
        with open(path, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            fill(f.write)
        return
    if os.path.islink(path) and os.path.exists(path):
        path = os.path.realpath(path)  # a link stays a link: the file it names is replaced
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            fill(f.write)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _permutation(count, seed, epoch, shuffle):
    """The row order of a pass: a pure function of (count, seed, epoch)."""
    if not shuffle:
        return np.arange(count)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(count)


class ResumableSampler:
    """A DataLoader sampler whose order is a pure function of (len(data), seed, epoch):
    np.random.default_rng([seed, epoch]).permutation(len(data)), or 0..n-1 when shuffle is
    False. track(..., resume=True) records it beside the checkpoint and a resumed run with the
    same seed and epoch replays the same order, so the rows already counted are skipped
    exactly. Call set_epoch(e) before each pass for a new order per epoch.

        loader = DataLoader(ds, batch_size=128, sampler=ResumableSampler(ds, seed=7))
    """

    def __init__(self, data, seed, shuffle=True, epoch=0):
        self.count = data if isinstance(data, int) else len(data)
        self.seed, self.shuffle, self.epoch = int(seed), bool(shuffle), int(epoch)

    def set_epoch(self, epoch):
        """Use the order of pass `epoch` (call before iterating)."""
        self.epoch = int(epoch)

    def record(self):
        """The text track() keeps beside a checkpoint: equal records, equal orders."""
        return f"ResumableSampler(count={self.count}, seed={self.seed}, epoch={self.epoch}, shuffle={self.shuffle})"

    def __iter__(self):
        return iter(_permutation(self.count, self.seed, self.epoch, self.shuffle).tolist())

    def __len__(self):
        return self.count

    def __repr__(self):
        return self.record()
