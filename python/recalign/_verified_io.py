"""How a verified state (verified.py) reads its saved bytes: from memory or where they lie in a
file, and what is checked of its parts and arguments."""
import hashlib
import math
import os
import tempfile

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


class _ParkedPart:
    """A part no pass changes any more (the sketch, once the verification begins) kept in an
    unlinked file in `directory` instead of in memory, as the CLI parks it (tools/recalign/
    route_state.hpp): its to_bytes() bytes, handed on by _write_to, read back by finish() for as
    long as that takes. It never changes, so copies share the file."""
    _ATTRIBUTES = ("n", "dim", "pass_index", "test", "ell", "rank", "width")

    def __init__(self, part, directory):
        self.kind, self._framed_size = type(part), part._framed_size
        self._attributes = {a: getattr(part, a) for a in self._ATTRIBUTES if hasattr(part, a)}
        f = tempfile.TemporaryFile(dir=directory)
        try:
            part._write_to(f.write)
            f.flush()
            if f.tell() != self._framed_size:
                raise OSError(f"a parked {self.kind.__name__} wrote {f.tell()} bytes of {self._framed_size}")
        except BaseException:
            f.close()
            raise
        self._file = f

    def __getattr__(self, name):  # the part's properties, as they were when it was parked
        try:
            return self.__dict__["_attributes"][name]
        except KeyError:
            raise AttributeError(name) from None

    def _write_to(self, write):
        offset = 0
        while offset < self._framed_size:
            block = os.pread(self._file.fileno(), min(1 << 22, self._framed_size - offset), offset)
            if not block:
                raise OSError(f"the parked {self.kind.__name__}'s file ended at byte {offset} of {self._framed_size}")
            write(memoryview(block))
            offset += len(block)

    def to_bytes(self):
        pieces = []
        self._write_to(lambda piece: pieces.append(bytes(piece)))
        return b"".join(pieces)

    def finish(self, **options):
        part = self.kind._load_range(self._file.fileno(), 0, self._framed_size, f"<parked {self.kind.__name__}>")
        return part.finish(**options)

    def copy(self):
        return self


def _parked(part, spill):
    """`part` in an unlinked file in $TMPDIR (a _ParkedPart) when the directory has room for it
    beside the `spill` bytes the passes left keep there; else, or when writing it fails, `part`
    itself, in memory, as the CLI keeps it then (the memory estimates count it held)."""
    directory = _recalign.spill_directory()
    if _recalign.spill_shortfall(directory, part._framed_size + math.ceil(spill)):
        return part
    try:
        return _ParkedPart(part, directory)
    except OSError:
        return part


def _digest(part):
    """A digest of part.to_bytes() (None: of no bytes), made as the part writes them: merge()
    compares the parts of earlier passes without a copy of either state in memory."""
    h = hashlib.blake2b(digest_size=32)
    if part is not None:
        part._write_to(h.update)
    return h.digest()
