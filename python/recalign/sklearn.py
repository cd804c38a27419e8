"""scikit-learn estimators on recalign's streaming states.

StreamingPCA -- PCA with IncrementalPCA's interface (fit, partial_fit, transform,
    inverse_transform, the same fitted attributes with the same definitions), computed from
    the exact streaming second moment (method="exact", D x D memory) or a sketch of it
    (method="fd": Frequent Directions, method="nystrom": a randomized Nyström sketch; O(D x
    sketch_size) memory).
AlignmentCurve -- fit(X, y) with class labels y: the alignment of the top-k principal
    subspace with the labels for every k (curve_), the paper's measure; exact, or at high D
    from a sketch and a verification pass (method="fd"|"nystrom", rank=K: recalign align's
    sketch routes), exact for the subspaces returned.

Definitions (the same as sklearn.decomposition.PCA / IncrementalPCA), with n = n_samples_seen_
and S = sum_i (x_i - mean)(x_i - mean)^T the centered scatter:
  components_[j]             the j-th eigenvector of S (unit norm), descending eigenvalues
  singular_values_[j]        sqrt(lambda_j(S)), the singular values of the centered data
  explained_variance_[j]     lambda_j(S) / (n - 1)            (sample variance, ddof = 1)
  explained_variance_ratio_  lambda_j(S) / trace(S)           (trace kept exactly, every route)
  noise_variance_            (trace(S) - sum of the kept lambda_j) / (n - 1) / (min(n, D) - k),
                             0 when k = min(n, D) (PCA's mean of the discarded variances)
  mean_, var_                per-feature mean and variance (ddof = 0, as IncrementalPCA)
Sign convention (also IncrementalPCA's, svd_flip(u_based_decision=False)): in each
component the entry of largest absolute value is positive.

What is exact: on method="exact" every attribute is the eigendecomposition of the exactly
accumulated scatter (Chan's merge, double precision), independent of the batching up to
rounding. The covariance route squares the condition number: a component whose eigenvalue
lies below 1e-8 of the largest keeps only about eps * lambda_1 / lambda_j of relative
precision in its singular value (none at all beyond 1e16). Such components are counted in
imprecise_components_ and a PrecisionWarning is issued; a whitened transform divides by their
square-rooted eigenvalues, so their scores are not to be trusted. On the sketch routes, fit()
reads X once more (verify=True, the default, as the CLI's --verify): the components are then the
Ritz vectors of S on the sketch's subspace and every eigenvalue lambda_j above is replaced by its
Ritz value y_j^T S y_j, the exact scatter along components_[j] (at most the true lambda_j), so
explained_variance_, its ratio, singular_values_ and noise_variance_ are exact for the components
returned (spectrum_.ritz is True; recalign.ritz_spectrum). After partial_fit, verify_pass(batches)
reads the same rows once more to the same effect; until then, or with verify=False, they are the
sketch's own estimates (spectrum_.ritz is False), with its error
information in spectrum_ (error_bound for fd, a-posteriori error_estimate for nystrom).
"""
import numbers
import warnings

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from . import _recalign, hooks, verified

__all__ = ["StreamingPCA", "AlignmentCurve", "PrecisionWarning"]

_METHODS = ("exact", "fd", "nystrom")
# lambda_1 / lambda_j beyond which a component's singular value (sqrt of an eigenvalue of
# the scatter) has relative error above ~ eps * 1e8 = 2e-8.
_CONDITION_LIMIT = 1e8


class PrecisionWarning(UserWarning):
    """The covariance route cannot meet double precision for some components (their
    eigenvalue is below 1e-8 of the largest); see StreamingPCA.imprecise_components_."""


class _Diagonal:
    """Per-feature count, mean and centered sum of squares (Chan's merge), O(D): var_ for
    the sketch routes, which do not keep the diagonal of the second moment."""

    def __init__(self, dim):
        self.n, self.mean, self.m2 = 0, np.zeros(dim), np.zeros(dim)

    def update(self, x):
        x = np.asarray(x, dtype=np.float64)
        nb = x.shape[0]
        if nb == 0:
            return
        mb = x.mean(axis=0)
        m2b = ((x - mb) ** 2).sum(axis=0)
        n = self.n + nb
        delta = mb - self.mean
        self.m2 += m2b + delta ** 2 * (self.n * nb / n)
        self.mean += delta * (nb / n)
        self.n = n


def _check_method(method, who):
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"{who}: method must be one of {_METHODS}, got {method!r}")


def _seed(random_state):
    if isinstance(random_state, numbers.Integral) and random_state >= 0:
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


class StreamingPCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Principal component analysis from a streaming second moment, with the interface and
    the attribute definitions of sklearn.decomposition.IncrementalPCA.

    Parameters
    ----------
    n_components : int or None
        k, the number of components kept. None: min(n_samples_seen_, n_features).
        May change between partial_fit calls on method="exact" (the whole second moment is
        kept); the sketch routes need k <= sketch_size.
    method : {"exact", "fd", "nystrom"}
        "exact": the D x D scatter (memory 8 D^2 bytes), exact up to rounding. "fd":
        Frequent Directions (sketch_size rows, guaranteed spectral-norm error bound).
        "nystrom": randomized Nyström sketch of rank sketch_size (a-posteriori estimate).
    whiten : bool
        transform() divides the scores by sqrt(explained_variance_) (unit sample variance);
        components with zero variance score 0.
    batch_size : int or None
        Rows per update in fit() (memory only: the result does not depend on it beyond
        rounding). None: max(5 * n_features, 256).
    sketch_size : int or None
        fd: the sketch's rows ell (default min(n_features, max(3 k, 2 k + 10)): FD's
        guarantee with eps = 1/2, as the CLI); nystrom: its rank
        (default k). Required for the sketch routes when n_components is None.
    oversampling : int or None
        nystrom only: extra random columns of the range sketch (capped at n_features - rank;
        the sketch's a-posteriori error estimate uses min(10, n_features) more). None: the
        CLI's, max(rank, 10) with block Krylov, else 10.
    passes : int
        nystrom only: passes over the data in fit(); partial_fit makes one. With tolerance: the
        most passes to make.
    krylov : bool
        nystrom with passes >= 2: block Krylov over every pass (Musco & Musco 2015, the CLI's
        default; each pass adds a block of rank + oversampling columns, all kept: memory grows
        with the passes), far more accurate per pass than subspace iteration (False: one block,
        a power iteration per pass).
    tolerance : float or None
        nystrom only: fit() stops after the first pass whose estimate of
        ||C - C_k||_F / tr(C) (NystromSketch.relative_error) is <= tolerance, at most `passes`
        passes; n_passes_ and tolerance_met_ say what happened.
    random_state : int, RandomState or None
        nystrom only: the seed of the counter-based random test matrix.
    test_matrix : {"signs", "sparse"}
        nystrom only: the first pass's test matrix, dense random signs (Gaussian below 64
        features) or sparse signs, 8 a row (the CLI's --test-matrix sparse: that pass's X Omega
        by additions, as accurate; needs n_features x 8 >= 32 x (rank + oversampling)).
    verify : bool
        fd and nystrom: after the sketch's passes fit() reads X once more, accumulating the
        exact V^T S V and S V of the sketch's basis V (verification_), and the attributes are
        those of the Ritz pairs on span V: exact for the components returned (the module's
        help). partial_fit cannot read the rows again: its attributes are the sketch's estimates
        until verify_pass(batches) reads them once more.

    Attributes
    ----------
    components_ : (k, n_features) ndarray      explained_variance_ : (k,) ndarray
    explained_variance_ratio_ : (k,) ndarray   singular_values_ : (k,) ndarray
    mean_ : (n_features,) ndarray              var_ : (n_features,) ndarray
    noise_variance_ : float                    n_components_ : int
    n_samples_seen_ : int                      n_features_in_ : int
    batch_size_ : int                          spectrum_ : recalign.Spectrum (negative
        eigenvalues from rounding are clipped to 0 and counted in spectrum_.clipped)
    imprecise_components_ : int
        Kept components with lambda_j < 1e-8 lambda_1 (see the module's help): a
        PrecisionWarning is issued when it is > 0.
    state_ : the recalign state (MomentAccumulator, FrequentDirections or NystromSketch),
        mergeable and checkpointable with the states of other processes.
    verification_ : recalign.RestrictedMoments of the verification pass (fit() with verify=True on
        a sketch route, or verify_pass(); dropped by a later partial_fit, whose rows it has not seen).
    """

    def __init__(self, n_components=None, *, method="exact", whiten=False, batch_size=None, sketch_size=None,
                 oversampling=None, passes=1, krylov=True, tolerance=None, random_state=0, verify=True,
                 test_matrix="signs"):
        self.n_components = n_components
        self.method = method
        self.whiten = whiten
        self.batch_size = batch_size
        self.sketch_size = sketch_size
        self.oversampling = oversampling
        self.passes = passes
        self.krylov = krylov
        self.tolerance = tolerance
        self.random_state = random_state
        self.verify = verify
        self.test_matrix = test_matrix

    # ---- fitting ------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Fit on X (n_samples, n_features), read in batches of batch_size_ rows; sparse X is
        densified one batch at a time. y is ignored. Returns self."""
        _check_method(self.method, "StreamingPCA")
        X = self._validate_data(X, accept_sparse=["csr", "csc", "lil"], dtype=[np.float64, np.float32, np.uint8],
                                reset=True)
        n_samples, n_features = X.shape
        self._reset()
        self.batch_size_ = int(self.batch_size) if self.batch_size is not None else max(5 * n_features, 256)
        if self.batch_size_ < 1:
            raise ValueError(f"StreamingPCA: batch_size must be >= 1, got {self.batch_size}")
        passes = self.passes if self.method == "nystrom" else 1
        if not isinstance(passes, numbers.Integral) or passes < 1:
            raise ValueError(f"StreamingPCA: passes must be an integer >= 1, got {self.passes!r}")
        for name in ("verify", "krylov"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"StreamingPCA: {name} must be True or False, got {getattr(self, name)!r}")
        tol = self.tolerance
        if tol is not None and (self.method != "nystrom" or not isinstance(tol, numbers.Real) or not 0 < tol < 1):
            raise ValueError(f"StreamingPCA: tolerance applies to method='nystrom' and must lie in (0, 1), got {tol!r}")
        self.tolerance_met_ = None
        self.state_ = self._new_state(n_features, passes)  # refusals of n_components come before any row
        if self.method != "exact":
            self._diag = _Diagonal(n_features)
        for p in range(passes):
            if p > 0:
                self.state_.next_pass()
                self._diag = _Diagonal(n_features)
            for batch in gen_batches(n_samples, self.batch_size_):
                x = X[batch]
                self._update(x.toarray() if sparse.issparse(x) else x, batch.start)
            self.n_passes_ = p + 1
            if tol is not None:
                self.tolerance_met_ = bool(self.state_.relative_error() <= tol)
                if self.tolerance_met_:
                    break
        if self.verify and self.method != "exact":
            self._verification((X[b] for b in gen_batches(n_samples, self.batch_size_)), False)
        return self

    def verify_pass(self, batches):
        """After partial_fit on a sketch route: read the same rows once more (`batches`, an
        iterable of arrays (n_i, n_features), or of (X, y, ...) tuples whose X is read; any
        batching, the same rows) so that the attributes become exact for the components, as
        fit() does with verify=True: components_ are then the Ritz vectors of S on the sketch's
        subspace and explained_variance_ their exact variances. A later partial_fit drops it.
        ValueError, with the attributes as they were, when the rows read are not as many as the
        state has seen or their mean is not the state's (other rows). Nothing to do on
        method="exact". Returns self."""
        check_is_fitted(self, "state_")
        if self.method != "exact":
            self._verification((b[0] if isinstance(b, (tuple, list)) else b for b in batches), True)
        return self

    def _verification(self, batches, check_input):
        """The verification pass on the sketch's whole basis (its own k directions: a larger span
        than the top n_components gives Ritz values nearer the true eigenvalues) over `batches`;
        sets verification_ only once every row is read and they are the state's (strong
        guarantee). check_input: rows given again by the caller (verify_pass), validated and
        compared with the state's by their mean."""
        spec = self.state_.finish().spectrum
        if spec.basis.shape[1] == 0:  # a sketch of no direction (one row, centered): nothing to verify
            return
        check, seen = _recalign.RestrictedMoments(spec.basis), 0
        for x in batches:
            if sparse.issparse(x):
                x = x.toarray()
            if check_input:
                x = self._validate_data(x, dtype=[np.float64, np.float32, np.uint8], reset=False)
            check.update(x, first_row=seen)
            seen += x.shape[0]
        n = int(self.state_.n)
        if seen != n:
            raise ValueError(f"StreamingPCA.verify_pass: read {seen} rows, but the state has seen {n}: the verification "
                             "pass must read the same rows")
        if check_input:  # the state's rows, as far as their mean tells
            mine, theirs = check.mean(), self.state_.mean()
            # Rounding moves a mean by about eps times the rows' size (their RMS norm, from the
            # exact trace, and the mean's own size); other rows move it by far more.
            scale = float(np.max(np.abs(theirs), initial=0.0)) + np.sqrt(max(spec.total, 0.0) / max(n, 1))
            if np.max(np.abs(mine - theirs), initial=0.0) > 1e-9 * scale:
                raise ValueError(f"StreamingPCA.verify_pass: the {seen} rows read are not those the state has seen "
                                 f"(their mean differs by up to {np.max(np.abs(mine - theirs)):.3g})")
        self.verification_ = check
        self._fitted = {}

    def partial_fit(self, X, y=None, check_input=True):
        """Add the rows of X (n_samples, n_features) to the state; the attributes describe
        every row seen so far. y is ignored. Returns self."""
        _check_method(self.method, "StreamingPCA")
        first = not hasattr(self, "state_")
        if sparse.issparse(X):
            raise TypeError("StreamingPCA.partial_fit does not support sparse input. Either convert data to dense "
                            "or use StreamingPCA.fit to do so in batches.")
        if check_input:
            X = self._validate_data(X, dtype=[np.float64, np.float32, np.uint8], reset=first)
        if first:
            self._reset()
            self.batch_size_ = X.shape[0]
        self._update(X, 0 if first else int(self.state_.n))
        return self

    def _reset(self):
        for name in ("state_", "_diag", "_fitted", "verification_"):
            self.__dict__.pop(name, None)

    def _k_requested(self, n_features):
        k = self.n_components
        if k is None:
            return None
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or not 1 <= k <= n_features:
            raise ValueError(f"n_components={k} invalid for n_features={n_features}: StreamingPCA keeps between 1 "
                             f"and n_features components")
        return int(k)

    def _new_state(self, dim, passes=1):
        k = self._k_requested(dim)
        if self.test_matrix not in ("signs", "sparse"):
            raise ValueError(f"StreamingPCA: test_matrix must be 'signs' or 'sparse', got {self.test_matrix!r}")
        if self.test_matrix != "signs" and self.method != "nystrom":
            raise ValueError(f"StreamingPCA: test_matrix applies to method='nystrom', got {self.test_matrix!r} "
                             f"with method={self.method!r}")
        if self.method == "exact":
            return _recalign.MomentAccumulator(dim)
        size = self.sketch_size
        if size is None and k is None:
            raise ValueError(f"StreamingPCA: method={self.method!r} needs n_components or sketch_size")
        if self.method == "fd":
            # Default: the CLI's ell = min(3k, D) (FD's guarantee with eps = 1/2), never below the
            # earlier min(2k + 10, D).
            default = max(_recalign.frequent_directions_default_ell(k, dim), min(dim, 2 * k + 10)) if size is None else 0
            return _recalign.FrequentDirections(dim, int(size) if size is not None else default)
        rank = int(size) if size is not None else k
        krylov = bool(self.krylov) and passes > 1
        extra = int(self.oversampling) if self.oversampling is not None else max(rank, 10) if krylov else 10
        return _recalign.NystromSketch(dim, rank, oversampling=max(0, min(extra, dim - rank)), probes=min(10, dim),
                                       seed=_seed(self.random_state), blocks=passes if krylov else 1,
                                       **({"test": "sparse"} if self.test_matrix == "sparse" else {}))

    def _update(self, x, first_row):
        if not hasattr(self, "state_"):
            self.state_ = self._new_state(x.shape[1])
            if self.method != "exact":
                self._diag = _Diagonal(x.shape[1])
        self._k_requested(x.shape[1])  # refused before the state changes
        self.state_.update(x, first_row=first_row)
        self.__dict__.pop("verification_", None)  # of fewer rows than the state now has
        if self.method != "exact":
            self._diag.update(x)
        # Filled on first access (_results): an update costs no eigendecomposition, and
        # reading an attribute changes no entry of __dict__.
        self._fitted = {}
        self.n_samples_seen_ = int(self.state_.n)

    # ---- the fitted attributes: computed on first access after an update -----------------

    def _results(self):
        check_is_fitted(self, "state_")
        fitted = self._fitted
        if fitted:
            return fitted
        state, n, dim = self.state_, int(self.state_.n), int(self.state_.dim)
        k = self._k_requested(dim)
        if k is None:
            k = min(n, dim)
            if self.method != "exact":
                k = min(k, int(self.sketch_size))
        if self.method == "exact":
            stats = state.finish("centered", top=k)
            var = state.diag_xx("centered") / n
        else:
            stats = state.finish(rank=k)
            var = self._diag.m2 / self._diag.n
        spec = stats.spectrum
        if "verification_" in self.__dict__:  # exact for the components returned
            spec = _recalign.ritz_spectrum(spec, self.verification_.finish("centered")).spectrum
        if spec.rank < k:
            raise ValueError(f"StreamingPCA: n_components={k} exceeds the {spec.rank} eigenpairs of the "
                             f"{self.method} sketch (sketch_size)")
        lam = np.maximum(spec.eigenvalues[:k], 0.0)
        total = spec.total
        dof = max(n - 1, 1)
        rest = min(n, dim) - k
        noise = max(total - lam.sum(), 0.0) / dof / rest if rest > 0 else 0.0
        imprecise = int(np.count_nonzero(lam * _CONDITION_LIMIT < lam[0])) if k else 0
        fitted.update({
            "components_": np.ascontiguousarray(spec.basis[:, :k].T),
            "explained_variance_": lam / dof,
            "explained_variance_ratio_": lam / total if total > 0 else np.zeros(k),
            "singular_values_": np.sqrt(lam),
            "mean_": stats.mean,
            "var_": var,
            "noise_variance_": float(noise),
            "n_components_": k,
            "spectrum_": spec,
            "imprecise_components_": imprecise,
        })
        if imprecise:
            warnings.warn(f"StreamingPCA: {imprecise} of {k} components have an eigenvalue below 1e-8 of the "
                          f"largest; the covariance route leaves their singular values (and whitened scores) "
                          f"with relative error ~ eps * lambda_1 / lambda_j or worse", PrecisionWarning, stacklevel=3)
        return fitted

    def _attribute(name):  # noqa: N805 - builds the class's properties
        def get(self):
            if "state_" not in self.__dict__:
                raise AttributeError(f"{type(self).__name__} has no attribute {name!r} before fit")
            return self._results()[name]
        return property(get, doc=f"{name} (computed from the state on first access after an update).")

    components_ = _attribute("components_")
    explained_variance_ = _attribute("explained_variance_")
    explained_variance_ratio_ = _attribute("explained_variance_ratio_")
    singular_values_ = _attribute("singular_values_")
    mean_ = _attribute("mean_")
    var_ = _attribute("var_")
    noise_variance_ = _attribute("noise_variance_")
    n_components_ = _attribute("n_components_")
    spectrum_ = _attribute("spectrum_")
    imprecise_components_ = _attribute("imprecise_components_")
    del _attribute

    def __getstate__(self):
        # The attributes are recomputed from state_ after unpickling (a Spectrum does not pickle).
        state = dict(super().__getstate__())
        if "_fitted" in state:
            state["_fitted"] = {}
        return state

    @property
    def _n_features_out(self):
        return self.n_components_

    # ---- transforms -----------------------------------------------------------------------

    def _scale(self):
        ev = self.explained_variance_
        with np.errstate(divide="ignore"):
            return np.where(ev > 0, 1.0 / np.sqrt(np.where(ev > 0, ev, 1.0)), 0.0)

    def transform(self, X):
        """Scores (n_samples, n_components_): (X - mean_) @ components_.T, divided by
        sqrt(explained_variance_) when whiten."""
        check_is_fitted(self, "state_")
        X = self._validate_data(X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32], reset=False)
        c = self.components_
        y = X @ c.T - (self.mean_ @ c.T)[None, :]
        y = np.asarray(y)
        if self.whiten:
            y *= self._scale()
        return y

    def inverse_transform(self, X):
        """Rows back in feature space (n_samples, n_features): X @ components_ + mean_ (scores
        multiplied by sqrt(explained_variance_) first when whiten). Exact only for the part
        of the rows in the span of the components."""
        check_is_fitted(self, "state_")
        X = np.asarray(X, dtype=np.float64)
        c = self.components_
        if self.whiten:
            c = np.sqrt(self.explained_variance_)[:, None] * c
        return X @ c + self.mean_

    def get_covariance(self):
        """Model covariance (n_features, n_features): components_.T diag(explained_variance_ -
        noise_variance_) components_ + noise_variance_ I (PCA's probabilistic model)."""
        c, ev, noise = self.components_, self.explained_variance_, self.noise_variance_
        cov = (c.T * np.maximum(ev - noise, 0.0)) @ c
        cov.flat[:: len(cov) + 1] += noise
        return cov

    def get_precision(self):
        """Inverse of get_covariance()."""
        return np.linalg.inv(self.get_covariance())

    def _more_tags(self):
        return {"preserves_dtype": [np.float64]}


class AlignmentCurve(BaseEstimator):
    """How the top-k principal subspace aligns with class labels, for every k (the paper's
    alignment curve), from one streaming pass, or at high D from a sketch and a verification pass.

    Parameters
    ----------
    center : {"uncentered", "centered"}
        "uncentered" is the paper's code; "centered" is PCA's subspace.
    measure : {"paper", "rank", "fit"}
        The alignment measure (MATH.md §2); "paper" is Eq. 7.
    batch_size : int or None
        Rows per update in fit() (memory only). None: max(5 * n_features, 256).
    method : {"exact", "fd", "nystrom"}
        "exact": the D x D (+ classes) scatter, the whole curve. "fd", "nystrom": `recalign align
        --method M --rank K --passes P` (recalign.VerifiedAlignment): fit() reads X `passes` times
        for the sketch and once more on its top-`rank` basis, and the curve (up to rank) is that
        of the Ritz vectors returned, exact for them (eigenvalues_ their exact Ritz values);
        sketch_error_ says how far they may be from the true top subspaces. These routes read the
        rows more than once: they have no partial_fit (stream with recalign.VerifiedAlignment and
        recalign.track instead, which this fit() runs).
    rank : int or None
        The sketch routes' K (required there; refused on "exact").
    passes : int
        nystrom: sketch passes in fit() (block Krylov, the CLI's default).
    random_state : int
        nystrom: the seed of the test matrix.

    Attributes
    ----------
    classes_ : (C,) ndarray, the distinct labels (label i is class index i)
    curve_ : (max_k,) ndarray, curve_[k-1] = alignment of the top-k subspace
    contributions_ : per-direction contributions; eigenvalues_ : descending eigenvalues
    max_k_, skipped_, normaliser_, complete_ : as recalign.AlignmentResult's max_k, skipped
        (directions left out as numerically null), normaliser and complete
    sketch_error_ : the sketch routes' recalign.SketchError (the CLI JSON's sketch_error: the
        sketch's error information, the exact Ritz values and residuals); None on the exact route
    state_ : the recalign.MomentAccumulator (exact, D + C wide scatter), or the
        recalign.VerifiedAlignment of a sketch route
    n_samples_seen_, n_features_in_
    """

    def __init__(self, *, center="uncentered", measure="paper", batch_size=None, method="exact", rank=None,
                 passes=1, random_state=0):
        self.center = center
        self.measure = measure
        self.batch_size = batch_size
        self.method = method
        self.rank = rank
        self.passes = passes
        self.random_state = random_state

    def _check_route(self, dim):
        _check_method(self.method, "AlignmentCurve")
        if self.method == "exact":
            if self.rank is not None or self.passes != 1:
                raise ValueError("AlignmentCurve: rank and passes apply to method='fd' or 'nystrom'")
            return
        r = self.rank
        if r is None or isinstance(r, bool) or not isinstance(r, numbers.Integral) or not 1 <= r <= dim:
            raise ValueError(f"AlignmentCurve: method={self.method!r} needs rank in [1, n_features = {dim}], got {r!r}")

    def fit(self, X, y):
        """Fit on X (n_samples, n_features) with labels y (n_samples,). Returns self."""
        X, y = self._validate_data(X, y, dtype=[np.float64, np.float32, np.uint8], reset=True)
        self._check_route(X.shape[1])
        self.__dict__.pop("state_", None)
        self.classes_ = np.unique(y)
        self.batch_size_ = int(self.batch_size) if self.batch_size is not None else max(5 * X.shape[1], 256)
        codes = np.searchsorted(self.classes_, y)
        if self.method != "exact":  # every refusal (options, memory) before the first row
            state = verified.VerifiedAlignment(
                X.shape[1], len(self.classes_), method=self.method, rank=int(self.rank), passes=self.passes,
                seed=_seed(self.random_state), center=self.center, measure=self.measure)
            batches = [(X[b], codes[b]) for b in gen_batches(X.shape[0], self.batch_size_)]
            self.state_ = hooks.track(batches, state)
            return self._finish()
        for batch in gen_batches(X.shape[0], self.batch_size_):
            self._update(X[batch], codes[batch], batch.start)
        return self._finish()

    @available_if(lambda self: self.method == "exact")
    def partial_fit(self, X, y, classes=None):
        """Add rows X with labels y; `classes` (all the labels that will ever occur) is
        required on the first call, as for sklearn's partial_fit classifiers. Returns self.
        method="exact" only (the sketch routes read the rows more than once)."""
        first = not hasattr(self, "state_")
        X, y = self._validate_data(X, y, dtype=[np.float64, np.float32, np.uint8], reset=first)
        if first:
            self._check_route(X.shape[1])
            if classes is None:
                raise ValueError("AlignmentCurve.partial_fit: classes must be given on the first call")
            self.classes_ = np.unique(classes)
        codes = np.searchsorted(self.classes_, y)
        unknown = (codes >= len(self.classes_)) | (self.classes_[np.minimum(codes, len(self.classes_) - 1)] != y)
        if unknown.any():
            raise ValueError(f"AlignmentCurve.partial_fit: label {y[np.argmax(unknown)]!r} is not in classes_")
        self._update(X, codes, int(self.state_.n) if not first else 0)
        return self._finish()

    def _update(self, x, codes, first_row):
        if not hasattr(self, "state_"):
            self.state_ = _recalign.MomentAccumulator(x.shape[1], classes=len(self.classes_))
        self.state_.update(x, codes, first_row=first_row)

    def _finish(self):
        self.sketch_error_ = None
        if self.method == "exact":
            r = _recalign.alignment_curve(self.state_.finish(self.center), self.measure)
        else:
            report = self.state_.report()
            r, self.sketch_error_ = report.curve, report.sketch_error
        self.n_samples_seen_ = int(self.state_.n)
        self.curve_ = r.curve
        self.contributions_ = r.contributions
        self.eigenvalues_ = r.eigenvalues
        self.max_k_, self.skipped_, self.normaliser_, self.complete_ = r.max_k, r.skipped, r.normaliser, r.complete
        return self

    def _more_tags(self):
        return {"requires_y": True}
