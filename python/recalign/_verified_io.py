"""How a verified state (verified.py) reads its saved bytes: from memory or where they lie in a
file, and what is checked of its parts and arguments."""
import hashlib
import json
import math
import os
import struct
import tempfile

from . import _recalign

_MAGIC = b"RAPYVERI"
# 2: a trailing part with what a state carries between its passes (VerifiedDenoising's
# incremental refinement, recalign._recalign.DenoisingRefinement), and VerifiedTradeoff with its
# CG passes (`refine` in the header's args; diagonal blocks of min(384, D) coordinates).
# Version 1 states load but for a VerifiedDenoising inside its refinement passes (_load_carried
# says why) and a trade-off from before the CG passes (two passes on the diagonal of Sxx:
# refused as of an older format); version-1 trade-offs written with `refine` load.
_VERSION = 2


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

    def load(self):
        """The part, read back from its file (the same bits)."""
        return self.kind._load_range(self._file.fileno(), 0, self._framed_size, f"<parked {self.kind.__name__}>")

    def finish(self, **options):
        return self.load().finish(**options)

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


def _read_state(cls, src, corruptions, kinds, finished=None):
    """A verified state of class `cls` (or a subclass: `kinds` by name) from its saved bytes in `src`
    (_BytesSource, _FileSource): _VerifiedRun.from_bytes and load. Past its sketch passes its sketch
    is finished as it is read, unless `finished` is that sketch finished (copy())."""
    source = src.source
    magic = src.read(0, 16)
    if magic[:8] != _MAGIC:
        raise _file_error(source, 0, "not a verified sketch state (bad magic)")
    if len(magic) < 16:
        raise _file_error(source, len(magic), "truncated header")
    version, size = struct.unpack_from("<II", magic, 8)
    if version not in (1, _VERSION):
        raise _file_error(source, 8, f"verified state version {version} is not supported (this build reads versions "
                                     f"1 and {_VERSION})")
    try:
        head = json.loads(src.read(16, min(size, src.size)))
        if version == 1 and head["config"]["kind"] == "VerifiedTradeoff" and "refine" not in head["args"]:
            raise _file_error(source, 8, "a VerifiedTradeoff of the older format version 1 (two verification "
                                         "passes on the diagonal of Sxx, before the CG passes of version "
                                         f"{_VERSION}): this build cannot continue it exactly; run it again")
        kind = kinds[head["config"]["kind"]]
        if not issubclass(kind, cls):
            raise _file_error(source, 16, f"holds a {kind.__name__}, expected a {cls.__name__}")
        args = kind._loadable(_with_corruptions(head["args"], corruptions))
        state = kind(**args, memory=math.inf)  # a saved state: no memory refusal on load
    except _MissingCorruption:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise _file_error(source, 16, f"bad header: {e}") from None
    if state._config != head["config"]:
        raise _file_error(source, 16, "configuration disagrees with the header")
    offset, parts, first = 16 + size, [], 2 + len(state._blocks) + len(state._mc)

    def length_at(offset):  # a u64 length, then that many bytes: (offset of the bytes, their length)
        if offset + 8 > src.size:
            raise _file_error(source, offset, "truncated")
        (length,) = struct.unpack("<Q", src.read(offset, 8))
        offset += 8
        if offset + length > src.size:
            raise _file_error(source, offset, "truncated")
        return offset, length

    # What each fresh part is, then the fresh parts let go: each saved part is read into a state
    # that no longer holds its fresh twin (one state in memory, not two).
    fresh = [None if p is None else (type(p), _signature(p, i > first)) for i, p in enumerate(state._parts())]
    state._set_parts([None] * len(fresh))
    mc = 2 + len(state._blocks)  # the first Monte-Carlo sketch's part
    passes, pass_ = state._config["passes"], head.get("pass")
    for i, like in enumerate(fresh):
        offset, length = length_at(offset)
        part = None
        if i < first and like is None:  # a part the kind does not hold (VerifiedSpectrum's labels)
            if length:
                raise _file_error(source, offset, f"part {i} holds bytes a {kind.__name__} does not have")
        elif i < first or length:  # the verification pass's parts are empty before it
            part = state._part_from(i, lambda k, **options: src.load(k, offset, length, **options),
                                    like[0] if like else None)
            if like is None:  # a Monte-Carlo sketch on the basis: as its noise's first-pass sketch
                like = (None, _signature(parts[mc + i - first - 1], True)) if i > first else \
                    (None, _signature(part))
            if i == 0 and isinstance(part, _recalign.FrequentDirections) and \
                    part.ell == _recalign.frequent_directions_legacy_ell(state._config["rank"], state.dim):
                # begun before the default ell
                like = (None, _signature(_recalign.FrequentDirections(state.dim, part.ell)))
            if _signature(part, i > first) != like[1] or part.dim != state.dim or \
                    (i > first and part.ranges):
                raise _file_error(source, offset, f"part {i} ({type(part).__name__}) is of another configuration")
        parts.append(part)
        offset += length
        if i == 1 and isinstance(pass_, int) and pass_ >= passes:
            # Past its passes the sketch reads no more rows: finished now, while it and the class
            # statistics are all that is read, and parked, as the run did when its verification
            # began (and the CLI's load_from). Finished later, it was read back on top of the
            # verification pass's state: 38 MB above the run at 112x112x3 and rank 64.
            try:
                if finished is None:
                    finished = state._finish_sketch(parts[0], parts[1])
            except ValueError as e:
                raise _file_error(source, 16, f"pass {pass_}: the sketch cannot be finished: {e}") from None
            parts[0] = _parked(parts[0], state._spill())
    carried = (16, 0)
    if version >= 2:
        carried = length_at(offset)
        offset = sum(carried)
    if offset != src.size:
        raise _file_error(source, offset, "unexpected bytes after the state")
    verifying = [p is not None for p in parts[first:]]
    # With a tolerance the verification may have started before the last sketch pass.
    # A closed pass (VerifiedDenoising's refinement) holds no accumulators of its own.
    ok = isinstance(pass_, int) and 0 <= pass_ < state.total_passes and \
        (all(verifying) == (pass_ >= passes) or pass_ >= passes and not any(verifying)) and \
        (all(verifying) or not any(verifying))
    if ok:
        sketch_pass = getattr(parts[0], "pass_index", min(pass_, passes - 1))
        early = "tolerance" in state._config and pass_ >= passes
        ok = sketch_pass <= passes - 1 if early else sketch_pass == min(pass_, passes - 1)
    if not ok:
        raise _file_error(source, 16, f"pass {pass_!r} disagrees with the parts the state holds")
    state._set_parts(parts)
    state._pass, state._finished_sketch = pass_, finished
    state._load_carried(lambda k: src.load(k, *carried), *carried, version, source)
    if state._pass >= passes and state._verify is None and not state._closed():
        raise _file_error(source, 16, f"pass {pass_!r} disagrees with the parts the state holds")
    if not state.finished:  # it will read on: the disk its passes need, as a new state's
        state._require_room()
    return state
