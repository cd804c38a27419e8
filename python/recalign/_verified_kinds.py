"""The verified sketch analyses (recalign.verified): what each verifies, on which basis."""
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _recalign
from ._verified_results import VerifiedAlignmentResult, VerifiedDenoisingResult, VerifiedNoise, \
    VerifiedSpectrumResult, VerifiedTradeoffResult
from .verified import _VerifiedRun, _file_error

# Ritz vectors of each masking noise a refinement pass corrects (the CLI's `refined`,
# tools/recalign/denoise_sketch.cpp: the accuracy targets are for K <= 64).
_REFINED = _recalign.DENOISING_REFINED_VECTORS
# The denoising refinement passes by default (the CLI's default_refine, tools/recalign/options.hpp).
_DENOISE_REFINE = 8
# The trade-off's most CG passes after the first by default (the CLI's default_tradeoff_refine,
# tools/recalign/options.hpp; test_cli_parity_* run both defaults).
_TRADEOFF_REFINE = 20


@dataclass(frozen=True)
class Corruption:
    """A noise written in Python for a sketch route's denoising (VerifiedDenoising, verified_denoise),
    as MonteCarloNoise(corrupt=...) takes it on the exact route: corrupt(clean, key) -> corrupted,
    clean a (rows x D) float64 array, key a dict (seed, batch, draw, first_row) from which all the
    randomness must be derived, e.g. np.random.default_rng([key["seed"], key["first_row"],
    key["draw"]]): the verification pass draws the same corruptions again, and a resumed or
    sharded run those of one stream (shards: derive them from first_row, not batch). draws
    (S >= 2) corruptions per sample; name identifies the model (states merge only with the same
    name, draws and seed). Picklable when `corrupt` is (a module-level function: by reference);
    checkpoints hold name, draws and seed only: give it again to load()/from_bytes()."""
    corrupt: Any
    name: str
    draws: int = 16
    seed: int = 0

    def __post_init__(self):
        if not callable(self.corrupt):
            raise ValueError(f"Corruption {self.name!r}: corrupt must be callable, got {type(self.corrupt).__name__}")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("Corruption: a name is needed (it identifies the model)")
        if isinstance(self.draws, bool) or not isinstance(self.draws, (int, np.integer)) or self.draws < 2:
            raise ValueError(f"Corruption {self.name!r}: draws must be an integer >= 2 (as the CLI's --monte-carlo), "
                             f"got {self.draws!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"Corruption {self.name!r}: seed must be an integer >= 0, got {self.seed!r}")

    def __str__(self):
        return self.name


def _measure(measure):
    if measure == "published":
        raise ValueError("measure='published' reads raw targets beside centered inputs, and the verification pass "
                         "evaluates the statistics as streamed (as the CLI, which refuses it with --verify): use "
                         "'paper', 'rank' or 'fit', or the exact route (AlignmentTracker(center='inputs'))")
    if measure not in ("paper", "rank", "fit"):
        raise ValueError(f"measure must be 'paper', 'rank' or 'fit', got {measure!r}")
    return measure


class VerifiedAlignment(_VerifiedRun):
    """`recalign align --method fd|nystrom --rank K --passes P`: the sketch passes, then one
    verification pass on the sketch's top-`rank` basis; report() gives the alignment curve of
    its Ritz vectors, exact for them (a VerifiedAlignmentResult).

        state = VerifiedAlignment(784, 10, method="nystrom", rank=50)
        recalign.track(loader, state)      # reads `loader` state.total_passes times
        state.report().alignment"""

    _krylov = True  # the CLI's align: block Krylov for passes >= 2
    _basis_reads_labels = False  # the curve's labels come from the verification pass (Vᵀ Sxy)

    def __init__(self, dim, classes, *, method="nystrom", rank, passes=1, seed=0, center="uncentered", measure="paper",
                 tolerance=None, memory=None, precision="f64", test_matrix="signs"):
        self._measure = _measure(measure)
        super().__init__(dim, classes, method=method, rank=rank, passes=passes, seed=seed, center=center,
                         tolerance=tolerance, memory=memory, precision=precision,
                         test_matrix=test_matrix)

    def _verification(self):
        return "alignment", {}

    def _args(self):
        c = self._config
        return dict(dim=c["dim"], classes=c["classes"], method=c["method"], rank=c["rank"], passes=c["passes"],
                    seed=c["seed"], center=c["center"], measure=self._measure, tolerance=c.get("tolerance"),
                    **self._test_args())

    def _basis(self, sketch, previous):
        return sketch.spectrum.basis

    def report(self):
        """The VerifiedAlignmentResult (all passes done)."""
        self._require_done()
        return self._taken(self._report)

    def _report(self, passed):
        passed.products()  # the Ritz steps in the pass's coordinates, as the CLI (no rotated D x K copies)
        ritz = _recalign.ritz_alignment(passed, self._measure)
        error = self._sketch_error(self.sketch(), ritz.curve.eigenvalues, ritz.residuals, passed.k)
        return VerifiedAlignmentResult(method=self._config["method"], curve=ritz.curve, ritz=ritz, sketch_error=error)


class VerifiedSpectrum(_VerifiedRun):
    """`recalign spectrum --method fd|nystrom --rank K --passes P` (and the spectrum `recalign
    project` draws from): the sketch passes, then one verification pass on the sketch's top-`rank`
    basis; report() gives a VerifiedSpectrumResult whose spectrum holds the Ritz pairs of that
    subspace (ritz_spectrum): each value the exact second moment along its direction and at most
    the true eigenvalue of its rank, so SubspaceProjector(report().spectrum, mean, fraction)
    chooses k, and reports what it explains, exactly for the directions it projects on. No labels.

        state = VerifiedSpectrum(784, method="nystrom", rank=50)
        recalign.track(loader, state)      # reads `loader` state.total_passes times
        r = state.report()
        r.projector(0.8, "bottom")     # SubspaceProjector(r.spectrum, r.mean, 0.8, "bottom")"""

    _krylov = True  # the CLI's spectrum and project: block Krylov for passes >= 2
    _labelled = False

    def __init__(self, dim, *, method="nystrom", rank, passes=1, seed=0, center="centered", tolerance=None,
                 memory=None, precision="f64", test_matrix="signs"):
        super().__init__(dim, 0, method=method, rank=rank, passes=passes, seed=seed, center=center,
                         tolerance=tolerance, memory=memory, precision=precision,
                         test_matrix=test_matrix)

    def _verification(self):
        return "alignment", {}

    def _args(self):
        c = self._config
        return dict(dim=c["dim"], method=c["method"], rank=c["rank"], passes=c["passes"], seed=c["seed"],
                    center=c["center"], tolerance=c.get("tolerance"), **self._test_args())

    def _basis(self, sketch, previous):
        return sketch.spectrum.basis

    def update(self, x, *, first_row=None):
        """Add a batch (rows = samples, no labels) to the current pass; first_row (default n) only
        numbers rows in error messages. A refused batch changes nothing."""
        super().update(x, None, first_row)

    def report(self):
        """The VerifiedSpectrumResult (all passes done)."""
        self._require_done()
        return self._taken(self._report)

    def _report(self, passed):
        passed.products()  # as the CLI
        sketch = self.sketch()
        r = _recalign.ritz_spectrum(sketch.spectrum, passed)
        return VerifiedSpectrumResult(method=self._config["method"], spectrum=r.spectrum, mean=sketch.mean,
                                      sketch_error=self._sketch_error(sketch, r.spectrum.eigenvalues, r.residuals,
                                                                      passed.k))


class VerifiedDenoising(_VerifiedRun):
    """`recalign denoise --method fd|nystrom --rank K --noise ...`: the sketch and, for every
    patch geometry of the masking noises (dropout: 1x1), the exact PatchBlocks in the first
    pass; then each noise's sketched denoising subspace and one verification pass on
    span(U, V_1, ..., V_m), from which every curve, relative difference and impact is
    computed, exactly for the subspaces returned (Gaussian noise keeps U: impact 0). With a
    masking noise, `refine` more passes (the CLI's --refine, default 8, 0..20; refused, as by the
    CLI, without a masking noise in closed form: nothing to refine) each restart on
    U, every masking noise's Ritz vectors from the previous pass, the first 64 of the pass
    before (the P block, without Monte-Carlo noises, as the CLI) and the preconditioned
    residuals of its first 64 (denoising_refinement, MATH.md §7 "Refining the denoising
    subspace"); the report comes from the last pass. As the CLI's, those passes are incremental
    (each reads only the new directions: the library's denoising_restart / complete_pass, through
    recalign._recalign.DenoisingRefinement) and stop adaptively: once the estimate from the last two
    changes of the stopping curves (recalign._recalign.refinement_estimate) is below
    recalign._recalign.REFINEMENT_STOP (or nothing new is left to read), the next_pass() after
    that pass ends the passes there: `finished` is True (pass_index unchanged), track() stops, a
    further next_pass() refuses; the report's sketch_error.refinement says which (budget,
    passes, stopped, change, estimate, threshold). With a
    Monte-Carlo noise every refinement pass re-verifies the whole span (as the CLI's).
    Monte-Carlo noises (a spec with draws=S, or a Corruption written in Python) sketch the
    corrupted samples in the first pass (G Ω, Bs Ω, Bsᵀ Ω, Ω: D x (rank + 10) from the noise's
    seed: a MonteCarloSketch each), extend every verification pass's span with them and draw
    the same corruptions again there (Qᵀ G Q, Bsᵀ Q), so Theorem 3 is solved exactly on that
    span for the draws made (uncentered only; their Monte-Carlo error is not estimated:
    g_stderr_fro None).
    noises: specs (text or NoiseSpec) or Corruption objects; shape (H, W[, C]) / layout: the image
    geometry of masks whose spec has none. tolerance (Nyström, passes >= 2): the CLI's
    --tolerance, as for every verified state. passes: the CLI's --passes; by default, as the
    CLI's, 2 for Nyström when a masking noise is refined (refine > 0; its refinement converges in
    fewer passes from a two-pass basis), else 1."""

    def __init__(self, dim, classes, noises, *, shape=None, layout="hwc", method="nystrom", rank, passes=None, seed=0,
                 center="uncentered", measure="paper", refine=None, tolerance=None, memory=None, precision="f64",
                 test_matrix="signs"):
        self._measure = _measure(measure)
        if refine is not None and (isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or
                                   not 0 <= refine <= 20):
            raise ValueError(f"refine must be an integer in [0, 20] (the CLI's --refine), got {refine!r}")
        self._refine = _DENOISE_REFINE if refine is None else int(refine)
        if shape is not None and (len(shape) not in (2, 3) or any(
                isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shape)):
            raise ValueError(f"shape: expected (H, W, C) or (H, W) of positive integers (the CLI's --image-shape), "
                             f"got {shape!r}")
        self._shape = None if shape is None else tuple(int(s) for s in shape)
        if layout not in ("hwc", "chw"):
            raise ValueError(f"layout must be 'hwc' or 'chw', got {layout!r}")
        self._layout = layout
        self._noises = [n if isinstance(n, (_recalign.NoiseSpec, Corruption)) else _recalign.NoiseSpec(str(n))
                        for n in noises]
        if not self._noises:
            raise ValueError("noises: give at least one noise spec")
        if self._shape is not None and int(np.prod(self._shape)) != int(dim):
            raise ValueError(f"shape {self._shape} has {int(np.prod(self._shape))} values but the rows have {dim}")
        self._block_of = []
        geometries = []
        for n in self._noises:
            own = getattr(n, "shape", None)
            if own is not None and math.prod(own) != int(dim):
                raise ValueError(f"noise {n}: its shape {'x'.join(map(str, own))} has {math.prod(own)} values but the "
                                 f"rows have {int(dim)}")
            if _is_monte_carlo(n):
                if center != "uncentered":
                    raise ValueError(f"noise {n}: Monte-Carlo noise expectations are uncentered sums: use "
                                     "center='uncentered' (the CLI's --no-center)")
                if n.draws < 2:
                    raise ValueError(f"noise {n}: Monte Carlo needs at least 2 corruptions per sample (draws >= 2, as "
                                     "the CLI's --monte-carlo / draws)")
                self._block_of.append(None)
                continue
            g = self._geometry(n, int(dim))
            if g is not None and g not in geometries:
                geometries.append(g)
            self._block_of.append(None if g is None else geometries.index(g))
        self._geometry_list = geometries
        if refine is not None and not geometries:  # as the CLI's --refine (cmd_denoise.cpp)
            raise ValueError(f"refine={refine} refines a masking noise's subspace, and no noise is one in closed form "
                             "(mask or dropout, without draws; not a Corruption): leave refine out")
        if passes is None:  # the CLI's default: two Nyström passes where a masking noise is refined
            passes = 2 if method == "nystrom" and geometries and self._refine > 0 else 1
        super().__init__(dim, classes, method=method, rank=rank, passes=passes, seed=seed, center=center,
                         tolerance=tolerance, memory=memory, precision=precision,
                         test_matrix=test_matrix)
        # Incremental refinement passes with the adaptive stop, as the CLI's (closed-form masking
        # noises only: Monte-Carlo noises need their products on the whole span in every pass, so
        # with one of them every refinement pass re-verifies the whole span, as the CLI's).
        incremental = self._geometry_list and not any(_is_monte_carlo(n) for n in self._noises)
        self._refinement = _recalign.DenoisingRefinement() if incremental else None
        # The masks' preconditioner factors, which the first basis forms anyway, kept (in $TMPDIR) for
        # the first restart when there is one, as the CLI's (not saved: a loaded state forms them again,
        # the same bits).
        self._factors = None
        if memory is None or not math.isinf(memory):  # memory=math.inf (a loaded state): no check here
            self._require_room()

    def _verification(self):
        specs = [_recalign.NoiseSpec(f"gaussian:sigma=0,draws={n.draws}") if isinstance(n, Corruption) else n
                 for n in self._noises]  # a Python corruption is sized by its draws only
        # refine=0: no refinement step, so none of its temporaries is charged (refines=False).
        return "denoising", dict(noises=specs, shape=self._shape, layout=self._layout, refines=self._refine > 0)

    @classmethod
    def _loadable(cls, args):
        """States saved before refine was refused without a closed-form masking noise hold the default there."""
        masking = [n for n in args.get("noises") or [] if not isinstance(n, Corruption) and
                   not _is_monte_carlo(_recalign.NoiseSpec(str(n))) and _recalign.NoiseSpec(str(n)).family != "gaussian"]
        return args if masking else dict(args, refine=None)

    def _spill(self):
        _, options = self._verification()
        return _recalign.denoising_spill(self.dim, self._config["rank"], **options)

    def _require_room(self):
        """The refinement passes keep their carried directions on disk, in unlinked files in $TMPDIR:
        refused before the first batch when no file can be made there or it has too little room, as
        the CLI's denoise --refine (the library's io::spill_shortfall)."""
        spill = self._spill()
        if spill > 0:
            directory = _recalign.spill_directory()
            why = _recalign.spill_shortfall(directory, math.ceil(spill))
            if why:
                raise ValueError(f"refine={self._refine}: the refinement passes keep up to {math.ceil(spill)} bytes of "
                                 f"carried directions in unlinked files in {directory} ($TMPDIR): {why}: set TMPDIR "
                                 "to a directory with room, or pass refine=0")

    @property
    def verification_passes(self):
        """1, and with a masking noise (mask, dropout) `refine` refinement passes after it."""
        return 1 + self._refine if self._geometry_list else 1

    def _geometry(self, n, dim):
        if n.family == "gaussian":
            return None
        if n.family == "mask":
            shape, layout = (n.shape, n.layout) if n.shape is not None else (self._shape, self._layout)
            if shape is None:
                raise ValueError(f"noise {n}: a mask needs the image shape: pass shape=(H, W, C) or shape=... in the spec")
            return tuple(shape), tuple(n.patch), layout
        return (self._shape or (dim, 1, 1)), (1, 1), self._layout  # dropout: 1x1 patches

    def _geometries(self):
        return self._geometry_list

    def _monte_carlo(self):
        shape = dict(shape=self._shape, layout=self._layout)
        out = []
        for n in self._noises:
            if isinstance(n, Corruption):
                out.append((n.seed, dict(corrupt=n.corrupt, draws=n.draws, seed=n.seed, name=n.name),
                            dict(corrupt=n.corrupt)))
            elif n.draws:
                out.append((n.seed, dict(spec=n, **shape), dict(spec=n, **shape)))
        return out

    @property
    def corruptions(self):
        """The Python corruptions (recalign.Corruption) among the noises: load(), from_bytes() and a
        resumed track() need them again (the functions are code, not state)."""
        return [n for n in self._noises if isinstance(n, Corruption)]

    def _args(self):
        c = self._config
        noises = [dict(corruption=n.name, draws=int(n.draws), seed=int(n.seed)) if isinstance(n, Corruption) else str(n)
                  for n in self._noises]
        return dict(dim=c["dim"], classes=c["classes"], noises=noises, shape=self._shape,
                    layout=self._layout, method=c["method"], rank=c["rank"], passes=c["passes"], seed=c["seed"],
                    center=c["center"], measure=self._measure,
                    refine=self._refine if self._geometry_list else None, tolerance=c.get("tolerance"),
                    **self._test_args())

    def _blocks_for(self, i):
        return None if self._block_of[i] is None else self._blocks[self._block_of[i]]

    # ---- incremental refinement (the CLI's verified_state with plan.restart) -----------------
    @property
    def finished(self):
        """True once every pass to run is read: the last, or a verification pass after which
        next_pass()'s restart ended the passes (the adaptive stop: the estimate from the stopping
        curves' last two changes below recalign.REFINEMENT_STOP, or nothing new to read): track() stops there, a further
        next_pass() refuses. A pure query: reading it changes nothing (to_bytes() is the same)."""
        if self._closed():
            return self._refinement.ended
        return super().finished

    def next_pass(self):
        """As _VerifiedRun.next_pass; with incremental refinement, ending a complete verification
        pass that is not the last first joins it to the carried statistics and runs the restart
        (its adaptive stop): when that ends the passes, the state stays in this pass (pass_index
        unchanged) and is `finished` (report() now)."""
        if self._refinement is not None and self._verify is not None and self._pass >= self._config["passes"] and \
                self._pass < self.total_passes - 1 and self._verify.n == self._sketch.n > 0:
            self._close()
            if self._refinement.ended:
                return
        super().next_pass()

    def _closed(self):
        return self._refinement is not None and self._verify is None and self._pass >= self._config["passes"]

    def _close(self):
        """The complete verification pass joined to the carried statistics (complete_pass), then the
        restart's stop or next directions (denoising_restart); the last pass just ends the passes."""
        if self._closed() or self._refinement.ended:
            return
        c = self._config
        # All or nothing: a close the disk or memory fails leaves the refinement and the accumulator as
        # they were (next_pass() may be called again); once it succeeds the accumulator is dropped.
        # close() takes the accumulator's V and Sxx V instead of copying them, as the CLI's, while its
        # bytes wait in $TMPDIR; a close that fails reads it back (_lent).
        with self._lent(back=False) as taken:
            self._refinement.close(self.sketch().spectrum, self._verify, c["center"], self._noises,
                                   [self._blocks_for(i) for i in range(len(self._noises))], c["rank"], self._measure,
                                   restart=self._pass < self.total_passes - 1, count=_REFINED,
                                   factors=self._factors, consume=taken)
        self._factors = None  # the first restart's only
        self._verify = None
        self._mc_basis = []

    def _next_basis(self):
        if self._refinement is None or self._pass < self._config["passes"]:
            return super()._next_basis()  # the first verification pass: span(U, V_1, ..., V_m)
        self._close()
        return self._refinement.fresh()  # only the new directions T

    def verified(self):
        """RestrictedStatistics of the verified span: the last pass joined to what it carried."""
        self._require_done()
        if self._refinement is None:
            return super().verified()
        # A copy joined to the carried statistics: the state is unchanged (report() may be asked again).
        return self._refinement.verified(None if self._closed() else self._verify.finish(self._config["center"]))

    def _carried(self):
        return self._refinement

    def _load_carried(self, load, offset, size, version, source):
        if self._refinement is None:
            return super()._load_carried(load, offset, size, version, source)
        passes = self._config["passes"]
        if version < 2:
            if self._pass > passes:
                raise _file_error(source, 16, f"a version 1 state in refinement pass {self._pass - passes}: its "
                                  "refinement passes re-read the whole span, this build's read only the new "
                                  "directions: run again from the start, or from a checkpoint taken before the "
                                  "first refinement pass")
            return
        r = load(_recalign.DenoisingRefinement)  # its errors name the file offset
        if self._pass < passes or self._verify is not None:
            ok = not r.ended and (r.reading == (self._pass > passes)) and r.passes == max(0, self._pass - passes)
            if ok and r.reading:
                ok = self._verify.k == r.fresh().shape[1]
        else:
            ok = r.ended and r.passes == self._pass - passes or r.reading and r.passes == self._pass - passes + 1
        if not ok:
            raise _file_error(source, offset, f"the refinement state disagrees with pass {self._pass}")
        self._refinement = r

    def _refinement_report(self):
        """The CLI's JSON sketch_error.refinement (None without incremental refinement passes)."""
        r = self._refinement
        if r is None:
            return None
        return {"budget": self._refine, "passes": r.passes, "stopped": "converged" if r.stopped else "budget",
                "change": r.change, "estimate": r.estimate, "threshold": _recalign.REFINEMENT_STOP,
                "changes": [float(x) for x in r.changes], "estimates": [float(x) for x in r.estimates]}

    def _basis(self, sketch, previous):
        q = sketch.spectrum.basis
        if previous is not None:  # a refinement pass: U, each masking noise's Ritz vectors and corrections
            previous.products()  # the Ritz steps in the pass's coordinates, as the CLI
            for i, n in enumerate(self._noises):
                blocks = self._blocks_for(i)
                if blocks is None:
                    continue
                v = _recalign.ritz_denoising(previous, n, blocks)
                k = min(self._config["rank"], v.subspace.informative)
                q = _recalign.orthonormal_extension(q, _recalign.leading_columns(v.refined, previous, k))
                q = _recalign.orthonormal_extension(
                    q, _recalign.denoising_refinement(sketch.spectrum, previous, n, blocks, _REFINED))
            return q
        factors = _recalign.GramSolveCache() if self._refinement is not None and self._refine > 0 else None
        for i, n in enumerate(self._noises):
            # Monte-Carlo noises: their Ritz space from their sketches (next_pass). Gaussian noise
            # adds nothing (V* = U scaled, Corollary 3.1): left out, as the CLI does (the extension
            # by U kept q as it was, after a D x r solve and 2 D x K of copies).
            if self._blocks_for(i) is None:
                continue
            v = _recalign.sketched_denoising_subspace(sketch.spectrum, n, self._blocks_for(i), cache=factors)
            q = _recalign.orthonormal_extension(q, v.basis[:, :v.informative])
        self._factors = factors
        return q

    def report(self):
        """The VerifiedDenoisingResult (all passes done)."""
        self._require_done()
        if self._refinement is not None:
            # The last pass joined to the carried statistics in place, as the CLI's take_verified
            # (no D x m copy): the state's bytes then hold the joined statistics, not the pass's
            # accumulator (the same result; the pass takes no more rows).
            self._close()
            return self._report(self._refinement.result())
        return self._taken(self._report)

    def _report(self, passed):
        passed.products()  # the analyses in the pass's coordinates, as the CLI
        clean = _recalign.ritz_alignment(passed, self._measure)
        noises, mc = [], iter(self._mc_basis)
        for i, n in enumerate(self._noises):
            # The analyses run in the pass's coordinates (no D x K copies); V* itself, D x informative,
            # is formed once from them for the caller (leading_columns: Q W).
            if _is_monte_carlo(n):  # Theorem 3 on the verified span, exactly for the draws made
                found = _recalign.ritz_monte_carlo_denoising(passed, next(mc).products())
            elif _recalign.NoiseSpec(str(n)).family == "gaussian":
                found = None  # Corollary 3.1: V* is the returned clean basis
            else:
                found = _recalign.ritz_denoising(passed, n, self._blocks_for(i))
            if found is None:
                v = _recalign.verified_denoising(clean, passed, n, None, self._measure)
                basis = _recalign.leading_columns(clean.refined, passed, v.denoising.subspace.informative)
            else:
                v = _recalign.verified_ritz_denoising(clean, found, self._measure)
                basis = _recalign.leading_columns(found.refined, passed, found.subspace.informative)
            noises.append(VerifiedNoise(spec=str(n), denoising=v.denoising, noise_impact=v.impact,
                                        monte_carlo=_is_monte_carlo(n), basis=basis))
        c = self._config
        error = self._sketch_error(self.sketch(), clean.curve.eigenvalues, clean.residuals, passed.k)
        error = dataclasses.replace(error, refinement=self._refinement_report())
        return VerifiedDenoisingResult(n=passed.n, dim=c["dim"], classes=c["classes"], measure=self._measure,
                                       center=c["center"], method=c["method"], clean_result=clean.curve, noises=noises,
                                       sketch_error=error)


class VerifiedTradeoff(_VerifiedRun):
    """`recalign tradeoff --method fd|nystrom --rank K --lambda ... --k K [--refine N]`: the sketch
    and the exact diagonal blocks of Sxx (runs of min(384, D) consecutive coordinates, a
    PatchBlocks) in the first pass, then a verification pass on span(U, Sxy, Ĝ⁻¹Sxy) and up to
    `refine` more (the CLI's --refine, default 20, 0..50), each adding Sxx Sxy and the
    preconditioned exact residual Ĝ⁻¹ R of the previous span's Galerkin solution: block
    preconditioned CG towards Sxx⁻¹ Sxy, the λ = 0 optimum (MATH.md §7). After a pass whose
    tr(Rᵀ Ĝ⁻¹ R) (an estimate of the λ = 0 loss's excess) is at most 1e-4 of its loss, `finished`
    is True and the passes left are skipped (recalign.track stops there; next_pass() refuses).
    report() gives Theorem 1 by Rayleigh–Ritz on the last pass: the losses of the encoders
    returned, upper bounds on the optimum, and the refinement run (passes, residual, estimate)."""

    def __init__(self, dim, classes, lambdas, k, *, method="nystrom", rank, passes=1, seed=0, center="uncentered",
                 refine=_TRADEOFF_REFINE, tolerance=None, memory=None, precision="f64", test_matrix="signs"):
        self._lambdas = [float(x) for x in lambdas]
        if not self._lambdas:
            raise ValueError("lambdas: empty list (give at least one lambda >= 0)")
        for x in self._lambdas:
            if not (x >= 0 and math.isfinite(x)):
                raise ValueError(f"lambdas: {x} is not a finite number >= 0")
        self._k = int(k)
        if not 1 <= self._k <= int(dim):
            raise ValueError(f"k must lie in [1, {dim}] (D = {dim}), got {k}")
        if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or not 0 <= refine <= 50:
            raise ValueError(f"refine must be an integer in [0, 50] (the CLI's --refine), got {refine!r}")
        self._refine = int(refine)
        self._block = min(_recalign.TRADEOFF_PRECONDITIONER_BLOCK, int(dim))
        self._estimated = None  # (pass, rows, (relative residual, excess estimate)) of the last estimate
        super().__init__(dim, classes, method=method, rank=rank, passes=passes, seed=seed, center=center,
                         tolerance=tolerance, memory=memory, precision=precision,
                         test_matrix=test_matrix)

    @property
    def verification_passes(self):
        """The most verification passes: 1 + refine (the adaptive stop may end them earlier)."""
        return 1 + self._refine

    def _verification(self):
        return "tradeoff", dict(refine=self._refine, block=self._block)

    def _geometries(self):
        return [((self._config["dim"], 1, 1), (self._block, 1), "hwc")]

    def _args(self):
        c = self._config
        return dict(dim=c["dim"], classes=c["classes"], lambdas=self._lambdas, k=self._k, method=c["method"],
                    rank=c["rank"], passes=c["passes"], seed=c["seed"], center=c["center"], refine=self._refine,
                    tolerance=c.get("tolerance"), **self._test_args())

    def _basis(self, sketch, previous):
        return _recalign.tradeoff_ritz_basis(sketch, previous, blocks=self._blocks[0])

    def _estimate(self):
        """(‖R‖_F / ‖Sxy‖_F, tr(Rᵀ Ĝ⁻¹ R) / λ=0 loss) of the current verification pass (the CLI's)."""
        key = (self._pass, self._verify.n)
        if self._estimated is None or self._estimated[0] != key:
            self._estimated = key, self._taken(
                lambda passed: _recalign.tradeoff_excess_estimate(self.sketch(), self._blocks[0], passed))
        return self._estimated[1]

    def _stop(self):
        return self._estimate()[1] <= _recalign.TRADEOFF_STOP

    def report(self):
        """The VerifiedTradeoffResult (all passes done, or `finished`)."""
        self._require_done()
        residual, estimate = self._estimate()  # before the accumulator is taken
        return self._taken(lambda passed: self._report(passed, residual, estimate))

    def _report(self, passed, residual, estimate):
        sketch = self.sketch()
        run = self._verification_passes_run()
        stopped = "converged" if run < self.verification_passes else "budget"  # as the CLI's JSON
        refinement = {"passes": run, "max_passes": self.verification_passes, "stopped": stopped,
                      "residual": residual, "excess_estimate": estimate if math.isfinite(estimate) else None}
        t = _recalign.ritz_tradeoff(passed, sketch.spectrum.total, self._lambdas, self._k)
        ritz = _recalign.ritz_alignment(passed)
        error = self._sketch_error(sketch, ritz.curve.eigenvalues, ritz.residuals, passed.k)
        return VerifiedTradeoffResult(method=self._config["method"], tradeoff=t, refinement=refinement,
                                      sketch_error=error)


def _is_monte_carlo(noise):
    return isinstance(noise, Corruption) or bool(noise.draws)
