"""Sketch routes with a verification pass (MATH.md §7, issue 14), the Python side of
``recalign align|denoise|tradeoff|spectrum --method fd|nystrom --rank K [--passes P] [--tolerance T]``
(denoise, tradeoff: ``[--refine N]``; spectrum, also what ``recalign project`` draws from:
VerifiedSpectrum, without labels).

A sketch (Frequent Directions or Nyström, plus the exact class statistics and, for masking
noises, the exact patch blocks) finds the subspaces; one more pass over the data (for denoise with
a masking noise, `refine` more that refine its subspace; for the trade-off up to `refine` more CG
passes, ending early at an adaptive stop: `finished`) accumulates the restricted moments of what was found, so every number reported is
exact for the subspace or encoder returned, beside the sketch's own error information.

The states are accumulators read several times: ``total_passes`` reads of the same rows in the
same order, ``next_pass()`` between them, ``pass_index`` and ``n`` (rows of the current pass).
``recalign.track(batches, state)`` drives them over every pass (``batches`` re-iterable, or a
callable returning a fresh iterable); ``verified_align`` / ``verified_denoise`` /
``verified_tradeoff`` / ``verified_spectrum`` do both in one call. The same data in the same batches gives the CLI's
numbers bit for bit (same configuration: Nyström oversampling and probes min(10, ...), FD
ell = min(3 · rank, dim), ``_recalign.frequent_directions_default_ell``; a state begun with the
earlier min(2 · rank, dim) resumes with it). What the CLI refuses before reading is refused by the constructors (ValueError,
before any batch): the options, and a run whose memory estimate (the CLI's own,
recalign/align/verified_memory.hpp) exceeds ``memory=`` GiB (default: physical memory).
"""
import contextlib
import io
import json
import math
import os
import stat
import struct

import numpy as np

from . import _recalign
from ._order import _write_atomic
from ._verified_memory import _require_memory
from ._verified_io import _BytesSource, _FileSource, _MAGIC, _VERSION, _ParkedPart, _digest, _file_error, _parked, \
    _read_state
from ._verified_results import SketchError, VerifiedAlignmentResult, VerifiedDenoisingResult, VerifiedNoise, \
    VerifiedSpectrumResult, VerifiedTradeoffResult

__all__ = ["Corruption", "VerifiedAlignment", "VerifiedDenoising", "VerifiedSpectrum", "VerifiedTradeoff", "verified_align",
           "verified_denoise", "verified_spectrum", "verified_tradeoff", "SketchError", "VerifiedAlignmentResult",
           "VerifiedDenoisingResult", "VerifiedNoise", "VerifiedSpectrumResult", "VerifiedTradeoffResult"]


class _VerifiedRun:
    """What the three analyses share: the sketch passes, the verification passes, the verbs."""

    verification_passes = 1
    _krylov = False  # VerifiedAlignment: block Krylov sketch passes, as the CLI's align
    _labelled = True  # VerifiedSpectrum: no labels (classes = 0, no ClassMoments part)
    # Whether _basis reads the finished sketch's class statistics (VerifiedTradeoff's orth([U, Sxy])).
    # VerifiedAlignment: its labels come from the verification pass alone (Vᵀ Sxy), so its sketch is
    # finished without Sxy (C x D beside the class sums), as the CLI's (verify_plan::basis_reads_labels).
    _basis_reads_labels = True

    def __init__(self, dim, classes, *, method="nystrom", rank, passes=1, seed=0, center="uncentered", tolerance=None,
                 memory=None, precision="f64", test_matrix="signs"):
        for name, value in (("dim", dim), ("classes", classes), ("rank", rank), ("passes", passes), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {value!r}")
        dim, classes, rank, passes = int(dim), int(classes), int(rank), int(passes)
        if dim < 1:
            raise ValueError(f"dim must be >= 1 (D, the row width), got {dim}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if method not in ("fd", "nystrom"):
            raise ValueError(f"method must be 'fd' or 'nystrom' (the exact route needs no verification), got {method!r}")
        if not 1 <= rank <= dim:
            raise ValueError(f"rank must lie in [1, {dim}] (D = {dim}), got {rank}")
        if method == "fd" and passes != 1:
            raise ValueError("passes applies to method='nystrom' only")
        if not 1 <= passes <= 100:
            raise ValueError(f"passes must lie in [1, 100], got {passes}")
        if self._labelled and classes < 1:
            raise ValueError(f"classes must be >= 1 (the analyses read class labels), got {classes}")
        if center not in ("uncentered", "centered"):
            raise ValueError(f"center must be 'uncentered' or 'centered', got {center!r}")
        if precision not in ("f64", "f32-kernels"):
            raise ValueError(f"precision must be 'f64' or 'f32-kernels' (the CLI's --precision), got {precision!r}")
        # The CLI's --precision: the sketch's per-batch products (Nyström's SGEMM for uint8 and
        # float32 batches, FD's shrinks) in single precision; the verification passes compute every
        # number in double either way. How a batch is computed, not what is accumulated: not part
        # of the configuration (states of either merge, as the CLI's).
        kernels = precision == "f32-kernels"
        if tolerance is not None:
            tolerance = float(tolerance)
            if method != "nystrom":
                raise ValueError("tolerance applies to method='nystrom' only")
            if not 0 < tolerance < 1:
                raise ValueError(f"tolerance must lie in (0, 1), got {tolerance}")
            if passes < 2:
                raise ValueError("tolerance needs passes >= 2: the most passes to run until the estimate meets it")
        # The CLI's --test-matrix: Nyström's first-pass Ω, dense signs or sparse signs (8 a row).
        if test_matrix not in ("signs", "sparse"):
            raise ValueError(f"test_matrix must be 'signs' or 'sparse' (the CLI's --test-matrix), got {test_matrix!r}")
        if test_matrix == "sparse" and method != "nystrom":
            raise ValueError("test_matrix applies to method='nystrom' only")
        _require_memory(self, method, dim, classes, rank, passes, memory)
        self._config = {"kind": type(self).__name__, "dim": dim, "classes": classes, "method": method, "rank": rank,
                        "passes": passes, "seed": int(seed), "center": center}
        if tolerance is not None:  # only then: states saved before the option load as they were
            self._config["tolerance"] = tolerance
        if test_matrix == "sparse":  # likewise (the CLI saves it only when sparse too)
            self._config["test_matrix"] = test_matrix
        if method == "fd":
            self._sketch = _recalign.FrequentDirections(dim, _recalign.frequent_directions_default_ell(rank, dim),
                                                        center=center, float32_kernels=kernels)
        else:
            # The CLI's sketch (route_state.cpp, nystrom_route_options): block Krylov over all
            # passes with rank + max(rank, 10) columns for align's passes >= 2, else rank + 10.
            krylov = self._krylov and passes > 1
            self._sketch = _recalign.NystromSketch(dim, rank, oversampling=min(max(rank, 10) if krylov else 10, dim - rank),
                                                   probes=min(10, dim), seed=int(seed), center=center,
                                                   blocks=passes if krylov else 1, float32_kernels=kernels,
                                                   **({"test": "sparse"} if test_matrix == "sparse" else {}))
        self._labels = _recalign.ClassMoments(dim, classes) if self._labelled else None
        self._blocks = [_recalign.PatchBlocks(shape, patch, layout) for shape, patch, layout in self._geometries()]
        # Monte-Carlo noises: a MonteCarloSketch each in the first pass (Ω random), and one on the
        # basis Q of every verification pass (the same corruptions drawn again).
        self._mc = [_recalign.MonteCarloSketch(_recalign.gaussian_test_matrix(dim, min(rank + 10, dim), seed_), **make)
                    for seed_, make, _ in self._monte_carlo()]
        self._verify = None  # RestrictedMoments of the current verification pass
        self._finished_sketch = None  # sketch() once the sketch passes end (it reads no more rows)
        self._mc_basis = []  # MonteCarloSketch on the verification basis, one per Monte-Carlo noise
        self._pass = 0

    def _test_args(self):
        """The constructor's test_matrix as _args() saves it: only when sparse (older states' bytes)."""
        return {"test_matrix": self._config["test_matrix"]} if "test_matrix" in self._config else {}

    # ---- what a subclass defines ------------------------------------------------------
    def _geometries(self):
        """(shape, patch, layout) of every PatchBlocks accumulated in the first pass."""
        return []

    def _basis(self, sketch, previous):
        """The basis of the next verification pass (previous: the last pass's statistics or None)."""
        raise NotImplementedError

    def _monte_carlo(self):
        """(seed, MonteCarloSketch constructor options, from_bytes options) of every Monte-Carlo noise."""
        return []

    def _verification(self):
        """recalign._recalign.verification_memory's analysis and its options (noises, shape, layout)."""
        raise NotImplementedError

    @classmethod
    def _loadable(cls, args):
        """The constructor arguments of a saved state, as this build takes them (older states: as saved)."""
        return args

    def _require_room(self):
        """Refuses (ValueError) what the passes left would need on disk and cannot have, before they
        read a batch (the CLI's refusal before reading): VerifiedDenoising's refinement passes and
        $TMPDIR. Called by __init__ (but with memory=math.inf: no check) and by from_bytes for a
        state that has passes left to read."""

    def _spill(self):
        """Bytes the passes left keep in $TMPDIR (VerifiedDenoising's refinement passes; else none)."""
        return 0

    def _park(self):
        """Once the verification begins the sketch reads no more rows: parked in $TMPDIR, as the CLI's,
        when there is room beside what the passes left need there (_verified_io._parked)."""
        if self._pass >= self._config["passes"] and not isinstance(self._sketch, _ParkedPart):
            self._sketch = _parked(self._sketch, self._spill())

    def _stop(self):
        """The adaptive stop after a complete verification pass that is not the last (the CLI's
        verify_plan.done): True skips the passes left, this one is the result."""
        return False

    @property
    def corruptions(self):
        """The Python corruptions (recalign.Corruption) among the noises: load(), from_bytes() and a
        resumed track() need them again (the functions are code, not state)."""
        return []

    # ---- passes -----------------------------------------------------------------------
    @property
    def total_passes(self):
        """Reads of the data: the sketch's passes, then the verification passes (with a tolerance,
        the most: next_pass() then skips the sketch passes left once the estimate meets it)."""
        return self._config["passes"] + self.verification_passes

    @property
    def pass_index(self):
        """The current pass (0 = the first read of the data)."""
        return self._pass

    @property
    def n(self):
        """Rows seen in the current pass."""
        return self._verify.n if self._verify is not None else self._sketch.n

    @property
    def dim(self):
        """D, the row width."""
        return self._config["dim"]

    @property
    def classes(self):
        """C, the number of classes."""
        return self._config["classes"]

    @property
    def empty(self):
        """True before the first row of the current pass."""
        return self.n == 0

    def __len__(self):
        return int(self.n)

    def update(self, x, labels, first_row=None):
        """Add a batch (rows = samples) and its class ids to the current pass; first_row
        (default n: the rows before it in this pass) only numbers rows in error messages.
        The first part to read a batch validates rows and labels, so a refused batch changes
        nothing."""
        first_row = int(self.n if first_row is None else first_row)
        verifying = self._pass >= self._config["passes"]
        # Monte-Carlo sketches (whose corruption may fail) read and corrupt the batch first,
        # changing nothing, and add it in place once every part has read it, as the CLI's
        # monte_carlo_state does.
        mc = self._mc_basis if verifying else self._mc if self._pass == 0 else []
        prepared = [m.prepare(x, first_row) for m in mc]
        if not verifying:
            if self._pass == 0 and self._labels is not None:
                self._labels.update(x, labels, first_row)
            self._sketch.update(x, first_row)
            if self._pass == 0:
                for b in self._blocks:
                    b.update(x, first_row)
        else:
            if self._verify is None:
                raise ValueError(f"update: pass {self._pass} is complete and the passes have ended there (finished: "
                                 "the last pass, or the refinement's adaptive stop): report()")
            self._verify.update(x, labels, first_row)
        for m, p in zip(mc, prepared):
            m.commit(p)

    def next_pass(self):
        """End the current pass (all rows read) and start the next: a Nyström power iteration,
        or a verification (or refinement) pass on the basis computed from what the earlier
        passes found; with `tolerance` met, the verification, skipping the sketch passes left."""
        nxt = self._pass + 1
        if nxt >= self.total_passes:
            raise ValueError(f"next_pass: all {self.total_passes} passes are done")
        if self.n == 0:
            raise ValueError(f"next_pass: pass {self._pass} has seen no rows")
        if self.finished:
            raise ValueError(f"next_pass: the adaptive stop ended the verification after pass {self._pass}: "
                             "report() now")
        if nxt < self._config["passes"] and self._tolerance_met():
            nxt = self._config["passes"]  # the CLI's --tolerance: the verification starts now
        if nxt < self._config["passes"]:
            self._sketch.next_pass()
        else:
            entering = self._pass < self._config["passes"]  # the sketch reads no more rows: finished once
            if entering:
                self._finished_sketch = self._finish_sketch(self._sketch, self._labels)
                # Parked before the basis is built, as the CLI's: from here only a checkpoint reads it.
                self._sketch = _parked(self._sketch, self._spill())
            try:
                basis = self._next_basis()
                verify = _recalign.RestrictedMoments(basis, self._config["classes"])
                mc = [_recalign.MonteCarloSketch(basis, ranges=False, **make) for _, make, _ in self._monte_carlo()]
            except BaseException:
                if entering:  # the sketch's last pass goes on: it may read more rows
                    self._finished_sketch = None
                    if isinstance(self._sketch, _ParkedPart):
                        self._sketch = self._sketch.load()  # read back from its file: the same bits
                raise
            self._verify, self._mc_basis = verify, mc
        self._pass = nxt
        self._park()

    def _next_basis(self):
        """The basis the next verification pass reads, from the sketch and the pass just read."""
        previous = self._verify.finish(self._config["center"]) if self._verify is not None else None
        basis = self._basis(self.sketch(), previous)
        for m in self._mc:  # each Monte-Carlo noise's Ritz space: span(Q, G Ω, Bs Ω, Bsᵀ Ω)
            basis = _recalign.monte_carlo_ritz_basis(basis, m.products())
        return basis

    def _closed(self):
        """True for a complete verification pass already joined to what the state carries (its
        accumulator gone): VerifiedDenoising's incremental refinement."""
        return False

    def _carried(self):
        """What the state carries between its passes beside its parts (to_bytes' last part: an
        object with to_bytes, _write_to and _framed_size), or None."""
        return None

    def _load_carried(self, load, offset, size, version, source):
        """Sets what _carried() saved: `size` bytes at `offset`, load(kind) reads them as a `kind`
        (version 1 states have none)."""
        if size:
            raise _file_error(source, offset, f"a {type(self).__name__} carries nothing between its passes")

    def _tolerance_met(self):
        """The stopping rule of `tolerance` after a sketch pass (the CLI's passes_to_skip)."""
        t = self._config.get("tolerance")
        return t is not None and self._sketch.relative_error(self._config["rank"]) <= t

    @property
    def finished(self):
        """True once every pass to run is read: the last of total_passes, or a complete verification
        pass after which the adaptive stop skips the rest (VerifiedTradeoff)."""
        if self._closed():
            return self._stop()
        if self._verify is None or self._verify.n != self._sketch.n:
            return False
        return self._pass == self.total_passes - 1 or self._stop()

    def _verification_passes_run(self):
        """Verification passes run so far (with a tolerance met, the first came early)."""
        return self._pass - self._config["passes"] + 1 if self._pass >= self._config["passes"] else 0

    @property
    def sketch_passes(self):
        """Sketch passes accumulated (Nyström: its power iterations + 1; FD: 1)."""
        return getattr(self._sketch, "pass_index", 0) + 1

    def sketch(self):
        """The sketch's finished Statistics (top `rank` eigenpairs; class statistics where the
        analysis's basis reads them: not VerifiedAlignment's, whose labels are read in its
        verification pass). Finished once when the sketch passes have ended, as the CLI's: the
        restarts and the report share it."""
        if self._finished_sketch is not None:
            return self._finished_sketch
        finished = self._finish_sketch(self._sketch, self._labels)
        if self._pass >= self._config["passes"]:  # not while the sketch may still read rows
            self._finished_sketch = finished
        return finished

    def _finish_sketch(self, sketch, labels):
        """`sketch` finished at the run's rank, with the class statistics `labels` where the basis
        reads them (the run's own and a loaded state's parts: _verified_io), as the CLI's."""
        return sketch.finish(labels=labels if self._basis_reads_labels else None, rank=self._config["rank"])

    @property
    def blocks(self):
        """The exact PatchBlocks of the first pass (copies)."""
        return [b.copy() for b in self._blocks]

    def verified(self):
        """RestrictedStatistics of the last verification pass."""
        self._require_done()
        return self._verify.finish(self._config["center"])

    @contextlib.contextmanager
    def _lent(self, back):
        """Lends the pass accumulator's V and Sxx V: yields True when they may be moved out (its bytes
        wait in $TMPDIR, with room beside the passes' own files; else False: copy them), and reads
        the accumulator back from there if the block fails, and after it when `back`."""
        saved = _parked(self._verify, self._spill())
        taken = saved is not self._verify
        try:
            yield taken
        except BaseException:
            if taken:
                self._verify = saved.load()
            raise
        if taken and back:
            self._verify = saved.load()

    def _taken(self, use):
        """use(the last verification pass's statistics) for report(): the accumulator's V and Sxx V
        moved into them instead of copied (as the CLI's take_verified; 2 D x K doubles less at the
        analyses), the accumulator read back after, so the state is unchanged (report() may be
        asked again)."""
        with self._lent(back=True) as taken:
            center = self._config["center"]
            return use(self._verify.take(center) if taken else self._verify.finish(center))

    def _require_done(self):
        if not self.finished:
            complete = self._verify is not None and self._verify.n == self._sketch.n
            raise RuntimeError(f"{type(self).__name__}: the result needs all {self.total_passes} passes over the same "
                               f"rows (now in pass {self._pass}, {self.n} rows" +
                               ("; it is complete: next_pass(), whose refinement step may end the passes there)"
                                if complete else ")"))

    def _sketch_error(self, sketch, ritz_values, residuals, columns):
        spec, c = sketch.spectrum, self._config
        return SketchError(method=c["method"], test_matrix=getattr(self._sketch, "test", None), rank=spec.rank,
                           verified=True,
                           verification_passes=self._verification_passes_run(), verification_columns=columns,
                           error_bound=spec.error_bound, error_estimate=spec.error_estimate,
                           ritz_values=ritz_values, residuals=residuals,
                           sketch_passes=self.sketch_passes, max_passes=c["passes"],
                           relative_estimate=spec.error_estimate / spec.total if spec.total > 0 else math.nan,
                           tolerance=c.get("tolerance", math.nan))

    # ---- the verbs every accumulator shares -------------------------------------------
    def merge(self, other):
        """Add a state of the same configuration over other rows of the same pass: the parts
        this pass accumulates merge by their own rules (pass 0: sketch, class statistics,
        blocks, Monte-Carlo sketches; Nyström's later passes: the sketch; a verification pass: its
        restricted moments and Monte-Carlo products), the parts of earlier passes must be equal
        (shards of a later pass start from copies of one merged state: s.next_pass(); shard =
        s.copy()). Strong guarantee."""
        if type(other) is not type(self):
            raise TypeError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}")
        if other._config != self._config or other._pass != self._pass or other._args() != self._args():
            raise ValueError(f"cannot merge: configuration or pass differ ({other!r} into {self!r})")
        if self._closed() or other._closed():
            raise ValueError(f"cannot merge: pass {self._pass} is complete (its refinement step is computed)")
        if _digest(self._carried()) != _digest(other._carried()):
            raise ValueError(f"cannot merge: what the states carry from earlier passes differs; shards of pass "
                             f"{self._pass} must start from copies of one merged state")
        mine, theirs = self._parts(), other._parts()
        active = self._active()
        for i, (a, b) in enumerate(zip(mine, theirs)):
            if i not in active and (a is None) != (b is None) or (i not in active and a is not None and
                                                                  _digest(a) != _digest(b)):
                kind = getattr(a, "kind", type(a)).__name__  # a parked part names what it holds
                raise ValueError(f"cannot merge: the {kind} of earlier passes differs; shards of pass "
                                 f"{self._pass} must start from copies of one merged state")
        parts = [p.copy() if i in active and p is not None else p for i, p in enumerate(mine)]
        for i in active:
            if parts[i] is not None:  # VerifiedSpectrum holds no class statistics
                parts[i].merge(theirs[i])
        self._set_parts(parts)

    def _active(self):
        """Indices (in _parts()) of what the current pass accumulates."""
        first = 2 + len(self._blocks) + len(self._mc)  # the verification pass's parts from here
        if self._pass >= self._config["passes"]:
            return list(range(first, first + 1 + len(self._mc)))
        return list(range(first)) if self._pass == 0 else [0]

    def _parts(self):
        """[sketch, class statistics, blocks..., Monte-Carlo sketches..., restricted moments (None
        before the verification), Monte-Carlo products on its basis (None before)...]."""
        return [self._sketch, self._labels] + self._blocks + self._mc + [self._verify] + \
            (self._mc_basis if self._verify is not None else [None] * len(self._mc))

    def _set_parts(self, parts):
        nb, nm = len(self._blocks), len(self._mc)
        if parts[0] is not self._sketch or parts[1] is not self._labels:
            self._finished_sketch = None
        self._sketch, self._labels = parts[0], parts[1]
        self._blocks = parts[2:2 + nb]
        self._mc = parts[2 + nb:2 + nb + nm]
        self._verify = parts[2 + nb + nm]
        self._mc_basis = parts[3 + nb + nm:] if self._verify is not None else []

    def _part_from(self, i, load, kind):
        """Part i of _parts() read by load(kind, **options): `kind` is the fresh part's type (None:
        the verification's RestrictedMoments); Monte-Carlo sketches get their corruption again."""
        nb, nm = len(self._blocks), len(self._mc)
        j = i - 2 - nb if i < 2 + nb + nm else i - 3 - nb - nm
        if 2 + nb <= i < 2 + nb + nm or i > 2 + nb + nm:
            return load(_recalign.MonteCarloSketch, **self._monte_carlo()[j][2])
        return load(kind if kind is not None else _recalign.RestrictedMoments)

    def _write(self, write):
        """to_bytes()'s bytes handed to write() as they are made: a header (magic, version,
        configuration as JSON, pass), then each part's own checkpoint bytes after their u64 length
        (validated on load), a part's large arrays straight from the state. save() writes a file so,
        never holding a copy of the state in memory beside it."""
        head = json.dumps({"config": self._config, "args": self._args(), "pass": self._pass}).encode()
        write(_MAGIC + struct.pack("<II", _VERSION, len(head)) + head)
        for p in self._parts() + [self._carried()]:
            size = 0 if p is None else p._framed_size
            write(struct.pack("<Q", size))
            if p is not None:
                written = [0]

                def counted(piece):
                    written[0] += len(piece)
                    write(piece)
                p._write_to(counted)
                if written[0] != size:
                    raise RuntimeError(f"a {type(p).__name__} changed size while it was written ({written[0]} bytes "
                                       f"where {size} were counted)")

    def to_bytes(self):
        """The state as bytes: a header (magic, version, configuration as JSON, pass) and each
        part's own checkpoint bytes (validated on load)."""
        out = io.BytesIO()
        self._write(out.write)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data, source="<bytes>", corruptions=None):
        """Rebuild a state from to_bytes() output; bad bytes raise recalign.FileError.
        corruptions: the recalign.Corruption objects of a state with Python corruptions (matched
        by name, draws and seed; ValueError when one is missing). A state past its sketch passes
        finishes its sketch as it is read (2.5-3.3 s at 224x224x3 and rank 256), as the run did once."""
        return cls._read(_BytesSource(data, source), corruptions)

    @classmethod
    def _read(cls, src, corruptions, finished=None):
        return _read_state(cls, src, corruptions, _KINDS, finished)

    def save(self, path):
        """Atomic checkpoint file (temporary file in the same directory, fsync, rename), written
        part by part as the state makes its bytes: no copy of the state in memory beside it."""
        _write_atomic(path, self._write)

    @classmethod
    def load(cls, path, corruptions=None):
        """A state saved by save(); errors name the file and byte offset. corruptions: as from_bytes.
        Each part is read where it lies in the file (a pipe is read whole first)."""
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return cls.from_bytes(f.read(), str(path), corruptions)
            return cls._read(_FileSource(f.fileno(), str(path)), corruptions)

    def copy(self):
        """An independent copy of the state (sharing the finished sketch, which nothing changes)."""
        return type(self)._read(_BytesSource(self.to_bytes(), "<bytes>"), self.corruptions, self._finished_sketch)

    def __reduce__(self):  # Python corruptions travel by reference
        return (_from_bytes, (self.to_bytes(), self.corruptions or None))

    def __repr__(self):
        c = self._config
        return (f"{type(self).__name__}(dim={c['dim']}, classes={c['classes']}, method='{c['method']}', rank={c['rank']}, "
                f"passes={c['passes']}, pass_index={self._pass}, n={self.n})")


def _from_bytes(data, corruptions=None):
    return _VerifiedRun.from_bytes(data, "<pickle>", corruptions)


from ._verified_kinds import Corruption, VerifiedAlignment, VerifiedDenoising, VerifiedSpectrum, \
    VerifiedTradeoff  # noqa: E402,F401
from ._verified_calls import verified_align, verified_denoise, verified_spectrum, verified_tradeoff  # noqa: E402,F401

_KINDS = {k.__name__: k for k in (VerifiedAlignment, VerifiedDenoising, VerifiedSpectrum, VerifiedTradeoff)}
