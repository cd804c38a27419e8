"""Results of the verified sketch analyses (recalign.verified): every number is exact for the
subspace (encoder) returned, and `sketch_error` says how far the sketch may be from the true
top subspace. Field names are those of the CLI's JSON (exact_for, sketch_error, bound)."""
import math
from dataclasses import dataclass, field
from typing import Any, List

import numpy as np


def _number(x):
    x = float(x)
    return None if math.isnan(x) else x


def _finite(x):
    """A number as the CLI's JSON writes it: NaN and ±inf as null."""
    x = float(x)
    return x if math.isfinite(x) else None


def _list(a):
    """A JSON list as the CLI writes it: NaN as null."""
    return [_number(v) for v in np.asarray(a, dtype=float).ravel()]


@dataclass(frozen=True)
class SketchError:
    """The sketch's own error information and the verification pass's exact Ritz values and
    residuals ‖Sxx y_j − θ_j y_j‖ (Davis–Kahan: sin ∠(y_j, eigenvector j) <= residual_j / gap_j).
    error_bound: FD's guaranteed ‖C − Ĉ‖₂ bound (NaN for Nyström); error_estimate: Nyström's
    a-posteriori estimate (NaN for FD). The stopping rule (`tolerance`, the CLI's --tolerance,
    Nyström): sketch_passes run of at most max_passes, relative_estimate = error_estimate / tr(C)
    and the tolerance T it was compared with (NaN: none given). test_matrix: Nyström's first-pass
    test matrix, "signs", "sparse" or "gaussian" (None for FD)."""
    method: str
    test_matrix: Any
    rank: int
    verified: bool
    verification_passes: int
    verification_columns: int
    error_bound: float
    error_estimate: float
    ritz_values: Any = field(repr=False)
    residuals: Any = field(repr=False)
    sketch_passes: int = 1
    max_passes: int = 1
    relative_estimate: float = math.nan
    tolerance: float = math.nan
    # denoise's incremental refinement passes (the CLI's JSON "refinement"): budget (refine), passes
    # run after the first verification pass, stopped ("converged": the adaptive stop; "budget"),
    # change (the last restart's largest change of the stopping curves; inf or NaN: none compared),
    # estimate (an ESTIMATE from the last two changes of how far the curves still are from the
    # passes' limit, refinement_estimate; inf: not judged yet), threshold (REFINEMENT_STOP), and
    # changes / estimates: every restart's, in turn (the last are change / estimate; NaN: a restart
    # before a resume from older bytes). None without them (no masking noise, or a Monte-Carlo one).
    refinement: Any = field(default_factory=lambda: None)

    @property
    def tolerance_met(self):
        """relative_estimate <= tolerance (None without a tolerance)."""
        return None if math.isnan(self.tolerance) else bool(self.relative_estimate <= self.tolerance)

    def to_dict(self):
        """The CLI's JSON "sketch_error" object (NaN as None, arrays as lists)."""
        return {"method": self.method, "test_matrix": self.test_matrix, "rank": self.rank, "verified": self.verified,
                "verification_passes": self.verification_passes, "verification_columns": self.verification_columns,
                "error_bound": _number(self.error_bound), "error_estimate": _number(self.error_estimate),
                "relative_estimate": _number(self.relative_estimate), "sketch_passes": self.sketch_passes,
                "max_passes": self.max_passes, "tolerance": _number(self.tolerance), "tolerance_met": self.tolerance_met,
                "ritz_values": _list(self.ritz_values), "residuals": _list(self.residuals),
                **({} if self.refinement is None else {"refinement": {
                    k: (_finite(v) if k in ("change", "estimate", "threshold")
                        else [_finite(x) for x in v] if k in ("changes", "estimates") else v)
                    for k, v in self.refinement.items()}})}


@dataclass(frozen=True)
class VerifiedAlignmentResult:
    """`recalign align --method fd|nystrom` with verification: the alignment curve of the Ritz
    vectors of Sxx on the sketch's subspace (curve: an AlignmentResult; ritz: the RitzAlignment
    with the refined statistics), exact for them. method: the sketch route that found the
    subspace ('fd' or 'nystrom'; curve.method says 'exact': its numbers are). ritz.refined is in
    the verification pass's coordinates, as the CLI computes it (no D x K copies: refined.basis is
    empty; the Ritz vectors are recalign.leading_columns(ritz.refined, pass_, k) of the pass)."""
    method: str
    curve: Any
    ritz: Any = field(repr=False)
    sketch_error: SketchError = field(repr=False)
    exact_for: str = "returned subspace"

    @property
    def alignment(self):
        """curve.curve: alignment[k-1] = alignment of the top-k returned subspace (the CLI's "alignment")."""
        return self.curve.curve

    def to_dict(self):
        """`recalign align --json`'s document, but for the input description ("scale", "input")."""
        c = self.curve
        return {"n": c.n, "d": c.dim, "classes": c.classes, "measure": c.measure, "centered": c.center == "centered",
                "method": self.method, "eigenvalues": _list(c.eigenvalues), "alignment": _list(c.curve),
                "contributions": _list(c.contributions), "normaliser": c.normaliser, "skipped": c.skipped,
                "max_k": c.max_k, "exact_for": self.exact_for, "sketch_error": self.sketch_error.to_dict()}


@dataclass(frozen=True)
class VerifiedSpectrumResult:
    """`recalign spectrum --method fd|nystrom` with verification: spectrum is the sketch's Spectrum
    with the Ritz pairs of its own subspace in place of its estimates (spectrum.ritz: each value
    the exact second moment along its direction, at most the true eigenvalue of its rank; the
    explained fractions of the exact trace), mean the rows' mean (exact). method: the sketch route
    that found the subspace."""
    method: str
    spectrum: Any
    mean: Any = field(repr=False)
    sketch_error: SketchError = field(repr=False)
    exact_for: str = "returned subspace"

    @property
    def eigenvalues(self):
        """The Ritz values (descending): the CLI's "eigenvalues"."""
        return self.spectrum.eigenvalues

    def projector(self, fraction=0.75, part="top"):
        """The SubspaceProjector of `recalign project` on this route: k the fewest Ritz vectors whose
        exact values explain `fraction` of the total (ValueError, saying so, when all of them do not)."""
        from . import _recalign
        centered = self.spectrum.center == "centered"
        return _recalign.SubspaceProjector(self.spectrum, self.mean if centered else None, fraction, part)

    def to_dict(self):
        """`recalign spectrum --json`'s document, but for the input description ("scale", "input")."""
        s = self.spectrum
        return {"n": s.n, "d": s.dim, "centered": s.center == "centered", "method": self.method,
                "eigenvalues": _list(s.eigenvalues), "explained": _list(s.explained), "total": s.total,
                "error_bound": _number(s.error_bound), "error_estimate": _number(s.error_estimate),
                "exact_for": self.exact_for, "sketch_error": self.sketch_error.to_dict()}


@dataclass(frozen=True)
class VerifiedNoise:
    """One noise of a verified denoise: the CLI JSON's fields (alignment, relative, impact,
    impact_normalised, max_k, informative, monte_carlo) and the full DenoisingResult / NoiseImpact.
    monte_carlo: True for a Monte-Carlo noise (exact for the draws made; its Monte-Carlo error is
    not estimated on a sketch route: g_stderr_fro is None in to_dict()). basis: the returned V*
    (D x informative, as NumPy), the directions the curves describe."""
    spec: str
    denoising: Any = field(repr=False)
    noise_impact: Any = field(repr=False)
    monte_carlo: bool = False
    basis: Any = field(default_factory=lambda: None, repr=False)

    @property
    def alignment(self):
        """Alignment of the returned V*_K, K = 1..max_k."""
        return self.denoising.curve

    @property
    def relative(self):
        """(alignment − clean) / clean."""
        return self.denoising.relative_difference

    @property
    def impact(self):
        """Σ sin² of the principal angles between the returned V*_K and U_K."""
        return self.noise_impact.distance

    @property
    def impact_normalised(self):
        """impact / K."""
        return self.noise_impact.normalised

    @property
    def max_k(self):
        """Where the curve stops (the informative directions of V*)."""
        return self.denoising.max_k

    @property
    def informative(self):
        """Informative directions of the returned V*."""
        return self.denoising.subspace.informative

    def to_dict(self):
        """This noise's object in `recalign denoise --json`'s "noises"."""
        return {"spec": self.spec, "alignment": _list(self.alignment), "relative": _list(self.relative),
                "impact": _list(self.impact), "impact_normalised": _list(self.impact_normalised), "max_k": self.max_k,
                "informative": self.informative, "monte_carlo": self.monte_carlo, "g_stderr_fro": None}


@dataclass(frozen=True)
class VerifiedDenoisingResult:
    """`recalign denoise --method fd|nystrom`: the clean curve of the returned U (clean_result:
    the AlignmentResult) and one VerifiedNoise per noise, exact for the subspaces returned.
    method: the sketch route that found the subspaces."""
    n: int
    dim: int
    classes: int
    measure: str
    center: str
    method: str
    clean_result: Any = field(repr=False)
    noises: List[VerifiedNoise] = field(repr=False)
    sketch_error: SketchError = field(repr=False)
    exact_for: str = "returned subspaces"

    @property
    def clean(self):
        """The clean curve (the CLI's "clean")."""
        return self.clean_result.curve

    def to_dict(self):
        """`recalign denoise --json`'s document, but for the input description ("input")."""
        return {"n": self.n, "d": self.dim, "classes": self.classes, "measure": self.measure,
                "centered": self.center == "centered", "method": self.method, "clean": _list(self.clean),
                "noises": [n.to_dict() for n in self.noises], "exact_for": self.exact_for,
                "sketch_error": self.sketch_error.to_dict()}


@dataclass(frozen=True)
class VerifiedTradeoffResult:
    """`recalign tradeoff --method fd|nystrom`: Theorem 1 by Rayleigh–Ritz on the verified span;
    the losses are exactly those of the encoders returned, upper bounds on the optimum
    (bound = "upper"). tradeoff: the TradeoffResult (one point per λ). method: the sketch route.
    refinement: the CG passes towards Sxx⁻¹ Sxy run (the CLI's JSON "refinement" object)."""
    method: str
    tradeoff: Any
    sketch_error: SketchError = field(repr=False)
    exact_for: str = "returned encoder"
    bound: str = "upper"
    # The CG passes towards Sxx⁻¹ Sxy (the CLI's JSON "refinement"): passes, max_passes, stopped,
    # residual (‖Sxy − Sxx X‖_F / ‖Sxy‖_F, exact), excess_estimate (tr(Rᵀ Ĝ⁻¹ R) / λ=0 loss: an estimate).
    refinement: dict = field(default_factory=dict)

    @property
    def points(self):
        """One TradeoffPoint per λ, in the order given."""
        return self.tradeoff.points

    def to_dict(self):
        """`recalign tradeoff --json`'s document: one object per λ."""
        t = self.tradeoff
        return [{"lambda": p.lambda_, "supervised_loss": p.supervised_loss, "reconstruction_loss": p.reconstruction_loss,
                 "loss": p.loss, "k": t.k, "centered": t.center == "centered", "n": t.n, "exact_for": self.exact_for,
                 "sketch_error": self.sketch_error.to_dict(), "bound": self.bound,
                 **({"refinement": dict(self.refinement)} if self.refinement else {})} for p in t.points]
