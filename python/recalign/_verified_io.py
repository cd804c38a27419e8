"""How a verified state (verified.py) reads its saved bytes: from memory or where they lie in a
file, and what is checked of its parts and arguments."""
import os

from . import _recalign


def _file_error(source, offset, message):
    e = _recalign.FileError(f"{source}: byte offset {offset}: {message}")
    e.file, e.offset = source, offset
    return e


class _BytesSource:
    """A state's bytes in memory, read by _VerifiedRun._read."""

    def __init__(self, data, source):
        self.data, self.source = bytes(data), source
        self.size = len(self.data)

    def read(self, offset, n):
        return self.data[offset:offset + n]

    def load(self, kind, offset, size, **options):  # a part: the kind's from_bytes, read in place
        chunk = memoryview(self.data)[offset:offset + size]
        if kind is _recalign.DenoisingRefinement:
            return kind.from_bytes(chunk, self.source, offset)
        return kind.from_bytes(chunk, **options)


class _FileSource:
    """A saved state read where it lies in the open regular file `fd` (each part through its
    kind's _load_range: errors name the file and its offsets, no copy of the file in memory)."""

    def __init__(self, fd, source):
        self.fd, self.source = fd, source
        self.size = os.fstat(fd).st_size

    def read(self, offset, n):
        out = b""
        while len(out) < n:
            piece = os.pread(self.fd, n - len(out), offset + len(out))
            if not piece:
                break
            out += piece
        return out

    def load(self, kind, offset, size, **options):
        return kind._load_range(self.fd, offset, size, self.source, **options)


def _signature(part, on_basis=False):
    """The configuration of a part, as far as its properties tell (its checkpoint header checks the
    rest); on_basis: a Monte-Carlo sketch on the verification basis, compared with the noise's
    first-pass sketch (its Ω is the basis, checked against the restricted moments' by the report)."""
    names = {"FrequentDirections": ("dim", "ell"), "NystromSketch": ("dim", "rank", "width"),
             "ClassMoments": ("dim", "classes"), "PatchBlocks": ("dim", "shape", "patch", "layout"),
             "RestrictedMoments": ("dim", "has_labels"),
             "MonteCarloSketch": ("dim", "name", "draws", "seed") + (() if on_basis else ("columns", "ranges"))}
    return (type(part).__name__,) + tuple(getattr(part, a) for a in names[type(part).__name__])


class _MissingCorruption(ValueError):
    pass


def _with_corruptions(args, corruptions):
    """The constructor arguments of a state, with every Python corruption (saved as its name, draws
    and seed) replaced by the matching recalign.Corruption of `corruptions`."""
    if not any(isinstance(n, dict) for n in args.get("noises") or []):
        return args
    if corruptions is not None and not isinstance(corruptions, (list, tuple)):
        corruptions = [corruptions]  # one Corruption given as itself
    found = []
    for n in args["noises"]:
        if not isinstance(n, dict):
            found.append(n)
            continue
        match = [c for c in corruptions or [] if (c.name, c.draws, c.seed) == (n["corruption"], n["draws"], n["seed"])]
        if not match:
            raise _MissingCorruption(
                f"the state has the Python corruption '{n['corruption']}' (draws={n['draws']}, seed={n['seed']}), code "
                "that is not saved with it: give it again, e.g. VerifiedDenoising.load(path, corruptions=[recalign."
                f"Corruption(fn, '{n['corruption']}', draws={n['draws']}, seed={n['seed']})])")
        found.append(match[0])
    return dict(args, noises=found)
